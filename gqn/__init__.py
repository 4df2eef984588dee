"""Generative Query Network model: pure functions of (tensors, GQNConfig).

The package is written against TensorFlow's 1.x graph API
(`tensorflow.compat.v1`). Importing it changes nothing for the process:
TensorFlow 2.x must be in graph mode before a graph is built
(`gqn.startup.use_graph_mode()`, or `tf.compat.v1.disable_v2_behavior()`),
which the command-line entry points do for themselves (gqn.startup).
"""
