"""Fixtures shared by the test modules."""
import pytest
import tensorflow.compat.v1 as tf


@pytest.fixture
def fresh_graph():
    """A new default graph for one test, so tests build no shared variables."""
    with tf.Graph().as_default():
        yield
