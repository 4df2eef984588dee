"""The converter on a real capture with real camera poses: the CO3D apple's
true cameras written as a transforms.json and as a COLMAP text model,
converted with held-out views and read back through the reader; and the bad
inputs of those sources."""
import dataclasses
import io
import math
import os
import re
import shutil
import sys

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from PIL import Image

from data_provider import datasets, fruit_stills
from data_provider.camera_poses.frame import (CameraSet, normalise_cameras,
                                              similarity_fit, similarity_residual)
from data_provider.fruit_poses import FRUIT_LAYOUTS
from data_provider.fruit_stills import ConversionOptions, convert
from data_provider.gqn_tfr_provider import gqn_input_fn
from data_provider.photo_preprocess import convert_photo, cropped_field_of_view
from data_provider.photo_source import InputError
from gqn.poses import decode_poses_np, viewing_direction
from tests.capture_helpers import APPLE, apple  # noqa: F401  (a fixture)
from tests.capture_helpers import lay_out, opencv_from_pytorch3d
from tests.test_convert_fruit_stills import (assert_nothing_written, eight_view_members,
                                             record_cameras, write_zip)

SIZE = 32
HELD_OUT = 4


def apple_focal_lengths():
    """The apple's true focal lengths (20,), PyTorch3D NDC units, sorted names."""
    with np.load(os.path.join(APPLE, "gt_cameras.npz")) as truth:
        return truth["gtFL"][:, 0].astype(np.float64)


def records(dataset_dir, split):
    """[(frames float (V, S, S, 3), raw cameras (V, 5))] of one split."""
    scenes = []
    for path in sorted(tf.io.gfile.glob(os.path.join(dataset_dir, split, "*.tfrecord"))):
        for record in tf.io.tf_record_iterator(path):
            feature = tf.train.Example.FromString(record).features.feature
            frames = np.stack([np.asarray(Image.open(io.BytesIO(data)), np.float64) / 255
                               for data in feature["frames"].bytes_list.value])
            scenes.append((frames, np.reshape(feature["cameras"].float_list.value, [-1, 5])))
    return scenes


def expected_frames(apple):
    """Each apple photo converted on its own, de-rolled as its true camera
    says: what the record must hold for that photo."""
    names, centres, rotations = apple
    rolls = normalise_cameras(CameraSet(centres, opencv_from_pytorch3d(rotations))
                              ).roll_degrees
    frames = []
    for name, roll in zip(names, rolls):
        with open(os.path.join(APPLE, name), "rb") as handle:
            photo = convert_photo(name, handle.read(), SIZE, roll_degrees=roll)
        frames.append(photo.pixels / 255.0)
    return np.stack(frames)


def identify(frames, reference):
    """Index of the reference frame nearest to each frame, and the margin
    to the second nearest (so a match is not a coin toss)."""
    errors = ((frames[:, None] - reference[None]) ** 2).mean(axis=(2, 3, 4))
    order = np.sort(errors, axis=1)
    return errors.argmin(axis=1), order[:, 1] / np.maximum(order[:, 0], 1e-12)


@pytest.fixture(scope="module", params=["transforms", "colmap_text"])
def converted(request, apple, tmp_path_factory):
    """(kind, dataset folder, summary) of the apple laid out for one source."""
    kind = request.param
    tmp_path = tmp_path_factory.mktemp(kind)
    root, _ = lay_out(tmp_path, apple, kind)
    summary = convert(ConversionOptions(
        input_path=str(root), output_dir=str(tmp_path / "out"), name="apple",
        image_size=SIZE, poses="colmap" if kind.startswith("colmap") else kind,
        holdout_views=HELD_OUT, workers=2))
    return kind, summary.output_path, summary


