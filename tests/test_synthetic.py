"""The synthetic scene generator: camera model, shading, record layout,
determinism, the still-life photo zip and the CLI."""
import io
import json
import math
import zipfile

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from PIL import Image

from data_provider import synthetic
from data_provider.camera_poses import intrinsics
from data_provider.fruit_poses import FRUIT_LAYOUTS
from gqn.poses import camera_axes_np, encode_poses_np, viewing_direction

RED, GREY = (0.9, 0.1, 0.1), (0.5, 0.5, 0.5)


def read_records(split_dir):
    """[(frames as uint8 arrays, raw cameras (V, 5))] of every record."""
    scenes = []
    for path in sorted(split_dir.glob("*.tfrecord")):
        for record in tf.io.tf_record_iterator(str(path)):
            feature = tf.train.Example.FromString(record).features.feature
            frames = [np.array(Image.open(io.BytesIO(value)))
                      for value in feature["frames"].bytes_list.value]
            cameras = np.reshape(feature["cameras"].float_list.value, (-1, 5))
            scenes.append((frames, cameras))
    return scenes


def sphere_scene(light=(0.6, 0.0, 1.4)):
    """A red ball of radius 0.2 on the floor in a grey room."""
    room = synthetic.Room([-1, -1, 0], [1, 1, 1.5], [GREY] * 6)
    ball = synthetic.Ellipsoid([0, 0, 0.2], [0.2] * 3, RED)
    return synthetic.Scene(room, [ball], light, ambient=0.3, fov_y=0.5)


def probe(scene, x, y, z, yaw, pitch):
    """The colour seen along the optical axis of a 1-pixel camera."""
    return synthetic.render(scene, [[x, y, z, yaw, pitch]], 1, 1)[0, 0, 0] / 255.0


def test_camera_looks_along_its_yaw_and_pitch():
    scene = sphere_scene()
    assert probe(scene, -0.9, 0, 0.2, 0.0, 0.0)[0] > 0.3  # +x: the red ball
    # DeepMind's yaw turns clockwise: 3 pi / 2 looks along +y.
    assert probe(scene, 0, -0.9, 0.2, 3 * math.pi / 2, 0.0)[0] > 0.3  # the ball
    assert probe(scene, 0, -0.9, 0.2, math.pi / 2, 0.0)[0] < 0.5  # away: grey wall
    assert probe(scene, -0.9, 0, 0.2, math.pi, 0.0)[0] < 0.5  # away: grey wall
    assert probe(scene, -0.9, 0, 0.2, 0.0, 0.6)[0] < 0.5  # above the ball
    red, green, _ = synthetic.render(scene, [[-0.9, 0, 0.2, 0, 0]], 9, 9)[0, 4, 4]
    assert red > 3 * green


def test_lambert_shading_and_shadows():
    scene = sphere_scene(light=(0.6, 0.0, 1.4))
    down = -math.pi / 2
    top = probe(scene, 0, 0, 1.0, 0.0, down)[0]  # faces the light
    away = probe(scene, -1.0 + 1e-3, 0, 0.2, 0.0, 0.0)[0]  # faces away
    assert top > 1.5 * away
    # The ball stands between (-0.3, 0, 0) and the light, not (0, 0.35, 0).
    shadowed = probe(scene, -0.3, 0, 1.0, 0.0, down)
    lit = probe(scene, 0, 0.35, 1.0, 0.0, down)
    assert lit.mean() > 1.5 * shadowed.mean()


