"""Camera poses from a COLMAP sparse model (text or binary), read without COLMAP.

An image entry holds the world-to-camera pose `QW QX QY QZ TX TY TZ`:
X_cam = R X_world + t, camera axes x right, y down, z forward (the CameraSet's
own), so the centre is -R^T t and camera-to-world is R^T. Each image names
its camera in cameras.*, whose focal length gives the frame's field of view
(camera_poses.intrinsics; the camera may describe another resolution than
the photos, and is scaled to them). The parsers are written from COLMAP's
documented formats, so reading needs no pycolmap.
"""
import posixpath
import struct

import numpy as np

from data_provider.camera_poses.intrinsics import (COLMAP_CAMERA_MODELS, COLMAP_MODEL_IDS,
                                                   colmap_focal)
from data_provider.camera_poses.posed_photos import build_posed_photos, scene_files
from data_provider.photo_source import InputError

_FORMATS = ("bin", "txt")  # COLMAP itself prefers binary when both exist
_IMAGE_RECORD = struct.Struct("<I7dI")  # image id, qvec, tvec, camera id
_COUNT = struct.Struct("<Q")
_POINT2D_BYTES = 24  # double x, double y, int64 point3D id
_POINT_RECORD = struct.Struct("<Q3d3BdQ")  # id, xyz, rgb, error, track length
_TRACK_ELEMENT_BYTES = 8  # uint32 image id, uint32 point2D index
_CAMERA_RECORD = struct.Struct("<iiQQ")  # camera id, model id, width, height
_PARAM = struct.Struct("<d")


def find_model(files, scene_dir):
    """The folder (source-relative; '' for the root) of the scene's COLMAP
    model, looked for in sparse/0/, sparse/ and the scene folder in that
    order, or None when there is none. Compare the result with `is None`."""
    names = set(files)
    for folder in (posixpath.join(scene_dir, "sparse", "0"),
                   posixpath.join(scene_dir, "sparse"), scene_dir):
        if _model_format(names, folder):
            return folder
    return None


def _model_format(names, folder):
    for extension in _FORMATS:
        if all(posixpath.join(folder, f"{kind}.{extension}") in names
               for kind in ("images", "cameras")):
            return extension
    return None


def read_colmap_scene(source, scene_dir, files):
    """PosedPhotos of the scene folder `scene_dir` from its COLMAP model.

    Model image names are relative to the image folder: each resolves to
    `<scene>/images/<name>`, else `<model>/<name>`, else `<scene>/<name>`,
    the first that exists. Photos beside the posed ones with no model entry
    are returned as `unposed`, and entries whose photo is in none of those
    places as `absent`, not errors. Raises InputError naming the
    model file (and the line or record, and the photo) for bad input.
    """
    model = find_model(files, scene_dir)
    if model is None:
        raise InputError(f"{scene_dir or 'the input root'}: no COLMAP model found "
                         "(images.txt + cameras.txt or images.bin + cameras.bin in "
                         "sparse/0/, sparse/ or the scene folder)")
    names = set(files)
    extension = _model_format(names, model)
    images_file = posixpath.join(model, f"images.{extension}")
    cameras_file = posixpath.join(model, f"cameras.{extension}")
    points_file = posixpath.join(model, f"points3D.{extension}")
    wanted = [images_file, cameras_file] + ([points_file] if points_file in names else [])
    contents = dict(source.read_many(wanted))
    binary = extension == "bin"
    parse_images = _parse_images_bin if binary else _parse_images_txt
    parse_cameras = _parse_cameras_bin if binary else _parse_cameras_txt
    parse_points = _parse_points_bin if binary else _parse_points_txt
    entries = parse_images(images_file, contents[images_file])
    if not entries:
        raise InputError(f"{images_file}: the model has no images")
    focals = parse_cameras(cameras_file, contents[cameras_file])
    points = parse_points(points_file, contents[points_file]) \
        if points_file in contents else None

    pairs, seen, absent = [], {}, []
    for where, name, qvec, tvec, camera_id in entries:
        if camera_id not in focals:
            raise InputError(f"{images_file}: {where} ({name}): camera {camera_id} "
                             f"is not in {cameras_file}")
        rotation = _rotation_of(qvec, images_file, where, name)
        if not np.isfinite(tvec).all():
            raise InputError(f"{images_file}: {where} ({name}): non-finite "
                             f"translation {tvec.tolist()}")
        photo = _resolve(names, scene_dir, model, name)
        if photo is None:
            absent.append(name)
            continue
        if photo in seen:
            raise InputError(f"{images_file}: {where}: photo {name} is already "
                             f"posed by {seen[photo]}")
        seen[photo] = where
        pairs.append((photo, -rotation.T @ tvec, rotation.T, focals[camera_id]))
    return build_posed_photos(scene_files(files, scene_dir), pairs, points=points,
                              model_file=images_file, source_label=images_file,
                              absent=absent)


def _resolve(names, scene_dir, model, name):
    for folder in (posixpath.join(scene_dir, "images"), model, scene_dir):
        path = posixpath.normpath(posixpath.join(folder, name))
        if path in names:
            return path
    return None


def _rotation_of(qvec, images_file, where, name):
    """World-to-camera rotation of COLMAP's (w, x, y, z) quaternion, which
    COLMAP normalises itself, so any non-zero length is accepted."""
    norm = np.linalg.norm(qvec)
    if not np.isfinite(qvec).all() or norm < 1e-12:
        raise InputError(f"{images_file}: {where} ({name}): quaternion "
                         f"{qvec.tolist()} is not a rotation")
    w, x, y, z = qvec / norm
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])


