"""A camera's focal length as each source states it, and the field of view of
a frame as the converter writes it.

Why: the sweep representation and the plane-sweep baseline project along
each view's rays, so every record carries its frames' field of view
(data_provider.scene_geometry). The sources state the focal length in their
own units and at their own image size:
- a NeRF transforms.json: `fl_x` (`fl_y`) in pixels or `camera_angle_x`
  (`camera_angle_y`) in radians, at `w` x `h`, at the top level or per frame;
- a COLMAP model (and so the camera structure from motion estimated): each
  camera model's focal parameters, at the camera's `width` x `height`;
- a photo's EXIF: FocalLengthIn35mmFilm, or FocalLength with the sensor's
  pixel pitch (FocalPlaneXResolution and its unit);
- the user (--focal_length_35mm), or, where nothing states it, the labelled
  assumption of a phone's main camera (ASSUMED_FOCAL_35MM).
Each becomes one `Focal`, which gives the angle across the EXIF-oriented
photo's short side; photo_preprocess.cropped_field_of_view turns that into
the angle across the square frame the converter writes. De-rolling rotates
about the centre and changes no angle. Lens distortion and an off-centre
principal point are ignored: the frames are not undistorted.

This module runs in the conversion workers too, so it must not import
TensorFlow.
"""
import dataclasses
import math
from typing import Optional, Tuple

from data_provider.photo_source import InputError

# A 35 mm-equivalent focal length matches the angle across the diagonal of a
# 36 x 24 mm frame (43.27 mm), as the EXIF standard's equivalent focal
# length is commonly computed; for a 3:2 photo that is the angle across
# 36 mm on the long side. COLMAP reads the tag as 35 mm across the long
# side, which is within 1% of this for 4:3 photos.
FULL_FRAME_DIAGONAL_MM = math.hypot(36.0, 24.0)
# Where nothing states the focal length: a typical phone main camera.
ASSUMED_FOCAL_35MM = 26.0
ASSUMED_SOURCE = (f"assumed: a phone main camera, {ASSUMED_FOCAL_35MM:g} mm "
                  "35 mm-equivalent (nothing in the input states the focal length)")

# EXIF tags (in the Exif IFD).
_EXIF_IFD = 0x8769
_FOCAL_LENGTH = 0x920A
_FOCAL_LENGTH_35MM = 0xA405
_FOCAL_PLANE_X_RESOLUTION = 0xA20E
_FOCAL_PLANE_RESOLUTION_UNIT = 0xA210
_PIXEL_X_DIMENSION = 0xA002
# FocalPlaneResolutionUnit: 2 inch, 3 centimetre (the standard's); 4 and 5
# (millimetre, micrometre) are written by some cameras.
_RESOLUTION_UNIT_MM = {2: 25.4, 3: 10.0, 4: 1.0, 5: 0.001}

# COLMAP camera models: name -> (number of parameters, focal lengths among
# the first of them: 1 for f, 2 for fx fy). Spherical models have no focal.
COLMAP_CAMERA_MODELS = {
    "SIMPLE_PINHOLE": (3, 1), "PINHOLE": (4, 2), "SIMPLE_RADIAL": (4, 1),
    "RADIAL": (5, 1), "OPENCV": (8, 2), "OPENCV_FISHEYE": (8, 2),
    "FULL_OPENCV": (12, 2), "FOV": (5, 2), "SIMPLE_RADIAL_FISHEYE": (4, 1),
    "RADIAL_FISHEYE": (5, 1), "THIN_PRISM_FISHEYE": (12, 2),
    "RAD_TAN_THIN_PRISM_FISHEYE": (16, 2), "SIMPLE_DIVISION": (4, 1),
    "DIVISION": (5, 2), "SIMPLE_FISHEYE": (3, 1), "FISHEYE": (4, 2),
    "EUCM": (6, 2), "EQUIRECTANGULAR": (2, 0),
}
# COLMAP's numeric model ids (cameras.bin), as its camera_models.h numbers them.
COLMAP_MODEL_IDS = {
    0: "SIMPLE_PINHOLE", 1: "PINHOLE", 2: "SIMPLE_RADIAL", 3: "RADIAL", 4: "OPENCV",
    5: "OPENCV_FISHEYE", 6: "FULL_OPENCV", 7: "FOV", 8: "SIMPLE_RADIAL_FISHEYE",
    9: "RADIAL_FISHEYE", 10: "THIN_PRISM_FISHEYE", 11: "RAD_TAN_THIN_PRISM_FISHEYE",
    12: "SIMPLE_DIVISION", 13: "DIVISION", 14: "SIMPLE_FISHEYE", 15: "FISHEYE",
    16: "EUCM", 17: "EQUIRECTANGULAR",
}


