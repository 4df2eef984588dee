"""The training step's optimisers and gradients.

The GQN's Adam steps its variables on the loss; when sharpening
(gqn.discriminator), the discriminator's Adam steps the discriminator's on
its own loss in the same op, which also stores the power-iteration
estimates. The global step advances once.

Replicas (TPU cores, or a tf.distribute strategy's replicas): each
differentiates its mean loss divided by the number of replicas, and the
gradients are summed over replicas here, once (gqn.replicas), so that a step
is the global batch's mean-loss step, as on one device, and gradient_norm
is the norm of the gradient that is applied: it does not shrink as replicas
are added. The optimisers then apply the summed gradients without summing
again (no CrossShardOptimizer, which would all-reduce a second time).

float16 (GPUs without bfloat16): dynamic loss scaling. The networks compute
in float16, whose largest value is 65504, while the loss, the weights and
Adam's state stay float32. The loss is multiplied by a scale before
differentiation so that small gradients do not flush to zero in float16,
and the summed gradients are divided by it before they are applied. A step
whose gradients overflowed is skipped (nothing applied; the global step
still advances) and halves the scale; after LOSS_SCALE_GROWTH_STEPS finite
steps in a row the scale doubles. The scale lives in a local variable, not
the checkpoint (a resumed run finds its level again within a few skipped
steps), so a model_dir resumes in any precision. A step skipped this way is
expected: the NaN guard stops training only when the loss itself is not
finite, or the gradients overflow at the smallest scale, 1.
"""
import collections
import re

import tensorflow.compat.v1 as tf

from gqn import discriminator, replicas

# op: the train op; gradient_norm: the norm of the summed gradients it
# applies (both networks' when sharpening); skipped: a bool scalar, True
# where the step applied nothing on purpose (a float16 overflow that loss
# scaling expects); loss_scale: the scale this step used (float16), or None.
TrainStep = collections.namedtuple("TrainStep",
                                   ["op", "gradient_norm", "skipped", "loss_scale"])
# A local (never checkpointed) variable: was the last step healthy? Read
# before each checkpoint save on CPU/GPU.
_HEALTH_SCOPE, _HEALTH_NAME = "training_health", "last_step_healthy"
# Dynamic loss scaling (float16), as common mixed-precision practice has it.
INITIAL_LOSS_SCALE = 2.0 ** 15
LOSS_SCALE_GROWTH_STEPS = 2000
MIN_LOSS_SCALE = 1.0


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


def summed_gradients(loss, variables, num_replicas, use_tpu):
    """[(gradient, variable)]: this replica's `loss` over `num_replicas`,
    differentiated and summed over the step's replicas."""
    variables = list(variables)
    gradients = tf.gradients(loss / num_replicas, variables)
    return list(zip(replicas.sum_gradients(gradients, variables, use_tpu), variables))


def _apply(optimizer, gradients, global_step=None):
    """Applies gradients that are already summed over replicas."""
    if tf.distribute.has_strategy():
        return optimizer.apply_gradients(gradients, global_step,
                                         skip_gradients_aggregation=True)
    return optimizer.apply_gradients(gradients, global_step)


def _local_variable(name, value):
    """A per-run training-state scalar: not checkpointed, one value shared
    by every replica (each stores the same, computed from values reduced
    over replicas). A resource variable, so that a read taken before an
    assignment in the same step keeps the old value."""
    initial = tf.constant(value)
    return tf.get_variable(name, dtype=initial.dtype, initializer=initial,
                           trainable=False, collections=[tf.GraphKeys.LOCAL_VARIABLES],
                           use_resource=True,
                           aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)


