"""Measure the cameras' field of view of posed records from silhouettes.

DeepMind's gqn-datasets records state no intrinsics, but the sweep
representation and the plane-sweep baseline project points into the views,
so they need each camera's field of view. The silhouettes fix it: for each
candidate angle, carve a visual hull (a voxel grid) from all views of a
scene but one, project it into the held-out view and score the overlap
(IoU) with that view's silhouette. With the right angle the views agree and
the hull's outline matches the held-out one; with a wrong angle the rays
miss each other, the hull is carved too far and its outline is off.
Leave-one-out over every view of every scene gives one IoU curve per view;
the peak of their mean is the estimate, with a bootstrap over the views for
its spread.

Silhouettes come from the records' object masks (`--silhouettes masks`,
the generator's test split) or from the pixels (`--silhouettes pixels`):
an object on a plain black background, as in shepard_metzler_*, is every
pixel whose brightest channel reaches --threshold (the histogram in
fov_curve.png shows the background under it and the objects' faces above).

    python scripts/measure_field_of_view.py --data_dir ../shared/data/gqn-datasets \\
        --dataset shepard_metzler_5_parts --output_dir fov_sm5
    python -m data_provider.synthetic --output_dir /tmp/sl --preset still_life \\
        --num_train_scenes 1 --num_test_scenes 8
    python scripts/measure_field_of_view.py --data_dir /tmp/sl \\
        --dataset synthetic_still_life --silhouettes masks --output_dir fov_sl

Prints a table of mean IoU per angle and the peak, and writes
DIR/fov_curve.png (the curves and the pixel histogram), DIR/fov_views.png
(each view, its silhouette and, at the peak and at the ends of the range,
the held-out silhouette against the outline of the hull carved from the
other views: white where both cover a pixel, red the silhouette alone, cyan
the hull alone) and DIR/fov.json (angles, per-view IoU, summary).
"""
import dataclasses
import io
import json
import os
from typing import Optional

from gqn import startup

startup.quiet_tensorflow_log()  # before TensorFlow is imported

import matplotlib  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow.compat.v1 as tf  # noqa: E402
from absl import flags  # noqa: E402
from PIL import Image  # noqa: E402
from tqdm import tqdm  # noqa: E402

from data_provider import record_writer, synthetic  # noqa: E402
from data_provider.datasets import get_dataset_info  # noqa: E402
from data_provider.gqn_tfr_provider import list_shard_files  # noqa: E402
from gqn import cli_flags, images  # noqa: E402
from gqn.poses import (RAW_POSE_DIM, camera_axes_np, encode_poses_np,  # noqa: E402
                       image_plane_offsets)

matplotlib.use("Agg")
from matplotlib import pyplot  # noqa: E402  (after choosing the file backend)

FLAGS = flags.FLAGS
flags.DEFINE_string("data_dir", None, "Folder holding <dataset>/<split>/i-of-N.tfrecord.")
flags.DEFINE_string("dataset", "shepard_metzler_5_parts", "Dataset name under --data_dir.")
flags.DEFINE_enum("split", "test", ["train", "test"], "Split to read.")
flags.DEFINE_integer("max_scenes", None, "Read at most this many scenes (default: all).")
flags.DEFINE_enum("silhouettes", "pixels", ["pixels", "masks"],
                  "pixels: objects on a black background, thresholded; masks: "
                  "the records' object masks (the generator's test split).")
flags.DEFINE_integer("threshold", 32, "With --silhouettes pixels: a pixel whose "
                     "brightest channel (0-255) reaches this is the object.")
flags.DEFINE_string("angles", "10:80:1", "Candidate fields of view in degrees, "
                    "first:last:step (inclusive).")
flags.DEFINE_integer("resolution", 96, "Voxels along each side of the grid.")
flags.DEFINE_integer("bootstrap", 2000, "Resamplings of the views for the peak's "
                     "95% interval.")
