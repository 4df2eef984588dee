"""Scene plans from the cameras of the photos themselves: a NeRF
transforms.json, a COLMAP model, or poses estimated by structure from motion.

Each scene's cameras, whatever their source, go through the one
normalisation into the GQN frame (camera_poses.frame.normalise_cameras), so
every source yields DeepMind's pose convention with the object at the
origin and z up. A scene that cannot be posed is reported and skipped while
the others convert; the converter refuses the input only when no scene is
left.
"""
import collections
import concurrent.futures
import dataclasses
import multiprocessing
import os
import posixpath

from tqdm import tqdm

from data_provider.camera_poses import colmap_model, sfm, transforms_json
from data_provider.camera_poses.frame import normalise_cameras
from data_provider.photo_layouts import (SKIP_IN_SKIPPED_SCENE, Plan, ScenePlan,
                                         plan_fruit_scenes)
from data_provider.photo_source import InputError, natural_sort_key

# What the summary and dataset_info.json call each pose source.
POSE_SOURCE_NAMES = {"transforms": "transforms.json", "colmap": "COLMAP model",
                     "sfm": "structure from motion"}
SKIP_UNPOSED = "no camera in the pose file"
SKIP_UNREGISTERED = "not registered by structure from motion"
SFM_MODEL_SUBDIR = posixpath.join("sparse", "0")
_IMAGE_FOLDER = "images"  # COLMAP's photo folder inside a scene


def scene_name(scene_dir, input_path):
    """A scene's name in the records: its folder, or the input's own name
    for a single capture at the root."""
    if scene_dir:
        return scene_dir
    base = os.path.basename(os.path.abspath(input_path))
    return os.path.splitext(base)[0] if base.lower().endswith(".zip") else base


def transforms_scene_dirs(files):
    """Folders holding a transforms.json."""
    return sorted({posixpath.dirname(name) for name in files
                   if posixpath.basename(name) == transforms_json.TRANSFORMS_FILE},
                  key=natural_sort_key)


def colmap_scene_dirs(files):
    """Scene folders of the COLMAP models in `files`: the folder above
    sparse/0/ or sparse/, or the model's own folder."""
    scenes = set()
    for name in files:
        if posixpath.basename(name) not in ("images.txt", "images.bin"):
            continue
        folder = posixpath.dirname(name)
        for suffix in (SFM_MODEL_SUBDIR, "sparse"):
            if folder == suffix or folder.endswith("/" + suffix):
                folder = folder[:-len(suffix)].rstrip("/")
                break
        if colmap_model.find_model(files, folder) is not None:
            scenes.add(folder)
    return sorted(scenes, key=natural_sort_key)


def photos_by_scene(photos):
    """{scene folder: its photos} for the folders directly holding photos (a
    COLMAP-style images/ folder counts for the folder above it)."""
    scenes = collections.defaultdict(list)
    for name in photos:
        folder = posixpath.dirname(name)
        if posixpath.basename(folder) == _IMAGE_FOLDER:
            folder = posixpath.dirname(folder)
        scenes[folder].append(name)
    return scenes


def _posed_scene(posed, name, kind, radius):
    """ScenePlan of PosedPhotos from pose source `kind`, normalised into the
    GQN frame."""
    pose_source = POSE_SOURCE_NAMES[kind]
    normalised = normalise_cameras(posed.cameras, radius)
    frame = dict(normalised.frame.to_json_dict(), pose_source=pose_source,
                 pose_file=posed.model_file,
                 max_abs_roll_degrees=normalised.max_abs_roll_degrees)
    points = None if posed.points is None else normalised.frame.apply(posed.points)
    focals = posed.focals
    if kind == "sfm":
        focals = tuple(dataclasses.replace(
            focal, source=focal.source.replace("COLMAP", "structure from motion's"))
            for focal in focals)
    return ScenePlan(name, posed.photos, normalised.raw_poses, pose_source=pose_source,
                     rolls=tuple(float(r) for r in normalised.roll_degrees),
                     frame=frame, points=points, focals=focals)


def plan_file_scenes(source, files, options, kind):
    """Plan of every scene posed by a transforms.json (`kind` 'transforms')
    or a COLMAP model ('colmap'), models from options.sfm_dir first."""
    if kind == "transforms":
        scene_dirs = transforms_scene_dirs(files)
        read, what = transforms_json.read_transforms_scene, "a transforms.json"
    else:
        source, files = with_kept_models(source, files, options.sfm_dir)
        scene_dirs = colmap_scene_dirs(files)
        read, what = colmap_model.read_colmap_scene, "a COLMAP model"
    if not scene_dirs:
        raise InputError(f"input {options.input_path}: no scene folder holds {what}")
    scenes, skipped_scenes = [], []
    skipped_photos = collections.Counter()
    for scene_dir in scene_dirs:
        name = scene_name(scene_dir, options.input_path)
        try:
            posed = read(source, scene_dir, files)
            scenes.append(_posed_scene(posed, name, kind, options.radius))
        except InputError as error:
            skipped_scenes.append((name, str(error)))
            continue
        if posed.unposed:
            skipped_photos[SKIP_UNPOSED] += len(posed.unposed)
    pairing = (f"{what} per scene: each photo takes the camera the file gives it, "
               "normalised into the GQN frame (object at the origin, z up, DeepMind's "
               "yaw)")
    return Plan(scenes, None, pairing, skipped_photos, skipped_scenes)


