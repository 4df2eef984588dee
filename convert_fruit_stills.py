"""Converts the fruit still-life photos, or your own posed photos, into GQN
records (DeepMind's gqn-datasets layout) for fine-tuning.

  python convert_fruit_stills.py --input fruit_stills_dataset.zip \\
      --output_dir data [--name fruit_stills] [--image_size 64] \\
      [--test_fraction 0.1] [--seed 0] [--overwrite] [--order name|exif_time]
  python convert_fruit_stills.py --input my_capture/ --output_dir data \\
      --name apple --poses sfm --holdout_views 4
  python convert_fruit_stills.py --input captures.zip --output_dir data \\
      --name mine --poses transforms|colmap

Where the poses come from (--poses):
  fruit       SceneN folders of 12 or 8 photos take the fruit set's fixed
              pose tables (the default).
  manifest    a CSV (--manifest; given alone it implies this): scene, image,
              x, y, z, yaw, pitch (DeepMind's convention: z up, yaw turning
              clockwise seen from above, so a camera at yaw 0 looks along +x
              and one at yaw 90 degrees along -y; a camera above the object
              has negative pitch), or the 7-d form x, y, z, sin_yaw, cos_yaw,
              sin_pitch, cos_pitch.
  transforms  every folder holding a NeRF transforms.json (instant-ngp,
              nerfstudio, capture apps) is a scene.
  colmap      every folder holding a COLMAP sparse model (sparse/0/, sparse/
              or the folder itself; .txt or .bin) is a scene, its photos in
              images/ or beside the model.
  sfm         estimate the poses from the photos with COLMAP (pycolmap, the
              optional extra: pip install '.[sfm]'); each folder of photos
              is a scene. Models are kept in --sfm_dir and reused. A video
              clip (or a folder of clips, one scene each; PyAV, the optional
              extra: pip install '.[video]') is posed this way: --frames
              frames are kept, spread evenly over the clip, each the
              sharpest of its stretch, turned upright as the phone's
              rotation says.
The input is one capture (a folder of photos), or a folder or zip of scene
folders. Imported and estimated cameras are normalised into one GQN frame:
the object at the origin, z up, mean camera distance --radius, DeepMind's
yaw and pitch; each photo is rotated level (the pose has no roll) before the
crop. --holdout_views K keeps K views of every scene out of training: the
test split asks for them as queries (what one capture needs).

Every record also carries its frames' field of view (across the square
frame as written) and its scene's depth range, and dataset_info.json's
scene_cameras says where each came from. The field of view: from
--focal_length_35mm if given, else the pose file's camera (transforms.json
fl_x or camera_angle_x, COLMAP cameras) or the camera SfM estimated, else
the photo's EXIF (FocalLengthIn35mmFilm, or FocalLength with the sensor's
pixel pitch), else an assumed phone main camera (26 mm equivalent), which
the summary says. The depth range: the depths of the model's 3-D points
the frames see (COLMAP, SfM), else the camera distances.
"""
import sys

from gqn import startup

startup.quiet_tensorflow_log()  # before TensorFlow is imported

from absl import app, flags  # noqa: E402

from data_provider import fruit_stills, video_source  # noqa: E402
from data_provider.camera_poses.frame import DEFAULT_RADIUS  # noqa: E402
from data_provider.photo_layouts import ANGLE_UNITS, ORDER_NAME, PHOTO_ORDERS  # noqa: E402
from gqn import cli_flags  # noqa: E402

flags.DEFINE_string("input", None, "The fruit_stills_dataset.zip, a folder or zip "
                    "of your own photos, or a video clip (.mp4, .mov, .m4v) or a folder "
                    "of clips (one scene each; the optional 'video' extra).")
flags.DEFINE_string("output_dir", None, "Records go to <output_dir>/<name>/.")
flags.DEFINE_string("name", "fruit_stills", "Dataset name (output sub-folder).")
flags.DEFINE_integer("image_size", 64, "Side of the square output frames.")
flags.DEFINE_float("test_fraction", 0.1, "Fraction of scenes held out for test.")
flags.DEFINE_integer("seed", 0, "Seed of the train/test scene split.")
flags.DEFINE_boolean("overwrite", False, "Replace an existing <output_dir>/<name>.")
flags.DEFINE_enum("poses", "fruit", fruit_stills.POSE_SOURCES,
                  "Where each photo's camera pose comes from (see above).")
flags.DEFINE_string("manifest", None, "CSV of scene, image and pose per photo "
                    "(--poses manifest); yaw in DeepMind's clockwise convention.")
flags.DEFINE_enum("fallback", "none", fruit_stills.FALLBACKS,
                  "--poses sfm: 'fruit' gives SceneN folders that do not register "
                  "the fruit table's poses instead of skipping them.")
flags.DEFINE_integer("holdout_views", 0, "Keep this many views of every scene "
                     "out of training; the test split evaluates them as queries "
                     "with the scene's other views as context (instead of "
                     "--test_fraction). Needed for a single capture.")
flags.DEFINE_integer("context_size", 5, "The context size you will train with: "
                     "scenes with fewer than context_size + 1 views (plus the "
                     "held-out ones) are reported and skipped.")
flags.DEFINE_float("radius", DEFAULT_RADIUS, "Imported and estimated poses: mean "
                   "camera distance from the object in the GQN frame (the fruit "
                   "table's is 1.22).")
flags.DEFINE_string("sfm_dir", None, "--poses sfm: where the COLMAP models are "
                    "kept, <sfm_dir>/<scene>/sparse/0 (default: "
                    "<output_dir>/<name>_sfm); a rerun reuses them, and so does "
                    "--poses colmap with the same --sfm_dir.")
flags.DEFINE_integer("sfm_max_image_size", 640, "--poses sfm: long side of the "
                     "downscaled copies COLMAP sees.")
flags.DEFINE_float("focal_length_35mm", None, "The camera's 35 mm-equivalent focal "
                   "length in mm (a phone's main camera is about 26), for photos "
                   "whose EXIF does not state it: it sets every frame's field of "
                   "view (over any other source) and is --poses sfm's focal-length "
                   "prior.")
flags.DEFINE_integer("frames", video_source.DEFAULT_FRAMES, "Video input: frames "
                     "kept of each clip, spread evenly over it, each the sharpest of "
                     "its stretch of the clip.")
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
        angle_unit=FLAGS.angle_unit, order=FLAGS.order, workers=FLAGS.workers,
        poses=FLAGS.poses, fallback=FLAGS.fallback, holdout_views=FLAGS.holdout_views,
        context_size=FLAGS.context_size, radius=FLAGS.radius, sfm_dir=FLAGS.sfm_dir,
        sfm_max_image_size=FLAGS.sfm_max_image_size,
        focal_length_35mm=FLAGS.focal_length_35mm, frames=FLAGS.frames)
    try:
        summary = fruit_stills.convert(options)
    except fruit_stills.InputError as error:
        print(f"convert_fruit_stills: error: {error}", file=sys.stderr)
        return 1
    print(summary.format())
    return 0


def run():
    """Console-script entry point (gqn-convert-fruit-stills)."""
    startup.use_graph_mode()
    cli_flags.show_flags_in_help(__name__)
    app.run(main)


if __name__ == "__main__":
    run()