def test_rooms_records_have_the_deepmind_layout(tmp_path):
    info = synthetic.generate_dataset(str(tmp_path), "rooms", "rooms", 5, 2,
                                      image_size=40, num_views=4, seed=0,
                                      scenes_per_file=2)
    root = tmp_path / "rooms"
    assert json.loads((root / "dataset_info.json").read_text()) == {
        "name": "rooms", "train_files": 3, "test_files": 1, "frame_size": 40,
        "sequence_size": 4, "min_views": 4, "holdout_views": 0, "object_masks": True,
        **synthetic.GENERATED_CAMERAS}
    assert (info.train_files, info.test_files) == (3, 1)
    assert sorted(p.name for p in (root / "train").iterdir()) == [
        "1-of-3.tfrecord", "2-of-3.tfrecord", "3-of-3.tfrecord"]
    scenes = read_records(root / "train")
    assert len(scenes) == 5
    for frames, cameras in scenes:
        assert [frame.shape for frame in frames] == [(40, 40, 3)] * 4
        x, y, _, yaw, pitch = cameras.T
        # On a ring, looking at the centre, pitched slightly down.
        np.testing.assert_allclose(np.hypot(x, y), 0.9, atol=1e-5)
        # Looking at the centre: the viewing azimuth (-yaw) points at it.
        np.testing.assert_allclose(-np.arctan2(-y, -x) % (2 * np.pi), yaw, atol=1e-4)
        assert np.all((-0.4 < pitch) & (pitch <= 0))
        assert len({frame.tobytes() for frame in frames}) == 4
        assert all(len(np.unique(frame.reshape(-1, 3), axis=0)) > 20 for frame in frames)


def test_same_seed_gives_the_same_bytes_for_any_worker_count(tmp_path):
    def make(seed, workers, name):
        synthetic.generate_dataset(str(tmp_path), name, "rooms", 3, 1,
                                   image_size=16, num_views=3, seed=seed,
                                   num_workers=workers)
        return [p.read_bytes() for p in sorted((tmp_path / name).rglob("*.tfrecord"))]

    assert make(7, 1, "a") == make(7, 2, "b")
    assert make(7, 1, "a2") != make(8, 1, "c")


def test_still_life_uses_the_fruit_pose_tables_and_writes_photos(tmp_path):
    zip_path = tmp_path / "photos" / "fruit_stills.zip"
    info = synthetic.generate_dataset(str(tmp_path), "fruit", "still_life", 3, 2,
                                      image_size=24, seed=0, zip_path=str(zip_path),
                                      photo_size=(48, 36))
    assert (info.min_views, info.sequence_size) == (8, 12)
    train = read_records(tmp_path / "fruit" / "train")
    test = read_records(tmp_path / "fruit" / "test")
    assert [len(frames) for frames, _ in train] == [12, 12, 8]
    assert [len(frames) for frames, _ in test] == [12, 8]
    for frames, cameras in train + test:
        np.testing.assert_array_equal(cameras, FRUIT_LAYOUTS[len(frames)])
        assert frames[0].shape == (24, 24, 3)
    with zipfile.ZipFile(zip_path) as archive:
        names = archive.namelist()
        for scene, views in enumerate([12, 12, 8, 12, 8], start=1):
            expected = [f"fruit_stills/Scene{scene}/IMG_{v:04d}.jpg"
                        for v in range(1, views + 1)]
            assert [n for n in names if f"/Scene{scene}/" in n] == expected
        photo = Image.open(io.BytesIO(archive.read(names[0])))
        assert photo.size == (48, 36)
        # Its EXIF states the camera, as a phone's does: the records' angle
        # across the short side.
        focal = intrinsics.exif_focal(photo)
        assert focal.short_side_degrees(photo.size) == pytest.approx(
            synthetic.FIELD_OF_VIEW_DEGREES, abs=1e-6)
    assert not zip_path.with_name(zip_path.name + ".partial").exists()


def test_cli_writes_a_dataset(tmp_path, capsys):
    synthetic.main(["--output_dir", str(tmp_path), "--preset", "rooms",
                    "--name", "cli", "--num_train_scenes", "2",
                    "--num_test_scenes", "1", "--image_size", "8",
                    "--num_views", "3", "--seed", "4"])
    assert "cli" in capsys.readouterr().out
    assert len(read_records(tmp_path / "cli" / "test")) == 1
    with pytest.raises(FileExistsError):
        synthetic.main(["--output_dir", str(tmp_path), "--name", "cli"])


