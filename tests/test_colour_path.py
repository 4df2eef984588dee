"""The full-resolution colour path and the plane-sweep baseline on generated
views of a textured plane: they reproduce what the cameras see, from the
geometry alone (the colour path at its initial weights)."""
import math

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from data_provider import synthetic
from gqn import colour_path, evaluation, objective, plane_sweep, poses, sweep
from gqn.model import CONTEXT_FIELD_OF_VIEW_KEY, DEPTH_RANGE_KEY, QUERY_FIELD_OF_VIEW_KEY
from tests.tiny import run_initialised

pytestmark = pytest.mark.usefixtures("fresh_graph")

FIELD_OF_VIEW = math.radians(45)
SIZE = 32
# Planes from 1 to 2.25 in inverse depth: with 11 of them, the sixth is at
# 1.5, where the textured plane stands in front of the cameras.
DEPTH_RANGE, NUM_PLANES, PLANE_DEPTH = (1.0, 2.25), 11, 1.5


def _plane_scene():
    """A textured wall in the plane x = 0, facing cameras on the -x side."""
    room = synthetic.Room([-6, -6, -6], [6, 6, 6], [(0.5, 0.5, 0.5)] * 6)
    wall = synthetic.Box([0.0, 0.0, 0.0], [0.01, 2.0, 2.0], (0.8, 0.6, 0.4))
    return synthetic.Scene(room, [wall], (-3, 0, 1), ambient=0.6, fov_y=FIELD_OF_VIEW)


def _facing(y, z, yaw=0.0, pitch=0.0):
    """A camera 1.5 in front of the wall, looking at it (turned by yaw, pitch)."""
    return [-PLANE_DEPTH, y, z, yaw % (2 * math.pi), pitch]


def _aimed_at_origin(azimuth, elevation=0.0, distance=1.5):
    position = distance * np.array([-math.cos(azimuth) * math.cos(elevation),
                                    math.sin(azimuth) * math.cos(elevation),
                                    math.sin(elevation)])
    yaw, pitch = poses.yaw_pitch_of(-position)
    return [*position, yaw, pitch]


def _views(cameras):
    return synthetic.render(_plane_scene(), np.float32(cameras), SIZE, SIZE,
                            supersample=3, textured=True).astype(np.float32) / 255


def _inputs(context_cameras, query_camera):
    """Constant tensors of one example: context frames, poses and angles,
    the query's pose and angle, the depth range."""
    context = np.float32(context_cameras)
    return (tf.constant(_views(context)[None]), poses.encode_poses(context[None]),
            tf.fill([1, len(context)], np.float32(FIELD_OF_VIEW)),
            poses.encode_poses(np.float32([query_camera])),
            tf.constant([FIELD_OF_VIEW], tf.float32), tf.constant([DEPTH_RANGE]))


def _colour_path(context_cameras, query_camera):
    """The colour path's image at its initial weights, with flat depth
    scores from the sweep (the colour agreement alone chooses the depth)."""
    frames, context, angles, query, query_angle, depth_range = _inputs(
        context_cameras, query_camera)
    planes = sweep.depth_planes(depth_range, NUM_PLANES)
    return colour_path.without_network(frames, context, angles, query, query_angle, planes)


def _psnr(image, truth):
    return -10 * np.log10(np.mean(np.square(image - truth)))


NEAR_CONTEXT = [_facing(-0.3, -0.2), _facing(0.3, -0.2), _facing(-0.3, 0.2),
                _facing(0.3, 0.2), _facing(0.0, 0.25, 0.05)]
NEW_POSE = _facing(0.1, 0.05, -0.08, 0.03)


def test_planes_put_one_at_the_walls_depth():
    planes = run_initialised(sweep.depth_planes(tf.constant([DEPTH_RANGE]), NUM_PLANES))
    assert np.isclose(planes[0], PLANE_DEPTH, rtol=1e-6).sum() == 1


