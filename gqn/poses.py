"""The one camera-pose encoding used everywhere.

Records store a raw 5-vector per view, (x, y, z, yaw, pitch) with angles in
radians (DeepMind's gqn-datasets layout). The geometry is DeepMind's, measured
on their shepard_metzler records: z is up, and a camera looks along
`viewing_direction(yaw, pitch)` = (cos p cos yaw, -cos p sin yaw, sin p), so
yaw turns clockwise seen from +z and a camera above its target has negative
pitch. Every pose the package writes means this geometry. The network sees the 7-vector
(x, y, z, sin yaw, cos yaw, sin pitch, cos pitch). Training, evaluation, the
predictor and the converters all go through these two functions so the order
can never drift between them.
"""
import types

import numpy as np
import tensorflow.compat.v1 as tf

RAW_POSE_DIM = 5
POSE_DIM = 7


def _encode_with(ops, raw):
    """The encoding written once, for any array library with concat/sin/cos."""
    position, yaw, pitch = raw[..., :3], raw[..., 3:4], raw[..., 4:5]
    return ops.concat([position, ops.sin(yaw), ops.cos(yaw),
                       ops.sin(pitch), ops.cos(pitch)], axis=-1)


_NUMPY_OPS = types.SimpleNamespace(concat=np.concatenate, sin=np.sin, cos=np.cos,
                                   stack=np.stack, zeros_like=np.zeros_like,
                                   norm=np.linalg.norm, reduce_mean=np.mean,
                                   reduce_sum=np.sum, maximum=np.maximum)


def encode_poses(raw):
    """Encodes raw (..., 5) poses as (..., 7) float32 in graph mode."""
    return _encode_with(tf, tf.convert_to_tensor(raw, dtype=tf.float32))


def encode_poses_np(raw):
    """NumPy twin of encode_poses, for tools that never build a graph."""
    raw = np.asarray(raw, dtype=np.float32)
    if raw.shape[-1] != RAW_POSE_DIM:
        raise ValueError(
            f"raw poses must end in {RAW_POSE_DIM} values (x, y, z, yaw, pitch),"
            f" got shape {raw.shape}")
    return _encode_with(_NUMPY_OPS, raw)


def decode_poses_np(encoded):
    """Inverse of encode_poses_np: (..., 7) -> raw (..., 5), angles in radians."""
    encoded = np.asarray(encoded, dtype=np.float32)
    if encoded.shape[-1] != POSE_DIM:
        raise ValueError(
            f"encoded poses must end in {POSE_DIM} values, got shape {encoded.shape}")
    yaw = np.arctan2(encoded[..., 3], encoded[..., 4])
    pitch = np.arctan2(encoded[..., 5], encoded[..., 6])
    return np.concatenate([encoded[..., :3], yaw[..., None], pitch[..., None]],
                          axis=-1).astype(np.float32)


def _camera_axes_with(ops, encoded):
    """Forward, right and up unit vectors (..., 3) of cameras given their
    7-d poses. Forward is viewing_direction; right is level (the cameras
    have no roll); up = right x forward."""
    sin_yaw, cos_yaw = encoded[..., 3], encoded[..., 4]
    sin_pitch, cos_pitch = encoded[..., 5], encoded[..., 6]
    forward = ops.stack([cos_pitch * cos_yaw, -cos_pitch * sin_yaw, sin_pitch], axis=-1)
    right = ops.stack([-sin_yaw, -cos_yaw, ops.zeros_like(sin_yaw)], axis=-1)
    up = ops.stack([-cos_yaw * sin_pitch, sin_yaw * sin_pitch, cos_pitch], axis=-1)
    return forward, right, up


def camera_axes(encoded):
    """Graph-mode camera axes of (..., 7) encoded poses (float32)."""
    return _camera_axes_with(tf, tf.cast(encoded, tf.float32))


def camera_axes_np(encoded):
    """NumPy twin of camera_axes."""
    return _camera_axes_with(_NUMPY_OPS, np.asarray(encoded))


