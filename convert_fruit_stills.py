"""Converts the fruit still-life photos, or your own posed photos, into GQN
records (DeepMind's gqn-datasets layout) for fine-tuning.

  python convert_fruit_stills.py --input fruit_stills_dataset.zip \
      --output_dir data [--name fruit_stills] [--image_size 64] \
      [--test_fraction 0.1] [--seed 0] [--overwrite] \
      [--manifest poses.csv --angle_unit degrees] [--order name|exif_time]

Without --manifest, SceneN folders of 12 or 8 photos take the fruit set's
fixed poses. With --manifest, a CSV (scene, image, x, y, z, yaw, pitch, or the
7-d form x, y, z, sin_yaw, cos_yaw, sin_pitch, cos_pitch) gives every photo
its pose.
"""
import sys

from absl import app, flags

from data_provider import fruit_stills
from data_provider.photo_layouts import ANGLE_UNITS, ORDER_NAME, PHOTO_ORDERS

flags.DEFINE_string("input", None, "The fruit_stills_dataset.zip, or a folder "
                    "or zip of your own photos.")
flags.DEFINE_string("output_dir", None, "Records go to <output_dir>/<name>/.")
flags.DEFINE_string("name", "fruit_stills", "Dataset name (output sub-folder).")
flags.DEFINE_integer("image_size", 64, "Side of the square output frames.")
flags.DEFINE_float("test_fraction", 0.1, "Fraction of scenes held out for test.")
flags.DEFINE_integer("seed", 0, "Seed of the train/test scene split.")
flags.DEFINE_boolean("overwrite", False, "Replace an existing <output_dir>/<name>.")
flags.DEFINE_string("manifest", None, "CSV of scene, image and pose per photo, "
                    "for your own photos; without it the fruit preset is used.")
flags.DEFINE_enum("angle_unit", "degrees", ANGLE_UNITS,
                  "Unit of the manifest's yaw and pitch columns.")
flags.DEFINE_enum("order", ORDER_NAME, PHOTO_ORDERS, "Fruit preset: order in "
                  "which a scene's photos take the layout's poses.")
flags.DEFINE_integer("workers", 0, "Worker processes; 0 means one per CPU core.")
flags.mark_flags_as_required(["input", "output_dir"])
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    options = fruit_stills.ConversionOptions(
        input_path=FLAGS.input, output_dir=FLAGS.output_dir, name=FLAGS.name,
        image_size=FLAGS.image_size, test_fraction=FLAGS.test_fraction,
        seed=FLAGS.seed, overwrite=FLAGS.overwrite, manifest=FLAGS.manifest,
        angle_unit=FLAGS.angle_unit, order=FLAGS.order, workers=FLAGS.workers)
    try:
        summary = fruit_stills.convert(options)
    except fruit_stills.InputError as error:
        print(f"convert_fruit_stills: error: {error}", file=sys.stderr)
        return 1
    print(summary.format())
    return 0


def run():
    """Console-script entry point (gqn-convert-fruit-stills)."""
    app.run(main)


if __name__ == "__main__":
    run()
