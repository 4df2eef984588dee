"""A conditional patch discriminator and the sharpening terms built on it.

The GQN's likelihood is a pixel Gaussian, so where the prior is unsure the
mean image it learns is a blur of the plausible views. A discriminator
that tells target views from generated ones, given the same scene, supplies
what the pixel loss cannot: a non-saturating GAN loss and feature matching
(L1 between its intermediate features of the target and of the generated
view), both added to the ELBO with the config's weights.

Which image is judged: the prior's generation, the image users see. The
posterior reconstruction sees the target and is already held close to it
by the likelihood; the prior's image is the blurry one. Judging it costs a
second (generation) unroll per training step besides the reconstruction
(the encoded scene is shared with it and with the discriminator's
conditioning): on the tiny preset about +60% op time per step, three
quarters of it the generation unroll, a fifth the discriminator.

The network: two stride-2 convolutions take the image down to the latent
grid (image_size / 4), where the query pose and the scene representation
(model.SceneEncoding.conditioning, gradient stopped: the GQN learns from the
discriminator only through the image it generates) are concatenated; two
3x3 convolutions then give one logit per patch (a 26-pixel receptive
field, PatchGAN-like for 32-64 px views).
Conditioning makes a view that is sharp but of the wrong scene or pose
fake too.

Stability: every kernel is spectrally normalised (Miyato et al. 2018), one
power iteration per step with the singular vector kept in a non-trainable
variable that the train op updates (no data-dependent control flow; TPU
safe). Measured on 600-step runs of a 16 px GQN on generated rooms (3 seeds,
means over the last 100 steps): with spectral normalisation the
discriminator's loss was 0.85 (lowest 0.59, spread 0.12) and the GQN's
adversarial term 1.26 (spread 0.24); unregularised, 0.68 (lowest 0.27,
spread 0.23) and 2.00 (spread 0.56), the discriminator pulling ahead. An R1
penalty on real images held the discriminator at chance (loss 1.386 =
2 ln 2) at weight 1, near it at 0.1 (1.377), and at 0.01 let it learn
slowly (1.30): a weight to tune per image size, and a second-order backward
pass through the discriminator. Spectral normalisation bounds the
discriminator without a weight to tune.

Weights: fine-tuning the tiny preset at 32 px for 1,200 steps from a
rooms-pretrained model (scripts/benchmark_quality.py's budget), adversarial
weight 1 changed sharpness by less than the seed spread (0.05 did nothing
with the tower encoder either); 3 and 5, with or without feature matching
10, raised it from 0.69-0.76 to 0.80-0.92 for 0.1-1.1 dB of PSNR; 30
collapsed to one pink view and 300 diverged.

Variables live under `discriminator/`, outside the GQN's `gqn/`, so a warm
start from a GQN checkpoint (estimator.MODEL_VARIABLES_REGEX) carries the
generator only and the discriminator starts fresh. Weights are float32,
computed in the config's precision like gqn.layers; the terms are float32.
"""
import collections

import tensorflow.compat.v1 as tf

from gqn import layers, model

SCOPE = "discriminator"
# Adam's beta1 for the discriminator: less momentum (DCGAN, pix2pix) keeps
# its updates from overshooting as the generator it judges moves.
ADAM_BETA1 = 0.5
ADAM_BETA2 = 0.999
LEAKY_SLOPE = 0.2

# logits (B, s, s) float32, one per patch; features: the hidden layers'
# activations, float32, for feature matching.
Judgement = collections.namedtuple("Judgement", ["logits", "features"])
# Per-example (B,) float32 terms, and the (variable, new value) pairs of the
# power iteration, for the train op to store once every gradient is computed.
SharpeningTerms = collections.namedtuple(
    "SharpeningTerms",
    ["d_loss", "g_adversarial", "feature_matching", "singular_vectors"])


def owns(variable):
    """Is `variable` one of the discriminator's?"""
    return variable.name.startswith(SCOPE + "/")