def plan_sfm_scenes(source, files, photos, options, progress_stream):
    """Plan with poses estimated by COLMAP from the photos of every scene
    folder; with options.fallback 'fruit', SceneN folders in the fruit
    layout keep the table's poses where too few views register."""
    sfm.require_pycolmap()
    by_scene = dict(photos_by_scene(photos))
    if options.fallback == "fruit":
        table = plan_fruit_scenes(photos)
        table_scenes = {scene.name: scene for scene in table.scenes}
        scene_dirs = list(table_scenes)
    else:
        table, table_scenes = None, {}
        scene_dirs = sorted(by_scene, key=natural_sort_key)
    sfm_dir = sfm_models_dir(options)
    jobs = [(scene_dir, by_scene[scene_dir]) for scene_dir in scene_dirs]
    failures = run_sfm(source, jobs, sfm_dir, options, progress_stream)
    kept_source, kept_files = with_kept_models(source, files, sfm_dir)
    scenes, skipped_scenes = [], list(table.skipped_scenes) if table else []
    skipped_photos = collections.Counter(table.skipped_photos) if table else \
        collections.Counter()
    counts = collections.Counter()
    for scene_dir in scene_dirs:
        name = scene_name(scene_dir, options.input_path)
        reason = failures.get(scene_dir)
        if reason is None:
            try:
                posed = colmap_model.read_colmap_scene(kept_source, scene_dir, kept_files)
                enough = len(posed.photos) >= options.views_needed
                if enough or scene_dir not in table_scenes:
                    scenes.append(_posed_scene(posed, name, "sfm", options.radius))
                    if posed.unposed:
                        skipped_photos[SKIP_UNREGISTERED] += len(posed.unposed)
                    counts["sfm"] += 1
                    continue
                reason = (f"{len(posed.photos)} of {len(posed.photos) + len(posed.unposed)} "
                          "photos registered")
            except InputError as error:
                reason = str(error)
        if scene_dir in table_scenes:
            scenes.append(table_scenes[scene_dir])
            counts["fruit table"] += 1
        else:
            skipped_scenes.append((name, f"structure from motion failed: {reason}"))
            skipped_photos[SKIP_IN_SKIPPED_SCENE] += len(by_scene[scene_dir])
    pairing = (f"structure from motion (COLMAP, models in {sfm_dir}): "
               f"{counts['sfm']} scene(s) posed from their photos"
               + (f", {counts['fruit table']} from the fruit table where too few "
                  "views registered" if table else "")
               + "; normalised into the GQN frame")
    return Plan(scenes, None, pairing, skipped_photos, skipped_scenes)


def sfm_models_dir(options):
    """Where SfM models are kept: --sfm_dir, else beside the output set."""
    return options.sfm_dir or os.path.join(options.output_dir, f"{options.name}_sfm")


def run_sfm(source, jobs, sfm_dir, options, progress_stream):
    """Runs SfM for each (scene folder, photos) job whose model is not kept
    yet, scenes in parallel processes; returns {scene folder: why it failed}."""
    pending = [(scene_dir, names) for scene_dir, names in jobs
               if not sfm.existing_model(_model_dir(sfm_dir, scene_dir))]
    failures = {}
    if not pending:
        return failures
    cores = os.cpu_count() or 1
    workers = min(options.workers or cores, len(pending))
    threads = max(1, cores // workers)
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["__main__", sfm.__name__])
    progress = tqdm(total=len(pending), desc="structure from motion", unit="scene",
                    file=progress_stream)
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        futures = {pool.submit(_estimate, source, scene_dir, names,
                               _model_dir(sfm_dir, scene_dir),
                               options.sfm_max_image_size, threads): scene_dir
                   for scene_dir, names in pending}
        try:
            for future in concurrent.futures.as_completed(futures):
                try:
                    future.result()
                except InputError as error:
                    failures[futures[future]] = str(error)
                progress.update(1)
        finally:
            progress.close()
            for future in futures:
                future.cancel()
    return failures


def _model_dir(sfm_dir, scene_dir):
    return os.path.join(sfm_dir, *filter(None, scene_dir.split("/")),
                        *SFM_MODEL_SUBDIR.split("/"))


def _estimate(source, scene_dir, names, model_dir, max_image_size, threads):
    """Worker task: one scene's SfM, photos named relative to the scene."""
    prefix = scene_dir + "/" if scene_dir else ""
    photos = [(name[len(prefix):], data) for name, data in source.read_many(names)]
    return sfm.estimate_scene(photos, model_dir, max_image_size=max_image_size,
                              num_threads=threads, scene=scene_dir or "the input root")


def with_kept_models(source, files, sfm_dir):
    """(source, files) in which the models kept under `sfm_dir` appear as
    each scene's sparse/0/, taking precedence over a model in the input."""
    if not sfm_dir or not os.path.isdir(sfm_dir):
        return source, files
    kept = {}
    for folder, _, names in os.walk(sfm_dir):
        relative = os.path.relpath(folder, sfm_dir).replace(os.sep, "/")
        in_place = (relative == SFM_MODEL_SUBDIR
                    or relative.endswith("/" + SFM_MODEL_SUBDIR))
        if not in_place or not sfm.existing_model(folder):
            continue
        for file_name in names:
            kept[posixpath.normpath(posixpath.join(relative, file_name))] = \
                os.path.join(folder, file_name)
    if not kept:
        return source, files
    shadowed = {posixpath.dirname(name) for name in kept}
    files = [name for name in files if posixpath.dirname(name) not in shadowed]
    return _WithKeptModels(source, kept), sorted(files + list(kept), key=natural_sort_key)


class _WithKeptModels:
    """A photo source with model files on disk laid over it."""

    def __init__(self, source, kept):
        self.source, self.kept = source, kept

    def read_many(self, names):
        for name in names:
            if name in self.kept:
                with open(self.kept[name], "rb") as handle:
                    yield name, handle.read()
            else:
                yield from self.source.read_many([name])
