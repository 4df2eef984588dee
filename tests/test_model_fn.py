"""The model_fn under TPUEstimator(use_tpu=False): TPU rules that CPU can
check, train / resume / summaries, eval metrics and predictions."""
import glob
import os

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from tensorflow.python.summary.summary_iterator import summary_iterator

from gqn import estimator, model, objective
from gqn.model import TARGET_MASK_KEY
from gqn.model_fn import EVAL_METRICS, TRAIN_SCALARS, model_fn_builder, training_objective
from tests.tiny import constant_batch, random_batch, tiny_config

MODES = tf.estimator.ModeKeys


def _call_model_fn(config, mode, model_dir="/tmp/unused", **builder_args):
    features, labels = constant_batch(config)
    run_config = tf.estimator.tpu.RunConfig(model_dir=model_dir)
    model_fn = model_fn_builder(config, **builder_args)
    return model_fn(features, labels if mode != MODES.PREDICT else None, mode,
                    {"batch_size": config.batch_size}, run_config)


def test_train_collects_no_v1_summaries_and_has_static_shapes():
    with tf.Graph().as_default() as graph:
        spec = _call_model_fn(tiny_config(), MODES.TRAIN, debug_images=True)
        assert graph.get_collection(tf.GraphKeys.SUMMARIES) == []
        host_call_fn, tensors = spec.host_call
        assert set(TRAIN_SCALARS) <= set(tensors)
        for name, tensor in tensors.items():
            assert tensor.shape.rank >= 1, name
            assert tensor.shape.is_fully_defined(), name
        for op in graph.get_operations():
            for output in op.outputs:
                if output.dtype != tf.resource and op.type not in ("Const",):
                    assert output.shape.rank is not None, op.name


@pytest.mark.parametrize("overrides", [{}, dict(representation="sweep", colour_path=True)])
def test_forward_loss_and_gradients_compile_with_xla(overrides):
    config = tiny_config(**overrides)
    features, labels = random_batch(config)

    def loss_and_gradients(target, *values):
        inputs = dict(zip(model.FEATURE_KEYS, values))
        rendering = model.reconstruct(config, model.encode_scene(config, inputs), target,
                                      model.standard_noise(config, config.batch_size))
        terms = objective.elbo_terms(target, rendering.mean_image, 0.7,
                                     model.step_kls(rendering))
        loss = tf.reduce_mean(terms["elbo"])
        return [loss] + tf.gradients(loss, tf.trainable_variables())

    with tf.Graph().as_default():
        inputs = [tf.constant(labels)] + [tf.constant(features[key])
                                          for key in model.FEATURE_KEYS]
        compiled = tf.xla.experimental.compile(loss_and_gradients, inputs)
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            values = session.run(compiled)
    assert np.isfinite(values[0]) and values[0] > 0
    assert all(np.all(np.isfinite(g)) for g in values[1:])
    assert any(np.any(g != 0) for g in values[1:])


ENCODED_ONCE = dict(representation="sweep", colour_path=True, adversarial_weight=1.0,
                    feature_matching_weight=1.0, predict_samples=3)


@pytest.mark.parametrize("mode", [MODES.TRAIN, MODES.EVAL, MODES.PREDICT])
def test_the_scene_is_encoded_once_for_every_unroll(mode):
    """However many unrolls a mode builds (training's reconstruction and the
    generation the discriminator judges and the debug images show;
    evaluation's two; three prediction samples), the graph holds one forward
    computation of the representation and one of the colour path."""
    config = tiny_config(**ENCODED_ONCE)
    with tf.Graph().as_default() as graph:
        _call_model_fn(config, mode, debug_images=True)
        forward = [op for op in graph.get_operations() if "gradients" not in op.name]
    convolved = [op for op in forward if op.type == "Conv2D"]
    # The view features' first layer convolves every context frame.
    view_features = [op for op in convolved if op.inputs[0].shape.as_list()[::3]
                     == [config.batch_size * config.context_size, 3]]
    assert len(view_features) == 1, [op.name for op in view_features]
    colour_samples = [op for op in forward
                      if op.type == "GatherV2" and op.inputs[0].shape.as_list()[-1] == 3]
    # once: the four bilinear corners in training and evaluation, the
    # sixteen bicubic taps in a prediction (GQNConfig.rendering)
    assert len(colour_samples) == (16 if mode == MODES.PREDICT else 4)
    # Each unroll ends in the observation's mix (7 channels: the generator's
    # colour, the share, the correction).
    observations = [op for op in convolved if op.outputs[0].shape.as_list()[-1] == 7]
    assert len(observations) == {MODES.TRAIN: 2, MODES.EVAL: 2, MODES.PREDICT: 3}[mode]


