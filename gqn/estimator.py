"""Building the TPUEstimator: RunConfig/TPUConfig, TPU resolution, warm start.

The one TPUEstimator serves CPU, GPU and TPU (use_tpu=False turns its spec
into a plain EstimatorSpec), so there is one training path to test.
"""
import multiprocessing
import threading

import tensorflow.compat.v1 as tf

from gqn.model_fn import model_fn_builder

# Model weights live under this scope; optimizer slots and the global step
# do not, so a warm start from this pattern takes weights only.
MODEL_VARIABLES_REGEX = "^gqn/"


def session_config(num_cores=None):
    """Threads sized to the cores present."""
    cores = num_cores or multiprocessing.cpu_count()
    return tf.ConfigProto(intra_op_parallelism_threads=cores,
                          inter_op_parallelism_threads=max(2, cores // 2),
                          allow_soft_placement=True)


def make_run_config(model_dir, use_tpu=False, tpu_cluster_resolver=None,
                    iterations_per_loop=100, num_shards=None,
                    save_checkpoints_steps=1000, keep_checkpoint_max=5,
                    log_step_count_steps=100, seed=None):
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


def warm_start_settings(checkpoint, variables_regex=MODEL_VARIABLES_REGEX):
    """Initialise the variables matching `variables_regex` from `checkpoint`
    (a checkpoint path or a model_dir)."""
    return tf.estimator.WarmStartSettings(ckpt_to_initialize_from=checkpoint,
                                          vars_to_warm_start=variables_regex)


def make_estimator(gqn_config, run_config, use_tpu=False, eval_batch_size=None,
                   predict_batch_size=None, warm_start_from=None,
                   summary_every_steps=100, debug_images=False,
                   freeze_regex=None):
    """A TPUEstimator for `gqn_config`; batch sizes are global batch sizes."""
    model_fn = model_fn_builder(gqn_config, use_tpu=use_tpu,
                                summary_every_steps=summary_every_steps,
                                debug_images=debug_images,
                                freeze_regex=freeze_regex)
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
