"""Training-step speed of the GQN model_fn on this machine.

For each preset and precision it builds the real TRAIN graph (model_fn,
Adam, gradients) on a fixed in-memory batch and prints seconds per step
(median after warm-up), examples/s, the FLOPs of one step counted from the
graph, and the achieved FLOP/s as a fraction of large float32 and bfloat16
matmuls. A preset's variants and the two matmuls are timed in interleaved
rounds, one run of each per round, so the ratios between them survive a
noisy, shared machine better than seconds do. With --xla each variant is
also timed under XLA JIT.

    python scripts/benchmark_train.py --configs tiny,small,paper \\
        --precisions float32,bfloat16 --paper_batch_size 4
    python scripts/benchmark_train.py --configs tiny --precisions bfloat16 \\
        --compare_hparams colour_path=true      # the colour path's cost
"""
import os
import statistics
import time

# XLA JIT on CPU needs this before TensorFlow loads; without --xla it is unused.
os.environ.setdefault("TF_XLA_FLAGS", "--tf_xla_cpu_global_jit")

from gqn import startup

startup.start_command()  # TensorFlow quiet and in graph mode, before it loads

import tensorflow.compat.v1 as tf  # noqa: E402
from absl import flags  # noqa: E402

from data_provider.scene_arrays import random_inputs  # noqa: E402
from gqn import config as gqn_config_lib  # noqa: E402
from gqn import cli_flags, hardware  # noqa: E402
from gqn.estimator import session_config  # noqa: E402
from gqn.model_fn import model_fn_builder  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_list("configs", ["tiny", "small", "paper"], "Presets to time.")
flags.DEFINE_list("precisions", ["float32", "bfloat16"],
                  "Compute precisions to time (float16 runs on any CPU, "
                  "emulated; bfloat16 is skipped on a CPU "
                  "without native support).")
flags.DEFINE_boolean("xla", False, "Also time every variant under XLA JIT.")
flags.DEFINE_integer("steps", 5, "Timed steps per variant (after warm-up).")
flags.DEFINE_integer("warmup_steps", 2, "Untimed steps first.")
flags.DEFINE_integer("paper_batch_size", 4,
                     "Batch for the paper preset (the paper uses 36; a "
                     "36-example step takes minutes on 2 cores).")
flags.DEFINE_integer("matmul_size", 2048, "Side of the reference matmuls.")
flags.DEFINE_integer("batch_size", None, "Batch of every preset (default: each "
                     "preset's; --paper_batch_size for the paper's).")
flags.DEFINE_list("hparams", [], "GQNConfig fields (key=value) of every variant.")
flags.DEFINE_list("compare_hparams", [], "Also time each variant with these fields "
                  "(key=value) in the same rounds, e.g. colour_path=true.")


def _session_config(xla):
    config = session_config()
    if xla:
        config.graph_options.optimizer_options.global_jit_level = tf.OptimizerOptions.ON_1
    return config


class TimedOp:
    """One op in its own graph and session, to be run and timed repeatedly."""

    def __init__(self, graph, op, xla=False, flops=None):
        self.op, self.flops = op, flops
        self.session = tf.Session(graph=graph, config=_session_config(xla))
        with graph.as_default():
            self.session.run([tf.global_variables_initializer(),
                              tf.local_variables_initializer()])

    def seconds(self):
        start = time.perf_counter()
        self.session.run(self.op)
        return time.perf_counter() - start


def interleaved_medians(timed_ops, steps, warmup):
    """Median seconds of each op, timed in rounds (each op once per round)
    so that a change in the machine's load falls on all of them alike."""
    for timed in timed_ops:
        for _ in range(warmup):
            timed.seconds()
    durations = [[] for _ in timed_ops]
    for _ in range(steps):
        for timed, times in zip(timed_ops, durations):
            times.append(timed.seconds())
    return [statistics.median(times) for times in durations]


def reference_matmul(size, dtype):
    """A size x size matmul in `dtype`: the machine's practical peak for that
    precision."""
    with tf.Graph().as_default() as graph:
        a = tf.Variable(tf.cast(tf.random.normal([size, size]), dtype))
        b = tf.Variable(tf.cast(tf.random.normal([size, size]), dtype))
        product = tf.reduce_sum(tf.cast(tf.matmul(a, b), tf.float32))
    return TimedOp(graph, product, flops=2.0 * size ** 3)


