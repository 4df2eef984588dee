"""The whole network: representation -> conditioning -> DRAW unroll -> image.

Inputs are the reader's features: context_frames (B, M, H, W, 3),
context_poses (B, M, 7), query_pose (B, 7). Networks compute in the
config's precision; the latent distributions, canvas, image and all loss
terms stay float32.
"""
import collections

import tensorflow.compat.v1 as tf

from gqn import draw, latent, representation

FEATURE_KEYS = ("context_frames", "context_poses", "query_pose")
# Test features of sets with object masks: where the target shows the
# object (B, H, W, 1); evaluation only, never a network input.
TARGET_MASK_KEY = "target_mask"

Rendering = collections.namedtuple("Rendering", ["mean_image", "steps"])


def compute_dtype(config):
    return tf.as_dtype(config.precision)


def check_features(features, config, labels=None):
    """Raises ValueError naming the tensor whose static shape is wrong,
    before any graph is run."""
    missing = [key for key in FEATURE_KEYS if key not in features]
    if missing:
        raise ValueError(f"features lack {missing}; expected keys {FEATURE_KEYS}")
    frames = features["context_frames"].shape
    if frames.rank != 5 or not frames.is_fully_defined():
        raise ValueError("context_frames must have a static shape (B, M, H, W, 3), "
                         f"got {frames}")
    batch, views, height, width, channels = frames.as_list()
    size = config.image_size
    if (height, width, channels) != (size, size, 3):
        raise ValueError(f"context_frames are {height}x{width}x{channels}, the "
                         f"config expects {size}x{size}x3 (image_size={size})")
    expected = {"context_poses": [batch, views, config.pose_dim],
                "query_pose": [batch, config.pose_dim]}
    for key, shape in expected.items():
        if features[key].shape.as_list() != shape:
            raise ValueError(f"{key} must have shape {shape} (poses are "
                             f"{config.pose_dim}-d), got {features[key].shape}")
    if labels is not None and labels.shape.as_list() != [batch, size, size, 3]:
        raise ValueError(f"labels (target frames) must have shape "
                         f"{[batch, size, size, 3]}, got {labels.shape}")


def conditioning(features, config):
    """Query pose and scene representation on the latent grid, in the
    compute dtype: the part of every core input that does not change across
    the L steps, computed once. The poses reach the representation as given
    (float32), so the sweep's geometry is not rounded to bfloat16."""
    dtype = compute_dtype(config)
    r = representation.scene_representation(
        tf.cast(features["context_frames"], dtype), features["context_poses"],
        features["query_pose"], config)
    size = config.latent_size
    pose = tf.cast(features["query_pose"], dtype)
    pose = tf.tile(pose[:, None, None, :], [1, size, size, 1])
    return tf.concat([pose, r], axis=-1)


def standard_noise(config, batch_size, seeds=None, sample_index=0):
    """The L unit-Gaussian noise tensors of one unroll.

    With `seeds` (int, shape (B,)) each example's noise is a pure function of
    its own seed and `sample_index` (stateless RNG), so a rendering does not
    depend on what else is in the batch or on how the graph was built.
    """
    size, channels = config.latent_size, config.z_channels
    if seeds is None:
        return [tf.random.normal([batch_size, size, size, channels])
                for _ in range(config.seq_length)]
    per_example = [config.seq_length, size, size, channels]
    index = tf.cast(sample_index, tf.int64)
    seeds = tf.cast(seeds, tf.int64)
    noise = tf.stack([
        tf.random.stateless_normal(per_example, seed=tf.stack([seeds[i], index]))
        for i in range(batch_size)])
    return tf.unstack(noise, axis=1)


def content_seeds(images):
    """One int seed per example from its pixels. Training draws its noise
    from (this seed, global step), so a run's noise does not depend on batch
    position, device split, precision or graph layout: variants of one run
    can be compared step for step."""
    sums = tf.reduce_sum(tf.cast(images, tf.float32), axis=[1, 2, 3])
    return tf.bitcast(sums, tf.int32)


def _render(config, features, noises, target=None, forced_latents=None):
    with tf.variable_scope("gqn", reuse=tf.AUTO_REUSE):
        conditions = conditioning(features, config)
        canvas, steps = draw.unroll(config, conditions, noises, target,
                                    forced_latents)
        return Rendering(draw.observation_mean(canvas, config), steps)


def reconstruct(config, features, target, noises):
    """Training unroll: z from the posterior given the target."""
    return _render(config, features, noises, target=target)


def generate(config, features, noises, forced_latents=None):
    """Generation unroll: z from the prior (or `forced_latents`)."""
    return _render(config, features, noises, forced_latents=forced_latents)


def step_kls(rendering):
    """Per-step KL(q || p), each (B,); only for a reconstruction."""
    return [latent.kl_divergence(step.posterior, step.prior)
            for step in rendering.steps]
