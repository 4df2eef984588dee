"""Pose import (transforms.json, COLMAP text and binary) and the one GQN frame.

The real capture is the CO3D apple in ../shared/data/real/apple: its true
cameras are written in each tool's own convention, laid out as users have
them, read back through a folder and a zip, and must come out paired with
the right photos and equal to the truth up to one similarity transform. The
roll sign is proved by projecting points, and the Pillow rotation rule used
there is itself checked against Pillow.
"""
import json
import math
import os
import struct
import zipfile

import numpy as np
import pytest
from PIL import Image

from data_provider.camera_poses import colmap_model, transforms_json
from data_provider.camera_poses.frame import (
    DEFAULT_RADIUS, CameraSet, nearest_point_to_axes, normalise_cameras,
    similarity_fit, similarity_residual)
from data_provider.photo_source import FolderSource, InputError, ZipSource
from gqn.poses import viewing_direction

from tests.capture_helpers import apple  # noqa: F401  (a fixture)
from tests.capture_helpers import (apple_points, lay_out, opencv_from_pytorch3d,
                                   write_text_model)

Z = np.array([0.0, 0.0, 1.0])


def test_apple_truth_cameras_look_at_the_apple_from_above(apple):
    _, centres, rotations = apple
    towards_origin = -centres / np.linalg.norm(centres, axis=1, keepdims=True)
    assert (np.einsum("ni,ni->n", rotations[:, :, 2], towards_origin) > 0.97).all()
    camera_to_world = opencv_from_pytorch3d(rotations)
    assert np.allclose(np.linalg.det(camera_to_world), 1.0, atol=1e-5)
    # A phone walked around a table looks down at the apple: once up is +z,
    # every camera is above the object and has negative pitch.
    normalised = normalise_cameras(CameraSet(centres, camera_to_world))
    assert (normalised.raw_poses[:, 2] > 0).all()
    assert (normalised.raw_poses[:, 4] < 0).all()


def open_as(root, scene_dir, source_kind, tmp_path):
    """A FolderSource on `root` (scene_dir as given), or a ZipSource of the
    scene folder's contents at the archive root (scene_dir '')."""
    if source_kind == "folder":
        return FolderSource(str(root)), scene_dir
    archive = tmp_path / "capture.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for folder, _, files in os.walk(root / scene_dir):
            for file_name in files:
                path = os.path.join(folder, file_name)
                handle.write(path, os.path.relpath(path, root / scene_dir).replace(os.sep, "/"))
    return ZipSource(str(archive)), ""


def read_scene(kind, source, scene_dir):
    files = source.list_files()
    if kind == "transforms":
        return transforms_json.read_transforms_scene(source, scene_dir, files)
    return colmap_model.read_colmap_scene(source, scene_dir, files)


@pytest.mark.parametrize("source_kind", ["folder", "zip"])
@pytest.mark.parametrize("kind", ["transforms", "colmap_text", "colmap_binary"])
def test_apple_cameras_read_back_paired_and_normalised(tmp_path, apple, kind, source_kind):
    names, centres, rotations = apple
    root, scene_dir = lay_out(tmp_path, apple, kind)
    source, scene_dir = open_as(root, scene_dir, source_kind, tmp_path)
    posed = read_scene(kind, source, scene_dir)

    folder = "images/" if kind.startswith("colmap") else ""
    prefix = f"{scene_dir}/" if scene_dir else ""
    assert posed.photos == tuple(prefix + folder + name for name in names)
    assert posed.unposed == ()
    # Entries were shuffled in the file: each photo must carry its own camera.
    assert np.allclose(posed.cameras.centres, centres, atol=1e-9 * 23)
    assert np.allclose(posed.cameras.camera_to_world, opencv_from_pytorch3d(rotations),
                       atol=1e-6)
    if kind == "transforms":
        assert posed.points is None
        assert posed.model_file == prefix + "transforms.json"
    else:
        assert np.allclose(posed.points, apple_points())
        extension = "txt" if kind == "colmap_text" else "bin"
        assert posed.model_file == f"{prefix}sparse/0/images.{extension}"

    # The files' known focal lengths: camera_angle_x 0.8 across the photos'
    # width (1066, their short side); a PINHOLE camera of 1500 pixels at the
    # photos' size.
    known = math.degrees(0.8) if kind == "transforms" else \
        math.degrees(2 * math.atan(533 / 1500))
    for focal in posed.focals:
        assert focal.short_side_degrees((1066, 1896)) == pytest.approx(known, abs=1e-9)

    normalised = normalise_cameras(posed.cameras)
    positions = normalised.raw_poses[:, :3].astype(np.float64)
    # float32 poses: about 1e-7 of the radius each.
    assert similarity_residual(centres, positions).max() < 1e-5 * DEFAULT_RADIUS
    scale, rotation, _ = similarity_fit(centres, positions)
    directions = viewing_direction(normalised.raw_poses[:, 3], normalised.raw_poses[:, 4])
    assert np.abs(rotation @ rotations[:, :, 2].T - directions.T).max() < 1e-5
    assert np.isclose(scale, normalised.frame.scale, rtol=1e-5)


