"""The gqn-datasets reader on real DeepMind records, generated scenes and
hand-made records whose frame colours encode (scene, view)."""
import os
import pathlib
import shutil

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from data_provider import record_writer, scene_geometry, synthetic
from data_provider.datasets import get_dataset_info
from data_provider.gqn_tfr_provider import (START_STEP_KEY, count_scenes, gqn_input_fn,
                                            stream_seed)
from data_provider.scene_arrays import SCENE_VIEW_KEYS, load_scenes, nearest_contexts
from gqn import poses as poses_lib
from gqn.poses import decode_poses_np, encode_poses_np

REAL_ROOT = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data" / "gqn-datasets"
REAL_FILE = REAL_ROOT / "shepard_metzler_5_parts" / "test" / "001-of-100.tfrecord"


def read_batches(input_fn, batch_size, max_batches=None, context=None):
    """Runs `input_fn` in a fresh graph; returns [(features, labels)] numpy."""
    with tf.Graph().as_default():
        features, labels = tf.data.make_one_shot_iterator(input_fn(
            {"batch_size": batch_size, "context": context})).get_next()
        batches = []
        with tf.Session() as session:
            while max_batches is None or len(batches) < max_batches:
                try:
                    batches.append(session.run((features, labels)))
                except tf.errors.OutOfRangeError:
                    break
    return batches


def examples(batches):
    """Flattens batches into per-example (frames (M+1, H, W, 3), poses (M+1, 7)),
    the target last."""
    for features, labels in batches:
        frames = np.concatenate([features["context_frames"], labels[:, None]], 1)
        poses = np.concatenate(
            [features["context_poses"], features["query_pose"][:, None]], 1)
        yield from zip(frames, poses)


def reference_scenes(record_files):
    """Every scene's frames (decoded by TF, as the reader does) and 7-d poses."""
    scenes = []
    with tf.Graph().as_default(), tf.Session() as session:
        jpeg = tf.placeholder(tf.string)
        decoded = tf.io.decode_jpeg(jpeg, channels=3)
        for path in record_files:
            for record in tf.io.tf_record_iterator(str(path)):
                feature = tf.train.Example.FromString(record).features.feature
                frames = [session.run(decoded, {jpeg: value})
                          for value in feature["frames"].bytes_list.value]
                cameras = np.reshape(feature["cameras"].float_list.value, (-1, 5))
                scenes.append((np.stack(frames), encode_poses_np(cameras)))
    return scenes


def locate_views(scenes, frames, poses):
    """(scene, [views]) of one example: each returned frame must equal the
    stored frame of the view whose pose it carries, all from one scene."""
    frames = np.round(frames * 255).astype(np.uint8)
    found = []
    for frame, pose in zip(frames, poses):
        matches = [(s, v) for s, (ref_frames, ref_poses) in enumerate(scenes)
                   for v in np.flatnonzero((ref_frames == frame).all(axis=(1, 2, 3)))
                   if np.allclose(ref_poses[v], pose, atol=1e-5)]
        assert matches, "a frame is not the stored frame of the view of its pose"
        found.append(matches[0])
    scene_ids = {s for s, _ in found}
    assert len(scene_ids) == 1, f"one example mixes scenes {scene_ids}"
    return found[0][0], [v for _, v in found]


# Records whose colours encode (scene, view): red = view, green and blue =
# scene (up to 12 x 12 scenes).

