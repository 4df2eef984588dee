"""model_fn_builder: the GQN as a TPUEstimator model_fn.

The same model_fn runs with use_tpu=False on CPU/GPU (TPUEstimator turns the
spec into a plain EstimatorSpec), on TPU, and once per replica under a
tf.distribute strategy (plain Estimator, see gqn.estimator). TPU rules kept
here: no v1 summaries (scalars and images go through host_call), eval metrics
through eval_metrics, static shapes throughout, CrossShardOptimizer only on
TPU.

Gradients come from kernel_gradients (one backward pass; in bfloat16 at
small per-replica batches the ConvLSTM kernels are differentiated once over
all steps). Each replica's mean loss is scaled by 1/replicas before them,
and apply_gradients sums them over replicas (CrossShardOptimizer on TPU,
the v1 optimizer under a strategy), so every step is the global batch's
mean-loss step, as on one device. The logged scalars are averaged over replicas (as host_call averages
them over TPU cores); gradient_norm is then the mean of the replicas' norms
of their own gradient share, not the norm of the summed gradient.

With sharpening weights in the config (gqn.discriminator) the loss adds the
weighted adversarial and feature-matching terms to the negative ELBO, and
the same train op also steps the discriminator with its own Adam;
gradient_norm then covers both networks' gradients.
"""
import collections
import re

import tensorflow.compat.v1 as tf
from tensorboard.plugins.image import metadata as image_metadata

from gqn import discriminator, kernel_gradients, model, objective, schedules

TRAIN_SCALARS = ("loss", "elbo", "kl", "nll", "bits_per_dim", "mse", "psnr",
                 "sigma", "learning_rate", "gradient_norm")
# Also written while the config sharpens (config.uses_discriminator).
SHARPENING_SCALARS = ("d_loss", "g_adversarial", "feature_matching")
EVAL_METRICS = ("elbo", "kl", "nll", "bits_per_dim", "mse", "psnr", "ssim",
                "sharpness", "blockiness")
NUM_DEBUG_IMAGES = 3
NOISE_SEED_KEY = "noise_seed"
# Training scalars are also named `progress/<name>` so that session hooks
# outside the model_fn (progress log, NaN guard) can fetch them on CPU/GPU.
PROGRESS_SCOPE = "progress"
# A local (never checkpointed) variable: were the last step's loss and
# gradients finite? Read before each checkpoint save on CPU/GPU.
LAST_STEP_FINITE = "training_health/last_step_finite"


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
    terms["mse"] = objective.image_metrics(labels, reconstruction.mean_image)["mse"]
    return terms, sigma, reconstruction


# loss: what the GQN minimises (the mean negative ELBO, plus the weighted
# sharpening terms); generated and sharpening: None unless the config
# sharpens; kernel_uses: for kernel_gradients.gradients.
TrainingObjective = collections.namedtuple(
    "TrainingObjective", ["loss", "terms", "sigma", "scene", "reconstruction",
                          "generated", "sharpening", "kernel_uses"])


def training_objective(gqn_config, features, labels, global_step, kernel_dtypes):
    """The training step's loss and its parts. Convolutions computing in
    `kernel_dtypes` record their kernel uses, in the generation unroll as
    in the reconstruction, so that the batched kernel gradients include the
    sharpening terms."""
    with kernel_gradients.recording_kernel_uses(kernel_dtypes) as kernel_uses:
        scene = model.encode_scene(gqn_config, features)
        terms, sigma, reconstruction = _per_example_terms(
            gqn_config, scene, labels, global_step)
        generated = None
        if gqn_config.uses_discriminator:
            # The noise is a function of the content seeds, as training's
            # is, at sample indices (< 0) the reconstruction never uses.
            batch_size = labels.shape.as_list()[0]
            generated = model.generate(gqn_config, scene, model.standard_noise(
                gqn_config, batch_size, model.content_seeds(labels),
                sample_index=-1 - global_step)).mean_image
    loss = tf.reduce_mean(terms["elbo"])
    sharpening = None
    if generated is not None:
        sharpening = discriminator.sharpening_terms(gqn_config, scene.conditioning,
                                                    labels, generated)
        loss += (gqn_config.adversarial_weight
                 * tf.reduce_mean(sharpening.g_adversarial)
                 + gqn_config.feature_matching_weight
                 * tf.reduce_mean(sharpening.feature_matching))
    return TrainingObjective(loss, terms, sigma, scene, reconstruction, generated,
                             sharpening, kernel_uses)