def test_apple_frame_puts_object_at_origin_up_on_z_and_first_camera_at_azimuth_pi(apple):
    _, centres, rotations = apple
    radius = 0.7
    normalised = normalise_cameras(CameraSet(centres, opencv_from_pytorch3d(rotations)),
                                   radius=radius)
    frame = normalised.frame
    # A phone is held about level: once up is +z the cameras' right axes
    # are near horizontal and the photos need little de-rolling (the mean
    # up vector would tilt the scene by 17.5 degrees, rolls up to 29).
    right = np.einsum("ij,njk->nik", frame.rotation,
                      opencv_from_pytorch3d(rotations))[:, :, 0]
    assert np.abs(right[:, 2]).max() < np.sin(np.radians(12))
    assert normalised.max_abs_roll_degrees < 12
    assert np.sqrt(np.mean(normalised.roll_degrees ** 2)) < 7
    # The least-squares point of the true optical axes, solved here directly.
    projectors = np.eye(3) - np.einsum("ni,nj->nij", rotations[:, :, 2], rotations[:, :, 2])
    apple_centre = np.linalg.lstsq(projectors.reshape(-1, 3),
                                   np.einsum("nij,nj->ni", projectors, centres).ravel(),
                                   rcond=None)[0]
    assert np.abs(frame.apply(apple_centre[None])).max() < 1e-9
    positions = frame.apply(centres)
    assert np.isclose(np.linalg.norm(positions, axis=1).mean(), radius, rtol=1e-12)
    assert np.allclose(normalised.raw_poses[:, :3], positions, atol=1e-6)
    assert positions[0, 0] < 0 and abs(positions[0, 1]) < 1e-9
    # The first camera looks roughly at the apple, hence yaw near 0.
    yaw = normalised.raw_poses[0, 3]
    assert min(yaw, 2 * np.pi - yaw) < np.radians(10)
    info = json.loads(json.dumps(frame.to_json_dict()))
    assert np.allclose(np.array(info["rotation"]), frame.rotation)
    assert np.isclose(info["scale"], frame.scale)


# Roll: sign proved by projection.

def rotate_pixels_like_pillow(pixels, angle_degrees, centre):
    """Where Image.rotate(angle_degrees) moves content at `pixels` (P, 2),
    (x right, y down): counter-clockwise as displayed, about `centre`."""
    angle = np.radians(angle_degrees)
    dx, dy = (pixels - centre).T
    return centre + np.stack([dx * np.cos(angle) + dy * np.sin(angle),
                              -dx * np.sin(angle) + dy * np.cos(angle)], axis=1)


def test_rotate_pixels_like_pillow_matches_pillow():
    width, height = 121, 91
    image = np.zeros((height, width), np.float32)
    image[18:21, 89:92] = 255.0  # a 3x3 dot centred on pixel (90, 19)
    for angle in (20.0, -35.0):
        rotated = np.asarray(Image.fromarray(image).rotate(
            angle, resample=Image.Resampling.BILINEAR), np.float64)
        rows, columns = np.mgrid[:height, :width]
        # Pixel (i, j) covers [i, i+1) x [j, j+1): its centre is at +0.5.
        found = np.array([((columns + 0.5) * rotated).sum(),
                          ((rows + 0.5) * rotated).sum()]) / rotated.sum()
        expected = rotate_pixels_like_pillow(np.array([[90.5, 19.5]]), angle,
                                             np.array([width / 2, height / 2]))[0]
        assert np.abs(found - expected).max() < 0.2, (angle, found, expected)


def project(points, centre, camera_to_world, focal, principal_point):
    """Pinhole pixels (P, 2) of world points for OpenCV camera axes."""
    camera = (points - centre) @ camera_to_world
    assert (camera[:, 2] > 0).all()
    return focal * camera[:, :2] / camera[:, 2:] + principal_point


