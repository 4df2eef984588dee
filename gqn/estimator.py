"""Building the estimator: RunConfig/TPUConfig, TPU resolution, warm start,
distribution strategies.

The one TPUEstimator serves one CPU/GPU and TPU (use_tpu=False turns its spec
into a plain EstimatorSpec). Several GPUs or machines run the same model_fn
under a plain tf.estimator.Estimator with RunConfig(train_distribute=...):
`mirrored` (MirroredStrategy, all local GPUs) or `multi_worker`
(MultiWorkerMirroredStrategy, cluster from TF_CONFIG). Batch sizes given
here are always global batches; each replica or TPU core gets an equal share.
"""
import multiprocessing
import re
import threading

import tensorflow.compat.v1 as tf

from gqn.model_fn import model_fn_builder

# Model weights live under this scope; optimizer slots, the global step and
# the sharpening discriminator do not, so a warm start from this pattern
# takes the GQN's weights only.
MODEL_VARIABLES_REGEX = "^gqn/"


STRATEGIES = ("none", "mirrored", "multi_worker")


def per_replica_batch_size(global_batch_size, num_replicas, replicas="replicas"):
    """global_batch_size / num_replicas, or ValueError naming both numbers."""
    if num_replicas < 1 or global_batch_size % num_replicas:
        lower = global_batch_size // num_replicas * num_replicas
        choices = " or ".join(str(b) for b in (lower, lower + num_replicas) if b > 0)
        raise ValueError(
            f"the global batch size {global_batch_size} cannot be divided over "
            f"{num_replicas} {replicas}: use a multiple of {num_replicas} "
            f"(--batch_size {choices})")
    return global_batch_size // num_replicas


def make_strategy(name, devices=None):
    """A tf.distribute strategy by `name` (one of STRATEGIES), or None.

    'mirrored': one replica per device of `devices` (default: every local GPU,
    or the CPU when there is none). 'multi_worker': one replica per device of
    every TF_CONFIG task (chief and workers), all-reduced with collectives."""
    if name in (None, "none"):
        return None
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multi_worker":
        if devices:
            raise ValueError("devices are for the mirrored strategy; "
                             "multi_worker uses each TF_CONFIG task's devices")
        return tf.distribute.experimental.MultiWorkerMirroredStrategy()
    raise ValueError(f"unknown strategy {name!r}; choose from {STRATEGIES}")


def is_multi_worker(strategy):
    """Does `strategy` run one graph per worker process (TF_CONFIG)?"""
    return strategy is not None and strategy.extended.experimental_between_graph


