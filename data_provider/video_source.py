"""Video clips as captures: `--input clip.mp4` (or .mov, .m4v), or a folder
of clips, one scene per clip.

People film a walk round an object more often than they take 30 photos.
Each clip is decoded with PyAV (the optional 'video' extra; it ships its own
FFmpeg, so no system binary is needed), turned upright as the rotation the
phone wrote into the stream's display matrix says, and `frames` frames are
kept, spread evenly over the clip: it is cut into that many windows of
consecutive frames, and each window gives its sharpest frame (the variance
of the Laplacian of a small grayscale copy: motion blur and focus hunting
score low). The kept frames become JPEG photos named
`<clip>/frame_<index>.jpg` with the frame's index zero-padded, so that name
order is time order (structure from motion matches each frame with its
neighbours in that order). A VideoFrames source then looks to the converter
like a folder of photos.
"""
import io
import os
import posixpath

import numpy as np
from PIL import Image
from tqdm import tqdm

from data_provider.photo_source import InputError, natural_sort_key

VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".m4v"})
DEFAULT_FRAMES = 40
# Frames are scored for sharpness on a grayscale copy this wide: enough for
# blur to show, cheap enough for every frame of a long clip.
SHARPNESS_WIDTH = 320
# Kept frames are stored at most this long on their long side (structure
# from motion sees 640 by default, the records 64).
MAX_FRAME_SIDE = 1920
_JPEG_QUALITY = 95


def require_av():
    """The av module (PyAV), or InputError telling how to install it."""
    try:
        import av
    except ImportError as error:
        raise InputError("video input needs the optional 'video' extra (PyAV, which "
                         f"ships its own FFmpeg): pip install '.[video]' ({error})")
    return av


def is_video(name):
    return posixpath.splitext(name)[1].lower() in VIDEO_EXTENSIONS


def clips_in(path):
    """The video clips an input names: the file itself, or the clips below a
    folder (relative paths, natural order); [] when it is neither."""
    if os.path.isfile(path):
        return [path] if is_video(path) else []
    if not os.path.isdir(path):
        return []
    found = []
    for folder, subfolders, files in os.walk(path):
        subfolders.sort()
        found += [os.path.join(folder, name) for name in files
                  if is_video(name) and not name.startswith(".")]
    return sorted(found, key=lambda clip: natural_sort_key(os.path.relpath(clip, path)))


def laplacian_variance(gray):
    """Variance of the 4-neighbour Laplacian of a 2-D array: high for sharp
    detail, low for a blurred frame of the same scene."""
    gray = np.asarray(gray, np.float32)
    laplacian = (gray[1:-1, :-2] + gray[1:-1, 2:] + gray[:-2, 1:-1] + gray[2:, 1:-1]
                 - 4 * gray[1:-1, 1:-1])
    return float(laplacian.var())


def upright(pixels, rotation):
    """The stored frame turned as the display matrix says: `rotation`
    degrees counter-clockwise (PyAV's VideoFrame.rotation; -90 for a phone
    held upright)."""
    return np.ascontiguousarray(np.rot90(pixels, k=int(round(rotation / 90)) % 4))


def windows(total, count):
    """Window index of each of `total` frames: `count` runs of consecutive
    frames, as equal as can be (all frames, each its own, when fewer)."""
    count = min(count, total)
    return (np.arange(total) * count) // total


def _frame_count(av, path, stream):
    """The stream's frame count: from the container, else by demuxing."""
    if stream.frames:
        return stream.frames
    with av.open(path) as container:
        return sum(1 for packet in container.demux(container.streams.video[0])
                   if packet.size)


def choose_frames(path, count, progress_stream=None, label=None):
    """[(frame index, upright uint8 (H, W, 3) pixels)] of the sharpest frame
    in each of `count` windows of the clip at `path`, in time order, and the
    clip's frame count. InputError naming the file if it cannot be decoded."""
    av = require_av()
    label = label or os.path.basename(path)
    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise InputError(f"{path}: holds no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            total = _frame_count(av, path, stream)
            window_of = windows(total, count) if total else None
            best = {}
            progress = tqdm(total=total or None, desc=f"decoding {label}", unit="frame",
                            file=progress_stream)
            try:
                for index, frame in enumerate(container.decode(stream)):
                    progress.update(1)
                    if window_of is None or index >= len(window_of):
                        break
                    window = int(window_of[index])
                    height = max(2, round(frame.height * SHARPNESS_WIDTH / frame.width))
                    gray = frame.reformat(width=SHARPNESS_WIDTH, height=height,
                                          format="gray").to_ndarray()
                    score = laplacian_variance(gray)
                    if window not in best or score > best[window][0]:
                        best[window] = (score, index, upright(
                            frame.to_ndarray(format="rgb24"), frame.rotation))
            finally:
                progress.close()
    except av.FFmpegError as error:
        raise InputError(f"{path}: cannot decode the video (truncated or corrupt?): "
                         f"{error}")
    if len(best) < 2:
        raise InputError(f"{path}: {len(best)} decodable frame(s); a scene needs more")
    return [(index, pixels) for _, (_, index, pixels) in sorted(best.items())], total


def frame_jpeg(pixels, max_side=MAX_FRAME_SIDE):
    """JPEG bytes of a frame, shrunk to `max_side` on its long side."""
    image = Image.fromarray(pixels)
    scale = max_side / max(image.size)
    if scale < 1:
        image = image.resize((round(image.width * scale), round(image.height * scale)),
                             Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=_JPEG_QUALITY)
    return buffer.getvalue()


class VideoFrames:
    """The chosen frames of one or more clips, as a photo source: names
    `<clip>/frame_<index>.jpg` (the clip's path relative to the input,
    without its extension), bytes held in memory. `sequential_scenes` are
    its scene folders, whose photos are video frames in name order; `notes`
    says what was kept of each clip."""

    def __init__(self, frames, sequential_scenes, notes):
        self.frames = frames
        self.sequential_scenes = tuple(sequential_scenes)
        self.notes = list(notes)

    def list_files(self):
        return sorted(self.frames, key=natural_sort_key)

    def read_many(self, names):
        for name in names:
            yield name, self.frames[name]


def open_video_input(path, count=DEFAULT_FRAMES, progress_stream=None,
                     max_side=MAX_FRAME_SIDE):
    """A VideoFrames source of every clip `path` names (see clips_in)."""
    clips = clips_in(path)
    if not clips:
        raise InputError(f"input {path} holds no video clip "
                         f"({', '.join(sorted(VIDEO_EXTENSIONS))})")
    require_av()
    root = path if os.path.isdir(path) else os.path.dirname(path)
    frames, scenes, notes = {}, [], []
    for clip in clips:
        scene = posixpath.splitext(os.path.relpath(clip, root).replace(os.sep, "/"))[0]
        chosen, total = choose_frames(clip, count, progress_stream, label=scene)
        digits = len(str(max(total - 1, 1)))
        for index, pixels in chosen:
            frames[f"{scene}/frame_{index:0{digits}d}.jpg"] = frame_jpeg(pixels, max_side)
        scenes.append(scene)
        notes.append(f"{scene}: {len(chosen)} of the clip's {total} frames kept, the "
                     f"sharpest of each of {len(chosen)} even stretches")
    return VideoFrames(frames, scenes, notes)