def rolled_cameras(count, roll_degrees, seed):
    """Cameras around the origin looking at it from random heights, each
    rolled about its optical axis by the given angle (world z up)."""
    rng = np.random.RandomState(seed)
    azimuth = rng.uniform(0, 2 * np.pi, count)
    elevation = rng.uniform(-0.3, 1.0, count)
    centres = 3 * np.stack([np.cos(elevation) * np.cos(azimuth),
                            np.cos(elevation) * np.sin(azimuth), np.sin(elevation)], 1)
    rotations = []
    for centre, roll in zip(centres, np.radians(roll_degrees)):
        forward = -centre / np.linalg.norm(centre)
        right = np.cross(forward, Z)
        right /= np.linalg.norm(right)
        down = np.cross(forward, right)
        rotations.append(np.stack([np.cos(roll) * right + np.sin(roll) * down,
                                   -np.sin(roll) * right + np.cos(roll) * down,
                                   forward], axis=1))
    return centres, np.array(rotations)


def test_roll_degrees_rotate_photos_into_the_level_cameras_view():
    applied = np.array([20.0, -20.0, 12.0, -7.5, 0.0, 19.0, -3.0, 5.0])
    centres, rotations = rolled_cameras(len(applied), applied, seed=1)
    # Move the world by a similarity so the frame has work to do.
    tilt = looking_at_origin([[1.0, 2.0, 3.0]])[0]
    world_centres = 5.0 * centres @ tilt.T + [1.0, -2.0, 0.5]
    world_rotations = np.einsum("ij,njk->nik", tilt, rotations)
    normalised = normalise_cameras(CameraSet(world_centres, world_rotations))
    frame = normalised.frame

    rng = np.random.RandomState(2)
    width, height, focal = 640.0, 480.0, 500.0
    principal_point = np.array([width / 2, height / 2])
    for index in range(len(applied)):
        # Points in front of the camera, around its optical axis.
        forward = world_rotations[index][:, 2]
        points = (world_centres[index] + 15 * forward
                  + rng.uniform(-4, 4, (50, 3)))
        photo = project(points, world_centres[index], world_rotations[index],
                        focal, principal_point)
        # The level camera with the same optical axis, in the GQN frame.
        level_forward = frame.rotation @ forward
        level_right = np.cross(level_forward, Z)
        level_right /= np.linalg.norm(level_right)
        level = np.stack([level_right, np.cross(level_forward, level_right),
                          level_forward], axis=1)
        level_view = project(frame.apply(points), frame.apply(world_centres[index:index + 1])[0],
                             level, focal, principal_point)
        straightened = rotate_pixels_like_pillow(photo, normalised.roll_degrees[index],
                                                 principal_point)
        assert np.abs(straightened - level_view).max() < 1e-6 * focal, index
    # A camera rolled by +r (its right axis turned towards its down axis) is
    # straightened by -r; the estimated up is the rolled cameras' mean, so
    # only roughly.
    assert np.abs(normalised.roll_degrees + applied).max() < 10
    assert normalised.max_abs_roll_degrees == np.abs(normalised.roll_degrees).max()


def test_up_is_exact_for_level_cameras_on_one_side_at_several_heights():
    """Level cameras over a half ring at uneven heights and pitches: their
    right axes are horizontal, so up is found exactly, where their mean up
    vector leans towards the object."""
    rng = np.random.RandomState(4)
    azimuth = rng.uniform(0, np.pi, 9)
    height = rng.uniform(0.5, 2.5, 9)
    centres = np.stack([2 * np.cos(azimuth), 2 * np.sin(azimuth), height], 1)
    tilt = looking_at_origin([[1.0, 2.0, 3.0]])[0]
    cameras = CameraSet(centres @ tilt.T, np.einsum("ij,njk->nik", tilt,
                                                    looking_at_origin(centres)))
    normalised = normalise_cameras(cameras)
    assert np.abs(normalised.frame.rotation @ tilt @ Z - Z).max() < 1e-9
    assert np.abs(normalised.roll_degrees).max() < 1e-6
    mean_up = -cameras.down.mean(axis=0)
    assert np.degrees(np.arccos(mean_up @ (tilt @ Z) / np.linalg.norm(mean_up))) > 5


