"""Load a trained model_dir and render scenes from new camera poses.

The library behind eval_gqn.py and scripts/render.py. Poses may be given raw
(x, y, z, yaw, pitch; radians, as records and pose CSVs store them) or
already encoded (7-d); the last axis tells which. Rendering with the same
inputs and noise seeds gives the same images, as the exported SavedModel does.
"""
import numpy as np
import tensorflow.compat.v1 as tf

from gqn import hardware, model, objective, schedules
from gqn.checkpoints import resolve_checkpoint
from gqn.config import GQNConfig, config_path
from gqn.poses import POSE_DIM, RAW_POSE_DIM, encode_poses_np


def as_encoded_poses(poses):
    poses = np.asarray(poses, np.float32)
    if poses.shape[-1] == RAW_POSE_DIM:
        return encode_poses_np(poses)
    if poses.shape[-1] != POSE_DIM:
        raise ValueError(f"poses must end in {RAW_POSE_DIM} (x, y, z, yaw, pitch) "
                         f"or {POSE_DIM} encoded values, got shape {poses.shape}")
    return poses


class Predictor:
    """Renders and scores with one checkpoint of one model_dir.

    A graph and session are built per input shape on first use and kept.
    """

    def __init__(self, model_dir, checkpoint=None, precision=None):
        """precision: compute precision of the networks (default: the one
        the model_dir trained with)."""
        path = config_path(model_dir)
        if not tf.io.gfile.exists(path):
            raise FileNotFoundError(f"{path} not found: {model_dir} is not a "
                                    "model_dir written by train_gqn_draw.py")
        self.config = GQNConfig.load(path)
        self.config = self.config.replace(precision=hardware.effective_precision(
            precision or self.config.precision, use_tpu=False, log=tf.logging.warning))
        self.checkpoint = resolve_checkpoint(checkpoint or model_dir)
        self._sessions = {}

    def _session(self, key, build):
        """(session, placeholders, outputs) for `key`, built once."""
        if key not in self._sessions:
            graph = tf.Graph()
            with graph.as_default():
                placeholders, outputs = build()
                saver = tf.train.Saver(tf.global_variables())
            session = tf.Session(graph=graph)
            saver.restore(session, self.checkpoint)
            self._sessions[key] = (session, placeholders, outputs)
        return self._sessions[key]

    def _inputs(self, batch, views, with_target):
        size, config = self.config.image_size, self.config
        inputs = {
            "context_frames": tf.placeholder(tf.float32, [batch, views, size, size, 3]),
            "context_poses": tf.placeholder(tf.float32, [batch, views, config.pose_dim]),
            "query_pose": tf.placeholder(tf.float32, [batch, config.pose_dim]),
            model.CONTEXT_FIELD_OF_VIEW_KEY: tf.placeholder(tf.float32, [batch, views]),
            model.QUERY_FIELD_OF_VIEW_KEY: tf.placeholder(tf.float32, [batch]),
            model.DEPTH_RANGE_KEY: tf.placeholder(tf.float32, [batch, 2]),
            "seeds": tf.placeholder(tf.int64, [batch]),
        }
        if with_target:
            inputs["target"] = tf.placeholder(tf.float32, [batch, size, size, 3])
        return inputs

    def _feed(self, placeholders, features, seeds, target=None):
        missing = [key for key in model.FEATURE_KEYS if key not in features]
        if missing:
            raise ValueError(f"features lack {missing}; expected {model.FEATURE_KEYS}")
        values = {key: np.asarray(features[key], np.float32)
                  for key in model.FEATURE_KEYS}
        size = self.config.image_size
        frames = values["context_frames"]
        if frames.ndim != 5 or frames.shape[2:] != (size, size, 3):
            raise ValueError(f"context frames must be (B, M, {size}, {size}, 3) "
                             f"for this model, got {frames.shape}")
        for key in ("context_poses", "query_pose"):
            values[key] = as_encoded_poses(values[key])
        values["seeds"] = np.asarray(seeds, np.int64)
        if target is not None:
            values["target"] = np.asarray(target, np.float32)
        return {placeholders[key]: value for key, value in values.items()}

    def render(self, features, seeds, num_samples=1):
        """Generated mean images (B, num_samples, H, W, 3) in [0, 1] of
        `features` (model.FEATURE_KEYS: context frames, context and query
        poses, raw or encoded, fields of view in radians, depth range); the
        scene is encoded once for all samples, and sample k of an example
        depends only on its inputs, its seed and k."""
        batch, views = np.shape(features["context_frames"])[:2]
        config = self.config.rendering()

        def build():
            inputs = self._inputs(batch, views, with_target=False)
            scene = model.encode_scene(config, inputs)
            samples = [model.generate(config, scene, model.standard_noise(
                config, batch, inputs["seeds"], index)).mean_image
                for index in range(num_samples)]
            return inputs, tf.stack(samples, axis=1)

        session, placeholders, output = self._session(
            ("render", batch, views, num_samples), build)
        return session.run(output, self._feed(placeholders, features, seeds))

    def score(self, features, targets, seeds):
        """Per-example negative ELBO terms (nats) and bits/dim at the
        checkpoint's pixel sigma."""
        batch, views = np.shape(features["context_frames"])[:2]
        config = self.config

        def build():
            inputs = self._inputs(batch, views, with_target=True)
            reconstruction = model.reconstruct(
                config, model.encode_scene(config, inputs), inputs["target"],
                model.standard_noise(config, batch, inputs["seeds"]))
            sigma = schedules.pixel_sigma(config, tf.train.get_or_create_global_step())
            terms = objective.elbo_terms(inputs["target"], reconstruction.mean_image,
                                         sigma, model.step_kls(reconstruction))
            terms["bits_per_dim"] = objective.bits_per_dim(terms["elbo"],
                                                           config.pixels_per_image)
            return inputs, terms

        session, placeholders, terms = self._session(("score", batch, views), build)
        return session.run(terms, self._feed(placeholders, features, seeds, targets))

    def close(self):
        for session, _, _ in self._sessions.values():
            session.close()
        self._sessions.clear()
