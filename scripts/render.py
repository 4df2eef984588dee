"""Render a fly-around of one scene with a trained GQN.

The context is either a test scene from records or your own photos:

    python scripts/render.py --model_dir M --output_dir O \\
        --data_dir D --dataset fruit_stills [--scene_index 0]
    python scripts/render.py --model_dir M --output_dir O \\
        --photos_dir P --poses_csv poses.csv [--scene Scene1]

poses.csv has the converter's manifest columns: scene, image (path under
--photos_dir), x, y, z, yaw, pitch (angles in --angle_unit); each photo's
field of view comes from its EXIF as the converter reads it (or from
--focal_length_35mm, else a phone's 26 mm is assumed). The camera flies
along the ring fitted to the context cameras. Writes O/flyaround.gif
and O/strip.png (context views above, rendered views below). For a set
converted with held-out views (--holdout_views), the context comes from the
scene's training views and strip.png adds each held-out photo beside the
view rendered at its pose.
"""
import os

from gqn import startup

startup.quiet_tensorflow_log()  # before TensorFlow is imported

import numpy as np  # noqa: E402
from absl import flags  # noqa: E402

from data_provider.datasets import get_dataset_info  # noqa: E402
from data_provider.photo_layouts import read_manifest  # noqa: E402
from data_provider.photo_preprocess import convert_photo, cropped_field_of_view  # noqa: E402
from data_provider.scene_arrays import load_scenes  # noqa: E402
from data_provider.scene_cameras import view_focal  # noqa: E402
from data_provider.scene_geometry import depth_range_from_cameras  # noqa: E402
from gqn import cli_flags, images  # noqa: E402
from gqn.model import (CONTEXT_FIELD_OF_VIEW_KEY, DEPTH_RANGE_KEY,  # noqa: E402
                       QUERY_FIELD_OF_VIEW_KEY)
from gqn.poses import decode_poses_np, ring_around  # noqa: E402
from gqn.predictor import Predictor  # noqa: E402

# What a scene's context brings: everything but the query's features.
CONTEXT_KEYS = ("context_frames", "context_poses", CONTEXT_FIELD_OF_VIEW_KEY,
                DEPTH_RANGE_KEY)

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "Trained model_dir.")
flags.DEFINE_string("output_dir", None, "Where flyaround.gif and strip.png go.")
flags.DEFINE_string("data_dir", None, "Records root (with --dataset).")
flags.DEFINE_string("dataset", None, "Dataset name under --data_dir.")
flags.DEFINE_integer("scene_index", 0, "Which test scene (in the seeded order).")
flags.DEFINE_integer("context_size", None, "Context views from records "
                     "(default: the model's).")
flags.DEFINE_string("photos_dir", None, "Folder of your photos (with --poses_csv).")
flags.DEFINE_string("poses_csv", None, "Pose CSV: scene, image, x, y, z, yaw, pitch.")
flags.DEFINE_enum("angle_unit", "degrees", ["degrees", "radians"],
                  "Unit of yaw and pitch in --poses_csv.")
flags.DEFINE_string("scene", None, "Scene name in --poses_csv (default: the first).")
flags.DEFINE_float("focal_length_35mm", None, "With --photos_dir: your camera's "
                   "35 mm-equivalent focal length, where the photos' EXIF does "
                   "not state it (records state their own field of view).")
flags.DEFINE_integer("num_frames", 24, "Views along the ring.")
flags.DEFINE_integer("strip_frames", 8, "Rendered views shown in strip.png.")
flags.DEFINE_integer("seed", 0, "Noise seed (shared by every frame, so the "
                     "imagined scene stays the same as the camera moves).")
cli_flags.define_precision_flag()
flags.mark_flags_as_required(["model_dir", "output_dir"])


def context_from_records(image_size, context_size):
    """(context: the model's features of one test scene without its query,
    held-out photos and their raw poses, or None where the set holds no
    views out of training)."""
    # The test split yields one example per held-out view of each scene.
    held_out_views = get_dataset_info(FLAGS.dataset, FLAGS.data_dir).holdout_views
    per_scene = max(1, held_out_views)
    scenes = load_scenes(FLAGS.dataset, FLAGS.data_dir, context_size,
                         (FLAGS.scene_index + 1) * per_scene, image_size=image_size,
                         seed=FLAGS.seed)
    if len(scenes["target"]) < (FLAGS.scene_index + 1) * per_scene:
        raise ValueError(f"--scene_index {FLAGS.scene_index}: the test split has "
                         f"only {len(scenes['target']) // per_scene} scenes")
    first = FLAGS.scene_index * per_scene
    held_out = None
    if held_out_views:
        part = slice(first, first + per_scene)
        held_out = scenes["target"][part], decode_poses_np(scenes["query_pose"][part])
    context = {key: scenes[key][first] for key in CONTEXT_KEYS}
    context["context_poses"] = decode_poses_np(context["context_poses"])
    return context, held_out