@dataclasses.dataclass(frozen=True)
class Focal:
    """Focal lengths along an image's x and y axes, in pixels of `size`
    (width, height), the image the source measured; with `size` None, in
    units of the converted photo's width (a camera_angle_x without `w`).
    `source` says where they come from, for the summary and dataset_info."""
    focal_x: float
    focal_y: float
    size: Optional[Tuple[float, float]]
    source: str

    def photo_focal(self, photo_size):
        """(fx, fy) in pixels of the photo (width, height), EXIF-oriented.
        A source that measured the image turned by 90 degrees (landscape
        against a portrait photo) has its axes swapped."""
        width, height = photo_size
        if self.size is None:
            return self.focal_x * width, self.focal_y * width
        measured_width, measured_height = self.size
        focal_x, focal_y = self.focal_x, self.focal_y
        if (measured_width - measured_height) * (width - height) < 0:
            measured_width, measured_height = measured_height, measured_width
            focal_x, focal_y = focal_y, focal_x
        return focal_x * width / measured_width, focal_y * height / measured_height

    def short_side_degrees(self, photo_size):
        """The angle across the photo's short side (the focal length along it)."""
        width, height = photo_size
        focal_x, focal_y = self.photo_focal(photo_size)
        focal, side = (focal_x, width) if width <= height else (focal_y, height)
        return math.degrees(2 * math.atan(side / (2 * focal)))


def from_35mm(focal_35mm, photo_size, source):
    """Focal of a 35 mm-equivalent focal length on a photo of (width, height)."""
    if not (math.isfinite(focal_35mm) and focal_35mm > 0):
        raise InputError(f"{source}: a 35 mm-equivalent focal length must be a "
                         f"positive number of millimetres, got {focal_35mm!r}")
    pixels = focal_35mm * math.hypot(*photo_size) / FULL_FRAME_DIAGONAL_MM
    return Focal(pixels, pixels, tuple(photo_size), source)


def known_focal(photo_size, exif=None, pose_file=None, focal_35mm=None):
    """The Focal that states a photo's focal length, in order of trust: the
    user's --focal_length_35mm, the pose file's (or SfM's) camera, the
    photo's EXIF; None when none does."""
    if focal_35mm:
        return from_35mm(focal_35mm, photo_size, f"--focal_length_35mm {focal_35mm:g}")
    return pose_file or exif


def assumed(photo_size):
    """The labelled assumption for a photo whose focal length nobody states."""
    return from_35mm(ASSUMED_FOCAL_35MM, photo_size, ASSUMED_SOURCE)


