"""How good are the imagined views? Variants on the same data and the same
fine-tuning steps, evaluated on held-out still lifes along the way:

- scratch:   trained from scratch on the still lifes;
- finetuned: pretrained on rooms, then fine-tuned on the still lifes;
- sharpened: (--variants ...,sharpened) the same fine-tuning with the
             discriminator's adversarial and feature-matching terms
             (--adversarial_weight, --feature_matching_weight).

Every evaluation renders the same held-out scenes from the prior with the
same noise and reports PSNR, PSNR on the fruit alone and on the rest (the
generator's object masks; the fruit covers a few percent of the pixels, so
whole-image PSNR hides whether it is there and is mostly the wall and
floor's), sharpness (generated over target mean |image
gradient|; 1 is as sharp as the truth), SSIM and MSE, beside the four
baselines that need no training (the mean and the nearest context view, the
plane sweep over the context, and the reprojection: the colour path before
training).

    python scripts/benchmark_quality.py --output_dir quality        # 64 px, ~30 min on 2 cores
    python scripts/benchmark_quality.py --output_dir q --seed 1 --img_size 32
    python scripts/benchmark_quality.py --output_dir long --minutes 120 \
        --variants finetuned --pretrained_model_dir quality/models/pretrained

Writes DIR/quality.json ({"data_dir", "dataset", "image_size", "models":
{variant: model_dir}, "metrics": {variant: {step: {metric: value}}},
"baselines": {name: {metric: value}}, ...}), DIR/curves.png (PSNR, fruit
and background PSNR and sharpness against fine-tuning step, baselines as lines) and
DIR/grid.png (the same scenes by every variant, side by side), and prints a
table of the last evaluation. Step counts scale with --minutes and with
the pixels per image (measured on this project's 2 cores: at 32 px, 30
minutes give 1,500 pretraining and 1,200 fine-tuning steps per variant;
a 64 px step costs about 4 times a 32 px one, so 64 px gets a quarter).
"""
import json
import os
import time

from gqn import startup

startup.start_command()  # TensorFlow quiet and in graph mode, before it loads

import tensorflow.compat.v1 as tf
from absl import flags

from data_provider import synthetic
from data_provider.gqn_tfr_provider import gqn_input_fn
from data_provider.scene_arrays import load_scenes
from gqn import config as gqn_config_lib
from gqn import checkpoints, cli_flags, estimator, evaluation, hardware, images, training
from gqn.predictor import Predictor
from scripts.curves import plot_curves

FLAGS = flags.FLAGS
flags.DEFINE_string("output_dir", None, "Where data, models, quality.json, "
                    "curves.png and grid.png go.")
flags.DEFINE_float("minutes", 30, "Budget on 2 cores; step counts scale with it.")
flags.DEFINE_string("data_dir", None, "Use these records instead of generating: "
                    "<data_dir>/rooms and <data_dir>/still_life (the generator's "
                    "layout, with object masks in the test split).")
flags.DEFINE_integer("seed", 0, "Data, view-draw, weight and noise seed.")
flags.DEFINE_integer("img_size", 64, "Image side (64: the product's).")
flags.DEFINE_string("preset", "tiny", "Model size preset.")
flags.DEFINE_list("variants", ["scratch", "finetuned"], "Variants to train "
                  "(scratch, finetuned, sharpened).")
flags.DEFINE_float("adversarial_weight", 5.0, "The sharpened variant's GAN weight.")
flags.DEFINE_float("feature_matching_weight", 10.0, "The sharpened variant's "
                   "feature-matching weight.")
flags.DEFINE_list("hparams", [], "GQNConfig fields for every variant, key=value "
                  "(e.g. sigma_end=0.3).")
flags.DEFINE_integer("context_pool", None, "Training draws each query's context "
                     "among this many nearest views (default: the reader's).")
flags.DEFINE_string("pretrained_model_dir", None, "Fine-tune from this model_dir "
                    "(trained on rooms at --img_size with the preset's weights) "
                    "instead of pretraining one here first; its rooms are not "
                    "generated then.")
flags.DEFINE_integer("evaluations", 4, "Evaluations along the fine-tuning.")
flags.DEFINE_integer("eval_scenes", 40, "Held-out still lifes evaluated.")
flags.mark_flag_as_required("output_dir")