def test_every_frame_has_its_own_camera_and_the_truth_up_to_a_similarity(converted, apple):
    _, dataset_dir, summary = converted
    names, centres, rotations = apple
    [(frames, cameras)] = records(dataset_dir, "test")
    assert frames.shape == (20, SIZE, SIZE, 3)
    index, margin = identify(frames, expected_frames(apple))
    assert sorted(index) == list(range(20))
    assert margin.min() > 1.5
    # The pose beside each frame is that photo's true camera, up to one
    # similarity for all of them: positions and viewing directions.
    positions = cameras[:, :3]
    assert similarity_residual(centres[index], positions).max() < 1e-5
    scale, rotation, _ = similarity_fit(centres[index], positions)
    directions = viewing_direction(cameras[:, 3], cameras[:, 4])
    assert np.abs(rotation @ rotations[index][:, :, 2].T - directions.T).max() < 1e-5
    # The scene's up is +z: the direction most perpendicular to the true
    # cameras' right axes (they were held level) maps onto it.
    right = -rotations[:, :, 0]
    up = np.linalg.svd(right)[2][-1]
    up = up * np.sign(up @ rotations[:, :, 1].mean(axis=0))  # PyTorch3D y is up
    np.testing.assert_allclose(rotation @ up, [0, 0, 1], atol=1e-5)
    # Every camera above the apple looks down at it (DeepMind: negative pitch).
    assert (positions[:, 2] > 0).all() and (cameras[:, 4] < 0).all()
    np.testing.assert_allclose(np.linalg.norm(positions, axis=1).mean(), 1.2, rtol=1e-5)
    assert summary.holdout_views == HELD_OUT and 5 < summary.max_abs_roll_degrees < 12


def test_held_out_views_never_reach_the_train_split(converted, apple):
    _, dataset_dir, _ = converted
    [(test_frames, test_cameras)] = records(dataset_dir, "test")
    [(train_frames, train_cameras)] = records(dataset_dir, "train")
    held = fruit_stills.held_out_views(20, HELD_OUT)
    reference = expected_frames(apple)
    test_ids, _ = identify(test_frames, reference)
    train_ids, _ = identify(train_frames, reference)
    assert list(test_ids[-HELD_OUT:]) == held
    assert sorted(train_ids) == [i for i in range(20) if i not in held]
    np.testing.assert_allclose(train_cameras, test_cameras[:-HELD_OUT])
    info = datasets.get_dataset_info("apple", os.path.dirname(dataset_dir))
    assert (info.holdout_views, info.min_views, info.sequence_size) == (HELD_OUT, 16, 16)
    frame = info.scene_frames["scene"]
    assert frame["pose_source"] in ("transforms.json", "COLMAP model") and frame["scale"] > 0
    assert np.allclose(np.linalg.det(np.array(frame["rotation"])), 1.0)

    # The reader: training never draws a held-out view; the test split asks
    # for each held-out view once, as the query, with context from the rest.
    held_frames = test_frames[-HELD_OUT:]
    root = os.path.dirname(dataset_dir)
    with tf.Graph().as_default():
        train = tf.data.make_one_shot_iterator(gqn_input_fn(
            "apple", root, "train", 5, seed=1)({"batch_size": 8})).get_next()
        test = tf.data.make_one_shot_iterator(gqn_input_fn(
            "apple", root, "test", 5, seed=1)({"batch_size": 1})).get_next()
        with tf.Session() as session:
            for _ in range(10):
                features, target = session.run(train)
                seen = np.concatenate([features["context_frames"].reshape(-1, SIZE, SIZE, 3),
                                       target])
                gaps = np.abs(seen[:, None] - held_frames[None]).max(axis=(2, 3, 4))
                assert gaps.min() > 0.05
            queries = []
            while True:
                try:
                    queries.append(session.run(test))
                except tf.errors.OutOfRangeError:
                    break
    assert len(queries) == HELD_OUT
    for (features, target), held_frame, held_camera in zip(queries, held_frames,
                                                           test_cameras[-HELD_OUT:]):
        # TensorFlow's and Pillow's JPEG decoders differ by a level or so.
        assert np.abs(target[0] - held_frame).mean() < 0.01
        np.testing.assert_allclose(decode_poses_np(features["query_pose"])[0, :3],
                                   held_camera[:3], atol=1e-5)
        gaps = np.abs(features["context_frames"][0][:, None]
                      - held_frames[None]).max(axis=(2, 3, 4))
        assert gaps.min() > 0.05


