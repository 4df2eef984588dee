"""Training-step speed of the GQN model_fn on this machine.

For each preset it builds the real TRAIN graph (model_fn, Adam, gradients)
on a fixed in-memory batch and prints seconds per step (median after
warm-up), examples/s, the FLOPs of one step counted from the graph, and the
achieved FLOP/s as a fraction of a large float32 matmul timed in the same
run (ratios survive a noisy, shared machine better than seconds).

    python scripts/benchmark_train.py --configs tiny,small,paper --paper_batch_size 4
"""
import statistics
import time

import numpy as np
import tensorflow.compat.v1 as tf
from absl import app, flags

from gqn import config as gqn_config_lib
from gqn.estimator import session_config
from gqn.model_fn import model_fn_builder

FLAGS = flags.FLAGS
flags.DEFINE_list("configs", ["tiny", "small", "paper"], "Presets to time.")
flags.DEFINE_integer("steps", 5, "Timed steps per config (after warm-up).")
flags.DEFINE_integer("warmup_steps", 2, "Untimed steps first.")
flags.DEFINE_integer("paper_batch_size", 4,
                     "Batch for the paper preset (the paper uses 36; a "
                     "36-example step takes minutes on 2 cores).")
flags.DEFINE_integer("matmul_size", 2048, "Side of the reference matmul.")


def _time_runs(session, op, steps, warmup):
    for _ in range(warmup):
        session.run(op)
    durations = []
    for _ in range(steps):
        start = time.perf_counter()
        session.run(op)
        durations.append(time.perf_counter() - start)
    return statistics.median(durations)


def matmul_flops_per_second(size, steps=5):
    """float32 FLOP/s of a size x size matmul: the machine's practical peak."""
    with tf.Graph().as_default():
        a = tf.Variable(tf.random.normal([size, size]))
        b = tf.Variable(tf.random.normal([size, size]))
        product = tf.reduce_sum(tf.matmul(a, b))
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


def benchmark_config(config, steps, warmup):
    """(seconds/step, FLOPs/step) of one training step of `config`."""
    rng = np.random.RandomState(0)
    batch, size, views = config.batch_size, config.image_size, config.context_size
    with tf.Graph().as_default() as graph:
        features = {
            "context_frames": tf.constant(rng.rand(batch, views, size, size, 3), tf.float32),
            "context_poses": tf.constant(rng.rand(batch, views, 7), tf.float32),
            "query_pose": tf.constant(rng.rand(batch, 7), tf.float32),
        }
        labels = tf.constant(rng.rand(batch, size, size, 3), tf.float32)
        spec = model_fn_builder(config)(
            features, labels, tf.estimator.ModeKeys.TRAIN, {"batch_size": batch},
            tf.estimator.tpu.RunConfig(model_dir="/tmp/unused"))
        flops = count_flops(graph)
        with tf.Session(config=session_config()) as session:
            session.run(tf.global_variables_initializer())
            seconds = _time_runs(session, spec.train_op, steps, warmup)
    return seconds, flops


def main(_):
    peak = matmul_flops_per_second(FLAGS.matmul_size)
    print(f"reference float32 matmul {FLAGS.matmul_size}^3: "
          f"{peak / 1e9:.1f} GFLOP/s")
    header = (f"{'config':<8}{'image':>6}{'L':>4}{'hidden':>8}{'batch':>7}"
              f"{'s/step':>9}{'ex/s':>8}{'GFLOP/step':>12}{'GFLOP/s':>9}"
              f"{'of matmul':>11}")
    rows = []
    for name in FLAGS.configs:
        overrides = {"batch_size": FLAGS.paper_batch_size} if name == "paper" else {}
        config = gqn_config_lib.preset(name, **overrides)
        seconds, flops = benchmark_config(config, FLAGS.steps, FLAGS.warmup_steps)
        rows.append(f"{name:<8}{config.image_size:>6}{config.seq_length:>4}"
                    f"{config.hidden_channels:>8}{config.batch_size:>7}"
                    f"{seconds:>9.3f}{config.batch_size / seconds:>8.1f}"
                    f"{flops / 1e9:>12.1f}{flops / seconds / 1e9:>9.1f}"
                    f"{flops / seconds / peak:>10.0%}")
        print(rows[-1], flush=True)
    print()
    print(header)
    print("\n".join(rows))


if __name__ == "__main__":
    app.run(main)