flags.DEFINE_float("known_angle", None, "Validate the method instead: replace each "
                   "scene's frames by a Shepard-Metzler-like chain of 5 cubes on "
                   "black, rendered from the same cameras at this field of view "
                   "(degrees) by the package's ray caster, and measure those.")
flags.DEFINE_integer("pictured_scenes", 2, "Scenes shown in fov_views.png.")
flags.DEFINE_string("output_dir", None, "Where fov_curve.png, fov_views.png and "
                    "fov.json go.")
flags.mark_flags_as_required(["data_dir", "output_dir"])

# A voxel joins the hull only if at least this share of the carving views
# see it (inside their frame): the rest may leave it uncarved, since a view
# says nothing about what lies outside its frame. (DeepMind's cameras see
# the whole object; the still lifes' close cameras cut fruit off, and there
# parts that fewer than half the views have in frame are left out.)
MIN_SEEN_SHARE = 0.5
# The grid reaches this much beyond the farthest silhouette pixel's ray.
GRID_MARGIN = 1.25
# At most this many sub-cubes along a voxel's side when drawing a hull's
# outline (a voxel spans up to 2 pixels of the nearest still-life views).
MAX_SPLITS = 4
# A stand-in cube's edge as a share of the frame's width at the object's
# distance: about 10 pixels of 64, as the real shepard_metzler cubes appear.
CUBE_SHARE = 0.15
CHAIN_CUBES = 5
# The peak's parabola is fitted to the angles whose mean IoU is within this
# of the best.
PEAK_DROP = 0.01


@dataclasses.dataclass
class PosedViews:
    """Every view of one scene: uint8 frames (V, S, S, 3), raw cameras
    (V, 5) and, where the record has them, uint8 object masks (V, S, S)."""
    name: str
    frames: np.ndarray
    cameras: np.ndarray
    masks: Optional[np.ndarray] = None


def _decode(encoded_images, mode, where):
    try:
        return np.stack([np.asarray(Image.open(io.BytesIO(data)).convert(mode))
                         for data in encoded_images])
    except (OSError, ValueError) as error:
        raise ValueError(f"{where}: an image does not decode ({error})")


def read_scenes(data_dir, dataset, split="test", max_scenes=None):
    """All views of up to `max_scenes` records of `<data_dir>/<dataset>/<split>`,
    in file order (the reader draws a few views at random; this needs all)."""
    frame_size = get_dataset_info(dataset, data_dir).frame_size
    scenes = []
    for path in list_shard_files(data_dir, dataset, split):
        for index, record in enumerate(tf.io.tf_record_iterator(path)):
            if max_scenes is not None and len(scenes) >= max_scenes:
                return scenes
            where = f"record {index} of {path}"
            feature = tf.train.Example.FromString(record).features.feature
            frames = _decode(feature["frames"].bytes_list.value, "RGB", where)
            cameras = np.asarray(feature["cameras"].float_list.value, np.float32)
            if (frames.shape[1:3] != (frame_size, frame_size)
                    or len(cameras) != RAW_POSE_DIM * len(frames)):
                raise ValueError(f"{where}: {len(frames)} frames of {frames.shape[1:3]} "
                                 f"and {len(cameras)} camera values; expected "
                                 f"{frame_size}x{frame_size} frames and "
                                 f"{RAW_POSE_DIM} values per frame")
            masks = (_decode(feature["masks"].bytes_list.value, "L", where)
                     if "masks" in feature else None)
            scenes.append(PosedViews(f"{os.path.basename(path)}#{index}", frames,
                                     cameras.reshape(-1, RAW_POSE_DIM), masks))
    if not scenes:
        raise ValueError(f"no records in {os.path.join(data_dir, dataset, split)}")
    return scenes


