"""Sharpening: the patch discriminator's terms, the one train op that steps
the GQN and the discriminator each on its own loss, warm start and freeze
with the discriminator on, bfloat16, and a sharpened run through the
command lines."""
import json

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from gqn import cli_flags, discriminator, hardware
from gqn.config import GQNConfig
from gqn.model_fn import SHARPENING_SCALARS, TRAIN_SCALARS, model_fn_builder
from gqn.optimization import trainable_variables
from tests.cli_helpers import (TINY_MODEL_FLAGS, assert_ok, assert_refused, event_tags,
                                generate_rooms, rooms_flags, run_cli)
from tests.tiny import constant_batch, tiny_config

MODES = tf.estimator.ModeKeys
TRAIN = "train_gqn_draw.py"
SHARPENED = dict(adversarial_weight=0.1, feature_matching_weight=1.0)


def _train_spec(config, **builder_args):
    features, labels = constant_batch(config)
    return model_fn_builder(config, **builder_args)(
        features, labels, MODES.TRAIN, {"batch_size": config.batch_size},
        tf.estimator.tpu.RunConfig(model_dir="/tmp/unused"))


def _random_conditioning(config, batch_size, seed):
    rng = np.random.RandomState(seed)
    size = config.latent_size
    return tf.constant(rng.randn(batch_size, size, size,
                                 config.pose_dim + config.representation_channels
                                 ).astype(np.float32))


def test_terms_have_the_right_signs_and_shapes():
    config = tiny_config(**SHARPENED)
    rng = np.random.RandomState(0)
    with tf.Graph().as_default():
        real, fake = (tf.constant(rng.rand(4, 16, 16, 3).astype(np.float32))
                      for _ in range(2))
        conditioning = _random_conditioning(config, 4, 1)
        judged = discriminator.judge(config, real, conditioning, [])
        terms = discriminator.sharpening_terms(config, conditioning, real, fake)
        same = discriminator.sharpening_terms(config, conditioning, real, real)
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            logits, terms, same = session.run([judged.logits, terms[:3], same[:3]])
    assert logits.shape == (4, 4, 4)  # one logit per patch on the latent grid
    for values in terms + same:
        assert values.shape == (4,)
    d_loss, g_adversarial, feature_matching = terms
    # softplus(-a) + softplus(b) > 0; at chance each softplus is log 2
    assert np.all(d_loss > 0) and np.all(g_adversarial > 0)
    assert np.all(feature_matching > 0)
    np.testing.assert_array_equal(same[2], 0.0)
    assert np.all(d_loss < 4 * np.log(2)) and np.all(g_adversarial < 2 * np.log(2))


def test_without_weights_no_discriminator_is_built():
    with tf.Graph().as_default():
        spec = _train_spec(tiny_config())
        assert not [v for v in tf.global_variables() if discriminator.owns(v)]
        assert not set(SHARPENING_SCALARS) & set(spec.host_call[1])
        assert set(TRAIN_SCALARS) <= set(spec.host_call[1])


def test_sharpened_train_spec_keeps_the_tpu_rules():
    config = tiny_config(**SHARPENED)
    with tf.Graph().as_default() as graph:
        spec = _train_spec(config, debug_images=True)
        assert graph.get_collection(tf.GraphKeys.SUMMARIES) == []
        tensors = spec.host_call[1]
        assert set(TRAIN_SCALARS) | set(SHARPENING_SCALARS) <= set(tensors)
        for name, tensor in tensors.items():
            assert tensor.shape.is_fully_defined() and tensor.shape.rank >= 1, name
        names = [v.op.name for v in tf.global_variables()]
    d_names = [n for n in names if n.startswith("discriminator/")]
    assert "discriminator/conv0/kernel" in d_names
    assert "discriminator/beta1_power" in d_names  # its Adam's, not the GQN's
    # the GQN's Adam has slots for the GQN only, the discriminator's for it only
    assert all(n.startswith("discriminator/") for n in names if "DiscriminatorAdam" in n)
    assert all(n.startswith("gqn/") for n in names if n.endswith("/Adam"))


def _variable_values(session):
    return {v.op.name: value for v, value in zip(
        tf.trainable_variables(), session.run(tf.trainable_variables()))}


