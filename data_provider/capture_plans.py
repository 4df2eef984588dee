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
from data_provider.camera_poses.posed_photos import listed
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


def _left_out_notes(name, posed, unposed_reason):
    """Summary notes of a scene's photos that a pose file names but the input
    lacks, and of its photos that have no camera."""
    notes = []
    if posed.absent:
        notes.append(f"{name}: {len(posed.absent)} photo(s) named by {posed.model_file} "
                     f"are not in the input, left out: {listed(posed.absent)}")
    if posed.unposed:
        notes.append(f"{name}: {len(posed.unposed)} photo(s) {unposed_reason}, left "
                     f"out: {listed(posed.unposed)}")
    return notes


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
    scenes, skipped_scenes, notes = [], [], []
    skipped_photos = collections.Counter()
    for scene_dir in scene_dirs:
        name = scene_name(scene_dir, options.input_path)
        try:
            posed = read(source, scene_dir, files)
            scenes.append(_posed_scene(posed, name, kind, options.radius))
        except InputError as error:
            skipped_scenes.append((name, str(error)))
            continue
        skipped_photos[SKIP_UNPOSED] += len(posed.unposed)
        notes += _left_out_notes(name, posed, f"have no camera in {posed.model_file}")
    pairing = (f"{what} per scene: each photo takes the camera the file gives it, "
               "normalised into the GQN frame (object at the origin, z up, DeepMind's "
               "yaw)")
    return Plan(scenes, None, pairing, +skipped_photos, skipped_scenes, notes)


def pose_file_focals(source, files, scene_dir):
    """{photo name relative to the scene: Focal} from a transforms.json or
    COLMAP model in the scene folder (SfM's focal-length prior), else {}."""
    prefix = scene_dir + "/" if scene_dir else ""
    for present, read in ((transforms_json.transforms_path(scene_dir) in set(files),
                           transforms_json.read_transforms_scene),
                          (colmap_model.find_model(files, scene_dir) is not None,
                           colmap_model.read_colmap_scene)):
        if present:
            posed = read(source, scene_dir, files)
            return {photo[len(prefix):]: focal
                    for photo, focal in zip(posed.photos, posed.focals) if focal}
    return {}


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
    notes = []
    jobs = []
    for scene_dir in scene_dirs:
        try:
            focals = pose_file_focals(source, files, scene_dir)
        except InputError as error:
            focals = {}
            notes.append(f"{scene_name(scene_dir, options.input_path)}: no focal-length "
                         f"prior from its pose file: {error}")
        jobs.append((scene_dir, by_scene[scene_dir], focals))
    results, failures = run_sfm(source, jobs, sfm_dir, options, progress_stream)
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
                notes += _sfm_notes(name, posed, results.get(scene_dir))
                enough = len(posed.photos) >= options.views_needed
                if enough or scene_dir not in table_scenes:
                    scenes.append(_posed_scene(posed, name, "sfm", options.radius))
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
    return Plan(scenes, None, pairing, +skipped_photos, skipped_scenes, notes)


def _sfm_notes(name, posed, result):
    """The registered share, a split into several models and the focal
    prior (when this run estimated the model), and the photos left out."""
    share = (f"{name}: structure from motion registered "
             + sfm.registered_share(len(posed.photos), len(posed.photos) + len(posed.unposed)))
    if result is None:
        share += " (a kept model, reused)"
    else:
        share += f" in {result.seconds:.0f} s; focal-length prior: " + (
            result.focal_prior or "none (COLMAP's guess, refined)")
        if result.split_text():
            share += "; " + result.split_text()
    return [share] + _left_out_notes(name, posed, "not registered")


def sfm_models_dir(options):
    """Where SfM models are kept: --sfm_dir, else beside the output set."""
    return options.sfm_dir or os.path.join(options.output_dir, f"{options.name}_sfm")