def _cube_chain(rng, edge, centre):
    """A Shepard-Metzler-like object: CHAIN_CUBES cubes, each on a face of
    the last (a self-avoiding walk), centred on `centre`."""
    cells = [np.zeros(3, np.int64)]
    while len(cells) < CHAIN_CUBES:
        step = np.zeros(3, np.int64)
        step[rng.integers(3)] = rng.choice([-1, 1])
        if not any((cells[-1] + step == cell).all() for cell in cells):
            cells.append(cells[-1] + step)
    cubes = (np.array(cells) - np.mean(cells, axis=0)) * edge + centre
    return [synthetic.Box(cube, [edge / 2] * 3, rng.uniform(0.3, 1.0, 3)) for cube in cubes]


def render_cube_chains(scenes, field_of_view_degrees, seed=0):
    """The scenes with their frames replaced by a cube chain on black seen
    from the same cameras at a known field of view, JPEG-coded as DeepMind's
    frames are: data with the real camera layout and a known answer
    (the chain stands where the cameras look)."""
    rng = np.random.default_rng(seed)
    field_of_view = np.radians(field_of_view_degrees)
    rendered = []
    for scene in scenes:
        size = scene.frames.shape[1]
        centre = look_at_point(scene.cameras)
        distance = np.linalg.norm(scene.cameras[:, :3] - centre, axis=1).mean()
        edge = CUBE_SHARE * 2 * distance * np.tan(field_of_view / 2)
        black = synthetic.Room(-100 * np.ones(3), 100 * np.ones(3), np.zeros((6, 3)))
        light = centre + 2 * distance * np.array([0.6, 0.3, 0.75])
        world = synthetic.Scene(black, _cube_chain(rng, edge, centre), light, ambient=0.35,
                                fov_y=field_of_view)
        views = synthetic.render(world, scene.cameras, size, size, supersample=3)
        frames = _decode([record_writer.encode_jpeg(view, quality=75) for view in views],
                         "RGB", "a rendered cube chain")
        rendered.append(PosedViews(f"cube chain at {field_of_view_degrees:g} degrees, "
                                   f"cameras of {scene.name}", frames, scene.cameras))
    return rendered


def pixel_silhouettes(frames, threshold):
    """bool (V, S, S): pixels whose brightest channel reaches `threshold`,
    for objects on a black background."""
    return np.asarray(frames).max(axis=-1) >= threshold


def scene_silhouettes(scene, source, threshold):
    """The silhouettes of `scene` by rule `source` ('pixels' or 'masks')."""
    if source == "pixels":
        return pixel_silhouettes(scene.frames, threshold)
    if scene.masks is None:
        raise ValueError(f"scene {scene.name} has no object masks; use "
                         "--silhouettes pixels")
    return scene.masks >= 128


def project(points, raw_cameras, size, field_of_view):
    """Pixel (row, column) int arrays (V, P) of world `points` (P, 3) in the
    views of cameras `raw_cameras` (V, 5) with a square `field_of_view`
    (radians), and bool (V, P) whether the point is in front of the camera
    and inside the frame. The inverse of gqn.poses.image_plane_offsets: a
    point lands in the pixel whose centre ray is nearest."""
    forward, right, up = camera_axes_np(encode_poses_np(raw_cameras))
    offsets = points[None] - np.asarray(raw_cameras, np.float32)[:, None, :3]
    depth = np.einsum("vpk,vk->vp", offsets, forward)
    in_front = depth > 1e-6
    depth = np.where(in_front, depth, 1.0)
    half_extent = np.tan(field_of_view / 2)
    across = np.einsum("vpk,vk->vp", offsets, right) / depth / half_extent
    down = -np.einsum("vpk,vk->vp", offsets, up) / depth / half_extent
    columns = np.floor((across + 1) / 2 * size).astype(np.int64)
    rows = np.floor((down + 1) / 2 * size).astype(np.int64)
    inside = in_front & (rows >= 0) & (rows < size) & (columns >= 0) & (columns < size)
    return rows, columns, inside


