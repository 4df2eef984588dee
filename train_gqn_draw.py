"""Train, resume or fine-tune a GQN; optionally export it as a SavedModel.

    python3 train_gqn_draw.py --data_dir D --dataset rooms_ring_camera --model_dir M --debug
    python3 train_gqn_draw.py --data_dir D --dataset fruit_stills --model_dir F \\
        --warm_start_from M --max_steps 20000
    python3 train_gqn_draw.py --data_dir D --dataset fruit_stills --model_dir S \
        --warm_start_from M --adversarial_weight 5 --feature_matching_weight 10
                                                  # sharpen with a discriminator
    python3 train_gqn_draw.py --model_dir M --export_dir E       # export only
    python3 train_gqn_draw.py ... --strategy mirrored            # every local GPU
    TF_CONFIG='{"cluster": ..., "task": ...}' python3 train_gqn_draw.py ... \\
        --strategy multi_worker                                   # on each machine
    python3 train_gqn_draw.py ... --use_tpu --tpu NAME --tpu_zone ZONE

A model_dir remembers its config (gqn_config.json) and resumes from its last
checkpoint. Flags left unset come from the saved config, else from the
warm-start source's config, else from --preset. --batch_size is the global
batch however many devices share it; the learning-rate and sigma schedules
are those of one device.
"""
from gqn import startup

startup.quiet_tensorflow_log()  # before TensorFlow is imported

import tensorflow.compat.v1 as tf  # noqa: E402
from absl import flags, logging  # noqa: E402

from data_provider.datasets import get_dataset_info  # noqa: E402
from data_provider.gqn_tfr_provider import count_scenes, gqn_input_fn  # noqa: E402
from gqn import cli_flags, estimator, hardware, training  # noqa: E402
from gqn.checkpoints import check_warm_start, resolve_checkpoint  # noqa: E402
from gqn.config import ANNEALED_OVER_RUN, GQNConfig, config_path  # noqa: E402

FLAGS = flags.FLAGS
cli_flags.define_data_flags()
cli_flags.define_model_flags()
flags.DEFINE_string("model_dir", None, "Where checkpoints, summaries and the "
                    "config go (local or gs://).")
flags.DEFINE_integer("max_steps", 2_000_000, "Train until this global step.")
flags.DEFINE_integer("train_epochs", None, "Alternative to --max_steps: passes "
                     "over the training scenes (counted from the records).")
flags.DEFINE_integer("save_checkpoints_steps", 1000, "Checkpoint interval.")
flags.DEFINE_integer("keep_checkpoint_max", 5, "Checkpoints kept.")
flags.DEFINE_integer("summary_every_steps", 100, "TensorBoard scalar interval.")
flags.DEFINE_integer("log_every_steps", 100, "Progress log interval.")
flags.DEFINE_integer("eval_every", 0, "Evaluate on the test split every this "
                     "many steps (0: once, at the end).")
flags.DEFINE_integer("eval_steps", 10, "Batches per evaluation.")
flags.DEFINE_boolean("skip_eval", False, "Do not evaluate (e.g. no test split).")
flags.DEFINE_integer("context_pool", None, "Training draws each query's context "
                     "among this many views nearest to it (default: the context "
                     "size, the nearest views; a larger pool varies the draws, "
                     "a large number draws from every view). "
                     "Evaluation takes the nearest context views.")
flags.DEFINE_boolean("deterministic_input", True, "Keep the training stream's "
                     "order however its parallel reads finish, so that a run "
                     "with the same --seed reads the same examples in the same "
                     "order. --nodeterministic_input takes whichever read "
                     "finishes first, which can only help where slow storage "
                     "holds one file up (no faster here: docs/benchmarks.md).")
flags.DEFINE_boolean("debug", False, "Also write target / reconstruction / "
                     "generation image summaries.")
flags.DEFINE_string("warm_start_from", None, "Fine-tune: initialise from this "
                    "checkpoint or model_dir (schedules restart at step 0 and, "
                    "without --anneal_steps, anneal over this run's --max_steps).")
flags.DEFINE_string("warm_start_vars", estimator.MODEL_VARIABLES_REGEX,
                    "Regex of the variables to warm-start (default: all model "
                    "weights, not optimizer slots or the global step).")
flags.DEFINE_string("freeze", None, "Regex of variables NOT to train, e.g. "
                    "'^gqn/representation/'.")
