"""Fixtures shared by the test modules, and the process set-up the
commands do for themselves (gqn.startup): the tests build TF1 graphs."""
import pytest
import tensorflow.compat.v1 as tf

from gqn import startup

startup.use_graph_mode()


@pytest.fixture
def fresh_graph():
    """A new default graph for one test, so tests build no shared variables."""
    with tf.Graph().as_default():
        yield
