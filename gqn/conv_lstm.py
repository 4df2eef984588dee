"""Convolutional LSTM core (Shi et al. 2015), as the GQN generator and
inference networks use it.

The four gates come from a single convolution over [inputs, h] so a step
costs one large conv rather than four small ones.
"""
import collections

import tensorflow.compat.v1 as tf

from gqn import layers

LSTMState = collections.namedtuple("LSTMState", ["hidden", "cell"])


def zero_state(batch_size, size, channels, dtype):
    """All-zero (h, c) with fully static shape."""
    zeros = tf.zeros([batch_size, size, size, channels], dtype=dtype)
    return LSTMState(zeros, zeros)


def conv_lstm_step(inputs, state, hidden_channels, kernel_size, name,
                   forget_bias=1.0):
    """One ConvLSTM update; returns the new LSTMState."""
    stacked = tf.concat([inputs, state.hidden], axis=-1)
    gates = layers.conv2d(stacked, 4 * hidden_channels, kernel_size, name,
                          defer_kernel_gradient=True)
    input_gate, forget_gate, output_gate, candidate = tf.split(gates, 4, axis=-1)
    cell = (tf.sigmoid(forget_gate + forget_bias) * state.cell
            + tf.sigmoid(input_gate) * tf.tanh(candidate))
    hidden = tf.sigmoid(output_gate) * tf.tanh(cell)
    return LSTMState(hidden, cell)
