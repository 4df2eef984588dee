"""COLMAP structure-from-motion through pycolmap (data_provider.camera_poses.sfm).

Poses from SfM are only defined up to a similarity (origin, rotation, scale),
so every accuracy check fits one similarity from the estimated camera centres
to the true ones and judges what is left:
- a textured synthetic still life with exactly known cameras (12 views at
  640x480): centres within 2% of the ring radius, optical axes and image-down
  axes within 2 degrees (COLMAP lands under 0.1% and 0.05 degrees here);
- the real CO3D apple capture (20 phone frames, ../shared/data/real/apple):
  at least 17 registered (issue 20's goal; 20 here with guided matching,
  13 with COLMAP's defaults), centres within 3% of the ring radius (1.8% at
  worst here) and optical axes within 3 degrees (0.7 here).
Each SfM runs once per module (5-30 s each on 2 shared cores, load-dependent).
"""
import io
import json
import os
import sys

import numpy as np
import pytest
from PIL import Image

pycolmap = pytest.importorskip(
    "pycolmap", reason="SfM tests need pycolmap, the optional 'sfm' extra: "
                       "pip install '.[sfm]'")

from data_provider import generated_captures, record_writer, synthetic  # noqa: E402
from data_provider.camera_poses import sfm  # noqa: E402
from data_provider.camera_poses.colmap_model import read_colmap_scene  # noqa: E402
from data_provider.camera_poses.frame import similarity_fit  # noqa: E402
from data_provider.fruit_poses import FRUIT_LAYOUTS  # noqa: E402
from data_provider.fruit_stills import ConversionOptions, convert  # noqa: E402
from data_provider.photo_source import FolderSource, InputError  # noqa: E402
from gqn.poses import viewing_direction  # noqa: E402
from tests.test_convert_fruit_stills import record_cameras, with_exif_focal  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APPLE = os.path.join(REPO, "..", "shared", "data", "real", "apple")
# The smallest long side that still registered 13 of the apple's 20 frames
# with margin (512 also did, 400 only 4); 1000 registers the same 13 in 2-4x
# the time.
APPLE_IMAGE_SIZE = 640
STILL_LIFE_SEED = 1
STILL_LIFE_SIZE = (640, 480)
EXIF_ORIENTATION = 0x0112
ROTATED_VIEWS = (2, 7)  # stored sideways with EXIF orientation 6, like phones do


def sideways_jpeg(view):
    """JPEG bytes of `view` stored rotated 90 degrees with EXIF orientation 6
    (display = rotate the stored pixels 90 degrees clockwise)."""
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6
    buffer = io.BytesIO()
    Image.fromarray(view).transpose(Image.Transpose.ROTATE_90).save(
        buffer, format="JPEG", quality=90, exif=exif.tobytes())
    return buffer.getvalue()


def colmap_cameras(model_dir):
    """{image name: (centre, camera-to-world rotation with columns right,
    down, forward)} of a COLMAP model, read by pycolmap."""
    cameras = {}
    for image in pycolmap.Reconstruction(model_dir).images.values():
        matrix = image.cam_from_world().matrix()
        rotation, translation = matrix[:, :3], matrix[:, 3]
        cameras[image.name] = (-rotation.T @ translation, rotation.T)
    return cameras


def angles_degrees(a, b):
    cosine = np.sum(a * b, axis=-1) / (np.linalg.norm(a, axis=-1)
                                       * np.linalg.norm(b, axis=-1))
    return np.degrees(np.arccos(np.clip(cosine, -1, 1)))


def aligned(estimated_centres, true_centres):
    """(fit (scale, rotation, translation), residual distances / ring radius)."""
    scale, rotation, translation = similarity_fit(estimated_centres, true_centres)
    mapped = scale * estimated_centres @ rotation.T + translation
    radius = np.linalg.norm(true_centres - true_centres.mean(0), axis=1).mean()
    return (scale, rotation, translation), \
        np.linalg.norm(mapped - true_centres, axis=1) / radius


@pytest.fixture(scope="module")
def still_life(tmp_path_factory):
    """SfM of a textured 12-view still life with known poses; photos named
    in a subfolder, two stored sideways with EXIF orientation, one a PNG."""
    poses = synthetic.photographed_from_above(FRUIT_LAYOUTS[12])
    scene = synthetic.still_life_scene(np.random.default_rng(STILL_LIFE_SEED))
    views = synthetic.render(scene, poses, *STILL_LIFE_SIZE, textured=True)
    photos = []
    for index, view in enumerate(views):
        if index in ROTATED_VIEWS:
            photos.append((f"images/IMG_{index + 1:04d}.jpg", sideways_jpeg(view)))
        elif index == 4:
            buffer = io.BytesIO()
            Image.fromarray(view).save(buffer, format="PNG")
            photos.append((f"images/IMG_{index + 1:04d}.png", buffer.getvalue()))
        else:
            photos.append((f"images/IMG_{index + 1:04d}.jpg",
                           record_writer.encode_jpeg(view, quality=90)))
    scene_dir = tmp_path_factory.mktemp("still_life")
    model_dir = os.path.join(scene_dir, "sparse", "0")
    result = sfm.estimate_scene(photos, model_dir, num_threads=2, scene="still_life")
    return {"poses": poses, "names": [name for name, _ in photos], "result": result,
            "scene_dir": str(scene_dir), "model_dir": model_dir, "photos": photos}


