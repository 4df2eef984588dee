"""model_fn_builder: the GQN as a TPUEstimator model_fn.

The same model_fn runs with use_tpu=False on CPU/GPU (TPUEstimator turns the
spec into a plain EstimatorSpec), on TPU, and once per replica under a
tf.distribute strategy (plain Estimator, see gqn.estimator). TPU rules kept
here: no v1 summaries (scalars and images go through host_call,
gqn.summaries), eval metrics through eval_metrics, static shapes throughout.
The optimisers and the gradients' way over replicas are gqn.optimization's.

The logged scalars are averaged over replicas (as host_call averages them
over TPU cores); gradient_norm is the norm of the gradient summed over
replicas, the one applied. With sharpening weights in the config
(gqn.discriminator) the loss adds the weighted adversarial and
feature-matching terms to the negative ELBO, and the same train op also
steps the discriminator; gradient_norm then covers both networks'
gradients.

On CPU/GPU the training scalars reach the session hooks of the caller
(progress log, NaN guard; gqn.training) through `training_hooks`: a
function of TrainingTensors that returns hooks, which the spec hands to the
estimator.
"""
import collections

import tensorflow.compat.v1 as tf

from gqn import discriminator, model, objective, optimization, replicas, schedules
from gqn import summaries

# The training unroll is the posterior's reconstruction of the target, not
# the generation users see: its image metrics are named for it.
TRAIN_SCALARS = ("loss", "elbo", "kl", "nll", "bits_per_dim", "reconstruction_mse",
                 "reconstruction_psnr", "sigma", "learning_rate", "gradient_norm")
# Also written while the config sharpens (config.uses_discriminator).
SHARPENING_SCALARS = ("d_loss", "g_adversarial", "feature_matching")
EVAL_METRICS = ("elbo", "kl", "nll", "bits_per_dim", "mse", "psnr", "ssim",
                "sharpness", "blockiness")
NOISE_SEED_KEY = "noise_seed"

# What the training step hands to the caller's session hooks (CPU/GPU):
# scalars: TRAIN_SCALARS (and the sharpening ones; loss_scale in float16),
# float32, averaged over replicas; global_batch_size: examples per step over all replicas;
# healthy: did this step go as expected (gqn.optimization.is_healthy);
# last_step_healthy: a read of the stored flag, for a checkpoint listener.
TrainingTensors = collections.namedtuple(
    "TrainingTensors", ["scalars", "global_step", "global_batch_size", "healthy",
                        "last_step_healthy"])


def _per_example_terms(gqn_config, scene, labels, global_step):
    """Reconstruction (posterior) unroll of the encoded scene and its ELBO
    terms, per example."""
    batch_size = labels.shape.as_list()[0]
    sigma = schedules.pixel_sigma(gqn_config, global_step)
    noise = model.standard_noise(gqn_config, batch_size, model.content_seeds(labels),
                                 sample_index=global_step)
    reconstruction = model.reconstruct(gqn_config, scene, labels, noise)
    terms = objective.elbo_terms(labels, reconstruction.mean_image, sigma,
                                 model.step_kls(reconstruction))
    terms["bits_per_dim"] = objective.bits_per_dim(terms["elbo"],
                                                   gqn_config.pixels_per_image)
    return terms, sigma, reconstruction


# loss: what the GQN minimises (the mean negative ELBO, plus the weighted
# sharpening terms); generated and sharpening: None unless the config
# sharpens.
TrainingObjective = collections.namedtuple(
    "TrainingObjective", ["loss", "terms", "sigma", "scene", "reconstruction",
                          "generated", "sharpening"])


def training_objective(gqn_config, features, labels, global_step):
    """The training step's loss and its parts; the scene is encoded once
    for the reconstruction, the generation and the discriminator."""
    scene = model.encode_scene(gqn_config, features)
    terms, sigma, reconstruction = _per_example_terms(
        gqn_config, scene, labels, global_step)
    loss = tf.reduce_mean(terms["elbo"])
    if gqn_config.depth_loss_weight > 0:  # validate() keeps it to the colour path
        terms["depth_nll"] = objective.depth_choice_nll(labels, scene.colours.depth_choice)
        loss += gqn_config.depth_loss_weight * tf.reduce_mean(terms["depth_nll"])
    generated = sharpening = None
    if gqn_config.uses_discriminator:
        # The noise is a function of the content seeds, as training's is,
        # at sample indices (< 0) the reconstruction never uses.
        batch_size = labels.shape.as_list()[0]
        generated = model.generate(gqn_config, scene, model.standard_noise(
            gqn_config, batch_size, model.content_seeds(labels),
            sample_index=-1 - global_step)).mean_image
        sharpening = discriminator.sharpening_terms(gqn_config, scene.conditioning,
                                                    labels, generated)
        loss += (gqn_config.adversarial_weight
                 * tf.reduce_mean(sharpening.g_adversarial)
                 + gqn_config.feature_matching_weight
                 * tf.reduce_mean(sharpening.feature_matching))
    return TrainingObjective(loss, terms, sigma, scene, reconstruction, generated,
                             sharpening)


def _training_scalars(trained, labels):
    """The per-replica means of the loss and its terms."""
    terms = trained.terms
    scalars = {name: tf.reduce_mean(terms[name])
               for name in ("elbo", "kl", "nll", "bits_per_dim")}
    metrics = objective.image_metrics(labels, trained.reconstruction.mean_image)
    if "depth_nll" in terms:
        scalars["depth_nll"] = tf.reduce_mean(terms["depth_nll"])
    scalars.update(loss=trained.loss,
                   reconstruction_mse=tf.reduce_mean(metrics["mse"]),
                   reconstruction_psnr=tf.reduce_mean(metrics["psnr"]))
    if trained.sharpening is not None:
        scalars.update({name: tf.reduce_mean(getattr(trained.sharpening, name))
                        for name in SHARPENING_SCALARS})
    return scalars


