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


def _project(points, raw_cameras, field_of_view=FIELD_OF_VIEW):
    """sweep.project of (N, 3) points into raw cameras (M, 5), batch of 1."""
    angles = np.full([1, len(raw_cameras)], field_of_view, np.float32)
    return sweep.project(tf.constant(np.float32(points)[None]),
                         poses.encode_poses(raw_cameras[None]), tf.constant(angles))


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
    x, y, depth = run_initialised(_project(centre[None], CAMERAS))
    for view, mask in enumerate(masks.astype(np.float64) / 255):
        assert mask.sum() > 10, f"view {view} does not see the ball"
        rows, columns = np.mgrid[:size, :size] + 0.5
        seen = [np.sum(columns * mask) / mask.sum(), np.sum(rows * mask) / mask.sum()]
        projected = [(x[0, view, 0] + 1) * size / 2, (y[0, view, 0] + 1) * size / 2]
        np.testing.assert_allclose(projected, seen, atol=0.35)
        assert depth[0, view, 0] > 0
    behind = CAMERAS[:1].copy()
    behind[0, 3] += math.pi  # the first camera turned around
    _, _, depth = run_initialised(_project(centre[None], behind))
    assert depth[0, 0, 0] < 0


def test_a_wider_field_of_view_projects_nearer_the_centre():
    """Each view's own angle is used: the same point lands at tan(a/2) /
    tan(b/2) of its offset in a camera of angle b instead of a."""
    narrow, _, _ = run_initialised(_project(BALL_CENTRE[None], CAMERAS, 0.6))
    wide, _, _ = run_initialised(_project(BALL_CENTRE[None], CAMERAS, 1.2))
    np.testing.assert_allclose(wide, narrow * np.tan(0.3) / np.tan(0.6), rtol=1e-5)


def _sample(values, x, y):
    return run_initialised(sweep.sample(tf.constant(values), tf.constant(np.float32(x)),
                                        tf.constant(np.float32(y))))


def test_sampling_reads_the_feature_under_each_point():
    """A 2x3 map of distinct values: cell centres read their cell, a point
    half-way between two cells their mean."""
    values = np.arange(1, 7, dtype=np.float32).reshape(1, 1, 2, 3, 1)
    # Cell centres of a 3-wide, 2-high image sit at x = -2/3, 0, 2/3 and
    # y = -1/2, 1/2.
    x = [[[-2 / 3, 2 / 3, 0.0, -1 / 3, 0.0]]]
    y = [[[-0.5, 0.5, 0.5, -0.5, 0.0]]]
    np.testing.assert_allclose(_sample(values, x, y)[0, 0, :, 0], [1, 6, 5, 1.5, 3.5],
                               atol=1e-6)


def test_border_pixels_are_read_whole_up_to_the_image_edge():
    """At x = +-1 and y = +-1 (the image's edges, the outer halves of the
    border pixels) a sample reads the border pixel itself, weighted 1, and
    counts as visible; a little beyond the edge it is not visible."""
    values = np.arange(1, 7, dtype=np.float32).reshape(1, 1, 2, 3, 1)
    x = [[[-1.0, 1.0, -1.0, 1.0, -0.9, 1.0]]]
    y = [[[-1.0, -1.0, 1.0, 1.0, -1.0, 0.0]]]
    np.testing.assert_allclose(_sample(values, x, y)[0, 0, :, 0],
                               [1, 3, 4, 6, 1, 4.5], atol=1e-6)
    ones = _sample(np.ones([1, 1, 2, 3, 1], np.float32), x, y)
    np.testing.assert_allclose(ones, 1.0, atol=1e-6)
    edge = np.float32([[[-1.0, 1.0, 0.0, 0.0, 1.01, -1.01]]])
    across = np.float32([[[0.0, 0.0, 1.0, -1.0, 0.0, 0.0]]])
    seen = run_initialised(sweep.visible(tf.constant(edge), tf.constant(across),
                                         tf.ones_like(edge)))
    np.testing.assert_array_equal(seen[0, 0], [1, 1, 1, 1, 0, 0])


def test_bicubic_sampling_reads_pixels_exactly_and_keeps_edges():
    """The bicubic sampler (a rendering's colour path) reads each pixel at
    its centre, the border pixel up to the edge, and a linear ramp exactly
    between centres (away from the border); resampled half a pixel across
    an edge it keeps it steeper than the bilinear sampler, which averages
    the two pixels either side."""
    ramp = (np.arange(6, dtype=np.float32) / 5).reshape(1, 1, 1, 6, 1).repeat(3, axis=2)
    centres = (np.arange(6) + 0.5) / 3 - 1
    x = np.float32([[np.concatenate([centres, centres[:-1] + 1 / 6, [-1.0, 1.0]])]])
    y = np.zeros_like(x)
    read = run_initialised(sweep.sample_bicubic(tf.constant(ramp), tf.constant(x),
                                                tf.constant(y)))[0, 0, :, 0]
    np.testing.assert_allclose(read[:6], ramp[0, 0, 0, :, 0], atol=1e-6)
    # between centres away from the border (where the border pixel repeats)
    np.testing.assert_allclose(read[7:10], (ramp[0, 0, 0, 1:4, 0] + ramp[0, 0, 0, 2:5, 0]) / 2,
                               atol=1e-6)
    np.testing.assert_allclose(read[11:], [0.0, 1.0], atol=1e-6)

    edge = np.float32([0, 0, 0.2, 0.8, 1, 1]).reshape(1, 1, 1, 6, 1).repeat(3, axis=2)
    shifted = np.float32([[centres[:-1] + 1 / 6]])
    bilinear, bicubic = (
        run_initialised(sampler(tf.constant(edge), tf.constant(shifted),
                                tf.zeros_like(tf.constant(shifted))))[0, 0, :, 0]
        for sampler in (sweep.sample, sweep.sample_bicubic))
    np.testing.assert_allclose(bilinear, [0, 0.1, 0.5, 0.9, 1], atol=1e-6)
    # the cubic's weights half-way are -1/16, 9/16, 9/16, -1/16
    np.testing.assert_allclose(bicubic, [0, 0.0625, 0.5, 0.9375, 1], atol=1e-6)
    assert np.diff(bicubic).max() > np.diff(bilinear).max()


