"""Your own photos, end to end: pose one real capture by structure from
motion, fine-tune a pretrained GQN on it with views held out, and compare
the held-out views it imagines with the truth, the four training-free
baselines (nearest view, context mean, plane sweep, and the reprojection:
the colour path before training) and the same model trained from scratch,
on average and per view, beside how far each view is from its nearest
frame (views in gaps of the walk come out worst).

    python scripts/capture_experiment.py --output_dir capture_output
    python scripts/capture_experiment.py --photos my_capture/ \\
        --pretrained_model_dir demo_output/models/pretrained --finetune_steps 500
    python scripts/capture_experiment.py --photos walk_around.mp4 --output_dir clip_output

By default the capture is the real apple in ../shared/data/real/apple and
the pretrained model is trained here first on generated rooms (as `make
demo` does); the two models trained on the capture leave out the
generator's correction of the reprojected context, learn the colour
path's depth choice from the target and render committed to a depth
(CAPTURE_HPARAMS). Every
stage runs the package's own command line. Prints the
table of the held-out views and where the pictures are (the converter's
preview with the SfM cameras and points, the evaluation grid, the render
strip with each held-out photo beside the view rendered at its pose).
"""
import functools
import json
import os

from gqn import startup

startup.quiet_tensorflow_log()  # before TensorFlow is imported (the per-view table's module)

from absl import flags  # noqa: E402

from gqn import cli_flags  # noqa: E402
from gqn.evaluation import per_view_table  # noqa: E402
from scripts.curves import plot_curves  # noqa: E402
from scripts.stages import REPO, run_stage  # noqa: E402

# The fine-tuned and the from-scratch model learn one capture from its few
# views, where the generator's correction of the reprojected context learns
# those views' detail by heart (gqn.config.GQNConfig.colour_correction); and
# their renderings commit to a depth (rendered_depth_focus): on the apple's
# six seeds that brought sharpness from 0.78-0.84 to 0.87-0.93 for 0.12 dB,
# while on generated still lifes, with no view near the query, it cost
# 0.24 dB and drew edges sharper than the photos' (docs/benchmarks.md).
# They also train the colour path's depth choice on the target directly
# (depth_loss_weight): on the apple at 64 px both models gained 0.35-0.72
# dB on two seeds; at 32 px, over six seeds, the model from scratch 0.31
# and the fine-tuned one -0.13 (within the seeds' spread); on generated
# still lifes it cost the fruit 2.4 dB, so the presets leave it off.
CAPTURE_HPARAMS = ["colour_correction=false", "rendered_depth_focus=2",
                   "depth_loss_weight=1"]
CURVES = (("psnr", "PSNR (dB)"), ("sharpness", "sharpness (1 = as sharp as the truth)"))

FLAGS = flags.FLAGS
flags.DEFINE_string("photos", os.path.join(REPO, "..", "shared", "data", "real", "apple"),
                    "A folder (or zip) of one capture's photos, or a video clip "
                    "(.mp4, .mov, .m4v; the 'video' extra), whose sharpest "
                    "frames are taken.")
flags.DEFINE_string("output_dir", "capture_output", "Everything the experiment writes.")
flags.DEFINE_string("pretrained_model_dir", None, "Fine-tune from this model_dir "
                    "(default: pretrain one on generated rooms first).")
flags.DEFINE_integer("holdout_views", 4, "Views kept out of training and asked for.")
flags.DEFINE_integer("context_size", 5, "Context views per query.")
flags.DEFINE_integer("img_size", 32, "Image side (the pretrained model's).")
flags.DEFINE_integer("pretrain_steps", 500, "Pretraining steps, without "
                     "--pretrained_model_dir.")
flags.DEFINE_integer("finetune_steps", 300, "Fine-tuning steps (and the same from "
                     "scratch).")
flags.DEFINE_string("precision", "bfloat16", "Compute precision (float32 where the "
                    "CPU lacks bfloat16).")
flags.DEFINE_integer("context_pool", None, "Training draws each query's context "
                     "among this many nearest views (train_gqn_draw.py's flag).")
flags.DEFINE_integer("seed", 0, "Seed of the three trainings (view draws, initial "
                     "weights, noise, the order of the examples). Other seeds "
                     "show the spread of the results (docs/benchmarks.md).")
flags.DEFINE_integer("evaluations", 3, "Evaluate the fine-tuned model this many "
                     "times along its fine-tuning (curves.png: PSNR and sharpness "
                     "against step, beside the baselines).")
flags.DEFINE_list("finetune_flags", [], "Extra flags of the fine-tuning only, e.g. "
                  "--adversarial_weight=5,--feature_matching_weight=10 (sharpening).")
flags.DEFINE_list("hparams", [], "GQNConfig fields (key=value) of the pretrained "
                  "and the from-scratch model, e.g. sweep_depths=16 (the two "
                  "trained on the capture also get "
                  f"{','.join(CAPTURE_HPARAMS)}).")


