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
            "seeds": tf.placeholder(tf.int64, [batch]),
        }
        if with_target:
            inputs["target"] = tf.placeholder(tf.float32, [batch, size, size, 3])
        return inputs

    def _feed(self, placeholders, context_frames, context_poses, query_poses,
              seeds, target=None):
        frames = np.asarray(context_frames, np.float32)
        size = self.config.image_size
        if frames.ndim != 5 or frames.shape[2:] != (size, size, 3):
            raise ValueError(f"context frames must be (B, M, {size}, {size}, 3) "
                             f"for this model, got {frames.shape}")
        values = {"context_frames": frames,
                  "context_poses": as_encoded_poses(context_poses),
                  "query_pose": as_encoded_poses(query_poses),
                  "seeds": np.asarray(seeds, np.int64)}
        if target is not None:
            values["target"] = np.asarray(target, np.float32)
        return {placeholders[key]: value for key, value in values.items()}

    def render(self, context_frames, context_poses, query_poses, seeds,
               num_samples=1):
        """Generated mean images (B, num_samples, H, W, 3) in [0, 1]; sample k
        of an example depends only on its inputs, its seed and k."""
        batch, views = np.shape(context_frames)[:2]
        config = self.config

        def build():
            inputs = self._inputs(batch, views, with_target=False)
            samples = [model.generate(config, inputs, model.standard_noise(
                config, batch, inputs["seeds"], index)).mean_image
                for index in range(num_samples)]
            return inputs, tf.stack(samples, axis=1)

        session, placeholders, output = self._session(
            ("render", batch, views, num_samples), build)
        return session.run(output, self._feed(placeholders, context_frames,
                                              context_poses, query_poses, seeds))

    def score(self, context_frames, context_poses, query_poses, targets, seeds):
        """Per-example negative ELBO terms (nats) and bits/dim at the
        checkpoint's pixel sigma."""
        batch, views = np.shape(context_frames)[:2]
        config = self.config

        def build():
            inputs = self._inputs(batch, views, with_target=True)
            reconstruction = model.reconstruct(
                config, inputs, inputs["target"],
                model.standard_noise(config, batch, inputs["seeds"]))
            sigma = schedules.pixel_sigma(config, tf.train.get_or_create_global_step())
            terms = objective.elbo_terms(inputs["target"], reconstruction.mean_image,
                                         sigma, model.step_kls(reconstruction))
            terms["bits_per_dim"] = objective.bits_per_dim(terms["elbo"],
                                                           config.pixels_per_image)
            return inputs, terms

        session, placeholders, terms = self._session(("score", batch, views), build)
        return session.run(terms, self._feed(placeholders, context_frames,
                                             context_poses, query_poses, seeds,
                                             targets))

    def close(self):
        for session, _, _ in self._sessions.values():
            session.close()
        self._sessions.clear()
