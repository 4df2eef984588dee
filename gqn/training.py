"""Training runs as the command line drives them: alternate training and
evaluation up to max_steps, log progress, stop on a NaN loss, export.

The loop only talks to the estimator built in gqn.estimator and the reader
from data_provider; it holds no model code.
"""
import inspect
import json
import os
import time

import numpy as np
import tensorflow.compat.v1 as tf

from data_provider.gqn_tfr_provider import START_STEP_KEY
from gqn.checkpoints import global_step_of
from gqn.model import CONTEXT_FIELD_OF_VIEW_KEY, DEPTH_RANGE_KEY, QUERY_FIELD_OF_VIEW_KEY
from gqn.model_fn import NOISE_SEED_KEY


class TrainingDiverged(ValueError):
    """The loss became NaN or Inf."""


PROGRESS_TERMS = ("loss", "elbo", "kl", "nll", "reconstruction_mse", "sigma",
                  "learning_rate")


class ProgressHook(tf.train.SessionRunHook):
    """Logs step, loss terms, examples/s and the time left to max_steps."""

    def __init__(self, tensors, max_steps, every_n_steps, log=tf.logging.info):
        self.fetches = {name: tensors.scalars[name] for name in PROGRESS_TERMS}
        self.fetches["step"] = tensors.global_step
        self.batch_size = tensors.global_batch_size
        self.max_steps = max_steps
        self.every_n_steps = every_n_steps
        self.log = log

    def begin(self):
        self.last = None

    def before_run(self, run_context):
        return tf.train.SessionRunArgs(self.fetches)

    def after_run(self, run_context, run_values):
        values = run_values.results
        step, now = int(values["step"]) + 1, time.time()
        if self.last is None:
            self.last = (step, now)
            return
        if step % self.every_n_steps and step != self.max_steps:
            return
        last_step, last_time = self.last
        steps_per_second = (step - last_step) / max(now - last_time, 1e-9)
        self.last = (step, now)
        remaining = (self.max_steps - step) / max(steps_per_second, 1e-9)
        terms = "  ".join(f"{name} {values[name]:.4g}" for name in PROGRESS_TERMS)
        self.log(f"step {step}/{self.max_steps}  {terms}  "
                 f"{steps_per_second * self.batch_size:.1f} examples/s  "
                 f"ETA {format_duration(remaining)}")


def format_duration(seconds):
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


class NonFiniteLossGuard(tf.train.SessionRunHook):
    """Stops training at the first step whose loss or gradients are NaN or
    Inf (beyond the overflows float16 loss scaling expects and skips)."""

    def __init__(self, healthy):
        self.healthy = healthy

    def before_run(self, run_context):
        return tf.train.SessionRunArgs(self.healthy)

    def after_run(self, run_context, run_values):
        if not np.all(run_values.results):
            raise tf.train.NanLossDuringTrainingError


class RefuseNonFiniteCheckpoints(tf.train.CheckpointSaverListener):
    """Refuses to save after an unhealthy step (the checkpoint saver may run
    before the guard hook sees that step), so the newest checkpoint is
    always one from before training diverged."""

    def __init__(self, monitor):
        self.monitor = monitor

    def begin(self):
        self.last_step_healthy = self.monitor.last_step_healthy

    def before_save(self, session, global_step_value):
        if not session.run(self.last_step_healthy):
            raise tf.train.NanLossDuringTrainingError


class RunMonitor:
    """The progress log and the NaN guard of one run on CPU/GPU, and the
    checkpoint listener that goes with them.

    Give `hooks` to the estimator (make_estimator's training_hooks): the
    model_fn calls it with the TrainingTensors of each graph it builds.
    `listeners()` go to train(); they read the health flag of the graph
    built last."""

    def __init__(self, max_steps, every_n_steps=100, log=tf.logging.info):
        self.max_steps = max_steps
        self.every_n_steps = every_n_steps
        self.log = log
        self.last_step_healthy = None

    def hooks(self, tensors):
        # Under a strategy the model_fn runs once per replica: keep the
        # first replica's flag, whose hooks Estimator runs.
        if (self.last_step_healthy is None
                or self.last_step_healthy.graph is not tensors.healthy.graph):
            self.last_step_healthy = tensors.last_step_healthy
        return [ProgressHook(tensors, self.max_steps, self.every_n_steps, self.log),
                NonFiniteLossGuard(tensors.healthy)]

    def listeners(self):
        return [RefuseNonFiniteCheckpoints(self)]


def input_fn_from_step(input_fn, step):
    """`input_fn` told, in params['start_step'], the global step its training
    stream starts at, so that a new segment or a resumed run reads on in new
    data (data_provider.gqn_tfr_provider). An input_context (a strategy's)
    is passed on to an input_fn that takes one."""
    takes_context = "input_context" in inspect.signature(input_fn).parameters

    def from_step(params, input_context=None):
        params = dict(params or {}, **{START_STEP_KEY: step})
        if takes_context:
            return input_fn(params, input_context=input_context)
        return input_fn(params)
    return from_step