def test_level_cameras_have_zero_roll_and_inward_first_yaw():
    # A symmetric ring, so the mean up vector is exactly the world's z.
    azimuth = np.radians(np.arange(0, 360, 60))
    centres = np.stack([2 * np.cos(azimuth), 2 * np.sin(azimuth), np.full(6, 1.5)], 1)
    normalised = normalise_cameras(CameraSet(centres, looking_at_origin(centres)))
    assert np.abs(normalised.roll_degrees).max() < 1e-9
    yaw = float(normalised.raw_poses[0, 3])
    assert min(yaw, 2 * np.pi - yaw) < 1e-6
    # Cameras above the object look down: negative pitch (DeepMind).
    assert np.allclose(normalised.raw_poses[:, 4], -np.arctan2(1.5, 2), atol=1e-6)


# Degenerate sets and the CameraSet checks.

def looking_at_origin(centres, up=Z):
    rotations = []
    for centre in np.asarray(centres, np.float64):
        forward = -centre / np.linalg.norm(centre)
        right = np.cross(forward, up)
        right /= np.linalg.norm(right)
        rotations.append(np.stack([right, np.cross(forward, right), forward], axis=1))
    return np.array(rotations)


def test_degenerate_camera_sets_raise_input_error():
    one = [[3.0, 0, 0]]
    with pytest.raises(InputError, match="1 camera"):
        normalise_cameras(CameraSet(one, looking_at_origin(one)))
    parallel = np.array([[3.0, 0, 0], [3.0, 1, 0], [3.0, 0, 1]])
    with pytest.raises(InputError, match="parallel"):
        normalise_cameras(CameraSet(parallel, np.repeat(looking_at_origin(one), 3, 0)))
    opposite = np.array([[3.0, 0, 0], [0, 3.0, 0]])
    rotations = looking_at_origin(opposite)
    rotations[1][:, :2] *= -1  # upside down: the up vectors cancel
    with pytest.raises(InputError, match="up vectors cancel"):
        normalise_cameras(CameraSet(opposite, rotations))
    with pytest.raises(InputError, match="radius"):
        normalise_cameras(CameraSet(opposite, looking_at_origin(opposite)), radius=0)


def test_camera_set_rejects_bad_shapes_values_and_rotations():
    centres = np.array([[3.0, 0, 0], [0, 3.0, 0], [-3.0, 0, 0]])
    rotations = looking_at_origin(centres)
    with pytest.raises(InputError, match=r"mine\.json.*\(N, 3\)"):
        CameraSet(centres[:, :2], rotations, source="mine.json")
    with pytest.raises(InputError, match=r"\(3, 3, 3\)"):
        CameraSet(centres, rotations[:2])
    bad = centres.copy()
    bad[1, 2] = np.nan
    with pytest.raises(InputError, match="camera 1 has non-finite"):
        CameraSet(bad, rotations)
    stretched = rotations.copy()
    stretched[2] *= 1.01
    with pytest.raises(InputError, match="camera 2.*not a rotation"):
        CameraSet(centres, stretched)
    mirrored = rotations.copy()
    mirrored[0][:, 0] *= -1
    with pytest.raises(InputError, match=r"camera 0.*det = -1"):
        CameraSet(centres, mirrored)
    # Rounding noise is snapped to an exact rotation.
    noisy = CameraSet(centres, rotations + 1e-5)
    assert np.allclose(np.einsum("nji,njk->nik", noisy.camera_to_world,
                                 noisy.camera_to_world), np.eye(3), atol=1e-12)


def test_similarity_fit_recovers_a_known_transform():
    rng = np.random.RandomState(5)
    points = rng.normal(size=(10, 3))
    rotation = looking_at_origin([[1.0, 2.0, 3.0]])[0]
    moved = 2.5 * points @ rotation.T + [1.0, 2.0, 3.0]
    scale, found, translation = similarity_fit(points, moved)
    assert np.isclose(scale, 2.5) and np.allclose(found, rotation)
    assert np.allclose(translation, [1.0, 2.0, 3.0])
    assert similarity_residual(points, moved).max() < 1e-12
    assert np.allclose(nearest_point_to_axes([[1.0, 0, 0], [0, 1.0, 0]],
                                             [[-1.0, 0, 0], [0, -1.0, 0]]), 0)


# Bad transforms.json input.