def run_sfm(source, jobs, sfm_dir, options, progress_stream):
    """Runs SfM for each (scene folder, photos, {photo: Focal}) job whose
    model is not kept yet, scenes in parallel processes, with a progress bar
    of the photos registered; returns ({scene folder: SfmResult},
    {scene folder: why it failed})."""
    pending = [job for job in jobs
               if not sfm.existing_model(_model_dir(sfm_dir, job[0]))]
    results, failures = {}, {}
    if not pending:
        return results, failures
    cores = os.cpu_count() or 1
    workers = min(options.workers or cores, len(pending))
    threads = max(1, cores // workers)
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["__main__", sfm.__name__])
    sizes = {scene_dir: len(names) for scene_dir, names, _ in pending}
    progress = _SfmProgress(sizes, progress_stream)
    sequential = set(getattr(source, "sequential_scenes", ()))
    with context.Manager() as manager, \
            concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        messages = manager.Queue()
        futures = {pool.submit(_estimate, source, scene_dir, names,
                               _model_dir(sfm_dir, scene_dir), options, threads, focals,
                               scene_dir in sequential, messages): scene_dir
                   for scene_dir, names, focals in pending}
        try:
            waiting = set(futures)
            while waiting:
                done, waiting = concurrent.futures.wait(
                    waiting, timeout=0.2, return_when=concurrent.futures.FIRST_COMPLETED)
                progress.read(messages)
                for future in done:
                    scene_dir = futures[future]
                    try:
                        results[scene_dir] = future.result()
                    except InputError as error:
                        failures[scene_dir] = str(error)
                    progress.finish(scene_dir, results.get(scene_dir))
        finally:
            progress.close()
            for future in futures:
                future.cancel()
    return results, failures


class _SfmProgress:
    """One bar over every pending scene's photos, advanced as each photo
    registers (pycolmap's callbacks, sent from the workers), with the scene
    and stage in its postfix."""

    def __init__(self, sizes, stream):
        self.sizes, self.counted = sizes, dict.fromkeys(sizes, 0)
        self.bar = tqdm(total=sum(sizes.values()), desc="structure from motion",
                        unit="photo", file=stream)

    def read(self, messages):
        while not messages.empty():
            scene_dir, stage, registered = messages.get()
            self._advance(scene_dir, registered)
            self.bar.set_postfix_str(f"{scene_dir or 'capture'}: {stage}"
                                     + (f" ({registered} registered)" if registered else ""))

    def finish(self, scene_dir, result):
        """A scene is done: the rest of its photos count as handled."""
        self._advance(scene_dir, self.sizes[scene_dir])
        if result is not None:
            self.bar.set_postfix_str(f"{scene_dir or 'capture'}: {result.share_text} "
                                     "registered")

    def _advance(self, scene_dir, count):
        count = min(count, self.sizes[scene_dir])
        if count > self.counted[scene_dir]:
            self.bar.update(count - self.counted[scene_dir])
            self.counted[scene_dir] = count

    def close(self):
        self.bar.close()


def _model_dir(sfm_dir, scene_dir):
    return os.path.join(sfm_dir, *filter(None, scene_dir.split("/")),
                        *SFM_MODEL_SUBDIR.split("/"))


def _estimate(source, scene_dir, names, model_dir, options, threads, focals, sequential,
              messages):
    """Worker task: one scene's SfM, photos named relative to the scene,
    progress sent to the parent through `messages`."""
    prefix = scene_dir + "/" if scene_dir else ""
    photos = [(name[len(prefix):], data) for name, data in source.read_many(names)]
    return sfm.estimate_scene(
        photos, model_dir, max_image_size=options.sfm_max_image_size, num_threads=threads,
        scene=scene_dir or "the input root", sequential=sequential,
        pose_file_focals=focals, focal_35mm=options.focal_length_35mm,
        progress=lambda stage, registered: messages.put((scene_dir, stage, registered)))


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
