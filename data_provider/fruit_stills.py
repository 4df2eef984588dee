"""Converts posed photos (the fruit still-life set, or a user's own with a
manifest) into DeepMind's gqn-datasets record layout.

One converter for both, so the one reader serves pretraining and fine-tuning.
The pipeline: list the input (photo_source), decide each photo's pose
(photo_layouts), decode and crop every scene in worker processes
(photo_preprocess, Pillow only), then, in the parent and in a fixed order,
encode, split by scene and write through record_writer.DatasetWriter, which
builds the set in a temporary folder and renames it into place. The same
input and options give byte-identical records.
"""
import collections
import concurrent.futures
import dataclasses
import math
import multiprocessing
import os
import sys
import time
from typing import Dict, List, Optional, Tuple

import numpy as np

from data_provider import contact_sheet, photo_layouts, photo_preprocess
from data_provider.photo_source import InputError, classify_files, open_source
from data_provider.record_writer import DatasetWriter, encode_jpeg, serialize_scene

SCENES_PER_FILE = 16
PREVIEW_FILE_NAME = "preview.png"
PREVIEW_SCENES = 4


@dataclasses.dataclass(frozen=True)
class ConversionOptions:
    input_path: str
    output_dir: str
    name: str = "fruit_stills"
    image_size: int = 64
    test_fraction: float = 0.1
    seed: int = 0
    overwrite: bool = False
    manifest: Optional[str] = None  # None: the fruit preset layouts
    angle_unit: str = "degrees"  # of the manifest's yaw and pitch
    order: str = photo_layouts.ORDER_NAME  # fruit preset pairing order
    workers: int = 0  # processes; 0 means one per CPU core

    def validate(self):
        if self.image_size < 8:
            raise InputError(f"image size must be at least 8, got {self.image_size}")
        if not 0.0 <= self.test_fraction < 1.0:
            raise InputError(f"test fraction must be in [0, 1), got {self.test_fraction}")
        if self.workers < 0:
            raise InputError(f"workers must be >= 0, got {self.workers}")
        if not self.name or os.sep in self.name or self.name.startswith("."):
            raise InputError(f"dataset name {self.name!r} must be a plain folder name")


@dataclasses.dataclass
class Summary:
    """What a conversion read, wrote and skipped, and why."""
    output_path: str
    pairing: str
    files_found: int
    photos_found: int
    skipped_files: collections.Counter  # files that are no photos: reason -> count
    skipped_photos: collections.Counter  # photos not converted: reason -> count
    skipped_scenes: List[Tuple[str, str]]
    split_scenes: Dict[str, List[str]]  # split -> scene names written
    photos_written: int
    files_written: Dict[str, int]
    seconds: float

    def format(self):
        scenes_written = sum(len(names) for names in self.split_scenes.values())
        split_words = ", ".join(f"{len(names)} {split}"
                                for split, names in self.split_scenes.items())
        files = ", ".join(f"{count} {split} .tfrecord file(s)"
                          for split, count in self.files_written.items())
        lines = [
            f"Wrote {self.output_path} in {self.seconds:.1f} s "
            f"({self.photos_written / max(self.seconds, 1e-9):.0f} photos/s)",
            f"  pairing: {self.pairing}",
            f"  input: {self.files_found} files, {self.photos_found} photos, "
            f"{self.files_found - self.photos_found} other files skipped"
            f"{_reasons(self.skipped_files)}",
            f"  scenes: {scenes_written + len(self.skipped_scenes)} found, "
            f"{scenes_written} written ({split_words}), "
            f"{len(self.skipped_scenes)} skipped",
        ]
        lines += [f"    skipped scene {scene}: {reason}"
                  for scene, reason in self.skipped_scenes]
        lines += [
            f"  photos: {self.photos_found} found, {self.photos_written} written, "
            f"{self.photos_found - self.photos_written} skipped"
            f"{_reasons(self.skipped_photos)}",
            f"  files: {files}, dataset_info.json, {PREVIEW_FILE_NAME}",
        ]
        return "\n".join(lines)


def _reasons(counts):
    """' (2 hidden dot-file, 1 not an image)', or '' when nothing was skipped."""
    if not counts:
        return ""
    return " (" + ", ".join(f"{count} {reason}" for reason, count in sorted(counts.items())) + ")"


class ProgressBar:
    """A one-line progress bar on a stream, redrawn at most ten times a second."""

    def __init__(self, total, stream, label="converting"):
        self.total, self.stream, self.label = total, stream, label
        self.done = 0
        self.start = self.last_draw = time.monotonic()

    def advance(self, count):
        self.done += count
        now = time.monotonic()
        if now - self.last_draw >= 0.1 or self.done == self.total:
            self.last_draw = now
            filled = int(30 * self.done / max(self.total, 1))
            rate = self.done / max(now - self.start, 1e-9)
            self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (30 - filled)}] "
                              f"{self.done}/{self.total} photos, {rate:.0f}/s")
            self.stream.flush()

    def close(self):
        self.stream.write("\n")
        self.stream.flush()