# Steps per minute of budget at 32 px; a step's cost grows with the pixels.
PRETRAIN_STEPS_PER_MINUTE = 1500 / 30
FINETUNE_STEPS_PER_MINUTE = 1200 / 30
BUDGET_IMAGE_SIZE = 32
ROOM_SCENES, STILL_LIFE_SCENES = 800, 400
GRID_SCENES = 8
CURVES = (("psnr", "PSNR (dB)"), ("fruit_psnr", "PSNR on the fruit (dB)"),
          ("background_psnr", "PSNR on the wall and floor (dB)"),
          ("sharpness", "sharpness (1 = as sharp as the truth)"))


def data_root(output_dir):
    """The records root: --data_dir, or rooms and still lifes generated."""
    if FLAGS.data_dir:
        return FLAGS.data_dir
    root = os.path.join(output_dir, "data")
    needed = [("still_life", "still_life", STILL_LIFE_SCENES)]
    if pretrains():
        needed.insert(0, ("rooms", "rooms", ROOM_SCENES))
    for name, preset, count in needed:
        if not tf.io.gfile.exists(os.path.join(root, name, "dataset_info.json")):
            synthetic.generate_dataset(root, name, preset, num_train_scenes=count,
                                       num_test_scenes=FLAGS.eval_scenes,
                                       image_size=FLAGS.img_size, seed=FLAGS.seed)
    return root


def pretrains():
    """Whether this run pretrains on rooms itself."""
    return (FLAGS.pretrained_model_dir is None
            and any(name != "scratch" for name in FLAGS.variants))


def base_config(finetune_steps):
    """The preset at --img_size in bfloat16 (where the CPU has it), its
    schedules annealed over the fine-tuning, and --hparams."""
    precision = hardware.effective_precision("bfloat16", False, print)
    config = gqn_config_lib.preset(FLAGS.preset, image_size=FLAGS.img_size,
                                   precision=precision).annealed_over(finetune_steps)
    return config.replace(**cli_flags.parse_hparams(FLAGS.hparams))


