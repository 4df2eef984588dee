import pathlib

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from gqn.poses import (decode_poses_np, encode_poses, encode_poses_np, ring_around,
                       viewing_direction, yaw_pitch_of)


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
    inward = np.mod(-(angles + np.pi), 2 * np.pi)  # azimuth angle + pi
    context = np.stack([2 * np.cos(angles), 2 * np.sin(angles), np.full(4, 0.4),
                        inward, np.full(4, -0.2)], axis=-1)
    ring = ring_around(context, 12)
    assert ring.shape == (12, 5)
    np.testing.assert_allclose(np.hypot(ring[:, 0], ring[:, 1]), 2.0, rtol=1e-5)
    np.testing.assert_allclose(ring[:, 2], 0.4, rtol=1e-5)
    np.testing.assert_allclose(ring[:, 4], -0.2, rtol=1e-5)
    heading = viewing_direction(ring[:, 3], 0.0)[:, :2]
    to_centre = -ring[:, :2] / np.linalg.norm(ring[:, :2], axis=1, keepdims=True)
    np.testing.assert_allclose(np.sum(heading * to_centre, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(ring[0, :2], context[0, :2], atol=1e-5)


def test_viewing_direction_is_deepmind_clockwise_yaw_and_inverts():
    # yaw 90 degrees looks along -y (clockwise from +x seen from above);
    # negative pitch looks down.
    np.testing.assert_allclose(viewing_direction(np.pi / 2, 0.0), [0, -1, 0], atol=1e-12)
    np.testing.assert_allclose(viewing_direction(0.0, -np.pi / 2), [0, 0, -1], atol=1e-12)
    rng = np.random.RandomState(0)
    yaw, pitch = rng.uniform(0, 2 * np.pi, 50), rng.uniform(-1.5, 1.5, 50)
    back_yaw, back_pitch = yaw_pitch_of(3.0 * viewing_direction(yaw, pitch))
    np.testing.assert_allclose(back_yaw, yaw, atol=1e-9)
    np.testing.assert_allclose(back_pitch, pitch, atol=1e-9)


SM5_RECORD = (pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"
              / "gqn-datasets" / "shepard_metzler_5_parts" / "test" / "001-of-100.tfrecord")


def test_real_deepmind_cameras_look_at_the_origin_in_the_stated_convention():
    """On DeepMind's own records every camera's viewing_direction points at
    the object at the origin; the mirrored (counter-clockwise) reading of
    yaw does not."""
    if not SM5_RECORD.exists():
        pytest.skip(f"real GQN records not found at {SM5_RECORD} (../shared/data "
                    "relative to the repo root)")
    cameras = []
    for record in tf.io.tf_record_iterator(str(SM5_RECORD)):
        example = tf.train.Example.FromString(record)
        cameras.append(np.reshape(example.features.feature["cameras"].float_list.value,
                                  [-1, 5]))
    cameras = np.concatenate(cameras)
    assert cameras.shape == (30, 5)
    x, y, z, yaw, pitch = cameras.T
    to_origin = -cameras[:, :3] / np.linalg.norm(cameras[:, :3], axis=1, keepdims=True)
    stated = np.sum(viewing_direction(yaw, pitch) * to_origin, axis=1)
    np.testing.assert_allclose(stated, 1.0, atol=1e-4)
    mirrored = np.sum(viewing_direction(-yaw, pitch) * to_origin, axis=1)
    assert mirrored.min() < 0.9
    assert np.all((0 <= yaw) & (yaw < 2 * np.pi))
    # Cameras above the object look down: negative pitch.
    assert np.all(np.sign(pitch[np.abs(z) > 0.1]) == -np.sign(z[np.abs(z) > 0.1]))
