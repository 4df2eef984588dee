"""Throughput of the data path: the synthetic generator and the reader.

Generates a rooms_ring_camera-like set (10 views of 64x64 per scene) and
reports the generator's views/s, then the reader's examples/s at the
training shape (batch 36, context 5) with parallel reads and decoding (in
the stream's order, as training reads by default, and in whichever order
they finish, --nodeterministic_input) and with everything sequential.
Give --root/--dataset to time the reader on an existing set (e.g. a
DeepMind download) instead.

    python scripts/benchmark_input.py --num_scenes 500
"""
import os
import tempfile
import time

from gqn import startup

startup.start_command()  # TensorFlow quiet and in graph mode, before it loads

import tensorflow.compat.v1 as tf
from absl import flags

from data_provider import synthetic
from data_provider.gqn_tfr_provider import gqn_input_fn
from gqn import cli_flags

FLAGS = flags.FLAGS
flags.DEFINE_string("root", None, "Read this root instead of generating a set.")
flags.DEFINE_string("dataset", "rooms_ring_camera", "Dataset name under --root.")
flags.DEFINE_integer("num_scenes", 500, "Scenes to generate (train split).")
flags.DEFINE_integer("batch_size", 36, "Examples per batch.")
flags.DEFINE_integer("context_size", 5, "Context views per example.")
flags.DEFINE_integer("image_size", 64, "Side of the generated frames.")
flags.DEFINE_integer("warmup_batches", 10, "Untimed batches first.")
flags.DEFINE_integer("batches", 60, "Timed batches per configuration.")

READER_SETUPS = {  # label: (files read at once, examples decoded at once, order kept)
    "parallel (4 reads, autotuned decode), order kept": (4, tf.data.experimental.AUTOTUNE, True),
    "parallel, first finished first": (4, tf.data.experimental.AUTOTUNE, False),
    "sequential (1 read, 1 decode)": (1, 1, True),
}


def time_generator(root, name):
    """Generates the benchmark set; returns views rendered per second."""
    start = time.perf_counter()
    info = synthetic.generate_dataset(
        root, name, "rooms", FLAGS.num_scenes, num_test_scenes=1,
        image_size=FLAGS.image_size, num_views=10, seed=0)
    seconds = time.perf_counter() - start
    return (FLAGS.num_scenes + 1) * info.sequence_size / seconds


def time_reader(root, name, num_parallel_reads, num_parallel_calls, deterministic):
    """Examples per second out of the input_fn (decoded, batched tensors)."""
    input_fn = gqn_input_fn(name, root, "train", FLAGS.context_size, seed=0,
                            num_parallel_reads=num_parallel_reads,
                            num_parallel_calls=num_parallel_calls,
                            deterministic=deterministic)
    with tf.Graph().as_default():
        batch = tf.data.make_one_shot_iterator(
            input_fn({"batch_size": FLAGS.batch_size})).get_next()
        fetch = tf.group(tf.nest.flatten(batch))
        with tf.Session() as session:
            for _ in range(FLAGS.warmup_batches):
                session.run(fetch)
            start = time.perf_counter()
            for _ in range(FLAGS.batches):
                session.run(fetch)
            seconds = time.perf_counter() - start
    return FLAGS.batches * FLAGS.batch_size / seconds


def main(_):
    rows = []
    with tempfile.TemporaryDirectory(prefix="benchmark_input_") as scratch:
        root, name = FLAGS.root, FLAGS.dataset
        if root is None:
            root, name = scratch, "synthetic_rooms"
            views_per_second = time_generator(root, name)
            rows.append((f"generator: {FLAGS.num_scenes + 1} rooms scenes x 10 "
                         f"views, {FLAGS.image_size}x{FLAGS.image_size}, "
                         f"{os.cpu_count()} workers", f"{views_per_second:,.0f} views/s"))
        for label, setup in READER_SETUPS.items():
            examples_per_second = time_reader(root, name, *setup)
            rows.append((f"reader {name}, batch {FLAGS.batch_size}, context "
                         f"{FLAGS.context_size}: {label}",
                         f"{examples_per_second:,.0f} examples/s"))
    width = max(len(label) for label, _ in rows)
    # Other work on the machine shows up in these numbers; say how much.
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")
    print(f"{'what':<{width}} | throughput ({os.cpu_count()} cores)")
    print(f"{'-' * width}-|-{'-' * 24}")
    for label, value in rows:
        print(f"{label:<{width}} | {value}")


if __name__ == "__main__":
    cli_flags.run_main(main, "benchmark_input")
