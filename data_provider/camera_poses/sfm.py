"""Camera poses of one scene's photos by COLMAP structure-from-motion (pycolmap).

For photo sets without recorded poses (`--poses sfm`). pycolmap is the optional
`sfm` extra, so it is imported only when a scene is estimated and the rest of
the package works without it. The pipeline is COLMAP's on the CPU: SIFT
features, matching (every pair of photos; for video frames, each frame with
its neighbours in time, the walk's two ends included), incremental mapping;
the reconstruction with the most registered images is kept and a capture
that splits into several is reported. A focal length known from the photos
(EXIF, --focal_length_35mm, the intrinsics of a pose file beside them)
reaches COLMAP as its prior; otherwise COLMAP guesses (1.2 times the long
side). The other choices (SfmSettings) were measured on the real apple
capture and generated walks (scripts/benchmark_sfm.py, docs/benchmarks.md).

The model is written in COLMAP's binary format (cameras.bin, images.bin,
points3D.bin, plus rigs.bin and frames.bin in COLMAP 3.12+/4.x), with the
photos' names relative to the scene folder as image names, so a later
`--poses colmap` run (or a rerun) reads it instead of repeating the SfM:
callers check `existing_model(model_dir)` first. It appears atomically (built
in a temporary folder next to `model_dir`, then renamed), so a crash or a
failure never leaves a half-written model that would later be mistaken for a
finished one.
"""
import dataclasses
import io
import os
import posixpath
import shutil
import tempfile
import time
import warnings
from typing import Callable, List, Optional, Tuple

import numpy as np
from PIL import Image, ImageOps

from data_provider.camera_poses.intrinsics import known_focal
from data_provider.photo_preprocess import exif_focal_and_size, to_rgb
from data_provider.photo_source import InputError

MODEL_FILES = ("cameras.bin", "images.bin", "points3D.bin")
_TEXT_MODEL_FILES = ("cameras.txt", "images.txt", "points3D.txt")
# Fixed seed of COLMAP's RANSAC and image selection: reruns agree.
_RANDOM_SEED = 0
_JPEG_QUALITY = 95


@dataclasses.dataclass(frozen=True)
class SfmSettings:
    """The COLMAP options the converter sets (everything else is COLMAP's
    default). The defaults are what measured best in scripts/benchmark_sfm.py
    (docs/benchmarks.md) on the real apple capture (20 frames) and generated
    walks: guided matching registered all 20 of the apple's frames (1.8% of
    the radius, 0.7 degrees at worst) where COLMAP's defaults kept 13 and
    split the walk into models of 13, 5 and 2, for about 1.5x the time.
    Upright SIFT lost a frame of the apple and tripled the error on the
    walks (a table top seen from round it turns in the image); more
    features, domain-size pooling and a relaxed initial pair changed
    nothing or cost time; affine shape (18/20) and relaxed registration
    thresholds (19/20, 2.2%) did less than guided matching, and nothing
    more beside it."""
    max_num_features: int = 8192
    upright: bool = False
    affine_shape: bool = False
    domain_size_pooling: bool = False
    guided_matching: bool = True
    # Small enough that a capture split into two halves shows both.
    min_model_size: int = 3
    init_min_num_inliers: int = 100
    abs_pose_min_num_inliers: int = 30
    abs_pose_min_inlier_ratio: float = 0.25
    # Video frames: each is matched with this many neighbours on either side.
    sequential_overlap: int = 10


@dataclasses.dataclass(frozen=True)
class SfmResult:
    registered: List[str]  # photo names with an estimated pose, input order
    unregistered: List[str]  # photo names COLMAP could not place
    num_points3d: int
    seconds: float
    model_sizes: Tuple[int, ...] = ()  # registered images of every model, largest first
    focal_prior: Optional[str] = None  # where COLMAP's focal-length prior came from

    @property
    def share_text(self):
        return registered_share(len(self.registered),
                                len(self.registered) + len(self.unregistered))

    def split_text(self):
        """Why photos are missing when the capture split into several
        models, or '' when it did not."""
        if len(self.model_sizes) < 2:
            return ""
        return (f"the capture split into {len(self.model_sizes)} models of "
                f"{', '.join(map(str, self.model_sizes))} photos; the largest is kept")


