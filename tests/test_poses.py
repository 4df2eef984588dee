import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from gqn.poses import decode_poses_np, encode_poses, encode_poses_np, ring_around


def test_encoding_order_and_graph_numpy_agreement():
    raw = np.array([[1.0, 2.0, 3.0, np.pi / 2, -np.pi / 6]], np.float32)
    encoded = encode_poses_np(raw)
    np.testing.assert_allclose(encoded[0], [1, 2, 3, 1, 0, -0.5, np.sqrt(3) / 2],
                               atol=1e-6)
    with tf.Graph().as_default(), tf.Session() as session:
        np.testing.assert_allclose(session.run(encode_poses(raw)), encoded, atol=1e-6)
    np.testing.assert_allclose(decode_poses_np(encoded), raw, atol=1e-6)


def test_wrong_pose_length_is_refused():
    with pytest.raises(ValueError, match="got shape \\(2, 4\\)"):
        encode_poses_np(np.zeros([2, 4]))
    with pytest.raises(ValueError, match="encoded poses must end in 7"):
        decode_poses_np(np.zeros([2, 5]))


def test_ring_keeps_radius_height_and_inward_heading():
    angles = np.array([0.3, 1.5, 2.9, 4.0])
    inward = angles + np.pi
    context = np.stack([2 * np.cos(angles), 2 * np.sin(angles), np.full(4, 0.4),
                        inward, np.full(4, -0.2)], axis=-1)
    ring = ring_around(context, 12)
    assert ring.shape == (12, 5)
    np.testing.assert_allclose(np.hypot(ring[:, 0], ring[:, 1]), 2.0, rtol=1e-5)
    np.testing.assert_allclose(ring[:, 2], 0.4, rtol=1e-5)
    np.testing.assert_allclose(ring[:, 4], -0.2, rtol=1e-5)
    heading = np.stack([np.cos(ring[:, 3]), np.sin(ring[:, 3])], -1)
    to_centre = -ring[:, :2] / np.linalg.norm(ring[:, :2], axis=1, keepdims=True)
    np.testing.assert_allclose(np.sum(heading * to_centre, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(ring[0, :2], context[0, :2], atol=1e-5)
