"""Child process of tests/test_distribution.py (logical devices must be set
before TensorFlow makes any): trains a tiny GQN for a few steps on one
device (TPUEstimator, use_tpu=False) and under MirroredStrategy over two
logical CPU devices, from the same initial weights on the same data, and
prints a JSON summary of both runs.

    python -m tests.mirrored_run WORK_DIR
"""
import glob
import json
import os
import sys

from gqn import hardware, startup

startup.use_graph_mode()
DEVICES = hardware.use_logical_cpus(2)

import numpy as np  # noqa: E402
import tensorflow.compat.v1 as tf  # noqa: E402
from tensorflow.python.summary.summary_iterator import summary_iterator  # noqa: E402

from gqn import estimator, training  # noqa: E402
from tests.tiny import random_batch, tiny_config  # noqa: E402

STEPS = 3
# A huge Adam epsilon makes the update proportional to the gradient (Adam
# alone is scale-invariant and would hide a gradient summed instead of
# averaged over replicas); the learning rate makes up for the epsilon.
CONFIG = tiny_config(seq_length=1, adam_epsilon=1e4, learning_rate_start=100.0,
                     learning_rate_end=100.0)


def input_fn(params):
    features, labels = random_batch(CONFIG, batch_size=4 * CONFIG.batch_size)
    dataset = tf.data.Dataset.from_tensor_slices((features, labels))
    return dataset.repeat().batch(params["batch_size"], drop_remainder=True)


def train(model_dir, strategy=None, warm_start_from=None, evaluate=False):
    run_config = estimator.make_run_config(
        model_dir, save_checkpoints_steps=100, keep_checkpoint_max=10, seed=1,
        strategy=strategy)
    monitor = training.RunMonitor(STEPS, every_n_steps=1)
    gqn_estimator = estimator.make_estimator(
        CONFIG, run_config, summary_every_steps=1,
        warm_start_from=warm_start_from and estimator.warm_start_settings(warm_start_from),
        monitor=monitor)
    train_input = input_fn
    if strategy is not None:
        train_input = estimator.strategy_input_fn(input_fn, CONFIG.batch_size)
    training.train_and_evaluate(gqn_estimator, train_input, STEPS, monitor=monitor)
    if evaluate:
        metrics = gqn_estimator.evaluate(train_input, steps=1)
        return {name: float(value) for name, value in metrics.items()}


def scalar_series(model_dir, tags=("loss", "elbo", "kl", "gradient_norm")):
    series = {tag: {} for tag in tags}
    for path in glob.glob(os.path.join(model_dir, "events.out.tfevents.*.v2")):
        for event in summary_iterator(path):
            for value in event.summary.value:
                if value.tag in series:
                    series[value.tag][event.step] = float(tf.make_ndarray(value.tensor))
    return {tag: [steps[s] for s in sorted(steps)] for tag, steps in series.items()}


def model_weights(path):
    reader = tf.train.load_checkpoint(path)
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
            if name.startswith("gqn/") and "Adam" not in name}


def main(work_dir):
    tf.logging.set_verbosity(tf.logging.INFO)  # the progress log, on stderr
    single_dir = os.path.join(work_dir, "single")
    mirrored_dir = os.path.join(work_dir, "mirrored")
    train(single_dir)
    # The single run's step-0 checkpoint holds the initial weights.
    initial = os.path.join(single_dir, "model.ckpt-0")
    strategy = estimator.make_strategy("mirrored", DEVICES)
    mirrored_eval = train(mirrored_dir, strategy, warm_start_from=initial,
                          evaluate=True)
    start = model_weights(initial)
    single, mirrored = model_weights(single_dir), model_weights(mirrored_dir)
    print(json.dumps({
        "replicas": strategy.num_replicas_in_sync,
        "single": scalar_series(single_dir),
        "mirrored": scalar_series(mirrored_dir),
        "weight_change": max(float(np.max(np.abs(single[n] - start[n]))) for n in start),
        "weight_gap": max(float(np.max(np.abs(single[n] - mirrored[n]))) for n in start),
        "mirrored_eval": mirrored_eval,
        "mirrored_checkpoint": tf.train.latest_checkpoint(mirrored_dir),
    }))


if __name__ == "__main__":
    main(sys.argv[1])