def test_the_depth_loss_adds_its_weighted_mean_to_the_elbo():
    """With depth_loss_weight > 0 the training loss is the mean negative
    ELBO plus the weight times the mean depth choice's NLL; at 0 it is the
    ELBO alone and builds no such term."""
    config = tiny_config(representation="sweep", colour_path=True)
    values = {}
    for weight in (0.0, 0.5):
        with tf.Graph().as_default():
            tf.random.set_random_seed(0)
            features, labels = constant_batch(config)
            trained = training_objective(config.replace(depth_loss_weight=weight), features,
                                         labels, tf.train.get_or_create_global_step())
            with tf.Session() as session:
                session.run(tf.global_variables_initializer())
                values[weight] = session.run(trained._replace(
                    scene=(), reconstruction=(), generated=(), sharpening=()))
    assert "depth_nll" not in values[0.0].terms
    plain, weighted = values[0.0], values[0.5]
    assert plain.loss == pytest.approx(plain.terms["elbo"].mean(), rel=1e-6)
    assert weighted.loss == pytest.approx(
        weighted.terms["elbo"].mean() + 0.5 * weighted.terms["depth_nll"].mean(), rel=1e-5)
    assert abs(weighted.terms["depth_nll"].mean()) > 1


def test_eval_spec_reports_every_metric():
    with tf.Graph().as_default():
        spec = _call_model_fn(tiny_config(), MODES.EVAL)
        metric_fn, tensors = spec.eval_metrics
        assert set(tensors) == set(EVAL_METRICS)
        assert all(t.shape.as_list() == [4] for t in tensors.values())
        assert set(metric_fn(**tensors)) == set(EVAL_METRICS)


def test_eval_with_object_masks_adds_fruit_metrics_and_skips_views_without_fruit():
    config = tiny_config()
    with tf.Graph().as_default():
        features, labels = constant_batch(config)
        mask = np.zeros([4, config.image_size, config.image_size, 1], np.float32)
        mask[:3, 4:8, 4:8] = 1.0  # the last view shows no object
        features[TARGET_MASK_KEY] = tf.constant(mask)
        spec = model_fn_builder(config)(features, labels, MODES.EVAL,
                                        {"batch_size": 4},
                                        tf.estimator.tpu.RunConfig(model_dir="/tmp/unused"))
        metric_fn, tensors = spec.eval_metrics
        assert set(tensors) == set(EVAL_METRICS) | set(objective.MASKED_METRICS)
        # what the TPU computes has static shapes: no op whose output size
        # depends on the data (tf.boolean_mask's Where)
        assert all(t.shape.as_list() == [4] for t in tensors.values())
        assert not [op.name for op in tf.get_default_graph().get_operations()
                    if op.type in ("Where", "Unique", "DynamicPartition")]
        metrics = metric_fn(**tensors)
        with tf.Session() as session:
            session.run([tf.global_variables_initializer(), tf.local_variables_initializer()])
            per_example, _ = session.run([tensors["fruit_psnr"], metrics["fruit_psnr"][1]])
            mean = session.run(metrics["fruit_psnr"][0])
    assert np.isnan(per_example[3]) and np.all(np.isfinite(per_example[:3]))
    np.testing.assert_allclose(mean, per_example[:3].mean(), rtol=1e-5)


