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
"""
import collections
import re

import tensorflow.compat.v1 as tf

from gqn import discriminator, replicas

# op: the train op; gradient_norm: the norm of the summed gradients it
# applies (both networks' when sharpening).
TrainStep = collections.namedtuple("TrainStep", ["op", "gradient_norm"])
# A local (never checkpointed) variable: was the last step healthy? Read
# before each checkpoint save on CPU/GPU.
_HEALTH_SCOPE, _HEALTH_NAME = "training_health", "last_step_healthy"


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


def global_norm(gradients):
    return tf.linalg.global_norm([g for g, _ in gradients if g is not None])


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


def train_step(config, loss, sharpening, global_step, learning_rate, num_replicas,
               use_tpu, freeze_regex=None):
    """The TrainStep of `loss` (and, when `sharpening` terms are given, of
    the discriminator's loss)."""
    gradients = summed_gradients(loss, trainable_variables(freeze_regex),
                                 num_replicas, use_tpu)
    optimizer = tf.train.AdamOptimizer(learning_rate, config.adam_beta1,
                                       config.adam_beta2, config.adam_epsilon)
    d_gradients = []
    if sharpening is not None:
        d_gradients = summed_gradients(tf.reduce_mean(sharpening.d_loss),
                                       discriminator.variables(), num_replicas,
                                       use_tpu)
        d_optimizer = tf.train.AdamOptimizer(
            config.discriminator_learning_rate, discriminator.ADAM_BETA1,
            discriminator.ADAM_BETA2, config.adam_epsilon, name="DiscriminatorAdam")
    every_gradient = [g for g, _ in gradients + d_gradients if g is not None]
    # Every gradient is complete before any variable is written: the GQN's
    # backward pass reads the discriminator's weights, and the forward pass
    # the singular vectors.
    with tf.control_dependencies(every_gradient):
        updates = [_apply(optimizer, gradients, global_step)]
        if sharpening is not None:
            # In the discriminator's name scope, so are its Adam's beta powers.
            with tf.name_scope(discriminator.SCOPE + "/"):
                updates.append(_apply(d_optimizer, d_gradients))
                updates += [tf.assign(variable, value) for variable, value
                            in sharpening.singular_vectors]
    return TrainStep(tf.group(*updates), tf.linalg.global_norm(every_gradient))


def is_healthy(loss, step):
    """Did the step go as training expects: a finite loss and finite
    gradients? `loss` is the mean over replicas, so every replica gets the
    same answer."""
    return tf.logical_and(tf.math.is_finite(loss),
                          tf.math.is_finite(step.gradient_norm))


def remember_health(healthy):
    """(op storing `healthy` in a local variable, a read of that variable):
    so that a checkpoint listener can ask whether the step just run was
    healthy."""
    with tf.variable_scope(_HEALTH_SCOPE):
        flag = _local_variable(_HEALTH_NAME, True)
    return tf.assign(flag, healthy), flag.read_value()