def _camera_distances_with(ops, queries, candidates):
    """(Q, N) how far query cameras (Q, 7) are from candidate cameras
    (N, 7), for choosing a query's context: the distance between their
    centres over the candidates' mean distance from the object (so the
    scale of the poses does not matter) plus 1 - the cosine between their
    viewing directions."""
    scale = ops.maximum(ops.reduce_mean(ops.norm(candidates[:, :3], axis=-1)), 1e-6)
    apart = ops.norm(queries[:, None, :3] - candidates[None, :, :3], axis=-1) / scale
    facing = (_camera_axes_with(ops, queries)[0][:, None]
              * _camera_axes_with(ops, candidates)[0][None])
    return apart + 1 - ops.reduce_sum(facing, axis=-1)


def camera_distances(queries, candidates):
    """Graph-mode camera distances (Q, N) of encoded poses (Q, 7), (N, 7)."""
    return _camera_distances_with(tf, tf.cast(queries, tf.float32),
                                  tf.cast(candidates, tf.float32))


def camera_distances_np(queries, candidates):
    """NumPy twin of camera_distances."""
    return _camera_distances_with(_NUMPY_OPS, np.asarray(queries, np.float64),
                                  np.asarray(candidates, np.float64))


def image_plane_offsets(size, half_extent):
    """Where the centres of `size` pixels (or grid cells) across an image lie
    on the image plane at unit distance in front of the camera, first to
    last, for an image reaching `half_extent` (tan of half its field of
    view) to either side of the centre."""
    return ((np.arange(size) + 0.5) / size * 2 - 1) * half_extent


def ray_directions(encoded, size, field_of_view):
    """Unit world directions (N, size, size, 3), float32, of the rays through
    the cell centres of a size x size grid over the images of cameras with
    (N, 7) encoded poses and square fields of view (radians): one angle for
    all, or a tensor of N; row 0 is the top of the image."""
    forward, right, up = (axis[:, None, None, :] for axis in camera_axes(encoded))
    half_extent = tf.reshape(tf.tan(tf.cast(field_of_view, tf.float32) / 2),
                             [-1, 1, 1, 1])
    offsets = tf.constant(image_plane_offsets(int(size), 1.0).astype(np.float32))
    across = offsets[None, None, :, None] * half_extent
    down = -offsets[None, :, None, None] * half_extent
    directions = forward + across * right + down * up
    return directions * tf.math.rsqrt(tf.reduce_sum(tf.square(directions), -1,
                                                    keepdims=True))


def viewing_direction(yaw, pitch):
    """Unit viewing directions (..., 3) of cameras with DeepMind's yaw and
    pitch (radians)."""
    yaw, pitch = np.broadcast_arrays(np.asarray(yaw, np.float64),
                                     np.asarray(pitch, np.float64))
    return np.stack([np.cos(pitch) * np.cos(yaw), -np.cos(pitch) * np.sin(yaw),
                     np.sin(pitch)], axis=-1)


def yaw_pitch_of(directions):
    """Inverse of viewing_direction: (..., 3) directions (any length) ->
    (yaw in [0, 2 pi), pitch in [-pi/2, pi/2])."""
    directions = np.asarray(directions, np.float64)
    directions = directions / np.linalg.norm(directions, axis=-1, keepdims=True)
    yaw = np.mod(np.arctan2(-directions[..., 1], directions[..., 0]), 2 * np.pi)
    pitch = np.arcsin(np.clip(directions[..., 2], -1.0, 1.0))
    return yaw, pitch


def ring_around(raw_poses, num_poses):
    """`num_poses` raw poses on the ring fitted to `raw_poses` (M, 5): same
    mean distance from the scene centre, height and pitch, and the same
    heading relative to the ring angle (so cameras that looked inwards keep
    looking inwards). Used for fly-around renderings."""
    raw = np.asarray(raw_poses, dtype=np.float64).reshape(-1, RAW_POSE_DIM)
    angles = np.arctan2(raw[:, 1], raw[:, 0])
    radius = np.hypot(raw[:, 0], raw[:, 1]).mean()
    # A camera's viewing azimuth is -yaw (DeepMind's yaw turns clockwise).
    offsets = -raw[:, 3] - angles
    heading = np.arctan2(np.sin(offsets).mean(), np.cos(offsets).mean())
    start = angles[0]
    ring = start + np.linspace(0.0, 2 * np.pi, num_poses, endpoint=False)
    yaw = np.mod(-(ring + heading), 2 * np.pi)
    return np.stack([radius * np.cos(ring), radius * np.sin(ring),
                     np.full(num_poses, raw[:, 2].mean()), yaw,
                     np.full(num_poses, raw[:, 4].mean())], axis=-1).astype(np.float32)