def test_the_files_focal_length_reaches_the_records(converted):
    """The known focal lengths the files state (capture_helpers: a
    transforms.json camera_angle_x of 0.8 across the photos' 1066-pixel
    width, their short side; a COLMAP PINHOLE camera of 1500 pixels at their
    size) come out as the angle across the 32-pixel frames, which keep 32 of
    the short side's 36 resized pixels; the depth range comes from the
    camera distances (transforms.json has no points; the COLMAP model's 7
    test points are scattered off the apple, so it may use either)."""
    kind, dataset_dir, summary = converted
    short_side = 0.8 if kind == "transforms" else 2 * math.atan(533 / 1500)
    expected = 2 * math.atan(math.tan(short_side / 2) * 32 / 36)
    assert math.radians(cropped_field_of_view(math.degrees(short_side), 32)) == \
        pytest.approx(expected, rel=1e-12)
    for split in ("train", "test"):
        [(_, cameras)] = records(dataset_dir, split)
        [(angles, near_far)] = record_cameras(dataset_dir, split)
        np.testing.assert_allclose(angles, [expected], rtol=1e-6)
        distances = np.linalg.norm(cameras[:, :3], axis=1)
        assert 0 < near_far[0] < distances.min() < distances.max() < near_far[1]
    info = datasets.get_dataset_info("apple", os.path.dirname(dataset_dir))
    described = info.scene_cameras["scene"]
    assert described["field_of_view_source"] == (
        "transforms.json camera_angle_x" if kind == "transforms" else "COLMAP PINHOLE camera")
    assert described["field_of_view_degrees"] == pytest.approx(math.degrees(expected),
                                                               abs=1e-4)
    if kind == "transforms":
        assert described["depth_range_source"] == "camera distances (no 3-D points)"
    assert f"field of view {math.degrees(expected):.1f} deg" in summary.format()


def test_preview_shows_the_normalised_cameras(converted):
    _, dataset_dir, _ = converted
    preview = Image.open(os.path.join(dataset_dir, "preview.png"))
    assert preview.width > 1000 and preview.height > 250


# Bad input: a clear message naming the file or value; the rest converts.

def capture_options(tmp_path, root, **overrides):
    fields = dict(input_path=str(root), output_dir=str(tmp_path / "out"), name="mine",
                  image_size=16, workers=1, holdout_views=2, context_size=3)
    fields.update(overrides)
    return ConversionOptions(**fields)


def two_captures(tmp_path, apple, kind):
    """Two scene folders of the apple laid out for `kind`: 'first', 'second'."""
    root = tmp_path / "captures"
    root.mkdir()
    for name in ("first", "second"):
        capture, scene = lay_out(tmp_path / name, apple, kind)
        shutil.move(str(capture / scene), str(root / name))
    return root


@pytest.mark.parametrize("damage, message", [
    ("{not json", r"second/transforms\.json: not valid JSON"),
    ('{"frames": [{"file_path": "frame000007", "transform_matrix": '
     '[[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1]]}]}',
     r"second/transforms\.json: frame 0"),
    ('{"frames": [{"file_path": "frame000007", "transform_matrix": '
     '[[NaN, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]}]}',
     r"second/transforms\.json: frame 0"),
    ('{"frames": [{"file_path": "missing_photo", "transform_matrix": '
     '[[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]}]}', "missing_photo"),
])
def test_a_bad_transforms_json_skips_its_scene_and_the_rest_converts(
        tmp_path, apple, damage, message):
    root = two_captures(tmp_path, apple, "transforms")
    (root / "second" / "transforms.json").write_text(damage)
    summary = convert(capture_options(tmp_path, root, poses="transforms"))
    assert summary.split_scenes["train"] == ["first"]
    [(scene, reason)] = summary.skipped_scenes
    assert scene == "second"
    assert re.search(message, reason), reason
    assert "skipped scene second" in summary.format()


