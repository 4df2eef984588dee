"""input_fn for records in DeepMind's gqn-datasets layout.

One reader serves DeepMind's seven sets (pretraining) and every set this
package writes (synthetic scenes, converted photos), so whatever trains on one
trains on the other. Per example it draws `context_size + 1` distinct views of
the scene, the last being the query/target, and yields

    features = {'context_frames': [B, M, H, W, 3] float32 in [0, 1],
                'context_poses': [B, M, 7], 'query_pose': [B, 7],
                'context_field_of_view': [B, M], 'query_field_of_view': [B]
                (radians across the frame), 'depth_range': [B, 2] (near, far)}
    labels = [B, H, W, 3]

with static shapes, as (TPU)Estimator wants. The view draw is stateless and
keyed by (seed, example position), and the stream keeps its order however
the parallel reads finish, so a pass with a seed is repeatable whatever the
parallelism (training too, unless `deterministic=False`).

The context is the query's neighbourhood: the views nearest to the query
camera (position and direction, `gqn.poses.camera_distances`). Training
draws the query at random and the context at random among its
`context_pool` nearest views (by default just the `context_size`
nearest, the choice evaluation makes: on the apple capture a pool of 5
gave 22.1 dB on the held-out views, 7 gave 21.7, 10 gave 21.5 and 16 gave
20.7; the draws still vary with the query). Image-based renderers choose
their source views the same way: a far view of a walk-around capture
shows the object's other side.

The field of view and the depth range come from the records
(data_provider.scene_geometry); records without them (DeepMind's) take the
dataset table's angle and a depth range from their camera distances.
Training goes on where it stopped. Estimator rebuilds the input_fn for each
train() call (each --eval_every segment, each resume), so the training
stream is a function of (seed, the global step it starts at): the caller
puts that step in params['start_step'] (gqn.training does), and the file
order, the record shuffle and the view draws come from a seed derived from
both. A run that resumes or evaluates therefore reads on in new data instead
of the same first files again, and the same (seed, step) reads the same
stream. The test split ignores the step: every evaluation sees the same
examples.

Several input pipelines (TPU hosts of a pod, workers under a strategy) read
disjoint shares: every pipeline reads the same number of whole files, and
the files left over (all of them, when there are fewer files than
pipelines) are read by every pipeline, each keeping every n-th record.

A set converted with held-out views (dataset_info.json `holdout_views` K)
needs no flag here: its train records lack those views, and the test split
yields K examples per scene, one per held-out view as the query, each with
context drawn from the scene's other views.

For a set whose test records carry object masks (dataset_info.json
`object_masks`, the synthetic generator's), the test split's features also
hold `target_mask` [B, H, W, 1] in [0, 1]: where the target view shows the
object (the fruit), for error measured on it apart from the background.
"""
import hashlib
import os
import random
import sys

import tensorflow.compat.v1 as tf

import numpy as np

from data_provider import datasets, scene_geometry
from gqn.model import (CONTEXT_FIELD_OF_VIEW_KEY, DEPTH_RANGE_KEY,
                       QUERY_FIELD_OF_VIEW_KEY, TARGET_MASK_KEY)
from gqn.poses import POSE_DIM, RAW_POSE_DIM, camera_distances, encode_poses

MODES = ("train", "test")
# Records whose dataset states no field of view (an older converted set)
# are read at the generator's angle, with a warning.
FALLBACK_FIELD_OF_VIEW_DEGREES = 45.0
# params key of the global step a training stream starts at.
START_STEP_KEY = "start_step"
_JPEG_START = b"\xff\xd8"  # SOI marker
_JPEG_END = b"\xff\xd9"  # EOI marker: missing from truncated downloads


def list_shard_files(root, dataset_name, split):
    """Sorted paths of the `i-of-N.tfrecord` files present in one split.

    A partial download is fine: whichever shards are there are read. Any
    other file (.DS_Store, partial downloads named *.tmp) is ignored.
    """
    split_dir = os.path.join(root, dataset_name, split)
    if not tf.io.gfile.isdir(split_dir):
        raise FileNotFoundError(
            f"no folder {split_dir}: dataset {dataset_name!r} should have its "
            f"{split} records in <root>/{dataset_name}/{split}/i-of-N.tfrecord")
    names = sorted(name for name in tf.io.gfile.listdir(split_dir)
                   if datasets.SHARD_FILE_PATTERN.match(name))
    if not names:
        raise FileNotFoundError(
            f"no record files named like 001-of-100.tfrecord in {split_dir}")
    return [os.path.join(split_dir, name) for name in names]


