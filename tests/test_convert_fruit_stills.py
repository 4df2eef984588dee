"""The photo converter, end to end on small generated zips and folders.

Every generated photo carries its identity in its colours: red = 20 * scene
number, green = 10 + 20 * view index, blue = 40 on the top half and 220 on the
bottom half (so a missed EXIF rotation shows). Reading a converted frame's
colours back tells which photo it came from, and so whether it was paired
with the right pose.
"""
import csv
import dataclasses
import glob
import io
import math
import os
import random
import struct
import subprocess
import sys
import zipfile
import zlib

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from PIL import Image, ImageDraw, ImageFont

from data_provider import datasets, photo_layouts, photo_source, scene_geometry, synthetic
from data_provider.camera_poses.intrinsics import ASSUMED_SOURCE
from data_provider.fruit_poses import FRUIT_LAYOUTS
from data_provider.fruit_stills import ConversionOptions, convert, split_scenes
from data_provider.gqn_tfr_provider import gqn_input_fn
from data_provider.photo_preprocess import (convert_photo, crop_geometry,
                                            cropped_field_of_view)
from data_provider.photo_source import InputError
from gqn.poses import encode_poses_np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PHOTO_SIZE = (160, 120)  # 4:3, like the phones' 4032x3024
# scene folder in the zip -> number of photos (Scene8 fits no layout)
FRUIT_SCENES = {
    "fruit_stills_dataset/Scene1": 12, "fruit_stills_dataset/Scene2": 12,
    "fruit_stills_dataset/Scene3": 12, "fruit_stills_dataset/Scene4": 12,
    "fruit_stills_dataset/Scene5": 8, "fruit_stills_dataset/Scene6": 8,
    "nested/deeper/Scene7": 8, "fruit_stills_dataset/Scene8": 10,
}
JUNK = {
    "__MACOSX/fruit_stills_dataset/Scene1/._IMG_1.JPG": b"\x00\x05\x16\x07",
    "fruit_stills_dataset/.DS_Store": b"\x00\x00\x00\x01Bud1",
    "fruit_stills_dataset/Scene3/.DS_Store": b"\x00\x00\x00\x01Bud1",
    "fruit_stills_dataset/notes.txt": b"shot on a phone\n",
}
GOOD_SCENES = {int(folder.rsplit("Scene", 1)[1]): count
               for folder, count in FRUIT_SCENES.items() if count in FRUIT_LAYOUTS}