def trainable_variables(freeze_regex=None):
    """The GQN's trainable variables (not the discriminator's, which its
    own optimizer trains), minus those whose name matches `freeze_regex`."""
    variables = [v for v in tf.trainable_variables() if not discriminator.owns(v)]
    if freeze_regex:
        pattern = re.compile(freeze_regex)
        variables = [v for v in variables if not pattern.search(v.op.name)]
        if not variables:
            raise ValueError(f"freeze pattern {freeze_regex!r} matches every "
                             "trainable variable: nothing would train")
    return variables


def _image_summary(name, images, step):
    """TensorBoard image summary of float [0, 1] images (B, H, W, 3).

    Written directly in the image plugin's format ([width, height, PNG...])
    because tf.summary.image leaves an unused assert op in graph mode, which
    TensorFlow reports as an error at every graph teardown.
    """
    height, width = images.shape.as_list()[1:3]
    pixels = tf.image.convert_image_dtype(images, tf.uint8, saturate=True)
    pngs = [tf.image.encode_png(pixels[i]) for i in range(images.shape[0])]
    tensor = tf.stack([tf.as_string(width), tf.as_string(height)] + pngs)
    tf.compat.v2.summary.write(name, tensor, step=step,
                               metadata=image_metadata.create_summary_metadata(
                                   display_name=name, description=None))


def _host_call(model_dir, global_step, scalars, images, every_n_steps):
    """host_call that writes v2 summaries from the host (TPU-safe); all its
    tensors get a leading dimension (TPU concatenates them over cores)."""
    def host_call_fn(global_step, **tensors):
        step = global_step[0]
        writer = tf.compat.v2.summary.create_file_writer(model_dir)
        with writer.as_default(), tf.compat.v2.summary.record_if(
                tf.equal(step % every_n_steps, 0)):
            for name in scalars:
                tf.compat.v2.summary.scalar(name, tf.reduce_mean(tensors[name]),
                                            step=step)
            for name in images:
                _image_summary(name, tensors[name], step)
            return tf.summary.all_v2_summary_ops()

    tensors = {"global_step": tf.reshape(global_step, [1])}
    tensors.update({name: tf.reshape(value, [1]) for name, value in scalars.items()})
    tensors.update(images)
    return host_call_fn, tensors