def _one_step_changes(config):
    """Which trainable variables (and singular vectors) one train step
    changes, by more than float32 rounding of a tiny Adam step."""
    with tf.Graph().as_default():
        spec = _train_spec(config)
        vectors = [v for v in tf.global_variables() if "singular_vector" in v.op.name]
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            session.run(tf.local_variables_initializer())
            before, vectors_before = _variable_values(session), session.run(vectors)
            session.run(spec.train_op)
            after, vectors_after = _variable_values(session), session.run(vectors)
            step = session.run(tf.train.get_global_step())
    changed = {name for name in before
               if np.abs(after[name] - before[name]).max() > 1e-20}
    vectors_moved = all(np.abs(a - b).max() > 0
                        for a, b in zip(vectors_before, vectors_after))
    return changed, set(before), vectors_moved, step


def test_each_optimizer_steps_only_its_own_network():
    """With one network's learning rate at 1e-30 (an Adam step far below
    float32 rounding of its weights), one train step must leave that
    network alone and move every weight of the other: a variable given to
    the wrong optimizer would move."""
    frozen_gqn = tiny_config(**SHARPENED, learning_rate_start=1e-30,
                             learning_rate_end=1e-30)
    changed, names, vectors_moved, step = _one_step_changes(frozen_gqn)
    d_names = {name for name in names if name.startswith("discriminator/")}
    assert d_names and changed == d_names
    assert vectors_moved and step == 1
    frozen_d = tiny_config(**SHARPENED, discriminator_learning_rate=1e-30)
    changed, names, _, step = _one_step_changes(frozen_d)
    gqn_names = {name for name in names if name.startswith("gqn/")}
    assert changed and changed <= gqn_names
    assert "gqn/draw/generator_core/kernel" in changed
    assert step == 1


def test_trainable_variables_leave_out_the_discriminator():
    with tf.Graph().as_default():
        _train_spec(tiny_config(**SHARPENED), freeze_regex="^gqn/representation/")
        names = [v.op.name for v in trainable_variables("^gqn/representation/")]
        assert names and all(n.startswith("gqn/") for n in names)
        assert not any("representation" in n for n in names)
        assert discriminator.variables()


@pytest.mark.skipif(not hardware.cpu_has_bfloat16(),
                    reason="this CPU lacks AVX512-BF16/AMX: bfloat16 would be emulated")
def test_sharpened_training_runs_in_bfloat16():
    config = tiny_config(**SHARPENED, precision="bfloat16")
    with tf.Graph().as_default() as graph:
        spec = _train_spec(config)
        convolutions = [op for op in graph.get_operations()
                        if op.type == "Conv2D" and op.name.startswith("discriminator/")]
        assert convolutions and all(op.outputs[0].dtype == tf.bfloat16
                                    for op in convolutions)
        watched = [spec.host_call[1][name][0]
                   for name in ("loss", "gradient_norm") + SHARPENING_SCALARS]
        assert all(t.dtype == tf.float32 for t in watched)
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            session.run(tf.local_variables_initializer())
            values = np.array([session.run(watched + [spec.train_op])[:-1]
                               for _ in range(4)])
    assert np.all(np.isfinite(values))
    d_loss = values[:, 2]
    assert np.all(d_loss > 0) and d_loss[-1] < d_loss[0]  # it learns to tell


def test_resume_may_change_weights_but_not_add_a_discriminator():
    plain, sharpened = GQNConfig(), GQNConfig(**SHARPENED)
    assert cli_flags.resolve_config(sharpened, {"adversarial_weight": 0.5}) == (
        sharpened.replace(adversarial_weight=0.5))
    assert not cli_flags.resolve_config(
        sharpened, {"adversarial_weight": 0.0, "feature_matching_weight": 0.0}
    ).uses_discriminator
    with pytest.raises(cli_flags.FlagError,
                       match="without a discriminator.*warm_start_from"):
        cli_flags.resolve_config(plain, {"adversarial_weight": 0.1}, "m/gqn_config.json")
    with pytest.raises(ValueError, match="adversarial_weight must be >= 0"):
        GQNConfig(adversarial_weight=-1.0)


# --- through the command lines -------------------------------------------

@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    return generate_rooms(tmp_path_factory.mktemp("sharpen"))