def registered_share(registered, total):
    """'19/20 (95%)': how many of a scene's photos registered."""
    return f"{registered}/{total} ({100 * registered / total:.0f}%)"


def require_pycolmap():
    """The pycolmap module, or InputError telling how to install it."""
    try:
        import pycolmap
    except ImportError as error:
        raise InputError("--poses sfm needs the optional 'sfm' extra (pycolmap): "
                         f"pip install '.[sfm]' ({error})")
    return pycolmap


def existing_model(model_dir):
    """True if `model_dir` holds a COLMAP model (binary or text), e.g. from an
    earlier SfM run that should be reused rather than repeated."""
    return any(all(os.path.isfile(os.path.join(model_dir, name)) for name in files)
               for files in (MODEL_FILES, _TEXT_MODEL_FILES))


def estimate_scene(photos, model_dir, max_image_size=1000, num_threads=None,
                   scene=None, settings=SfmSettings(), sequential=False,
                   pose_file_focals=None, focal_35mm=None,
                   progress: Optional[Callable[[str, int], None]] = None):
    """Runs SfM on `photos`, a list of (name relative to the scene folder,
    image file bytes), and writes the model to `model_dir`.

    Photos are EXIF-oriented and downscaled to a long side of at most
    `max_image_size` first (SIFT on 12-megapixel photos costs minutes and
    gains little for poses). `sequential`: the photos are video frames in
    name order, matched with their neighbours only. A focal length known for
    a photo (`focal_35mm`, `pose_file_focals` {name: Focal}, its EXIF) is
    COLMAP's prior for it, refined with the poses; when every photo's comes
    from a pose file (measured intrinsics), COLMAP keeps it. `num_threads` (default: all cores) bounds every
    stage, so scenes can run in parallel processes. `scene` names the scene in
    error messages (default: `model_dir`). `progress(stage, registered)` is
    called as the work goes (stage 'features', 'matching', 'registering'
    with the images registered so far). Raises InputError, leaving neither
    `model_dir` nor a temporary folder behind, when a photo cannot be read or
    no reconstruction comes out.
    """
    pycolmap = require_pycolmap()
    # COLMAP's per-image INFO lines would bury the converter's own report.
    pycolmap.logging.minloglevel = max(pycolmap.logging.minloglevel, 2)
    scene = scene or model_dir
    if os.path.isdir(model_dir) and os.listdir(model_dir):
        raise InputError(f"{scene}: {model_dir} already exists and is not empty; "
                         "reuse it (existing_model) or remove it")
    names = [name for name, _ in photos]
    if len(set(names)) != len(names):
        raise InputError(f"{scene}: photo names repeat: {sorted(names)}")
    parent = os.path.dirname(os.path.abspath(model_dir))
    os.makedirs(parent, exist_ok=True)
    work = tempfile.mkdtemp(prefix=".sfm-", dir=parent)
    start = time.monotonic()
    pose_file_focals = pose_file_focals or {}
    try:
        image_dir = os.path.join(work, "images")
        copies = {}
        for name, data in photos:
            size, exif = _write_work_copy(scene, name, data, image_dir, max_image_size)
            focal = known_focal(size, exif, pose_file_focals.get(name), focal_35mm)
            copies[name] = (size, focal)
        measured = focal_35mm is None and all(name in pose_file_focals for name in names)
        run = _Reconstruction(pycolmap, scene, work, image_dir, names, num_threads,
                              settings, progress or (lambda stage, registered: None),
                              keep_focal=measured)
        reconstructions = run.reconstruct(copies, sequential)
        reconstruction = reconstructions[0]
        built = os.path.join(work, "model")
        os.makedirs(built)
        reconstruction.write(built)
        os.rename(built, model_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    registered = {reconstruction.image(image_id).name
                  for image_id in reconstruction.reg_image_ids()}
    return SfmResult(registered=[name for name in names if name in registered],
                     unregistered=[name for name in names if name not in registered],
                     num_points3d=reconstruction.num_points3D(),
                     seconds=time.monotonic() - start,
                     model_sizes=tuple(model.num_reg_images() for model in reconstructions),
                     focal_prior=_prior_text(copies.values()))


def _prior_text(copies):
    """Where the focal-length priors came from, or None without any."""
    sources = sorted({focal.source for _, focal in copies if focal is not None})
    known = sum(focal is not None for _, focal in copies)
    if not sources:
        return None
    return f"{'; '.join(sources)} ({known} of {len(copies)} photos)"


def _write_work_copy(scene, name, data, image_dir, max_image_size):
    """Writes photo `name` upright and downscaled below `image_dir`, in the
    format its extension names; returns its (width, height) and the Focal
    its EXIF states (or None)."""
    parts = name.split("/")
    if name.startswith("/") or "\\" in name or ".." in parts or "" in parts:
        raise InputError(f"{scene}: photo name {name!r} must be a plain relative "
                         "path inside the scene folder")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                focal, _ = exif_focal_and_size(image)
                # Decode JPEGs at reduced scale; a square request keeps both
                # sides >= max_image_size whatever the EXIF rotation does.
                image.draft("RGB", (max_image_size, max_image_size))
                oriented = ImageOps.exif_transpose(image)
                exif = oriented.info.get("exif")
                image = to_rgb(oriented)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning,
            OSError, SyntaxError, ValueError) as error:
        raise InputError(f"{scene}: photo {name}: cannot decode the image: {error}")
    scale = max_image_size / max(image.size)
    if scale < 1:
        image = image.resize((max(1, round(image.width * scale)),
                              max(1, round(image.height * scale))),
                             Image.Resampling.LANCZOS)
    path = os.path.join(image_dir, *parts)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    options = {}
    if posixpath.splitext(name)[1].lower() in (".jpg", ".jpeg"):
        # Keep EXIF (minus the orientation now applied): COLMAP reads the
        # camera make and model from it.
        options = {"quality": _JPEG_QUALITY, **({"exif": exif} if exif else {})}
    try:
        image.save(path, **options)
    except (OSError, ValueError, KeyError) as error:
        raise InputError(f"{scene}: photo {name}: cannot write a working copy "
                         f"for SfM: {error}")
    return image.size, focal


