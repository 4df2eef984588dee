"""Kernel gradients of the convolutions the DRAW unroll repeats, computed
once per unroll instead of once per step.

Autodiff gives a kernel used at each of the L steps L small filter-gradient
convolutions (batch B each), and at small B those were the slowest part of
a bfloat16 training step on CPU: oneDNN's bfloat16 filter gradient ran at
about 40% of its forward rate. Inside `recording_kernel_uses()`, a
`layers.convolve` asked to defer its kernel gradient (the ConvLSTM cores)
hides the kernel from autodiff and records the (input, output) of every
use; then `gradients()` takes one backward pass for the variables and the
recorded outputs together and forms each kernel's gradient from all its
uses stacked into one batch, as k*k matrix products (one per kernel tap).
The result is the same gradient up to rounding.

Training batches only bfloat16 convolutions, and only while each step's
filter gradient is a thin product (`batched_dtypes`); see there for the
measurements behind that choice.
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
MAX_ROWS_PER_GATE_CHANNEL = 2

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


def batched_dtypes(config, batch_size):
    """The compute dtypes whose ConvLSTM kernel gradients training batches
    for `config` at `batch_size` examples per replica: BATCHED_DTYPES while a
    step's filter gradient is a thin product, its rows (batch x latent grid)
    at most MAX_ROWS_PER_GATE_CHANNEL times its output channels (4 x hidden).

    Measured on the README's 2-core AMX Xeon, bfloat16, batched against
    per-step gradients: paper-size cores (1024 gate channels) 1.26x faster
    at batch 4 (1024 rows), 1.13x at 8 (2048), 0.91x at 16 (4096), 0.95x at
    36; the small preset (512 gate channels) 0.80x at batch 8 (2048).
    Larger per-step products run well in oneDNN and, unlike the batched
    one, overlap with the rest of the backward pass. In float32 per-step
    gradients were as fast or faster at every size measured."""
    rows = batch_size * config.latent_size ** 2
    gate_channels = 4 * config.hidden_channels
    return BATCHED_DTYPES if rows <= MAX_ROWS_PER_GATE_CHANNEL * gate_channels else ()


@contextlib.contextmanager
def recording_kernel_uses(dtypes):
    """Within the block, the deferring convolutions that compute in one of
    `dtypes` are differentiated by `gradients()`, not by autodiff; yields the
    KernelUses to pass to it."""
    uses = KernelUses(dtypes)
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


def _batched_kernel_gradient(kernel, used):
    """Gradient of `kernel` (float32, full shape) from its uses' (KernelUse,
    output gradient) pairs. Uses that convolved the same input channels are
    stacked into one batch; the parts of different channel ranges (which
    must not overlap) are concatenated, zeros where no use reached."""
    kernel_size, _, kernel_channels, out_channels = kernel.shape.as_list()

    def zeros_up_to(channel):  # for the channels no use reached
        return [tf.zeros([kernel_size, kernel_size, channel - next_channel,
                          out_channels])] if channel > next_channel else []

    pieces, next_channel = [], 0
    for first_channel in sorted({use.first_channel for use, _ in used}):
        same_channels = [(use, gradient) for use, gradient in used
                         if use.first_channel == first_channel]
        if first_channel < next_channel:
            raise ValueError(f"uses of {kernel.op.name} overlap at input channel "
                             f"{first_channel}")
        pieces += zeros_up_to(first_channel)
        pieces.append(tf.cast(conv_kernel_gradient(
            tf.concat([use.inputs for use, _ in same_channels], axis=0),
            tf.concat([gradient for _, gradient in same_channels], axis=0),
            kernel_size, same_channels[0][0].stride), tf.float32))
        next_channel = first_channel + pieces[-1].shape.as_list()[2]
    pieces += zeros_up_to(kernel_channels)
    return tf.concat(pieces, axis=2) if len(pieces) > 1 else pieces[0]


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
        used = [(use, gradient) for use, gradient in used if gradient is not None]
        if not used:
            continue
        kernel_gradient = _batched_kernel_gradient(ref.deref(), used)
        if by_ref[ref] is not None:  # also used outside the recording
            kernel_gradient += by_ref[ref]
        by_ref[ref] = kernel_gradient
    # Every gradient is complete before any is applied: reads of the TF1
    # (ref) variables alias the buffers that the optimizer updates in place,
    # so a kernel updated while the backward pass still reads it would give
    # the layers below a gradient of the wrong weights.
    gradients_in_order = [by_ref[ref] for ref in refs]
    if any(gradient is not None for gradient in gradients_in_order):
        gradients_in_order = tf.tuple(gradients_in_order)  # Nones pass through
    return list(zip(gradients_in_order, variables))