flags.DEFINE_string("export_dir", None, "Write a SavedModel here after training "
                    "(or, with no --data_dir, from the trained model_dir alone).")
flags.DEFINE_integer("export_batch_size", 1, "Batch size of the SavedModel signature.")
flags.DEFINE_boolean("use_tpu", False, "Train on a Cloud TPU.")
flags.DEFINE_string("tpu", None, "Cloud TPU name or grpc:// address.")
flags.DEFINE_string("tpu_zone", None, "Cloud TPU zone.")
flags.DEFINE_string("gcp_project", None, "Cloud project of the TPU.")
flags.DEFINE_integer("iterations_per_loop", 100, "TPU steps per host round trip.")
flags.DEFINE_integer("num_shards", None, "TPU cores (default: all).")
flags.DEFINE_enum("strategy", "none", list(estimator.STRATEGIES),
                  "Several devices without a TPU: 'mirrored' trains on every "
                  "local GPU, 'multi_worker' on every task of the cluster in "
                  "TF_CONFIG (run the same command on each machine). "
                  "--batch_size stays the global batch, split evenly.")
flags.mark_flag_as_required("model_dir")


def _config_for_run():
    """Saved config (resume) > warm-start source's config > preset. A warm
    start anneals over its own run unless told otherwise."""
    overrides = cli_flags.config_overrides()
    saved_path = config_path(FLAGS.model_dir)
    if tf.io.gfile.exists(saved_path):
        return cli_flags.resolve_config(GQNConfig.load(saved_path), overrides,
                                        saved_path), True
    config = _warm_start_base(overrides) or cli_flags.resolve_config(None, overrides)
    if (FLAGS.warm_start_from and FLAGS.data_dir is not None
            and not set(ANNEALED_OVER_RUN) & set(overrides)):
        steps = _max_steps(config)
        logging.info("warm start without --anneal_steps: the learning rate and "
                     "the pixel sigma anneal over this run's %d steps (the "
                     "source's schedules would restart at step 0)", steps)
        config = config.annealed_over(steps)
    return config, False


def _warm_start_base(overrides):
    """The warm-start source's config with the flags' changes, or None
    where the source is a checkpoint without a model_dir's config."""
    source = FLAGS.warm_start_from
    if not (source and tf.io.gfile.isdir(source)
            and tf.io.gfile.exists(config_path(source))):
        return None
    try:
        return GQNConfig.load(config_path(source)).replace(**overrides)
    except ValueError as error:
        raise cli_flags.FlagError(str(error)) from None


