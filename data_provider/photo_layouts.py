"""Which camera pose each photo gets: the fruit preset or a user's manifest.

The fruit still-life set has no pose files: a scene's pose table follows from
how many photos its SceneN folder holds (12 or 8, data_provider.fruit_poses),
and photos take the table's poses in a stated order (natural file-name order,
or EXIF capture time). A folder of any other size is reported and skipped,
never mis-paired. A user's own photos instead come with a CSV manifest that
names each photo's scene and pose, so no ordering is involved.
"""
import collections
import csv
import dataclasses
import math
import posixpath
import re
from typing import List, Optional, Tuple

import numpy as np

from data_provider.fruit_poses import FRUIT_LAYOUTS
from data_provider.photo_source import InputError, natural_sort_key
from gqn.poses import decode_poses_np

ORDER_NAME = "name"
ORDER_EXIF_TIME = "exif_time"
PHOTO_ORDERS = (ORDER_NAME, ORDER_EXIF_TIME)
ANGLE_UNITS = ("degrees", "radians")

SKIP_OUTSIDE_SCENE = "not directly in a SceneN folder"
SKIP_IN_SKIPPED_SCENE = "in a skipped scene"
SKIP_NOT_IN_MANIFEST = "not in the manifest"

_SCENE_FOLDER = re.compile(r"^scene\d+$", re.IGNORECASE)
_RAW_COLUMNS = ("x", "y", "z", "yaw", "pitch")
_ENCODED_COLUMNS = ("x", "y", "z", "sin_yaw", "cos_yaw", "sin_pitch", "cos_pitch")
_ORDER_WORDS = {
    ORDER_NAME: "natural file-name order (IMG_9 before IMG_10)",
    ORDER_EXIF_TIME: "EXIF capture-time order (ties in natural file-name order)",
}


@dataclasses.dataclass(frozen=True)
class ScenePlan:
    """One scene to convert: its photos and their raw (V, 5) poses.

    With a fruit-preset plan ordered by EXIF time, `photos` are in name
    order until the capture times are known; `poses` are in view order.
    Scenes posed from the photos' own cameras also carry, per photo, the
    rotation that levels it (`rolls`, degrees for Pillow's Image.rotate)
    and the focal length the pose source states (`focals`, a
    camera_poses.intrinsics.Focal or None), how their cameras were brought
    into the GQN frame (`frame`, for dataset_info.json) and the scene's 3-D
    points in that frame, if any.
    """
    name: str
    photos: Tuple[str, ...]
    poses: np.ndarray
    pose_source: str = "fruit table"
    rolls: Optional[Tuple[float, ...]] = None
    frame: Optional[dict] = None
    points: Optional[np.ndarray] = None
    focals: Optional[tuple] = None


@dataclasses.dataclass(frozen=True)
class Plan:
    scenes: List[ScenePlan]
    # Photos to reorder by EXIF capture time before pairing, or None when
    # `scenes` are already paired (name order, or a manifest).
    reorder: Optional[str]
    pairing: str  # one sentence saying how photos were paired with poses
    skipped_photos: collections.Counter  # reason -> count
    skipped_scenes: List[Tuple[str, str]]  # (scene, reason)
    # What the summary should tell about the scenes that convert: photos
    # left out and why, how well structure from motion registered.
    notes: List[str] = dataclasses.field(default_factory=list)


def plan_fruit_scenes(photos, order=ORDER_NAME):
    """Plan for SceneN folders in the fruit layout; `photos` in any order."""
    if order not in PHOTO_ORDERS:
        raise InputError(f"photo order must be one of {PHOTO_ORDERS}, got {order!r}")
    folders = collections.defaultdict(list)
    skipped_photos = collections.Counter()
    for name in photos:
        folder = posixpath.dirname(name)
        if _SCENE_FOLDER.match(posixpath.basename(folder)):
            folders[folder].append(name)
        else:
            skipped_photos[SKIP_OUTSIDE_SCENE] += 1
    scenes, skipped_scenes = [], []
    for folder in sorted(folders, key=natural_sort_key):
        names = sorted(folders[folder], key=natural_sort_key)
        layout = FRUIT_LAYOUTS.get(len(names))
        if layout is None:
            known = " or ".join(str(size) for size in sorted(FRUIT_LAYOUTS, reverse=True))
            skipped_scenes.append(
                (folder, f"{len(names)} photos, but the fruit layouts have {known}"))
            skipped_photos[SKIP_IN_SKIPPED_SCENE] += len(names)
        else:
            scenes.append(ScenePlan(folder, tuple(names), layout))
    pairing = (f"fruit preset: the photos of each SceneN folder, in "
               f"{_ORDER_WORDS[order]}, take the 12- or 8-view poses in turn")
    return Plan(scenes, order if order == ORDER_EXIF_TIME else None, pairing,
                skipped_photos, skipped_scenes)


