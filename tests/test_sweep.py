"""The sweep representation's geometry: its rays and projections agree with
the renderer that drew the views, its sampling reads the feature under each
point, and its statistics leave out the views that do not see a point."""
import math

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from data_provider import synthetic
from gqn import poses, sweep
from tests.tiny import constant_batch, run_initialised, tiny_config

FIELD_OF_VIEW = math.radians(45)


pytestmark = pytest.mark.usefixtures("fresh_graph")


BALL_CENTRE = np.array([0.15, -0.1, 0.05], np.float32)


def _cameras_aimed_near(point):
    """Raw poses of cameras at several heights around `point`, each aimed a
    little beside it (so it is off the image centre), some level, some
    looking down or up."""
    positions = np.array([[-1.0, -1.0, 0.0], [0.9, 0.2, 0.5], [0.1, 1.2, -0.2],
                          [-0.8, 0.6, 0.3]])
    aims = point + np.array([[0.1, 0.0, 0.0], [0.0, 0.1, 0.05], [-0.1, 0.0, -0.05],
                             [0.0, -0.05, 0.1]])
    yaw, pitch = poses.yaw_pitch_of(aims - positions)
    return np.concatenate([positions, yaw[:, None], pitch[:, None]], 1).astype(np.float32)


CAMERAS = _cameras_aimed_near(BALL_CENTRE)


def test_rays_are_the_renderers_rays():
    """The model's rays through an 8x8 grid are the renderer's rays through
    the pixels of an 8x8 image of the same cameras."""
    rays = run_initialised(poses.ray_directions(poses.encode_poses(CAMERAS), 8, FIELD_OF_VIEW))
    np.testing.assert_allclose(rays, synthetic.camera_rays(CAMERAS, 8, 8, FIELD_OF_VIEW),
                               atol=1e-6)
    # The centre of the image is the viewing direction.
    centre = run_initialised(poses.ray_directions(poses.encode_poses(CAMERAS), 1, FIELD_OF_VIEW))
    np.testing.assert_allclose(centre[:, 0, 0], poses.viewing_direction(
        CAMERAS[:, 3], CAMERAS[:, 4]), atol=1e-6)


def test_projection_lands_where_the_renderer_draws_the_object():
    """A small ball's centre, projected into each camera, falls on the
    centroid of the ball's mask in the rendered view (to a third of a
    pixel), and in front of the camera."""
    centre = BALL_CENTRE
    room = synthetic.Room([-3, -3, -1], [3, 3, 3], [(0.5, 0.5, 0.5)] * 6)
    ball = synthetic.Ellipsoid(centre, [0.06] * 3, (0.9, 0.1, 0.1))
    scene = synthetic.Scene(room, [ball], (0, 0, 2), ambient=0.3, fov_y=FIELD_OF_VIEW)
    size = 64
    _, masks = synthetic.render(scene, CAMERAS, size, size, supersample=3,
                                with_masks=True)
    x, y, in_front = run_initialised(sweep.project(tf.constant(centre[None, None]),
                                        poses.encode_poses(CAMERAS[None]), FIELD_OF_VIEW))
    for view, mask in enumerate(masks.astype(np.float64) / 255):
        assert mask.sum() > 10, f"view {view} does not see the ball"
        rows, columns = np.mgrid[:size, :size] + 0.5
        seen = [np.sum(columns * mask) / mask.sum(), np.sum(rows * mask) / mask.sum()]
        projected = [(x[0, view, 0] + 1) * size / 2, (y[0, view, 0] + 1) * size / 2]
        np.testing.assert_allclose(projected, seen, atol=0.35)
        assert in_front[0, view, 0]
    behind = CAMERAS[:1].copy()
    behind[0, 3] += math.pi  # the first camera turned around
    _, _, in_front = run_initialised(sweep.project(tf.constant(centre[None, None]),
                                        poses.encode_poses(behind[None]), FIELD_OF_VIEW))
    assert not in_front[0, 0, 0]