def _spectrally_normalised(kernel, singular_vectors):
    """`kernel` divided by its largest singular value (as a matrix
    (k * k * C_in, C_out)), estimated by one power iteration from the
    singular vector of the previous step; appends (that vector's variable,
    its new value) to `singular_vectors`."""
    out_channels = kernel.shape.as_list()[-1]
    matrix = tf.reshape(kernel, [-1, out_channels])
    estimate = tf.get_variable(
        "singular_vector", [out_channels], tf.float32,
        initializer=tf.random_normal_initializer(), trainable=False,
        aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
    left = tf.math.l2_normalize(tf.linalg.matvec(matrix, estimate))
    right = tf.stop_gradient(tf.math.l2_normalize(
        tf.linalg.matvec(matrix, left, transpose_a=True)))
    left = tf.stop_gradient(left)
    singular_vectors.append((estimate, right))
    singular_value = tf.reduce_sum(left * tf.linalg.matvec(matrix, right))
    return kernel / singular_value


def _conv(inputs, filters, kernel_size, name, singular_vectors, strides=1):
    """Spectrally normalised 'SAME' convolution with bias."""
    in_channels = inputs.shape.as_list()[-1]
    kernel, bias = layers.kernel_and_bias(
        name, [kernel_size, kernel_size, in_channels, filters], filters)
    with tf.variable_scope(name, reuse=tf.AUTO_REUSE):
        kernel = _spectrally_normalised(kernel, singular_vectors)
    return tf.nn.bias_add(layers.convolve(inputs, kernel, strides),
                          tf.cast(bias, inputs.dtype))


def judge(config, images, conditioning, singular_vectors):
    """Patch logits and features of `images` (B, H, W, 3) in [0, 1] given
    `conditioning` (B, s, s, 7 + R) on the latent grid; appends the
    power iteration's (variable, value) pairs to `singular_vectors`."""
    dtype = model.compute_dtype(config)
    channels = config.discriminator_channels
    hidden = tf.cast(images, dtype) * 2.0 - 1.0
    features = []
    with tf.variable_scope(SCOPE, reuse=tf.AUTO_REUSE):
        for index, (filters, size, strides) in enumerate(
                [(channels, 4, 2), (2 * channels, 4, 2), (4 * channels, 3, 1)]):
            if index == 2:  # on the latent grid now
                hidden = tf.concat([hidden, tf.cast(conditioning, dtype)], axis=-1)
            hidden = _conv(hidden, filters, size, f"conv{index}", singular_vectors,
                           strides)
            # Leaky ReLU as a maximum: grappler's remapper fuses a LeakyRelu
            # into the convolution and then fails on its gradient's input.
            hidden = tf.maximum(hidden, LEAKY_SLOPE * hidden)
            features.append(tf.cast(hidden, tf.float32))
        logits = _conv(hidden, 1, 3, "logits", singular_vectors)
    return Judgement(tf.cast(logits[..., 0], tf.float32), features)


def sharpening_terms(config, conditioning, target, generated):
    """The discriminator's loss and the GQN's adversarial and
    feature-matching terms, per example, from one discriminator pass over
    the targets and the generated views.

    One pass serves both players: the discriminator's loss is
    differentiated for its own variables only, so it needs no stop_gradient
    on `generated`; the GQN's terms reach its variables through the
    generated half alone (the targets' features are constants to it).
    `conditioning` is the GQN's encoded scene's (model.SceneEncoding), a
    constant here: the GQN learns from the discriminator's judgement of its
    images, not by moving what the judgement is conditioned on."""
    conditioning = tf.stop_gradient(conditioning)
    singular_vectors = []
    judgement = judge(config, tf.concat([target, generated], axis=0),
                      tf.concat([conditioning, conditioning], axis=0),
                      singular_vectors)
    real_logits, fake_logits = tf.split(judgement.logits, 2)

    def patch_mean(values):
        return tf.reduce_mean(values, axis=[1, 2])

    d_loss = patch_mean(tf.nn.softplus(-real_logits) + tf.nn.softplus(fake_logits))
    g_adversarial = patch_mean(tf.nn.softplus(-fake_logits))
    distances = []
    for layer in judgement.features:
        real, fake = tf.split(layer, 2)
        distances.append(tf.reduce_mean(tf.abs(real - fake), axis=[1, 2, 3]))
    feature_matching = tf.add_n(distances) / len(distances)
    return SharpeningTerms(d_loss, g_adversarial, feature_matching,
                           singular_vectors)


def variables():
    """The discriminator's trainable variables."""
    return tf.trainable_variables(SCOPE + "/")