@pytest.fixture(scope="module")
def apple(tmp_path_factory):
    if not os.path.isdir(APPLE):
        pytest.skip(f"real apple capture not found at {os.path.normpath(APPLE)} "
                    "(../shared/data/real/apple relative to the repo root)")
    names = sorted(name for name in os.listdir(APPLE) if name.endswith(".jpg"))
    photos = []
    for name in names:
        with open(os.path.join(APPLE, name), "rb") as handle:
            photos.append((name, handle.read()))
    truth = np.load(os.path.join(APPLE, "gt_cameras.npz"))
    model_dir = os.path.join(tmp_path_factory.mktemp("apple"), "sparse")
    result = sfm.estimate_scene(photos, model_dir, max_image_size=APPLE_IMAGE_SIZE,
                                num_threads=2, scene=APPLE)
    return {"names": names, "R": truth["gtR"], "T": truth["gtT"], "result": result,
            "model_dir": model_dir}


def test_still_life_cameras_match_the_truth_up_to_a_similarity(still_life):
    result, poses, names = still_life["result"], still_life["poses"], still_life["names"]
    assert len(result.registered) >= 10, result
    assert result.registered == [name for name in names if name in result.registered]
    assert result.unregistered == [name for name in names
                                   if name not in result.registered]
    cameras = colmap_cameras(still_life["model_dir"])
    assert sorted(cameras) == sorted(result.registered)
    indices = [names.index(name) for name in result.registered]
    centres = np.array([cameras[name][0] for name in result.registered])
    rotations = np.array([cameras[name][1] for name in result.registered])
    (_, rotation, _), residual = aligned(centres, poses[indices, :3])
    assert residual.max() < 0.02, residual

    forward = viewing_direction(poses[indices, 3], poses[indices, 4])
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right, axis=1, keepdims=True)
    down = np.cross(forward, right)
    forward_error = angles_degrees(rotations[:, :, 2] @ rotation.T, forward)
    # Image-down axes catch a photo whose EXIF rotation was not applied.
    down_error = angles_degrees(rotations[:, :, 1] @ rotation.T, down)
    assert forward_error.max() < 2.0, forward_error
    assert down_error.max() < 2.0, down_error


def test_apple_capture_registers_and_matches_the_truth(apple):
    result = apple["result"]
    assert len(result.registered) >= 17, result
    assert len(result.registered) + len(result.unregistered) == 20
    assert result.num_points3d > 100
    cameras = colmap_cameras(apple["model_dir"])
    indices = [apple["names"].index(name) for name in result.registered]
    # PyTorch3D row vectors: X_cam = X_world R + T, so the centre is -R T.
    truth = -np.einsum("nij,nj->ni", apple["R"][indices], apple["T"][indices])
    estimated = np.array([cameras[name][0] for name in result.registered])
    (_, rotation, _), residual = aligned(estimated, truth)
    assert residual.max() < 0.03, residual
    forward = np.array([cameras[name][1][:, 2] for name in result.registered])
    error = angles_degrees(forward @ rotation.T, apple["R"][indices][:, :, 2])
    assert error.max() < 3.0, error


def test_the_model_is_complete_and_kept_for_reuse(still_life):
    model_dir = still_life["model_dir"]
    assert sfm.existing_model(model_dir)
    assert set(sfm.MODEL_FILES) <= set(os.listdir(model_dir))
    assert not sfm.existing_model(os.path.dirname(model_dir))
    # Nothing but the model next to it: the work folder is gone.
    assert os.listdir(os.path.dirname(model_dir)) == ["0"]
    with pytest.raises(InputError, match="already exists"):
        sfm.estimate_scene(still_life["photos"], model_dir, num_threads=2)
    assert sfm.existing_model(model_dir)


