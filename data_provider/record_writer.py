"""Writes scenes in DeepMind's gqn-datasets record layout.

Every generator and converter in this package goes through here, so the one
reader serves pretraining and fine-tuning. A dataset is assembled in a hidden
temporary folder beside its destination and renamed into place only when
complete: an interrupted run leaves nothing half-written.
"""
import io
import os
import shutil
import tempfile

import numpy as np
import tensorflow.compat.v1 as tf
from PIL import Image

from data_provider import datasets
from data_provider.scene_geometry import DEPTH_RANGE_KEY, FIELD_OF_VIEW_KEY
from gqn.poses import RAW_POSE_DIM


def encode_jpeg(frame, quality=95, exif=None):
    """uint8 (H, W, 3) array -> JPEG bytes (deterministic for equal input),
    with `exif` (Pillow Exif) if given."""
    frame = np.asarray(frame)
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[-1] != 3:
        raise ValueError(f"a frame must be uint8 (H, W, 3), got {frame.dtype} "
                         f"{frame.shape}")
    buffer = io.BytesIO()
    extra = {"exif": exif.tobytes()} if exif is not None else {}
    Image.fromarray(frame).save(buffer, format="JPEG", quality=quality, **extra)
    return buffer.getvalue()


def encode_png(mask):
    """uint8 (H, W) array -> grayscale PNG bytes (lossless, for masks)."""
    mask = np.asarray(mask)
    if mask.dtype != np.uint8 or mask.ndim != 2:
        raise ValueError(f"a mask must be uint8 (H, W), got {mask.dtype} {mask.shape}")
    buffer = io.BytesIO()
    Image.fromarray(mask, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def serialize_scene(jpeg_frames, raw_cameras, masks=None, field_of_view=None,
                    depth_range=None):
    """One scene as a serialized tf.train.Example.

    `frames`: bytes list of the views' JPEGs; `cameras`: float list of
    len(frames) * 5 values (x, y, z, yaw, pitch), angles in radians; with
    `masks`, `masks`: bytes list of one grayscale PNG object mask per view;
    with `field_of_view` (radians across the square frame: one angle for
    every view, or one per view) and `depth_range` ((near, far) in the
    poses' units), those keys (data_provider.scene_geometry). DeepMind's
    readers ignore the extra features.
    """
    cameras = np.asarray(raw_cameras, dtype=np.float32)
    if cameras.shape != (len(jpeg_frames), RAW_POSE_DIM):
        raise ValueError(f"cameras must have shape ({len(jpeg_frames)}, "
                         f"{RAW_POSE_DIM}) for {len(jpeg_frames)} frames, got "
                         f"{cameras.shape}")
    feature = {
        "frames": tf.train.Feature(
            bytes_list=tf.train.BytesList(value=list(jpeg_frames))),
        "cameras": _floats(cameras),
    }
    if masks is not None:
        if len(masks) != len(jpeg_frames):
            raise ValueError(f"{len(masks)} masks for {len(jpeg_frames)} frames")
        feature["masks"] = tf.train.Feature(bytes_list=tf.train.BytesList(value=list(masks)))
    if field_of_view is not None:
        angles = np.asarray(field_of_view, np.float32).reshape(-1)
        if len(angles) not in (1, len(jpeg_frames)) or not (
                np.all(angles > 0) and np.all(angles < np.pi)):
            raise ValueError(f"field_of_view must be one angle or one per frame "
                             f"({len(jpeg_frames)}), each in (0, pi) radians, got "
                             f"{angles.tolist()}")
        feature[FIELD_OF_VIEW_KEY] = _floats(angles)
    if depth_range is not None:
        near_far = np.asarray(depth_range, np.float32).reshape(-1)
        if near_far.shape != (2,) or not 0 < near_far[0] < near_far[1] < np.inf:
            raise ValueError(f"depth_range must be (near, far) with 0 < near < far, "
                             f"got {near_far.tolist()}")
        feature[DEPTH_RANGE_KEY] = _floats(near_far)
    example = tf.train.Example(features=tf.train.Features(feature=feature))
    return example.SerializeToString()


def _floats(values):
    return tf.train.Feature(float_list=tf.train.FloatList(
        value=np.asarray(values, np.float32).reshape(-1).tolist()))


def split_into_shards(items, num_files):
    """Contiguous, near-equal runs of `items`, one per shard, none empty."""
    if not 1 <= num_files <= max(len(items), 1):
        raise ValueError(f"cannot spread {len(items)} scenes over {num_files} "
                         "files: each file needs at least one scene")
    bounds = np.linspace(0, len(items), num_files + 1).round().astype(int)
    return [items[bounds[i]:bounds[i + 1]] for i in range(num_files)]


class DatasetWriter:
    """Builds `<root>/<name>/{train,test}/i-of-N.tfrecord` + dataset_info.json.

    Use as a context manager; `finish()` moves the finished set into place.
    Leaving the block without `finish()` (an error) removes everything.
    """

    def __init__(self, root, name, overwrite=False):
        self.final_dir = os.path.join(root, name)
        self.name = name
        if os.path.exists(self.final_dir) and not overwrite:
            raise FileExistsError(
                f"{self.final_dir} already exists; pass overwrite to replace it")
        os.makedirs(root, exist_ok=True)
        self.work_dir = tempfile.mkdtemp(prefix=f".{name}.partial-", dir=root)
        self.files_written = {}
        self._finished = False

    def write_split(self, split, serialized_scenes, num_files):
        """Writes one split's scenes over `num_files` shard files."""
        if split not in datasets.SPLITS:
            raise ValueError(f"split must be one of {datasets.SPLITS}, got {split!r}")
        split_dir = os.path.join(self.work_dir, split)
        os.makedirs(split_dir, exist_ok=True)
        shards = split_into_shards(list(serialized_scenes), num_files)
        for index, shard in enumerate(shards, start=1):
            path = os.path.join(split_dir, datasets.shard_file_name(index, num_files))
            with tf.io.TFRecordWriter(path) as writer:
                for record in shard:
                    writer.write(record)
        self.files_written[split] = num_files

    def finish(self, frame_size, sequence_size, min_views=0, **description):
        """Writes dataset_info.json and renames the set into place;
        `description`: further DatasetInfo fields (holdout_views, ...)."""
        info = datasets.DatasetInfo(
            name=self.name,
            train_files=self.files_written.get("train", 0),
            test_files=self.files_written.get("test", 0),
            frame_size=frame_size, sequence_size=sequence_size,
            min_views=min_views, **description)
        with open(os.path.join(self.work_dir, datasets.INFO_FILE_NAME), "w") as handle:
            handle.write(info.to_json())
        if os.path.exists(self.final_dir):
            shutil.rmtree(self.final_dir)
        os.rename(self.work_dir, self.final_dir)
        self._finished = True
        return info

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        if not self._finished:
            shutil.rmtree(self.work_dir, ignore_errors=True)
        return False
