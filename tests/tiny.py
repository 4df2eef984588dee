"""Tiny model configs and in-memory batches shared by the model tests."""
import numpy as np
import tensorflow.compat.v1 as tf

from gqn.config import GQNConfig


def tiny_config(**overrides):
    fields = dict(image_size=16, representation_channels=8, hidden_channels=8,
                  canvas_channels=8, z_channels=4, seq_length=3, batch_size=4,
                  context_size=3, lstm_kernel_size=3)
    fields.update(overrides)
    return GQNConfig().replace(**fields)


def random_batch(config, seed=0, batch_size=None):
    """numpy (features, labels) of the config's shapes, values in [0, 1]."""
    rng = np.random.RandomState(seed)
    batch = batch_size or config.batch_size
    size, views = config.image_size, config.context_size
    features = {
        "context_frames": rng.rand(batch, views, size, size, 3).astype(np.float32),
        "context_poses": rng.uniform(-1, 1, (batch, views, 7)).astype(np.float32),
        "query_pose": rng.uniform(-1, 1, (batch, 7)).astype(np.float32),
    }
    labels = rng.rand(batch, size, size, 3).astype(np.float32)
    return features, labels


def constant_batch(config, seed=0):
    """The random batch as graph constants (static shapes)."""
    features, labels = random_batch(config, seed)
    return ({key: tf.constant(value) for key, value in features.items()},
            tf.constant(labels))