def test_the_colmap_reader_of_a_later_run_reads_the_model(still_life):
    """What `--poses colmap` (and a rerun of `--poses sfm`) sees: the model
    in <scene>/sparse/0 beside the photos, named as they were given."""
    scene_dir = still_life["scene_dir"]
    for name, data in still_life["photos"]:
        path = os.path.join(scene_dir, *name.split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(data)
    source = FolderSource(os.path.dirname(scene_dir))
    scene = os.path.basename(scene_dir)
    posed = read_colmap_scene(source, scene, source.list_files())
    registered = still_life["result"].registered
    assert posed.photos == tuple(f"{scene}/{name}" for name in registered)
    cameras = colmap_cameras(still_life["model_dir"])
    np.testing.assert_allclose(posed.cameras.centres,
                               [cameras[name][0] for name in registered], atol=1e-9)
    assert len(posed.points) == still_life["result"].num_points3d


def test_a_scene_without_features_fails_cleanly(tmp_path):
    white = record_writer.encode_jpeg(np.full((240, 320, 3), 255, np.uint8))
    model_dir = tmp_path / "Scene7" / "sparse"
    with pytest.raises(InputError, match="Scene7.*structure-from-motion"):
        sfm.estimate_scene([(f"IMG_{i}.jpg", white) for i in range(3)],
                           str(model_dir), num_threads=2,
                           scene=str(tmp_path / "Scene7"))
    assert not model_dir.exists()
    assert os.listdir(tmp_path / "Scene7") == []


def test_an_undecodable_photo_is_named(tmp_path):
    with pytest.raises(InputError, match="IMG_2.jpg: cannot decode"):
        sfm.estimate_scene([("IMG_2.jpg", b"not a jpeg")], str(tmp_path / "model"))
    assert os.listdir(tmp_path) == []


def test_require_pycolmap_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pycolmap", None)  # import now fails
    with pytest.raises(InputError, match=r"'sfm' extra.*pip install '\.\[sfm\]'"):
        sfm.require_pycolmap()


# A known focal length reaches COLMAP.

@pytest.fixture(scope="module")
def walk_photos():
    """([(name, JPEG)], poses, true focal length in pixels) of a 12-photo
    walk round a generated still life, 640x480 at 45 degrees across the
    short side."""
    photos, poses = generated_captures.photos(3, 12)
    return photos, poses, 240 / np.tan(np.radians(22.5))


def model_focal(model_dir):
    [camera] = pycolmap.Reconstruction(str(model_dir)).cameras.values()
    return camera.mean_focal_length()


def test_an_exif_focal_length_is_colmaps_prior(walk_photos, tmp_path):
    """Each photo's EXIF states the true focal length (FocalLength and the
    sensor's pixel pitch): it is COLMAP's prior, which bundle adjustment
    refines with the poses (and keeps within 0.5%)."""
    photos, _, focal = walk_photos
    stated = []
    for name, data in photos:
        image = Image.open(io.BytesIO(data))
        stated.append((name, with_exif_focal(image, focal_mm=4.0, pixels_per_cm=focal / 0.4)))
    result = sfm.estimate_scene(stated, str(tmp_path / "model"), 640, num_threads=2)
    assert len(result.registered) == 12
    assert result.focal_prior == ("EXIF FocalLength (4 mm) and the sensor's pixel pitch "
                                  "(FocalPlaneXResolution) (12 of 12 photos)")
    assert model_focal(tmp_path / "model") == pytest.approx(focal, rel=0.005)


def test_a_transforms_json_focal_length_is_kept_by_colmap(walk_photos, tmp_path):
    """`--poses sfm` on photos beside a transforms.json that states fl_x
    (3% longer than the truth, at twice the photos' size): the file's
    measured intrinsics are COLMAP's and stay so in the model; the records
    carry that camera's field of view."""
    photos, _, focal = walk_photos
    scene = tmp_path / "capture"
    scene.mkdir()
    for name, data in photos:
        (scene / name).write_bytes(data)
    stated = 1.03 * focal
    (scene / "transforms.json").write_text(json.dumps({
        "fl_x": 2 * stated, "w": 1280, "h": 960,
        "frames": [{"file_path": name, "transform_matrix": np.eye(4).tolist()}
                   for name, _ in photos]}))
    sfm_dir = tmp_path / "models"
    summary = convert(ConversionOptions(
        input_path=str(scene), output_dir=str(tmp_path / "out"), name="walk",
        image_size=32, poses="sfm", test_fraction=0.0, sfm_dir=str(sfm_dir), workers=1))
    assert summary.photos_written == 12
    assert model_focal(sfm_dir / "sparse" / "0") == pytest.approx(stated, rel=1e-9)
    assert "focal-length prior: transforms.json fl_x (12 of 12 photos)" in summary.format()
    [(angles, _)] = record_cameras(summary.output_path, "train")
    np.testing.assert_allclose(angles, [2 * np.arctan(240 / stated * 32 / 36)], rtol=1e-6)