def _text_lines(path, data):
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: not a text file: {error}")
    return text.splitlines()


def _parse_images_txt(path, data):
    """[(where, name, qvec, tvec)]. After each image line comes its points2D
    line, which may be empty (an image without observations), as COLMAP
    reads it."""
    lines = _text_lines(path, data)
    entries, index = [], 0
    while index < len(lines):
        line, number = lines[index].strip(), index + 1
        index += 1
        if not line or line.startswith("#"):
            continue
        fields = line.split(None, 9)
        try:
            if len(fields) != 10:
                raise ValueError(f"{len(fields)} fields")
            int(fields[0])
            camera_id = int(fields[8])
            values = np.array([float(value) for value in fields[1:8]])
        except ValueError:
            raise InputError(f"{path}: line {number}: malformed image line {line!r} "
                             "(expected IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME)")
        if index < len(lines) and len(lines[index].split()) % 3:
            raise InputError(f"{path}: line {index + 1}: malformed points2D line of "
                             f"image {fields[9]} ({len(lines[index].split())} values, "
                             "expected X Y POINT3D_ID triples)")
        index += 1
        entries.append((f"line {number}", fields[9], values[:4], values[4:], camera_id))
    return entries


def _unpack(layout, data, offset, path, what):
    if offset + layout.size > len(data):
        raise InputError(f"{path}: truncated in {what} (needs {offset + layout.size} "
                         f"bytes, the file has {len(data)})")
    return layout.unpack_from(data, offset), offset + layout.size


def _parse_images_bin(path, data):
    (count,), offset = _unpack(_COUNT, data, 0, path, "the image count")
    entries = []
    for record in range(count):
        what = f"image record {record}"
        fields, offset = _unpack(_IMAGE_RECORD, data, offset, path, what)
        end = data.find(b"\0", offset)
        if end < 0:
            raise InputError(f"{path}: truncated in {what} (the name never ends)")
        try:
            name = data[offset:end].decode("utf-8")
        except UnicodeDecodeError as error:
            raise InputError(f"{path}: {what}: image name is not UTF-8: {error}")
        (num_points,), offset = _unpack(_COUNT, data, end + 1, path, f"{what} ({name})")
        offset += num_points * _POINT2D_BYTES
        if offset > len(data):
            raise InputError(f"{path}: truncated in {what} ({name}): its {num_points} "
                             f"points2D need {offset} bytes, the file has {len(data)}")
        values = np.array(fields[1:8], dtype=np.float64)
        entries.append((what, name, values[:4], values[4:], fields[8]))
    return entries


def _parse_cameras_txt(path, data):
    """{camera id: Focal} from cameras.txt (CAMERA_ID MODEL WIDTH HEIGHT PARAMS[])."""
    focals = {}
    for number, line in enumerate(_text_lines(path, data), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        where = f"{path}: line {number}"
        try:
            if len(fields) < 4:
                raise ValueError(f"{len(fields)} fields")
            camera_id, width, height = int(fields[0]), int(fields[2]), int(fields[3])
            params = [float(value) for value in fields[4:]]
        except ValueError:
            raise InputError(f"{where}: malformed camera line {line!r} (expected "
                             "CAMERA_ID MODEL WIDTH HEIGHT PARAMS[])")
        focals[camera_id] = colmap_focal(fields[1], width, height, params, where)
    return focals


def _parse_cameras_bin(path, data):
    (count,), offset = _unpack(_COUNT, data, 0, path, "the camera count")
    focals = {}
    for record in range(count):
        what = f"camera record {record}"
        (camera_id, model_id, width, height), offset = _unpack(
            _CAMERA_RECORD, data, offset, path, what)
        model = COLMAP_MODEL_IDS.get(model_id)
        if model is None:
            raise InputError(f"{path}: {what}: unknown camera model id {model_id}")
        params = []
        for _ in range(COLMAP_CAMERA_MODELS[model][0]):
            (value,), offset = _unpack(_PARAM, data, offset, path, what)
            params.append(value)
        focals[camera_id] = colmap_focal(model, width, height, params, f"{path}: {what}")
    return focals


def _parse_points_txt(path, data):
    points = []
    for number, line in enumerate(_text_lines(path, data), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        try:
            if len(fields) < 8 or (len(fields) - 8) % 2:
                raise ValueError(f"{len(fields)} fields")
            points.append([float(value) for value in fields[1:4]])
        except ValueError:
            raise InputError(f"{path}: line {number}: malformed point line {line!r} "
                             "(expected POINT3D_ID X Y Z R G B ERROR and "
                             "IMAGE_ID POINT2D_IDX pairs)")
    return np.array(points, dtype=np.float64).reshape(-1, 3)


def _parse_points_bin(path, data):
    (count,), offset = _unpack(_COUNT, data, 0, path, "the point count")
    if count * _POINT_RECORD.size > len(data) - offset:
        raise InputError(f"{path}: truncated: {count} points need at least "
                         f"{offset + count * _POINT_RECORD.size} bytes, the file "
                         f"has {len(data)}")
    points = np.empty((count, 3))
    for record in range(count):
        fields, offset = _unpack(_POINT_RECORD, data, offset, path,
                                 f"point record {record}")
        points[record] = fields[1:4]
        offset += fields[8] * _TRACK_ELEMENT_BYTES
        if offset > len(data):
            raise InputError(f"{path}: truncated in point record {record}: its track "
                             f"of {fields[8]} needs {offset} bytes, the file has "
                             f"{len(data)}")
    return points
