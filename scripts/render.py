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
along the ring fitted to the scene's cameras, and every view it renders
takes as context the scene's views nearest to its pose (the reader's rule,
gqn.poses.camera_distances), so a walk-around is rendered from the photos
that see the side it looks at. Writes O/flyaround.gif and O/strip.png (the
scene's views above, rendered views below). For a set converted with
held-out views (--holdout_views), the views are the scene's training views
and strip.png adds each held-out photo beside the view rendered at its
pose, from the same context evaluation gives it.
"""
import os

from gqn import startup

startup.quiet_tensorflow_log()  # before TensorFlow is imported

import numpy as np  # noqa: E402
from absl import flags  # noqa: E402

from data_provider.datasets import get_dataset_info  # noqa: E402
from data_provider.photo_layouts import read_manifest  # noqa: E402
from data_provider.photo_preprocess import convert_photo, cropped_field_of_view  # noqa: E402
from data_provider.scene_arrays import (SCENE_VIEW_KEYS, load_scenes,  # noqa: E402
                                        nearest_contexts)
from data_provider.scene_cameras import view_focal  # noqa: E402
from data_provider.scene_geometry import depth_range_from_cameras  # noqa: E402
from gqn import cli_flags, images  # noqa: E402
from gqn.model import CONTEXT_FIELD_OF_VIEW_KEY, DEPTH_RANGE_KEY  # noqa: E402
from gqn.poses import decode_poses_np, ring_around  # noqa: E402
from gqn.predictor import Predictor  # noqa: E402


FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "Trained model_dir.")
flags.DEFINE_string("output_dir", None, "Where flyaround.gif and strip.png go.")
flags.DEFINE_string("data_dir", None, "Records root (with --dataset).")
flags.DEFINE_string("dataset", None, "Dataset name under --data_dir.")
flags.DEFINE_integer("scene_index", 0, "Which test scene (in the seeded order).")
flags.DEFINE_integer("context_size", None, "Context views per rendered view, "
                     "the scene's views nearest to its pose (default: the model's).")
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


def views_from_records(image_size):
    """(views: all the views of one test scene but its query, with the
    model's per-view features, held-out photos and their raw poses, or None
    where the set holds no views out of training)."""
    info = get_dataset_info(FLAGS.dataset, FLAGS.data_dir)
    # The test split yields one example per held-out view of each scene,
    # with a context of up to every other training view.
    per_scene = max(1, info.holdout_views)
    scenes = load_scenes(FLAGS.dataset, FLAGS.data_dir, info.min_views - 1,
                         (FLAGS.scene_index + 1) * per_scene, image_size=image_size,
                         seed=FLAGS.seed)
    if len(scenes["target"]) < (FLAGS.scene_index + 1) * per_scene:
        raise ValueError(f"--scene_index {FLAGS.scene_index}: the test split has "
                         f"only {len(scenes['target']) // per_scene} scenes")
    first = FLAGS.scene_index * per_scene
    held_out = None
    if info.holdout_views:
        part = slice(first, first + per_scene)
        held_out = scenes["target"][part], decode_poses_np(scenes["query_pose"][part])
    views = {key: scenes[key][first] for key in SCENE_VIEW_KEYS}
    views["context_poses"] = decode_poses_np(views["context_poses"])
    return views, held_out


def views_from_photos(image_size):
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


def render_at(predictor, views, raw_poses, context_size):
    """The views (N, H, W, 3) rendered at raw query poses (N, 5), each from
    its nearest views, every one with the same noise seed (so the imagined
    scene stays the same as the camera moves)."""
    features = nearest_contexts(views, raw_poses, context_size)
    return predictor.render(features, np.full(len(raw_poses), FLAGS.seed))[:, 0]


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
        views, held_out = views_from_records(config.image_size)
    else:
        views = views_from_photos(config.image_size)
    frames = views["context_frames"]
    context_size = min(FLAGS.context_size or config.context_size, len(frames))
    count = FLAGS.num_frames
    rendered = render_at(predictor, views, ring_around(views["context_poses"], count),
                         context_size)
    scale = max(1, 128 // config.image_size)
    gif = images.save_gif(list(rendered), os.path.join(FLAGS.output_dir,
                                                       "flyaround.gif"), scale=scale)
    shown = np.linspace(0, count - 1, min(FLAGS.strip_frames, count)).round().astype(int)
    rows, labels = [list(frames), [rendered[i] for i in shown]], ["views", "rendered"]
    if held_out is not None:
        photos, poses = held_out
        at_poses = render_at(predictor, views, poses, context_size)
        rows += [list(photos), list(at_poses)]
        labels += ["held out", "rendered"]
    strip = images.grid(rows, scale=max(1, 64 // config.image_size), row_labels=labels)
    png = images.save_png(strip, os.path.join(FLAGS.output_dir, "strip.png"))
    print(f"scene views: {len(frames)}; rendered {count} views on the ring, "
          f"each from its {context_size} nearest")
    print(f"fly-around: {gif}")
    print(f"strip:      {png}")


def run():
    startup.use_graph_mode()
    cli_flags.run_main(main, "render")


if __name__ == "__main__":
    run()
