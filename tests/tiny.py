"""Tiny model configs and in-memory batches shared by the model tests."""
import tensorflow.compat.v1 as tf

from data_provider.scene_arrays import random_inputs
from gqn.config import PACKAGE_CHOICES, GQNConfig


def tiny_config(**overrides):
    """Tiny sizes, with the small presets' observation and gate choices."""
    fields = dict(image_size=16, representation_channels=8, hidden_channels=8,
                  canvas_channels=8, z_channels=4, seq_length=3, batch_size=4,
                  context_size=3, lstm_kernel_size=3, **PACKAGE_CHOICES)
    fields.update(overrides)
    return GQNConfig().replace(**fields)


def random_batch(config, seed=0, batch_size=None):
    """numpy (features, labels) of the config's shapes (one batch by default)."""
    return random_inputs(config, batch_size or config.batch_size, seed)


def constant_batch(config, seed=0):
    """The random batch as graph constants (static shapes)."""
    features, labels = random_batch(config, seed)
    return ({key: tf.constant(value) for key, value in features.items()},
            tf.constant(labels))


def run_initialised(fetches):
    """`fetches` in a session of the default graph, variables initialised."""
    with tf.Session() as session:
        session.run(tf.global_variables_initializer())
        return session.run(fetches)
