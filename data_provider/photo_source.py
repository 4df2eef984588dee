"""Where the photos come from: a zip archive (read in place) or a folder.

Both look the same to the converter: a sorted list of relative POSIX paths and
a way to read their bytes. Sources are small picklable objects (just a path),
so conversion workers in other processes reopen them instead of receiving
megabytes of photo bytes through a pipe. A zip is never extracted: a member
whose path would escape the archive (`../`, absolute) rejects the whole input.
"""
import collections
import os
import posixpath
import re
import zipfile

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"})

SKIP_MACOS = "in __MACOSX/"
SKIP_HIDDEN = "hidden dot-file"
SKIP_NOT_IMAGE = "not an image"


class InputError(ValueError):
    """The user's input cannot be converted; the message names the file or
    value at fault. Entry points print it and exit non-zero, no traceback."""


def natural_sort_key(text):
    """'IMG_9' before 'IMG_10': digit runs compare as numbers, case ignored.

    The text itself ends the key so that distinct names never tie.
    """
    parts = re.split(r"(\d+)", text)
    return ([int(part) if index % 2 else part.lower()
             for index, part in enumerate(parts)], text)


class ZipSource:
    """Members of a zip archive, read without extracting."""

    def __init__(self, path):
        self.path = path

    def list_files(self):
        try:
            with zipfile.ZipFile(self.path) as archive:
                names = [info.filename for info in archive.infolist()
                         if not info.is_dir()]
        except (zipfile.BadZipFile, OSError) as error:
            raise InputError(f"{self.path}: cannot read the zip archive: {error}")
        for name in names:
            _check_member_stays_inside(self.path, name)
        return sorted(names, key=natural_sort_key)

    def read_many(self, names):
        """Yields (name, bytes) in the order given; opens the archive once."""
        with zipfile.ZipFile(self.path) as archive:
            for name in names:
                try:
                    yield name, archive.read(name)
                except (zipfile.BadZipFile, OSError, EOFError) as error:
                    raise InputError(f"{self.path}: member {name}: {error}")


class FolderSource:
    """Files below a folder, named relative to it with '/' separators."""

    def __init__(self, path):
        self.path = path

    def list_files(self):
        names = []
        for folder, subfolders, files in os.walk(self.path):
            subfolders.sort()
            relative = os.path.relpath(folder, self.path)
            for file_name in files:
                names.append(file_name if relative == "." else
                             posixpath.join(relative.replace(os.sep, "/"), file_name))
        return sorted(names, key=natural_sort_key)

    def read_many(self, names):
        for name in names:
            path = os.path.join(self.path, *name.split("/"))
            try:
                with open(path, "rb") as handle:
                    yield name, handle.read()
            except OSError as error:
                raise InputError(f"{path}: cannot read: {error}")


def open_source(path):
    """A ZipSource or FolderSource for `path`, or InputError saying why not."""
    if not os.path.exists(path):
        raise InputError(f"input {path} does not exist")
    if os.path.isdir(path):
        return FolderSource(path)
    if not zipfile.is_zipfile(path):
        raise InputError(f"input {path} is neither a folder nor a zip archive")
    return ZipSource(path)


def _check_member_stays_inside(archive_path, name):
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or ".." in parts or re.match(r"^[A-Za-z]:", name):
        raise InputError(
            f"{archive_path}: member {name!r} has a path that escapes the "
            "archive; refusing the whole archive (nothing was written)")


def skip_reason(name):
    """Why a listed file is not a photo to convert, or None if it is one."""
    parts = name.split("/")
    if "__MACOSX" in parts[:-1]:
        return SKIP_MACOS
    if any(part.startswith(".") for part in parts):
        return SKIP_HIDDEN
    if posixpath.splitext(name)[1].lower() not in IMAGE_EXTENSIONS:
        return SKIP_NOT_IMAGE
    return None


def classify_files(names):
    """(photo names, Counter of the other files by why they were skipped)."""
    photos, skipped = [], collections.Counter()
    for name in names:
        reason = skip_reason(name)
        if reason is None:
            photos.append(name)
        else:
            skipped[reason] += 1
    return photos, skipped