def test_cli_help_and_bad_arguments(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        synthetic.main(["--help"])
    assert exit_.value.code == 0
    assert "still_life" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        synthetic.main(["--output_dir", str(tmp_path), "--photo_size", "320by240"])
    with pytest.raises(ValueError, match="pose tables"):
        synthetic.main(["--output_dir", str(tmp_path), "--preset", "still_life",
                        "--num_views", "5"])
    with pytest.raises(ValueError, match="still_life"):
        synthetic.main(["--output_dir", str(tmp_path), "--zip", str(tmp_path / "z.zip")])
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("views", sorted(FRUIT_LAYOUTS))
def test_fruit_table_cameras_look_into_the_table(views):
    """In DeepMind's convention the seed's table points the corner cameras at
    the centre and the side cameras straight across."""
    x, y, z, yaw, pitch = FRUIT_LAYOUTS[views].T.astype(np.float64)
    direction = viewing_direction(yaw, pitch)
    corner = np.isclose(np.abs(x), 1) & np.isclose(np.abs(y), 1)
    to_centre = -np.stack([x, y], -1) / np.hypot(x, y)[:, None]
    np.testing.assert_allclose(np.sum(direction[corner, :2] * to_centre[corner], 1), 1,
                               atol=1e-3)
    across = np.where(np.isclose(np.abs(x[:, None]), 1), [[-1, 0]], [[0, -1]])
    across = across * np.sign(np.stack([x, y], -1))
    np.testing.assert_allclose(np.sum(direction[~corner, :2] * across[~corner], 1), 1,
                               atol=1e-3)
    assert np.all((0 <= yaw) & (yaw < 2 * np.pi)) and np.all(z == 0) and np.all(pitch == 0)


def test_object_masks_cover_the_subjects_and_nothing_else():
    """A red ball (the subject) on a grey box (not a subject): the mask is
    set exactly where the ball shows."""
    room = synthetic.Room([-1, -1, 0], [1, 1, 1.5], [GREY] * 6)
    ball = synthetic.Ellipsoid([0, 0, 0.35], [0.2] * 3, RED)
    box = synthetic.Box([0, 0, 0.075], [0.4, 0.4, 0.075], GREY)
    scene = synthetic.Scene(room, [box, ball], (0.6, 0.0, 1.4), ambient=0.5,
                            fov_y=0.9, subjects=[ball])
    views, masks = synthetic.render(scene, [[-0.9, 0, 0.5, 0.0, -0.2]], 32, 32,
                                    with_masks=True)
    red = views[0, ..., 0].astype(int) > 2 * views[0, ..., 1].astype(int)
    assert masks.shape == (1, 32, 32) and set(np.unique(masks)) == {0, 255}
    np.testing.assert_array_equal(masks[0] == 255, red)
    assert 0.05 < red.mean() < 0.5
    np.testing.assert_array_equal(views, synthetic.render(scene, [[-0.9, 0, 0.5, 0, -0.2]],
                                                          32, 32))


def test_records_state_the_cameras_angle_and_where_the_surfaces_lie(tmp_path):
    """Every record carries the generator's field of view and a depth range
    from its rendered surfaces: the fruit, seen by every camera, lies
    inside it."""
    synthetic.generate_dataset(str(tmp_path), "fruit", "still_life", 3, 1,
                               image_size=16, seed=4, num_workers=1)
    for index, path in enumerate(sorted((tmp_path / "fruit" / "train").glob("*.tfrecord"))):
        for record in tf.io.tf_record_iterator(str(path)):
            feature = tf.train.Example.FromString(record).features.feature
            np.testing.assert_allclose(feature["field_of_view"].float_list.value,
                                       [np.radians(45)], rtol=1e-6)
            near, far = feature["depth_range"].float_list.value
            assert 0 < near < far
    for index in range(3):
        scene, poses = synthetic.make_scene("still_life", 4, "train", index, 3, None)
        near, far = synthetic.surface_depth_range(scene, poses)
        forward = camera_axes_np(encode_poses_np(poses))[0]
        for fruit in scene.subjects:
            depths = np.einsum("vk,vk->v", np.asarray(fruit.center) - poses[:, :3], forward)
            assert np.all((near < depths) & (depths < far)), (near, far, depths)
