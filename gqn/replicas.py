"""Where a model_fn call runs among the replicas of one step, and sums and
means over them.

A step's replicas are the TPU cores under TPUEstimator (which shards the
batch without a tf.distribute strategy: the count comes from its context in
params) or the replicas of a tf.distribute strategy under a plain
Estimator. Outside either there is one replica.
"""
import tensorflow.compat.v1 as tf


def count(params, use_tpu):
    """How many replicas share the step."""
    if use_tpu:
        return params["context"].num_replicas
    context = tf.distribute.get_replica_context()
    return 1 if context is None else context.num_replicas_in_sync


def index():
    """This replica's index under a strategy (None where it is only known
    at run time); 0 outside one and under TPUEstimator, whose cores all run
    the same program."""
    context = tf.distribute.get_replica_context()
    if context is None:  # cross-replica context: not where a model_fn runs
        return 0
    return tf.get_static_value(context.replica_id_in_sync_group)


def _strategy_reduce(reduce_op, values, destinations):
    """`values` reduced over a strategy's replicas in one batched
    all-reduce, placed like `destinations`. merge_call + batch_reduce_to
    rather than ReplicaContext.all_reduce, whose gradient wrapper cannot
    find per-replica variables in graph mode."""
    def reduce(strategy, pairs):
        return strategy.extended.batch_reduce_to(reduce_op, pairs)
    return tf.distribute.get_replica_context().merge_call(
        reduce, args=(list(zip(values, destinations)),))


def sum_gradients(gradients, variables, use_tpu):
    """Each gradient summed over the step's replicas (None stays None):
    cross_replica_sum on TPU, the strategy's all-reduce, onto the variables'
    devices, under one."""
    present = [i for i, gradient in enumerate(gradients) if gradient is not None]
    summed = list(gradients)
    if use_tpu:
        for i in present:
            summed[i] = tf.tpu.cross_replica_sum(gradients[i])
    elif tf.distribute.has_strategy() and present:
        reduced = _strategy_reduce(tf.distribute.ReduceOp.SUM,
                                   [gradients[i] for i in present],
                                   [variables[i] for i in present])
        for i, gradient in zip(present, reduced):
            summed[i] = gradient
    return summed


def mean_scalars(scalars):
    """The dict's float32 scalars averaged over a strategy's replicas, in
    one all-reduce (unchanged elsewhere: TPU's host_call averages over
    cores itself)."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return scalars
    names = sorted(scalars)
    stacked = tf.stop_gradient(tf.stack([tf.cast(scalars[name], tf.float32)
                                         for name in names]))
    averaged, = _strategy_reduce(tf.distribute.ReduceOp.MEAN, [stacked], [stacked])
    return {name: averaged[i] for i, name in enumerate(names)}
