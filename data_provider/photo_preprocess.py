"""Turns one photo's file bytes into a square RGB frame, with Pillow only.

This runs in the conversion worker processes, so it must never import
TensorFlow. Phone photos are 12-megapixel JPEGs that end up 64x64: they are
decoded at reduced scale (Pillow's JPEG draft mode, DCT scaling) so a photo
does not cost a full decode, then EXIF-oriented, made RGB and cropped.
"""
import dataclasses
import io
import math
import warnings
from typing import Optional, Tuple

import numpy as np
from PIL import Image, ImageOps

from data_provider.camera_poses.intrinsics import Focal, exif_focal
from data_provider.photo_source import InputError

# The seed resized 4032x3024 photos to 96x72 and cropped (16, 4, 80, 68): the
# short side becomes 9/8 of the output size, then a centred square is cut.
# The same rule serves every aspect ratio and output size.
SHORT_SIDE_PER_OUTPUT = 9 / 8

_EXIF_IFD = 0x8769
_DATE_TIME_ORIGINAL = 36867
_SUBSEC_TIME_ORIGINAL = 37521
_DATE_TIME = 306
_SIXTEEN_BIT_MODES = ("I", "I;16", "I;16L", "I;16B", "I;16N")
_ORIENTATION = 0x0112
_TURNED_ORIENTATIONS = (5, 6, 7, 8)  # EXIF orientations that swap width and height


@dataclasses.dataclass(frozen=True)
class ConvertedPhoto:
    name: str
    pixels: np.ndarray  # (size, size, 3) uint8
    capture_time: Optional[str]  # EXIF 'YYYY:MM:DD HH:MM:SS.subsec', if asked
    photo_size: Tuple[int, int]  # (width, height), EXIF-oriented, full size
    exif_focal: Optional[Focal]  # the focal length the EXIF states, if any


def exif_focal_and_size(image):
    """(the Focal its EXIF states or None, (width, height) once
    EXIF-oriented) of a Pillow image as opened (before draft())."""
    turned = image.getexif().get(_ORIENTATION) in _TURNED_ORIENTATIONS
    return exif_focal(image), tuple(image.size[::-1] if turned else image.size)


def crop_geometry(width, height, size):
    """((resized width, height), crop box) taking a `size` square from a
    width x height image: cover-resize, short side 9/8 of `size`, centre crop."""
    short_side = round(size * SHORT_SIDE_PER_OUTPUT)
    scale = short_side / min(width, height)
    resized = (max(short_side, round(width * scale)),
               max(short_side, round(height * scale)))
    left, top = (resized[0] - size) // 2, (resized[1] - size) // 2
    return resized, (left, top, left + size, top + size)


def cropped_field_of_view(short_side_degrees, size=64):
    """The field of view (degrees) of a converted `size` x `size` frame from
    a camera with `short_side_degrees` across the photo's short side: the
    frame keeps `size` of the short side's round(size * SHORT_SIDE_PER_OUTPUT)
    resized pixels (8/9 exactly when size is a multiple of 8)."""
    kept = size / round(size * SHORT_SIDE_PER_OUTPUT)
    half = math.tan(math.radians(short_side_degrees) / 2) * kept
    return math.degrees(2 * math.atan(half))


def to_rgb(image):
    """Any Pillow mode -> RGB: 16-bit scaled to 8, transparency on white."""
    if image.mode in _SIXTEEN_BIT_MODES:
        values = np.asarray(image, dtype=np.float64) / 257.0
        image = Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8))
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        background.alpha_composite(rgba)
        image = background
    return image.convert("RGB")


def capture_time(exif):
    """EXIF capture time as a string that sorts chronologically, or None."""
    exif_ifd = exif.get_ifd(_EXIF_IFD)
    stamp = exif_ifd.get(_DATE_TIME_ORIGINAL) or exif.get(_DATE_TIME)
    if not stamp:
        return None
    subseconds = str(exif_ifd.get(_SUBSEC_TIME_ORIGINAL, "")).strip()
    return f"{str(stamp).strip()}.{subseconds:0<9}"


def convert_photo(name, data, size, read_capture_time=False, roll_degrees=0.0):
    """File bytes -> ConvertedPhoto; InputError naming `name` if undecodable.

    `roll_degrees` rotates the upright photo about its centre (counter-
    clockwise, as Image.rotate) before the crop, so that it shows what the
    level camera of its pose would: the 5-d pose has no roll. The crop
    keeps 8/9 of the short side, so rolls up to about 7 degrees bring no
    empty corners into it."""
    short_side = round(size * SHORT_SIDE_PER_OUTPUT)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                focal, photo_size = exif_focal_and_size(image)
                # A square request keeps both sides >= the resize target
                # whatever the EXIF rotation does afterwards.
                image.draft("RGB", (short_side, short_side))
                taken = capture_time(image.getexif()) if read_capture_time else None
                image = to_rgb(ImageOps.exif_transpose(image))
                if roll_degrees:
                    image = image.rotate(roll_degrees, resample=Image.Resampling.BICUBIC)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise InputError(f"{name}: refused by Pillow's decompression-bomb limit "
                         f"({Image.MAX_IMAGE_PIXELS} pixels): {error}")
    except (OSError, SyntaxError, ValueError) as error:
        raise InputError(f"{name}: cannot decode the image "
                         f"(truncated or corrupt?): {error}")
    resized, box = crop_geometry(image.width, image.height, size)
    square = image.resize(resized, Image.Resampling.LANCZOS).crop(box)
    return ConvertedPhoto(name, np.asarray(square, dtype=np.uint8), taken,
                          photo_size, focal)


def convert_photos(source, names, size, read_capture_time=False, rolls=None):
    """Worker task: one scene's photos, read from `source`, in the given order,
    each rotated by its entry of `rolls` (degrees; None: none)."""
    rolls = rolls or [0.0] * len(names)
    return [convert_photo(name, data, size, read_capture_time, roll)
            for (name, data), roll in zip(source.read_many(names), rolls)]