def test_sampling_reads_the_feature_under_each_point():
    """A 2x3 map of distinct values: cell centres read their cell, a point
    half-way between two cells their mean, a point outside the view 0."""
    values = np.arange(1, 7, dtype=np.float32).reshape(1, 1, 2, 3, 1)
    # Cell centres of a 3-wide, 2-high image sit at x = -2/3, 0, 2/3 and
    # y = -1/2, 1/2.
    x = np.array([[[-2 / 3, 2 / 3, 0.0, -1 / 3, 0.0, 0.5]]], np.float32)
    y = np.array([[[-0.5, 0.5, 0.5, -0.5, 0.0, 0.0]]], np.float32)
    visible = np.array([[[1, 1, 1, 1, 1, 0]]], np.float32)
    sampled = run_initialised(sweep.sample_views(tf.constant(values), tf.constant(x),
                                      tf.constant(y), tf.constant(visible)))
    np.testing.assert_allclose(sampled[0, 0, :, 0], [1, 6, 5, 1.5, 3.5, 0], atol=1e-6)


def test_bilinear_weights_sum_to_one_inside_the_image():
    rng = np.random.RandomState(0)
    x, y = rng.uniform(-0.8, 0.8, [2, 50]).astype(np.float32)
    weights = run_initialised(sweep.bilinear_weights(tf.constant(x), tf.constant(y), 5, 7))
    assert weights.shape == (50, 35)
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)


def test_statistics_leave_out_views_that_do_not_see_a_point():
    # 3 views, 2 points, 1 channel; view 2 does not see point 0, no view
    # sees point 1.
    samples = np.array([[[[2.0], [9.0]], [[4.0], [9.0]], [[0.0], [9.0]]]], np.float32)
    visible = np.array([[[1, 0], [1, 0], [0, 0]]], np.float32)
    statistics = run_initialised(sweep.view_statistics(tf.constant(samples), tf.constant(visible)))
    mean, variance, share = statistics[0, :, 0], statistics[0, :, 1], statistics[0, :, 2]
    np.testing.assert_allclose(mean, [3.0, 0.0])
    np.testing.assert_allclose(variance, [1.0, 0.0])
    np.testing.assert_allclose(share, [2 / 3, 0.0])


def test_depth_planes_run_near_to_far_evenly_in_inverse_depth():
    config = tiny_config(sweep_near=0.5, sweep_far=4.0, sweep_depths=5)
    depths = sweep.depth_planes(config)
    np.testing.assert_allclose([depths[0], depths[-1]], [0.5, 4.0], rtol=1e-6)
    np.testing.assert_allclose(np.diff(1 / depths), (1 / 4.0 - 1 / 0.5) / 4, rtol=1e-5)


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_representation_is_on_the_query_grid_and_depends_on_the_query(precision):
    config = tiny_config(representation="sweep", precision=precision)
    features, _ = constant_batch(config)
    frames = tf.cast(features["context_frames"], tf.bfloat16 if precision == "bfloat16"
                     else tf.float32)
    context = poses.encode_poses(np.stack([np.roll(CAMERAS, i, 0)[:3] for i in range(4)]))
    with tf.variable_scope("r", reuse=tf.AUTO_REUSE):
        r = sweep.sweep_representation(frames, context, poses.encode_poses(CAMERAS),
                                       config)
        turned = sweep.sweep_representation(
            frames, context, poses.encode_poses(CAMERAS + [0, 0, 0, 0.7, 0]), config)
    assert r.shape.as_list() == [4, 4, 4, config.representation_channels]
    assert r.dtype == frames.dtype
    r, turned = run_initialised([tf.cast(r, tf.float32), tf.cast(turned, tf.float32)])
    assert np.all(np.isfinite(r))
    assert np.abs(r - turned).max() > 1e-3
