"""The unroll's kernel gradients, computed once over all steps, equal
autodiff's per-step filter gradients to float32 rounding."""
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from gqn import config as gqn_config
from gqn import kernel_gradients, layers, model, objective
from tests.tiny import constant_batch, tiny_config


@pytest.mark.parametrize("size, kernel_size, stride", [
    (16, 5, 1),   # ConvLSTM core on the latent grid
    (16, 4, 1),   # even kernel: 'SAME' pads one more row after than before
    (64, 4, 4),   # canvas down to the latent grid
    (15, 3, 2),   # odd size, strided
])
def test_kernel_gradient_equals_the_filter_gradient_op(size, kernel_size, stride):
    rng = np.random.RandomState(0)
    inputs = rng.randn(3, size, size, 5).astype(np.float32)
    out_size = -(-size // stride)
    output_gradients = rng.randn(3, out_size, out_size, 7).astype(np.float32)
    with tf.Graph().as_default(), tf.Session() as session:
        expected = tf.nn.conv2d_backprop_filter(
            inputs, [kernel_size, kernel_size, 5, 7], output_gradients,
            [1, stride, stride, 1], "SAME")
        actual = kernel_gradients.conv_kernel_gradient(
            tf.constant(inputs), tf.constant(output_gradients), kernel_size, stride)
        expected, actual = session.run([expected, actual])
    np.testing.assert_allclose(actual, expected, rtol=1e-5,
                               atol=2e-6 * np.abs(expected).max())


def _training_loss(config, features, labels):
    noise = model.standard_noise(config, config.batch_size,
                                 model.content_seeds(labels), sample_index=0)
    rendering = model.reconstruct(config, model.encode_scene(config, features),
                                  labels, noise)
    terms = objective.elbo_terms(labels, rendering.mean_image, 0.5,
                                 model.step_kls(rendering))
    return tf.reduce_mean(terms["elbo"])


@pytest.mark.parametrize("upsample", ["resize_conv", "transposed"])
def test_model_gradients_equal_autodiff(upsample):
    config = tiny_config(upsample=upsample)
    with tf.Graph().as_default():
        features, labels = constant_batch(config)
        autodiff_loss = _training_loss(config, features, labels)
        variables = tf.trainable_variables()
        expected = tf.gradients(autodiff_loss, variables)
        with kernel_gradients.recording_kernel_uses([tf.float32]) as uses:
            recorded_loss = _training_loss(config, features, labels)
        assert tf.trainable_variables() == variables  # same weights, reused
        # The autodiff loss is added too: kernels used outside the recording
        # as well must get both parts, so `actual` is twice `expected`.
        actual = kernel_gradients.gradients(recorded_loss + autodiff_loss,
                                            variables, uses)
        uses_per_kernel = {ref.deref().op.name: len(recorded)
                           for ref, recorded in uses.by_kernel.items()}
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            expected, actual = session.run([expected, [g for g, _ in actual]])
    # The fixed inputs' use and every step's use of the shared core were
    # recorded, so the test compares one batched gradient, assembled from
    # two channel ranges, with autodiff's.
    assert uses_per_kernel["gqn/draw/generator_core/kernel"] == config.seq_length + 1
    assert uses_per_kernel["gqn/draw/inference_core/kernel"] == config.seq_length + 1
    for variable, want, got in zip(variables, expected, actual):
        np.testing.assert_allclose(got, 2 * want, rtol=1e-5, atol=4e-6 * np.abs(want).max(),
                                   err_msg=variable.op.name)


@pytest.mark.parametrize("precision, batched", [("bfloat16", True), ("float32", False)])
def test_only_cores_computing_in_the_given_dtypes_record(precision, batched):
    config = tiny_config(precision=precision)
    with tf.Graph().as_default():
        features, labels = constant_batch(config)
        with kernel_gradients.recording_kernel_uses([tf.bfloat16]) as uses:
            _training_loss(config, features, labels)
    recorded = sorted(ref.deref().op.name for ref in uses.by_kernel)
    assert recorded == (["gqn/draw/generator_core/kernel",
                         "gqn/draw/inference_core/kernel"] if batched else [])


@pytest.mark.parametrize("name, batch_size, batched", [
    ("paper", 4, True), ("paper", 8, True), ("paper", 16, False), ("paper", 36, False),
    ("small", 4, True), ("small", 8, False)])
def test_training_batches_bfloat16_kernel_gradients_at_small_batches(
        name, batch_size, batched):
    """The measured crossover (kernel_gradients.batched_dtypes): batched up
    to twice as many rows per step (batch x 16 x 16) as gate channels."""
    config = gqn_config.preset(name, precision="bfloat16")
    dtypes = kernel_gradients.batched_dtypes(config, batch_size)
    assert tuple(dtypes) == ((tf.bfloat16,) if batched else ())


def test_kernel_parts_assemble_by_input_channel():
    """A kernel whose recorded uses reach only some of its input channels
    gets zeros for the rest; uses of overlapping ranges are refused."""
    rng = np.random.RandomState(1)
    with tf.Graph().as_default() as graph, tf.Session(graph=graph) as session:
        inputs = tf.constant(rng.randn(2, 6, 6, 2).astype(np.float32))
        kernel, _ = layers.kernel_and_bias("layer", [3, 3, 5, 4], 4)
        with kernel_gradients.recording_kernel_uses([tf.float32]) as uses:
            outputs = layers.convolve(inputs, kernel[:, :, 1:3], deferred_from=(kernel, 1))
        loss = tf.reduce_sum(tf.square(outputs))
        [(actual, _)] = kernel_gradients.gradients(loss, [kernel], uses)
        [expected] = tf.gradients(
            tf.reduce_sum(tf.square(tf.nn.conv2d(inputs, kernel[:, :, 1:3], 1, "SAME"))),
            [kernel])
        session.run(tf.global_variables_initializer())
        actual, expected = session.run([actual, expected])
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)
        assert actual[:, :, 1:3].all()
        assert not actual[:, :, :1].any() and not actual[:, :, 3:].any()
        with kernel_gradients.recording_kernel_uses([tf.float32]) as overlapping:
            both = (layers.convolve(inputs, kernel[:, :, 2:4], deferred_from=(kernel, 2))
                    + layers.convolve(inputs, kernel[:, :, 3:], deferred_from=(kernel, 3)))
        with pytest.raises(ValueError, match="overlap at input channel 3"):
            kernel_gradients.gradients(tf.reduce_sum(both), [kernel], overlapping)
