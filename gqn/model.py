"""The whole network: scene encoding (representation, conditioning, the
colour path) -> DRAW unroll -> image.

Inputs are the reader's features: context_frames (B, M, H, W, 3),
context_poses (B, M, 7), query_pose (B, 7), and the cameras beyond their
poses: context_field_of_view (B, M) and query_field_of_view (B,) in radians
across the frame, depth_range (B, 2) (near, far). Networks compute in the
config's precision; the geometry, latent distributions, canvas, image and
all loss terms stay float32.

The scene is encoded once per example (`encode_scene`) and the encoding is
shared by every unroll that renders it: the training reconstruction, the
generation, the discriminator's conditioning and each of several samples.
"""
import collections

import numpy as np
import tensorflow.compat.v1 as tf

from gqn import colour_path, draw, latent, representation, sweep

CONTEXT_FIELD_OF_VIEW_KEY = "context_field_of_view"
QUERY_FIELD_OF_VIEW_KEY = "query_field_of_view"
DEPTH_RANGE_KEY = "depth_range"
FEATURE_KEYS = ("context_frames", "context_poses", "query_pose",
                CONTEXT_FIELD_OF_VIEW_KEY, QUERY_FIELD_OF_VIEW_KEY, DEPTH_RANGE_KEY)
# Test features of sets with object masks: where the target shows the
# object (B, H, W, 1); evaluation only, never a network input.
TARGET_MASK_KEY = "target_mask"

Rendering = collections.namedtuple("Rendering", ["mean_image", "steps"])
# conditioning: query pose and representation on the latent grid (B, s, s,
# 7 + R) in the compute dtype; colours: the colour path's output
# (gqn.colour_path.ColourPath) or None.
SceneEncoding = collections.namedtuple("SceneEncoding", ["conditioning", "colours"])


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
                "query_pose": [batch, config.pose_dim],
                CONTEXT_FIELD_OF_VIEW_KEY: [batch, views],
                QUERY_FIELD_OF_VIEW_KEY: [batch],
                DEPTH_RANGE_KEY: [batch, 2]}
    for key, shape in expected.items():
        if features[key].shape.as_list() != shape:
            raise ValueError(f"{key} must have shape {shape} (poses are "
                             f"{config.pose_dim}-d; one field of view per view, "
                             f"near and far per example), got {features[key].shape}")
    if labels is not None and labels.shape.as_list() != [batch, size, size, 3]:
        raise ValueError(f"labels (target frames) must have shape "
                         f"{[batch, size, size, 3]}, got {labels.shape}")


def camera_features(features, config):
    """(context fields of view (B, M), query field of view (B,), depth range
    (B, 2)), float32; config.field_of_view, when set, overrides the angles."""
    angles = [tf.cast(features[key], tf.float32)
              for key in (CONTEXT_FIELD_OF_VIEW_KEY, QUERY_FIELD_OF_VIEW_KEY)]
    if config.field_of_view is not None:
        angles = [tf.fill(tf.shape(angle), np.float32(np.radians(config.field_of_view)))
                  for angle in angles]
    return angles[0], angles[1], tf.cast(features[DEPTH_RANGE_KEY], tf.float32)


def rendering_focus(config):
    """The colour path's RenderingFocus the config asks of a rendering."""
    return colour_path.RenderingFocus(config.rendered_view_focus, config.rendered_depth_focus)


def encode_scene(config, features):
    """The SceneEncoding of a batch, computed once for all its unrolls. The
    poses reach the geometry as given (float32), so it is not rounded to
    bfloat16; the colour path reads the frames in float32."""
    dtype = compute_dtype(config)
    frames, context_poses = features["context_frames"], features["context_poses"]
    query_pose = features["query_pose"]
    context_angle, query_angle, depth_range = camera_features(features, config)
    colours = None
    with tf.variable_scope("gqn", reuse=tf.AUTO_REUSE):
        with tf.variable_scope("representation", reuse=tf.AUTO_REUSE):
            if config.representation == "sweep":
                swept = sweep.sweep_representation(
                    tf.cast(frames, dtype), context_poses, context_angle, query_pose,
                    query_angle, depth_range, config)
                r = swept.representation
            else:
                r = representation.encoded_views(tf.cast(frames, dtype),
                                                 context_poses, config)
        if config.colour_path:
            colours = colour_path.colour_path(
                tf.cast(frames, tf.float32), context_poses, context_angle,
                query_pose, query_angle, swept, rendering_focus(config),
                config.colour_sampling)
    size = config.latent_size
    pose = tf.tile(tf.cast(query_pose, dtype)[:, None, None, :], [1, size, size, 1])
    return SceneEncoding(tf.concat([pose, r], axis=-1), colours)


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


def _render(config, scene, noises, target=None, forced_latents=None):
    """The training reconstruction (with `target`) or a rendering from the
    prior, which mixes in the colour path as gqn.draw.observation_mean
    says."""
    with tf.variable_scope("gqn", reuse=tf.AUTO_REUSE):
        canvas, steps = draw.unroll(config, scene.conditioning, noises, target,
                                    forced_latents)
        return Rendering(draw.observation_mean(canvas, config, scene.colours,
                                               rendering=target is None), steps)


def reconstruct(config, scene, target, noises):
    """Training unroll of an encoded scene: z from the posterior given the
    target."""
    return _render(config, scene, noises, target=target)


def generate(config, scene, noises, forced_latents=None):
    """Generation unroll of an encoded scene: z from the prior (or
    `forced_latents`)."""
    return _render(config, scene, noises, forced_latents=forced_latents)


def step_kls(rendering):
    """Per-step KL(q || p), each (B,); only for a reconstruction."""
    return [latent.kl_divergence(step.posterior, step.prior)
            for step in rendering.steps]