def small_transforms_scene(tmp_path, frames=None):
    """scene/transforms.json over three 1-byte photos; returns the source."""
    scene = tmp_path / "scene"
    scene.mkdir()
    for index in range(3):
        (scene / f"frame{index}.jpg").write_bytes(b"x")
    if frames is not None:
        (scene / "transforms.json").write_text(
            frames if isinstance(frames, str) else json.dumps({"frames": frames}))
    return FolderSource(str(tmp_path))


def good_frames():
    centres = np.array([[3.0, 0, 0], [0, 3.0, 0], [-3.0, 0, 0]])
    frames = []
    for index, (centre, rotation) in enumerate(zip(centres, looking_at_origin(centres))):
        matrix = np.eye(4)
        matrix[:3, :3] = rotation @ np.diag([1.0, -1.0, -1.0])
        matrix[:3, 3] = centre
        frames.append({"file_path": f"frame{index}", "transform_matrix": matrix.tolist()})
    return frames


def read_transforms(source):
    return transforms_json.read_transforms_scene(source, "scene", source.list_files())


def test_transforms_json_reads_extension_case_and_lists_unposed(tmp_path):
    frames = good_frames()[:2]
    frames[1]["file_path"] = "frame1.JPG"
    source = small_transforms_scene(tmp_path, frames)
    (tmp_path / "scene" / "notes.txt").write_text("not a photo")
    posed = read_transforms(source)
    assert posed.photos == ("scene/frame0.jpg", "scene/frame1.jpg")
    assert posed.unposed == ("scene/frame2.jpg",)


@pytest.mark.parametrize("change, expected", [
    (lambda frames: "{not json", r"scene/transforms\.json: not valid JSON"),
    (lambda frames: {"frames": []}, r"scene/transforms\.json: needs a non-empty list 'frames'"),
    (lambda frames: [frames[0], {"file_path": "frame1"}],
     r"scene/transforms\.json: frame 1: needs 'file_path' and 'transform_matrix'.*frame1"),
    (lambda frames: [dict(frames[0], transform_matrix=frames[0]["transform_matrix"][:3])],
     r"scene/transforms\.json: frame 0 \(frame0\): transform_matrix must be 4x4, "
     r"got shape \(3, 4\)"),
    (lambda frames: [frames[0], dict(frames[1], transform_matrix=[[float("nan")] * 4] * 4)],
     r"scene/transforms\.json: frame 1 \(frame1\): transform_matrix has non-finite.*nan"),
    (lambda frames: [dict(frames[0], transform_matrix=(
        np.diag([2.0, 2.0, 2.0, 1.0]) @ frames[0]["transform_matrix"]).tolist())],
     r"scene/transforms\.json: frame 0 \(frame0\): .*3x3 part \[\[.*2\.0.* is not a rotation"),
    (lambda frames: [dict(frames[0], transform_matrix=np.diag([1.0, 1.0, 0.0, 1.0]).tolist())],
     r"frame 0 \(frame0\): .*not a rotation .*det = 0"),
    (lambda frames: frames + [dict(frames[1], file_path="frame1.jpg")],
     r"scene/transforms\.json: frame 3 \(frame1\.jpg\): photo scene/frame1\.jpg is named "
     r"twice, by frames 1 and 3"),
])
def test_bad_transforms_json_names_the_file_and_value(tmp_path, change, expected):
    changed = change(good_frames())
    if isinstance(changed, dict):
        changed = json.dumps(changed)
    source = small_transforms_scene(tmp_path, changed)
    with pytest.raises(InputError, match=expected):
        read_transforms(source)


def short_side_angles(posed, photo_size):
    return [focal.short_side_degrees(photo_size) for focal in posed.focals]