def identity_photo(scene, view, size=PHOTO_SIZE):
    """An upright photo whose colours encode (scene, view); the view number
    is also drawn large for the preview."""
    width, height = size
    image = Image.new("RGB", size, (20 * scene, 10 + 20 * view, 40))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, height // 2, width, height), fill=(20 * scene, 10 + 20 * view, 220))
    draw.text((width / 2, height / 2), str(view + 1), fill="white", anchor="mm",
              font=ImageFont.load_default(size=height // 3))
    return image


def jpeg_bytes(image, orientation=None, taken=None):
    exif = Image.Exif()
    if orientation:
        exif[0x0112] = orientation
    if taken:
        exif.get_ifd(0x8769)[36867] = taken
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=95, exif=exif)
    return buffer.getvalue()


def stored_with_orientation(image, orientation):
    """The pixels a camera stores for an upright `image` with this EXIF tag."""
    undo = {6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}
    return jpeg_bytes(image.transpose(undo[orientation]), orientation=orientation)


def fruit_members():
    """{zip member: bytes} in the fruit layout, with EXIF rotation and junk."""
    members = dict(JUNK)
    for folder, count in FRUIT_SCENES.items():
        scene = int(folder.rsplit("Scene", 1)[1])
        for view in range(count):
            photo = identity_photo(scene, view)
            if view % 5 == 1:
                data = stored_with_orientation(photo, 6 if scene % 2 else 8)
            else:
                data = jpeg_bytes(photo)
            # IMG_1 .. IMG_12: plain string order would put IMG_10 after IMG_1.
            members[f"{folder}/IMG_{view + 1}.JPG"] = data
    return members


def write_zip(path, members, seed=0):
    """Members written in a shuffled order: zip order must not matter."""
    names = sorted(members)
    random.Random(seed).shuffle(names)
    with zipfile.ZipFile(path, "w") as archive:
        for name in names:
            archive.writestr(name, members[name])
    return str(path)


def read_records(dataset_dir, split):
    """[(frames uint8 (V, H, W, 3), raw cameras (V, 5))] in file order."""
    scenes = []
    for path in sorted(glob.glob(os.path.join(dataset_dir, split, "*.tfrecord"))):
        for record in tf.io.tf_record_iterator(path):
            example = tf.train.Example.FromString(record)
            features = example.features.feature
            frames = np.stack([np.asarray(Image.open(io.BytesIO(data)))
                               for data in features["frames"].bytes_list.value])
            cameras = np.array(features["cameras"].float_list.value).reshape(-1, 5)
            scenes.append((frames, cameras))
    return scenes


def identify(frame):
    """(scene, view, top blue, bottom blue) read from a frame's corners."""
    frame = np.asarray(frame, dtype=np.float64)
    if frame.max() <= 1.0:
        frame = frame * 255.0
    top = frame[2:10, 2:10].reshape(-1, 3).mean(axis=0)
    bottom = frame[-10:-2, 2:10].reshape(-1, 3).mean(axis=0)
    return (int(round(top[0] / 20)), int(round((top[1] - 10) / 20)),
            top[2], bottom[2])


def options(tmp_path, input_path, **overrides):
    fields = dict(input_path=str(input_path), output_dir=str(tmp_path / "out"),
                  test_fraction=0.3, workers=2)
    fields.update(overrides)
    return ConversionOptions(**fields)


def assert_nothing_written(output_dir):
    assert not os.path.exists(output_dir) or os.listdir(output_dir) == []


@pytest.fixture(scope="module")
def fruit_zip(tmp_path_factory):
    return write_zip(tmp_path_factory.mktemp("zip") / "fruit_stills_dataset.zip",
                     fruit_members())


@pytest.fixture(scope="module")
def converted(tmp_path_factory, fruit_zip):
    """(summary, dataset folder) of the fruit zip converted once."""
    tmp_path = tmp_path_factory.mktemp("converted")
    summary = convert(options(tmp_path, fruit_zip))
    return summary, summary.output_path


def test_summary_counts_what_was_read_written_and_skipped(converted):
    summary, _ = converted
    assert summary.files_found == sum(FRUIT_SCENES.values()) + len(JUNK)
    assert summary.photos_found == sum(FRUIT_SCENES.values())
    assert summary.photos_written == sum(GOOD_SCENES.values()) == 72
    assert summary.skipped_scenes == [
        ("fruit_stills_dataset/Scene8", "10 photos, but the fruit layouts have 12 or 8")]
    assert dict(summary.skipped_files) == {
        photo_source.SKIP_MACOS: 1, photo_source.SKIP_HIDDEN: 2,
        photo_source.SKIP_NOT_IMAGE: 1,
    }
    assert dict(summary.skipped_photos) == {photo_layouts.SKIP_IN_SKIPPED_SCENE: 10}
    text = summary.format()
    assert "input: 86 files, 82 photos, 4 other files skipped (2 hidden dot-file" in text
    assert "scenes: 8 found, 7 written (5 train, 2 test), 1 skipped" in text
    assert "photos: 82 found, 72 written, 10 skipped (10 in a skipped scene)" in text
    assert "natural file-name order" in text


def test_each_frame_is_paired_with_its_layout_pose(converted):
    _, dataset_dir = converted
    seen = set()
    for split in datasets.SPLITS:
        for frames, cameras in read_records(dataset_dir, split):
            views = len(frames)
            assert frames.shape[1:] == (64, 64, 3)
            for position, frame in enumerate(frames):
                scene, view, top_blue, bottom_blue = identify(frame)
                assert view == position, f"scene {scene}: photo of view {view} at {position}"
                np.testing.assert_allclose(cameras[position], FRUIT_LAYOUTS[views][view],
                                           atol=1e-6)
                # Upright, EXIF-rotated members included: blue top, light bottom.
                assert top_blue < 100 < 160 < bottom_blue
            assert GOOD_SCENES[scene] == views
            seen.add(scene)
    assert seen == set(GOOD_SCENES)


def test_split_is_by_scene_and_described(converted):
    summary, dataset_dir = converted
    train = set(summary.split_scenes["train"])
    test = set(summary.split_scenes["test"])
    assert not train & test and len(train | test) == 7 and len(test) == 2
    scene_ids = {split: {identify(frames[0])[0] for frames, _ in read_records(dataset_dir, split)}
                 for split in datasets.SPLITS}
    assert not scene_ids["train"] & scene_ids["test"]
    assert len(scene_ids["test"]) == 2
    info = datasets.get_dataset_info("fruit_stills", os.path.dirname(dataset_dir))
    shape_facts = dataclasses.replace(info, field_of_view_degrees=None,
                                      field_of_view_source=None, scene_cameras=None)
    assert shape_facts == datasets.DatasetInfo("fruit_stills", train_files=1, test_files=1,
                                               frame_size=64, sequence_size=12, min_views=8)
    assert sorted(info.scene_cameras) == sorted(summary.split_scenes["train"]
                                                + summary.split_scenes["test"])
    assert sorted(os.listdir(os.path.join(dataset_dir, "train"))) == ["1-of-1.tfrecord"]


def record_cameras(dataset_dir, split):
    """[(field_of_view radians (1,) or (V,), depth_range (2,))] in file order."""
    found = []
    for path in sorted(glob.glob(os.path.join(dataset_dir, split, "*.tfrecord"))):
        for record in tf.io.tf_record_iterator(path):
            features = tf.train.Example.FromString(record).features.feature
            found.append((np.array(features[scene_geometry.FIELD_OF_VIEW_KEY].float_list.value),
                          np.array(features[scene_geometry.DEPTH_RANGE_KEY].float_list.value)))
    return found


def phone_frame_degrees(width, height, focal_35mm, size):
    """The angle across a converted frame of a photo with this 35 mm-equivalent
    focal length (equivalent across the 43.27 mm full-frame diagonal)."""
    focal = focal_35mm * math.hypot(width, height) / math.hypot(36, 24)
    half_short_side = min(width, height) / 2 * size / round(size * 9 / 8)
    return math.degrees(2 * math.atan(half_short_side / focal))


def test_fruit_records_carry_the_assumed_field_of_view_and_camera_depths(converted):
    """No EXIF focal length in these photos: every frame takes the labelled
    phone assumption (26 mm), and without 3-D points the depth range comes
    from the camera distances, in the records, dataset_info and summary."""
    summary, dataset_dir = converted
    expected = math.radians(phone_frame_degrees(160, 120, 26, 64))
    info = datasets.get_dataset_info("fruit_stills", os.path.dirname(dataset_dir))
    for split in datasets.SPLITS:
        for (frames, cameras), (angles, near_far) in zip(
                read_records(dataset_dir, split), record_cameras(dataset_dir, split)):
            np.testing.assert_allclose(angles, [expected], rtol=1e-6)
            distances = np.linalg.norm(cameras[:, :3], axis=1)
            np.testing.assert_allclose(near_far, [scene_geometry.NEAR_SHARE * distances.min(),
                                                  scene_geometry.FAR_SHARE * distances.max()],
                                       rtol=1e-6)
    for scene, cameras in info.scene_cameras.items():
        assert cameras["field_of_view_degrees"] == pytest.approx(math.degrees(expected),
                                                                 abs=1e-3)
        assert cameras["field_of_view_source"] == ASSUMED_SOURCE
        assert "camera distances" in cameras["depth_range_source"]
    assert info.field_of_view_degrees == pytest.approx(math.degrees(expected), abs=1e-3)
    text = summary.format()
    assert f"field of view {math.degrees(expected):.1f} deg (assumed: a phone main camera" in text


def with_exif_focal(image, focal_35mm=None, focal_mm=None, pixels_per_cm=None,
                    file_format="JPEG"):
    """File bytes of `image` whose EXIF states a focal length: the 35 mm
    equivalent, or the focal length with the sensor's pixel pitch."""
    exif = Image.Exif()
    tags = exif.get_ifd(0x8769)
    if focal_35mm:
        tags[0xA405] = focal_35mm
    if focal_mm:
        tags[0x920A], tags[0xA20E], tags[0xA210] = focal_mm, pixels_per_cm, 3
    buffer = io.BytesIO()
    image.save(buffer, format=file_format, exif=exif.tobytes(),
               **({"quality": 95} if file_format == "JPEG" else {}))
    return buffer.getvalue()


def test_exif_focal_lengths_give_each_frame_its_field_of_view(tmp_path):
    members = eight_view_members()
    for view in range(6):  # views 7 and 8 state nothing: the assumption
        photo = identity_photo(1, view)
        members[f"Scene1/IMG_{view + 1}.JPG"] = (
            with_exif_focal(photo, focal_35mm=52) if view < 4 else
            with_exif_focal(photo, focal_mm=4.0, pixels_per_cm=400.0))
    summary = convert(options(tmp_path, write_zip(tmp_path / "exif.zip", members),
                              test_fraction=0.0, image_size=32))
    [(angles, _)] = record_cameras(summary.output_path, "train")
    # 4 mm at 400 pixels per cm: a focal length of 160 pixels.
    by_sensor = math.degrees(2 * math.atan(60 * 32 / 36 / 160))
    np.testing.assert_allclose(np.degrees(angles), [phone_frame_degrees(160, 120, 52, 32)] * 4
                               + [by_sensor] * 2 + [phone_frame_degrees(160, 120, 26, 32)] * 2,
                               rtol=1e-5)
    source = datasets.get_dataset_info("fruit_stills", str(tmp_path / "out")).scene_cameras[
        "Scene1"]["field_of_view_source"]
    assert source == ("4 views: EXIF FocalLengthIn35mmFilm (52 mm); 2 views: EXIF "
                      "FocalLength (4 mm) and the sensor's pixel pitch "
                      f"(FocalPlaneXResolution); 2 views: {ASSUMED_SOURCE}")
    # The user's --focal_length_35mm overrides them all.
    summary = convert(options(tmp_path, write_zip(tmp_path / "exif.zip", members),
                              test_fraction=0.0, image_size=32, focal_length_35mm=40,
                              overwrite=True))
    [(angles, _)] = record_cameras(summary.output_path, "train")
    np.testing.assert_allclose(np.degrees(angles), [phone_frame_degrees(160, 120, 40, 32)],
                               rtol=1e-5)
    assert "(--focal_length_35mm 40)" in summary.format()


def test_split_scenes_is_seeded_and_disjoint():
    train, test = split_scenes(100, 0.1, seed=3)
    assert len(test) == 10 and sorted(train + test) == list(range(100))
    assert split_scenes(100, 0.1, seed=3) == (train, test)
    assert split_scenes(100, 0.1, seed=4) != (train, test)
    assert split_scenes(5, 0.0, seed=0) == ([0, 1, 2, 3, 4], [])
    assert len(split_scenes(3, 0.01, seed=0)[1]) == 1  # any fraction tests something
    assert split_scenes(1, 0.5, seed=0) == ([0], [])  # but train keeps one


def test_reader_gets_the_pose_of_each_frame(converted):
    _, dataset_dir = converted
    with tf.Graph().as_default():
        input_fn = gqn_input_fn("fruit_stills", os.path.dirname(dataset_dir), "train",
                                context_size=3, seed=1)
        features, labels = tf.data.make_one_shot_iterator(
            input_fn({"batch_size": 4})).get_next()
        with tf.Session() as session:
            batches = [session.run((features, labels)) for _ in range(3)]
    for features, labels in batches:
        assert features["context_frames"].shape == (4, 3, 64, 64, 3)
        for example in range(4):
            frames = list(features["context_frames"][example]) + [labels[example]]
            poses = list(features["context_poses"][example]) + [features["query_pose"][example]]
            for frame, pose in zip(frames, poses):
                scene, view, _, _ = identify(frame)
                expected = encode_poses_np(FRUIT_LAYOUTS[GOOD_SCENES[scene]][view])
                np.testing.assert_allclose(pose, expected, atol=1e-5)


def test_same_input_gives_byte_identical_output(tmp_path, fruit_zip, converted):
    _, first_dir = converted
    second = convert(options(tmp_path, fruit_zip))
    names = sorted(os.path.relpath(path, first_dir)
                   for path in glob.glob(os.path.join(first_dir, "**", "*"), recursive=True)
                   if os.path.isfile(path))
    assert "preview.png" in names and "dataset_info.json" in names
    for name in names:
        with open(os.path.join(first_dir, name), "rb") as one, \
                open(os.path.join(second.output_path, name), "rb") as two:
            assert one.read() == two.read(), name


def test_folder_input_gives_the_same_records_as_the_zip(tmp_path, fruit_zip, converted):
    _, zip_dir = converted
    folder = tmp_path / "photos"
    for name, data in fruit_members().items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    summary = convert(options(tmp_path, folder))
    assert summary.photos_written == 72 and summary.files_found == 86
    for split in datasets.SPLITS:
        for name in os.listdir(os.path.join(zip_dir, split)):
            with open(os.path.join(zip_dir, split, name), "rb") as one, \
                    open(os.path.join(summary.output_path, split, name), "rb") as two:
                assert one.read() == two.read()


def test_existing_output_is_refused_unless_overwrite(tmp_path, fruit_zip):
    out = tmp_path / "out" / "fruit_stills"
    out.mkdir(parents=True)
    (out / "keep.txt").write_text("earlier run")
    with pytest.raises(InputError, match="already exists.*--overwrite"):
        convert(options(tmp_path, fruit_zip))
    assert os.listdir(out) == ["keep.txt"]
    assert os.listdir(tmp_path / "out") == ["fruit_stills"]  # no partial folder left
    convert(options(tmp_path, fruit_zip, overwrite=True))
    assert sorted(os.listdir(out)) == ["dataset_info.json", "preview.png", "test", "train"]


def test_crop_geometry_matches_the_seed_and_other_shapes():
    assert crop_geometry(4032, 3024, 64) == ((96, 72), (16, 4, 80, 68))  # the seed's
    assert crop_geometry(3024, 4032, 64) == ((72, 96), (4, 16, 68, 80))
    assert crop_geometry(1000, 1000, 64) == ((72, 72), (4, 4, 68, 68))
    assert crop_geometry(1920, 1080, 64) == ((128, 72), (32, 4, 96, 68))
    assert crop_geometry(4032, 3024, 128) == ((192, 144), (32, 8, 160, 136))


def test_converted_frame_sees_the_cropped_field_of_view():
    # A 4:3 photo of a still life at the generator's 45 degrees, converted,
    # must match a square render at cropped_field_of_view(45) (about 40.4),
    # not one at 45: that is the angle a sweep model is told.
    scene, poses = synthetic.make_scene("still_life", 3, "train", 0, 1, 12)
    photo = synthetic.render(scene, poses[:1], 288, 216)[0]
    frame = convert_photo("p.png", png_bytes(Image.fromarray(photo)), 32).pixels.astype(float)
    cropped = cropped_field_of_view(synthetic.FIELD_OF_VIEW_DEGREES)
    assert cropped == pytest.approx(40.42, abs=0.01)

    def square_render(degrees):
        scene.fov_y = math.radians(degrees)
        return synthetic.render(scene, poses[:1], 32, 32, supersample=3)[0].astype(float)

    matched = np.abs(frame - square_render(cropped)).mean()
    assert matched < 1.5
    assert np.abs(frame - square_render(synthetic.FIELD_OF_VIEW_DEGREES)).mean() > 3 * matched


def test_the_record_states_the_field_of_view_its_frame_shows(tmp_path):
    """End to end: a 4:3 still life photographed at 45 degrees across its
    short side, its EXIF stating that focal length, converted (32 px): the
    record's angle is the crop's exactly, and a square render at that angle
    shows what the frame shows."""
    scene, poses = synthetic.make_scene("still_life", 3, "train", 0, 1, 12)
    photos = synthetic.render(scene, poses[:2], 288, 216)
    focal = 108 / math.tan(math.radians(synthetic.FIELD_OF_VIEW_DEGREES) / 2)
    folder = tmp_path / "photos"
    folder.mkdir()
    rows = []
    for index, photo in enumerate(photos):
        (folder / f"p{index}.png").write_bytes(with_exif_focal(
            Image.fromarray(photo), focal_mm=4.0, pixels_per_cm=focal / 0.4,
            file_format="PNG"))
        rows.append(["s", f"p{index}.png", *poses[index][:3], *np.degrees(poses[index][3:])])
    manifest = write_manifest(tmp_path / "poses.csv",
                              ["scene", "image", "x", "y", "z", "yaw", "pitch"], rows)
    summary = convert(options(tmp_path, folder, manifest=manifest, test_fraction=0.0,
                              context_size=1, image_size=32))
    [(frames, _)] = read_records(summary.output_path, "train")
    [(angles, _)] = record_cameras(summary.output_path, "train")
    cropped = cropped_field_of_view(synthetic.FIELD_OF_VIEW_DEGREES, 32)
    np.testing.assert_allclose(np.degrees(angles), [cropped], atol=1e-4)
    scene.fov_y = angles[0]
    square = synthetic.render(scene, poses[:1], 32, 32, supersample=3)[0].astype(float)
    scene.fov_y = math.radians(synthetic.FIELD_OF_VIEW_DEGREES)
    uncropped = synthetic.render(scene, poses[:1], 32, 32, supersample=3)[0].astype(float)

    def error(render):
        # Means over 4x4 blocks: the record's JPEG noise averages out, the
        # object's place and size in the frame stay.
        return np.abs(frames[0].reshape(8, 4, 8, 4, 3).mean((1, 3))
                      - render.reshape(8, 4, 8, 4, 3).mean((1, 3))).mean()

    assert error(square) < 1.5
    assert error(uncropped) > 2.5 * error(square)


def test_phone_sized_photo_keeps_exactly_the_seed_crop_window():
    # Green where the seed's box (16, 4, 80, 68) of 96x72 falls on 4032x3024
    # (x 672..3360, y 168..2856), red around it: the frame must be green to
    # its edges, and no more than the resampling blur of red may show.
    photo = Image.new("RGB", (4032, 3024), (255, 0, 0))
    ImageDraw.Draw(photo).rectangle((672, 168, 3359, 2855), fill=(0, 255, 0))
    frame = convert_photo("phone.jpg", jpeg_bytes(photo), 64).pixels.astype(int)
    assert frame.shape == (64, 64, 3)
    assert (frame[1:-1, 1:-1, 1] > 200).all() and (frame[1:-1, 1:-1, 0] < 60).all()
    assert (frame[[0, -1], :, 1] > 120).all() and (frame[:, [0, -1], 1] > 120).all()


def png_bytes(image):
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("image, expected", [
    (Image.new("RGBA", (40, 30), (255, 0, 0, 128)), (255, 127, 127)),  # on white
    (Image.new("L", (40, 30), 90), (90, 90, 90)),
    (Image.new("CMYK", (40, 30), (0, 255, 255, 0)), (255, 0, 0)),
    (Image.new("P", (40, 30), 0), (0, 0, 0)),
    (Image.fromarray(np.full((30, 40), 50000, np.uint16)), (195, 195, 195)),
], ids=["rgba", "grayscale", "cmyk", "palette", "16-bit"])
def test_any_image_mode_becomes_rgb(image, expected):
    data = jpeg_bytes(image) if image.mode == "CMYK" else png_bytes(image)
    frame = convert_photo("photo", data, 16).pixels
    assert frame.dtype == np.uint8 and frame.shape == (16, 16, 3)
    np.testing.assert_allclose(frame.reshape(-1, 3).mean(axis=0), expected, atol=3)


def test_exif_capture_time_order(tmp_path):
    # Names run against the shutter: IMG_8 was taken first.
    members = {f"Scene1/IMG_{8 - view}.JPG":
               jpeg_bytes(identity_photo(1, view), taken=f"2024:05:01 10:00:{view:02d}")
               for view in range(8)}
    summary = convert(options(tmp_path, write_zip(tmp_path / "timed.zip", members),
                              order="exif_time", test_fraction=0.0))
    assert "EXIF capture-time order" in summary.pairing
    [(frames, cameras)] = read_records(summary.output_path, "train")
    assert [identify(frame)[1] for frame in frames] == list(range(8))
    np.testing.assert_allclose(cameras, FRUIT_LAYOUTS[8], atol=1e-6)

    members["Scene1/IMG_1.JPG"] = jpeg_bytes(identity_photo(1, 7))
    with pytest.raises(InputError, match="IMG_1.JPG has no EXIF capture time"):
        convert(options(tmp_path, write_zip(tmp_path / "untimed.zip", members),
                        order="exif_time", overwrite=True))


def write_manifest(path, header, rows):
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerows([header] + rows)
    return str(path)


def test_manifest_gives_each_photo_its_pose(tmp_path):
    folder = tmp_path / "mine"
    rows = []
    for scene, name in enumerate(["desk", "kitchen"], start=1):
        (folder / name).mkdir(parents=True)
        for view in range(3):
            identity_photo(scene, view, size=(90, 120)).save(folder / name / f"p{view}.png")
            rows.append([name, f"{name}/p{view}.png", view, -view, 0.5, 90 * view, -10])
    (folder / "stray.jpg").write_bytes(jpeg_bytes(identity_photo(9, 9)))
    manifest = write_manifest(tmp_path / "poses.csv",
                              ["scene", "image", "x", "y", "z", "yaw", "pitch"], rows)
    summary = convert(options(tmp_path, folder, manifest=manifest, test_fraction=0.0,
                              context_size=2))
    assert summary.split_scenes == {"train": ["desk", "kitchen"]}
    assert dict(summary.skipped_photos) == {photo_layouts.SKIP_NOT_IN_MANIFEST: 1}
    for frames, cameras in read_records(summary.output_path, "train"):
        for frame, camera in zip(frames, cameras):
            view = identify(frame)[1]
            np.testing.assert_allclose(
                camera, [view, -view, 0.5, np.radians(90 * view), np.radians(-10)],
                atol=1e-6)


def test_manifest_in_the_seven_number_form(tmp_path):
    manifest = write_manifest(
        tmp_path / "poses.csv",
        ["Scene", "Image", "x", "y", "z", "sin_yaw", "cos_yaw", "sin_pitch", "cos_pitch"],
        [["a", "a/1.jpg", 1, 2, 0, 0.707, -0.707, 0, 1]])
    [(line, scene, image, pose)] = photo_layouts.read_manifest(manifest)
    assert (line, scene, image) == (2, "a", "a/1.jpg")
    np.testing.assert_allclose(pose, [1, 2, 0, 3 * np.pi / 4, 0], atol=1e-4)


def test_manifest_angles_in_radians(tmp_path):
    manifest = write_manifest(tmp_path / "poses.csv",
                              ["scene", "image", "x", "y", "z", "yaw", "pitch"],
                              [["a", "a/1.jpg", 1, 2, 3, 1.5, -0.25]])
    [(_, _, _, pose)] = photo_layouts.read_manifest(manifest, angle_unit="radians")
    np.testing.assert_allclose(pose, [1, 2, 3, 1.5, -0.25], atol=1e-6)


def bomb_png(width=20000, height=20000):
    """A tiny PNG whose header claims 400 megapixels."""
    def chunk(kind, payload):
        return (struct.pack(">I", len(payload)) + kind + payload
                + struct.pack(">I", zlib.crc32(kind + payload)))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def eight_view_members(**replacements):
    members = {f"Scene1/IMG_{view + 1}.JPG": jpeg_bytes(identity_photo(1, view))
               for view in range(8)}
    members.update(replacements)
    return members


def bad_input(tmp_path, case):
    """(ConversionOptions, expected message pattern) for one kind of bad input."""
    if case == "missing":
        return options(tmp_path, tmp_path / "nope.zip"), "nope.zip does not exist"
    if case == "not a zip":
        path = tmp_path / "photos.zip"
        path.write_text("not really a zip")
        return options(tmp_path, path), "neither a folder nor a zip"
    if case == "escaping member":
        members = eight_view_members(**{"../evil.jpg": jpeg_bytes(identity_photo(1, 1))})
        return (options(tmp_path, write_zip(tmp_path / "slip.zip", members)),
                r"'\.\./evil\.jpg' has a path that escapes")
    if case == "decompression bomb":
        members = eight_view_members(**{"Scene1/IMG_3.JPG": bomb_png()})
        return (options(tmp_path, write_zip(tmp_path / "bomb.zip", members)),
                "IMG_3.JPG: refused by Pillow's decompression-bomb limit")
    if case == "truncated jpeg":
        whole = jpeg_bytes(identity_photo(1, 4))
        members = eight_view_members(**{"Scene1/IMG_5.JPG": whole[:len(whole) // 2]})
        return (options(tmp_path, write_zip(tmp_path / "cut.zip", members)),
                "IMG_5.JPG: cannot decode the image")
    if case == "empty zip":
        return options(tmp_path, write_zip(tmp_path / "empty.zip", {})), "holds no photos"
    if case == "empty folder":
        (tmp_path / "empty").mkdir()
        return options(tmp_path, tmp_path / "empty"), "holds no photos"
    if case == "no scene fits":
        members = {f"Scene1/IMG_{view}.JPG": jpeg_bytes(identity_photo(1, view))
                   for view in range(5)}
        return (options(tmp_path, write_zip(tmp_path / "five.zip", members)),
                "no scene can be converted.*Scene1: 5 photos")
    header = ["scene", "image", "x", "y", "z", "yaw", "pitch"]
    zip_path = write_zip(tmp_path / "mine.zip", eight_view_members())
    if case == "manifest missing photo":
        manifest = write_manifest(tmp_path / "m.csv", header, [
            ["s", "Scene1/IMG_1.JPG", 0, 0, 0, 0, 0], ["s", "Scene1/IMG_9.JPG", 0, 0, 0, 0, 0]])
        return (options(tmp_path, zip_path, manifest=manifest),
                r"m\.csv line 3: photo 'Scene1/IMG_9\.JPG' is not an image file")
    assert case == "manifest non-numeric"
    manifest = write_manifest(tmp_path / "m.csv", header, [
        ["s", "Scene1/IMG_1.JPG", 0, 0, 0, "north", 0]])
    return (options(tmp_path, zip_path, manifest=manifest),
            r"m\.csv line 2: yaw is 'north', not a number")


BAD_INPUTS = ["missing", "not a zip", "escaping member", "decompression bomb",
              "truncated jpeg", "empty zip", "empty folder", "no scene fits",
              "manifest missing photo", "manifest non-numeric"]


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_is_refused_with_nothing_written(tmp_path, case):
    bad_options, message = bad_input(tmp_path, case)
    with pytest.raises(InputError, match=message):
        convert(bad_options)
    assert_nothing_written(bad_options.output_dir)
    assert not glob.glob(str(tmp_path / "**" / "evil.jpg"), recursive=True)
    assert not os.path.exists(os.path.join(os.path.dirname(str(tmp_path)), "evil.jpg"))


def run_cli(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, os.path.join(REPO, "convert_fruit_stills.py"),
                           *args], capture_output=True, text=True, env=env, cwd=REPO)


def test_cli_converts_and_reports(tmp_path):
    zip_path = write_zip(tmp_path / "in.zip", eight_view_members())
    done = run_cli("--input", zip_path, "--output_dir", str(tmp_path / "out"),
                   "--image_size", "32", "--test_fraction", "0")
    assert done.returncode == 0, done.stderr
    assert "scenes: 1 found, 1 written (1 train), 0 skipped" in done.stdout
    [(frames, _)] = read_records(str(tmp_path / "out" / "fruit_stills"), "train")
    assert frames.shape == (8, 32, 32, 3)


def test_cli_bad_input_exits_non_zero_without_traceback(tmp_path):
    done = run_cli("--input", str(tmp_path / "nope.zip"), "--output_dir", str(tmp_path))
    assert done.returncode == 1
    assert "error: input" in done.stderr and "nope.zip does not exist" in done.stderr
    assert "Traceback" not in done.stderr
