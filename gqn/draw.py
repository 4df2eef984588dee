"""The DRAW-style generation loop of GQN.

`draw_step` is the single step function of both unrolls:
- training (posterior): the inference core sees the target and proposes z
  from q; the prior p is read from the generator state *before* it consumes z;
- generation (prior): z is drawn from that same p.
Because both go through one function, training's prior and generation's
prior are the same computation of the same state.
"""
import collections

import tensorflow.compat.v1 as tf

from gqn import conv_lstm, latent, layers
from gqn.config import DOWNSAMPLE_FACTOR

DrawState = collections.namedtuple("DrawState",
                                   ["generator", "inference", "canvas"])
# prior/posterior: latent.Gaussian (posterior None when generating); z the
# latent the generator consumed at this step.
StepOutput = collections.namedtuple("StepOutput", ["prior", "posterior", "z"])


def _core_name(core, step, config):
    return core if config.share_core_weights else f"{core}_{step}"


def upsample_to_canvas(hidden, config):
    """Generator state (B, s, s, C) -> canvas increment (B, 4s, 4s, canvas)."""
    factor = DOWNSAMPLE_FACTOR
    if config.upsample == "transposed":
        return layers.conv2d_transpose(hidden, config.canvas_channels, factor,
                                       factor, "upsample")
    if config.upsample == "subpixel":
        features = layers.conv2d(hidden, config.canvas_channels * factor ** 2, 3,
                                 "upsample")
        return tf.nn.depth_to_space(features, factor)
    size = hidden.shape[1] * factor
    # (resize_bilinear returns float32 whatever it is given)
    resized = tf.cast(tf.image.resize_bilinear(hidden, [size, size],
                                               half_pixel_centers=True), hidden.dtype)
    return layers.conv2d(resized, config.canvas_channels, 3, "upsample")


StepCores = collections.namedtuple("StepCores", ["generator", "inference"])


def build_cores(config, conditioning, target_features=None):
    """The ConvLSTM cores of each step (one pair for all steps when weights
    are shared), with the gate share of their fixed inputs computed once:
    the generator's is the conditioning; the inference core's the target's
    patches and the conditioning. `target_features` absent: no inference
    core (generation)."""
    hidden, kernel_size = config.hidden_channels, config.lstm_kernel_size
    built = {}

    def core(kind, step, fixed_inputs, step_channels):
        name = _core_name(kind, step, config)
        if name not in built:
            built[name] = conv_lstm.ConvLSTMCore(name, fixed_inputs, step_channels,
                                                 hidden, kernel_size,
                                                 forget_bias=config.forget_bias)
        return built[name]

    if target_features is not None:
        inference_fixed = tf.concat([target_features, conditioning], axis=-1)
    cores = []
    for step in range(config.seq_length):
        inference = None
        if target_features is not None:
            # Step inputs: the generator's h and the canvas features.
            inference = core("inference_core", step, inference_fixed, 2 * hidden)
        generator = core("generator_core", step, conditioning, config.z_channels)
        cores.append(StepCores(generator, inference))
    return cores


def initial_state(config, batch_size, with_inference):
    size, channels = config.latent_size, config.hidden_channels
    generator = conv_lstm.zero_state(batch_size, size, channels)
    inference = (conv_lstm.zero_state(batch_size, size, channels)
                 if with_inference else None)
    canvas = tf.zeros([batch_size, config.image_size, config.image_size,
                       config.canvas_channels], tf.float32)
    return DrawState(generator, inference, canvas)


def draw_step(config, state, cores, noise, forced_z=None):
    """One step of either unroll.

    cores: this step's StepCores; with an inference core the step samples z
      from the posterior (training), without it from the prior.
    noise: N(0, 1) of shape (B, s, s, z) for this step's sample.
    forced_z: generation only; use this latent instead of sampling (lets a
      caller replay the latents of a training unroll).
    """
    # The states are float32 (gqn.conv_lstm); h is cast to the compute
    # dtype for the convolutions that read it.
    dtype = cores.generator.compute_dtype
    generator_hidden = tf.cast(state.generator.hidden, dtype)
    prior = latent.gaussian_head(generator_hidden, config.z_channels, "prior")
    posterior, inference = None, None
    if cores.inference is not None:
        canvas_features = layers.conv2d(
            tf.cast(state.canvas, dtype), config.hidden_channels,
            DOWNSAMPLE_FACTOR, "canvas_downsample", strides=DOWNSAMPLE_FACTOR)
        inference = cores.inference.step(
            tf.concat([generator_hidden, canvas_features], axis=-1),
            state.inference)
        posterior = latent.gaussian_head(tf.cast(inference.hidden, dtype),
                                         config.z_channels, "posterior")
        z = latent.sample(posterior, noise)
    elif forced_z is not None:
        z = forced_z
    else:
        z = latent.sample(prior, noise)
    generator = cores.generator.step(tf.cast(z, dtype), state.generator)
    canvas = state.canvas + tf.cast(
        upsample_to_canvas(tf.cast(generator.hidden, dtype), config), tf.float32)
    return DrawState(generator, inference, canvas), StepOutput(prior, posterior, z)


