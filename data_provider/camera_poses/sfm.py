"""Camera poses of one scene's photos by COLMAP structure-from-motion (pycolmap).

For photo sets without recorded poses (`--poses sfm`). pycolmap is the optional
`sfm` extra, so it is imported only when a scene is estimated and the rest of
the package works without it. The pipeline is COLMAP's standard one on the CPU:
SIFT features, exhaustive matching, incremental mapping; the reconstruction
with the most registered images is kept.

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
from typing import List

from PIL import Image, ImageOps

from data_provider.photo_preprocess import to_rgb
from data_provider.photo_source import InputError

MODEL_FILES = ("cameras.bin", "images.bin", "points3D.bin")
_TEXT_MODEL_FILES = ("cameras.txt", "images.txt", "points3D.txt")
# Fixed seed of COLMAP's RANSAC and image selection: reruns agree.
_RANDOM_SEED = 0
_JPEG_QUALITY = 95


@dataclasses.dataclass(frozen=True)
class SfmResult:
    registered: List[str]  # photo names with an estimated pose, input order
    unregistered: List[str]  # photo names COLMAP could not place
    num_points3d: int
    seconds: float


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
                   scene=None):
    """Runs SfM on `photos`, a list of (name relative to the scene folder,
    image file bytes), and writes the model to `model_dir`.

    Photos are EXIF-oriented and downscaled to a long side of at most
    `max_image_size` first (SIFT on 12-megapixel photos costs minutes and
    gains little for poses). `num_threads` (default: all cores) bounds every
    stage, so scenes can run in parallel processes. `scene` names the scene in
    error messages (default: `model_dir`). Raises InputError, leaving neither
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
    try:
        image_dir = os.path.join(work, "images")
        sizes = {_write_work_copy(scene, name, data, image_dir, max_image_size)
                 for name, data in photos}
        reconstruction = _reconstruct(pycolmap, scene, work, image_dir, names,
                                      num_threads, single_camera=len(sizes) == 1)
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
                     seconds=time.monotonic() - start)


def _write_work_copy(scene, name, data, image_dir, max_image_size):
    """Writes photo `name` upright and downscaled below `image_dir`, in the
    format its extension names; returns its (width, height)."""
    parts = name.split("/")
    if name.startswith("/") or "\\" in name or ".." in parts or "" in parts:
        raise InputError(f"{scene}: photo name {name!r} must be a plain relative "
                         "path inside the scene folder")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
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
        # Keep EXIF (minus the orientation now applied): COLMAP takes its
        # focal-length prior from it.
        options = {"quality": _JPEG_QUALITY, **({"exif": exif} if exif else {})}
    try:
        image.save(path, **options)
    except (OSError, ValueError, KeyError) as error:
        raise InputError(f"{scene}: photo {name}: cannot write a working copy "
                         f"for SfM: {error}")
    return image.size


def _reconstruct(pycolmap, scene, work, image_dir, names, num_threads,
                 single_camera):
    """The reconstruction with the most registered images, or InputError."""
    threads = -1 if num_threads is None else int(num_threads)
    database = os.path.join(work, "database.db")
    sparse = os.path.join(work, "sparse")
    os.makedirs(sparse)
    extraction = pycolmap.FeatureExtractionOptions()
    extraction.num_threads = threads
    extraction.use_gpu = False
    matching = pycolmap.FeatureMatchingOptions()
    matching.num_threads = threads
    matching.use_gpu = False
    verification = pycolmap.TwoViewGeometryOptions()
    verification.ransac.random_seed = _RANDOM_SEED
    mapping = pycolmap.IncrementalPipelineOptions()
    mapping.num_threads = threads
    mapping.random_seed = _RANDOM_SEED
    mapping.mapper.num_threads = threads
    mapping.mapper.random_seed = _RANDOM_SEED
    mapping.triangulation.random_seed = _RANDOM_SEED
    # One phone, one lens: photos of one size share intrinsics, which COLMAP
    # then estimates from all of them together.
    camera_mode = (pycolmap.CameraMode.SINGLE if single_camera
                   else pycolmap.CameraMode.AUTO)
    try:
        pycolmap.extract_features(database, image_dir, image_names=names,
                                  camera_mode=camera_mode,
                                  extraction_options=extraction,
                                  device=pycolmap.Device.cpu)
        pycolmap.match_exhaustive(database, matching_options=matching,
                                  verification_options=verification,
                                  device=pycolmap.Device.cpu)
        reconstructions = pycolmap.incremental_mapping(database, image_dir, sparse,
                                                       options=mapping)
    except (RuntimeError, ValueError) as error:
        raise InputError(f"{scene}: structure-from-motion failed: {error}")
    if not reconstructions:
        raise InputError(f"{scene}: structure-from-motion found no reconstruction "
                         f"of its {len(names)} photos (too few shared features: "
                         "blank, blurred or too far apart?)")
    return max(reconstructions.values(), key=lambda model: model.num_reg_images())
