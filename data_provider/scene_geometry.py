"""What a scene's records say about its cameras beyond their poses: the
field of view of the frames as written and the range of depths at which the
scene's surfaces lie.

Why: the sweep representation and the plane-sweep baseline project points
along the query camera's rays into the context views. That needs each
view's field of view (typed by hand before, and wrong for any other camera)
and the depths worth sampling (a fixed range wasted most planes in front of
the object). Every writer (generator, converter) states both per scene,
through `record_writer.serialize_scene`, and the reader hands them to the
model as features. Records without them (DeepMind's) take the dataset
table's field of view and a depth range from their camera distances, by the
same rule a converter uses when it has no 3-D points.

Both rules work on NumPy arrays and, through `ops`, on TensorFlow tensors
(the reader computes a DeepMind record's range inside tf.data).
"""
import types

import numpy as np

# Record keys (tf.train.Example features beside 'frames' and 'cameras'):
# 'field_of_view' holds one angle (radians, across the square frame's side)
# for every view or one per view; 'depth_range' holds (near, far) in the
# units of the poses.
FIELD_OF_VIEW_KEY = "field_of_view"
DEPTH_RANGE_KEY = "depth_range"

# Depths of a scene's surface points: a low and a high percentile, widened
# by POINT_MARGINS so that the object's near and far edges are inside the
# range. A rendered scene's surfaces (generated rooms and still lifes) are
# all scene, their far walls too: the 2nd to 98th percentile. A
# structure-from-motion model's points are mostly the object and its
# table, plus stray points and the background seen past the object (the
# apple's: median depth 1.2, 90th percentile 1.8, 98th 4.2): the 2nd to
# 90th, so that the planes go where the object is; the background is
# painted at the far plane, where the views' parallax on it is small
# (docs/benchmarks.md: on the apple's held-out views the plane sweep gains
# 0.5-0.6 dB and the model trained from scratch 0.5-0.9; the fine-tuned
# model's gain is within a run's spread).
SURFACE_PERCENTILES = (2.0, 98.0)
SFM_POINT_PERCENTILES = (2.0, 90.0)
POINT_MARGINS = (0.8, 1.25)
# Without points: the object stands at the origin the cameras look at, so
# its surfaces lie about one camera distance away; the range reaches from
# NEAR_SHARE of the nearest camera's distance to FAR_SHARE of the farthest
# one's (the table and wall behind the object, a room's far side).
NEAR_SHARE = 0.35
FAR_SHARE = 2.5

_NUMPY_OPS = types.SimpleNamespace(norm=lambda v: np.linalg.norm(v, axis=-1),
                                   reduce_min=np.min, reduce_max=np.max,
                                   stack=np.stack)


def depth_range_rule(percentiles):
    """How depth_range_from_depths sets a range from these percentiles, in
    words for dataset_info.json (e.g. '2nd-90th percentile, widened 0.8x /
    1.25x')."""
    def ordinal(value):
        text = f"{value:g}"
        if text.endswith(("11", "12", "13")) or text[-1] not in "123":
            return text + "th"
        return text + {"1": "st", "2": "nd", "3": "rd"}[text[-1]]

    low, high = (ordinal(value) for value in percentiles)
    return f"{low}-{high} percentile, widened {POINT_MARGINS[0]:g}x / {POINT_MARGINS[1]:g}x"


def depth_range_from_depths(depths, percentiles):
    """(near, far) of the depths (along the optical axes, > 0) at which
    cameras see a scene's surface points: the `percentiles` (low, high),
    widened by POINT_MARGINS."""
    depths = np.asarray(depths, np.float64).reshape(-1)
    depths = depths[np.isfinite(depths) & (depths > 0)]
    if not len(depths):
        raise ValueError("no surface point lies in front of a camera")
    low, high = np.percentile(depths, percentiles)
    return float(low * POINT_MARGINS[0]), float(high * POINT_MARGINS[1])


def point_depths(points, centres, forwards):
    """(cameras, points) depths of world points along each camera's optical
    axis (negative behind it)."""
    points = np.asarray(points, np.float64).reshape(-1, 3)
    offsets = points[None] - np.asarray(centres, np.float64)[:, None]
    return np.einsum("cpk,ck->cp", offsets, np.asarray(forwards, np.float64))


def _from_camera_distances(ops, positions):
    distances = ops.norm(positions)
    return ops.stack([NEAR_SHARE * ops.reduce_min(distances),
                      FAR_SHARE * ops.reduce_max(distances)])


def depth_range_from_cameras(positions):
    """(near, far) for a scene without surface points, from its camera
    positions (V, 3) in the GQN frame (object at the origin)."""
    near, far = _from_camera_distances(_NUMPY_OPS, np.asarray(positions, np.float64))
    return float(near), float(far)


def depth_range_from_cameras_tf(positions):
    """TensorFlow twin of depth_range_from_cameras: (V, 3) -> (2,) float32."""
    import tensorflow.compat.v1 as tf
    ops = types.SimpleNamespace(norm=lambda v: tf.norm(v, axis=-1),
                                reduce_min=tf.reduce_min, reduce_max=tf.reduce_max,
                                stack=tf.stack)
    return _from_camera_distances(ops, tf.cast(positions, tf.float32))