def test_no_posable_scene_is_refused_and_nothing_is_written(tmp_path, apple):
    root = two_captures(tmp_path, apple, "transforms")
    for name in ("first", "second"):
        os.remove(root / name / "transforms.json")
    (root / "first" / "transforms.json").write_text("[]")
    options = capture_options(tmp_path, root, poses="transforms")
    with pytest.raises(InputError, match=r"first/transforms\.json"):
        convert(options)
    assert_nothing_written(options.output_dir)


def test_colmap_photo_absent_or_unposed(tmp_path, apple):
    """'first': a photo its model names is gone; 'second': two photos more
    than its model knows. Both convert the rest, and the summary counts and
    names what was left out."""
    root = two_captures(tmp_path, apple, "colmap_text")
    os.remove(root / "first" / "images" / "frame000043.jpg")
    for extra in ("extra1.jpg", "extra2.jpg"):
        shutil.copy(os.path.join(APPLE, "frame000007.jpg"), root / "second" / "images" / extra)
    summary = convert(capture_options(tmp_path, root, poses="colmap"))
    assert summary.skipped_scenes == []
    assert summary.skipped_photos["no camera in the pose file"] == 2
    first, second = records(summary.output_path, "test")
    assert (len(first[0]), len(second[0])) == (19, 20)
    text = summary.format()
    assert ("first: 1 photo(s) named by first/sparse/0/images.txt are not in the input, "
            "left out: frame000043.jpg") in text
    assert ("second: 2 photo(s) have no camera in second/sparse/0/images.txt, left out: "
            "second/images/extra1.jpg, second/images/extra2.jpg") in text


def test_transforms_json_naming_absent_photos_converts_the_rest(tmp_path, apple):
    """A capture tool dropped 7 blurred photos after writing transforms.json:
    the other 13 convert with their cameras, and the summary counts the 7
    and names the first few once."""
    names, centres, _ = apple
    root, scene = lay_out(tmp_path, apple, "transforms")
    gone = names[3:10]
    for name in gone:
        os.remove(root / scene / name)
    summary = convert(capture_options(tmp_path, root, poses="transforms", image_size=SIZE))
    [(frames, cameras)] = records(summary.output_path, "test")
    assert len(frames) == 13
    kept = [index for index, name in enumerate(names) if name not in gone]
    index, _ = identify(frames, expected_frames(apple)[kept])
    assert sorted(index) == list(range(13))
    assert similarity_residual(centres[kept][index], cameras[:, :3]).max() < 1e-5
    notes = [line for line in summary.format().splitlines() if "not in the input" in line]
    assert len(notes) == 1
    assert "scene: 7 photo(s) named by scene/transforms.json are not in the input" in notes[0]
    # The json names every other photo without its extension (capture_helpers).
    assert "... (2 more)" in notes[0] and sum(
        os.path.splitext(name)[0] in notes[0] for name in gone) == 5


def test_too_few_views_and_too_many_held_out_are_reported(tmp_path, apple):
    root = two_captures(tmp_path, apple, "transforms")
    options = capture_options(tmp_path, root, poses="transforms", holdout_views=20)
    with pytest.raises(InputError, match="--holdout_views 20 would hold out all of them"):
        convert(options)
    assert_nothing_written(options.output_dir)
    options = capture_options(tmp_path, root, poses="transforms", holdout_views=4,
                              context_size=16)
    with pytest.raises(InputError, match="20 views; a context of 16 plus a query plus "
                                         "4 held-out needs 21"):
        convert(options)


def test_sfm_without_pycolmap_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pycolmap", None)
    options = capture_options(tmp_path, write_zip(tmp_path / "in.zip", eight_view_members()),
                              poses="sfm")
    with pytest.raises(InputError, match=r"'sfm' extra \(pycolmap\): pip install '\.\[sfm\]'"):
        convert(options)
    assert_nothing_written(options.output_dir)


