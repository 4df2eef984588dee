"""Convolution layers on tf.get_variable, so variable names are stable
(warm starting matches them by name) and weights stay float32 while the
computation may run in bfloat16 (kernels are cast to the input's dtype)."""
import tensorflow.compat.v1 as tf


def kernel_and_bias(name, kernel_shape, bias_channels):
    """The float32 kernel and bias variables of layer `name`, created on
    first use, then shared."""
    with tf.variable_scope(name, reuse=tf.AUTO_REUSE):
        kernel = tf.get_variable("kernel", kernel_shape, tf.float32,
                                 initializer=tf.glorot_uniform_initializer())
        bias = tf.get_variable("bias", [bias_channels], tf.float32,
                               initializer=tf.zeros_initializer())
    return kernel, bias


def convolve(inputs, kernel, strides=1):
    """'SAME' 2-D convolution of `inputs` with `kernel` (float32, cast to the
    inputs' dtype)."""
    return tf.nn.conv2d(inputs, tf.cast(kernel, inputs.dtype),
                        strides=[1, strides, strides, 1], padding="SAME")


def conv2d(inputs, filters, kernel_size, name, strides=1, activation=None):
    """'SAME' 2-D convolution with bias; weights created on first use, then
    shared."""
    in_channels = inputs.shape[-1]
    kernel, bias = kernel_and_bias(
        name, [kernel_size, kernel_size, in_channels, filters], filters)
    outputs = tf.nn.bias_add(convolve(inputs, kernel, strides),
                             tf.cast(bias, inputs.dtype))
    return activation(outputs) if activation is not None else outputs


def conv2d_transpose(inputs, filters, kernel_size, strides, name):
    """Transposed convolution ('VALID' layout: output = input * strides when
    kernel_size == strides)."""
    batch, height, width, in_channels = inputs.shape.as_list()
    kernel, bias = kernel_and_bias(
        name, [kernel_size, kernel_size, filters, in_channels], filters)
    output_shape = [batch, height * strides, width * strides, filters]
    outputs = tf.nn.conv2d_transpose(
        inputs, tf.cast(kernel, inputs.dtype), output_shape,
        strides=[1, strides, strides, 1], padding="SAME")
    return tf.nn.bias_add(outputs, tf.cast(bias, inputs.dtype))
