"""Evaluate trained GQN model_dirs on a fixed, seeded set of test scenes.

    python eval_gqn.py --data_dir D --dataset fruit_stills --model_dir M \\
        --output_dir O [--num_scenes 64] [--context_size 5] \\
        [--compare_model_dir M2]

Writes O/metrics.json ({"model": {metric: {"mean", "stderr"}}, "baselines":
{"nearest_context", "context_mean", "plane_sweep", "reprojection"}, ...};
the baselines need no training, gqn/evaluation.py) and O/grid.png (context views |
target | generated | per-pixel spread over samples), and prints a table.
Sharpness is the generated view's mean |image gradient| over the target's
(1: as sharp as the truth, below 1 blurrier).
"""
import os

from gqn import startup

startup.quiet_tensorflow_log()  # before TensorFlow is imported

import tensorflow.compat.v1 as tf  # noqa: E402
from absl import flags  # noqa: E402

from data_provider.scene_arrays import load_scenes  # noqa: E402
from gqn import cli_flags, evaluation  # noqa: E402
from gqn.config import GQNConfig, config_path  # noqa: E402

FLAGS = flags.FLAGS
cli_flags.define_data_flags()
flags.DEFINE_string("model_dir", None, "Trained model_dir to evaluate.")
flags.DEFINE_string("compare_model_dir", None, "A second model_dir evaluated on "
                    "the same scenes and noise (e.g. from scratch vs fine-tuned).")
flags.DEFINE_string("output_dir", None, "Where metrics.json and grid.png go.")
flags.DEFINE_integer("num_scenes", 64, "Test scenes evaluated (fewer if the "
                     "split has fewer).")
flags.DEFINE_integer("context_size", None, "Context views per scene (default: "
                     "the model's training context size).")
flags.DEFINE_integer("num_samples", 4, "Samples per scene for the spread image.")
cli_flags.define_precision_flag()
flags.mark_flags_as_required(["data_dir", "model_dir", "output_dir"])


def main(_):
    model_dirs = [FLAGS.model_dir] + ([FLAGS.compare_model_dir]
                                      if FLAGS.compare_model_dir else [])
    for model_dir in model_dirs:
        if not tf.io.gfile.exists(config_path(model_dir)):
            raise FileNotFoundError(f"{config_path(model_dir)} not found: "
                                    f"{model_dir} is not a trained model_dir")
    config = GQNConfig.load(config_path(FLAGS.model_dir))
    scenes = load_scenes(FLAGS.dataset, FLAGS.data_dir,
                         FLAGS.context_size or config.context_size,
                         FLAGS.num_scenes, image_size=config.image_size,
                         seed=FLAGS.seed)
    _, table = evaluation.run_evaluation(model_dirs, scenes, FLAGS.output_dir,
                                         num_samples=FLAGS.num_samples,
                                         precision=FLAGS.precision)
    print(f"{len(scenes['target'])} test scenes of {FLAGS.dataset}:")
    print(table)
    print(f"metrics: {os.path.join(FLAGS.output_dir, 'metrics.json')}")
    print(f"grid:    {os.path.join(FLAGS.output_dir, 'grid.png')}")


def run():
    startup.use_graph_mode()
    cli_flags.run_main(main, "eval_gqn")


if __name__ == "__main__":
    run()
