"""What is known about each record set: DeepMind's seven, or our own.

DeepMind's sets are described by a fixed table (from their data_reader.py).
Sets that this package writes (synthetic scenes, converted photos) carry a
`dataset_info.json` beside their `train/` and `test/` folders instead, which
also records that scenes may have different view counts (the fruit photos
have 12 or 8), which views are held out of training, and how each scene's
cameras were brought into the GQN frame.
"""
import dataclasses
import json
import os
import re
from typing import Optional

import tensorflow.compat.v1 as tf

INFO_FILE_NAME = "dataset_info.json"
SPLITS = ("train", "test")
# `0001-of-2160.tfrecord`: shard index from 1, zero-padded to len(str(N)).
SHARD_FILE_PATTERN = re.compile(r"^(\d+)-of-(\d+)\.tfrecord$")


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """Shape facts about one record set.

    `sequence_size` is the largest number of views a scene offers as
    context and training views; `min_views` the smallest (equal for every
    DeepMind set). With `holdout_views` K > 0 every test record holds its
    scene's context views followed by K views that the train split never
    saw (the train record of the same scene has only the context views):
    evaluation asks for each of those K as a query. `scene_frames` maps a
    scene name to how its cameras were brought into the GQN frame
    (data_provider.camera_poses.frame), for sets converted from photos.
    With `object_masks`, test records also hold each view's object mask
    (the fruit of a still life, not its table), so that evaluation can
    measure the error on the object apart from the wall and the table.

    Cameras beyond their poses (data_provider.scene_geometry): records
    written by this package carry each view's field of view and the
    scene's depth range; `scene_cameras` repeats them per scene name for
    people and previews ({scene: {"field_of_view_degrees", "field_of_view_source",
    "depth_range", "depth_range_source"}}). `field_of_view_degrees` (and
    where it comes from, `field_of_view_source`) serves records that carry
    no angle of their own, as DeepMind's do not; `depth_range_source` says
    how the records' depth ranges were found.
    """
    name: str
    train_files: int
    test_files: int
    frame_size: int
    sequence_size: int
    min_views: int = 0
    holdout_views: int = 0
    scene_frames: Optional[dict] = None
    object_masks: bool = False
    field_of_view_degrees: Optional[float] = None
    field_of_view_source: Optional[str] = None
    depth_range_source: Optional[str] = None
    scene_cameras: Optional[dict] = None

    def __post_init__(self):
        if self.min_views == 0:
            object.__setattr__(self, "min_views", self.sequence_size)
        if not 1 <= self.min_views <= self.sequence_size:
            raise ValueError(
                f"dataset {self.name!r}: min_views={self.min_views} must be in "
                f"[1, sequence_size={self.sequence_size}]")
        if self.holdout_views < 0:
            raise ValueError(f"dataset {self.name!r}: holdout_views="
                             f"{self.holdout_views} must be >= 0")
        angle = self.field_of_view_degrees
        if angle is not None and not 0 < angle < 180:
            raise ValueError(f"dataset {self.name!r}: field_of_view_degrees="
                             f"{angle} must be between 0 and 180")

    def views_in_split(self, split):
        """(fewest, most) views a record of `split` holds."""
        extra = self.holdout_views if split == "test" else 0
        return self.min_views + extra, self.sequence_size + extra

    def num_files(self, split):
        return {"train": self.train_files, "test": self.test_files}[split]

    def to_json(self):
        fields = {key: value for key, value in dataclasses.asdict(self).items()
                  if value is not None}
        return json.dumps(fields, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text, source="dataset_info.json"):
        try:
            fields = json.loads(text)
            return cls(**fields)
        except (ValueError, TypeError) as error:
            raise ValueError(f"{source}: not a valid dataset description: {error}")


# DeepMind's records state no intrinsics. A public GQN-family code base's
# dataset configuration lists 50 degrees for the rooms, jaco and mazes sets
# (not verified here: no such records are available offline).
_PUBLISHED_FIELD_OF_VIEW = dict(
    field_of_view_degrees=50.0,
    field_of_view_source="50 degrees, as a public GQN code base's dataset "
                         "configuration lists it (unverified)")
# The shepard_metzler sets are measured: the silhouettes of DeepMind's two real
# shepard_metzler_5_parts test scenes agree best at 24 degrees (leave-one-out
# visual hulls; docs/benchmarks.md). The 7-part set is the same renderer.
_MEASURED_SHEPARD_METZLER = (
    "measured: 24.0 degrees (bootstrap 95% interval 20.8-26.6) from the "
    "silhouettes of 2 real shepard_metzler_5_parts test scenes by "
    "scripts/measure_field_of_view.py (leave-one-out visual hulls)")
DEEPMIND_DATASETS = {
    info.name: info for info in [
        DatasetInfo("jaco", 3600, 400, 64, 11, **_PUBLISHED_FIELD_OF_VIEW),
        DatasetInfo("mazes", 1080, 120, 84, 300, **_PUBLISHED_FIELD_OF_VIEW),
        DatasetInfo("rooms_free_camera_with_object_rotations", 2034, 226, 128, 10,
                    **_PUBLISHED_FIELD_OF_VIEW),
        DatasetInfo("rooms_ring_camera", 2160, 240, 64, 10, **_PUBLISHED_FIELD_OF_VIEW),
        DatasetInfo("rooms_free_camera_no_object_rotations", 2160, 240, 64, 10,
                    **_PUBLISHED_FIELD_OF_VIEW),
        DatasetInfo("shepard_metzler_5_parts", 900, 100, 64, 15,
                    field_of_view_degrees=24.0,
                    field_of_view_source=_MEASURED_SHEPARD_METZLER),
        DatasetInfo("shepard_metzler_7_parts", 900, 100, 64, 15,
                    field_of_view_degrees=24.0,
                    field_of_view_source=(
                        "assumed equal to shepard_metzler_5_parts (the same "
                        "renderer; no 7-part records here), "
                        + _MEASURED_SHEPARD_METZLER)),
    ]
}


def shard_file_name(index, num_files):
    """File name of shard `index` (counted from 1) of `num_files`."""
    if not 1 <= index <= num_files:
        raise ValueError(f"shard index {index} outside 1..{num_files}")
    width = len(str(num_files))
    return f"{index:0{width}d}-of-{num_files}.tfrecord"


def info_path(root, name):
    return os.path.join(root, name, INFO_FILE_NAME)


def get_dataset_info(name, root=None):
    """The description of dataset `name`, from its dataset_info.json if the
    folder has one, else from DeepMind's table."""
    if root is not None:
        path = info_path(root, name)
        if tf.io.gfile.exists(path):
            with tf.io.gfile.GFile(path, "r") as handle:
                info = DatasetInfo.from_json(handle.read(), source=path)
            if info.name != name:
                raise ValueError(f"{path} describes dataset {info.name!r}, "
                                 f"not {name!r}")
            return info
    if name in DEEPMIND_DATASETS:
        return DEEPMIND_DATASETS[name]
    where = f" and there is no {info_path(root, name)}" if root is not None else ""
    raise ValueError(
        f"unknown dataset {name!r}{where}; known DeepMind datasets: "
        f"{', '.join(sorted(DEEPMIND_DATASETS))}")
