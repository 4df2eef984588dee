"""Kernel gradients of the convolutions the DRAW unroll repeats, computed
once per unroll instead of once per step.

Autodiff gives a kernel used at each of the L steps L small filter-gradient
convolutions (batch B each), and on CPU those were the slowest part of a
training step: oneDNN's bfloat16 filter gradient ran at about 40% of its
forward rate. Inside `recording_kernel_uses()`, a `layers.convolve` asked
to defer its kernel gradient (the ConvLSTM cores' per-step convolutions)
hides the kernel from autodiff and records the (input, output) of every
use; then `gradients()`
takes one backward pass for the variables and the recorded outputs together
and forms each kernel's gradient from all its uses stacked into one batch,
as k*k matrix products (one per kernel tap). The result is the same
gradient up to rounding.

Only convolutions computing in BATCHED_DTYPES are batched. On the 2-core AMX
Xeon of the README's benchmark, batching made a bfloat16 paper-size step
1.3x faster, while in float32 oneDNN's per-step filter gradients were as
fast (paper) or faster (small preset) than the batched matmuls.
"""
import collections
import contextlib
import threading

import tensorflow.compat.v1 as tf

# first_channel: the use convolved with the kernel's input channels from
# this one on (a ConvLSTM step uses the part after the fixed inputs).
KernelUse = collections.namedtuple("KernelUse",
                                   ["first_channel", "inputs", "outputs", "stride"])

BATCHED_DTYPES = (tf.bfloat16,)

# Per thread: MirroredStrategy builds each replica's graph in its own thread.
_recording = threading.local()


class KernelUses:
    """The recorded convolution uses of each kernel variable, in order."""

    def __init__(self, dtypes):
        self.dtypes = tuple(dtypes)  # compute dtypes whose convolutions record
        self.by_kernel = collections.OrderedDict()  # variable.ref() -> [KernelUse]

    def record(self, kernel, first_channel, inputs, outputs, stride):
        self.by_kernel.setdefault(kernel.ref(), []).append(
            KernelUse(first_channel, inputs, outputs, stride))


@contextlib.contextmanager
def recording_kernel_uses(dtypes=None):
    """Within the block, the deferring conv2d kernels that compute in
    `dtypes` (default BATCHED_DTYPES) are differentiated by `gradients()`,
    not by autodiff; yields the KernelUses to pass to it."""
    uses = KernelUses(BATCHED_DTYPES if dtypes is None else dtypes)
    previous = getattr(_recording, "uses", None)
    _recording.uses = uses
    try:
        yield uses
    finally:
        _recording.uses = previous


def active_recorder(dtype):
    """The KernelUses recording convolutions that compute in `dtype` in this
    thread, or None."""
    uses = getattr(_recording, "uses", None)
    return uses if uses is not None and dtype in uses.dtypes else None


def conv_kernel_gradient(inputs, output_gradients, kernel_size, stride):
    """Gradient of a 'SAME' tf.nn.conv2d's kernel, (k, k, C_in, C_out), as k*k
    matrix products of the input window under each tap with the output
    gradient. Both are first laid out (H, W, N, C), so that each window is
    cut in long contiguous runs."""
    _, height, width, in_channels = inputs.shape.as_list()
    _, out_height, out_width, out_channels = output_gradients.shape.as_list()
    pad_rows = max((out_height - 1) * stride + kernel_size - height, 0)
    pad_cols = max((out_width - 1) * stride + kernel_size - width, 0)
    padded = tf.pad(tf.transpose(inputs, [1, 2, 0, 3]),
                    [[pad_rows // 2, pad_rows - pad_rows // 2],
                     [pad_cols // 2, pad_cols - pad_cols // 2], [0, 0], [0, 0]])
    flat_gradients = tf.reshape(tf.transpose(output_gradients, [1, 2, 0, 3]),
                                [-1, out_channels])
    taps = []
    for row in range(kernel_size):
        for col in range(kernel_size):
            window = padded[row:row + (out_height - 1) * stride + 1:stride,
                            col:col + (out_width - 1) * stride + 1:stride]
            taps.append(tf.matmul(tf.reshape(window, [-1, in_channels]),
                                  flat_gradients, transpose_a=True))
    return tf.reshape(tf.stack(taps),
                      [kernel_size, kernel_size, in_channels, out_channels])


def _batched_kernel_gradient(kernel, first_channel, used):
    """Gradient of `kernel` (float32, full shape) from its uses' (KernelUse,
    output gradient) pairs that convolved its channels from `first_channel`
    on; None without any."""
    if not used:
        return None
    kernel_size, _, kernel_channels, _ = kernel.shape.as_list()
    part = tf.cast(conv_kernel_gradient(
        tf.concat([use.inputs for use, _ in used], axis=0),
        tf.concat([gradient for _, gradient in used], axis=0),
        kernel_size, used[0][0].stride), tf.float32)
    channels_after = kernel_channels - first_channel - part.shape.as_list()[2]
    if first_channel or channels_after:
        part = tf.pad(part, [[0, 0], [0, 0], [first_channel, channels_after], [0, 0]])
    return part


def gradients(loss, variables, uses):
    """[(gradient or None, variable)] for `variables`, in one backward pass,
    shaped as Optimizer.compute_gradients returns them. Unlike it, this does
    not scale the loss for replicas: the caller does."""
    variables = list(variables)
    refs = [variable.ref() for variable in variables]
    trained = set(refs)
    deferred = [ref for ref in uses.by_kernel if ref in trained]
    outputs = [use.outputs for ref in deferred for use in uses.by_kernel[ref]]
    all_gradients = tf.gradients(loss, variables + outputs)
    by_ref = dict(zip(refs, all_gradients[:len(variables)]))
    output_gradients = iter(all_gradients[len(variables):])
    for ref in deferred:
        used = [(use, next(output_gradients)) for use in uses.by_kernel[ref]]
        for first_channel in sorted({use.first_channel for use, _ in used}):
            part = _batched_kernel_gradient(
                ref.deref(), first_channel,
                [(use, gradient) for use, gradient in used
                 if use.first_channel == first_channel and gradient is not None])
            if part is not None:
                by_ref[ref] = part if by_ref[ref] is None else by_ref[ref] + part
    # Every gradient is complete before any is applied: reads of the TF1
    # (ref) variables alias the buffers that the optimizer updates in place,
    # so a kernel updated while the backward pass still reads it would give
    # the layers below a gradient of the wrong weights.
    gradients_in_order = [by_ref[ref] for ref in refs]
    if any(gradient is not None for gradient in gradients_in_order):
        gradients_in_order = tf.tuple(gradients_in_order)  # Nones pass through
    return list(zip(gradients_in_order, variables))