def look_at_point(raw_cameras):
    """The point nearest (least squares) to every camera's viewing axis: the
    centre the cameras are aimed at."""
    forward = camera_axes_np(encode_poses_np(raw_cameras))[0].astype(np.float64)
    centres = np.asarray(raw_cameras, np.float64)[:, :3]
    normal = np.eye(3)[None] - forward[:, :, None] * forward[:, None, :]
    return np.linalg.solve(normal.sum(0), np.einsum("vij,vj->i", normal, centres))


def voxel_grid(raw_cameras, silhouettes, field_of_view, resolution):
    """Voxel centres (resolution^3, 3) of a cube around the look-at point,
    wide enough for the rays of every silhouette pixel (so it scales with
    the angle, and the voxels keep their size in pixels), and the voxels'
    side."""
    size = silhouettes.shape[-1]
    centre = look_at_point(raw_cameras)
    distance = np.linalg.norm(np.asarray(raw_cameras)[:, :3] - centre, axis=1).max()
    _, rows, columns = np.nonzero(silhouettes)
    pixels = np.concatenate([rows, columns, size - 1 - rows, size - 1 - columns])
    # How far from the image centre the silhouettes reach, 1 at the border.
    reach = 1 - 2 * pixels.min() / size if len(pixels) else 1.0
    half_width = GRID_MARGIN * distance * reach * np.tan(field_of_view / 2)
    axis = image_plane_offsets(resolution, half_width)
    return (_lattice(axis) + centre).astype(np.float32), 2 * half_width / resolution


def _lattice(axis):
    """(len(axis)^3, 3) points: every combination of three `axis` values."""
    return np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)


def _on_silhouette(silhouettes, rows, columns, inside):
    """bool like `inside`: the projected point lands on view v's silhouette."""
    hit = np.zeros_like(inside)
    views, points = np.nonzero(inside)
    hit[views, points] = silhouettes[views, rows[views, points], columns[views, points]]
    return hit


def candidate_voxels(points, silhouettes, raw_cameras, field_of_view):
    """The voxels that at most one view carves (a view carves what it sees
    outside its silhouette): only these can be in a hull carved from all
    views but one. Dropping the rest view by view saves most of the work."""
    size = silhouettes.shape[-1]
    alive = np.arange(len(points))
    carved = np.zeros(len(points), np.int64)
    for view in range(len(silhouettes)):
        rows, columns, inside = project(points[alive], raw_cameras[view:view + 1], size,
                                        field_of_view)
        hit = _on_silhouette(silhouettes[view:view + 1], rows, columns, inside)
        carved += (inside & ~hit)[0]
        alive, carved = alive[carved <= 1], carved[carved <= 1]
    return points[alive]


def hull_outline(hull, side, raw_camera, size, field_of_view):
    """bool (S, S): the pixels that the hull's voxels (cubes of `side`
    around the centres `hull`) cover in the view of `raw_camera` (5,): the
    pixels their centres fall in. Where a voxel spans more than a pixel
    (near the camera), each is split into sub-cubes at most a pixel apart,
    so that the outline has no holes."""
    outline = np.zeros((size, size), bool)
    if not len(hull):
        return outline
    forward = camera_axes_np(encode_poses_np(raw_camera[None]))[0][0]
    nearest = max(float(((hull - raw_camera[:3]) @ forward).min()), 1e-6)
    pixel = 2 * np.tan(field_of_view / 2) * nearest / size
    splits = int(np.clip(np.ceil(side / pixel), 1, MAX_SPLITS))
    points = (hull[:, None] + _lattice(image_plane_offsets(splits, side / 2))).reshape(-1, 3)
    rows, columns, inside = project(points.astype(np.float32), raw_camera[None], size,
                                    field_of_view)
    outline[rows[inside], columns[inside]] = True
    return outline