def session_config(num_cores=None):
    """Threads sized to the cores present."""
    cores = num_cores or multiprocessing.cpu_count()
    return tf.ConfigProto(intra_op_parallelism_threads=cores,
                          inter_op_parallelism_threads=max(2, cores // 2),
                          allow_soft_placement=True)


def make_run_config(model_dir, use_tpu=False, tpu_cluster_resolver=None,
                    iterations_per_loop=100, num_shards=None,
                    save_checkpoints_steps=1000, keep_checkpoint_max=5,
                    log_step_count_steps=100, seed=None, strategy=None):
    """TPU RunConfig (one device or TPU), or with `strategy` a RunConfig
    training under it (and evaluating under it too when it is in-graph; a
    multi-worker run evaluates on its 'evaluator' task alone)."""
    if strategy is not None:
        if use_tpu:
            raise ValueError("--use_tpu runs on TPUEstimator; it does not take "
                             "a distribution strategy")
        return tf.estimator.RunConfig(
            model_dir=model_dir,
            save_checkpoints_steps=save_checkpoints_steps,
            keep_checkpoint_max=keep_checkpoint_max,
            log_step_count_steps=log_step_count_steps,
            tf_random_seed=seed,
            session_config=session_config(),
            train_distribute=strategy,
            eval_distribute=None if is_multi_worker(strategy) else strategy)
    per_host = tf.estimator.tpu.InputPipelineConfig.PER_HOST_V2
    return tf.estimator.tpu.RunConfig(
        cluster=tpu_cluster_resolver,
        model_dir=model_dir,
        save_checkpoints_steps=save_checkpoints_steps,
        keep_checkpoint_max=keep_checkpoint_max,
        log_step_count_steps=log_step_count_steps,
        tf_random_seed=seed,
        session_config=None if use_tpu else session_config(),
        tpu_config=tf.estimator.tpu.TPUConfig(
            iterations_per_loop=iterations_per_loop if use_tpu else 1,
            num_shards=num_shards,
            per_host_input_for_training=per_host))


def warm_start_settings(checkpoint, variables=MODEL_VARIABLES_REGEX):
    """Initialise from `checkpoint` (a checkpoint path or a model_dir) the
    trainable variables matching `variables`, a regex, or exactly the
    variables of a list of names (their optimizer slots not: ':' ends the
    name)."""
    if not isinstance(variables, str):
        variables = [re.escape(name) + ":" for name in variables]
    return tf.estimator.WarmStartSettings(ckpt_to_initialize_from=checkpoint,
                                          vars_to_warm_start=variables)


def make_estimator(gqn_config, run_config, use_tpu=False, eval_batch_size=None,
                   predict_batch_size=None, warm_start_from=None,
                   summary_every_steps=100, debug_images=False,
                   freeze_regex=None, monitor=None):
    """A TPUEstimator for `gqn_config`, or an Estimator when `run_config`
    carries a distribution strategy; batch sizes are global batch sizes.
    `monitor` (gqn.training.RunMonitor; CPU/GPU) gets the training tensors
    for its progress log and NaN guard.

    Under a strategy give train/evaluate the input_fn through
    `strategy_input_fn`, which sizes each replica's batch."""
    model_fn = model_fn_builder(gqn_config, use_tpu=use_tpu,
                                summary_every_steps=summary_every_steps,
                                debug_images=debug_images,
                                freeze_regex=freeze_regex,
                                training_hooks=monitor and monitor.hooks)
    strategy = getattr(run_config, "train_distribute", None)
    if strategy is not None:
        per_replica_batch_size(gqn_config.batch_size, strategy.num_replicas_in_sync)
        return tf.estimator.Estimator(model_fn=estimator_model_fn(model_fn),
                                      config=run_config,
                                      warm_start_from=warm_start_from)
    return tf.estimator.tpu.TPUEstimator(
        model_fn=model_fn,
        config=run_config,
        use_tpu=use_tpu,
        train_batch_size=gqn_config.batch_size,
        eval_batch_size=eval_batch_size or gqn_config.batch_size,
        predict_batch_size=predict_batch_size or gqn_config.batch_size,
        warm_start_from=warm_start_from,
        # SavedModels are for CPU/GPU serving (TF Serving); a TPU graph
        # export would rebuild the model a second time in the same graph.
        export_to_tpu=False)


def estimator_model_fn(tpu_model_fn):
    """A TPUEstimator model_fn as a plain Estimator model_fn: its
    TPUEstimatorSpec becomes an EstimatorSpec the way TPUEstimator does it
    with use_tpu=False (host_call and eval_metrics run on the host)."""
    def model_fn(features, labels, mode, params, config):
        return tpu_model_fn(features, labels, mode, params, config).as_estimator_spec()
    return model_fn


def strategy_input_fn(input_fn, global_batch_size, log=tf.logging.info):
    """`input_fn(params)` of the reader, for an Estimator under a strategy.

    Estimator calls it once per worker (input pipeline) with a
    tf.distribute.InputContext and gives each of the worker's replicas a batch
    of its own, so each batch holds global_batch_size / replicas examples and
    a step sees the global batch. Without a context (evaluation outside the
    strategy) it reads global batches."""
    def wrapped(params, input_context=None):
        params = dict(params or {})
        if input_context is None:
            params["batch_size"] = global_batch_size
        else:
            params["batch_size"] = per_replica_batch_size(
                global_batch_size, input_context.num_replicas_in_sync)
            params["context"] = input_context
            log("input pipeline %d of %d: batches of %d per replica (global "
                "batch %d over %d replicas)", input_context.input_pipeline_id,
                input_context.num_input_pipelines, params["batch_size"],
                global_batch_size, input_context.num_replicas_in_sync)
        return input_fn(params)
    return wrapped


def tpu_core_count(resolver, num_shards=None):
    """TPU cores a TPUEstimator run shards the batch over: `num_shards` when
    given, else every core of the resolved TPU (cores per host x hosts)."""
    if num_shards:
        return num_shards
    per_host = resolver.num_accelerators().get("TPU", 0)
    hosts = len(resolver.cluster_spec().as_dict().get("worker", [])) or 1
    return per_host * hosts


class TPUUnavailableError(ConnectionError):
    """The named Cloud TPU could not be resolved."""


def resolve_tpu(tpu, zone=None, project=None, timeout_seconds=60):
    """TPUClusterResolver for `tpu`, or TPUUnavailableError within
    `timeout_seconds` (the resolver itself may retry for a long time when
    there is no metadata server or network)."""
    result = {}

    def resolve():
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
                tpu, zone=zone, project=project)
            resolver.cluster_spec()
            result["resolver"] = resolver
        except Exception as error:  # any failure is reported the same way
            result["error"] = error

    worker = threading.Thread(target=resolve, daemon=True)
    worker.start()
    worker.join(timeout_seconds)
    if "resolver" in result:
        return result["resolver"]
    reason = (f"{type(result['error']).__name__}: {result['error']}"
              if "error" in result else f"no answer within {timeout_seconds} s")
    raise TPUUnavailableError(
        f"cannot reach Cloud TPU {tpu!r} (zone {zone}, project {project}): "
        f"{reason}. Check the name with `gcloud compute tpus list`; the TPU "
        "extra must be installed (pip install '.[tpu]').")