def plan_manifest_scenes(photos, manifest_path, angle_unit="degrees"):
    """Plan from a CSV manifest naming each photo's scene and pose."""
    rows = read_manifest(manifest_path, angle_unit)
    available = set(photos)
    scenes = collections.defaultdict(list)
    for line, scene, image, pose in rows:
        if image not in available:
            raise InputError(f"{manifest_path} line {line}: photo {image!r} is "
                             "not an image file in the input")
        scenes[scene].append((image, pose))
    plans, skipped_photos = [], collections.Counter()
    for scene in sorted(scenes, key=natural_sort_key):
        images, poses = zip(*scenes[scene])
        plans.append(ScenePlan(scene, images, np.array(poses, dtype=np.float32),
                               pose_source="manifest"))
    if len(available) > len(rows):
        skipped_photos[SKIP_NOT_IN_MANIFEST] = len(available) - len(rows)
    pairing = (f"manifest {manifest_path}: each photo takes the pose on its row "
               f"(angles in {angle_unit}); views in row order")
    return Plan(plans, None, pairing, skipped_photos, [])


def read_manifest(path, angle_unit="degrees"):
    """[(line, scene, image, raw pose (5,) in radians)] from a manifest CSV.

    Columns: scene, image (path inside the input), x, y, z and either yaw,
    pitch (in `angle_unit`) or the 7-d form sin_yaw, cos_yaw, sin_pitch,
    cos_pitch.
    """
    if angle_unit not in ANGLE_UNITS:
        raise InputError(f"angle unit must be one of {ANGLE_UNITS}, got {angle_unit!r}")
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            records = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"manifest {path}: cannot read: {error}")
    if not records:
        raise InputError(f"manifest {path} is empty")
    header = [column.strip().lower() for column in records[0]]
    pose_columns = _pose_columns(path, header)
    rows, seen = [], {}
    for line, record in enumerate(records[1:], start=2):
        if not any(cell.strip() for cell in record):
            continue
        values = dict(zip(header, (cell.strip() for cell in record)))
        scene, image = values.get("scene", ""), values.get("image", "")
        if not scene or not image:
            raise InputError(f"{path} line {line}: scene and image must not be empty")
        if image in seen:
            raise InputError(f"{path} line {line}: photo {image!r} already "
                             f"listed on line {seen[image]}")
        seen[image] = line
        numbers = [_number(path, line, column, values.get(column, ""))
                   for column in pose_columns]
        rows.append((line, scene, image, _raw_pose(path, line, numbers, angle_unit)))
    if not rows:
        raise InputError(f"manifest {path} has a header but no photo rows")
    return rows


def _pose_columns(path, header):
    if {"scene", "image"} <= set(header):
        for columns in (_RAW_COLUMNS, _ENCODED_COLUMNS):
            if set(columns) <= set(header):
                return columns
    raise InputError(
        f"manifest {path}: the header must name scene, image and either "
        f"{', '.join(_RAW_COLUMNS)} or {', '.join(_ENCODED_COLUMNS)}; "
        f"got {', '.join(header)}")


def _number(path, line, column, text):
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise InputError(f"{path} line {line}: {column} is {text!r}, not a number")
    return value


def _raw_pose(path, line, numbers, angle_unit):
    if len(numbers) == len(_RAW_COLUMNS):
        x, y, z, yaw, pitch = numbers
        if angle_unit == "degrees":
            yaw, pitch = math.radians(yaw), math.radians(pitch)
        return np.array([x, y, z, yaw, pitch], dtype=np.float32)
    for sine, cosine in (numbers[3:5], numbers[5:7]):
        if abs(math.hypot(sine, cosine) - 1.0) > 0.02:
            raise InputError(f"{path} line {line}: ({sine}, {cosine}) is not a "
                             "(sin, cos) pair of one angle")
    return decode_poses_np(numbers)