def test_transforms_json_focal_length_at_the_top_level_or_per_frame(tmp_path):
    """fl_x at the top level, measured at twice the photos' size; a frame's
    own camera_angle_x; and the same cameras against portrait photos."""
    frames = good_frames()
    frames[1]["camera_angle_x"] = 1.0
    frames[2].update(fl_x=400.0, fl_y=410.0)
    source = small_transforms_scene(tmp_path)
    (tmp_path / "scene" / "transforms.json").write_text(json.dumps(
        {"fl_x": 500.0, "w": 1280, "h": 960, "frames": frames}))
    posed = read_transforms(source)
    landscape = [math.degrees(2 * math.atan(240 / 250)),
                 math.degrees(2 * math.atan(240 / (320 / math.tan(0.5)))),
                 math.degrees(2 * math.atan(240 / 205))]
    np.testing.assert_allclose(short_side_angles(posed, (640, 480)), landscape, rtol=1e-12)
    # Portrait photos of a camera the file measured in landscape: its y
    # axis runs along their width.
    np.testing.assert_allclose(short_side_angles(posed, (480, 640)), landscape, rtol=1e-12)
    assert [focal.source for focal in posed.focals] == [
        "transforms.json fl_x", "transforms.json camera_angle_x", "transforms.json fl_x"]
    # camera_angle_x without w and h: across the photo's own width.
    (tmp_path / "scene" / "transforms.json").write_text(json.dumps(
        {"camera_angle_x": 0.9, "frames": good_frames()}))
    np.testing.assert_allclose(short_side_angles(read_transforms(source), (480, 640)),
                               [math.degrees(0.9)] * 3, rtol=1e-12)
    # No focal length at all: nothing to read (the converter then asks EXIF).
    (tmp_path / "scene" / "transforms.json").write_text(json.dumps({"frames": good_frames()}))
    assert read_transforms(source).focals == (None, None, None)


@pytest.mark.parametrize("fields, expected", [
    ({"fl_x": "wide", "w": 640, "h": 480}, r"frame 0 \(frame0\): fl_x must be a positive "
                                           r"number, got 'wide'"),
    ({"fl_x": 500.0}, r"frame 0 \(frame0\): fl_x is in pixels .* w and h are missing"),
    ({"camera_angle_x": 4.0}, r"frame 0 \(frame0\): camera_angle_x is in radians and must "
                              r"be below pi"),
    ({"camera_angle_x": 0.8, "w": -3, "h": 480}, r"frame 0 \(frame0\): w must be a "
                                                 r"positive number, got -3"),
])
def test_bad_transforms_intrinsics_name_the_frame_and_value(tmp_path, fields, expected):
    source = small_transforms_scene(tmp_path)
    (tmp_path / "scene" / "transforms.json").write_text(json.dumps(
        {**fields, "frames": good_frames()}))
    with pytest.raises(InputError, match=r"scene/transforms\.json: " + expected):
        read_transforms(source)


def test_transforms_json_frames_without_photos_are_listed_as_absent(tmp_path):
    """Capture tools drop blurred photos after writing the file: the frames
    whose photo is gone are listed, the rest are posed; a file that leaves
    fewer than two photos posed is refused, naming them."""
    frames = good_frames()
    source = small_transforms_scene(tmp_path, frames + [
        dict(frames[0], file_path="./frame9.png"), dict(frames[1], file_path="gone")])
    posed = read_transforms(source)
    assert posed.photos == ("scene/frame0.jpg", "scene/frame1.jpg", "scene/frame2.jpg")
    assert posed.absent == ("./frame9.png", "gone")
    (tmp_path / "one").mkdir()
    source = small_transforms_scene(tmp_path / "one", [
        frames[0], dict(frames[1], file_path="gone1"), dict(frames[2], file_path="gone2")])
    with pytest.raises(InputError, match=r"scene/transforms\.json: 1 photo\(s\) posed; 2 "
                                         r"photo\(s\) it names are not in the input: gone1, "
                                         r"gone2; a scene needs at least 2"):
        read_transforms(source)


def test_missing_transforms_json_names_it(tmp_path):
    source = small_transforms_scene(tmp_path)
    with pytest.raises(InputError, match=r"scene/transforms\.json: not found"):
        read_transforms(source)


# COLMAP models: where they are found and bad input.

def test_find_model_prefers_sparse_0_then_sparse_then_the_folder():
    both = ["s/images.txt", "s/cameras.txt", "s/sparse/images.bin", "s/sparse/cameras.bin",
            "s/sparse/0/images.txt", "s/sparse/0/cameras.txt"]
    assert colmap_model.find_model(both, "s") == "s/sparse/0"
    assert colmap_model.find_model(both[:4], "s") == "s/sparse"
    assert colmap_model.find_model(both[:2], "s") == "s"
    assert colmap_model.find_model(["images.bin", "cameras.bin"], "") == ""
    # images without cameras: a half-copied model is no model.
    assert colmap_model.find_model(["s/sparse/0/images.bin", "s/images.txt"], "s") is None