def leave_one_out(silhouettes, raw_cameras, field_of_view, resolution):
    """For each view of one scene, the hull carved from all the others seen
    from it: bool (V, S, S) outlines and float (V,) IoU against the view's
    silhouette (NaN where both are empty)."""
    num_views, size = silhouettes.shape[:2]
    grid, side = voxel_grid(raw_cameras, silhouettes, field_of_view, resolution)
    points = candidate_voxels(grid, silhouettes, raw_cameras, field_of_view)
    rows, columns, inside = project(points, raw_cameras, size, field_of_view)
    hit = _on_silhouette(silhouettes, rows, columns, inside)
    agrees = hit | ~inside
    agreeing, seeing = agrees.sum(0), hit.sum(0)
    outlines = np.zeros_like(silhouettes, dtype=bool)
    iou = np.full(num_views, np.nan)
    for view in range(num_views):
        hull = ((agreeing - agrees[view] == num_views - 1)
                & (seeing - hit[view] >= MIN_SEEN_SHARE * (num_views - 1)))
        outlines[view] = hull_outline(points[hull], side, raw_cameras[view], size,
                                      field_of_view)
        union = np.logical_or(outlines[view], silhouettes[view]).sum()
        if union:
            iou[view] = np.logical_and(outlines[view], silhouettes[view]).sum() / union
    return outlines, iou


def parse_angles(text):
    """'first:last:step' (degrees, inclusive) -> float array."""
    try:
        first, last, step = (float(part) for part in text.split(":"))
    except ValueError:
        raise ValueError(f"--angles must be first:last:step in degrees, got {text!r}")
    if not 0 < first <= last < 180 or step <= 0:
        raise ValueError(f"--angles {text!r}: need 0 < first <= last < 180 and step > 0")
    return np.arange(first, last + step / 2, step)


def measure(scene_silhouettes_list, camera_list, angles_degrees, resolution,
            progress=False):
    """IoU (angles, views) over every view of every scene, leave-one-out."""
    curves = []
    for angle in tqdm(angles_degrees, desc="angles", disable=not progress):
        curves.append(np.concatenate([
            leave_one_out(silhouettes, cameras, np.radians(angle), resolution)[1]
            for silhouettes, cameras in zip(scene_silhouettes_list, camera_list)]))
    return np.array(curves)


def top_region(curve):
    """(first, last) indices of the run of angles around the curve's
    maximum that stay within PEAK_DROP of it, at least one either side."""
    best = int(np.nanargmax(curve))
    first = last = best
    while first > 0 and curve[first - 1] >= curve[best] - PEAK_DROP:
        first -= 1
    while last < len(curve) - 1 and curve[last + 1] >= curve[best] - PEAK_DROP:
        last += 1
    return max(0, min(first, best - 1)), min(len(curve) - 1, max(last, best + 1))


def peak_angle(angles, curve):
    """The vertex of a parabola fitted to the curve's top region (a flat,
    slightly noisy top would make one sample's maximum jump between
    neighbours), kept inside the region; the maximum itself where the fit
    does not bend down."""
    first, last = top_region(curve)
    best = float(angles[int(np.nanargmax(curve))])
    if last - first < 2:
        return best
    bend, slope, _ = np.polyfit(angles[first:last + 1], curve[first:last + 1], 2)
    if bend >= 0:
        return best
    return float(np.clip(-slope / (2 * bend), angles[first], angles[last]))