def train_and_evaluate(estimator, train_input_fn, max_steps, eval_input_fn=None,
                       eval_every=0, eval_steps=None, monitor=None,
                       log=tf.logging.info):
    """Trains `estimator` up to `max_steps`, evaluating every `eval_every`
    steps (0: only at the end, if an eval_input_fn is given). Resumes from the
    model_dir's last checkpoint. `monitor`: the RunMonitor whose hooks the
    estimator was built with (its checkpoint listener is used here).
    Returns the last eval metrics (or None)."""
    step = global_step_of(estimator.model_dir)
    if step >= max_steps:
        log(f"{estimator.model_dir} is already at step {step} >= max_steps "
            f"{max_steps}; nothing to train")
    listeners = monitor.listeners() if monitor is not None else []
    metrics = None
    while step < max_steps:
        target = min(max_steps, step + eval_every) if eval_every else max_steps
        estimator.train(input_fn_from_step(train_input_fn, step), max_steps=target,
                        saving_listeners=listeners)
        previous, step = step, global_step_of(estimator.model_dir)
        if step == previous:
            raise ValueError(f"the training data ran out at step {step} without "
                             "a single batch: is the train split empty, or "
                             "smaller than one batch?")
        if eval_input_fn is not None and (eval_every or step >= max_steps):
            metrics = estimator.evaluate(eval_input_fn, steps=eval_steps)
            log("eval at step %d: %s" % (step, "  ".join(
                f"{k} {v:.4g}" for k, v in sorted(metrics.items())
                if k != "global_step")))
    return metrics


def train_and_evaluate_multi_worker(estimator, train_input_fn, max_steps,
                                    eval_input_fn=None, eval_steps=None):
    """Multi-worker training (MultiWorkerMirroredStrategy, cluster from
    TF_CONFIG) through tf.estimator.train_and_evaluate. Every task runs this:
    the chief and the workers train in lock-step and only the chief writes
    checkpoints and summaries; an 'evaluator' task, if TF_CONFIG has one,
    evaluates each new checkpoint. Each task logs its own progress and stops
    on a NaN or Inf loss through the hooks of the RunMonitor the estimator
    was built with. (Estimator takes no checkpoint listeners here, so the
    listener that refuses a checkpoint after a non-finite step is not
    used.)"""
    if eval_input_fn is None and _cluster_has_evaluator():
        raise ValueError("TF_CONFIG has an 'evaluator' task but there is no "
                         "eval input (--skip_eval)")
    train_spec = tf.estimator.TrainSpec(
        input_fn_from_step(train_input_fn, global_step_of(estimator.model_dir)),
        max_steps=max_steps)
    # Only read by an evaluator task; the train input is a placeholder then.
    eval_spec = tf.estimator.EvalSpec(eval_input_fn or train_input_fn,
                                      steps=eval_steps, throttle_secs=0)
    result = tf.estimator.train_and_evaluate(estimator, train_spec, eval_spec)
    # A worker runs the chief's save ops too (they hold collectives), into
    # <model_dir>/tmp_worker_<i>: copies of the chief's checkpoints. Drop them,
    # so the model_dir keeps one checkpoint series.
    task = _tf_config().get("task", {})
    if task.get("type") == "worker":
        scratch = os.path.join(estimator.model_dir, f"tmp_worker_{task.get('index', 0)}")
        if tf.io.gfile.isdir(scratch):
            tf.io.gfile.rmtree(scratch)
    return result


def _tf_config():
    return json.loads(os.environ.get("TF_CONFIG") or "{}")


def is_chief_task():
    """Is this process the chief of its TF_CONFIG cluster (or alone)?"""
    return _tf_config().get("task", {}).get("type", "chief") in ("chief", "master")


def _cluster_has_evaluator():
    return "evaluator" in _tf_config().get("cluster", {})


def serving_input_receiver_fn(config, batch_size):
    """Placeholders of the SavedModel signature: context frames and poses,
    query pose, the cameras' fields of view (radians) and the scene's depth
    range, and a per-example noise seed (same seed, same image)."""
    def receiver_fn():
        size, views, pose = config.image_size, config.context_size, config.pose_dim
        shapes = {"context_frames": [batch_size, views, size, size, 3],
                  "context_poses": [batch_size, views, pose],
                  "query_pose": [batch_size, pose],
                  CONTEXT_FIELD_OF_VIEW_KEY: [batch_size, views],
                  QUERY_FIELD_OF_VIEW_KEY: [batch_size],
                  DEPTH_RANGE_KEY: [batch_size, 2]}
        inputs = {key: tf.placeholder(tf.float32, shape, name=key)
                  for key, shape in shapes.items()}
        inputs[NOISE_SEED_KEY] = tf.placeholder(tf.int64, [batch_size], name=NOISE_SEED_KEY)
        return tf.estimator.export.ServingInputReceiver(inputs, inputs)
    return receiver_fn


def export_saved_model(estimator, export_dir, config, batch_size=1):
    """Writes a SavedModel (timestamped folder under `export_dir`) and
    returns its path. A failed export leaves no partial folder behind."""
    before = set(tf.io.gfile.listdir(export_dir)) if tf.io.gfile.isdir(export_dir) else set()
    try:
        path = estimator.export_saved_model(
            export_dir, serving_input_receiver_fn(config, batch_size))
    except BaseException:
        if tf.io.gfile.isdir(export_dir):
            for name in set(tf.io.gfile.listdir(export_dir)) - before:
                tf.io.gfile.rmtree(os.path.join(export_dir, name))
        raise
    return path.decode() if isinstance(path, bytes) else path