def _max_steps(config):
    if FLAGS.train_epochs is None:
        return FLAGS.max_steps
    scenes = count_scenes(FLAGS.data_dir, FLAGS.dataset, "train")
    return max(1, FLAGS.train_epochs * scenes // config.batch_size)


def _eval_batch_size(config):
    """A batch the test split can fill. A set with held-out views has only
    those as test examples (4 for one capture with --holdout_views 4), and
    a batch larger than that would evaluate nothing."""
    held_out = get_dataset_info(FLAGS.dataset, FLAGS.data_dir).holdout_views
    if not held_out:
        return config.batch_size
    examples = held_out * count_scenes(FLAGS.data_dir, FLAGS.dataset, "test")
    return max(1, min(config.batch_size, examples))


def main(_):
    tf.logging.set_verbosity(tf.logging.INFO)
    config, resumed = _config_for_run()
    config = config.replace(precision=hardware.effective_precision(
        config.precision, FLAGS.use_tpu, logging.warning))
    if FLAGS.data_dir is None and not (FLAGS.export_dir and resumed):
        raise cli_flags.FlagError("--data_dir is required to train (only "
                                  "--export_dir on a trained --model_dir works without it)")
    warm_start = None
    if FLAGS.warm_start_from and not resumed:
        checkpoint = resolve_checkpoint(FLAGS.warm_start_from)
        names, fresh = check_warm_start(checkpoint, config, FLAGS.warm_start_vars)
        logging.info("warm start: %d weights from %s", len(names), checkpoint)
        if fresh:
            logging.warning("the checkpoint predates %s: starting from their "
                            "initial values", ", ".join(fresh))
        warm_start = estimator.warm_start_settings(checkpoint, names)

    train_input = eval_input = None
    if FLAGS.data_dir is not None:  # reader errors before anything is written
        def reader(mode):
            return gqn_input_fn(FLAGS.dataset, FLAGS.data_dir, mode,
                                config.context_size, image_size=config.image_size,
                                seed=FLAGS.seed, context_pool=FLAGS.context_pool,
                                deterministic=FLAGS.deterministic_input)
        train_input = reader("train")
        eval_input = None if FLAGS.skip_eval else reader("test")
    if FLAGS.use_tpu and FLAGS.strategy != "none":
        raise cli_flags.FlagError(f"--use_tpu and --strategy {FLAGS.strategy} "
                                  "exclude each other (a TPU shards over its "
                                  "cores without a strategy)")
    if FLAGS.use_tpu and FLAGS.num_shards:
        estimator.per_replica_batch_size(config.batch_size, FLAGS.num_shards,
                                         "TPU cores (--num_shards)")
    strategy = estimator.make_strategy(FLAGS.strategy)
    multi_worker = estimator.is_multi_worker(strategy)
    if strategy is not None:
        estimator.per_replica_batch_size(config.batch_size,
                                         strategy.num_replicas_in_sync,
                                         f"replicas of --strategy {FLAGS.strategy}")
    if not multi_worker or training.is_chief_task():  # one writer per model_dir
        tf.io.gfile.makedirs(FLAGS.model_dir)
        config.save(config_path(FLAGS.model_dir))
    logging.info("config (%s):\n%s", config_path(FLAGS.model_dir),
                 config.to_json())

    resolver = (estimator.resolve_tpu(FLAGS.tpu, FLAGS.tpu_zone, FLAGS.gcp_project)
                if FLAGS.use_tpu else None)
    if resolver is not None:
        estimator.per_replica_batch_size(
            config.batch_size, estimator.tpu_core_count(resolver, FLAGS.num_shards),
            f"cores of TPU {FLAGS.tpu}")
    run_config = estimator.make_run_config(
        FLAGS.model_dir, use_tpu=FLAGS.use_tpu, tpu_cluster_resolver=resolver,
        iterations_per_loop=FLAGS.iterations_per_loop, num_shards=FLAGS.num_shards,
        save_checkpoints_steps=FLAGS.save_checkpoints_steps,
        keep_checkpoint_max=FLAGS.keep_checkpoint_max,
        log_step_count_steps=FLAGS.log_every_steps, seed=FLAGS.seed,
        strategy=strategy)
    eval_batch_size = _eval_batch_size(config) if eval_input is not None else None
    max_steps = _max_steps(config) if FLAGS.data_dir is not None else None
    # TPUEstimator logs loss and steps/s itself; its tensors stay on the TPU.
    monitor = (None if FLAGS.use_tpu or max_steps is None
               else training.RunMonitor(max_steps, FLAGS.log_every_steps))
    gqn_estimator = estimator.make_estimator(
        config, run_config, use_tpu=FLAGS.use_tpu, warm_start_from=warm_start,
        summary_every_steps=FLAGS.summary_every_steps, debug_images=FLAGS.debug,
        freeze_regex=FLAGS.freeze, eval_batch_size=eval_batch_size,
        monitor=monitor)
    if strategy is not None and train_input is not None:
        train_input = estimator.strategy_input_fn(train_input, config.batch_size)
        if eval_input is not None:
            eval_input = estimator.strategy_input_fn(eval_input, eval_batch_size)

    if FLAGS.data_dir is not None:
        try:
            if multi_worker:
                training.train_and_evaluate_multi_worker(
                    gqn_estimator, train_input, max_steps,
                    eval_input_fn=eval_input, eval_steps=FLAGS.eval_steps)
            else:
                training.train_and_evaluate(
                    gqn_estimator, train_input, max_steps,
                    eval_input_fn=eval_input, eval_every=FLAGS.eval_every,
                    eval_steps=FLAGS.eval_steps, monitor=monitor)
        except tf.train.NanLossDuringTrainingError:
            raise training.TrainingDiverged(
                f"the loss or its gradients became NaN or Inf; training stopped "
                f"and the last good "
                f"checkpoint in {FLAGS.model_dir} is kept. Try a lower learning "
                f"rate (--hparams learning_rate_start=...) or check the data.") from None
    if FLAGS.export_dir and (not multi_worker or training.is_chief_task()):
        path = training.export_saved_model(gqn_estimator, FLAGS.export_dir, config,
                                           FLAGS.export_batch_size)
        logging.info("SavedModel written to %s", path)
        print(f"SavedModel: {path}")


def run():
    startup.use_graph_mode()
    cli_flags.run_main(main, "train_gqn_draw")


if __name__ == "__main__":
    run()