class DynamicLossScale:
    """The loss scale of a float16 run and its schedule (see the module
    docstring)."""

    def __init__(self):
        with tf.variable_scope("loss_scale"):
            self.scale = _local_variable("scale", INITIAL_LOSS_SCALE)
            self.finite_steps = _local_variable("finite_steps", 0)

    def update(self, finite):
        """Op moving the scale after a step whose gradients were `finite`
        (or not): halve on overflow (not below MIN_LOSS_SCALE), double after
        LOSS_SCALE_GROWTH_STEPS finite steps in a row."""
        finite_steps = tf.where(finite, self.finite_steps + 1, 0)
        grow = finite_steps >= LOSS_SCALE_GROWTH_STEPS
        scale = tf.where(finite, tf.where(grow, 2.0 * self.scale, self.scale),
                         tf.maximum(0.5 * self.scale, MIN_LOSS_SCALE))
        return tf.group(tf.assign(self.scale, scale),
                        tf.assign(self.finite_steps, tf.where(grow, 0, finite_steps)))


def train_step(config, loss, sharpening, global_step, learning_rate, num_replicas,
               use_tpu, freeze_regex=None):
    """The TrainStep of `loss` (and, when `sharpening` terms are given, of
    the discriminator's loss); with loss scaling when the config computes
    in float16."""
    loss_scale = DynamicLossScale() if config.precision == "float16" else None
    scale = loss_scale.scale.read_value() if loss_scale is not None else None

    def gradients_of(objective, variables):
        if scale is None:
            return summed_gradients(objective, variables, num_replicas, use_tpu)
        return [(g if g is None else g / scale, v) for g, v in summed_gradients(
            objective * scale, variables, num_replicas, use_tpu)]

    gradients = gradients_of(loss, trainable_variables(freeze_regex))
    optimizer = tf.train.AdamOptimizer(learning_rate, config.adam_beta1,
                                       config.adam_beta2, config.adam_epsilon)
    d_gradients = []
    if sharpening is not None:
        d_gradients = gradients_of(tf.reduce_mean(sharpening.d_loss),
                                   discriminator.variables())
        d_optimizer = tf.train.AdamOptimizer(
            config.discriminator_learning_rate, discriminator.ADAM_BETA1,
            discriminator.ADAM_BETA2, config.adam_epsilon, name="DiscriminatorAdam")
    every_gradient = [g for g, _ in gradients + d_gradients if g is not None]
    gradient_norm = tf.linalg.global_norm(every_gradient)
    outer_scope = tf.get_default_graph().get_name_scope()

    def apply():
        # Every gradient is complete before any variable is written: the
        # GQN's backward pass reads the discriminator's weights, and the
        # forward pass the singular vectors. In the caller's name scope, not
        # a cond's, so that Adam's variables keep their checkpoint names.
        with tf.control_dependencies(every_gradient), tf.name_scope(
                outer_scope + "/" if outer_scope else None):
            updates = [_apply(optimizer, gradients, global_step)]
            if sharpening is not None:
                # In the discriminator's name scope, so are its Adam's beta powers.
                with tf.name_scope(discriminator.SCOPE + "/"):
                    updates.append(_apply(d_optimizer, d_gradients))
                    updates += [tf.assign(variable, value) for variable, value
                                in sharpening.singular_vectors]
            return tf.group(*updates)

    if loss_scale is None:
        return TrainStep(apply(), gradient_norm, tf.constant(False), None)
    finite = tf.math.is_finite(gradient_norm)
    with tf.control_dependencies([gradient_norm]):
        train_op = tf.cond(finite, apply,
                           lambda: tf.group(tf.assign_add(global_step, 1)))
    with tf.control_dependencies([train_op]):
        train_op = loss_scale.update(finite)
    skipped = tf.logical_and(tf.logical_not(finite), scale > MIN_LOSS_SCALE)
    return TrainStep(train_op, gradient_norm, skipped, scale)


def is_healthy(loss, step):
    """Did the step go as training expects: a finite loss, and finite
    gradients or a step skipped on purpose? `loss` is the mean over
    replicas, so every replica gets the same answer."""
    return tf.logical_and(tf.math.is_finite(loss), tf.logical_or(
        tf.math.is_finite(step.gradient_norm), step.skipped))


def remember_health(healthy):
    """(op storing `healthy` in a local variable, a read of that variable):
    so that a checkpoint listener can ask whether the step just run was
    healthy."""
    with tf.variable_scope(_HEALTH_SCOPE):
        flag = _local_variable(_HEALTH_NAME, True)
    return tf.assign(flag, healthy), flag.read_value()