class _Reconstruction:
    """One scene's COLMAP run: features, matching, mapping."""

    def __init__(self, pycolmap, scene, work, image_dir, names, num_threads, settings,
                 progress, keep_focal=False):
        self.pycolmap, self.scene, self.work = pycolmap, scene, work
        self.keep_focal = keep_focal
        self.image_dir, self.names, self.settings = image_dir, names, settings
        self.threads = -1 if num_threads is None else int(num_threads)
        self.progress = progress
        self.database = os.path.join(work, "database.db")

    def reconstruct(self, copies, sequential):
        """Every reconstruction, largest first; InputError when there is none."""
        pycolmap = self.pycolmap
        try:
            self.progress("features", 0)
            self._extract(copies)
            self._set_focal_priors(copies)
            self.progress("matching", 0)
            self._match(sequential)
            registered = [0]

            def registering(count):
                registered[0] = min(len(self.names), registered[0] + count)
                self.progress("registering", registered[0])

            sparse = os.path.join(self.work, "sparse")
            os.makedirs(sparse)
            reconstructions = pycolmap.incremental_mapping(
                self.database, self.image_dir, sparse, options=self._mapping_options(),
                initial_image_pair_callback=lambda: registering(2),
                next_image_callback=lambda: registering(1))
        except (RuntimeError, ValueError) as error:
            raise InputError(f"{self.scene}: structure-from-motion failed: {error}")
        if not reconstructions:
            raise InputError(f"{self.scene}: structure-from-motion found no "
                             f"reconstruction of its {len(self.names)} photos (too few "
                             "shared features: blank, blurred or too far apart?)")
        return sorted(reconstructions.values(), key=lambda model: -model.num_reg_images())

    def _extract(self, copies):
        pycolmap, settings = self.pycolmap, self.settings
        extraction = pycolmap.FeatureExtractionOptions()
        extraction.num_threads = self.threads
        extraction.use_gpu = False
        sift = extraction.sift
        sift.max_num_features = settings.max_num_features
        sift.upright = settings.upright
        sift.estimate_affine_shape = settings.affine_shape
        sift.domain_size_pooling = settings.domain_size_pooling
        # One phone, one lens: photos of one size with one focal length (or
        # none known) share intrinsics, which COLMAP then estimates from all
        # of them together.
        shared = len({size for size, _ in copies.values()}) == 1 and len(
            {round(focal.photo_focal(size)[0], 1) if focal else None
             for size, focal in copies.values()}) == 1
        camera_mode = pycolmap.CameraMode.SINGLE if shared else pycolmap.CameraMode.PER_IMAGE
        pycolmap.extract_features(self.database, self.image_dir, image_names=self.names,
                                  camera_mode=camera_mode, extraction_options=extraction,
                                  device=pycolmap.Device.cpu)

    def _set_focal_priors(self, copies):
        """Writes each known focal length (pixels of the working copy) into
        the database as the camera's prior, before matching and mapping."""
        pycolmap = self.pycolmap
        database = pycolmap.Database.open(self.database)
        try:
            cameras = {camera.camera_id: camera for camera in database.read_all_cameras()}
            updated = set()
            for image in database.read_all_images():
                size, focal = copies[image.name]
                camera = cameras[image.camera_id]
                if focal is None or camera.camera_id in updated:
                    continue
                params = np.array(camera.params, np.float64)
                params[list(camera.focal_length_idxs())] = np.mean(focal.photo_focal(size))
                camera.params = params
                camera.has_prior_focal_length = True
                database.update_camera(camera)
                updated.add(camera.camera_id)
        finally:
            database.close()

    def _match(self, sequential):
        pycolmap, settings = self.pycolmap, self.settings
        matching = pycolmap.FeatureMatchingOptions()
        matching.num_threads = self.threads
        matching.use_gpu = False
        matching.guided_matching = settings.guided_matching
        verification = pycolmap.TwoViewGeometryOptions()
        verification.ransac.random_seed = _RANDOM_SEED
        if not sequential:
            pycolmap.match_exhaustive(self.database, matching_options=matching,
                                      verification_options=verification,
                                      device=pycolmap.Device.cpu)
            return
        pairs_file = os.path.join(self.work, "pairs.txt")
        with open(pairs_file, "w") as handle:
            for first, second in sequential_pairs(sorted(self.names),
                                                  settings.sequential_overlap):
                handle.write(f"{first} {second}\n")
        pairing = pycolmap.ImportedPairingOptions()
        pairing.match_list_path = pairs_file
        pycolmap.match_image_pairs(self.database, matching_options=matching,
                                   pairing_options=pairing,
                                   verification_options=verification,
                                   device=pycolmap.Device.cpu)

    def _mapping_options(self):
        settings = self.settings
        mapping = self.pycolmap.IncrementalPipelineOptions()
        mapping.num_threads = self.threads
        mapping.random_seed = _RANDOM_SEED
        mapping.min_model_size = settings.min_model_size
        mapping.ba_refine_focal_length = not self.keep_focal
        mapper = mapping.mapper
        mapper.num_threads = self.threads
        mapper.random_seed = _RANDOM_SEED
        mapper.init_min_num_inliers = settings.init_min_num_inliers
        mapper.abs_pose_min_num_inliers = settings.abs_pose_min_num_inliers
        mapper.abs_pose_min_inlier_ratio = settings.abs_pose_min_inlier_ratio
        mapper.abs_pose_refine_focal_length = not self.keep_focal
        mapping.triangulation.random_seed = _RANDOM_SEED
        return mapping


def sequential_pairs(names, overlap):
    """(first, second) pairs of frames in time order (`names` sorted) at most
    `overlap` apart, counted round the walk's end back to its start, so a
    walk around the object closes (COLMAP's own sequential matcher would
    need a vocabulary tree for that)."""
    count = len(names)
    reach = min(overlap, count // 2)
    pairs = set()
    for index in range(count):
        for step in range(1, reach + 1):
            pairs.add(tuple(sorted((index, (index + step) % count))))
    return [(names[a], names[b]) for a, b in sorted(pairs)]
