"""The whole product on one machine: pretrain, convert photos, fine-tune,
compare with training from scratch, evaluate, render.

    make demo                      # generated data, minutes on 2 CPU cores
    python scripts/demo.py --output_dir out \\
        --rooms_data_dir /data/gqn --rooms_dataset rooms_ring_camera \\
        --fruit_zip fruit_stills_dataset.zip --preset paper --img_size 64 \\
        --pretrain_steps 2000000 --finetune_steps 20000 \\
        --train_flags=--use_tpu,--tpu=my-tpu     # the real thing

Every stage runs the package's own command line in a fresh process, exactly
as a user would type it, and stops the demo if that command fails.
"""
import functools
import json
import os
import time

from gqn import startup

startup.start_command()  # TensorFlow quiet and in graph mode, before it loads

from absl import flags  # noqa: E402

from gqn import cli_flags  # noqa: E402
from scripts.stages import run_stage  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("output_dir", "demo_output", "Everything the demo writes.")
flags.DEFINE_string("rooms_data_dir", None, "Pretrain on these records instead "
                    "of generated rooms (with --rooms_dataset).")
flags.DEFINE_string("rooms_dataset", "rooms", "Dataset name for pretraining.")
flags.DEFINE_string("fruit_zip", None, "The fruit still-life zip (or your "
                    "photos' zip); default: a generated look-alike.")
flags.DEFINE_integer("num_room_scenes", 800, "Generated training rooms.")
flags.DEFINE_integer("num_still_life_scenes", 400, "Generated still-life scenes "
                     "(a fifth of them held out).")
flags.DEFINE_string("preset", "tiny", "Model size preset (tiny, small, paper).")
flags.DEFINE_integer("img_size", 32, "Image side for every stage.")
flags.DEFINE_integer("batch_size", 16, "Training batch size.")
flags.DEFINE_integer("pretrain_steps", 1000, "Pretraining steps.")
flags.DEFINE_integer("finetune_steps", 400, "Fine-tuning steps (and the same "
                     "for the from-scratch comparison).")
flags.DEFINE_string("precision", "bfloat16", "Compute precision of the networks "
                    "(falls back to float32, saying so, where the CPU lacks bfloat16).")
flags.DEFINE_list("train_flags", [], "Extra flags for every training run, "
                  "e.g. --use_tpu,--tpu=NAME.")
flags.DEFINE_integer("eval_scenes", 32, "Test scenes evaluated.")


def main(_):
    out = os.path.abspath(FLAGS.output_dir)
    stage = functools.partial(run_stage, os.path.join(out, "logs"))
    data = os.path.join(out, "data")
    models = os.path.join(out, "models")
    started = time.time()
    model_flags = ["--preset", FLAGS.preset, "--img_size", FLAGS.img_size,
                   "--batch_size", FLAGS.batch_size, "--precision", FLAGS.precision,
                   *FLAGS.train_flags]

    rooms_root, rooms = FLAGS.rooms_data_dir, FLAGS.rooms_dataset
    if rooms_root is None:
        rooms_root = data
        stage("1: generate rooms", "-m", "data_provider.synthetic", "--output_dir", data,
              "--preset", "rooms", "--name", rooms, "--num_train_scenes",
              FLAGS.num_room_scenes, "--num_test_scenes", 100, "--image_size",
              FLAGS.img_size, "--overwrite")
    stage("2: pretrain", "train_gqn_draw.py", "--data_dir", rooms_root, "--dataset",
          rooms, "--model_dir", os.path.join(models, "pretrained"), *model_flags,
          "--max_steps", FLAGS.pretrain_steps, "--anneal_steps", FLAGS.pretrain_steps,
          "--log_every_steps", 100, "--save_checkpoints_steps", 500,
          "--eval_steps", 5, "--debug")

    fruit_zip = FLAGS.fruit_zip
    if fruit_zip is None:
        fruit_zip = os.path.join(out, "fruit_stills_dataset.zip")
        stage("3: generate still-life photos", "-m", "data_provider.synthetic",
              "--output_dir", os.path.join(out, "generated"), "--preset", "still_life",
              "--name", "still_life", "--num_train_scenes", FLAGS.num_still_life_scenes,
              "--num_test_scenes", 1, "--zip", fruit_zip, "--overwrite")
    stage("4: convert photos", "convert_fruit_stills.py", "--input", fruit_zip,
          "--output_dir", data, "--name", "fruit_stills", "--image_size",
          FLAGS.img_size, "--test_fraction", 0.2, "--overwrite")

    fruit = ["--data_dir", data, "--dataset", "fruit_stills", "--max_steps",
             FLAGS.finetune_steps, "--anneal_steps", FLAGS.finetune_steps,
             "--log_every_steps", 50, "--eval_steps", 5, "--save_checkpoints_steps", 500]
    stage("5: fine-tune", "train_gqn_draw.py", *fruit, "--model_dir",
          os.path.join(models, "finetuned"), "--warm_start_from",
          os.path.join(models, "pretrained"), *FLAGS.train_flags)
    stage("6: from scratch", "train_gqn_draw.py", *fruit, "--model_dir",
          os.path.join(models, "scratch"), *model_flags)

    evaluation = os.path.join(out, "eval")
    stage("7: evaluate", "eval_gqn.py", "--data_dir", data, "--dataset", "fruit_stills",
          "--model_dir", os.path.join(models, "finetuned"), "--compare_model_dir",
          os.path.join(models, "scratch"), "--output_dir", evaluation,
          "--num_scenes", FLAGS.eval_scenes)
    render = os.path.join(out, "render")
    stage("8: render", "scripts/render.py", "--model_dir",
          os.path.join(models, "finetuned"), "--data_dir", data, "--dataset",
          "fruit_stills", "--output_dir", render)

    with open(os.path.join(evaluation, "metrics.json")) as handle:
        metrics = json.load(handle)
    rows = [("fine-tuned", metrics["model"]), ("from scratch", metrics["compare_model"]),
            *[(f"baseline {k}", v) for k, v in metrics["baselines"].items()]]
    print(f"\n=== results on {metrics['num_scenes']} held-out still-life scenes "
          f"({time.time() - started:.0f} s in all)")
    print(f"{'':<28}{'ELBO (nats)':>12}{'MSE':>9}{'PSNR':>8}{'SSIM':>7}")
    for label, values in rows:
        elbo = f"{values['elbo']['mean']:.0f}" if "elbo" in values else "-"
        print(f"{label:<28}{elbo:>12}{values['mse']['mean']:>9.4f}"
              f"{values['psnr']['mean']:>8.2f}{values['ssim']['mean']:>7.3f}")
    print("\npictures:")
    for path in [os.path.join(evaluation, "grid.png"),
                 os.path.join(render, "flyaround.gif"), os.path.join(render, "strip.png"),
                 os.path.join(data, "fruit_stills", "preview.png")]:
        print(f"  {path}")
    print(f"TensorBoard: tensorboard --logdir {models}")


if __name__ == "__main__":
    cli_flags.run_main(main, "demo")
