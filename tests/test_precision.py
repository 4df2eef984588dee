"""Precision and step-kernel checks: bfloat16 and float16 train on CPU with
float32 losses and track float32's loss; float16's loss scale halves on
overflow and grows back; the precision a GPU, CPU or TPU gets and why; the
ConvLSTM keeps its state and gate arithmetic in float32; the fused ConvLSTM
equals the four-gate textbook cell; training noise makes runs repeatable."""
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from gqn import conv_lstm, hardware, optimization
from gqn.config import GQNConfig
from gqn.model_fn import model_fn_builder
from tests.test_learning import rendered_batch
from tests.tiny import tiny_config

STEPS = 15
# The initial weights' seed: fixed, so every run compares the precisions
# from the same start (with random starts, one run in the whole suite went
# to 0.59% against bfloat16's 0.5% bound; from seeds 0-3, 0.01-0.07%).
INITIAL_SEED = 0


def _train_losses(config, initial_checkpoint, steps=STEPS, save_initial=False,
                  with_loss_scale=False):
    """(loss, reconstruction MSE) of `steps` training steps on a fixed batch
    of rendered scenes, starting from the weights in `initial_checkpoint`;
    `with_loss_scale`: also the float16 loss scale each step used."""
    features, target = rendered_batch(config, config.batch_size)
    with tf.Graph().as_default():
        tf.set_random_seed(INITIAL_SEED)  # the initial weights, when saved
        spec = model_fn_builder(config)(
            {k: tf.constant(v) for k, v in features.items()}, tf.constant(target),
            tf.estimator.ModeKeys.TRAIN, {"batch_size": config.batch_size},
            tf.estimator.tpu.RunConfig(model_dir="/tmp/unused"))
        assert spec.loss.dtype == tf.float32
        scalars = spec.host_call[1]
        fetches = [spec.loss, scalars["reconstruction_mse"][0]]
        if with_loss_scale:
            fetches.append(scalars["loss_scale"][0])
        saver = tf.train.Saver(tf.global_variables())
        with tf.Session() as session:
            if save_initial:
                session.run(tf.global_variables_initializer())
                saver.save(session, initial_checkpoint)
            else:
                saver.restore(session, initial_checkpoint)
            session.run(tf.local_variables_initializer())
            trajectory = [session.run(fetches + [spec.train_op])[:-1]
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


def test_float16_with_loss_scaling_tracks_float32(float32_run):
    """float16 inside the networks, losses, weights and Adam in float32.
    The first steps overflow at the initial loss scale of 2^15 and are
    skipped while the scale halves (the ELBO sums ~768 pixels, so its weight
    gradients are large; it settles near 2^8-2^9), so the runs are compared
    after the same number of applied updates. Tolerance: the reconstruction
    MSE within 1% and the loss within 2 nats (0.8% of its ~250-nat data
    term) at every one of 15 updates. That is wider than bfloat16's (0.5%,
    1.25 nats; 0.05% and 0.1 nats seen): float16 has 3 more significand
    bits but float32's exponent range it lacks, so weight gradients below
    its smallest value flush to zero and Adam, which normalises each
    weight's step, moves those weights where float32 does (seen over three
    runs: up to 0.56% and 0.93 nats; float16 kernels on this CPU are not
    bit-repeatable, so runs differ)."""
    config, checkpoint, float32_trajectory = float32_run
    trajectory = _train_losses(config.replace(precision="float16"), checkpoint,
                               steps=STEPS + 8, with_loss_scale=True)
    loss, mse, scale = trajectory.T
    skipped = scale[1:] < scale[:-1]
    print("loss scale per step:", scale)
    assert scale[0] == optimization.INITIAL_LOSS_SCALE
    assert 0 < skipped.sum() <= 8  # found its level, then kept it
    applied_before = np.concatenate([[0], np.cumsum(~skipped)])
    first_at = {}
    for step, applied in enumerate(applied_before):
        first_at.setdefault(applied, step)
    updates = np.array([first_at[j] for j in range(STEPS)])
    float32_loss, float32_mse = float32_trajectory.T
    relative_mse = np.abs(mse[updates] - float32_mse) / float32_mse
    print("relative MSE difference per update:", np.round(relative_mse, 5).tolist())
    print("loss difference per update (nats):",
          np.round(loss[updates] - float32_loss, 3).tolist())
    assert relative_mse.max() < 0.01
    assert np.abs(loss[updates] - float32_loss).max() < 2.0
    assert relative_mse.max() > 0  # float16 ran
    assert loss[updates][-1] < loss[0] and mse[updates][-1] < mse[0]


def _toy_step(monkeypatch):
    """A float16 'network' of one float32 weight vector: loss = w . x in
    float16 (cast back), so its gradient is x times the loss scale in
    float16 and overflows where that passes 65504. Growth after 3 finite
    steps instead of 2000."""
    monkeypatch.setattr(optimization, "LOSS_SCALE_GROWTH_STEPS", 3)
    x = tf.placeholder(tf.float32, [2])
    weights = tf.get_variable("w", initializer=tf.constant([1.0, -1.0]))
    loss = tf.reduce_sum(tf.cast(tf.cast(weights, tf.float16) * tf.cast(x, tf.float16),
                                 tf.float32))
    global_step = tf.train.get_or_create_global_step()
    step = optimization.train_step(GQNConfig(precision="float16"), loss, None,
                                   global_step, 0.1, num_replicas=1, use_tpu=False)
    healthy = optimization.is_healthy(loss, step)
    return x, weights, global_step, step, healthy


def test_float16_loss_scale_halves_on_overflow_skips_and_grows_back(monkeypatch):
    with tf.Graph().as_default(), tf.Session() as session:
        x, weights, global_step, step, healthy = _toy_step(monkeypatch)
        session.run([tf.global_variables_initializer(), tf.local_variables_initializer()])
        history = []
        for _ in range(7):  # gradient 4 x scale: overflows at 2^15 and 2^14
            before = session.run(weights)
            scale, was_healthy, _ = session.run(
                [step.loss_scale, healthy, step.op], {x: [4.0, 4.0]})
            history.append((scale, bool(np.any(session.run(weights) != before)),
                            bool(was_healthy)))
        assert session.run(global_step) == 7  # skipped steps count too
    scales, applied, healthy_steps = zip(*history)
    # halved twice, grew after 3 finite steps, overflowed again and halved
    assert scales == (2.0 ** 15, 2.0 ** 14, 2.0 ** 13, 2.0 ** 13, 2.0 ** 13,
                      2.0 ** 14, 2.0 ** 13)
    assert applied == (False, False, True, True, True, False, True)
    assert all(healthy_steps)  # expected overflows: the NaN guard lets them pass


def test_float16_overflow_at_the_smallest_scale_stops_training(monkeypatch):
    """A gradient that overflows even unscaled is divergence, not an
    expected overflow: after the scale has fallen to 1 the step is not
    healthy, and the NaN guard stops the run."""
    with tf.Graph().as_default(), tf.Session() as session:
        x, _, _, step, healthy = _toy_step(monkeypatch)
        session.run([tf.global_variables_initializer(), tf.local_variables_initializer()])
        verdicts = [session.run([step.loss_scale, healthy, step.op], {x: [6e4, 6e4]})[:2]
                    for _ in range(17)]
    scales, healthy_steps = zip(*verdicts)
    assert scales[-1] == optimization.MIN_LOSS_SCALE
    assert all(healthy_steps[:15]) and not healthy_steps[-1]


def _fake_machine(monkeypatch, gpus=(), cpu=("avx2",)):
    """The device queries answer for another machine (TensorFlow is not
    touched)."""
    monkeypatch.setattr(hardware, "gpu_devices", lambda: [hardware.GPU(*g) for g in gpus])
    monkeypatch.setattr(hardware, "cpu_flags", lambda: set(cpu))


@pytest.mark.parametrize("gpus, requested, expected, said", [
    ([("NVIDIA A100-SXM4-40GB", (8, 0))], "bfloat16", "bfloat16", "(>= 8.0)"),
    ([("NVIDIA H100 80GB HBM3", (9, 0))], "bfloat16", "bfloat16", "H100"),
    ([("Tesla V100-SXM2-16GB", (7, 0))], "bfloat16", "float32",
     "has no fast bfloat16 (it needs 8.0): computing in float32; --precision float16"),
    ([("Tesla V100-SXM2-16GB", (7, 0))], "float16", "float16",
     "float16 with dynamic loss scaling"),
    ([("Tesla T4", (7, 5))], "float16", "float16", "compute capability 7.5"),
    ([("NVIDIA GeForce GTX 1080", (6, 1))], "float16", "float32", "it needs 7.0"),
    ([("NVIDIA A100-SXM4-40GB", (8, 0)), ("Tesla V100-SXM2-16GB", (7, 0))],
     "bfloat16", "float32", "2 GPU(s), the weakest Tesla V100"),
    ([], "float16", "float32", "there is no GPU"),
])
def test_precision_for_a_gpu_with_and_without_bfloat16(monkeypatch, gpus, requested,
                                                       expected, said):
    _fake_machine(monkeypatch, gpus)
    logged = []
    assert hardware.effective_precision(requested, False, logged.append) == expected
    assert len(logged) == 1 and said in logged[0], logged


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
    _fake_machine(monkeypatch, cpu=("avx2", "avx512f"))
    said = []
    assert hardware.effective_precision("bfloat16", False, said.append) == "float32"
    assert "lacks" in said[0] and "avx512_bf16" in said[0]
    assert hardware.effective_precision("bfloat16", True, said.append) == "bfloat16"
    assert "TPU" in said[1]
    assert hardware.effective_precision("float16", True, said.append) == "bfloat16"
    assert hardware.effective_precision("float32", False, said.append) == "float32"
    assert len(said) == 3  # one line per decision; float32 needs none
    _fake_machine(monkeypatch, cpu=("avx2", "amx_bf16"))
    assert hardware.effective_precision("bfloat16", False, said.append) == "bfloat16"
    assert "this CPU has" in said[-1]


def test_conv_lstm_state_and_gates_stay_float32_in_bfloat16():
    """The convolutions compute in bfloat16; the gates' bias and arithmetic
    and the state (c, h) are float32, h cast for the convolutions only; and
    the result stays within bfloat16 rounding of the float32 core's."""
    rng = np.random.RandomState(0)
    fixed = rng.randn(2, 8, 8, 3).astype(np.float32)
    steps = [rng.randn(2, 8, 8, 2).astype(np.float32) for _ in range(4)]
    states = {}
    for dtype in (tf.float32, tf.bfloat16):
        with tf.Graph().as_default() as graph, tf.Session() as session:
            tf.set_random_seed(1)
            core = conv_lstm.ConvLSTMCore("cell", tf.cast(fixed, dtype), 2, 6, 3)
            state = conv_lstm.zero_state(2, 8, 6)
            for inputs in steps:
                state = core.step(tf.cast(inputs, dtype), state)
                assert state.hidden.dtype == state.cell.dtype == tf.float32
            session.run(tf.global_variables_initializer())
            states[dtype] = session.run(state)
            ops = graph.get_operations()
        assert {op.outputs[0].dtype for op in ops if op.type == "Conv2D"} == {dtype}
        assert {op.outputs[0].dtype for op in ops
                if op.type in ("Sigmoid", "Tanh", "BiasAdd")} == {tf.float32}
    for exact, rounded in zip(states[tf.float32], states[tf.bfloat16]):
        assert 0 < np.abs(rounded - exact).max() < 0.05
