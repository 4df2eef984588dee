"""Convolutional LSTM core (Shi et al. 2015), as the GQN generator and
inference networks use it.

The four gates come from a single convolution over [inputs, h] so a step
costs one large conv rather than four small ones. Part of a GQN core's
input (query pose, representation, target) is the same at every step of
an unroll; convolution is linear in its input channels, so that part's
share of the gates is computed once per unroll, and each step convolves
only the inputs that change.
"""
import collections

import tensorflow.compat.v1 as tf

from gqn import layers

LSTMState = collections.namedtuple("LSTMState", ["hidden", "cell"])


def zero_state(batch_size, size, channels, dtype):
    """All-zero (h, c) with fully static shape."""
    zeros = tf.zeros([batch_size, size, size, channels], dtype=dtype)
    return LSTMState(zeros, zeros)


class ConvLSTMCore:
    """One core's weights and its fixed inputs' gate share. The kernel's
    input channels are [fixed inputs, step inputs, h], one variable, so the
    checkpoint is that of a plain ConvLSTM over their concatenation."""

    def __init__(self, name, fixed_inputs, step_channels, hidden_channels,
                 kernel_size, forget_bias=1.0):
        fixed_channels = fixed_inputs.shape.as_list()[-1]
        kernel, bias = layers.kernel_and_bias(
            name, [kernel_size, kernel_size,
                   fixed_channels + step_channels + hidden_channels,
                   4 * hidden_channels], 4 * hidden_channels)
        dtype = fixed_inputs.dtype
        # Split, not sliced twice: autodiff's gradient of a split is one
        # concatenation, where slices would each scatter into a zero kernel.
        fixed_kernel, step_kernel = tf.split(
            kernel, [fixed_channels, step_channels + hidden_channels], axis=2)
        self._fixed_gates = tf.nn.bias_add(
            layers.convolve(fixed_inputs, fixed_kernel),
            tf.cast(bias, dtype))
        self._step_kernel = tf.cast(step_kernel, dtype)  # cast once, used L times
        self._forget_bias = forget_bias

    def step(self, step_inputs, state):
        """One ConvLSTM update; returns the new LSTMState."""
        stacked = tf.concat([step_inputs, state.hidden], axis=-1)
        gates = self._fixed_gates + layers.convolve(stacked, self._step_kernel)
        input_gate, forget_gate, output_gate, candidate = tf.split(gates, 4, axis=-1)
        cell = (tf.sigmoid(forget_gate + self._forget_bias) * state.cell
                + tf.sigmoid(input_gate) * tf.tanh(candidate))
        hidden = tf.sigmoid(output_gate) * tf.tanh(cell)
        return LSTMState(hidden, cell)