def test_colour_path_reproduces_a_context_view_from_its_own_pose():
    """Asked for the pose of context view 0, whose rays coincide with the
    query's at every depth, the colour path returns that view (to 1/50 of a
    grey level): the projection lands on its pixel centres and the blend
    favours the coinciding ray over views 50-55 degrees away."""
    own = _facing(0.05, -0.03, 0.02, 0.01)
    cameras = [own, _aimed_at_origin(math.radians(55)), _aimed_at_origin(math.radians(-55)),
               _aimed_at_origin(0.0, math.radians(50))]
    image = run_initialised(_colour_path(cameras, own).image)[0]
    np.testing.assert_allclose(image, _views([own])[0], atol=2e-4)


def test_colour_path_renders_the_textured_wall_from_a_new_pose():
    """A pose none of the five context views has: within 31 dB of the
    rendered truth (36 dB measured; the context mean is 28 dB), and where
    every context view sees the wall, the depth weights favour the wall's
    plane."""
    result = _colour_path(NEAR_CONTEXT, NEW_POSE)
    image, cues = run_initialised([result.image, result.cues])
    truth = _views([NEW_POSE])[0]
    assert _psnr(image[0], truth) > 31
    assert _psnr(image[0], truth) > _psnr(_views(NEAR_CONTEXT).mean(0), truth) + 5
    assert cues[0, ..., 0].max() == pytest.approx(1.0)  # every view sees it
    assert np.median(cues[0, ..., 2]) > 0.3  # one depth stands out


def test_rendered_share_is_whole_where_all_views_but_one_see_the_pixel():
    """The new pose's edge pixels are outside some of the five context
    views: a rendering takes all of the colour path where at most one view
    misses the pixel's points and less in proportion where more do."""
    result = _colour_path(NEAR_CONTEXT, NEW_POSE)
    seen, share = run_initialised([result.cues[..., 0], result.rendered_share[..., 0]])
    views = len(NEAR_CONTEXT)
    all_but_one = seen >= (views - 1) / views - 1e-6
    assert 0 < all_but_one.mean() < 1, "the pose must show pixels of both kinds"
    np.testing.assert_allclose(share[all_but_one], 1.0, atol=1e-6)
    np.testing.assert_allclose(share[~all_but_one],
                               seen[~all_but_one] * views / (views - 1), rtol=1e-5)
    assert share[~all_but_one].max() < 1


def _rendered_images(context_cameras, query_camera, foci, brighter_views=()):
    """The colour path's rendered image at its initial weights under each
    RenderingFocus in `foci`, and its training image (the last), with the
    frames of `brighter_views` 0.1 brighter (as a phone's exposure can
    make one frame)."""
    frames, context, angles, query, query_angle, depth_range = _inputs(
        context_cameras, query_camera)
    brighter = np.isin(np.arange(len(context_cameras)), brighter_views).astype(np.float32)
    frames = tf.minimum(frames + 0.1 * brighter[None, :, None, None, None], 1.0)
    planes = sweep.depth_planes(depth_range, NUM_PLANES)
    paths = [colour_path.without_network(frames, context, angles, query, query_angle, planes,
                                         colour_path.RenderingFocus(*focus)) for focus in foci]
    return [image[0] for image in run_initialised(
        [path.rendered_image for path in paths] + [paths[0].image])]


def _mean_gradient(image):
    return np.abs(np.diff(image, axis=0)).mean() + np.abs(np.diff(image, axis=1)).mean()