def split_scenes(count, test_fraction, seed):
    """(train indices, test indices), disjoint, each ascending; seeded.

    Any positive fraction puts at least one scene in test, and one is always
    left for train.
    """
    num_test = 0
    if test_fraction > 0 and count > 1:
        num_test = min(count - 1, max(1, round(count * test_fraction)))
    order = np.random.RandomState(seed).permutation(count)
    return sorted(order[num_test:].tolist()), sorted(order[:num_test].tolist())


def convert(options, progress_stream=sys.stderr):
    """Converts options.input_path into <output_dir>/<name>; returns a Summary.

    Raises InputError for any problem with the user's input or options;
    nothing is left behind in that case.
    """
    started = time.monotonic()
    options.validate()
    source = open_source(options.input_path)
    try:
        writer = DatasetWriter(options.output_dir, options.name, options.overwrite)
    except FileExistsError:
        raise InputError(f"{os.path.join(options.output_dir, options.name)} already "
                         "exists; use --overwrite to replace it")
    with writer:
        files = source.list_files()
        photos, skipped_files = classify_files(files)
        if not photos:
            raise InputError(f"input {options.input_path} holds no photos "
                             f"({len(files)} other file(s))")
        plan = _plan(photos, options)
        if not plan.scenes:
            reasons = "; ".join(f"{scene}: {reason}" for scene, reason in plan.skipped_scenes)
            raise InputError(f"input {options.input_path}: no scene can be "
                             f"converted ({reasons or 'no SceneN folders with photos'})")
        scenes = _convert_scenes(source, plan, options, progress_stream)
        records = [serialize_scene([encode_jpeg(photo.pixels) for photo in views],
                                   scene.poses)
                   for scene, views in zip(plan.scenes, scenes)]
        train, test = split_scenes(len(records), options.test_fraction, options.seed)
        split_scenes_written = {}
        for split, indices in (("train", train), ("test", test)):
            if indices:
                writer.write_split(split, [records[i] for i in indices],
                                   math.ceil(len(indices) / SCENES_PER_FILE))
                split_scenes_written[split] = [plan.scenes[i].name for i in indices]
        _write_preview(os.path.join(writer.work_dir, PREVIEW_FILE_NAME), plan, scenes,
                       set(test))
        view_counts = [len(scene.photos) for scene in plan.scenes]
        writer.finish(frame_size=options.image_size, sequence_size=max(view_counts),
                      min_views=min(view_counts))
    return Summary(
        output_path=writer.final_dir, pairing=plan.pairing, files_found=len(files),
        photos_found=len(photos), skipped_files=skipped_files,
        skipped_photos=plan.skipped_photos,
        skipped_scenes=plan.skipped_scenes, split_scenes=split_scenes_written,
        photos_written=sum(view_counts), files_written=dict(writer.files_written),
        seconds=time.monotonic() - started)


def _plan(photos, options):
    if options.manifest is None:
        return photo_layouts.plan_fruit_scenes(photos, options.order)
    return photo_layouts.plan_manifest_scenes(photos, options.manifest,
                                              options.angle_unit)


def _convert_scenes(source, plan, options, progress_stream):
    """Each scene's ConvertedPhotos, in plan order, paired with plan poses.

    Workers are not forked from this process, which has TensorFlow running.
    They fork from a forkserver that does nothing but import the main module
    and the worker module, once per run (importing the data_provider package
    loads TensorFlow, 3-4 s), instead of every spawned worker importing them.
    """
    read_times = plan.reorder == photo_layouts.ORDER_EXIF_TIME
    workers = min(options.workers or os.cpu_count() or 1, len(plan.scenes))
    results = [None] * len(plan.scenes)
    progress = ProgressBar(sum(len(scene.photos) for scene in plan.scenes),
                           progress_stream)
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["__main__", photo_preprocess.__name__])
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        futures = {pool.submit(photo_preprocess.convert_photos, source, scene.photos,
                               options.image_size, read_times): index
                   for index, scene in enumerate(plan.scenes)}
        try:
            for future in concurrent.futures.as_completed(futures):
                index = futures[future]
                views = future.result()
                results[index] = _by_capture_time(views) if read_times else views
                progress.advance(len(views))
        finally:
            progress.close()
            for future in futures:
                future.cancel()
    return results


def _by_capture_time(views):
    missing = [view.name for view in views if view.capture_time is None]
    if missing:
        raise InputError(f"{missing[0]} has no EXIF capture time; pair by "
                         "file name instead (--order name)")
    # Photos arrive in natural name order and the sort is stable: ties keep it.
    return sorted(views, key=lambda view: view.capture_time)


def _write_preview(path, plan, scenes, test_indices):
    """A contact sheet of a few scenes spread evenly over the written set."""
    count = len(plan.scenes)
    picks = sorted(set(np.linspace(0, count - 1, min(PREVIEW_SCENES, count))
                       .round().astype(int).tolist()))
    rows = []
    for index in picks:
        scene = plan.scenes[index]
        split = "test" if index in test_indices else "train"
        rows.append(contact_sheet.SheetRow(
            f"{scene.name}  ({len(scene.photos)} views, {split})",
            [view.pixels for view in scenes[index]], scene.poses))
    contact_sheet.draw_contact_sheet(rows).save(path, format="PNG")
