"""What distributing the GQN training step costs here, and what it should
buy on real hardware.

1. Measured: examples/s of the real training path (Estimator, in-memory
   data) on one device, under MirroredStrategy over one device (the
   strategy's own overhead) and over two logical CPU devices. The logical
   devices share this machine's cores, so on a 2-core machine this measures
   the overhead of replication (two graphs, all-reduce, split input), not a
   speed-up.
2. On paper: the FLOPs of one paper-size training step, counted from the
   graph as scripts/benchmark_train.py counts them, turned into an expected
   step time on a TPU v3-8 and on 8 GPUs from stated peak rates, an assumed
   utilisation and a ring all-reduce of the gradients. These are estimates
   from the stated assumptions, not measurements.

    python scripts/benchmark_distribution.py --timed_steps 20 --estimate_batch_size 40
"""
import tempfile
import time

from gqn import startup

startup.start_command()  # TensorFlow quiet and in graph mode, before it loads

from gqn import hardware  # noqa: E402

# Logical devices must exist before TensorFlow makes any device.
DEVICES = hardware.use_logical_cpus(2)

import numpy as np  # noqa: E402
import tensorflow.compat.v1 as tf  # noqa: E402
from absl import flags  # noqa: E402

from data_provider.scene_arrays import random_inputs  # noqa: E402
from gqn import config as gqn_config_lib  # noqa: E402
from gqn import cli_flags, estimator  # noqa: E402
from gqn.model_fn import model_fn_builder  # noqa: E402
# (its flags are named apart from benchmark_train's, which this imports)
from scripts.benchmark_train import count_flops  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("measured_preset", "tiny", "Preset measured on this machine.")
flags.DEFINE_integer("measured_batch_size", 16, "Global batch of the measured runs.")
flags.DEFINE_integer("timed_steps", 20, "Timed steps per variant (after warm-up).")
flags.DEFINE_integer("untimed_steps", 3, "Untimed steps first.")
flags.DEFINE_integer("estimate_batch_size", 40,
                     "Global batch of the paper-size estimate (the paper's 36 "
                     "does not split over 8 devices; 40 is 5 per device).")
flags.DEFINE_boolean("measure", True, "Run part 1 (the measured runs).")
flags.DEFINE_integer("repeats", 2, "Rounds over the variants, interleaved; each "
                     "variant reports its fastest round (a shared machine's "
                     "other jobs only ever slow a round down).")

# (name, devices, peak FLOP/s of the whole slice in the precision used,
#  assumed utilisation of that peak, all-reduce bus bandwidth in bytes/s).
# Peaks: TPU v3-8 420 TFLOP/s bfloat16 (Google's figure for the 4-chip
# board); V100 15.7 TFLOP/s float32 (it has no bfloat16, and this package has
# no float16 mode); A100 156 TFLOP/s TF32 (TensorFlow's default for float32
# convolutions on Ampere) and 312 TFLOP/s bfloat16, dense. Utilisation: 5
# examples per device of 16x16 ConvLSTMs with 320-768 per-step input
# channels keep the matrix units far from full; 30 % (50 % for plain float32
# FMA units) is a plain guess. Bandwidth: inter-core links on the TPU board,
# NVLink (DGX-1 V100, DGX A100), as NCCL-style bus bandwidth.
HARDWARE = [
    ("TPU v3-8 (bfloat16)", 8, 420e12, 0.30, 200e9),
    ("8x V100 (float32)", 8, 8 * 15.7e12, 0.50, 130e9),
    ("8x A100 (float32 as TF32)", 8, 8 * 156e12, 0.30, 230e9),
    ("8x A100 (bfloat16)", 8, 8 * 312e12, 0.30, 230e9),
]


def _input_fn(config, num_examples=64):
    features, labels = random_inputs(config, num_examples)

    def input_fn(params):
        dataset = tf.data.Dataset.from_tensor_slices((features, labels))
        return dataset.repeat().batch(params["batch_size"], drop_remainder=True)
    return input_fn


class _StepTimer(tf.train.SessionRunHook):
    """Wall time of the steps after `warmup` (between their session runs)."""

    def __init__(self, warmup):
        self.warmup, self.times = warmup, []

    def after_run(self, run_context, run_values):
        self.times.append(time.perf_counter())

    def seconds(self):
        timed = self.times[self.warmup:]
        return (timed[-1] - timed[0]) / (len(timed) - 1)