def coded_frame(scene, view, size):
    return np.full((size, size, 3), (20 * view + 10, 20 * (scene % 12) + 10,
                                     20 * (scene // 12) + 10), np.uint8)


def coded_pose(scene, view):
    return (view, scene, 0.5, 0.3 * view, 0.05 * scene)


def decode_coded(frames, poses):
    """(scenes, views) from frame colours, checked against the paired poses."""
    colour = frames.mean(axis=(-3, -2)) * 255
    views = np.round((colour[..., 0] - 10) / 20).astype(int)
    scenes = (np.round((colour[..., 1] - 10) / 20).astype(int)
              + 12 * np.round((colour[..., 2] - 10) / 20).astype(int))
    np.testing.assert_array_equal(views, np.round(poses[..., 0]).astype(int))
    np.testing.assert_array_equal(scenes, np.round(poses[..., 1]).astype(int))
    return scenes, views


def coded_record(scene, num_views, size):
    jpegs = [record_writer.encode_jpeg(coded_frame(scene, v, size))
             for v in range(num_views)]
    return record_writer.serialize_scene(
        jpegs, [coded_pose(scene, v) for v in range(num_views)])


def write_coded_dataset(root, name, view_counts, num_files=2, size=16,
                        records=None, min_views=None):
    """Both splits hold one scene per entry of `view_counts` (or `records`)."""
    records = records or [coded_record(s, n, size) for s, n in enumerate(view_counts)]
    with record_writer.DatasetWriter(str(root), name) as writer:
        for split in ("train", "test"):
            writer.write_split(split, records, num_files)
        writer.finish(size, max(view_counts), min_views or min(view_counts))
    return root / name


# Real records.

@pytest.fixture
def real_root(tmp_path):
    """A partial download of shepard_metzler_5_parts (1 of 100 test files) with
    stray files beside it."""
    if not REAL_FILE.exists():
        pytest.skip(f"real GQN records not found at {REAL_FILE} (../shared/data "
                    "relative to the repo root)")
    test_dir = tmp_path / "shepard_metzler_5_parts" / "test"
    test_dir.mkdir(parents=True)
    shutil.copy(REAL_FILE, test_dir)
    (test_dir / ".DS_Store").write_bytes(b"\x00junk")
    (test_dir / "002-of-100.tfrecord.tmp").write_bytes(b"partial")
    return tmp_path


def test_real_records_pair_every_frame_with_its_own_pose(real_root):
    input_fn = gqn_input_fn("shepard_metzler_5_parts", str(real_root), "test",
                            context_size=14, seed=3, repeat=True)
    batches = read_batches(input_fn, batch_size=2, max_batches=3)
    scenes = reference_scenes([REAL_FILE])
    assert len(scenes) == 2 and scenes[0][0].shape == (15, 64, 64, 3)
    seen_scenes = set()
    for frames, poses in examples(batches):
        scene, views = locate_views(scenes, frames, poses)
        assert sorted(views) == list(range(15))  # all 15 views, each once
        assert views != list(range(15))  # in a drawn order
        seen_scenes.add(scene)
    assert seen_scenes == {0, 1}


def test_real_records_decode_like_deepmind_dataset(real_root):
    features, labels = read_batches(gqn_input_fn(
        "shepard_metzler_5_parts", str(real_root), "test", context_size=5,
        seed=0), batch_size=2)[0]
    assert features["context_frames"].dtype == np.float32
    assert 0 <= labels.min() and labels.max() <= 1 and labels.max() > 0.5
    poses = features["context_poses"]
    np.testing.assert_allclose(poses[..., 3] ** 2 + poses[..., 4] ** 2, 1, atol=1e-5)


# Generated scenes.

def test_generated_rooms_round_trip(tmp_path):
    synthetic.generate_dataset(str(tmp_path), "rooms", "rooms", 6, 2,
                               image_size=32, num_views=6, seed=1, scenes_per_file=2)
    files = sorted((tmp_path / "rooms" / "train").glob("*.tfrecord"))
    assert [f.name for f in files] == ["1-of-3.tfrecord", "2-of-3.tfrecord",
                                       "3-of-3.tfrecord"]
    scenes = reference_scenes(files)
    batches = read_batches(gqn_input_fn("rooms", str(tmp_path), "train",
                                        context_size=3, seed=5), 4, max_batches=6)
    drawn = [locate_views(scenes, *example) for example in examples(batches)]
    assert len(drawn) == 24
    for _, views in drawn:
        assert len(set(views)) == 4  # distinct; so the target is not a context view
    assert len({tuple(views) for _, views in drawn}) > 12
    assert len({scene for scene, _ in drawn}) == 6


def test_generated_still_life_mixes_12_and_8_view_scenes(tmp_path):
    synthetic.generate_dataset(str(tmp_path), "fruit", "still_life", 1, 4,
                               image_size=16, seed=2)
    files = sorted((tmp_path / "fruit" / "test").glob("*.tfrecord"))
    scenes = reference_scenes(files)
    assert sorted(len(frames) for frames, _ in scenes) == [8, 8, 12, 12]
    # 'test' order and a seed: the same draws on every run.
    batches = read_batches(gqn_input_fn("fruit", str(tmp_path), "test",
                                        context_size=7, seed=0, repeat=True),
                           8, max_batches=4)
    views_of = {}
    for frames, poses in examples(batches):
        scene, views = locate_views(scenes, frames, poses)
        assert len(set(views)) == 8
        views_of.setdefault(scene, set()).update(views)
    for scene, views in views_of.items():
        assert views == set(range(len(scenes[scene][0])))


def test_count_scenes_counts_the_records_of_a_split(tmp_path):
    write_coded_dataset(tmp_path, "coded", [6] * 5, num_files=3)
    assert count_scenes(str(tmp_path), "coded", "train") == 5


# Sampling.

def test_views_are_distinct_target_unseen_and_draws_differ(tmp_path):
    write_coded_dataset(tmp_path, "coded", [10] * 8)
    batches = read_batches(gqn_input_fn("coded", str(tmp_path), "train",
                                        context_size=4), 8, max_batches=4)
    draws = []
    for frames, poses in examples(batches):
        scenes, views = decode_coded(frames, poses)
        assert len(set(scenes)) == 1
        assert len(set(views)) == 5 and views[-1] not in views[:-1]
        draws.append(tuple(views))
    assert len(set(draws)) > 24  # 32 examples of 10-choose-5 ordered draws


def test_shapes_are_static(tmp_path):
    write_coded_dataset(tmp_path, "coded", [6, 6])
    with tf.Graph().as_default():
        features, labels = tf.data.make_one_shot_iterator(gqn_input_fn(
            "coded", str(tmp_path), "train", context_size=3)(
                {"batch_size": 5})).get_next()
        assert features["context_frames"].shape.as_list() == [5, 3, 16, 16, 3]
        assert features["context_poses"].shape.as_list() == [5, 3, 7]
        assert features["query_pose"].shape.as_list() == [5, 7]
        assert labels.shape.as_list() == [5, 16, 16, 3]
        assert labels.dtype == tf.float32


def test_test_mode_is_one_repeatable_pass_with_a_seed(tmp_path):
    write_coded_dataset(tmp_path, "coded", [9] * 7, num_files=3)

    def draws(seed):
        batches = read_batches(gqn_input_fn("coded", str(tmp_path), "test",
                                            context_size=4, seed=seed), 3)
        return [decode_coded(*example) for example in examples(batches)]

    first = draws(seed=11)
    assert len(first) == 6  # 7 scenes, batches of 3, remainder dropped
    assert len({scenes[0] for scenes, _ in first}) == 6  # each scene once
    np.testing.assert_array_equal(first, draws(seed=11))
    assert not np.array_equal(first, draws(seed=12))


@pytest.mark.parametrize("image_size", [8, 24])
def test_resize_keeps_frames_and_colours(tmp_path, image_size):
    write_coded_dataset(tmp_path, "coded", [6] * 2)
    (features, labels), = read_batches(gqn_input_fn(
        "coded", str(tmp_path), "test", context_size=2, image_size=image_size,
        seed=0), 2)
    assert labels.shape == (2, image_size, image_size, 3)
    assert features["context_frames"].shape == (2, 2, image_size, image_size, 3)
    for frames, poses in examples([(features, labels)]):
        decode_coded(frames, poses)  # colours still name the paired views
        assert frames.min() >= 0 and frames.max() <= 1


class FakeTPUContext:
    """What TPUEstimator's TPUContext gives an input_fn under PER_HOST_V2
    (tensorflow_estimator tpu_context.TPUContext): the host device, this
    invocation's index, the number of invocations (one per host) and the
    replicas it feeds."""

    def __init__(self, host, num_hosts, cores_per_host=8):
        self.num_hosts, self.current_host = num_hosts, host
        self.num_replicas = num_hosts * cores_per_host
        self.cores_per_host = cores_per_host

    def current_input_fn_deployment(self):
        return (f"/job:worker/task:{self.current_host}/device:CPU:0",
                self.current_host, self.num_hosts, self.cores_per_host)


@pytest.mark.parametrize("num_files, host_0_scenes", [
    (4, {0, 1, 5, 6, 7}),  # files split evenly: files 1 and 3 (of 2, 3, 3, 2 scenes)
    (5, {0, 1, 4, 5, 8}),  # files 1 and 3 whole, the fifth shared by records
    (1, {0, 2, 4, 6, 8}),  # fewer files than hosts: every other record
])
def test_two_tpu_hosts_read_disjoint_shares(tmp_path, num_files, host_0_scenes):
    """Each host of a two-host pod builds its pipeline from TPUEstimator's
    real context and reads its own scenes: together every scene once, the
    same number each."""
    write_coded_dataset(tmp_path, "coded", [4] * 10, num_files=num_files)
    read = {}
    for host in (0, 1):
        batches = read_batches(gqn_input_fn("coded", str(tmp_path), "test",
                                            context_size=2, seed=0),
                               1, context=FakeTPUContext(host, 2))
        read[host] = [decode_coded(*example)[0][0] for example in examples(batches)]
    assert set(read[0]) == host_0_scenes
    assert sorted(read[0] + read[1]) == list(range(10))


def _train_scenes(root, start_step, batches=6):
    """Scene ids of the first training batches of the stream that starts at
    `start_step` (one file read at a time, so that the first batches come
    from few files)."""
    input_fn = gqn_input_fn("coded", str(root), "train", context_size=2, seed=7,
                            num_parallel_reads=1, num_parallel_calls=1,
                            shuffle_buffer_size=4)
    with tf.Graph().as_default():
        features, labels = tf.data.make_one_shot_iterator(input_fn(
            {"batch_size": 4, START_STEP_KEY: start_step})).get_next()
        with tf.Session() as session:
            read = [session.run((features, labels)) for _ in range(batches)]
    return [decode_coded(*example)[0][0] for example in examples(read)]


def test_training_stream_is_a_function_of_seed_and_start_step(tmp_path):
    """The same (seed, step) reads the same stream; another start step
    reads on elsewhere: its first batches come from other files (2 scenes
    per file, read one file at a time through a 4-record shuffle)."""
    write_coded_dataset(tmp_path, "coded", [4] * 40, num_files=20)
    first = _train_scenes(tmp_path, 0)
    assert _train_scenes(tmp_path, 0) == first
    later = _train_scenes(tmp_path, 1000)
    files = [{scene // 2 for scene in scenes[:8]} for scenes in (first, later)]
    assert min(len(files[0]), len(files[1])) >= 4
    assert len(files[0] & files[1]) <= 2, files
    assert stream_seed(7, 0) != stream_seed(7, 1) != stream_seed(8, 0)


def _parallel_training_batches(root, batches=12):
    """The first training batches read with 4 files and 8 decodes at once."""
    input_fn = gqn_input_fn("coded", str(root), "train", context_size=2, seed=3,
                            num_parallel_reads=4, num_parallel_calls=8)
    return read_batches(input_fn, 4, max_batches=batches)


def test_training_stream_keeps_its_order_under_parallel_reads(tmp_path):
    """Two reads of one seed's training stream, each with parallel reads and
    decodes, yield the same examples in the same order by default (with
    deterministic=False they do not: the reads finish out of turn on
    records of uneven size)."""
    write_coded_dataset(tmp_path, "coded", [4] * 12 + [6] * 12 + [3] * 24, num_files=12)
    first = _parallel_training_batches(tmp_path)
    for _ in range(3):
        again = _parallel_training_batches(tmp_path)
        assert len(again) == len(first) == 12
        for (features, labels), (features_again, labels_again) in zip(first, again):
            np.testing.assert_array_equal(labels_again, labels)
            for key in features:
                np.testing.assert_array_equal(features_again[key], features[key])


# Bad input.

def test_unknown_dataset_lists_the_known_ones(tmp_path):
    with pytest.raises(ValueError, match="rooms_ring_camera"):
        gqn_input_fn("no_such_set", str(tmp_path), "train", context_size=3)


def test_missing_folder_names_where_it_looked(tmp_path):
    with pytest.raises(FileNotFoundError,
                       match=str(tmp_path / "rooms_ring_camera" / "train")):
        gqn_input_fn("rooms_ring_camera", str(tmp_path), "train", context_size=3)


def test_folder_without_records_names_where_it_looked(tmp_path):
    split_dir = tmp_path / "jaco" / "test"
    split_dir.mkdir(parents=True)
    (split_dir / ".DS_Store").write_bytes(b"junk")
    (split_dir / "notes.tfrecord").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=f"no record files.*{split_dir}"):
        gqn_input_fn("jaco", str(tmp_path), "test", context_size=3)


def test_bad_mode_and_context_size_fail_at_build_time(tmp_path):
    write_coded_dataset(tmp_path, "coded", [12, 8])
    with pytest.raises(ValueError, match="mode"):
        gqn_input_fn("coded", str(tmp_path), "eval", context_size=3)
    with pytest.raises(ValueError, match="only 8"):
        gqn_input_fn("coded", str(tmp_path), "train", context_size=8)


def read_error(tmp_path, name, **kwargs):
    with pytest.raises(tf.errors.InvalidArgumentError) as error:
        read_batches(gqn_input_fn(name, str(tmp_path), "test", context_size=2,
                                  seed=0, **kwargs), 1)
    return error.value.message


def test_wrong_view_count_names_the_file(tmp_path):
    records = [coded_record(0, 8, 16), coded_record(1, 5, 16)]
    write_coded_dataset(tmp_path, "coded", [8], records=records, num_files=2)
    message = read_error(tmp_path, "coded")
    assert os.path.join(str(tmp_path), "coded", "test", "2-of-2.tfrecord") in message
    assert "views" in message


def test_wrong_camera_length_names_the_file(tmp_path):
    example = tf.train.Example.FromString(coded_record(0, 6, 16))
    del example.features.feature["cameras"].float_list.value[-1]
    write_coded_dataset(tmp_path, "coded", [6], num_files=1,
                        records=[example.SerializeToString()])
    message = read_error(tmp_path, "coded")
    assert os.path.join("coded", "test", "1-of-1.tfrecord") in message
    assert "camera values" in message


def test_wrong_frame_size_names_the_file(tmp_path):
    write_coded_dataset(tmp_path, "coded", [6], num_files=1,
                        records=[coded_record(0, 6, size=20)])
    assert "1-of-1.tfrecord" in read_error(tmp_path, "coded")


def corrupt_dataset(tmp_path):
    """Four scenes of which the third has a truncated JPEG."""
    records = [coded_record(s, 6, 16) for s in range(4)]
    example = tf.train.Example.FromString(records[2])
    frames = example.features.feature["frames"].bytes_list.value
    frames[4] = frames[4][:len(frames[4]) // 2]
    records[2] = example.SerializeToString()
    write_coded_dataset(tmp_path, "coded", [6], records=records, num_files=2)


def test_corrupt_jpeg_names_the_file(tmp_path):
    corrupt_dataset(tmp_path)
    message = read_error(tmp_path, "coded")
    assert "2-of-2.tfrecord" in message and "corrupt" in message


def test_corrupt_jpeg_skipped_and_counted_on_request(tmp_path, capfd):
    corrupt_dataset(tmp_path)
    batches = read_batches(gqn_input_fn("coded", str(tmp_path), "test",
                                        context_size=2, seed=0,
                                        skip_corrupt=True), 1)
    scenes = [decode_coded(*example)[0][0] for example in examples(batches)]
    assert scenes == [0, 1, 3]
    logged = capfd.readouterr().err
    assert "2-of-2.tfrecord" in logged and "skipped so far: 1" in logged


def test_set_of_only_corrupt_records_ends_when_skipping(tmp_path):
    records = [coded_record(s, 6, 16) for s in range(2)]
    write_coded_dataset(tmp_path, "coded", [6], num_files=1,
                        records=[record.replace(b"\xff\xd9", b"\x00\x00")
                                 for record in records])
    assert read_batches(gqn_input_fn("coded", str(tmp_path), "train",
                                     context_size=2, skip_corrupt=True), 1) == []


def test_empty_record_files_end_instead_of_hanging(tmp_path):
    write_coded_dataset(tmp_path, "coded", [6, 6])
    for path in (tmp_path / "coded" / "train").glob("*.tfrecord"):
        path.write_bytes(b"")
    assert read_batches(gqn_input_fn("coded", str(tmp_path), "train",
                                     context_size=2), 1) == []


def test_test_split_gives_the_target_views_object_mask(tmp_path):
    """Generated still lifes: the test reader adds the target view's stored
    object mask (the fruit); training never sees masks."""
    synthetic.generate_dataset(str(tmp_path), "fruit", "still_life", 2, 3,
                               image_size=24, seed=2, num_workers=1)
    files = sorted((tmp_path / "fruit" / "test").glob("*.tfrecord"))
    scenes = reference_scenes(files)
    stored_masks = []
    for path in files:
        for record in tf.io.tf_record_iterator(str(path)):
            feature = tf.train.Example.FromString(record).features.feature
            with tf.Graph().as_default(), tf.Session() as session:
                stored_masks.append([session.run(tf.io.decode_png(value))[..., 0] / 255.0
                                     for value in feature["masks"].bytes_list.value])
    batches = read_batches(gqn_input_fn("fruit", str(tmp_path), "test", 3, seed=0), 1)
    assert len(batches) == 3
    for (features, labels), example in zip(batches, examples(batches)):
        scene, views = locate_views(scenes, *example)
        expected = stored_masks[scene][views[-1]]
        np.testing.assert_allclose(features["target_mask"][0, ..., 0], expected, atol=1e-6)
        assert 0 < expected.mean() < 0.5  # some fruit, mostly background
    [(train_features, _)] = read_batches(gqn_input_fn(
        "fruit", str(tmp_path), "train", 3, seed=0), 1, max_batches=1)
    assert "target_mask" not in train_features


# The cameras beyond their poses, and the context a query gets.

def ring_record(scene, num_views, size, field_of_view=None, depth_range=None,
                yaw_offset=0.0, kept=None):
    """A coded scene whose views stand on a ring around the origin, looking
    at it, in an order that is not the ring's (so nearness is not index);
    the record holds the first `kept` of them (default all)."""
    order = np.random.RandomState(scene).permutation(num_views)
    angles = 2 * np.pi * order / num_views + yaw_offset
    positions = np.stack([1.2 * np.cos(angles), 1.2 * np.sin(angles),
                          np.full(num_views, 0.4)], axis=1)
    yaw, pitch = poses_lib.yaw_pitch_of(-positions)
    cameras = np.concatenate([positions, yaw[:, None], pitch[:, None]], axis=1)
    kept = num_views if kept is None else kept
    jpegs = [record_writer.encode_jpeg(coded_frame(scene, v, size)) for v in range(kept)]
    if field_of_view is not None and np.size(field_of_view) > 1:
        field_of_view = field_of_view[:kept]
    return record_writer.serialize_scene(jpegs, cameras[:kept], field_of_view=field_of_view,
                                         depth_range=depth_range), cameras


def nearest_by_rule(cameras, query, candidates, count):
    """The `count` candidates nearest to view `query`: centre distance over
    the mean camera distance plus 1 - cos of the viewing directions."""
    encoded = encode_poses_np(cameras)
    forward = poses_lib.camera_axes_np(encoded)[0]
    scale = np.linalg.norm(cameras[:, :3], axis=1).mean()
    distance = (np.linalg.norm(cameras[:, :3] - cameras[query, :3], axis=1) / scale
                + 1 - forward @ forward[query])
    return sorted(sorted(candidates, key=lambda view: distance[view])[:count])


def coded_views(features, labels):
    """(context views (B, M), query view (B,), scene (B,)) from the frames'
    colours."""
    frames = np.concatenate([features["context_frames"], labels[:, None]], 1)
    colours = np.round((frames.mean(axis=(-3, -2)) * 255 - 10) / 20).astype(int)
    return colours[:, :-1, 0], colours[:, -1, 0], colours[:, -1, 1]


def write_ring_dataset(root, name, num_views, holdout_views=0, **cameras):
    records, cameras_of = {"train": [], "test": []}, []
    for scene in range(2):
        for split, kept in (("train", num_views - holdout_views), ("test", num_views)):
            record, scene_cameras = ring_record(scene, num_views, 16, kept=kept,
                                                yaw_offset=0.1 * scene, **cameras)
            records[split].append(record)
        cameras_of.append(scene_cameras)
    with record_writer.DatasetWriter(str(root), name) as writer:
        for split in ("train", "test"):
            writer.write_split(split, records[split], 1)
        writer.finish(16, num_views - holdout_views, holdout_views=holdout_views)
    return cameras_of


def test_evaluation_context_is_the_querys_nearest_views(tmp_path):
    """Test examples: a random query, and as context the context_size views
    nearest to it by position and direction (not by index, not at random)."""
    cameras = write_ring_dataset(tmp_path, "ring", 12)
    batches = read_batches(gqn_input_fn("ring", str(tmp_path), "test", 4, seed=3), 1)
    assert len(batches) == 2
    for features, labels in batches:
        context, query, scene = coded_views(features, labels)
        assert sorted(context[0]) == nearest_by_rule(
            cameras[scene[0]], query[0], set(range(12)) - {query[0]}, 4)


def test_training_draws_the_context_among_the_querys_nearest_views(tmp_path):
    """Training: queries and contexts vary from draw to draw, and every
    context view is among the query's context_pool nearest views."""
    cameras = write_ring_dataset(tmp_path, "ring", 12)  # coded views: at most 12
    batches = read_batches(gqn_input_fn("ring", str(tmp_path), "train", 3, seed=1,
                                        context_pool=6), 4, max_batches=30)
    contexts = {}
    for features, labels in batches:
        context, query, scene = coded_views(features, labels)
        for example in range(len(query)):
            pool = nearest_by_rule(cameras[scene[example]], query[example],
                                   set(range(12)) - {query[example]}, 6)
            assert set(context[example]) <= set(pool)
            contexts.setdefault((scene[example], query[example]), set()).add(
                tuple(sorted(context[example])))
    assert len(contexts) >= 16  # queries vary
    assert max(len(drawn) for drawn in contexts.values()) >= 2  # so do contexts


def test_held_out_queries_take_their_nearest_training_views(tmp_path):
    """With held-out views, each is asked once as the query and its context
    is the nearest context_size views among the training views; training
    never draws a held-out view."""
    cameras = write_ring_dataset(tmp_path, "ring", 12, holdout_views=3)
    batches = read_batches(gqn_input_fn("ring", str(tmp_path), "test", 4, seed=0), 1)
    assert len(batches) == 6
    asked = set()
    for features, labels in batches:
        context, query, scene = coded_views(features, labels)
        assert query[0] >= 9
        assert sorted(context[0]) == nearest_by_rule(cameras[scene[0]], query[0],
                                                     range(9), 4)
        asked.add((scene[0], query[0]))
    assert len(asked) == 6
    train = read_batches(gqn_input_fn("ring", str(tmp_path), "train", 4, seed=0), 8,
                         max_batches=10)
    for features, labels in train:
        context, query, _ = coded_views(features, labels)
        assert context.max() < 9 and query.max() < 9


def test_rendering_gives_a_held_out_pose_the_context_evaluation_gives_it(tmp_path):
    """scripts/render.py holds a scene's training views and picks, for each
    pose it renders, the nearest context_size of them: at the held-out
    poses exactly the views the reader's test examples carry, the nearest
    by the rule."""
    cameras = write_ring_dataset(tmp_path, "ring", 12, holdout_views=3)
    asked = load_scenes("ring", str(tmp_path), 4, 3)
    every_view = load_scenes("ring", str(tmp_path), 8, 1)  # the most a test example has
    views = {key: every_view[key][0] for key in SCENE_VIEW_KEYS}
    views["context_poses"] = decode_poses_np(views["context_poses"])
    features = nearest_contexts(views, decode_poses_np(asked["query_pose"]), 4)
    rendered, _, _ = coded_views(features, asked["target"])
    evaluated, query, scene = coded_views(asked, asked["target"])
    shown, _, shown_scene = coded_views({"context_frames": views["context_frames"][None]},
                                        every_view["target"][:1])
    assert set(scene) == set(shown_scene)  # one scene's held-out queries
    for example in range(3):
        assert sorted(rendered[example]) == sorted(evaluated[example])
        assert sorted(rendered[example]) == nearest_by_rule(
            cameras[scene[example]], query[example], range(9), 4)
    np.testing.assert_allclose(features["query_field_of_view"],
                               features["context_field_of_view"].mean(axis=1))
    assert len(set(shown[0])) == 8 and set(shown[0]) <= set(range(9))


def test_camera_distances_agree_in_numpy_and_tensorflow():
    rng = np.random.RandomState(0)
    raw = np.concatenate([rng.uniform(-2, 2, (7, 3)), rng.uniform(-3, 3, (7, 2))], axis=1)
    encoded = encode_poses_np(raw)
    with tf.Graph().as_default(), tf.Session() as session:
        in_graph = session.run(poses_lib.camera_distances(encoded[:3], encoded))
    in_numpy = poses_lib.camera_distances_np(encoded[:3], encoded)
    np.testing.assert_allclose(in_graph, in_numpy, atol=1e-5)
    np.testing.assert_allclose(np.diag(in_numpy[:, :3]), 0, atol=1e-5)  # each from itself
    assert (in_numpy[:, 3:] > 0).all()


def test_records_state_each_views_field_of_view_and_the_depth_range(tmp_path):
    """Per-view angles and the scene's depth range written with the record
    reach the features, each view with its own angle."""
    angles = 0.5 + 0.01 * np.arange(10)
    write_ring_dataset(tmp_path, "ring", 10, field_of_view=angles,
                       depth_range=(0.7, 3.5))
    for mode in ("train", "test"):
        for features, labels in read_batches(gqn_input_fn("ring", str(tmp_path), mode, 3,
                                                          seed=0), 2, max_batches=3):
            context, query, _ = coded_views(features, labels)
            np.testing.assert_allclose(features["context_field_of_view"], angles[context],
                                       rtol=1e-6)
            np.testing.assert_allclose(features["query_field_of_view"], angles[query],
                                       rtol=1e-6)
            np.testing.assert_allclose(features["depth_range"], [[0.7, 3.5]] * 2,
                                       rtol=1e-6)


def test_real_records_take_the_dataset_angle_and_a_range_from_camera_distances(real_root):
    """DeepMind's records carry no intrinsics: every view gets the dataset
    table's angle, and the depth range comes from the scene's camera
    distances by scene_geometry's rule."""
    info = get_dataset_info("shepard_metzler_5_parts")
    scenes = {}
    for record in tf.io.tf_record_iterator(str(REAL_FILE)):
        cameras = np.reshape(tf.train.Example.FromString(record).features
                             .feature["cameras"].float_list.value, (-1, 5))
        scenes[tuple(np.round(cameras[0, :3], 4))] = cameras
    batches = read_batches(gqn_input_fn("shepard_metzler_5_parts", str(real_root), "test",
                                        5, seed=0), 2)
    assert batches
    for features, _ in batches:
        np.testing.assert_allclose(features["context_field_of_view"],
                                   np.radians(info.field_of_view_degrees), rtol=1e-6)
        for example in range(2):
            ranges = [scene_geometry.depth_range_from_cameras(cameras[:, :3])
                      for cameras in scenes.values()
                      if np.any(np.all(np.isclose(encode_poses_np(cameras),
                                                  features["query_pose"][example],
                                                  atol=1e-5), axis=1))]
            np.testing.assert_allclose(features["depth_range"][example], ranges[0],
                                       rtol=1e-5)