def _record_step_health(loss, gradient_norm):
    """Op storing whether this step's loss and gradient norm are finite."""
    finite = tf.logical_and(tf.math.is_finite(loss), tf.math.is_finite(gradient_norm))
    with tf.variable_scope(LAST_STEP_FINITE.split("/")[0]):
        flag = tf.get_variable(LAST_STEP_FINITE.split("/")[1], shape=[],
                               dtype=tf.bool,
                               initializer=tf.constant_initializer(True),
                               trainable=False,
                               collections=[tf.GraphKeys.LOCAL_VARIABLES],
                               # every replica stores the same (averaged) flag
                               aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
    return tf.assign(flag, finite)


def _replica():
    """(number of replicas in sync, this replica's index, or None when it is
    not known statically); (1, 0) outside a tf.distribute strategy and under
    TPUEstimator, which shards without one."""
    context = tf.distribute.get_replica_context()
    if context is None:  # cross-replica context: not where a model_fn runs
        return 1, 0
    return (context.num_replicas_in_sync,
            tf.get_static_value(context.replica_id_in_sync_group))


def _gradient_replicas(params, use_tpu):
    """How many replicas' gradients apply_gradients sums. Each replica's
    mean loss is divided by it first (as Optimizer.compute_gradients does
    for TPU shards and strategy replicas), so a step is the global batch's
    mean-loss step."""
    if use_tpu:
        return params["context"].num_replicas
    return _replica()[0]


def _mean_over_replicas(scalars):
    """The dict's scalars averaged over replicas, in one all-reduce."""
    num_replicas, _ = _replica()
    if num_replicas == 1:
        return scalars
    names = sorted(scalars)
    stacked = tf.stack([tf.cast(scalars[name], tf.float32) for name in names])

    # merge_call + reduce_to rather than ReplicaContext.all_reduce, whose
    # gradient wrapper cannot find per-replica variables in graph mode.
    def mean(strategy, per_replica):
        return strategy.extended.reduce_to(tf.distribute.ReduceOp.MEAN,
                                           per_replica, destinations=per_replica)

    averaged = tf.distribute.get_replica_context().merge_call(
        mean, args=(tf.stop_gradient(stacked),))
    return {name: averaged[i] for i, name in enumerate(names)}


def _silent_host_call(tensors):
    """A host_call of the same shape that writes nothing: for every replica
    but the first under a strategy (Estimator runs the first replica's hooks
    only, and one writer per model_dir keeps one event series)."""
    def host_call_fn(**_):
        return tf.no_op()
    return host_call_fn, tensors


def _adam(learning_rate, beta1, beta2, epsilon, use_tpu, name="Adam"):
    optimizer = tf.train.AdamOptimizer(learning_rate, beta1, beta2, epsilon,
                                       name=name)
    return tf.tpu.CrossShardOptimizer(optimizer) if use_tpu else optimizer


def _train_op(gqn_config, trained, global_step, learning_rate, replicas, use_tpu,
              freeze_regex):
    """(train op, norm of the gradients it applies). The GQN's Adam steps
    its variables on the loss; when sharpening, the discriminator's Adam
    steps the discriminator's on its loss in the same op, which also stores
    the power-iteration estimates. The global step advances once."""
    gradients = kernel_gradients.gradients(
        trained.loss / replicas, trainable_variables(freeze_regex),
        trained.kernel_uses)
    optimizer = _adam(learning_rate, gqn_config.adam_beta1, gqn_config.adam_beta2,
                      gqn_config.adam_epsilon, use_tpu)
    if trained.sharpening is None:
        return (optimizer.apply_gradients(gradients, global_step),
                tf.linalg.global_norm([g for g, _ in gradients]))
    variables = discriminator.variables()
    d_gradients = list(zip(tf.gradients(
        tf.reduce_mean(trained.sharpening.d_loss) / replicas, variables), variables))
    d_optimizer = _adam(gqn_config.discriminator_learning_rate,
                        discriminator.ADAM_BETA1, discriminator.ADAM_BETA2,
                        gqn_config.adam_epsilon, use_tpu, name="DiscriminatorAdam")
    # Every gradient is complete before any variable is written (as in
    # kernel_gradients.gradients): the GQN's backward pass reads the
    # discriminator's weights, and the forward pass the singular vectors.
    every_gradient = [g for g, _ in gradients + d_gradients if g is not None]
    with tf.control_dependencies(every_gradient):
        gqn_update = optimizer.apply_gradients(gradients, global_step)
        # In the discriminator's name scope, so are its Adam's beta powers.
        with tf.name_scope(discriminator.SCOPE + "/"):
            d_update = d_optimizer.apply_gradients(d_gradients)
            train_op = tf.group(gqn_update, d_update, *[
                tf.assign(variable, value)
                for variable, value in trained.sharpening.singular_vectors])
    return train_op, tf.linalg.global_norm(every_gradient)


def _eval_metric_fn(**per_example):
    """Means over the evaluated examples; an undefined (NaN) value, such as
    the fruit PSNR of a view without fruit, is left out."""
    def mean(values):
        defined = tf.logical_not(tf.math.is_nan(values))
        return tf.metrics.mean(tf.where(defined, values, tf.zeros_like(values)),
                               weights=tf.cast(defined, tf.float32))
    return {name: mean(value) for name, value in per_example.items()}


def model_fn_builder(gqn_config, use_tpu=False, summary_every_steps=100,
                     debug_images=False, freeze_regex=None):
    """Returns model_fn(features, labels, mode, params, config) for
    (TPU)Estimator. The config is closed over; the model reads no flags."""
    gqn_config.validate()
    tpu = tf.estimator.tpu

    def model_fn(features, labels, mode, params, config):
        model.check_features(features, gqn_config,
                             labels if mode != tf.estimator.ModeKeys.PREDICT else None)
        batch_size = features["query_pose"].shape.as_list()[0]
        global_step = tf.train.get_or_create_global_step()

        if mode == tf.estimator.ModeKeys.PREDICT:
            return tpu.TPUEstimatorSpec(mode, predictions=_predictions(
                gqn_config, features, batch_size))

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

        trained = training_objective(
            gqn_config, features, labels, global_step,
            kernel_gradients.batched_dtypes(gqn_config, batch_size))
        terms, reconstruction = trained.terms, trained.reconstruction
        loss, sharpening = trained.loss, trained.sharpening
        learning_rate = schedules.learning_rate(gqn_config, global_step)
        train_op, gradient_norm = _train_op(
            gqn_config, trained, global_step, learning_rate,
            _gradient_replicas(params, use_tpu), use_tpu, freeze_regex)
        scalars = {name: tf.reduce_mean(terms[name])
                   for name in ("elbo", "kl", "nll", "bits_per_dim", "mse")}
        scalars.update(loss=loss, gradient_norm=gradient_norm,
                       psnr=tf.reduce_mean(objective.image_metrics(
                           labels, reconstruction.mean_image)["psnr"]))
        if sharpening is not None:
            scalars.update({name: tf.reduce_mean(getattr(sharpening, name))
                            for name in SHARPENING_SCALARS})
        scalars = _mean_over_replicas(scalars)
        scalars.update(sigma=trained.sigma, learning_rate=learning_rate)
        if not use_tpu:
            train_op = tf.group(train_op, _record_step_health(
                scalars["loss"], scalars["gradient_norm"]))
        with tf.name_scope(PROGRESS_SCOPE + "/"):
            for name, value in scalars.items():
                tf.identity(value, name=name)
        images = {}
        if debug_images:
            shown = slice(0, NUM_DEBUG_IMAGES)

            def generate():
                return model.generate(gqn_config, trained.scene, model.standard_noise(
                    gqn_config, batch_size)).mean_image[shown]

            if trained.generated is not None:  # the discriminator's
                generation = trained.generated[shown]
            else:  # the extra unroll only runs on steps that are written
                generation = tf.cond(
                    tf.equal(global_step % summary_every_steps, 0), generate,
                    lambda: tf.zeros_like(labels[shown]))
            images = {"target": labels[shown],
                      "reconstruction": reconstruction.mean_image[shown],
                      "generation": generation}
        host_call = _host_call(config.model_dir, global_step, scalars, images,
                               summary_every_steps)
        if _replica()[1] != 0:
            host_call = _silent_host_call(host_call[1])
        # Under a strategy Estimator sums the replicas' TRAIN losses for its
        # own log and summary (it averages only when the v1 optimizer scaled
        # the loss itself), so each replica reports its share of the mean.
        return tpu.TPUEstimatorSpec(mode, loss=loss / _replica()[0],
                                    train_op=train_op, host_call=host_call)

    return model_fn


def _predictions(gqn_config, features, batch_size):
    """Generated mean image(s). With a per-example `noise_seed` feature the
    output is a pure function of inputs and seed."""
    seeds = features.get(NOISE_SEED_KEY)
    scene = model.encode_scene(gqn_config, features)
    samples = [
        model.generate(gqn_config, scene,
                       model.standard_noise(gqn_config, batch_size, seeds, index)
                       ).mean_image
        for index in range(gqn_config.predict_samples)]
    predictions = {"mean_image": samples[0]}
    if gqn_config.predict_samples > 1:
        predictions["samples"] = tf.stack(samples, axis=1)
    return predictions