def test_view_focus_copies_a_view_at_the_query_and_blends_far_ones():
    """Focus 3 on the view blend (the presets'): one context camera stands
    0.02 from the query's (turned 0.6 degrees), four others 0.25-0.47 to
    the side (the wall is 1.5 away) with their exposure 0.1 brighter. The
    focused image follows the near view: 3.4 dB nearer the truth than
    training's blend, and sharper. Where every view is 40 degrees away,
    the focus fades out and the rendering is training's blend. At focus 1
    the rendered image is the training image itself."""
    near = _facing(0.12, 0.06, -0.09, 0.035)
    focused, unfocused, trained = _rendered_images(
        [near] + NEAR_CONTEXT[:4], NEW_POSE, [(3.0, 1.0), (1.0, 1.0)], brighter_views=[1, 2, 3, 4])
    np.testing.assert_array_equal(unfocused, trained)
    truth = _views([NEW_POSE])[0]
    assert _psnr(focused, truth) > _psnr(trained, truth) + 2
    assert _mean_gradient(focused) > _mean_gradient(trained)

    far = [_aimed_at_origin(math.radians(40)), _aimed_at_origin(math.radians(-40)),
           _aimed_at_origin(0.0, math.radians(40))]
    focused, trained = _rendered_images(far, _aimed_at_origin(0.0), [(3.0, 1.0)])
    np.testing.assert_allclose(focused, trained, atol=1e-4)


def test_depth_focus_sharpens_the_rendering():
    """Focus 2 on the depth scores commits each pixel to fewer planes: with
    three context views 40 degrees from the query, the rendering's mean
    gradient rises (by 11% measured) while it stays within 31 dB of the
    truth (32.4 measured)."""
    far = [_aimed_at_origin(math.radians(40)), _aimed_at_origin(math.radians(-40)),
           _aimed_at_origin(0.0, math.radians(40))]
    query = _aimed_at_origin(0.0)
    focused, trained = _rendered_images(far, query, [(1.0, 2.0)])
    assert _mean_gradient(focused) > 1.05 * _mean_gradient(trained)
    assert _psnr(focused, _views([query])[0]) > 31


def test_plane_sweep_finds_the_wall_at_its_depth():
    """The training-free baseline picks the wall's plane for most pixels and
    renders the new pose within 31 dB (34.8 measured)."""
    swept = plane_sweep.plane_sweep(*_inputs(NEAR_CONTEXT, NEW_POSE), NUM_PLANES)
    image, depth = run_initialised([swept.image, swept.depth])
    assert np.mean(np.isclose(depth[0], PLANE_DEPTH, rtol=1e-5)) > 0.75
    assert _psnr(image[0], _views([NEW_POSE])[0]) > 31


def _wall_correlation(gains):
    """The patch correlation of the five near views of the textured wall,
    its texture's contrast raised 8-fold (the generator's is faint, below
    the correlation's texture floor) and each view's brightness scaled by
    its gain, seen from NEW_POSE: (H, W, D)."""
    frames, context, angles, query, query_angle, depth_range = _inputs(NEAR_CONTEXT, NEW_POSE)
    frames = ((frames - tf.reduce_mean(frames)) * 8 + 0.5) * tf.constant(
        np.float32(gains))[None, :, None, None, None]
    planes = sweep.depth_planes(depth_range, NUM_PLANES)
    samples, visibility, _ = plane_sweep.colours_along_rays(
        frames, context, angles, query, query_angle, planes, SIZE)
    grid = [1, SIZE, SIZE, NUM_PLANES]
    return run_initialised(colour_path._patch_correlation(samples, visibility, grid))[0]


def test_patch_correlation_finds_the_wall_whatever_each_views_exposure():
    """Where the views' windows lie on the wall (on its plane), their
    texture correlates almost perfectly (median 0.91 measured); most pixels
    score best there (75%); and scaling each view's brightness, as a
    phone's exposure does, changes the scores little (by 0.024 on average)
    and the best plane nowhere that matters."""
    even = _wall_correlation([1.0] * 5)
    uneven = _wall_correlation([0.7, 1.0, 1.2, 0.85, 1.1])
    planes = run_initialised(sweep.depth_planes(tf.constant([DEPTH_RANGE]), NUM_PLANES))[0]
    wall = int(np.argmin(np.abs(planes - PLANE_DEPTH)))
    assert np.median(even[..., wall]) > 0.85
    for scores in (even, uneven):
        assert np.mean(np.argmax(scores, -1) == wall) > 0.7
    assert np.mean(np.abs(uneven - even)) < 0.05


