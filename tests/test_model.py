"""Shapes, the KL, the schedules and the train/generation consistency of the
GQN graph (without the colour path, whose mix a rendering chooses apart
from training), on tiny configs."""
import collections

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from gqn import draw, latent, model, objective, poses, representation, schedules
from tests.tiny import constant_batch, random_batch, run_initialised, tiny_config


pytestmark = pytest.mark.usefixtures("fresh_graph")


@pytest.mark.parametrize("kind,colour", [("tower", False), ("pool", False),
                                         ("sweep", False), ("sweep", True)])
@pytest.mark.parametrize("size", [16, 32])
def test_module_shapes_are_static(kind, colour, size):
    config = tiny_config(representation=kind, image_size=size, colour_path=colour)
    features, labels = constant_batch(config)
    batch, quarter = config.batch_size, size // 4
    scene = model.encode_scene(config, features)
    assert scene.conditioning.shape.as_list() == [
        batch, quarter, quarter, config.pose_dim + config.representation_channels]
    assert (scene.colours is not None) == colour
    if colour:
        assert scene.colours.image.shape.as_list() == [batch, size, size, 3]
    if kind in representation.ENCODERS:  # the paper's per-view encoders
        code = representation.ENCODERS[kind](
            features["context_frames"][:, 0], features["context_poses"][:, 0],
            config.representation_channels)
        code_size = quarter if kind == "tower" else 1
        assert code.shape.as_list() == [batch, code_size, code_size,
                                        config.representation_channels]
    rendering = model.reconstruct(config, scene, labels,
                                  model.standard_noise(config, batch))
    assert rendering.mean_image.shape.as_list() == [batch, size, size, 3]
    assert len(rendering.steps) == config.seq_length
    for step in rendering.steps:
        for gaussian in (step.prior, step.posterior):
            assert gaussian.mean.shape.as_list() == [batch, quarter, quarter,
                                                     config.z_channels]
            assert gaussian.stddev.dtype == tf.float32
    image, kls = run_initialised([rendering.mean_image, model.step_kls(rendering)])
    assert 0.0 <= image.min() and image.max() <= 1.0
    assert all(kl.shape == (batch,) and np.all(kl >= 0) for kl in kls)


@pytest.mark.parametrize("upsample", ["transposed", "subpixel", "resize_conv"])
def test_upsamplers_fill_the_canvas(upsample):
    config = tiny_config(upsample=upsample)
    hidden = tf.random.normal([2, 4, 4, config.hidden_channels])
    canvas = draw.upsample_to_canvas(hidden, config)
    assert canvas.shape.as_list() == [2, 16, 16, config.canvas_channels]


def test_kl_matches_monte_carlo():
    rng = np.random.RandomState(1)
    shape = [1, 2, 2, 3]
    q = latent.Gaussian(tf.constant(rng.randn(*shape), tf.float32),
                        tf.constant(rng.uniform(0.3, 1.5, shape), tf.float32))
    p = latent.Gaussian(tf.constant(rng.randn(*shape), tf.float32),
                        tf.constant(rng.uniform(0.3, 1.5, shape), tf.float32))
    samples = 200_000
    z = q.mean + q.stddev * tf.random.normal([samples] + shape[1:], seed=3)

    def log_density(gaussian, values):
        return tf.reduce_sum(-0.5 * np.log(2 * np.pi) - tf.log(gaussian.stddev)
                             - 0.5 * tf.square((values - gaussian.mean) / gaussian.stddev),
                             axis=[1, 2, 3])

    estimate = tf.reduce_mean(log_density(q, z) - log_density(p, z))
    analytic, monte_carlo = run_initialised([latent.kl_divergence(q, p)[0], estimate])
    assert analytic > 0.5
    assert abs(analytic - monte_carlo) < 0.02 * analytic + 0.02


def test_gaussian_head_sigma_positive_and_finite_for_extreme_inputs():
    hidden = tf.constant(np.array([-1e4, 0.0, 1e4], np.float32).reshape(1, 1, 3, 1)
                         * np.ones([1, 3, 3, 1], np.float32))
    head = latent.gaussian_head(hidden, 2, "head")
    stddev, kl = run_initialised([head.stddev, latent.kl_divergence(head, latent.Gaussian(
        tf.zeros_like(head.mean), tf.ones_like(head.stddev)))])
    assert np.all(stddev >= latent.MIN_SIGMA) and np.all(np.isfinite(stddev))
    assert np.all(np.isfinite(kl))