def small_colmap_scene(tmp_path, names=("a.jpg", "b.jpg", "c.jpg"), photos=None,
                       photo_folder="images"):
    """scene/<photo_folder>/ photos + scene/sparse/0 text model of `names`."""
    centres = np.array([[3.0, 0, 0], [0, 3.0, 0], [-3.0, 0, 0]])[:len(names)]
    world_to_camera = np.transpose(looking_at_origin(centres), (0, 2, 1))
    translations = -np.einsum("nij,nj->ni", world_to_camera, centres)
    model = tmp_path / "scene" / "sparse" / "0"
    write_text_model(str(model), list(names), world_to_camera, translations, 64, 48, 50.0,
                     points=[[0.0, 0.0, 0.0]])
    folder = tmp_path / "scene" / photo_folder
    folder.mkdir(parents=True, exist_ok=True)
    for name in (names if photos is None else photos):
        (folder / name).write_bytes(b"x")
    return FolderSource(str(tmp_path)), model


def read_colmap(source):
    return colmap_model.read_colmap_scene(source, "scene", source.list_files())


def test_colmap_photos_beside_the_model_and_unposed_photos(tmp_path):
    source, _ = small_colmap_scene(tmp_path, names=("a.jpg", "b.jpg"),
                                   photos=("a.jpg", "b.jpg", "z.jpg"), photo_folder=".")
    posed = read_colmap(source)
    assert posed.photos == ("scene/a.jpg", "scene/b.jpg")
    assert posed.unposed == ("scene/z.jpg",)
    assert posed.points.shape == (1, 3)


def test_colmap_model_photos_absent_are_listed(tmp_path):
    source, _ = small_colmap_scene(tmp_path, photos=("a.jpg", "c.jpg"))
    posed = read_colmap(source)
    assert posed.photos == ("scene/images/a.jpg", "scene/images/c.jpg")
    assert posed.absent == ("b.jpg",)
    source, _ = small_colmap_scene(tmp_path / "one", photos=("c.jpg",))
    with pytest.raises(InputError, match=r"scene/sparse/0/images\.txt: 1 photo\(s\) posed; "
                                         r"2 photo\(s\) it names are not in the input: "
                                         r"a\.jpg, b\.jpg"):
        read_colmap(source)


def test_colmap_malformed_lines_name_the_line(tmp_path):
    source, model = small_colmap_scene(tmp_path)
    images = model / "images.txt"
    lines = images.read_text().splitlines()
    lines[4] = "2 0.5 0.5 oops 0.5 1 2 3 1 b.jpg"
    images.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"images\.txt: line 5: malformed image line "
                                         r"'2 0\.5 0\.5 oops"):
        read_colmap(source)
    lines[4] = "2 0 0 0 0 1 2 3 1 b.jpg"
    images.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"images\.txt: line 5 \(b\.jpg\): quaternion "
                                         r"\[0\.0, 0\.0, 0\.0, 0\.0\] is not a rotation"):
        read_colmap(source)
    source, model = small_colmap_scene(tmp_path / "points")
    (model / "points3D.txt").write_text("# header\n1 0.0 0.0\n")
    with pytest.raises(InputError, match=r"points3D\.txt: line 2: malformed point line "
                                         r"'1 0\.0 0\.0'"):
        read_colmap(source)


def test_colmap_duplicate_photo_names_both_entries(tmp_path):
    source, _ = small_colmap_scene(tmp_path, names=("a.jpg", "b.jpg", "a.jpg"),
                                   photos=("a.jpg", "b.jpg"))
    with pytest.raises(InputError, match=r"images\.txt: line 7: photo a\.jpg is already "
                                         r"posed by line 3"):
        read_colmap(source)


def test_colmap_binary_truncated_names_the_file(tmp_path, apple):
    root, scene_dir = lay_out(tmp_path, apple, "colmap_binary")
    source = FolderSource(str(root))
    model = root / scene_dir / "sparse" / "0"
    assert read_scene("colmap_binary", source, scene_dir).points.shape == (7, 3)
    for file_name, size in (("points3D.bin", 8 + 2 * 51), ("images.bin", 300)):
        data = (model / file_name).read_bytes()
        (model / file_name).write_bytes(data[:size])
        with pytest.raises(InputError, match=rf"sparse/0/{file_name}: truncated"):
            read_scene("colmap_binary", source, scene_dir)
        (model / file_name).write_bytes(data)
    (model / "images.bin").write_bytes(struct.pack("<Q", 5))
    with pytest.raises(InputError, match=r"images\.bin: truncated in image record 0"):
        read_scene("colmap_binary", source, scene_dir)


