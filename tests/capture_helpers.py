"""The real apple capture's true cameras, and writers that lay them out as
users have them: a NeRF transforms.json or a COLMAP model (text, or binary
written by pycolmap), each in its tool's own convention."""
import json
import os
import random
import shutil

import numpy as np
import pytest

from data_provider.photo_source import natural_sort_key

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APPLE = os.path.join(REPO, "..", "shared", "data", "real", "apple")


# The truth, in PyTorch3D's convention.

@pytest.fixture(scope="module")
def apple():
    """(photo names in sorted order, true centres C (N, 3), PyTorch3D R (N, 3, 3))."""
    cameras = os.path.join(APPLE, "gt_cameras.npz")
    if not os.path.isfile(cameras):
        pytest.skip(f"the real apple capture is not at {os.path.normpath(APPLE)} "
                    "(../shared/data/real/apple relative to the repo root)")
    names = sorted((name for name in os.listdir(APPLE) if name.endswith(".jpg")),
                   key=natural_sort_key)
    with np.load(cameras) as truth:
        rotations = truth["gtR"].astype(np.float64)
        translations = truth["gtT"].astype(np.float64)
    assert len(names) == len(rotations) == 20
    # Snap the float32 matrices to exact rotations, as CameraSet does, so
    # that every format below carries the same truth to double precision.
    u, _, vt = np.linalg.svd(rotations)
    rotations = u @ vt
    # Row vectors: X_cam = X_world @ R + T, so the centre is -R @ T.
    centres = -np.einsum("nij,nj->ni", rotations, translations)
    return names, centres, rotations


def opencv_from_pytorch3d(rotations):
    """Camera-to-world with OpenCV axes: PyTorch3D's camera x is left and y
    up, so right = -R[:, 0] and down = -R[:, 1]; forward stays R[:, 2]."""
    return np.stack([-rotations[:, :, 0], -rotations[:, :, 1], rotations[:, :, 2]],
                    axis=2)


# Writers, each in its tool's own convention.

def write_transforms(path, names, centres, rotations, order):
    """A transforms.json with OpenGL camera-to-world matrices (x right, y up,
    looking along -z), frames in `order`; every other file_path has no
    extension and every third starts with './'."""
    frames = []
    for rank, index in enumerate(order):
        opengl = np.stack([-rotations[index][:, 0], rotations[index][:, 1],
                           -rotations[index][:, 2]], axis=1)
        matrix = np.eye(4)
        matrix[:3, :3], matrix[:3, 3] = opengl, centres[index]
        file_path = names[index] if rank % 2 else os.path.splitext(names[index])[0]
        frames.append({"file_path": ("./" if rank % 3 == 0 else "") + file_path,
                       "transform_matrix": matrix.tolist()})
    with open(path, "w") as handle:
        json.dump({"camera_angle_x": 0.8, "frames": frames}, handle)


def colmap_extrinsics(centres, rotations):
    """World-to-camera (R, t) with COLMAP's axes (x right, y down, z forward):
    the rows of R are those axes in world coordinates, and t = -R C."""
    world_to_camera = np.stack([-rotations[:, :, 0], -rotations[:, :, 1],
                                rotations[:, :, 2]], axis=1)
    return world_to_camera, -np.einsum("nij,nj->ni", world_to_camera, centres)


