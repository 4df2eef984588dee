"""The training objective (negative ELBO) and the numbers reported beside it.

Everything here is per example, shape (B,), float32, so the model_fn can
average for the loss and the eval metrics can report a mean and its spread.
"""
import math

import tensorflow.compat.v1 as tf

LOG_2PI = math.log(2.0 * math.pi)
# Frames are 8-bit values scaled to [0, 1]: a density on [0, 1] relates to a
# density on [0, 256) by this many bits per dimension.
BITS_FOR_8BIT_SCALING = 8.0


def gaussian_nll(target, mean, sigma):
    """-log N(target | mean, sigma^2), summed over pixels -> (B,), in nats."""
    sigma = tf.cast(sigma, tf.float32)
    squared_error = tf.square(tf.cast(target, tf.float32) - mean)
    per_value = 0.5 * (LOG_2PI + 2.0 * tf.log(sigma) + squared_error / tf.square(sigma))
    return tf.reduce_sum(per_value, axis=[1, 2, 3])


def elbo_terms(target, mean, sigma, step_kls):
    """NLL, KL summed over the L steps, and the negative ELBO (B,) in nats."""
    nll = gaussian_nll(target, mean, sigma)
    kl = tf.add_n(step_kls)
    return {"nll": nll, "kl": kl, "elbo": nll + kl}


# The spread of a context view's colour about the truth on the right plane
# (each channel, images in [0, 1]): exposure, white balance and resampling
# differ between a phone's frames by a few percent.
DEPTH_CHOICE_SIGMA = 0.1


def depth_choice_nll(target, depth_choice):
    """-log sum_d w_d N(target | colour_d, DEPTH_CHOICE_SIGMA^2) per pixel,
    summed over the pixels some context view sees (B,), in nats: the depth
    taken as a latent choice among the colour path's planes
    (gqn.colour_path.DepthChoice), each plane a guess at the pixel.

    Why: the reconstruction's likelihood scores only the blend of the
    planes, mixed with the generator's image, and trained on it alone the
    colour path's own rendering ended below its starting weights' (the
    apple at 64 px: 22.21 against 22.39 dB). This mixture's gradient moves
    each pixel's depth weights towards the planes whose colours explain the
    target, as the depth oracle picks them, and the view blend towards the
    views that explain it there (22.68 dB; docs/benchmarks.md, "A loss on
    the depth choice")."""
    target = tf.cast(target, tf.float32)[:, :, :, None]
    squared_error = tf.reduce_sum(tf.square(depth_choice.colours - target), -1)
    log_likelihood = tf.reduce_logsumexp(
        depth_choice.log_weights - squared_error / (2 * DEPTH_CHOICE_SIGMA ** 2), -1)
    seen = tf.stop_gradient(tf.reduce_max(depth_choice.seen, -1))
    constant = 1.5 * (LOG_2PI + 2 * math.log(DEPTH_CHOICE_SIGMA))
    return -tf.reduce_sum(seen * (log_likelihood - constant), axis=[1, 2])


def bits_per_dim(nats, num_dims):
    """Negative ELBO in nats per image -> bits per 8-bit colour value."""
    return nats / (num_dims * math.log(2.0)) + BITS_FOR_8BIT_SCALING


def image_metrics(target, image):
    """MSE, PSNR (dB), SSIM and sharpness of images in [0, 1], per example."""
    target = tf.cast(target, tf.float32)
    image = tf.clip_by_value(tf.cast(image, tf.float32), 0.0, 1.0)
    size = min(target.shape.as_list()[1:3])
    return {
        "mse": tf.reduce_mean(tf.square(target - image), axis=[1, 2, 3]),
        "psnr": tf.image.psnr(target, image, max_val=1.0),
        "ssim": tf.image.ssim(target, image, max_val=1.0,
                              filter_size=min(11, size)),
        "sharpness": sharpness(target, image),
    }


# The names masked_image_metrics reports: the error on the object (the
# fruit) and on everything else (the wall and the table), each over its own
# pixels. Why both: the fruit covers a few percent of a still life, so the
# whole-image PSNR is mostly the background's, where a flat wall makes the
# context mean a strong answer; the two say which a model has learnt.
MASKED_METRICS = ("fruit_mse", "fruit_psnr", "background_mse", "background_psnr")


def _region_error(target, image, weights):
    """MSE and PSNR (dB) over the pixels `weights` (B, H, W, 1) marks,
    weighted by it, per example; NaN where it marks none."""
    covered = 3.0 * tf.reduce_sum(weights, axis=[1, 2, 3])
    squared = tf.reduce_sum(weights * tf.square(target - image), axis=[1, 2, 3])
    mse = tf.where(covered > 0, squared / tf.maximum(covered, 1e-12),
                   tf.fill(tf.shape(covered), float("nan")))
    return mse, -10.0 * tf.log(tf.maximum(mse, 1e-10)) / math.log(10.0)


def masked_image_metrics(target, image, mask):
    """MASKED_METRICS per example: MSE and PSNR over the pixels `mask` (B,
    H, W, 1) in [0, 1] marks (the object) and over the rest, each weighted
    by its share of the pixel. NaN for a region an example lacks."""
    target = tf.cast(target, tf.float32)
    image = tf.clip_by_value(tf.cast(image, tf.float32), 0.0, 1.0)
    mask = tf.cast(mask, tf.float32)
    return dict(zip(MASKED_METRICS, _region_error(target, image, mask)
                    + _region_error(target, image, 1.0 - mask)))


def _colour_steps(images):
    """|finite differences| between horizontal and vertical neighbours:
    (B, H, W-1, C) and (B, H-1, W, C), float32."""
    images = tf.cast(images, tf.float32)
    return (tf.abs(images[:, :, 1:] - images[:, :, :-1]),
            tf.abs(images[:, 1:] - images[:, :-1]))


def _mean_gradient(images):
    """Mean |image gradient| per example: mean |dx| + mean |dy| over pixels
    and channels."""
    return tf.add_n([tf.reduce_mean(steps, axis=[1, 2, 3])
                     for steps in _colour_steps(images)])


def sharpness(target, image):
    """Mean |image gradient| of `image` over that of `target`, per example:
    1 is as sharp as the truth, below 1 blurrier (a mean over plausible
    views, as an under-fitted generator draws, scores low even where its
    MSE is good), 0 flat. 0 too where the target itself is flat."""
    return tf.math.divide_no_nan(_mean_gradient(image), _mean_gradient(target))


def blockiness(images, block=4):
    """How much stronger colour steps are across block x block tile borders
    than inside tiles, per example (about 1 for natural images; the paper's
    stride-4 transposed-conv canvas raises it above 1). Static shapes (the
    border positions are gathered by constant indices), as a TPU needs."""
    dx, dy = _colour_steps(images)
    dx = tf.reduce_mean(dx, axis=[1, 3])
    dy = tf.reduce_mean(dy, axis=[2, 3])
    steps = tf.concat([dx, dy], axis=1)  # (B, 2 * (size - 1)), index i: i|i+1
    width = images.shape.as_list()[2]
    is_border = [(i + 1) % block == 0 for i in range(width - 1)] * 2
    border = tf.gather(steps, [i for i, b in enumerate(is_border) if b], axis=1)
    inside = tf.gather(steps, [i for i, b in enumerate(is_border) if not b], axis=1)
    return tf.reduce_mean(border, axis=1) / (tf.reduce_mean(inside, axis=1) + 1e-6)