def test_training_hooks_get_the_step_tensors_through_the_spec():
    """The caller's hooks are built by the model_fn from the step's own
    tensors and handed to the estimator in the spec's training_hooks (no
    lookup by tensor name); a TPU step, whose tensors stay on the TPU,
    refuses them."""
    handed, made = [], []

    def hooks(tensors):
        handed.append(tensors)
        made.append(tf.train.StepCounterHook(every_n_steps=1, output_dir="/tmp/unused"))
        return made[-1:]

    with tf.Graph().as_default():
        spec = _call_model_fn(tiny_config(), MODES.TRAIN, training_hooks=hooks)
        [tensors] = handed
        assert list(spec.training_hooks) == made
        assert set(TRAIN_SCALARS) <= set(tensors.scalars)
        assert tensors.global_batch_size == 4
        assert tensors.healthy.dtype == tf.bool
        with tf.Session() as session:
            session.run([tf.global_variables_initializer(),
                         tf.local_variables_initializer()])
            scalars, healthy, _ = session.run([tensors.scalars, tensors.healthy,
                                               spec.train_op])
            assert session.run(tensors.last_step_healthy)
    assert healthy and all(np.isfinite(value) for value in scalars.values())
    assert scalars["reconstruction_mse"] > 0 and scalars["gradient_norm"] > 0
    with pytest.raises(ValueError, match="stay on the TPU"):
        model_fn_builder(tiny_config(), use_tpu=True, training_hooks=hooks)


def test_freeze_regex_trains_only_the_rest():
    with tf.Graph().as_default():
        _call_model_fn(tiny_config(), MODES.TRAIN, freeze_regex="representation")
        slots = [v.op.name for v in tf.global_variables() if "/Adam" in v.op.name]
        assert slots and not any("representation" in name for name in slots)
        assert any("generator_core" in name for name in slots)
    with tf.Graph().as_default(), pytest.raises(ValueError, match="matches every"):
        _call_model_fn(tiny_config(), MODES.TRAIN, freeze_regex=".*")


def _input_fn(config, seed=0):
    features, labels = random_batch(config, seed=seed, batch_size=4 * config.batch_size)

    def input_fn(params):
        dataset = tf.data.Dataset.from_tensor_slices((features, labels))
        return dataset.repeat().batch(params["batch_size"], drop_remainder=True)
    return input_fn


def _event_tags(model_dir):
    tags = {}
    for path in glob.glob(os.path.join(model_dir, "events.out.tfevents.*")):
        for event in summary_iterator(path):
            for value in event.summary.value:
                tags.setdefault(value.tag, []).append(event.step)
    return tags


def test_train_checkpoint_resume_and_host_call_summaries(tmp_path):
    config = tiny_config()
    model_dir = str(tmp_path / "model")

    def make():
        run_config = estimator.make_run_config(model_dir, save_checkpoints_steps=3,
                                               log_step_count_steps=1, seed=1)
        return estimator.make_estimator(config, run_config, summary_every_steps=1)

    make().train(_input_fn(config), max_steps=3)
    assert tf.train.latest_checkpoint(model_dir).endswith("model.ckpt-3")
    resumed = make()
    resumed.train(_input_fn(config), max_steps=5)
    assert resumed.get_variable_value("global_step") == 5
    assert tf.train.latest_checkpoint(model_dir).endswith("model.ckpt-5")

    tags = _event_tags(model_dir)
    for name in TRAIN_SCALARS:
        assert name in tags, f"host_call scalar {name} missing; got {sorted(tags)}"
    assert sorted(set(tags["elbo"])) == [0, 1, 2, 3, 4]

    metrics = resumed.evaluate(_input_fn(config, seed=1), steps=2)
    for name in EVAL_METRICS:
        assert np.isfinite(metrics[name]), name
    assert metrics["global_step"] == 5

    seeds = np.array([11, 12, 11, 13])
    features, _ = random_batch(config)
    features["context_frames"][2] = features["context_frames"][0]
    features["context_poses"][2] = features["context_poses"][0]
    features["query_pose"][2] = features["query_pose"][0]
    features["noise_seed"] = seeds

    def predict_input_fn(params):
        return tf.data.Dataset.from_tensor_slices(features).batch(
            params["batch_size"], drop_remainder=True)

    first = [p["mean_image"] for p in resumed.predict(predict_input_fn)]
    second = [p["mean_image"] for p in resumed.predict(predict_input_fn)]
    assert first[0].shape == (16, 16, 3)
    np.testing.assert_array_equal(np.stack(first), np.stack(second))
    np.testing.assert_allclose(first[0], first[2], atol=1e-6)
    assert not np.allclose(first[0], first[1])