def summarize(angles, iou, scene_of_view, bootstrap=2000, seed=0):
    """The peak of the mean IoU curve, its bootstrap 95% interval over the
    views, each scene's own peak and the top region the peak is fitted to."""
    valid = ~np.isnan(iou).any(axis=0)
    iou, scene_of_view = iou[:, valid], np.asarray(scene_of_view)[valid]
    mean = iou.mean(axis=1)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, iou.shape[1], size=(bootstrap, iou.shape[1]))
    peaks = [peak_angle(angles, iou[:, draw].mean(axis=1)) for draw in draws]
    first, last = top_region(mean)
    return {
        "peak_degrees": peak_angle(angles, mean),
        "peak_iou": float(mean.max()),
        "interval_95": [float(np.percentile(peaks, 2.5)), float(np.percentile(peaks, 97.5))],
        "bootstrap_std": float(np.std(peaks)),
        "scene_peaks": {int(scene): peak_angle(angles, iou[:, scene_of_view == scene].mean(1))
                        for scene in np.unique(scene_of_view)},
        "top_region": [float(angles[first]), float(angles[last])],
        "views_scored": int(iou.shape[1]),
        "mean_iou": mean.tolist(),
    }


def print_table(angles, iou, scene_of_view, summary, names):
    scenes = np.unique(scene_of_view)
    print(f"\n{'angle':>6} {'mean IoU':>9} {'std':>6}"
          + "".join(f" {'scene ' + str(s):>8}" for s in scenes))
    for index, angle in enumerate(angles):
        row = iou[index]
        print(f"{angle:6.1f} {np.nanmean(row):9.4f} {np.nanstd(row):6.3f}"
              + "".join(f" {np.nanmean(row[scene_of_view == s]):8.4f}" for s in scenes))
    low, high = summary["interval_95"]
    print(f"\npeak: {summary['peak_degrees']:.1f} degrees (mean IoU "
          f"{summary['peak_iou']:.4f} over {summary['views_scored']} held-out views); "
          f"bootstrap 95% interval {low:.1f}-{high:.1f} (std "
          f"{summary['bootstrap_std']:.1f}); within {PEAK_DROP} IoU of the top: "
          f"{summary['top_region'][0]:g}-{summary['top_region'][1]:g}")
    for scene, peak in summary["scene_peaks"].items():
        print(f"  scene {scene} ({names[scene]}): peak {peak:.1f} degrees")


def plot_curves(angles, iou, scene_of_view, summary, frames, threshold, path):
    """IoU against angle (each scene's mean, all views' mean, the peak and
    its interval) and, for pixel silhouettes, the brightness histogram."""
    panels = 2 if threshold is not None else 1
    figure, axes = pyplot.subplots(1, panels, figsize=(6 * panels, 4.2), squeeze=False)
    axis = axes[0, 0]
    for scene in np.unique(scene_of_view):
        axis.plot(angles, np.nanmean(iou[:, scene_of_view == scene], axis=1), lw=1,
                  alpha=0.7, label=f"scene {scene}")
    axis.plot(angles, summary["mean_iou"], "k", lw=2, label="all views")
    axis.axvspan(*summary["interval_95"], color="tab:green", alpha=0.2,
                 label="peak, 95% interval")
    axis.axvline(summary["peak_degrees"], color="tab:green")
    axis.set_xlabel("field of view (degrees)")
    axis.set_ylabel("held-out silhouette IoU")
    axis.set_title(f"peak {summary['peak_degrees']:.1f} degrees")
    axis.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    if threshold is not None:
        axis = axes[0, 1]
        brightest = np.concatenate([f.max(axis=-1).ravel() for f in frames])
        axis.hist(brightest, bins=np.arange(257) - 0.5, color="gray", log=True)
        axis.axvline(threshold - 0.5, color="tab:red", label=f"threshold {threshold}")
        axis.set_xlabel("brightest channel of a pixel (0-255)")
        axis.set_ylabel("pixels")
        axis.set_title("background (left) and objects (right)")
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
    return path


def overlay(silhouette, outline):
    """White where both agree, red where only the silhouette, cyan where
    only the hull's outline covers a pixel."""
    picture = np.zeros(silhouette.shape + (3,), np.float32)
    picture[silhouette & outline] = 1.0
    picture[silhouette & ~outline] = (1.0, 0.2, 0.2)
    picture[~silhouette & outline] = (0.2, 0.9, 1.0)
    return picture