def test_sharpened_run_trains_resumes_and_evaluates(workspace):
    model_dir = workspace / "sharpened"
    assert_ok(run_cli(TRAIN, *rooms_flags(workspace), "--model_dir", model_dir,
                      *TINY_MODEL_FLAGS, "--adversarial_weight", "0.1",
                      "--feature_matching_weight", "1", "--max_steps", "4",
                      "--save_checkpoints_steps", "2", "--summary_every_steps", "1",
                      "--eval_steps", "1"))
    resumed = assert_ok(run_cli(TRAIN, *rooms_flags(workspace), "--model_dir",
                                model_dir, "--max_steps", "6", "--skip_eval",
                                "--summary_every_steps", "1"))
    assert "step 6/6" in resumed.stderr
    reader = tf.train.load_checkpoint(str(model_dir))
    assert reader.get_tensor("global_step") == 6
    assert "discriminator/conv0/kernel" in reader.get_variable_to_shape_map()
    assert set(TRAIN_SCALARS) | set(SHARPENING_SCALARS) <= event_tags(str(model_dir))
    assert "sharpness" in event_tags(str(model_dir / "eval"))
    output = workspace / "sharpened_eval"
    result = assert_ok(run_cli("eval_gqn.py", *rooms_flags(workspace), "--model_dir",
                               model_dir, "--output_dir", output, "--num_scenes", "4",
                               "--num_samples", "1"))
    metrics = json.loads((output / "metrics.json").read_text())
    assert 0 < metrics["model"]["sharpness"]["mean"] < 10
    assert metrics["baselines"]["nearest_context"]["sharpness"]["mean"] > 0
    assert "sharpness" in result.stdout


@pytest.fixture(scope="module")
def warm_started(workspace):
    """A GQN trained without a discriminator, then fine-tuned with one and
    the representation frozen."""
    source = workspace / "plain"
    assert_ok(run_cli(TRAIN, *rooms_flags(workspace), "--model_dir", source,
                      *TINY_MODEL_FLAGS, "--max_steps", "2", "--skip_eval"))
    target = workspace / "sharpened_from_plain"
    assert_ok(run_cli(TRAIN, *rooms_flags(workspace), "--model_dir", target,
                      "--warm_start_from", source, "--adversarial_weight", "0.1",
                      "--freeze", "^gqn/representation/", "--max_steps", "3",
                      "--skip_eval", "--save_checkpoints_steps", "100"))
    return source, target


def test_warm_start_without_discriminator_carries_the_gqn(warm_started):
    source, target = warm_started
    source_reader = tf.train.load_checkpoint(str(source))
    start = tf.train.load_checkpoint(str(target / "model.ckpt-0"))
    assert not any(name.startswith("discriminator/")
                   for name in source_reader.get_variable_to_shape_map())
    kernel = "gqn/draw/generator_core/kernel"
    np.testing.assert_array_equal(start.get_tensor(kernel),
                                  source_reader.get_tensor(kernel))
    # the discriminator starts fresh: initialised, its Adam never stepped
    assert np.abs(start.get_tensor("discriminator/conv0/kernel")).max() > 0
    assert start.get_tensor("discriminator/beta1_power") == discriminator.ADAM_BETA1
    assert not start.get_tensor("discriminator/conv0/kernel/DiscriminatorAdam").any()
    assert tf.train.load_variable(str(target), "global_step") == 3


def test_freeze_with_the_discriminator_on(warm_started):
    source, target = warm_started
    source_reader = tf.train.load_checkpoint(str(source))
    trained = tf.train.load_checkpoint(str(target))
    frozen = [name for name in trained.get_variable_to_shape_map()
              if name.startswith("gqn/representation/") and "Adam" not in name]
    assert frozen
    for name in frozen:
        np.testing.assert_array_equal(trained.get_tensor(name),
                                      source_reader.get_tensor(name), err_msg=name)
    kernel = "gqn/draw/generator_core/kernel"
    assert not np.array_equal(trained.get_tensor(kernel),
                              source_reader.get_tensor(kernel))
    start = tf.train.load_checkpoint(str(target / "model.ckpt-0"))
    assert not np.array_equal(trained.get_tensor("discriminator/conv0/kernel"),
                              start.get_tensor("discriminator/conv0/kernel"))


def test_resuming_a_plain_model_dir_with_a_discriminator_is_refused(warm_started,
                                                                    workspace):
    source, _ = warm_started
    result = run_cli(TRAIN, *rooms_flags(workspace), "--model_dir", source,
                     "--adversarial_weight", "0.1", "--max_steps", "4", "--skip_eval")
    assert_refused(result, "without a discriminator", "--warm_start_from")
