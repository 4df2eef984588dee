"""Converts posed photos (the fruit still-life set, or a user's own) into
DeepMind's gqn-datasets record layout.

One converter for every pose source, so the one reader serves pretraining
and fine-tuning. The pipeline: list the input (photo_source), decide each
photo's pose (photo_layouts: the fruit table or a manifest; capture_plans: a
transforms.json, a COLMAP model or structure from motion, normalised into the
GQN frame), decode, de-roll and crop every scene in worker processes
(photo_preprocess, Pillow only), then, in the parent and in a fixed order,
encode, split (by scene, or by held-out views) and write through
record_writer.DatasetWriter, which builds the set in a temporary folder and
renames it into place. The same input and options give byte-identical records.
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
from tqdm import tqdm

from data_provider import (capture_plans, contact_sheet, photo_layouts, photo_preprocess,
                           scene_cameras, video_source)
from data_provider.camera_poses.frame import DEFAULT_RADIUS
from data_provider.photo_source import InputError, classify_files, open_source
from data_provider.record_writer import DatasetWriter, encode_jpeg, serialize_scene

SCENES_PER_FILE = 16
PREVIEW_FILE_NAME = "preview.png"
PREVIEW_SCENES = 4
POSE_SOURCES = ("fruit", "manifest", "transforms", "colmap", "sfm")
FALLBACKS = ("none", "fruit")
SKIP_TOO_FEW_VIEWS = "in a scene with too few views"


@dataclasses.dataclass(frozen=True)
class ConversionOptions:
    input_path: str
    output_dir: str
    name: str = "fruit_stills"
    image_size: int = 64
    test_fraction: float = 0.1
    seed: int = 0
    overwrite: bool = False
    poses: str = "fruit"  # one of POSE_SOURCES
    manifest: Optional[str] = None  # alone, it implies poses="manifest"
    angle_unit: str = "degrees"  # of the manifest's yaw and pitch
    order: str = photo_layouts.ORDER_NAME  # fruit preset pairing order
    workers: int = 0  # processes; 0 means one per CPU core
    fallback: str = "none"  # sfm: 'fruit' keeps the table where SfM fails
    holdout_views: int = 0  # views of every scene kept out of training
    context_size: int = 5  # a scene needs context_size + 1 (+ held-out) views
    radius: float = DEFAULT_RADIUS  # mean camera distance in the GQN frame
    sfm_dir: Optional[str] = None  # kept SfM models (default beside the output)
    sfm_max_image_size: int = 640  # long side of the photos SfM sees (13 of the
    # apple's 20 register from 512 up, 4 at 400; 640 takes 5-15 s there)
    focal_length_35mm: Optional[float] = None  # overrides every other focal source
    frames: int = video_source.DEFAULT_FRAMES  # kept of each video clip

    @property
    def views_needed(self):
        """Views a scene needs: a context and a query, plus the held-out ones."""
        return self.context_size + 1 + self.holdout_views

    @property
    def video_input(self):
        """Whether the input is a video clip or a folder of clips."""
        return bool(video_source.clips_in(self.input_path))

    @property
    def pose_kind(self):
        """The pose source, with a lone --manifest meaning 'manifest' and
        video input (left at the default) meaning 'sfm'."""
        if self.poses == "fruit" and self.manifest:
            return "manifest"
        if self.poses == "fruit" and self.video_input:
            return "sfm"
        return self.poses

    def validate(self):
        if self.poses not in POSE_SOURCES:
            raise InputError(f"poses must be one of {POSE_SOURCES}, got {self.poses!r}")
        if self.pose_kind == "manifest" and not self.manifest:
            raise InputError("--poses manifest needs --manifest poses.csv")
        if self.manifest and self.pose_kind != "manifest":
            raise InputError(f"--manifest is for --poses manifest, not --poses {self.poses}")
        if self.fallback not in FALLBACKS:
            raise InputError(f"fallback must be one of {FALLBACKS}, got {self.fallback!r}")
        if self.fallback != "none" and self.poses != "sfm":
            raise InputError("--fallback is for --poses sfm (where a scene fails to "
                             "register)")
        if self.video_input and self.pose_kind != "sfm":
            raise InputError(f"video input {self.input_path} is posed by structure from "
                             f"motion (--poses sfm), not --poses {self.poses}")
        if self.frames < 2:
            raise InputError(f"--frames must be at least 2, got {self.frames}")
        if self.pose_kind == "sfm" and self.order != photo_layouts.ORDER_NAME:
            raise InputError("--order exif_time pairs photos with the fruit table; "
                             "structure from motion pairs each photo with its own pose")
        if self.holdout_views < 0:
            raise InputError(f"holdout views must be >= 0, got {self.holdout_views}")
        if self.context_size < 1:
            raise InputError(f"context size must be >= 1, got {self.context_size}")
        if not self.radius > 0:
            raise InputError(f"radius must be > 0, got {self.radius}")
        if self.sfm_max_image_size < 64:
            raise InputError(f"SfM image size must be >= 64 pixels, got "
                             f"{self.sfm_max_image_size}")
        if self.focal_length_35mm is not None and not (
                math.isfinite(self.focal_length_35mm) and self.focal_length_35mm > 0):
            raise InputError(f"focal length must be a positive number of millimetres "
                             f"(35 mm-equivalent), got {self.focal_length_35mm}")
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
    pose_sources: collections.Counter  # scenes per pose source
    max_abs_roll_degrees: float  # largest roll undone by de-rolling
    holdout_views: int
    scene_cameras: Dict[str, scene_cameras.SceneCameras]  # field of view, depth range
    notes: List[str]  # photos left out per scene and why; SfM's registered share

    def format(self):
        scenes_written = len({name for names in self.split_scenes.values()
                              for name in names})
        split_words = ", ".join(f"{len(names)} {split}"
                                for split, names in self.split_scenes.items())
        files = ", ".join(f"{count} {split} .tfrecord file(s)"
                          for split, count in self.files_written.items())
        lines = [
            f"Wrote {self.output_path} in {self.seconds:.1f} s "
            f"({_rate(self.photos_written / max(self.seconds, 1e-9))} photos/s)",
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
        lines += [f"    {note}" for note in self.notes]
        lines.append("  poses: " + ", ".join(
            f"{count} scene(s) from the {source}" for source, count
            in sorted(self.pose_sources.items())))
        if self.max_abs_roll_degrees:
            lines.append(f"  largest camera roll: {self.max_abs_roll_degrees:.1f} "
                         "degrees (photos rotated level before the crop)")
        if self.holdout_views:
            lines.append(f"  held out: {self.holdout_views} view(s) of every scene, "
                         "only in the test split (as queries)")
        lines.append("  cameras (field of view across the written frame; depth range "
                     "in GQN units):")
        lines += scene_cameras.summary_lines(self.scene_cameras)
        lines += [
            f"  photos: {self.photos_found} found, {self.photos_written} written, "
            f"{self.photos_found - self.photos_written} skipped"
            f"{_reasons(self.skipped_photos)}",
            f"  files: {files}, dataset_info.json, {PREVIEW_FILE_NAME}",
        ]
        return "\n".join(lines)


def _rate(value):
    return f"{value:.1f}" if value < 10 else f"{value:.0f}"


def _reasons(counts):
    """' (2 hidden dot-file, 1 not an image)', or '' when nothing was skipped."""
    if not counts:
        return ""
    return " (" + ", ".join(f"{count} {reason}" for reason, count in sorted(counts.items())) + ")"


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
    video = options.video_input
    source = None if video else open_source(options.input_path)
    try:
        writer = DatasetWriter(options.output_dir, options.name, options.overwrite)
    except FileExistsError:
        raise InputError(f"{os.path.join(options.output_dir, options.name)} already "
                         "exists; use --overwrite to replace it")
    with writer:
        if video:
            source = video_source.open_video_input(
                options.input_path, options.frames, progress_stream,
                max(video_source.MAX_FRAME_SIDE, options.sfm_max_image_size))
        files = source.list_files()
        photos, skipped_files = classify_files(files)
        if not photos:
            raise InputError(f"input {options.input_path} holds no photos "
                             f"({len(files)} other file(s))")
        plan = _with_enough_views(_plan(source, files, photos, options, progress_stream),
                                  options)
        if not plan.scenes:
            reasons = "; ".join(f"{scene}: {reason}" for scene, reason in plan.skipped_scenes)
            raise InputError(f"input {options.input_path}: no scene can be "
                             f"converted ({reasons or 'no SceneN folders with photos'})")
        scenes = _convert_scenes(source, plan, options, progress_stream)
        cameras = {scene.name: scene_cameras.describe_scene(
                       scene, views, options.image_size, options.focal_length_35mm)
                   for scene, views in zip(plan.scenes, scenes)}
        split_scenes_written, test_scenes = _write_splits(writer, plan, scenes, cameras,
                                                          options)
        _write_preview(os.path.join(writer.work_dir, PREVIEW_FILE_NAME), plan, scenes,
                       cameras, test_scenes, options.holdout_views)
        view_counts = [len(scene.photos) for scene in plan.scenes]
        frames = {scene.name: scene.frame for scene in plan.scenes if scene.frame}
        angle, angle_source = scene_cameras.dataset_field_of_view(cameras)
        writer.finish(frame_size=options.image_size,
                      sequence_size=max(view_counts) - options.holdout_views,
                      min_views=min(view_counts) - options.holdout_views,
                      holdout_views=options.holdout_views, scene_frames=frames or None,
                      field_of_view_degrees=angle, field_of_view_source=angle_source,
                      scene_cameras={name: described.json_dict()
                                     for name, described in cameras.items()})
    return Summary(
        output_path=writer.final_dir, pairing=plan.pairing, files_found=len(files),
        photos_found=len(photos), skipped_files=skipped_files,
        skipped_photos=plan.skipped_photos,
        skipped_scenes=plan.skipped_scenes, split_scenes=split_scenes_written,
        photos_written=sum(view_counts), files_written=dict(writer.files_written),
        seconds=time.monotonic() - started,
        pose_sources=collections.Counter(scene.pose_source for scene in plan.scenes),
        max_abs_roll_degrees=max(_largest_roll(scene) for scene in plan.scenes),
        holdout_views=options.holdout_views, scene_cameras=cameras,
        notes=list(getattr(source, "notes", [])) + plan.notes)


def _plan(source, files, photos, options, progress_stream):
    kind = options.pose_kind
    if kind == "fruit":
        return photo_layouts.plan_fruit_scenes(photos, options.order)
    if kind == "manifest":
        return photo_layouts.plan_manifest_scenes(photos, options.manifest,
                                                  options.angle_unit)
    if kind == "sfm":
        return capture_plans.plan_sfm_scenes(source, files, photos, options,
                                             progress_stream)
    return capture_plans.plan_file_scenes(source, files, options, kind)


def _with_enough_views(plan, options):
    """The plan without scenes too small for a context plus a query (plus
    the held-out views), each reported with its numbers."""
    needed = options.views_needed
    kept, skipped_scenes = [], list(plan.skipped_scenes)
    skipped_photos = collections.Counter(plan.skipped_photos)
    for scene in plan.scenes:
        views = len(scene.photos)
        if views >= needed:
            kept.append(scene)
            continue
        if options.holdout_views >= views:
            reason = (f"{views} views, but --holdout_views {options.holdout_views} "
                      "would hold out all of them")
        else:
            reason = (f"{views} views; a context of {options.context_size} plus a "
                      f"query{' plus ' + str(options.holdout_views) + ' held-out' if options.holdout_views else ''}"
                      f" needs {needed} (--context_size)")
        skipped_scenes.append((scene.name, reason))
        skipped_photos[SKIP_TOO_FEW_VIEWS] += views
    return dataclasses.replace(plan, scenes=kept, skipped_scenes=skipped_scenes,
                               skipped_photos=skipped_photos)


def held_out_views(num_views, holdout_views):
    """Indices of the views kept out of training: spread evenly over the
    scene's photo order (for a capture walked around the object, views all
    around it)."""
    return [int((index + 0.5) * num_views / holdout_views)
            for index in range(holdout_views)]


def _record(scene, views, cameras, order):
    """One serialized record of the views `order` of a scene."""
    return serialize_scene([encode_jpeg(views[i].pixels) for i in order],
                           scene.poses[order],
                           field_of_view=cameras.record_field_of_view(order),
                           depth_range=cameras.depth_range)


def _write_splits(writer, plan, scenes, cameras, options):
    """Writes the train and test records; returns ({split: scene names},
    indices of the scenes in the test split). With held-out views every
    scene is in both: its other views in train, all of them (held-out ones
    last) in test; otherwise the scenes are split by test_fraction."""
    records = {"train": [], "test": []}
    names = {"train": [], "test": []}
    if options.holdout_views:
        test = set(range(len(plan.scenes)))
        for scene, views in zip(plan.scenes, scenes):
            held = held_out_views(len(views), options.holdout_views)
            order = [i for i in range(len(views)) if i not in held] + held
            context = len(views) - options.holdout_views
            records["train"].append(_record(scene, views, cameras[scene.name],
                                            order[:context]))
            records["test"].append(_record(scene, views, cameras[scene.name], order))
            for split in names:
                names[split].append(scene.name)
    else:
        train, test = split_scenes(len(scenes), options.test_fraction, options.seed)
        for split, indices in (("train", train), ("test", test)):
            for index in indices:
                scene = plan.scenes[index]
                records[split].append(_record(scene, scenes[index], cameras[scene.name],
                                              list(range(len(scenes[index])))))
                names[split].append(scene.name)
        test = set(test)
    for split, split_records in records.items():
        if split_records:
            writer.write_split(split, split_records,
                               math.ceil(len(split_records) / SCENES_PER_FILE))
    return {split: scene_names for split, scene_names in names.items() if scene_names}, test


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
    progress = tqdm(total=sum(len(scene.photos) for scene in plan.scenes),
                    desc="converting", unit="photo", file=progress_stream)
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["__main__", photo_preprocess.__name__])
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        futures = {pool.submit(photo_preprocess.convert_photos, source, scene.photos,
                               options.image_size, read_times, scene.rolls): index
                   for index, scene in enumerate(plan.scenes)}
        try:
            for future in concurrent.futures.as_completed(futures):
                index = futures[future]
                views = future.result()
                results[index] = _by_capture_time(views) if read_times else views
                progress.update(len(views))
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


def _largest_roll(scene):
    """The largest roll (degrees) undone in a scene's photos; 0 for none."""
    return max([abs(roll) for roll in scene.rolls or ()] or [0.0])


def _write_preview(path, plan, scenes, cameras, test_indices, holdout_views):
    """A contact sheet of a few scenes spread evenly over the written set."""
    count = len(plan.scenes)
    picks = sorted(set(np.linspace(0, count - 1, min(PREVIEW_SCENES, count))
                       .round().astype(int).tolist()))
    rows = []
    for index in picks:
        scene = plan.scenes[index]
        split = "test" if index in test_indices else "train"
        if holdout_views:
            held = [i + 1 for i in held_out_views(len(scene.photos), holdout_views)]
            split = f"views {', '.join(map(str, held))} held out for test"
        roll = _largest_roll(scene)
        rows.append(contact_sheet.SheetRow(
            f"{scene.name}  ({len(scene.photos)} views, {split}; poses from the "
            f"{scene.pose_source}" + (f", largest roll {roll:.1f} deg" if roll else "")
            + ")", [view.pixels for view in scenes[index]], scene.poses, scene.points,
            subtitle=cameras[scene.name].caption()))
    contact_sheet.draw_contact_sheet(rows).save(path, format="PNG")