def draw_views(scenes, silhouettes_list, angles_shown, resolution, path):
    """Per scene: its frames, their silhouettes and, at each angle shown,
    the overlay of each held-out silhouette and the hull's outline."""
    rows, labels = [], []
    for index, (scene, silhouettes) in enumerate(zip(scenes, silhouettes_list)):
        rows += [list(scene.frames / 255.0),
                 [np.repeat(s[..., None], 3, -1).astype(np.float32) for s in silhouettes]]
        labels += [f"scene {index}", "silhouette"]
        for angle in angles_shown:
            outlines, _ = leave_one_out(silhouettes, scene.cameras, np.radians(angle),
                                        resolution)
            rows.append([overlay(s, o) for s, o in zip(silhouettes, outlines)])
            labels.append(f"{angle:.0f} deg")
    return images.save_png(images.grid(rows, scale=2, row_labels=labels), path)


def main(_):
    angles = parse_angles(FLAGS.angles)
    for name, least in (("resolution", 8), ("bootstrap", 1), ("max_scenes", 1),
                        ("pictured_scenes", 0)):
        value = getattr(FLAGS, name)
        if value is not None and value < least:
            raise ValueError(f"--{name} must be at least {least}, got {value}")
    scenes = read_scenes(FLAGS.data_dir, FLAGS.dataset, FLAGS.split, FLAGS.max_scenes)
    if FLAGS.known_angle is not None:
        if FLAGS.silhouettes != "pixels":
            raise ValueError("--known_angle renders frames: use --silhouettes pixels")
        scenes = render_cube_chains(scenes, FLAGS.known_angle)
    silhouettes = [scene_silhouettes(s, FLAGS.silhouettes, FLAGS.threshold) for s in scenes]
    scene_of_view = np.concatenate([np.full(len(s.cameras), i) for i, s in enumerate(scenes)])
    what = (f"cube chains at {FLAGS.known_angle:g} degrees from the cameras of "
            if FLAGS.known_angle is not None else "")
    print(f"{len(scenes)} scenes, {len(scene_of_view)} views: {what}{FLAGS.dataset}; "
          f"silhouettes from {FLAGS.silhouettes}; {len(angles)} angles "
          f"{angles[0]:g}-{angles[-1]:g}; {FLAGS.resolution}^3 voxels")
    iou = measure(silhouettes, [s.cameras for s in scenes], angles, FLAGS.resolution,
                  progress=True)
    summary = summarize(angles, iou, scene_of_view, FLAGS.bootstrap)
    print_table(angles, iou, scene_of_view, summary, [s.name for s in scenes])
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    threshold = FLAGS.threshold if FLAGS.silhouettes == "pixels" else None
    curve = plot_curves(angles, iou, scene_of_view, summary, [s.frames for s in scenes],
                        threshold, os.path.join(FLAGS.output_dir, "fov_curve.png"))
    shown = slice(FLAGS.pictured_scenes)
    views = draw_views(scenes[shown], silhouettes[shown],
                       [angles[0], round(summary["peak_degrees"]), angles[-1]],
                       FLAGS.resolution, os.path.join(FLAGS.output_dir, "fov_views.png"))
    report = os.path.join(FLAGS.output_dir, "fov.json")
    with open(report, "w") as handle:
        json.dump({"dataset": FLAGS.dataset, "known_angle": FLAGS.known_angle,
                   "silhouettes": FLAGS.silhouettes,
                   "threshold": threshold, "resolution": FLAGS.resolution,
                   "angles": angles.tolist(), "scene_of_view": scene_of_view.tolist(),
                   "iou": np.where(np.isnan(iou), None, iou).tolist(),
                   "summary": summary}, handle, indent=1)
    print(f"\ncurve: {curve}\nviews: {views}\nnumbers: {report}")


if __name__ == "__main__":
    cli_flags.run_main(main, "measure_field_of_view")
