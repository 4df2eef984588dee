"""Training-step speed of the GQN model_fn on this machine.

For each preset and precision it builds the real TRAIN graph (model_fn,
Adam, gradients) on a fixed in-memory batch and prints seconds per step
(median after warm-up), examples/s, the FLOPs of one step counted from the
graph, and the achieved FLOP/s as a fraction of large float32 and bfloat16
matmuls timed in the same run (ratios survive a noisy, shared machine
better than seconds). With --xla each variant is also timed under XLA JIT.

    python scripts/benchmark_train.py --configs tiny,small,paper \\
        --precisions float32,bfloat16 --paper_batch_size 4
"""
import os
import statistics
import time

# XLA JIT on CPU needs this before TensorFlow loads; without --xla it is unused.
os.environ.setdefault("TF_XLA_FLAGS", "--tf_xla_cpu_global_jit")

import tensorflow.compat.v1 as tf  # noqa: E402
from absl import app, flags  # noqa: E402

from data_provider.scene_arrays import random_inputs  # noqa: E402
from gqn import config as gqn_config_lib  # noqa: E402
from gqn import hardware  # noqa: E402
from gqn.estimator import session_config  # noqa: E402
from gqn.model_fn import model_fn_builder  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_list("configs", ["tiny", "small", "paper"], "Presets to time.")
flags.DEFINE_list("precisions", ["float32", "bfloat16"],
                  "Compute precisions to time (bfloat16 is skipped on a CPU "
                  "without native support).")
flags.DEFINE_boolean("xla", False, "Also time every variant under XLA JIT.")
flags.DEFINE_integer("steps", 5, "Timed steps per variant (after warm-up).")
flags.DEFINE_integer("warmup_steps", 2, "Untimed steps first.")
flags.DEFINE_integer("paper_batch_size", 4,
                     "Batch for the paper preset (the paper uses 36; a "
                     "36-example step takes minutes on 2 cores).")
flags.DEFINE_integer("matmul_size", 2048, "Side of the reference matmuls.")


def _session_config(xla):
    config = session_config()
    if xla:
        config.graph_options.optimizer_options.global_jit_level = tf.OptimizerOptions.ON_1
    return config


def _time_runs(session, op, steps, warmup):
    for _ in range(warmup):
        session.run(op)
    durations = []
    for _ in range(steps):
        start = time.perf_counter()
        session.run(op)
        durations.append(time.perf_counter() - start)
    return statistics.median(durations)


def matmul_flops_per_second(size, dtype, steps=5):
    """FLOP/s of a size x size matmul in `dtype`: the machine's practical
    peak for that precision."""
    with tf.Graph().as_default():
        a = tf.Variable(tf.cast(tf.random.normal([size, size]), dtype))
        b = tf.Variable(tf.cast(tf.random.normal([size, size]), dtype))
        product = tf.reduce_sum(tf.cast(tf.matmul(a, b), tf.float32))
        with tf.Session(config=session_config()) as session:
            session.run(tf.global_variables_initializer())
            seconds = _time_runs(session, product, steps, warmup=2)
    return 2.0 * size ** 3 / seconds


def count_flops(graph):
    """FLOPs of every op with registered statistics (convs, matmuls and their
    gradients), from the graph's static shapes."""
    options = tf.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return tf.profiler.profile(graph, options=options).total_float_ops


def benchmark_config(config, steps, warmup, xla=False):
    """(seconds/step, FLOPs/step) of one training step of `config`."""
    batch = config.batch_size
    features, labels = random_inputs(config, batch)
    with tf.Graph().as_default() as graph:
        features = {key: tf.constant(value) for key, value in features.items()}
        labels = tf.constant(labels)
        spec = model_fn_builder(config)(
            features, labels, tf.estimator.ModeKeys.TRAIN, {"batch_size": batch},
            tf.estimator.tpu.RunConfig(model_dir="/tmp/unused"))
        flops = count_flops(graph)
        with tf.Session(config=_session_config(xla)) as session:
            session.run(tf.global_variables_initializer())
            session.run(tf.local_variables_initializer())
            seconds = _time_runs(session, spec.train_op, steps, warmup)
    return seconds, flops


def _variants():
    precisions = [p for p in FLAGS.precisions
                  if p == "float32" or hardware.cpu_has_bfloat16()]
    skipped = set(FLAGS.precisions) - set(precisions)
    if skipped:
        print(f"skipping {sorted(skipped)}: this CPU lacks native bfloat16")
    return [(p, xla) for p in precisions for xla in ([False, True] if FLAGS.xla
                                                      else [False])]


def main(_):
    peaks = {name: matmul_flops_per_second(FLAGS.matmul_size, dtype)
             for name, dtype in (("float32", tf.float32), ("bfloat16", tf.bfloat16))
             if name == "float32" or hardware.cpu_has_bfloat16()}
    for name, peak in peaks.items():
        print(f"reference {name} matmul {FLAGS.matmul_size}^3: {peak / 1e9:.1f} GFLOP/s")
    header = (f"{'config':<7}{'image':>6}{'L':>3}{'hidden':>7}{'batch':>6}"
              f"{'precision':>10}{'xla':>5}{'s/step':>8}{'ex/s':>7}{'GFLOP/step':>11}"
              f"{'GFLOP/s':>9}{'of f32 mm':>10}{'of bf16 mm':>11}{'x f32':>7}")
    print(header)
    rows = []
    for name in FLAGS.configs:
        overrides = {"batch_size": FLAGS.paper_batch_size} if name == "paper" else {}
        baseline = None
        for precision, xla in _variants():
            config = gqn_config_lib.preset(name, precision=precision, **overrides)
            seconds, flops = benchmark_config(config, FLAGS.steps, FLAGS.warmup_steps, xla)
            baseline = baseline or seconds
            rate = flops / seconds
            bf16_share = (f"{rate / peaks['bfloat16']:>10.0%}" if "bfloat16" in peaks
                          else f"{'-':>10}")
            rows.append(f"{name:<7}{config.image_size:>6}{config.seq_length:>3}"
                        f"{config.hidden_channels:>7}{config.batch_size:>6}"
                        f"{precision:>10}{'on' if xla else 'off':>5}{seconds:>8.3f}"
                        f"{config.batch_size / seconds:>7.1f}{flops / 1e9:>11.1f}"
                        f"{rate / 1e9:>9.1f}{rate / peaks['float32']:>9.0%} {bf16_share}"
                        f"{baseline / seconds:>7.2f}")
            print(rows[-1], flush=True)
    print()
    print(header)
    print("\n".join(rows))


if __name__ == "__main__":
    app.run(main)