def _positive(value):
    """float(value) if it is a finite positive number (EXIF rationals too)."""
    try:
        number = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def exif_focal(image):
    """Focal of a Pillow image from its EXIF, or None when the tags do not
    state it. FocalLengthIn35mmFilm first (phones write it); else
    FocalLength (mm) with the sensor's pixel pitch from FocalPlaneXResolution,
    at the pixel size the camera recorded (PixelXDimension, for a resized
    copy). `image` is as opened: stored pixels, before EXIF orientation."""
    try:
        tags = image.getexif().get_ifd(_EXIF_IFD)
    except (OSError, ValueError, SyntaxError):
        return None  # unreadable EXIF states nothing
    size = image.size
    focal_35mm = _positive(tags.get(_FOCAL_LENGTH_35MM))
    if focal_35mm:
        return from_35mm(focal_35mm, size,
                         f"EXIF FocalLengthIn35mmFilm ({focal_35mm:g} mm)")
    focal_mm = _positive(tags.get(_FOCAL_LENGTH))
    resolution = _positive(tags.get(_FOCAL_PLANE_X_RESOLUTION))
    unit_mm = _RESOLUTION_UNIT_MM.get(tags.get(_FOCAL_PLANE_RESOLUTION_UNIT, 2))
    if not (focal_mm and resolution and unit_mm):
        return None
    recorded_width = _positive(tags.get(_PIXEL_X_DIMENSION)) or size[0]
    pixels = focal_mm * resolution / unit_mm * size[0] / recorded_width
    return Focal(pixels, pixels, tuple(size),
                 f"EXIF FocalLength ({focal_mm:g} mm) and the sensor's pixel pitch "
                 "(FocalPlaneXResolution)")


def colmap_focal(model_name, width, height, params, where):
    """Focal of a COLMAP camera (model name, width, height, parameters);
    InputError naming `where` for a camera that states none."""
    if model_name not in COLMAP_CAMERA_MODELS:
        raise InputError(f"{where}: unknown camera model {model_name!r}")
    count, focals = COLMAP_CAMERA_MODELS[model_name]
    if len(params) != count:
        raise InputError(f"{where}: a {model_name} camera has {count} parameters, "
                         f"got {len(params)}")
    if not focals:
        raise InputError(f"{where}: a {model_name} camera is not a perspective "
                         "camera; its frames have no field of view to convert")
    focal_x, focal_y = params[0], params[focals - 1]
    if not (_positive(width) and _positive(height) and _positive(focal_x)
            and _positive(focal_y)):
        raise InputError(f"{where}: camera size {width}x{height} and focal length "
                         f"{focal_x}, {focal_y} must be positive")
    return Focal(float(focal_x), float(focal_y), (float(width), float(height)),
                 f"COLMAP {model_name} camera")


def transforms_focal(fields, where):
    """Focal of a transforms.json frame from its intrinsics `fields` (the
    top-level keys overlaid with the frame's own), or None when it states
    no focal length. InputError naming `where` for a malformed value."""
    numbers = {}
    for key in ("fl_x", "fl_y", "camera_angle_x", "camera_angle_y", "w", "h"):
        if fields.get(key) is None:
            continue
        value = _positive(fields[key]) if not isinstance(fields[key], bool) else None
        if value is None:
            raise InputError(f"{where}: {key} must be a positive number, got "
                             f"{fields[key]!r}")
        numbers[key] = value
    for key in ("camera_angle_x", "camera_angle_y"):
        if numbers.get(key, 0) >= math.pi:
            raise InputError(f"{where}: {key} is in radians and must be below pi, "
                             f"got {numbers[key]!r}")
    width, height = numbers.get("w"), numbers.get("h")
    size = (width, height) if width and height else None
    if "fl_x" in numbers:
        if size is None:
            raise InputError(f"{where}: fl_x is in pixels of an image of w x h, "
                             "but w and h are missing")
        return Focal(numbers["fl_x"], numbers.get("fl_y", numbers["fl_x"]), size,
                     "transforms.json fl_x")
    if "camera_angle_x" not in numbers:
        return None
    # Half a side over the tangent of half its angle: the focal length in
    # pixels of `w` x `h`, or in units of the photo's width without them.
    focal_x = 0.5 / math.tan(numbers["camera_angle_x"] / 2)
    if size is None:
        return Focal(focal_x, focal_x, None, "transforms.json camera_angle_x")
    focal_y = (0.5 * height / math.tan(numbers["camera_angle_y"] / 2)
               if "camera_angle_y" in numbers else focal_x * width)
    return Focal(focal_x * width, focal_y, size, "transforms.json camera_angle_x")
