"""Does the canvas upsampler remove the 4x4 block artefact?

The paper's generator writes its canvas with a stride-4 transposed
convolution, so every 4x4 tile of a generated image comes from one hidden
cell and colour jumps at tile borders (GQNConfig.upsample = 'transposed').
'subpixel' and 'resize_conv' mix neighbouring cells into each pixel. This
script trains the same tiny model once per upsampler (same data, seed and
steps, through the package's own training path), renders a fixed set of test
scenes from the prior and prints, per upsampler, objective.blockiness of the
generated images (border steps / inside steps; the targets' value is the
reference), MSE, PSNR, KL (nats; near 0 means the model collapsed to one
flat image) and seconds per training step. It also writes
upsampling.png: target | one column per upsampler, one test scene per row.
The training reader hands out batches in thread-dependent order, so reruns
agree only up to that noise.

    TF_CPP_MIN_LOG_LEVEL=2 .venv/bin/python scripts/benchmark_upsampling.py
    ... --steps 2000 --work_dir /tmp/upsampling --upsamplers transposed,subpixel
"""
import os
import shutil
import statistics
import tempfile
import time

from gqn import startup

startup.start_command()  # TensorFlow quiet and in graph mode, before it loads

import tensorflow.compat.v1 as tf
from absl import flags

from data_provider import synthetic
from data_provider.gqn_tfr_provider import gqn_input_fn
from data_provider.scene_arrays import load_scenes
from gqn import config as gqn_config_lib
from gqn import cli_flags, estimator, evaluation, images, objective, training
from gqn.predictor import Predictor

FLAGS = flags.FLAGS
flags.DEFINE_list("upsamplers", list(gqn_config_lib.UPSAMPLERS), "Upsamplers compared.")
flags.DEFINE_integer("steps", 300, "Training steps per upsampler.")
flags.DEFINE_integer("img_size", 32, "Image side (divisible by 4).")
flags.DEFINE_string("work_dir", None, "Data, models and upsampling.png "
                    "(default: a new temporary folder, of which only the PNG is "
                    "kept).")
flags.DEFINE_integer("num_train_scenes", 400, "Generated training rooms.")
flags.DEFINE_integer("num_scenes", 32, "Test scenes rendered and scored.")
flags.DEFINE_integer("seed", 0, "Data, view-draw and weight seed.")

DATASET = "rooms"
GRID_SCENES = 6


def train(config, data_root, model_dir, steps, seed):
    """Trains `config` from scratch in `model_dir`; returns seconds/step
    (median of the estimator's global_step/sec after the first interval)."""
    shutil.rmtree(model_dir, ignore_errors=True)
    os.makedirs(model_dir)
    config.save(gqn_config_lib.config_path(model_dir))  # Predictor reads it
    log_every = max(1, steps // 10)
    run_config = estimator.make_run_config(
        model_dir, save_checkpoints_steps=steps, log_step_count_steps=log_every,
        seed=seed)
    monitor = training.RunMonitor(steps, log_every)
    model = estimator.make_estimator(config, run_config, summary_every_steps=steps,
                                     monitor=monitor)
    input_fn = gqn_input_fn(DATASET, data_root, "train", config.context_size,
                            image_size=config.image_size, seed=seed)
    training.train_and_evaluate(model, input_fn, steps, monitor=monitor)
    rates = [value.simple_value
             for path in tf.io.gfile.glob(os.path.join(model_dir, "events.out.*"))
             for event in tf.train.summary_iterator(path)
             for value in event.summary.value if value.tag == "global_step/sec"]
    return 1.0 / statistics.median(rates[1:] or rates) if rates else float("nan")


def blockiness(batch):
    """objective.blockiness of float (N, H, W, 3) images, per image."""
    with tf.Graph().as_default(), tf.Session() as session:
        return session.run(objective.blockiness(tf.constant(batch, tf.float32)))


def main(_):
    tf.logging.set_verbosity(tf.logging.ERROR)
    work_dir = FLAGS.work_dir or tempfile.mkdtemp(prefix="benchmark_upsampling_")
    data_root = os.path.join(work_dir, "data")
    started = time.time()
    synthetic.generate_dataset(data_root, DATASET, "rooms",
                               num_train_scenes=FLAGS.num_train_scenes,
                               num_test_scenes=FLAGS.num_scenes,
                               image_size=FLAGS.img_size, seed=FLAGS.seed,
                               overwrite=True)
    print(f"generated {FLAGS.num_train_scenes}+{FLAGS.num_scenes} rooms of "
          f"{FLAGS.img_size}px in {time.time() - started:.0f} s", flush=True)

    base = gqn_config_lib.preset("tiny", image_size=FLAGS.img_size).annealed_over(
        FLAGS.steps)
    scenes = load_scenes(DATASET, data_root, base.context_size, FLAGS.num_scenes,
                         image_size=FLAGS.img_size, seed=FLAGS.seed)
    metrics = evaluation.ImageMetrics(FLAGS.img_size)
    results = {"targets (reference)": {"blockiness": blockiness(scenes["target"])},
               "context mean (baseline)":
                   evaluation.evaluate_baselines(scenes, metrics)["context_mean"]}
    seconds_per_step, generated = {}, {}
    for name in FLAGS.upsamplers:
        start = time.time()
        model_dir = os.path.join(work_dir, "models", name)
        seconds_per_step[name] = train(base.replace(upsample=name), data_root,
                                       model_dir, FLAGS.steps, FLAGS.seed)
        predictor = Predictor(model_dir)
        per_example, generated[name], _ = evaluation.evaluate_model(
            predictor, scenes, metrics, num_samples=1)
        predictor.close()
        per_example["blockiness"] = blockiness(generated[name])
        results[name] = per_example
        print(f"{name}: trained {FLAGS.steps} steps and rendered "
              f"{len(scenes['target'])} scenes in {time.time() - start:.0f} s",
              flush=True)

    # KL near 0 with a baseline-level MSE: the model ignores its inputs and
    # paints one flat image, whose blockiness is then meaningless.
    columns = ("blockiness", "mse", "psnr", "kl")
    print(f"\n{len(scenes['target'])} test scenes, {FLAGS.img_size}px, tiny preset, "
          f"{FLAGS.steps} steps of batch {base.batch_size}; mean ± stderr "
          f"({time.time() - started:.0f} s in all)")
    print(f"{'':<25}" + "".join(f"{c:>18}" for c in columns) + f"{'s/step':>9}")
    for label, per_example in results.items():
        summary = evaluation.summarise(per_example)
        cells = "".join(f"{summary[c]['mean']:>11.4g} ± {summary[c]['stderr']:<4.2g}"
                        if c in summary else f"{'-':>18}" for c in columns)
        rate = seconds_per_step.get(label)
        print(f"{label:<25}{cells}{'-' if rate is None else f'{rate:.3f}':>9}")

    shown = range(min(GRID_SCENES, len(scenes["target"])))
    picture = images.grid(
        [[scenes["target"][i]] + [generated[n][i] for n in FLAGS.upsamplers]
         for i in shown], column_labels=["target", *FLAGS.upsamplers],
        scale=max(1, 128 // FLAGS.img_size))
    print(f"picture: {images.save_png(picture, os.path.join(work_dir, 'upsampling.png'))}")
    if FLAGS.work_dir is None:
        for folder in ("data", "models"):
            shutil.rmtree(os.path.join(work_dir, folder))


if __name__ == "__main__":
    cli_flags.run_main(main, "benchmark_upsampling")
