"""Precision and step-kernel checks: bfloat16 trains on CPU with float32
losses and tracks float32's loss; the fused ConvLSTM equals the four-gate
textbook cell; training noise makes runs repeatable."""
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from gqn import conv_lstm, hardware
from gqn.model_fn import model_fn_builder
from tests.test_learning import rendered_batch
from tests.tiny import tiny_config

STEPS = 15


def _train_losses(config, initial_checkpoint, steps=STEPS, save_initial=False):
    """(loss, reconstruction MSE) of `steps` training steps on a fixed batch
    of rendered scenes, starting from the weights in `initial_checkpoint`."""
    features, target = rendered_batch(config, config.batch_size)
    with tf.Graph().as_default():
        spec = model_fn_builder(config)(
            {k: tf.constant(v) for k, v in features.items()}, tf.constant(target),
            tf.estimator.ModeKeys.TRAIN, {"batch_size": config.batch_size},
            tf.estimator.tpu.RunConfig(model_dir="/tmp/unused"))
        assert spec.loss.dtype == tf.float32
        mse = spec.host_call[1]["reconstruction_mse"][0]
        saver = tf.train.Saver(tf.global_variables())
        with tf.Session() as session:
            if save_initial:
                tf.set_random_seed(0)
                session.run(tf.global_variables_initializer())
                saver.save(session, initial_checkpoint)
            else:
                saver.restore(session, initial_checkpoint)
            session.run(tf.local_variables_initializer())
            trajectory = [session.run([spec.loss, mse, spec.train_op])[:2]
                          for _ in range(steps)]
    return np.array(trajectory)


@pytest.fixture(scope="module")
def float32_run(tmp_path_factory):
    # sigma 0.3: the data term (768 pixels x squared error / 2 sigma^2,
    # about 250 nats) dominates the loss, not the constant log-sigma part.
    config = tiny_config(image_size=16, batch_size=8, learning_rate_start=2e-3,
                         learning_rate_end=2e-3, sigma_start=0.3, sigma_end=0.3)
    checkpoint = str(tmp_path_factory.mktemp("init") / "init.ckpt")
    return config, checkpoint, _train_losses(config, checkpoint, save_initial=True)


def test_float32_training_repeats_exactly(float32_run):
    config, checkpoint, trajectory = float32_run
    np.testing.assert_array_equal(_train_losses(config, checkpoint), trajectory)
    loss, mse = trajectory.T
    assert loss[-1] < loss[0] and mse[-1] < mse[0]


@pytest.mark.skipif(not hardware.cpu_has_bfloat16(),
                    reason="this CPU lacks AVX512-BF16/AMX: bfloat16 would be emulated")
def test_bfloat16_tracks_float32(float32_run):
    """bfloat16 keeps 8 significand bits (relative rounding 2^-9, about
    0.2%) inside the networks only; the mean image comes out of a float32
    canvas, so per-pixel errors average out and the MSE may differ by at
    most 0.5% at any of 15 Adam steps from the same weights. The loss's
    data term is about 250 nats here, so 0.5% of it bounds the loss gap at
    1.25 nats. Identical values would mean bfloat16 never ran."""
    config, checkpoint, float32_trajectory = float32_run
    trajectory = _train_losses(config.replace(precision="bfloat16"), checkpoint)
    loss, mse = trajectory.T
    float32_loss, float32_mse = float32_trajectory.T
    relative_mse = np.abs(mse - float32_mse) / float32_mse
    print("relative MSE difference per step:", np.round(relative_mse, 5))
    print("loss difference per step (nats):", np.round(loss - float32_loss, 3))
    assert relative_mse.max() < 0.005
    assert np.abs(loss - float32_loss).max() < 1.25
    assert relative_mse.max() > 0
    assert loss[-1] < loss[0] and mse[-1] < mse[0]


def _unfused_conv_lstm_step(inputs, state, kernel, bias, forget_bias=1.0):
    """The textbook ConvLSTM: one convolution per gate over inputs and h
    separately, with the same weights cut out of the fused kernel."""
    in_channels = inputs.shape[-1]
    gates = []
    for kernel_part, bias_part in zip(np.split(kernel, 4, axis=-1), np.split(bias, 4)):
        from_inputs = tf.nn.conv2d(inputs, kernel_part[:, :, :in_channels], 1, "SAME")
        from_hidden = tf.nn.conv2d(state.hidden, kernel_part[:, :, in_channels:], 1,
                                   "SAME")
        gates.append(from_inputs + from_hidden + bias_part)
    input_gate, forget_gate, output_gate, candidate = gates
    cell = (tf.sigmoid(forget_gate + forget_bias) * state.cell
            + tf.sigmoid(input_gate) * tf.tanh(candidate))
    return conv_lstm.LSTMState(tf.sigmoid(output_gate) * tf.tanh(cell), cell)


def test_fused_split_core_equals_four_separate_convolutions():
    """The core convolves its fixed inputs once and its step inputs and h at
    each step, all four gates at once; the textbook cell convolves each
    gate over all inputs at every step. Same weights, same outputs, at
    every step of a short unroll."""
    rng = np.random.RandomState(0)
    fixed_inputs = rng.randn(2, 8, 8, 3).astype(np.float32)
    step_inputs = [rng.randn(2, 8, 8, 2).astype(np.float32) for _ in range(3)]
    state = conv_lstm.LSTMState(*(rng.randn(2, 8, 8, 6).astype(np.float32)
                                  for _ in range(2)))
    with tf.Graph().as_default(), tf.Session() as session:
        core = conv_lstm.ConvLSTMCore("cell", tf.constant(fixed_inputs), 2, 6, 3)
        kernel_var, bias_var = tf.global_variables()
        assert kernel_var.shape.as_list() == [3, 3, 3 + 2 + 6, 24]
        session.run(tf.global_variables_initializer())
        session.run(bias_var.assign(rng.randn(24).astype(np.float32)))
        kernel, bias = session.run([kernel_var, bias_var])
        fused, unfused = [state], [state]
        for inputs in step_inputs:
            fused.append(core.step(tf.constant(inputs), fused[-1]))
            unfused.append(_unfused_conv_lstm_step(
                tf.constant(np.concatenate([fixed_inputs, inputs], axis=-1)),
                unfused[-1], kernel, bias))
        fused_values, unfused_values = session.run([fused[1:], unfused[1:]])
    for fused_state, unfused_state in zip(fused_values, unfused_values):
        for a, b in zip(fused_state, unfused_state):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_cpu_flags_parse_and_bfloat16_fallback(tmp_path, monkeypatch):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f\n")
    assert hardware.cpu_flags(str(cpuinfo)) == {"fpu", "avx2", "avx512f"}
    assert hardware.cpu_flags(str(tmp_path / "absent")) == set()
    monkeypatch.setattr(hardware, "cpu_flags", lambda: {"avx2", "avx512f"})
    said = []
    assert hardware.effective_precision("bfloat16", False, said.append) == "float32"
    assert "lacks" in said[0] and "avx512_bf16" in said[0]
    assert hardware.effective_precision("bfloat16", True, said.append) == "bfloat16"
    assert hardware.effective_precision("float32", False, said.append) == "float32"
    assert len(said) == 1
