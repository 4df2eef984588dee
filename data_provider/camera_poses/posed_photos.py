"""What every pose reader returns for one scene: its photos and their cameras."""
import dataclasses
import posixpath
from typing import Optional, Tuple

import numpy as np

from data_provider.camera_poses.frame import CameraSet
from data_provider.camera_poses.intrinsics import Focal
from data_provider.photo_source import InputError, natural_sort_key, skip_reason


@dataclasses.dataclass(frozen=True, eq=False)
class PosedPhotos:
    """One scene's posed photos in natural file-name order.

    `photos` are source-relative paths and `cameras[i]` belongs to
    `photos[i]`, as does `focals[i]` (an intrinsics.Focal, or None where
    the file states no focal length). `points` are (P, 3) world points of
    the model, or None.
    `model_file` names the file the poses came from; `unposed` lists the
    photos beside the posed ones that the file does not mention, and
    `absent` the photos the file names that are not in the input (capture
    tools drop blurred frames after writing the file); the converter
    reports both and leaves them out.
    """
    photos: Tuple[str, ...]
    cameras: CameraSet
    focals: Tuple[Optional[Focal], ...]
    points: Optional[np.ndarray]
    model_file: str
    unposed: Tuple[str, ...]
    absent: Tuple[str, ...] = ()


def scene_files(files, scene_dir):
    """The files at or below `scene_dir` ('' is the root)."""
    if not scene_dir:
        return list(files)
    prefix = scene_dir.rstrip("/") + "/"
    return [name for name in files if name.startswith(prefix)]


def listed(names, limit=5):
    """'a, b, c' or 'a, b, c, ... (7 more)': the first few of many names."""
    names = list(names)
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


def build_posed_photos(files, pairs, points, model_file, source_label, absent=()):
    """PosedPhotos from (photo, centre, camera_to_world, focal or None)
    `pairs` in any order; `absent`: the photos the file names that are not
    in the input. InputError when fewer than two photos are posed.

    Photos in the same folders as the posed ones (and nowhere else, so
    downscaled copies such as nerfstudio's images_2/ are not listed) that no
    pair names become `unposed`.
    """
    if len(pairs) < 2:
        missing = (f"; {len(absent)} photo(s) it names are not in the input: "
                   f"{listed(absent)}" if absent else "")
        raise InputError(f"{model_file}: {len(pairs)} photo(s) posed{missing}; a scene "
                         "needs at least 2")
    pairs = sorted(pairs, key=lambda pair: natural_sort_key(pair[0]))
    photos = tuple(pair[0] for pair in pairs)
    cameras = CameraSet(centres=np.array([pair[1] for pair in pairs]).reshape(-1, 3),
                        camera_to_world=np.array([pair[2] for pair in pairs]
                                                 ).reshape(-1, 3, 3),
                        source=source_label)
    posed = set(photos)
    folders = {posixpath.dirname(photo) for photo in photos}
    unposed = tuple(sorted((name for name in files
                            if posixpath.dirname(name) in folders
                            and name not in posed and skip_reason(name) is None),
                           key=natural_sort_key))
    return PosedPhotos(photos=photos, cameras=cameras,
                       focals=tuple(pair[3] for pair in pairs), points=points,
                       model_file=model_file, unposed=unposed, absent=tuple(absent))