@pytest.mark.parametrize("step,lr,sigma", [
    (0, 5e-4, 2.0),
    (100_000, None, 1.35),
    (800_000, 2.75e-4, 0.7),
    (1_600_000, 5e-5, 0.7),
    (5_000_000, 5e-5, 0.7),
])
def test_schedules(step, lr, sigma):
    config = tiny_config()
    got_lr, got_sigma = run_initialised([schedules.learning_rate(config, tf.constant(step, tf.int64)),
                              schedules.pixel_sigma(config, tf.constant(step, tf.int64))])
    if lr is not None:
        assert got_lr == pytest.approx(lr, rel=1e-5)
    assert got_sigma == pytest.approx(sigma, rel=1e-5)


@pytest.mark.parametrize("shared", [True, False])
def test_training_prior_equals_generation_prior_for_same_latents(shared):
    """Replaying the posterior's latents through the generation unroll gives
    the training unroll's prior at every step: both read p from the generator
    state before it consumes z."""
    config = tiny_config(share_core_weights=shared, seq_length=4)
    features, labels = constant_batch(config)
    noises = model.standard_noise(config, config.batch_size)
    scene = model.encode_scene(config, features)
    training = model.reconstruct(config, scene, labels, noises)
    replay = model.generate(config, scene, noises,
                            forced_latents=[step.z for step in training.steps])
    fetches = [[s.prior.mean, s.prior.stddev] for s in training.steps]
    replayed = [[s.prior.mean, s.prior.stddev] for s in replay.steps]
    first, second, images = run_initialised([fetches, replayed,
                                  [training.mean_image, replay.mean_image]])
    for step_train, step_gen in zip(first, second):
        np.testing.assert_allclose(step_train[0], step_gen[0], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(step_train[1], step_gen[1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(images[0], images[1], rtol=1e-5, atol=1e-6)
    # and the priors do move with the latents (not a constant)
    assert not np.allclose(first[0][0], first[-1][0])


@pytest.mark.parametrize("rendered", ["seen", "learnt"])
def test_rendering_mixes_the_colour_path_by_the_configured_share(rendered):
    """The training reconstruction follows the learnt share of the colour
    path (its logit is the mix's fourth channel); a generation follows it
    only with rendered_colour_share='learnt'. With 'seen' it ignores the
    logit and, where the path's rendered_share is whole, shows the path's
    rendered image itself (the correction's gain starts at 0)."""
    config = tiny_config(representation="sweep", colour_path=True,
                         rendered_colour_share=rendered)
    features, labels = random_batch(config)
    # Examples 0 and 1: a real camera (random encodings are not unit sines
    # and cosines), and two of the three context cameras are it, so every
    # pixel is seen by all views but one at least; the other examples'
    # random cameras see little of what their query does.
    features["query_pose"][:2] = poses.encode_poses_np(np.float32([[2, 0, 0.5, np.pi, -0.2]]))
    for key, query_key in (("context_poses", "query_pose"),
                           (model.CONTEXT_FIELD_OF_VIEW_KEY, model.QUERY_FIELD_OF_VIEW_KEY)):
        features[key][:2, :2] = features[query_key][:2, None]
    features = {key: tf.constant(value) for key, value in features.items()}
    labels = tf.constant(labels)
    noises = model.standard_noise(config, config.batch_size,
                                  seeds=tf.range(config.batch_size))
    scene = model.encode_scene(config, features)
    images = [model.reconstruct(config, scene, labels, noises).mean_image,
              model.generate(config, scene, noises).mean_image,
              scene.colours.rendered_image, scene.colours.rendered_share[..., 0]]
    bias, = [v for v in tf.global_variables() if "observation_mix/bias" in v.op.name]
    with tf.Session() as session:
        session.run(tf.global_variables_initializer())
        runs = []
        for share_logit in (-20.0, 20.0):
            session.run(bias[3].assign(share_logit))
            runs.append(session.run(images))
    reconstruction_moved, generation_moved = (
        np.abs(runs[0][index] - runs[1][index]).max() for index in (0, 1))
    assert reconstruction_moved > 1e-2
    if rendered == "seen":
        assert generation_moved == 0
        generated, reprojected, share = runs[0][1:]
        whole = share > 1 - 1e-6
        assert whole[:2].all() and not whole[2:].all()
        np.testing.assert_allclose(generated[whole], reprojected[whole], atol=1e-6)
        assert np.abs(generated[~whole] - reprojected[~whole]).max() > 1e-2
    else:
        assert generation_moved > 1e-2


def test_a_rendering_sweeps_more_planes_with_the_trained_variables():
    """GQNConfig.rendering() sweeps rendered_sweep_multiple times the
    planes. The sweep's networks are shared by its planes, so a rendering
    graph built beside a training one creates no variable of its own (a
    checkpoint of the training graph restores into it), and with the same
    weights it renders a different image (its planes are not the
    training's)."""
    config = tiny_config(representation="sweep", colour_path=True)
    rendering = config.rendering()
    assert rendering.sweep_depths == config.rendered_sweep_multiple * config.sweep_depths > config.sweep_depths
    features, _ = constant_batch(config)
    noises = model.standard_noise(config, config.batch_size, seeds=tf.range(config.batch_size))
    images = [model.generate(config, model.encode_scene(config, features), noises).mean_image]
    trained_variables = {v.op.name: v.shape.as_list() for v in tf.global_variables()}
    images.append(model.generate(rendering, model.encode_scene(rendering, features),
                                 noises).mean_image)
    assert {v.op.name: v.shape.as_list() for v in tf.global_variables()} == trained_variables
    trained, rendered = run_initialised(images)
    assert np.abs(trained - rendered).max() > 1e-3


@pytest.mark.parametrize("shared", [True, False])
def test_cores_convolve_fixed_inputs_once_per_weights(shared):
    """Query pose, representation and target are convolved into the core
    gates once per set of core weights (once per unroll when shared); each
    step convolves only its changing inputs and h, never the whole input."""
    config = tiny_config(share_core_weights=shared, seq_length=4)
    features, labels = constant_batch(config)
    model.reconstruct(config, model.encode_scene(config, features), labels,
                      model.standard_noise(config, config.batch_size))
    gate_convolutions = collections.Counter(
        op.inputs[0].shape.as_list()[-1]
        for op in tf.get_default_graph().get_operations()
        if op.type == "Conv2D"
        and op.outputs[0].shape.as_list()[-1] == 4 * config.hidden_channels)
    steps, hidden = config.seq_length, config.hidden_channels
    conditioning = config.pose_dim + config.representation_channels
    fixed_convolutions = 1 if shared else steps
    assert gate_convolutions == {
        conditioning: fixed_convolutions,  # generator: conditioning
        config.target_feature_channels + conditioning: fixed_convolutions,
        config.z_channels + hidden: steps,  # generator: z, h
        3 * hidden: steps,  # inference: generator h, canvas features, h
    }


def test_paper_choices_linear_mean_and_no_forget_bias_offset():
    """The paper preset's observation mean is the 1x1 convolution itself
    (no sigmoid), and its gates carry no forget bias: with zero weights the
    mean is the convolution's bias and the first cell state is half the
    candidate (sigmoid(0) = 0.5) - with the package's choices, sigmoid(bias)
    and sigmoid(1) times the candidate."""
    from gqn import conv_lstm
    for choices, expected_mean, forget_gate in (
            (dict(observation_sigmoid=False, forget_bias=0.0), 2.0, 0.5),
            (dict(observation_sigmoid=True, forget_bias=1.0),
             1 / (1 + np.exp(-2.0)), 1 / (1 + np.exp(-1.0)))):
        with tf.Graph().as_default():
            config = tiny_config(**choices)
            with tf.variable_scope("paper"):
                mean = draw.observation_mean(tf.zeros([1, 4, 4, 5]), config)
            core = conv_lstm.ConvLSTMCore("core", tf.zeros([1, 4, 4, 2]), 1, 3, 3,
                                          forget_bias=config.forget_bias)
            state = core.step(tf.zeros([1, 4, 4, 1]),
                              conv_lstm.LSTMState(tf.zeros([1, 4, 4, 3]),
                                                  tf.ones([1, 4, 4, 3])))
            with tf.Session() as session:
                session.run(tf.global_variables_initializer())
                for variable in tf.global_variables():  # zero weights, biases 2
                    value = 2.0 if "observation/bias" in variable.op.name else 0.0
                    session.run(variable.assign(tf.fill(variable.shape, value)))
                mean, cell = session.run([mean, state.cell])
        np.testing.assert_allclose(mean, expected_mean, rtol=1e-6)
        # c = f * c_0 (ones) + i * tanh(0): the forget gate alone
        np.testing.assert_allclose(cell, forget_gate, rtol=1e-6)


@pytest.mark.parametrize("correction", [True, False])
def test_colour_correction_channels_reach_the_image_only_when_configured(correction):
    """With the colour path, the observation's last three mix channels are
    the generator's correction of the reprojected image: they change the
    image when config.colour_correction is on (gain set to 0.5), and leave
    it as it is, and no gain variable in the graph, when it is off."""
    from gqn.colour_path import CUE_CHANNELS, ColourPath
    config = tiny_config(colour_correction=correction)
    rng = np.random.default_rng(0)
    images = []
    with tf.Graph().as_default():
        canvas = tf.constant(rng.normal(size=[2, 4, 4, 5]), tf.float32)
        reprojected = tf.constant(rng.uniform(size=[2, 4, 4, 3]), tf.float32)
        colours = ColourPath(
            reprojected, tf.constant(rng.uniform(size=[2, 4, 4, CUE_CHANNELS]), tf.float32),
            reprojected, tf.constant(rng.uniform(size=[2, 4, 4, 1]), tf.float32), None)
        mean = draw.observation_mean(canvas, config, colours)
        kernel, = [v for v in tf.global_variables() if "observation_mix/kernel" in v.op.name]
        gains = [v for v in tf.global_variables() if "correction_gain" in v.op.name]
        assert len(gains) == int(correction)
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            for gain in gains:
                session.run(gain.assign(0.5))
            weights = session.run(kernel)
            for scale in (0.0, 3.0):
                changed = weights.copy()
                changed[..., 4:] = scale * rng.normal(size=changed[..., 4:].shape)
                session.run(kernel.assign(changed))
                images.append(session.run(mean))
    difference = np.abs(images[0] - images[1]).max()
    assert (difference > 1e-3) if correction else (difference == 0), difference


def test_seeded_noise_is_per_example():
    config = tiny_config()
    seeds = tf.constant([7, 8, 7, 9], tf.int64)
    noise = model.standard_noise(config, 4, seeds)
    again = model.standard_noise(config, 2, tf.constant([9, 7], tf.int64))
    first, second = run_initialised([noise, again])
    np.testing.assert_array_equal(first[0][0], first[0][2])
    np.testing.assert_array_equal(first[1][3], second[1][0])
    assert not np.allclose(first[0][0], first[0][1])


def test_objective_matches_closed_form():
    config = tiny_config()
    _, labels = random_batch(config)
    mean = np.clip(labels + 0.1, 0, 1)
    sigma = 0.7
    nll = run_initialised(objective.gaussian_nll(tf.constant(labels), tf.constant(mean), sigma))
    expected = np.sum(0.5 * np.log(2 * np.pi * sigma ** 2)
                      + (labels - mean) ** 2 / (2 * sigma ** 2), axis=(1, 2, 3))
    np.testing.assert_allclose(nll, expected, rtol=1e-5)
    bits = run_initialised(objective.bits_per_dim(tf.constant(nll), config.pixels_per_image))
    np.testing.assert_allclose(bits, expected / (labels[0].size * np.log(2)) + 8, rtol=1e-5)


def test_image_metrics_and_blockiness():
    rng = np.random.RandomState(0)
    target = rng.rand(2, 16, 16, 3).astype(np.float32)
    smooth = np.cumsum(np.ones([2, 16, 16, 3], np.float32), axis=2) / 16.0
    blocky = np.repeat(np.repeat(rng.rand(2, 4, 4, 3), 4, axis=1), 4, axis=2)
    metrics, block_score = run_initialised([
        objective.image_metrics(tf.constant(target), tf.constant(target)),
        objective.blockiness(tf.constant(np.stack([smooth[0], blocky[0]]),
                                         tf.float32))])
    assert np.all(metrics["mse"] == 0) and np.all(metrics["ssim"] > 0.999)
    assert np.all(metrics["psnr"] > 100) or np.all(np.isinf(metrics["psnr"]))
    assert block_score[0] == pytest.approx(1.0, abs=1e-3)
    assert block_score[1] > 100


@pytest.mark.parametrize("key,shape,message", [
    ("query_pose", [4, 5], "query_pose must have shape \\[4, 7\\]"),
    ("context_poses", [4, 3, 6], "context_poses must have shape \\[4, 3, 7\\]"),
    ("context_frames", [4, 3, 12, 12, 3], "context_frames are 12x12x3"),
])
def test_check_features_names_the_bad_tensor(key, shape, message):
    config = tiny_config()
    features, labels = constant_batch(config)
    features[key] = tf.zeros(shape)
    with pytest.raises(ValueError, match=message):
        model.check_features(features, config, labels)


def test_check_features_rejects_unknown_batch_and_bad_labels():
    config = tiny_config()
    features, labels = constant_batch(config)
    with pytest.raises(ValueError, match="labels .* must have shape"):
        model.check_features(features, config, tf.zeros([4, 16, 16, 1]))
    features["context_frames"] = tf.placeholder(tf.float32, [None, 3, 16, 16, 3])
    with pytest.raises(ValueError, match="static shape"):
        model.check_features(features, config, labels)