def main(_):
    out = os.path.abspath(FLAGS.output_dir)
    stage = functools.partial(run_stage, os.path.join(out, "logs"))
    data, models = os.path.join(out, "data"), os.path.join(out, "models")
    model_flags = ["--preset", "tiny", "--img_size", FLAGS.img_size, "--precision",
                   FLAGS.precision, "--context_size", FLAGS.context_size]
    pretrain_hparams = ["--hparams", ",".join(FLAGS.hparams)] if FLAGS.hparams else []
    capture_hparams = ["--hparams", ",".join(FLAGS.hparams + CAPTURE_HPARAMS)]
    pretrained = FLAGS.pretrained_model_dir
    if pretrained is None:
        pretrained = os.path.join(models, "pretrained")
        stage("1: generate rooms", "-m", "data_provider.synthetic", "--output_dir", data,
              "--preset", "rooms", "--name", "rooms", "--num_train_scenes", 800,
              "--num_test_scenes", 50, "--image_size", FLAGS.img_size, "--overwrite")
        stage("2: pretrain on rooms", "train_gqn_draw.py", "--data_dir", data,
              "--dataset", "rooms", "--model_dir", pretrained, *model_flags,
              *pretrain_hparams, "--seed", FLAGS.seed,
              "--max_steps", FLAGS.pretrain_steps, "--anneal_steps", FLAGS.pretrain_steps,
              "--save_checkpoints_steps", FLAGS.pretrain_steps, "--eval_steps", 5)
    stage("3: pose the capture (structure from motion) and convert",
          "convert_fruit_stills.py", "--input", FLAGS.photos, "--output_dir", data,
          "--name", "capture", "--poses", "sfm", "--holdout_views", FLAGS.holdout_views,
          "--context_size", FLAGS.context_size, "--image_size", FLAGS.img_size,
          "--overwrite")
    train = ["--data_dir", data, "--dataset", "capture", "--log_every_steps", 50,
             "--eval_steps", 1, "--batch_size", 8, "--anneal_steps", FLAGS.finetune_steps,
             "--seed", FLAGS.seed,
             *(["--context_pool", FLAGS.context_pool] if FLAGS.context_pool else [])]
    finetuned, scratch = os.path.join(models, "finetuned"), os.path.join(models, "scratch")
    evaluation = os.path.join(out, "eval")
    curve = {}
    for point in range(1, FLAGS.evaluations + 1):
        steps = round(FLAGS.finetune_steps * point / FLAGS.evaluations)
        stage(f"4: fine-tune on the capture, to step {steps}", "train_gqn_draw.py",
              *train, "--max_steps", steps, "--save_checkpoints_steps", steps,
              "--model_dir", finetuned, "--warm_start_from", pretrained,
              "--precision", FLAGS.precision, "--hparams", ",".join(CAPTURE_HPARAMS),
              *FLAGS.finetune_flags)
        if point < FLAGS.evaluations:
            at_step = os.path.join(evaluation, f"step_{steps}")
            stage(f"4: evaluate at step {steps}", "eval_gqn.py", "--data_dir", data,
                  "--dataset", "capture", "--model_dir", finetuned, "--output_dir",
                  at_step, "--num_scenes", FLAGS.holdout_views)
            curve[steps] = _means(_metrics(at_step)["model"])
    stage("5: the same from scratch", "train_gqn_draw.py", *train, "--model_dir",
          scratch, "--max_steps", FLAGS.finetune_steps, "--save_checkpoints_steps",
          FLAGS.finetune_steps, *model_flags, *capture_hparams)
    stage("6: evaluate the held-out views", "eval_gqn.py", "--data_dir", data,
          "--dataset", "capture", "--model_dir", finetuned, "--compare_model_dir",
          scratch, "--output_dir", evaluation, "--num_scenes", FLAGS.holdout_views)
    metrics = _metrics(evaluation)
    curve[FLAGS.finetune_steps] = _means(metrics["model"])
    pictures = []
    if FLAGS.evaluations > 1:
        pictures.append(os.path.join(out, "curves.png"))
        plot_curves({"fine-tuned": curve},
                    {name: _means(values) for name, values in metrics["baselines"].items()},
                    CURVES, f"{metrics['num_scenes']} held-out views of "
                    f"{os.path.basename(os.path.normpath(FLAGS.photos))}, "
                    f"{FLAGS.img_size} px", pictures[0])
    render = os.path.join(out, "render")
    stage("7: render", "scripts/render.py", "--model_dir", finetuned, "--data_dir", data,
          "--dataset", "capture", "--output_dir", render)

    rows = [("fine-tuned", metrics["model"]), ("from scratch", metrics["compare_model"]),
            *[(f"baseline {name}", values) for name, values in metrics["baselines"].items()]]
    print(f"\n=== {metrics['num_scenes']} held-out views of {FLAGS.photos}")
    print(f"{'':<28}{'MSE':>16}{'PSNR':>16}{'SSIM':>9}{'sharpness':>11}")
    for label, values in rows:
        print(f"{label:<28}{values['mse']['mean']:>9.4f} ± {values['mse']['stderr']:<5.4f}"
              f"{values['psnr']['mean']:>9.2f} ± {values['psnr']['stderr']:<5.2f}"
              f"{values['ssim']['mean']:>9.3f}{values['sharpness']['mean']:>11.3f}")
    print("\n" + per_view_table(metrics["per_scene"], labels=("fine-tuned", "scratch")))
    print("\npictures:")
    for path in [os.path.join(data, "capture", "preview.png"),
                 os.path.join(evaluation, "grid.png"), os.path.join(render, "strip.png"),
                 os.path.join(render, "flyaround.gif"), *pictures]:
        print(f"  {path}")


def _metrics(evaluation_dir):
    with open(os.path.join(evaluation_dir, "metrics.json")) as handle:
        return json.load(handle)


def _means(summary):
    return {name: values["mean"] for name, values in summary.items()}


if __name__ == "__main__":
    cli_flags.run_main(main, "capture_experiment")