def context_from_photos(image_size):
    rows = read_manifest(FLAGS.poses_csv, FLAGS.angle_unit)
    scene = FLAGS.scene or rows[0][1]
    chosen = [(image, pose) for _, name, image, pose in rows if name == scene]
    if not chosen:
        raise ValueError(f"scene {scene!r} is not in {FLAGS.poses_csv}")
    frames, angles, sources = [], [], set()
    for image, _ in chosen:
        path = os.path.join(FLAGS.photos_dir, image)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{FLAGS.poses_csv} names {image}, but {path} "
                                    "does not exist")
        with open(path, "rb") as handle:
            photo = convert_photo(image, handle.read(), image_size)
        frames.append(photo.pixels.astype(np.float32) / 255.0)
        focal = view_focal(None, photo, FLAGS.focal_length_35mm)
        angles.append(np.radians(cropped_field_of_view(
            focal.short_side_degrees(photo.photo_size), image_size)))
        sources.add(focal.source)
    raw_poses = np.stack([pose for _, pose in chosen])
    print(f"field of view of the frames: {np.degrees(np.mean(angles)):.2f} deg "
          f"({'; '.join(sorted(sources))})")
    return {"context_frames": np.stack(frames), "context_poses": raw_poses,
            CONTEXT_FIELD_OF_VIEW_KEY: np.float32(angles),
            DEPTH_RANGE_KEY: np.float32(depth_range_from_cameras(raw_poses[:, :3]))}


def render_at(predictor, context, raw_poses):
    """The views (N, H, W, 3) rendered at raw query poses (N, 5) from one
    scene's context, every one with the same noise seed (so the imagined
    scene stays the same as the camera moves); the query camera is the
    context's (their mean field of view)."""
    count = len(raw_poses)
    features = {key: np.repeat(value[None], count, axis=0)
                for key, value in context.items()}
    features["query_pose"] = raw_poses
    features[QUERY_FIELD_OF_VIEW_KEY] = np.full(
        count, context[CONTEXT_FIELD_OF_VIEW_KEY].mean(), np.float32)
    return predictor.render(features, np.full(count, FLAGS.seed))[:, 0]


def main(_):
    from_records = FLAGS.data_dir is not None and FLAGS.dataset is not None
    from_photos = FLAGS.photos_dir is not None and FLAGS.poses_csv is not None
    if from_records == from_photos:
        raise ValueError("give either --data_dir and --dataset, or --photos_dir "
                         "and --poses_csv")
    predictor = Predictor(FLAGS.model_dir, precision=FLAGS.precision)
    config = predictor.config
    held_out = None
    if from_records:
        context, held_out = context_from_records(
            config.image_size, FLAGS.context_size or config.context_size)
    else:
        context = context_from_photos(config.image_size)
    frames = context["context_frames"]
    count = FLAGS.num_frames
    rendered = render_at(predictor, context,
                         ring_around(context["context_poses"], FLAGS.num_frames))
    scale = max(1, 128 // config.image_size)
    gif = images.save_gif(list(rendered), os.path.join(FLAGS.output_dir,
                                                       "flyaround.gif"), scale=scale)
    shown = np.linspace(0, count - 1, min(FLAGS.strip_frames, count)).round().astype(int)
    rows, labels = [list(frames), [rendered[i] for i in shown]], ["context", "rendered"]
    if held_out is not None:
        photos, poses = held_out
        at_poses = render_at(predictor, context, poses)
        rows += [list(photos), list(at_poses)]
        labels += ["held out", "rendered"]
    strip = images.grid(rows, scale=max(1, 64 // config.image_size), row_labels=labels)
    png = images.save_png(strip, os.path.join(FLAGS.output_dir, "strip.png"))
    print(f"context views: {len(frames)}; rendered {count} views on the ring")
    print(f"fly-around: {gif}")
    print(f"strip:      {png}")


def run():
    startup.use_graph_mode()
    cli_flags.run_main(main, "render")


if __name__ == "__main__":
    run()