def count_flops(graph, op):
    """FLOPs of the ops a run of `op` executes that have registered
    statistics (convs, matmuls and their gradients), from static shapes;
    ops the run prunes are not counted."""
    executed = tf.graph_util.extract_sub_graph(graph.as_graph_def(), [op.name])
    with tf.Graph().as_default() as executed_graph:
        tf.import_graph_def(executed, name="")
    options = tf.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return tf.profiler.profile(executed_graph, options=options).total_float_ops


def train_step(config, xla=False):
    """The real TRAIN step of `config` (model_fn, gradients, Adam) on a fixed
    in-memory batch, as a TimedOp knowing its FLOPs."""
    batch = config.batch_size
    features, labels = random_inputs(config, batch)
    with tf.Graph().as_default() as graph:
        features = {key: tf.constant(value) for key, value in features.items()}
        labels = tf.constant(labels)
        spec = model_fn_builder(config)(
            features, labels, tf.estimator.ModeKeys.TRAIN, {"batch_size": batch},
            tf.estimator.tpu.RunConfig(model_dir="/tmp/unused"))
    return TimedOp(graph, spec.train_op, xla, flops=count_flops(graph, spec.train_op))


def _variants():
    precisions = [p for p in FLAGS.precisions
                  if p != "bfloat16" or hardware.cpu_has_bfloat16()]
    skipped = set(FLAGS.precisions) - set(precisions)
    if skipped:
        print(f"skipping {sorted(skipped)}: this CPU lacks native bfloat16")
    changes = [{}] + ([cli_flags.parse_hparams(FLAGS.compare_hparams)] if FLAGS.compare_hparams
                      else [])
    return [(p, xla, change) for p in precisions
            for xla in ([False, True] if FLAGS.xla else [False]) for change in changes]


def main(_):
    references = {name: reference_matmul(FLAGS.matmul_size, dtype)
                  for name, dtype in (("float32", tf.float32), ("bfloat16", tf.bfloat16))
                  if name == "float32" or hardware.cpu_has_bfloat16()}
    header = (f"{'config':<7}{'image':>6}{'L':>3}{'hidden':>7}{'batch':>6}"
              f"{'precision':>10}{'xla':>5}{'s/step':>8}{'ex/s':>7}{'GFLOP/step':>11}"
              f"{'GFLOP/s':>9}{'of f32 mm':>10}{'of bf16 mm':>11}{'x first':>8}  changes")
    print(header)
    rows = []
    for name in FLAGS.configs:
        overrides = {"batch_size": FLAGS.paper_batch_size} if name == "paper" else {}
        if FLAGS.batch_size:
            overrides["batch_size"] = FLAGS.batch_size
        overrides.update(cli_flags.parse_hparams(FLAGS.hparams))
        variants = [(gqn_config_lib.preset(name, precision=precision,
                                           **{**overrides, **change}), xla,
                     ",".join(f"{k}={v}" for k, v in change.items()) or "-")
                    for precision, xla, change in _variants()]
        steps = [train_step(config, xla) for config, xla, _ in variants]
        # The reference matmuls are timed in the same rounds as the steps.
        seconds = interleaved_medians(steps + list(references.values()),
                                      FLAGS.steps, FLAGS.warmup_steps)
        peaks = {ref: timed.flops / duration for (ref, timed), duration
                 in zip(references.items(), seconds[len(steps):])}
        print(", ".join(f"{ref} matmul {FLAGS.matmul_size}^3: {peak / 1e9:.0f} GFLOP/s"
                        for ref, peak in peaks.items()) + f" (during {name})")
        for (config, xla, change), step, duration in zip(variants, steps, seconds):
            step.session.close()
            rate = step.flops / duration
            bf16_share = (f"{rate / peaks['bfloat16']:>10.0%}" if "bfloat16" in peaks
                          else f"{'-':>10}")
            rows.append(f"{name:<7}{config.image_size:>6}{config.seq_length:>3}"
                        f"{config.hidden_channels:>7}{config.batch_size:>6}"
                        f"{config.precision:>10}{'on' if xla else 'off':>5}"
                        f"{duration:>8.3f}"
                        f"{config.batch_size / duration:>7.1f}{step.flops / 1e9:>11.1f}"
                        f"{rate / 1e9:>9.1f}{rate / peaks['float32']:>9.0%} {bf16_share}"
                        f"{seconds[0] / duration:>8.2f}  {change}")
            print(rows[-1], flush=True)
    print()
    print(header)
    print("\n".join(rows))


if __name__ == "__main__":
    cli_flags.run_main(main, "benchmark_train")