def unroll(config, conditioning, noises, target=None, forced_latents=None):
    """Runs the L steps (unrolled in Python: static shapes for XLA/TPU).

    conditioning: query pose and representation on the latent grid
      (B, s, s, 7 + R), computed once per unroll.
    With `target` (B, H, W, 3) it is the training unroll; without it, the
    generation unroll. Returns the final canvas (float32) and the per-step
    StepOutputs.
    """
    batch_size = conditioning.shape.as_list()[0]
    target_features = None
    if target is not None:
        # The target's 4x4 patches on the latent grid (B, s, s, 48).
        target_features = tf.cast(tf.space_to_depth(target, DOWNSAMPLE_FACTOR),
                                  conditioning.dtype)
    state = initial_state(config, batch_size, with_inference=target is not None)
    outputs = []
    with tf.variable_scope("draw", reuse=tf.AUTO_REUSE):
        cores = build_cores(config, conditioning, target_features)
        for step in range(config.seq_length):
            forced_z = forced_latents[step] if forced_latents is not None else None
            state, output = draw_step(config, state, cores[step], noises[step],
                                      forced_z)
            outputs.append(output)
    return state.canvas, outputs


# The colour path's share of the first observations where every view sees
# the pixel: sigmoid(3) = 0.95, so an untrained model shows the reprojected
# context and the generator learns where it must paint instead.
COLOUR_PATH_PRIOR = 3.0


def observation_mean(canvas, config, colours=None, rendering=False):
    """Canvas (B, H, W, C) -> mean image, computed in float32: a 1x1 conv,
    then a sigmoid into [0, 1] unless the config follows the paper's linear
    mean (config.observation_sigmoid).

    With the colour path's output (gqn.colour_path.ColourPath): per pixel,
    its reprojected image corrected by the generator, mixed with the
    generator's own image. The training reconstruction mixes the image by
    the learnt share below; a `rendering` (z from the prior) mixes the
    rendered image by config.rendered_colour_share: the path's
    rendered_share ('seen') or the learnt one. The correction is added, not blended, so the
    context's sharp detail survives a smooth correction (of exposure, of
    shading); its gain starts at 0, so an untrained model shows the
    reprojected context. Without config.colour_correction the reprojected
    image goes in as it is (the mix's correction channels go unused, so a
    model switches either way with the same variables). The learnt share
    follows the canvas and the path's cues and never exceeds the share of
    views that see the pixel's points (a pixel no context view sees is the
    generator's alone)."""
    with tf.variable_scope("draw", reuse=tf.AUTO_REUSE):
        if colours is None:
            mean = layers.conv2d(canvas, 3, 1, "observation")
            return tf.sigmoid(mean) if config.observation_sigmoid else mean
        outputs = layers.conv2d(tf.concat([canvas, colours.image, colours.cues], -1),
                                7, 1, "observation_mix")
        painted = outputs[..., :3]
        if config.observation_sigmoid:
            painted = tf.sigmoid(painted)
        corrected = colours.rendered_image if rendering else colours.image
        if config.colour_correction:
            gain = tf.get_variable("correction_gain", [], tf.float32,
                                   initializer=tf.zeros_initializer())
            corrected += gain * tf.tanh(outputs[..., 4:])
        if rendering and config.rendered_colour_share == "seen":
            share = colours.rendered_share
        else:
            share = tf.sigmoid(outputs[..., 3:4] + COLOUR_PATH_PRIOR) * colours.cues[..., :1]
        return share * corrected + (1 - share) * painted