def _impulse_response_centre(size, row, column):
    """Centre of mass, in image positions as `sample` reads the half-size
    feature map, of the view features' response to a one-pixel impulse
    (box kernels, no biases: any offset is the layers' own)."""
    with tf.Graph().as_default():
        image = np.zeros([1, size, size, 3], np.float32)
        image[0, row, column] = 1.0
        features = sweep.view_features(tf.constant(image), 1)
        with tf.Session() as session:
            for variable in tf.global_variables():
                value = 1.0 if "kernel" in variable.op.name else 0.0
                session.run(variable.assign(tf.fill(variable.shape, value)))
            response = session.run(features)[0, :, :, 0]
    half = size // sweep.FEATURE_STRIDE
    cells = (np.arange(half) + 0.5) / half * 2 - 1
    return (np.sum(cells[None, :] * response) / response.sum(),
            np.sum(cells[:, None] * response) / response.sum())


def test_view_features_are_centred_where_the_sampler_reads_them():
    """One-pixel impulses (away from the zero-padded border) pushed through
    the view convolutions land, on average over the pixels of a feature
    cell, exactly where they are in the image, and each within half a pixel (a stride-2 cell cannot say which of
    its two pixels lit up). A 3x3 stride-2 'SAME' layer would put them all
    half a pixel up and left."""
    size, pixel = 16, 2 / 16
    offsets = []
    for row, column in [(6, 8), (6, 9), (7, 8), (7, 9), (10, 5), (11, 4)]:
        x, y = _impulse_response_centre(size, row, column)
        offsets.append([x - ((column + 0.5) * pixel - 1), y - ((row + 0.5) * pixel - 1)])
    offsets = np.array(offsets)
    np.testing.assert_allclose(offsets.mean(axis=0), 0.0, atol=1e-6)
    assert np.abs(offsets).max() <= pixel / 2 + 1e-6


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


def test_depth_planes_run_near_to_far_evenly_in_inverse_depth_per_example():
    depths = run_initialised(sweep.depth_planes(tf.constant([[0.5, 4.0], [1.0, 2.0]]), 5))
    np.testing.assert_allclose(depths[:, [0, -1]], [[0.5, 4.0], [1.0, 2.0]], rtol=1e-6)
    np.testing.assert_allclose(np.diff(1 / depths[0]), (1 / 4.0 - 1 / 0.5) / 4, rtol=1e-5)
    np.testing.assert_allclose(np.diff(1 / depths[1]), (1 / 2.0 - 1 / 1.0) / 4, rtol=1e-5)


def test_ray_points_lie_on_planes_facing_the_query_camera():
    """Every point of a plane is at the plane's depth along the query
    camera's optical axis, and on the ray through its cell."""
    query = poses.encode_poses(CAMERAS[:2])
    planes = tf.constant([[0.5, 1.0, 3.0], [0.7, 0.8, 0.9]])
    points, rays = sweep.ray_points(query, tf.constant([0.8, 0.5]), planes, 4)
    points, rays, forward = run_initialised([points, rays, poses.camera_axes(query)[0]])
    points = points.reshape(2, 4, 4, 3, 3)
    offsets = points - CAMERAS[:2, None, None, None, :3]
    np.testing.assert_allclose(np.einsum("bijdk,bk->bijd", offsets, forward),
                               np.broadcast_to([[0.5, 1.0, 3.0], [0.7, 0.8, 0.9]],
                                               (4, 4, 2, 3)).transpose(2, 0, 1, 3),
                               rtol=1e-5)
    directions = offsets / np.linalg.norm(offsets, axis=-1, keepdims=True)
    np.testing.assert_allclose(directions, np.broadcast_to(rays[:, :, :, None],
                                                           directions.shape), atol=1e-5)


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_representation_is_on_the_query_grid_and_depends_on_the_query(precision):
    config = tiny_config(representation="sweep", precision=precision)
    features, _ = constant_batch(config)
    frames = tf.cast(features["context_frames"], tf.bfloat16 if precision == "bfloat16"
                     else tf.float32)
    context = poses.encode_poses(np.stack([np.roll(CAMERAS, i, 0)[:3] for i in range(4)]))
    angles, depth_range = tf.fill([4, 3], 0.8), tf.constant([[0.5, 3.0]] * 4)

    def representation(query):
        return sweep.sweep_representation(frames, context, angles,
                                          poses.encode_poses(query), tf.fill([4], 0.8),
                                          depth_range, config)
    with tf.variable_scope("r", reuse=tf.AUTO_REUSE):
        swept = representation(CAMERAS)
        turned = representation(CAMERAS + [0, 0, 0, 0.7, 0])
    r = swept.representation
    assert r.shape.as_list() == [4, 4, 4, config.representation_channels]
    assert swept.depth_logits.shape.as_list() == [4, 4, 4, config.sweep_depths]
    assert r.dtype == frames.dtype
    r, turned = run_initialised([tf.cast(r, tf.float32),
                                 tf.cast(turned.representation, tf.float32)])
    assert np.all(np.isfinite(r))
    assert np.abs(r - turned).max() > 1e-3
