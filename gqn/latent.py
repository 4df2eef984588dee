"""Diagonal-Gaussian latents: the eta heads that map an LSTM state to a
distribution, reparameterised sampling and the analytic KL.

Distributions, samples and the KL are always float32, whatever precision the
networks compute in.
"""
import collections

import tensorflow.compat.v1 as tf

from gqn import layers

# Softplus keeps sigma positive for any input without the overflow of exp();
# the floor keeps log(sigma) and 1/sigma^2 finite when softplus underflows.
MIN_SIGMA = 1e-4
HEAD_KERNEL_SIZE = 5

Gaussian = collections.namedtuple("Gaussian", ["mean", "stddev"])


def gaussian_head(hidden, z_channels, name):
    """eta: (B, s, s, C) LSTM state -> Gaussian over (B, s, s, z_channels)."""
    params = layers.conv2d(hidden, 2 * z_channels, HEAD_KERNEL_SIZE, name)
    mean, raw_stddev = tf.split(tf.cast(params, tf.float32), 2, axis=-1)
    return Gaussian(mean, tf.nn.softplus(raw_stddev) + MIN_SIGMA)


def sample(gaussian, noise):
    """Reparameterised draw: mean + stddev * noise, noise ~ N(0, 1)."""
    return gaussian.mean + gaussian.stddev * noise


def kl_divergence(q, p):
    """KL(q || p) of diagonal Gaussians, summed per example -> (B,)."""
    variance_ratio = tf.square(q.stddev / p.stddev)
    mean_term = tf.square((q.mean - p.mean) / p.stddev)
    elementwise = 0.5 * (variance_ratio + mean_term - 1.0 - tf.log(variance_ratio))
    return tf.reduce_sum(elementwise, axis=[1, 2, 3])
