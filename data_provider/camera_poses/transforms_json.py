"""Camera poses from a NeRF `transforms.json` (instant-ngp, nerfstudio, capture apps).

Each frame's `transform_matrix` is a rigid camera-to-world 4x4 matrix in
OpenGL camera axes (x right, y up, looking along -z); its `file_path` is
relative to the json's folder, with or without the image extension. The
focal length (`fl_x`/`fl_y` with `w`/`h`, or `camera_angle_x`), at the top
level or overridden per frame, is read for each frame's field of view
(camera_poses.intrinsics); the tools' own scene scaling does not matter once
the cameras are normalised into the GQN frame.
"""
import collections
import json
import posixpath

import numpy as np

from data_provider.camera_poses.frame import ROTATION_TOLERANCE, rotation_error
from data_provider.camera_poses.intrinsics import transforms_focal
from data_provider.camera_poses.posed_photos import build_posed_photos, scene_files
from data_provider.photo_source import IMAGE_EXTENSIONS, InputError

TRANSFORMS_FILE = "transforms.json"
# OpenGL camera axes (right, up, backward) -> OpenCV axes (right, down, forward).
_GL_TO_CV = np.diag([1.0, -1.0, -1.0])


def transforms_path(scene_dir):
    """Where a scene's transforms.json sits, as a source-relative path."""
    return posixpath.join(scene_dir, TRANSFORMS_FILE) if scene_dir else TRANSFORMS_FILE


def read_transforms_scene(source, scene_dir, files):
    """PosedPhotos of the scene folder `scene_dir` from its transforms.json.

    `files` is the source's file list (source.list_files()); the json is read
    through `source`, so folders and zips behave alike. Raises InputError
    naming the json (and the frame) for anything it cannot pair.
    """
    json_name = transforms_path(scene_dir)
    if json_name not in set(files):
        raise InputError(f"{json_name}: not found (scene folder "
                         f"{scene_dir or 'at the root'} has no {TRANSFORMS_FILE})")
    _, data = next(iter(source.read_many([json_name])))
    try:
        content = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as error:
        raise InputError(f"{json_name}: not valid JSON: {error}")
    frames = content.get("frames") if isinstance(content, dict) else None
    if not isinstance(frames, list) or not frames:
        raise InputError(f"{json_name}: needs a non-empty list 'frames' at the top "
                         "level (NeRF transforms.json layout)")
    matcher = _PhotoMatcher(scene_files(files, scene_dir))
    pairs, first_frame, absent = [], {}, []
    for index, entry in enumerate(frames):
        where = f"{json_name}: frame {index}"
        if not isinstance(entry, dict) or "file_path" not in entry \
                or "transform_matrix" not in entry:
            raise InputError(f"{where}: needs 'file_path' and 'transform_matrix', "
                             f"got {_short(entry)}")
        file_path = entry["file_path"]
        if not isinstance(file_path, str) or not file_path.strip():
            raise InputError(f"{where}: file_path must be a path string, got "
                             f"{file_path!r}")
        where = f"{json_name}: frame {index} ({file_path})"
        centre, rotation = _camera_of(entry["transform_matrix"], where)
        focal = transforms_focal(frame_intrinsics(content, entry), where)
        photo = matcher.find(posixpath.join(scene_dir, file_path), where)
        if photo is None:
            absent.append(file_path)
            continue
        if photo in first_frame:
            raise InputError(f"{where}: photo {photo} is named twice, by frames "
                             f"{first_frame[photo]} and {index}")
        first_frame[photo] = index
        pairs.append((photo, centre, rotation, focal))
    return build_posed_photos(scene_files(files, scene_dir), pairs, points=None,
                              model_file=json_name, source_label=json_name,
                              absent=absent)


def frame_intrinsics(content, entry):
    """A frame's intrinsics keys: the top level's, overridden by the frame's
    own; a frame that states its own focal length (fl_x or camera_angle_x)
    takes none of the top level's focal keys."""
    focal_keys = ("fl_x", "fl_y", "camera_angle_x", "camera_angle_y")
    inherited = {key: value for key, value in content.items() if key != "frames"}
    if any(key in entry for key in ("fl_x", "camera_angle_x")):
        inherited = {key: value for key, value in inherited.items() if key not in focal_keys}
    return {**inherited, **entry}


def _camera_of(value, where):
    """(centre, OpenCV camera-to-world rotation) of one transform_matrix."""
    try:
        matrix = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{where}: transform_matrix is not a 4x4 matrix of "
                         f"numbers: {_short(value)}")
    if matrix.shape != (4, 4):
        raise InputError(f"{where}: transform_matrix must be 4x4, got shape "
                         f"{matrix.shape}: {_short(value)}")
    if not np.isfinite(matrix).all():
        raise InputError(f"{where}: transform_matrix has non-finite values: "
                         f"{matrix.tolist()}")
    if np.abs(matrix[3] - [0, 0, 0, 1]).max() > ROTATION_TOLERANCE:
        raise InputError(f"{where}: transform_matrix's last row must be 0 0 0 1, "
                         f"got {matrix[3].tolist()}")
    error, det = rotation_error(matrix[:3, :3])
    if error > ROTATION_TOLERANCE or det < 0:
        raise InputError(f"{where}: transform_matrix's 3x3 part "
                         f"{matrix[:3, :3].tolist()} is not a rotation "
                         f"(|R^T R - I| = {error:.3g}, det = {det:.3g}); NeRF "
                         "camera-to-world matrices are rigid")
    return matrix[:3, 3], matrix[:3, :3] @ _GL_TO_CV


class _PhotoMatcher:
    """Finds the photo a file_path means: the exact file, else the file whose
    extension differs from the path's only in case, else the file named by
    the path plus an image extension (any case); None when there is none."""

    def __init__(self, names):
        self._names = set(names)
        self._by_stem = collections.defaultdict(list)
        self._by_folded_extension = collections.defaultdict(list)
        for name in names:
            stem, extension = posixpath.splitext(name)
            if extension.lower() in IMAGE_EXTENSIONS:
                self._by_stem[stem].append(name)
                self._by_folded_extension[stem, extension.lower()].append(name)

    def find(self, path, where):
        path = posixpath.normpath(path.replace("\\", "/"))
        if path in self._names:
            return path
        stem, extension = posixpath.splitext(path)
        candidates = self._by_folded_extension.get((stem, extension.lower()), [])
        if not candidates:
            candidates = self._by_stem.get(path, [])
        if len(candidates) > 1:
            raise InputError(f"{where}: ambiguous, several photos match "
                             f"{path}: {sorted(candidates)}")
        return candidates[0] if candidates else None


def _short(value, limit=200):
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