def measure(config, devices, steps, warmup):
    """Seconds per training step of `config` on one device (devices=None)
    or mirrored over `devices`."""
    strategy = None if devices is None else estimator.make_strategy("mirrored", devices)
    with tempfile.TemporaryDirectory() as model_dir:
        run_config = estimator.make_run_config(
            model_dir, save_checkpoints_steps=10 ** 6, log_step_count_steps=None,
            seed=0, strategy=strategy)
        gqn_estimator = estimator.make_estimator(config, run_config,
                                                 summary_every_steps=10 ** 6)
        input_fn = _input_fn(config)
        if strategy is not None:
            input_fn = estimator.strategy_input_fn(input_fn, config.batch_size,
                                                   log=lambda *args: None)
        timer = _StepTimer(warmup)
        gqn_estimator.train(input_fn, max_steps=warmup + steps + 1, hooks=[timer])
    return timer.seconds()


def paper_estimate(batch_size):
    """(FLOPs of one paper-size training step at `batch_size`, trainable
    parameters), from the graph."""
    config = gqn_config_lib.preset("paper", batch_size=batch_size)
    size, views = config.image_size, config.context_size
    with tf.Graph().as_default() as graph:
        features = {
            "context_frames": tf.zeros([batch_size, views, size, size, 3]),
            "context_poses": tf.zeros([batch_size, views, 7]),
            "query_pose": tf.zeros([batch_size, 7]),
        }
        spec = model_fn_builder(config)(
            features, tf.zeros([batch_size, size, size, 3]),
            tf.estimator.ModeKeys.TRAIN, {"batch_size": batch_size},
            tf.estimator.tpu.RunConfig(model_dir="/tmp/unused"))
        parameters = sum(int(np.prod(v.shape.as_list())) for v in tf.trainable_variables())
        return count_flops(graph, spec.train_op), parameters


def main(_):
    tf.logging.set_verbosity(tf.logging.ERROR)
    if FLAGS.measure:
        config = gqn_config_lib.preset(FLAGS.measured_preset, batch_size=FLAGS.measured_batch_size)
        print(f"measured: preset {FLAGS.measured_preset}, global batch {config.batch_size}, "
              f"{FLAGS.timed_steps} steps after {FLAGS.untimed_steps}, best of "
              f"{FLAGS.repeats} rounds; the logical devices share this machine's "
              "cores: this measures overhead, not speed-up", flush=True)
        print(f"{'variant':<34}{'replicas':>9}{'s/step':>9}{'examples/s':>12}{'x 1 device':>12}")
        variants = [("one device (TPUEstimator, CPU)", None),
                    ("mirrored over 1 device", DEVICES[:1]),
                    ("mirrored over 2 logical CPUs", DEVICES)]
        best = {}
        for _ in range(FLAGS.repeats):
            for name, devices in variants:
                seconds = measure(config, devices, FLAGS.timed_steps, FLAGS.untimed_steps)
                best[name] = min(seconds, best.get(name, seconds))
        base = best[variants[0][0]]
        for name, devices in variants:
            seconds = best[name]
            print(f"{name:<34}{len(devices or [0]):>9}{seconds:>9.3f}"
                  f"{config.batch_size / seconds:>12.1f}{base / seconds:>12.2f}")
        print()

    batch = FLAGS.estimate_batch_size
    flops, parameters = paper_estimate(batch)
    gradient_bytes = 4 * parameters
    print(f"paper-size step (64x64, 5 views, L=12, 256 channels), global batch {batch}: "
          f"{flops / 1e12:.2f} TFLOP per step ({flops / batch / 1e9:.0f} GFLOP per "
          f"example), {parameters / 1e6:.1f} M parameters ({gradient_bytes / 1e6:.0f} MB "
          "of float32 gradients to all-reduce)")
    print("expected step time = FLOPs / (peak x utilisation) + ring all-reduce "
          "2(n-1)/n x gradient bytes / bus bandwidth (not overlapped)")
    print(f"{'hardware':<28}{'peak TFLOP/s':>13}{'util':>6}{'compute s':>11}"
          f"{'all-reduce s':>14}{'step s':>8}{'examples/s':>12}{'2M steps':>10}")
    for name, devices, peak, utilisation, bandwidth in HARDWARE:
        if batch % devices:
            print(f"{name:<28} batch {batch} does not split over {devices} devices")
            continue
        compute = flops / (peak * utilisation)
        reduce = 2 * (devices - 1) / devices * gradient_bytes / bandwidth
        step = compute + reduce
        print(f"{name:<28}{peak / 1e12:>13.0f}{utilisation:>6.0%}{compute:>11.3f}"
              f"{reduce:>14.4f}{step:>8.3f}{batch / step:>12.0f}"
              f"{2e6 * step / 86400:>8.1f} d")


if __name__ == "__main__":
    cli_flags.run_main(main, "benchmark_distribution")