def write_cameras_txt(model, lines):
    (model / "cameras.txt").write_text("# CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]\n"
                                       + "\n".join(lines) + "\n")


def test_colmap_cameras_give_each_photo_its_focal_length(tmp_path):
    """Images name their cameras: a SIMPLE_RADIAL one at the photos' size
    and an OPENCV one at half of it, with fx and fy of its own."""
    source, model = small_colmap_scene(tmp_path)
    write_cameras_txt(model, ["1 SIMPLE_RADIAL 64 48 50.0 32 24 0.01",
                              "2 OPENCV 32 24 30.0 31.0 16 12 0.1 0.01 0 0"])
    images = model / "images.txt"
    lines = images.read_text().splitlines()
    lines[4] = lines[4].rsplit(" ", 2)[0] + " 2 b.jpg"  # b.jpg: camera 2
    images.write_text("\n".join(lines) + "\n")
    posed = read_colmap(source)
    np.testing.assert_allclose(
        short_side_angles(posed, (64, 48)),
        [math.degrees(2 * math.atan(24 / f)) for f in (50.0, 62.0, 50.0)], rtol=1e-12)
    assert [focal.source for focal in posed.focals] == [
        "COLMAP SIMPLE_RADIAL camera", "COLMAP OPENCV camera", "COLMAP SIMPLE_RADIAL camera"]


def test_colmap_binary_cameras_read_as_pycolmap_wrote_them(tmp_path):
    pycolmap = pytest.importorskip("pycolmap")
    reconstruction = pycolmap.Reconstruction()
    for camera_id, model_name, focal, params in (
            (1, "RADIAL", 200.0, [200.0, 160, 120, 0.01, 0.001]),
            (2, "FULL_OPENCV", 100.0, [100.0, 104.0, 80, 60] + [0.0] * 8)):
        camera = pycolmap.Camera.create_from_model_name(camera_id, model_name, focal,
                                                        320 // camera_id, 240 // camera_id)
        camera.params = params
        reconstruction.add_camera_with_trivial_rig(camera)
    for image_id, camera_id in ((1, 1), (2, 2)):
        image = pycolmap.Image(name=f"p{image_id}.jpg", camera_id=camera_id,
                               image_id=image_id)
        reconstruction.add_image_with_trivial_frame(
            image, pycolmap.Rigid3d(pycolmap.Rotation3d(np.eye(3)), [image_id, 0.0, 3.0]))
    model = tmp_path / "scene" / "sparse" / "0"
    model.mkdir(parents=True)
    reconstruction.write_binary(str(model))
    for image_id in (1, 2):
        (tmp_path / "scene" / f"p{image_id}.jpg").write_bytes(b"x")
    posed = read_colmap(FolderSource(str(tmp_path)))
    # At the photos' 640x480: camera 1 was measured at half that, camera 2
    # at a quarter; the angle runs along the short side (y: fy).
    np.testing.assert_allclose(short_side_angles(posed, (640, 480)),
                               [math.degrees(2 * math.atan(120 / 200)),
                                math.degrees(2 * math.atan(60 / 104))], rtol=1e-12)


@pytest.mark.parametrize("line, expected", [
    ("1 PINHOLE 64 48 50.0 50.0 32", r"a PINHOLE camera has 4 parameters, got 3"),
    ("1 MAGIC 64 48 50.0", r"unknown camera model 'MAGIC'"),
    ("1 EQUIRECTANGULAR 64 48 64 48", r"not a perspective camera"),
    ("1 PINHOLE 64 48 -5 50.0 32 24", r"focal length -5.0, 50.0 must be positive"),
    ("1 PINHOLE wide 48 50 50 32 24", r"malformed camera line"),
    ("7 PINHOLE 64 48 50 50 32 24", r"images\.txt: line \d+ \(a\.jpg\): camera 1 is not "
                                    r"in scene/sparse/0/cameras\.txt"),
])
def test_colmap_bad_cameras_name_the_file_and_value(tmp_path, line, expected):
    source, model = small_colmap_scene(tmp_path)
    write_cameras_txt(model, [line])
    with pytest.raises(InputError, match=expected):
        read_colmap(source)


def test_colmap_without_cameras_file_is_no_model(tmp_path):
    source, model = small_colmap_scene(tmp_path)
    (model / "cameras.txt").unlink()
    with pytest.raises(InputError, match=r"scene: no COLMAP model found"):
        read_colmap(source)
