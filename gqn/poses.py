"""The one camera-pose encoding used everywhere.

Records store a raw 5-vector per view, (x, y, z, yaw, pitch) with angles in
radians (DeepMind's gqn-datasets layout). The network sees the 7-vector
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


_NUMPY_OPS = types.SimpleNamespace(concat=np.concatenate, sin=np.sin, cos=np.cos)


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


def ring_around(raw_poses, num_poses):
    """`num_poses` raw poses on the ring fitted to `raw_poses` (M, 5): same
    mean distance from the scene centre, height and pitch, and the same
    heading relative to the ring angle (so cameras that looked inwards keep
    looking inwards). Used for fly-around renderings."""
    raw = np.asarray(raw_poses, dtype=np.float64).reshape(-1, RAW_POSE_DIM)
    angles = np.arctan2(raw[:, 1], raw[:, 0])
    radius = np.hypot(raw[:, 0], raw[:, 1]).mean()
    offsets = raw[:, 3] - angles
    heading = np.arctan2(np.sin(offsets).mean(), np.cos(offsets).mean())
    start = angles[0]
    ring = start + np.linspace(0.0, 2 * np.pi, num_poses, endpoint=False)
    return np.stack([radius * np.cos(ring), radius * np.sin(ring),
                     np.full(num_poses, raw[:, 2].mean()), ring + heading,
                     np.full(num_poses, raw[:, 4].mean())], axis=-1).astype(np.float32)