def test_patch_correlation_ignores_texture_that_one_view_alone_shows():
    """One view sees an edge, two see a flat grey: the edge correlates with
    no other view, so the score is 0 (against the mean of all views,
    itself included, it would correlate perfectly)."""
    size = 4
    edge = np.zeros([size, size], np.float32)
    edge[:, size // 2:] = 1.0
    brightness = np.stack([edge, np.full_like(edge, 0.5), np.full_like(edge, 0.5)])
    samples = np.repeat(brightness.reshape(1, 3, size * size, 1), 3, -1)
    correlation = run_initialised(colour_path._patch_correlation(
        tf.constant(samples), tf.ones([1, 3, size * size]), [1, size, size, 1]))
    np.testing.assert_allclose(correlation, 0.0, atol=1e-3)


def test_reprojection_baseline_renders_the_wall_as_the_untrained_colour_path():
    """The evaluation's 'reprojection' baseline is the colour path before
    any training: on the wall seen from a new pose it scores above 31 dB
    against the truth (36.0 measured, on the presets' 12 planes, none
    exactly at the wall) and 5 dB above the context mean (28.0)."""
    with tf.Session() as session:
        values = session.run(_inputs(NEAR_CONTEXT, NEW_POSE))
    truth = _views([NEW_POSE])[0]
    scenes = dict(zip(["context_frames", "context_poses", CONTEXT_FIELD_OF_VIEW_KEY,
                       "query_pose", QUERY_FIELD_OF_VIEW_KEY, DEPTH_RANGE_KEY], values),
                  target=truth[None])
    views = evaluation.baseline_views(scenes)
    assert _psnr(views["reprojection"][0], truth) > 31
    assert (_psnr(views["reprojection"][0], truth)
            > _psnr(views["context_mean"][0], truth) + 5)


def test_depth_loss_moves_each_pixels_depth_weights_to_the_planes_that_explain_it():
    """The depth choice's likelihood (gqn.objective.depth_choice_nll) of the
    wall seen from a new pose, descended from flat depth weights (the
    colours fixed): the likelihood rises, each seen pixel's largest weight
    lands on the plane whose colour is nearest the truth (for 95% of them),
    and the weighted image is 1 dB nearer the truth than the flat weights'
    (+1.6 measured: on this smooth texture neighbouring planes differ by
    little)."""
    result = _colour_path(NEAR_CONTEXT, NEW_POSE).depth_choice
    logits = tf.Variable(tf.zeros_like(result.log_weights))
    choice = result._replace(log_weights=tf.nn.log_softmax(logits))
    truth = _views([NEW_POSE])
    nll = objective.depth_choice_nll(truth, choice)
    descend = tf.train.GradientDescentOptimizer(0.5).minimize(
        tf.reduce_sum(nll), var_list=[logits])
    image = tf.reduce_sum(tf.exp(choice.log_weights)[..., None] * choice.colours, 3)
    with tf.Session() as session:
        session.run(tf.global_variables_initializer())
        before, flat, colours, seen = session.run([nll, image, result.colours, result.seen])
        for _ in range(50):
            session.run(descend)
        after, weighted, log_weights = session.run([nll, image, choice.log_weights])
    assert after[0] < before[0]
    everywhere = seen[0].min(-1) == 1
    nearest = np.square(colours[0] - truth[0][:, :, None]).sum(-1).argmin(-1)
    agree = (log_weights[0].argmax(-1) == nearest)[everywhere]
    assert agree.mean() > 0.95
    assert (_psnr(weighted[0][everywhere], truth[0][everywhere])
            > _psnr(flat[0][everywhere], truth[0][everywhere]) + 1)
