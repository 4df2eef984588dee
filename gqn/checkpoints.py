"""Finding checkpoints and checking that one fits a model before it is used.

A warm start that silently skipped mismatched weights would fine-tune a
half-random network; these checks refuse such a checkpoint and list what does
not fit.
"""
import re

import tensorflow.compat.v1 as tf

from gqn import model


# Weights a checkpoint may lack: the colour path's blend weights start from
# designed values (gqn.colour_path.INITIAL_WEIGHTS), so a model pretrained
# before one of them existed still warm-starts, that one from its start.
STARTS_FRESH_REGEX = "^gqn/colour_path/"


class CheckpointError(ValueError):
    """A checkpoint that is missing or does not fit the model."""


def resolve_checkpoint(path):
    """A checkpoint prefix from a checkpoint path or a model_dir."""
    if tf.io.gfile.isdir(path):
        latest = tf.train.latest_checkpoint(path)
        if latest is None:
            raise CheckpointError(f"no checkpoint in model_dir {path}")
        return latest
    if not tf.io.gfile.exists(path + ".index"):
        raise CheckpointError(f"{path} is neither a model_dir nor a checkpoint "
                              f"(no {path}.index)")
    return path


def global_step_of(model_dir):
    """The global step of the newest checkpoint in `model_dir`, 0 if none."""
    latest = tf.train.latest_checkpoint(model_dir) if tf.io.gfile.isdir(model_dir) else None
    if latest is None:
        return 0
    return int(tf.train.load_variable(latest, tf.GraphKeys.GLOBAL_STEP))


def model_variable_shapes(config):
    """{name: shape} of every weight the model builds for `config`: the GQN
    alone, never the discriminator that sharpening trains beside it, so a
    sharpened run warm-starts from a checkpoint without one (and starts its
    discriminator fresh)."""
    with tf.Graph().as_default():
        features = {
            "context_frames": tf.zeros([1, 1, config.image_size, config.image_size, 3]),
            "context_poses": tf.zeros([1, 1, config.pose_dim]),
            "query_pose": tf.zeros([1, config.pose_dim]),
            model.CONTEXT_FIELD_OF_VIEW_KEY: tf.ones([1, 1]),
            model.QUERY_FIELD_OF_VIEW_KEY: tf.ones([1]),
            model.DEPTH_RANGE_KEY: tf.ones([1, 2]),
        }
        target = tf.zeros([1, config.image_size, config.image_size, 3])
        model.reconstruct(config, model.encode_scene(config, features), target,
                          model.standard_noise(config, 1))
        return {v.op.name: v.shape.as_list() for v in tf.global_variables()}


def check_warm_start(checkpoint, config, variables_regex):
    """Raises CheckpointError unless every model weight matching
    `variables_regex` is in `checkpoint` with the same shape, or is missing
    from it and may start fresh (STARTS_FRESH_REGEX). Returns the names to
    copy and the names that start fresh."""
    wanted = {name: shape for name, shape in model_variable_shapes(config).items()
              if re.match(variables_regex, name)}
    if not wanted:
        raise CheckpointError(f"--warm_start_vars {variables_regex!r} matches no "
                              "model weight")
    stored = dict(tf.train.list_variables(checkpoint))
    fresh = sorted(name for name in wanted
                   if name not in stored and re.match(STARTS_FRESH_REGEX, name))
    missing = sorted(name for name in wanted if name not in stored and name not in fresh)
    mismatched = sorted(
        f"{name}: model {wanted[name]} vs checkpoint {stored[name]}"
        for name in wanted
        if name in stored and list(stored[name]) != wanted[name])
    if missing or mismatched:
        lines = [f"checkpoint {checkpoint} does not fit this model:"]
        lines += [f"  missing: {name}" for name in missing]
        lines += [f"  shape:   {line}" for line in mismatched]
        raise CheckpointError("\n".join(lines))
    return sorted(set(wanted) - set(fresh)), fresh

