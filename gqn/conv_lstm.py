"""Convolutional LSTM core (Shi et al. 2015), as the GQN generator and
inference networks use it.

The four gates come from a single convolution over [inputs, h] so a step
costs one large conv rather than four small ones. Part of a GQN core's
input (query pose, representation, target) is the same at every step of
an unroll; convolution is linear in its input channels, so that part's
share of the gates is computed once per unroll, and each step convolves
only the inputs that change.

Precision: the convolutions compute in the inputs' dtype (bfloat16 or
float16 when the config asks for it), but the gates' bias and arithmetic
and the state (h, c) are float32: c sums L steps of increments, which
bfloat16's 8 significand bits would round away and float16's range could
overflow. h is cast to the compute dtype for the convolutions only.
"""
import collections

import tensorflow.compat.v1 as tf

from gqn import layers

LSTMState = collections.namedtuple("LSTMState", ["hidden", "cell"])


def zero_state(batch_size, size, channels):
    """All-zero float32 (h, c) with fully static shape."""
    zeros = tf.zeros([batch_size, size, size, channels], dtype=tf.float32)
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
        # The dtype the convolutions compute in (the inputs').
        self.compute_dtype = fixed_inputs.dtype
        # Split, not sliced twice: autodiff's gradient of a split is one
        # concatenation, where slices would each scatter into a zero kernel.
        fixed_kernel, step_kernel = tf.split(
            kernel, [fixed_channels, step_channels + hidden_channels], axis=2)
        self._fixed_gates = tf.nn.bias_add(
            tf.cast(layers.convolve(fixed_inputs, fixed_kernel), tf.float32), bias)
        # cast once, used L times
        self._step_kernel = tf.cast(step_kernel, self.compute_dtype)
        self._forget_bias = forget_bias

    def step(self, step_inputs, state):
        """One ConvLSTM update of the float32 `state` by `step_inputs` (in
        the compute dtype); returns the new float32 LSTMState."""
        stacked = tf.concat([step_inputs, tf.cast(state.hidden, self.compute_dtype)],
                            axis=-1)
        gates = self._fixed_gates + tf.cast(
            layers.convolve(stacked, self._step_kernel), tf.float32)
        input_gate, forget_gate, output_gate, candidate = tf.split(gates, 4, axis=-1)
        cell = (tf.sigmoid(forget_gate + self._forget_bias) * state.cell
                + tf.sigmoid(input_gate) * tf.tanh(candidate))
        hidden = tf.sigmoid(output_gate) * tf.tanh(cell)
        return LSTMState(hidden, cell)