def quaternion_wxyz(matrix):
    """Unit quaternion (w, x, y, z) of a rotation matrix (Shepperd's method)."""
    m = matrix
    trace = np.trace(m)
    if trace > 0:
        s = 2 * np.sqrt(1 + trace)
        q = [s / 4, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s]
    else:
        i = int(np.argmax(np.diag(m)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2 * np.sqrt(1 + m[i, i] - m[j, j] - m[k, k])
        q = np.empty(4)
        q[0] = (m[k, j] - m[j, k]) / s
        q[1 + i], q[1 + j], q[1 + k] = s / 4, (m[j, i] + m[i, j]) / s, (m[k, i] + m[i, k]) / s
    return np.asarray(q) * np.sign(q[0] or 1.0)


def write_text_model(folder, names, world_to_camera_R, t, width, height, focal,
                     points=None):
    """A COLMAP text model (cameras.txt, images.txt, points3D.txt) with one
    PINHOLE camera; images in the order given, with ids 1..N in that order."""
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "cameras.txt"), "w") as handle:
        handle.write("# CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]\n"
                     f"1 PINHOLE {width} {height} {focal!r} {focal!r} "
                     f"{width / 2!r} {height / 2!r}\n")
    with open(os.path.join(folder, "images.txt"), "w") as handle:
        handle.write("# IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME\n"
                     "#   POINTS2D[] as (X, Y, POINT3D_ID)\n")
        for image_id, (name, rotation, translation) in enumerate(
                zip(names, world_to_camera_R, t), start=1):
            values = " ".join(repr(float(value)) for value in
                              [*quaternion_wxyz(rotation), *translation])
            # Alternate images with and without observations: an empty
            # points2D line must still be read as that image's second line.
            observations = "10.5 20.5 1 30.0 40.0 -1" if image_id % 2 else ""
            handle.write(f"{image_id} {values} 1 {name}\n{observations}\n")
    with open(os.path.join(folder, "points3D.txt"), "w") as handle:
        handle.write("# POINT3D_ID, X, Y, Z, R, G, B, ERROR, TRACK[]\n")
        for point_id, xyz in enumerate(() if points is None else points, start=1):
            coordinates = " ".join(repr(float(value)) for value in xyz)
            handle.write(f"{point_id} {coordinates} 200 100 50 0.5 1 0 2 1\n")


def write_binary_model(folder, names, world_to_camera_R, t, width, height, focal,
                       points):
    """The same model in COLMAP's binary format, written by COLMAP's own code
    (pycolmap), with image ids in the order given, keypoints and tracks."""
    pycolmap = pytest.importorskip("pycolmap")
    reconstruction = pycolmap.Reconstruction()
    reconstruction.add_camera_with_trivial_rig(pycolmap.Camera.create_from_model_name(
        1, "PINHOLE", focal, width, height))
    for image_id, (name, rotation, translation) in enumerate(
            zip(names, world_to_camera_R, t), start=1):
        image = pycolmap.Image(name=name, keypoints=np.tile([[10.5, 20.5]], (len(points), 1)),
                               camera_id=1, image_id=image_id)
        reconstruction.add_image_with_trivial_frame(
            image, pycolmap.Rigid3d(pycolmap.Rotation3d(rotation), translation))
    for index, xyz in enumerate(points):
        track = pycolmap.Track()
        track.add_element(1, index)
        track.add_element(2, index)
        reconstruction.add_point3D(xyz, track, np.array([200, 100, 50], np.uint8))
    os.makedirs(folder, exist_ok=True)
    reconstruction.write_binary(folder)
    assert os.path.isfile(os.path.join(folder, "images.bin"))


def apple_points(count=7):
    return np.random.RandomState(3).uniform(-2, 2, (count, 3))


def lay_out(tmp_path, apple, kind):
    """A scene folder as users have it; returns (root, scene_dir, order of
    the model's entries). COLMAP: scene/images/*.jpg + scene/sparse/0/;
    transforms.json: scene/transforms.json + scene/frame*.jpg."""
    names, centres, rotations = apple
    order = list(range(len(names)))
    random.Random(7).shuffle(order)
    scene = tmp_path / "capture" / "scene"
    photo_dir = scene / ("images" if kind.startswith("colmap") else "")
    photo_dir.mkdir(parents=True)
    for name in names:
        shutil.copy(os.path.join(APPLE, name), photo_dir / name)
    if kind == "transforms":
        write_transforms(scene / "transforms.json", names, centres, rotations, order)
    else:
        world_to_camera, translations = colmap_extrinsics(centres[order], rotations[order])
        writer = write_text_model if kind == "colmap_text" else write_binary_model
        writer(str(scene / "sparse" / "0"), [names[i] for i in order], world_to_camera,
               translations, 1066, 1896, 1500.0, points=apple_points())
    return tmp_path / "capture", "scene"