def _eval_metric_fn(**per_example):
    """Means over the evaluated examples; an undefined (NaN) value, such as
    the fruit PSNR of a view without fruit, is left out."""
    def mean(values):
        defined = tf.logical_not(tf.math.is_nan(values))
        return tf.metrics.mean(tf.where(defined, values, tf.zeros_like(values)),
                               weights=tf.cast(defined, tf.float32))
    return {name: mean(value) for name, value in per_example.items()}


def model_fn_builder(gqn_config, use_tpu=False, summary_every_steps=100,
                     debug_images=False, freeze_regex=None, training_hooks=None):
    """Returns model_fn(features, labels, mode, params, config) for
    (TPU)Estimator. The config is closed over; the model reads no flags.
    `training_hooks(TrainingTensors)` -> session hooks for TRAIN (CPU/GPU
    only: a TPU step's tensors cannot be fetched by host-side hooks)."""
    gqn_config.validate()
    if use_tpu and training_hooks is not None:
        raise ValueError("training_hooks fetch tensors from the host; a TPU "
                         "step's tensors stay on the TPU")
    tpu = tf.estimator.tpu

    def model_fn(features, labels, mode, params, config):
        model.check_features(features, gqn_config,
                             labels if mode != tf.estimator.ModeKeys.PREDICT else None)
        batch_size = features["query_pose"].shape.as_list()[0]
        global_step = tf.train.get_or_create_global_step()

        if mode == tf.estimator.ModeKeys.PREDICT:
            return tpu.TPUEstimatorSpec(mode, predictions=_predictions(
                gqn_config.rendering(), features, batch_size))

        if mode == tf.estimator.ModeKeys.EVAL:
            scene = model.encode_scene(gqn_config, features)
            terms, _, _ = _per_example_terms(gqn_config, scene, labels, global_step)
            loss = tf.reduce_mean(terms["elbo"])
            generation = model.generate(
                gqn_config, scene, model.standard_noise(gqn_config, batch_size))
            generated = generation.mean_image
            metrics = dict(objective.image_metrics(labels, generated))
            metrics["blockiness"] = objective.blockiness(generated)
            for name in ("elbo", "kl", "nll", "bits_per_dim"):
                metrics[name] = terms[name]
            if model.TARGET_MASK_KEY in features:  # error on the object alone
                metrics.update(objective.masked_image_metrics(
                    labels, generated, features[model.TARGET_MASK_KEY]))
            return tpu.TPUEstimatorSpec(
                mode, loss=loss, eval_metrics=(_eval_metric_fn, metrics))

        trained = training_objective(gqn_config, features, labels, global_step)
        learning_rate = schedules.learning_rate(gqn_config, global_step)
        num_replicas = replicas.count(params, use_tpu)
        step = optimization.train_step(
            gqn_config, trained.loss, trained.sharpening, global_step, learning_rate,
            num_replicas, use_tpu, freeze_regex)
        scalars = replicas.mean_scalars(_training_scalars(trained, labels))
        scalars.update(sigma=trained.sigma, learning_rate=learning_rate,
                       gradient_norm=step.gradient_norm)
        if step.loss_scale is not None:
            scalars["loss_scale"] = step.loss_scale
        train_op, hooks = step.op, []
        if training_hooks is not None:
            healthy = optimization.is_healthy(scalars["loss"], step)
            remember, last_step_healthy = optimization.remember_health(healthy)
            train_op = tf.group(train_op, remember)
            hooks = training_hooks(TrainingTensors(
                scalars, global_step, batch_size * num_replicas, healthy,
                last_step_healthy))
        images = {}
        if debug_images:
            def generate():
                return model.generate(gqn_config, trained.scene, model.standard_noise(
                    gqn_config, batch_size)).mean_image

            images = summaries.debug_images(
                labels, trained.reconstruction.mean_image, trained.generated,
                generate, global_step, summary_every_steps)
        host_call = summaries.host_call(config.model_dir, global_step, scalars,
                                        images, summary_every_steps)
        if replicas.index() != 0:
            host_call = summaries.silent_host_call(host_call[1])
        # Under a strategy Estimator sums the replicas' TRAIN losses for its
        # own log and summary (it averages only when the v1 optimizer scaled
        # the loss itself), so each replica reports its share of the mean.
        # (TPUEstimator reports a core's loss as it is.)
        reported = trained.loss if use_tpu else trained.loss / num_replicas
        return tpu.TPUEstimatorSpec(mode, loss=reported,
                                    train_op=train_op, host_call=host_call,
                                    training_hooks=hooks)

    return model_fn


def _predictions(gqn_config, features, batch_size):
    """Generated mean image(s) in [0, 1] (a linear observation mean may
    stray outside). With a per-example `noise_seed` feature the output is a
    pure function of inputs and seed."""
    seeds = features.get(NOISE_SEED_KEY)
    scene = model.encode_scene(gqn_config, features)
    samples = [
        tf.clip_by_value(model.generate(
            gqn_config, scene,
            model.standard_noise(gqn_config, batch_size, seeds, index)).mean_image,
            0.0, 1.0)
        for index in range(gqn_config.predict_samples)]
    predictions = {"mean_image": samples[0]}
    if gqn_config.predict_samples > 1:
        predictions["samples"] = tf.stack(samples, axis=1)
    return predictions