def test_sfm_that_fails_falls_back_to_the_fruit_table(tmp_path):
    """Flat-coloured photos give SIFT nothing to match: the scene does not
    register and keeps the fruit table's poses, and the summary says so."""
    pytest.importorskip("pycolmap")
    options = capture_options(tmp_path, write_zip(tmp_path / "in.zip", eight_view_members()),
                              poses="sfm", fallback="fruit", holdout_views=0,
                              test_fraction=0.0)
    summary = convert(options)
    assert summary.pose_sources == {"fruit table": 1}
    assert "0 scene(s) posed from their photos, 1 from the fruit table" in summary.pairing
    [(_, cameras)] = records(summary.output_path, "train")
    np.testing.assert_allclose(cameras, FRUIT_LAYOUTS[8], atol=1e-6)
    options = capture_options(tmp_path, write_zip(tmp_path / "in.zip", eight_view_members()),
                              poses="sfm", holdout_views=0, name="no_fallback")
    with pytest.raises(InputError, match="Scene1: structure from motion failed"):
        convert(options)


def test_sfm_poses_the_real_capture_and_its_model_is_reused(tmp_path, apple):
    """`--poses sfm` on the apple photos alone: the registered views carry
    their true cameras up to one similarity (3% of the radius, 3 degrees; the
    fit of COLMAP's own estimate), the unregistered ones are reported, and a
    rerun, or `--poses colmap` with the same --sfm_dir, reuses the model."""
    pytest.importorskip("pycolmap")
    names, centres, rotations = apple
    photos = tmp_path / "apple"
    photos.mkdir()
    for name in names:
        shutil.copy(os.path.join(APPLE, name), photos / name)
    sfm_dir = tmp_path / "models"
    options = ConversionOptions(input_path=str(photos), output_dir=str(tmp_path / "out"),
                                name="apple", image_size=SIZE, poses="sfm",
                                holdout_views=HELD_OUT, sfm_dir=str(sfm_dir), workers=1)
    summary = convert(options)
    registered = summary.photos_written
    assert registered >= 17  # issue 20: 20 with guided matching, 13 without
    assert summary.skipped_photos["not registered by structure from motion"] == 20 - registered
    [(frames, cameras)] = records(summary.output_path, "test")
    # Reference frames de-rolled by the truth's rolls, which differ from
    # SfM's by a degree or so, well inside what tells two photos apart.
    index, _ = identify(frames, expected_frames(apple))
    assert len(set(index)) == registered
    radius = np.linalg.norm(cameras[:, :3], axis=1).mean()
    assert similarity_residual(centres[index], cameras[:, :3]).max() < 0.03 * radius
    _, rotation, _ = similarity_fit(centres[index], cameras[:, :3])
    directions = viewing_direction(cameras[:, 3], cameras[:, 4])
    cosines = np.sum((rotation @ rotations[index][:, :, 2].T).T * directions, axis=1)
    assert np.degrees(np.arccos(np.clip(cosines, -1, 1))).max() < 3
    # The camera SfM estimated gives the frames' field of view: within 2% of
    # the truth's (gt_cameras.npz focal lengths, PyTorch3D NDC: the angle
    # across the short side is 2 atan(1 / f)) for every registered frame.
    true_short_side = 2 * np.arctan(1 / apple_focal_lengths()[index])
    true_frame = 2 * np.arctan(np.tan(true_short_side / 2) * 32 / 36)
    [(angles, near_far)] = record_cameras(summary.output_path, "test")
    assert np.all(np.abs(angles / true_frame - 1) < 0.02), (angles, true_frame)
    # SfM's points of the apple and table lie between the cameras and far
    # beyond the origin.
    assert 0 < near_far[0] < 1.2 < near_far[1]
    assert "3-D points the frames see" in summary.format()
    model = sfm_dir / "sparse" / "0" / "images.bin"
    written = model.stat().st_mtime_ns
    rerun = convert(dataclasses.replace(options, overwrite=True))
    assert model.stat().st_mtime_ns == written
    again = convert(dataclasses.replace(options, poses="colmap", name="apple_colmap"))
    for summary_ in (rerun, again):
        [(_, reread)] = records(summary_.output_path, "test")
        np.testing.assert_allclose(reread, cameras, atol=1e-6)