def count_scenes(root, dataset_name, split):
    """Scenes (records) in one split, e.g. to turn epochs into steps. Reads
    every file once: seconds for our sets, long for a full DeepMind set."""
    return sum(1 for path in list_shard_files(root, dataset_name, split)
               for _ in tf.io.tf_record_iterator(path))


def gqn_input_fn(dataset_name, root, mode, context_size, image_size=None,
                 seed=None, repeat=None, shuffle_buffer_size=256,
                 num_parallel_reads=4,
                 num_parallel_calls=tf.data.experimental.AUTOTUNE,
                 skip_corrupt=False, context_pool=None, deterministic=True):
    """Returns `input_fn(params)` reading `<root>/<dataset_name>/<mode>/`.

    Args:
      dataset_name: a DeepMind set or one described by its dataset_info.json.
      root: folder (local or gs://) holding `<dataset_name>/`.
      mode: 'train' (shuffled, repeated) or 'test' (file order, one pass).
      context_size: views per example given as context; one more is the target.
      image_size: side of the returned frames if not the stored frame size.
      seed: makes view draws (and, with mode 'test', the whole stream)
        repeatable; None draws a fresh one. In 'train' mode the stream's
        seed is derived from it and params['start_step'] (default 0).
      repeat: loop forever; defaults to True for 'train', False for 'test'.
      shuffle_buffer_size: examples shuffled together in 'train' mode.
      num_parallel_reads: files read at once (1 = sequential reads).
      num_parallel_calls: examples decoded at once (1 = sequential).
      skip_corrupt: drop records holding a malformed JPEG (printing the file
        and a running count to stderr) instead of failing on them.
      context_pool: training draws the context among this many views
        nearest to the query (default: context_size, the nearest views
        themselves; at least context_size). Evaluation always takes the
        nearest context_size.
      deterministic: 'train' mode keeps the stream's order however the
        parallel reads and decodes finish, so that a run with the same
        seed reads the same examples in the same order. False takes
        whichever finishes first, which can only help where a slow file
        would hold the others up; 'test' mode always keeps it.

    Raises at build time for an unknown dataset, a missing folder, no record
    files, or a context that does not fit the scenes. Problems inside a record
    surface as tf.errors.InvalidArgumentError naming the file.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    info = datasets.get_dataset_info(dataset_name, root)
    if not 1 <= context_size < info.min_views:
        raise ValueError(
            f"context_size={context_size} needs context_size + 1 distinct views,"
            f" but scenes of {dataset_name!r} may have only {info.min_views}")
    files = list_shard_files(root, dataset_name, mode)
    training = mode == "train"
    repeat = training if repeat is None else repeat
    seed = random.SystemRandom().randrange(2 ** 31) if seed is None else seed
    if image_size is not None and image_size < 1:
        raise ValueError(f"image_size must be positive, got {image_size}")
    context_pool = context_size if context_pool is None else context_pool
    if context_pool < context_size:
        raise ValueError(f"context_pool={context_pool} must be at least "
                         f"context_size={context_size}")
    parser = _ExampleParser(info, mode, context_size, image_size or info.frame_size,
                            assert_jpegs=not skip_corrupt, context_pool=context_pool)

    def input_fn(params):
        num_hosts, host_index = _host_shard(params.get("context"))
        stream = (stream_seed(seed, params.get(START_STEP_KEY, 0)) if training
                  else seed)
        own, shared = _host_files(files, num_hosts, host_index)
        filenames = tf.data.Dataset.from_tensor_slices(
            (own + shared, [False] * len(own) + [True] * len(shared)))
        if training:
            filenames = filenames.shuffle(len(own + shared), seed=stream)

        def read(name, is_shared):
            records = tf.data.TFRecordDataset(name).enumerate()
            if shared:  # a shared file: every num_hosts-th record is this host's
                records = records.filter(lambda index, _: tf.logical_or(
                    tf.logical_not(is_shared),
                    tf.equal(index % num_hosts, host_index)))
            return records.map(lambda _, record: (name, record))

        records = filenames.interleave(read, cycle_length=num_parallel_reads,
                                       num_parallel_calls=num_parallel_reads)
        if training:
            records = records.shuffle(shuffle_buffer_size, seed=stream)
        if skip_corrupt:
            records = _drop_corrupt(records.map(
                parser.check_jpegs, num_parallel_calls=num_parallel_calls))
        if repeat:
            # After reading and dropping: repeating an empty stream ends
            # instead of hanging.
            records = records.repeat()
        if parser.held_out:  # one example per held-out query view
            records = records.flat_map(lambda *named: tf.data.Dataset.range(
                parser.held_out).map(lambda query: (named, query)))
        else:
            records = records.map(lambda *named: (named, tf.constant(0, tf.int64)))
        # Position -> per-example seed, distinct across hosts.
        records = records.enumerate().map(
            lambda position, element: (
                tf.stack([tf.constant(stream, tf.int64),
                          position * num_hosts + host_index]), *element))
        examples = records.map(parser.parse, num_parallel_calls=num_parallel_calls)
        examples = examples.batch(params["batch_size"], drop_remainder=True)
        # An option rather than per-op flags: TF 1.15 has it.
        options = tf.data.Options()
        options.experimental_deterministic = deterministic or not training
        return examples.prefetch(tf.data.experimental.AUTOTUNE).with_options(options)

    return input_fn


def stream_seed(seed, start_step):
    """The seed of the training stream of `seed` that starts at global step
    `start_step`: a hash of both, so that neighbouring steps or seeds give
    unrelated shuffles."""
    digest = hashlib.sha256(f"{int(seed)}:{int(start_step)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") % 2 ** 31


def _host_files(files, num_hosts, host_index):
    """(files this input pipeline reads whole, files every pipeline reads,
    keeping its own share of the records): the whole files go round-robin,
    the same number to each pipeline; the rest are shared."""
    whole = len(files) // num_hosts * num_hosts
    return files[host_index:whole:num_hosts], files[whole:]


def _host_shard(context):
    """(number of input pipelines, this one's index): one per TPU host from
    TPUEstimator's context (PER_HOST_V2: current_input_fn_deployment()
    returns host device, invocation index, invocation count and replicas
    fed), one per worker from a tf.distribute.InputContext (see
    gqn.estimator.strategy_input_fn)."""
    if isinstance(context, tf.distribute.InputContext):
        return context.num_input_pipelines, context.input_pipeline_id
    if context is None:
        return 1, 0
    _, invocation_index, invocation_count, _ = context.current_input_fn_deployment()
    return invocation_count, invocation_index


def _drop_corrupt(checked):
    """Drops records flagged corrupt, reporting each file with a running count."""

    def count(num_skipped, element):
        is_valid = element[-1]
        num_skipped += tf.cast(tf.logical_not(is_valid), tf.int64)
        return num_skipped, element + (num_skipped,)

    def keep(named, is_valid, num_skipped):
        def warn():
            with tf.control_dependencies([tf.print(
                    "skipping a record with a corrupt JPEG in", named[0],
                    "- records skipped so far:", num_skipped,
                    output_stream=sys.stderr)]):
                return tf.constant(False)
        return tf.cond(is_valid, lambda: tf.constant(True), warn)

    counted = checked.apply(
        tf.data.experimental.scan(tf.constant(0, tf.int64), count))
    return counted.filter(keep).map(
        lambda named, is_valid, num_skipped: named)


def nearest_views(distances, count):
    """Indices of the `count` smallest `distances` (ties: lower index)."""
    return tf.math.top_k(-distances, count).indices


class _ExampleParser:
    """Turns one serialized scene into (features, target) for the model."""

    def __init__(self, info, mode, context_size, image_size, assert_jpegs,
                 context_pool):
        self.info = info
        self.context_size = context_size
        self.image_size = image_size
        self.training = mode == "train"
        self.context_pool = context_pool
        # False when corrupt records are dropped before parsing instead.
        self.assert_jpegs = assert_jpegs
        self.min_views, self.max_views = info.views_in_split(mode)
        # Test records of a set with held-out views end in those views.
        self.held_out = info.holdout_views if mode == "test" else 0
        self.with_masks = info.object_masks and mode == "test"
        degrees = info.field_of_view_degrees
        if degrees is None:
            degrees = FALLBACK_FIELD_OF_VIEW_DEGREES
            tf.logging.warning(
                "dataset %s states no field of view (converted before cameras "
                "were recorded?): reading it at %s degrees; convert it again to "
                "record its cameras' own", info.name, degrees)
        self.default_field_of_view = np.float32(np.radians(degrees))
    def _read(self, filename, record, with_masks=False):
        keys = {"frames": tf.io.VarLenFeature(tf.string),
                "cameras": tf.io.VarLenFeature(tf.float32)}
        if with_masks:
            keys["masks"] = tf.io.VarLenFeature(tf.string)
        parsed = tf.io.parse_single_example(record, keys)
        values = (parsed["frames"].values, parsed["cameras"].values)
        return values + (parsed["masks"].values,) if with_masks else values

    def _cameras(self, filename, record, num_views, raw_cameras):
        """Per-view field of view (num_views,) and the scene's (near, far),
        from the record, else from the dataset and the camera distances."""
        keys = {key: tf.io.VarLenFeature(tf.float32)
                for key in (scene_geometry.FIELD_OF_VIEW_KEY,
                            scene_geometry.DEPTH_RANGE_KEY)}
        parsed = tf.io.parse_single_example(record, keys)
        angles = parsed[scene_geometry.FIELD_OF_VIEW_KEY].values
        near_far = parsed[scene_geometry.DEPTH_RANGE_KEY].values
        count = tf.size(angles)
        checks = [
            tf.debugging.Assert(
                (count <= 1) | tf.equal(count, num_views),
                ["record in", filename, "has", count, "field-of-view values for",
                 num_views, "views; expected one, or one per view"]),
            tf.debugging.Assert(
                tf.equal(tf.size(near_far), 0) | tf.equal(tf.size(near_far), 2),
                ["record in", filename, "has", tf.size(near_far),
                 "depth-range values; expected near and far"]),
        ]
        with tf.control_dependencies(checks):
            # One angle for every view: the record's, else the dataset's.
            shared = tf.concat([angles, [self.default_field_of_view]], 0)[0]
            angles = tf.cond(tf.equal(count, num_views), lambda: angles,
                             lambda: tf.fill([num_views], shared))
            near_far = tf.cond(
                tf.equal(tf.size(near_far), 2), lambda: near_far,
                lambda: scene_geometry.depth_range_from_cameras_tf(
                    tf.reshape(raw_cameras, [-1, RAW_POSE_DIM])[:, :3]))
        return angles, tf.reshape(near_far, [2])

    def _choose_views(self, seed_pair, query, poses):
        """Indices of context_size context views and, last, the query."""
        num_views = tf.shape(poses)[0]
        scores = tf.random.stateless_uniform([num_views], seed=seed_pair)
        if self.held_out:  # held-out view `query`; context among the others
            pool = num_views - self.held_out
            target = pool + tf.cast(query, tf.int32)
            context = nearest_views(
                camera_distances(poses[target][None], poses[:pool])[0],
                self.context_size)
            return tf.concat([context, [target]], axis=0)
        target = tf.argmax(scores, output_type=tf.int32)
        distances = camera_distances(poses[target][None], poses)[0]
        distances += tf.one_hot(target, num_views, on_value=np.inf)  # not itself
        if not self.training:
            context = nearest_views(distances, self.context_size)
        else:  # a random draw among the query's nearest views
            candidates = nearest_views(
                distances, tf.minimum(self.context_pool, num_views - 1))
            picked = tf.math.top_k(tf.gather(scores, candidates),
                                   self.context_size).indices
            context = tf.gather(candidates, picked)
        return tf.concat([context, [target]], axis=0)

    def _jpegs_are_whole(self, frames):
        length = tf.strings.length(frames)
        starts = tf.equal(tf.strings.substr(frames, 0, 2), _JPEG_START)
        ends = tf.equal(tf.strings.substr(frames, tf.maximum(length - 2, 0),
                                          tf.fill(tf.shape(length), 2)),
                        _JPEG_END)
        return tf.reduce_all(starts & ends & (length >= 4))

    def check_jpegs(self, filename, record):
        """Flags a record whose JPEGs are truncated or not JPEGs at all."""
        frames, _ = self._read(filename, record)
        return (filename, record), self._jpegs_are_whole(frames)

    def _assert_layout(self, filename, frames, cameras):
        info = self.info
        num_views = tf.size(frames)
        checks = [
            tf.debugging.Assert(
                (num_views >= self.min_views) & (num_views <= self.max_views),
                ["record in", filename, "has", num_views, "views; dataset",
                 info.name, f"records of this split have {self.min_views}.."
                 f"{self.max_views}"]),
            tf.debugging.Assert(
                tf.equal(tf.size(cameras), RAW_POSE_DIM * num_views),
                ["record in", filename, "has", tf.size(cameras),
                 "camera values for", num_views,
                 f"views; expected {RAW_POSE_DIM} per view"]),
        ]
        if self.assert_jpegs:
            checks.append(tf.debugging.Assert(
                self._jpegs_are_whole(frames),
                ["record in", filename, "holds a corrupt or truncated JPEG frame"]))
        return checks

    def _decode(self, filename, jpeg):
        frame = tf.io.decode_jpeg(jpeg, channels=3)
        size = self.info.frame_size
        check = tf.debugging.Assert(
            tf.reduce_all(tf.equal(tf.shape(frame)[:2], [size, size])),
            ["record in", filename, "has a frame of shape", tf.shape(frame),
             f"; dataset {self.info.name} frames are {size}x{size}"])
        with tf.control_dependencies([check]):
            return tf.reshape(frame, [size, size, 3])

    def _resize(self, frames):
        size = self.image_size
        if size == self.info.frame_size:
            return frames
        # Area averaging does not alias when shrinking; bilinear when growing.
        method = (tf.image.ResizeMethod.AREA if size < self.info.frame_size
                  else tf.image.ResizeMethod.BILINEAR)
        return tf.clip_by_value(tf.image.resize(frames, [size, size], method), 0., 1.)

    def parse(self, seed_pair, named, query):
        """Chooses context_size + 1 views keyed by `seed_pair` (see the
        module's docstring); the last is the target. With held-out views the
        target is held-out view `query` and the context is chosen among the
        views before them."""
        filename, record = named
        frames, cameras, *masks = self._read(filename, record, self.with_masks)
        with tf.control_dependencies(self._assert_layout(filename, frames, cameras)):
            frames, cameras = tf.identity(frames), tf.identity(cameras)
        num_drawn = self.context_size + 1
        all_poses = encode_poses(tf.reshape(cameras, [-1, RAW_POSE_DIM]))
        views = self._choose_views(seed_pair, query, all_poses)
        jpegs = tf.gather(frames, views)
        images = tf.stack([self._decode(filename, jpegs[i])
                           for i in range(num_drawn)])
        images = self._resize(tf.image.convert_image_dtype(images, tf.float32))
        poses = tf.reshape(tf.gather(all_poses, views), [num_drawn, POSE_DIM])
        angles, near_far = self._cameras(filename, record, tf.size(frames), cameras)
        angles = tf.reshape(tf.gather(angles, views), [num_drawn])
        features = {"context_frames": images[:-1],
                    "context_poses": poses[:-1],
                    "query_pose": poses[-1],
                    CONTEXT_FIELD_OF_VIEW_KEY: angles[:-1],
                    QUERY_FIELD_OF_VIEW_KEY: angles[-1],
                    DEPTH_RANGE_KEY: near_far}
        if masks:
            features[TARGET_MASK_KEY] = self._target_mask(filename, masks[0], views[-1])
        return features, images[-1]

    def _target_mask(self, filename, masks, view):
        check = tf.debugging.Assert(
            tf.size(masks) > view,
            ["record in", filename, "has no object mask for view", view])
        with tf.control_dependencies([check]):
            mask = tf.io.decode_png(tf.gather(masks, view), channels=1)
        size = self.info.frame_size
        mask = tf.reshape(tf.image.convert_image_dtype(mask, tf.float32), [size, size, 1])
        return self._resize(mask)