def train(config, root, dataset, model_dir, steps, warm_start=None):
    """Trains `config` in `model_dir` up to global step `steps`."""
    tf.io.gfile.makedirs(model_dir)
    config.save(gqn_config_lib.config_path(model_dir))
    run_config = estimator.make_run_config(model_dir, save_checkpoints_steps=steps,
                                           log_step_count_steps=max(steps // 4, 1),
                                           seed=FLAGS.seed)
    monitor = training.RunMonitor(steps, max(steps // 4, 1))
    model = estimator.make_estimator(
        config, run_config, summary_every_steps=max(steps // 4, 1),
        warm_start_from=estimator.warm_start_settings(warm_start) if warm_start else None,
        monitor=monitor)
    input_fn = gqn_input_fn(dataset, root, "train", config.context_size,
                            image_size=config.image_size, seed=FLAGS.seed,
                            context_pool=FLAGS.context_pool)
    training.train_and_evaluate(model, input_fn, steps, monitor=monitor)


def evaluate(model_dir, scenes, metrics):
    """Means of the image metrics of prior samples on `scenes`, and the
    generated views."""
    predictor = Predictor(model_dir)
    per_example, generated, _ = evaluation.evaluate_model(predictor, scenes, metrics,
                                                          num_samples=1)
    predictor.close()
    summary = evaluation.summarise(per_example)
    return {name: summary[name]["mean"] for name in summary}, generated


def run_variant(name, config, root, models, pretrained, finetune_steps, scenes, metrics,
                log):
    """Trains one variant in --evaluations chunks; {step: metrics}, views."""
    model_dir = os.path.join(models, name)
    if name == "sharpened":
        config = config.replace(adversarial_weight=FLAGS.adversarial_weight,
                                feature_matching_weight=FLAGS.feature_matching_weight)
    warm_start = None if name == "scratch" else pretrained
    curve, generated = {}, None
    for point in range(1, FLAGS.evaluations + 1):
        steps = round(finetune_steps * point / FLAGS.evaluations)
        started = time.time()
        train(config, root, "still_life", model_dir, steps, warm_start)
        warm_start = None  # only the first chunk starts from the pretrained weights
        curve[steps], generated = evaluate(model_dir, scenes, metrics)
        log(f"{name}: step {steps}: " + "  ".join(
            f"{key} {curve[steps][key]:.3f}" for key in ("psnr", "fruit_psnr",
                                                        "background_psnr", "sharpness", "kl"))
            + f"  ({time.time() - started:.0f} s)")
    return model_dir, curve, generated


def main(_):
    tf.logging.set_verbosity(tf.logging.ERROR)
    started = time.time()
    minutes = FLAGS.minutes * (BUDGET_IMAGE_SIZE / FLAGS.img_size) ** 2
    pretrain_steps = max(1, round(minutes * PRETRAIN_STEPS_PER_MINUTE))
    finetune_steps = max(FLAGS.evaluations, round(minutes * FINETUNE_STEPS_PER_MINUTE))
    config = base_config(finetune_steps)
    if FLAGS.pretrained_model_dir:  # refused before anything is written
        checkpoints.check_warm_start(
            checkpoints.resolve_checkpoint(FLAGS.pretrained_model_dir), config,
            estimator.MODEL_VARIABLES_REGEX)
        pretrain_steps = checkpoints.global_step_of(FLAGS.pretrained_model_dir)
    output_dir = os.path.abspath(FLAGS.output_dir)
    os.makedirs(output_dir, exist_ok=True)

    def log(text):
        print(f"[{time.time() - started:5.0f} s] {text}", flush=True)

    root = data_root(output_dir)
    start = ""
    if pretrains():
        start = f"{pretrain_steps} pretraining and"
    elif FLAGS.pretrained_model_dir:
        start = f"from {FLAGS.pretrained_model_dir} (step {pretrain_steps}),"
    log(f"data in {root}; {start} {finetune_steps} fine-tuning steps, "
        f"{FLAGS.preset} preset, {FLAGS.img_size} px, {config.precision}")
    scenes = load_scenes("still_life", root, config.context_size, FLAGS.eval_scenes,
                         image_size=FLAGS.img_size, seed=FLAGS.seed)
    metrics = evaluation.ImageMetrics(FLAGS.img_size)
    baselines = {name: {key: value["mean"] for key, value in
                        evaluation.summarise(values).items()}
                 for name, values in evaluation.evaluate_baselines(scenes, metrics).items()}
    models = os.path.join(output_dir, "models")
    pretrained = FLAGS.pretrained_model_dir or os.path.join(models, "pretrained")
    if pretrains():
        train(config.annealed_over(pretrain_steps), root, "rooms", pretrained,
              pretrain_steps)
        log(f"pretrained {pretrain_steps} steps on rooms")
    result = {"data_dir": root, "dataset": "still_life", "image_size": FLAGS.img_size,
              "seed": FLAGS.seed, "num_scenes": int(len(scenes["target"])),
              "pretrained_model_dir": pretrained, "pretrain_steps": pretrain_steps,
              "finetune_steps": finetune_steps,
              "config": json.loads(config.to_json()), "baselines": baselines,
              "models": {}, "metrics": {}}
    generated = {}
    for name in FLAGS.variants:
        model_dir, curve, generated[name] = run_variant(
            name, config, root, models, pretrained, finetune_steps, scenes, metrics, log)
        result["models"][name] = model_dir
        result["metrics"][name] = {str(step): values for step, values in curve.items()}
    result["seconds"] = time.time() - started
    evaluation.write_json(result, os.path.join(output_dir, "quality.json"))
    plot_curves(result["metrics"], result["baselines"], CURVES,
                f"{result['num_scenes']} held-out still lifes, {result['image_size']} px, "
                f"seed {result['seed']}", os.path.join(output_dir, "curves.png"))
    shown = range(min(GRID_SCENES, len(scenes["target"])))
    grid = images.grid([[scenes["context_frames"][i][0], scenes["target"][i]]
                        + [generated[name][i] for name in FLAGS.variants] for i in shown],
                       column_labels=["context 1", "target", *FLAGS.variants],
                       scale=max(1, 96 // FLAGS.img_size))
    images.save_png(grid, os.path.join(output_dir, "grid.png"))

    columns = ("psnr", "fruit_psnr", "background_psnr", "sharpness", "ssim", "mse")
    print(f"\nafter {finetune_steps} fine-tuning steps, {result['num_scenes']} held-out "
          f"still lifes ({result['seconds'] / 60:.1f} min in all):")
    print(f"{'':<26}" + "".join(f"{c:>16}" for c in columns))
    rows = [(name, curve[finetune_steps]) for name, curve in
            ((n, {int(k): v for k, v in c.items()}) for n, c in result["metrics"].items())]
    rows += [(f"baseline: {name}", values) for name, values in baselines.items()]
    for label, values in rows:
        print(f"{label:<26}" + "".join(f"{values.get(c, float('nan')):>16.4f}"
                                       for c in columns))
    for name in ("quality.json", "curves.png", "grid.png"):
        print(f"{name}: {os.path.join(output_dir, name)}")


if __name__ == "__main__":
    cli_flags.run_main(main, "benchmark_quality")
