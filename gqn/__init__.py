"""Generative Query Network model: pure functions of (tensors, GQNConfig).

The package is written against TensorFlow's 1.x graph API; importing it
switches TensorFlow 2.x into that mode (as TF 1.15 behaves by default).
"""
import tensorflow.compat.v1 as _tf

_tf.disable_v2_behavior()
