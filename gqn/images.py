"""Pictures a person looks at: labelled PNG grids and fly-around GIFs.

Files are written under a temporary name and renamed, so a reader never sees
half an image.
"""
import os
import tempfile

import numpy as np
from PIL import Image, ImageDraw

BACKGROUND = (255, 255, 255)
LABEL_HEIGHT = 14
ROW_LABEL_WIDTH = 64


def to_uint8(image):
    """float [0, 1] (H, W, 3) -> uint8."""
    return (np.clip(np.asarray(image, np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def heatmap(values, vmax=None):
    """(H, W) non-negative values -> (H, W, 3) in [0, 1], black-red-yellow-white
    (for per-pixel spread)."""
    values = np.asarray(values, np.float32)
    scaled = values / max(vmax if vmax is not None else values.max(), 1e-8)
    scaled = np.clip(scaled, 0.0, 1.0)
    return np.stack([np.clip(3 * scaled, 0, 1), np.clip(3 * scaled - 1, 0, 1),
                     np.clip(3 * scaled - 2, 0, 1)], axis=-1)


def grid(rows, column_labels=None, scale=1, gap=2, row_labels=None):
    """rows: list of lists of float (H, W, 3) images (None leaves a blank).
    Returns a PIL image with optional labels above the columns and left of
    the rows."""
    height, width = next(np.shape(cell) for row in rows for cell in row
                         if cell is not None)[:2]
    cell_h, cell_w = height * scale, width * scale
    columns = max(len(row) for row in rows)
    top = LABEL_HEIGHT if column_labels else 0
    left = ROW_LABEL_WIDTH if row_labels else 0
    canvas = Image.new("RGB", (left + columns * (cell_w + gap) + gap,
                               top + len(rows) * (cell_h + gap) + gap), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    for column, label in enumerate(column_labels or []):
        draw.text((left + gap + column * (cell_w + gap), 1), label, fill=(0, 0, 0))
    for row_index, label in enumerate(row_labels or []):
        draw.text((2, top + gap + row_index * (cell_h + gap) + cell_h // 2 - 5), label,
                  fill=(0, 0, 0))
    for row_index, row in enumerate(rows):
        for column, cell in enumerate(row):
            if cell is None:
                continue
            tile = Image.fromarray(to_uint8(cell)).resize((cell_w, cell_h), Image.NEAREST)
            canvas.paste(tile, (left + gap + column * (cell_w + gap),
                                top + gap + row_index * (cell_h + gap)))
    return canvas


def save_atomically(path, save):
    """Runs save(temporary path) and moves the file to `path`: a reader never
    sees half a picture, and a failed save leaves nothing behind."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".partial-", dir=folder)
    os.close(handle)
    try:
        save(temporary)
        # mkstemp makes the file private (0600); a picture is for sharing,
        # so it gets the permissions any new file would (0644 under umask 022).
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        os.remove(temporary)
        raise
    return path


def save_png(image, path):
    return save_atomically(path, lambda target: image.save(target, format="PNG"))


def save_gif(frames, path, scale=1, frame_seconds=0.12):
    """frames: list of float (H, W, 3) images -> looping GIF."""
    pictures = [Image.fromarray(to_uint8(frame)) for frame in frames]
    if scale != 1:
        pictures = [p.resize((p.width * scale, p.height * scale), Image.NEAREST)
                    for p in pictures]
    return save_atomically(path, lambda target: pictures[0].save(
        target, format="GIF", save_all=True, append_images=pictures[1:],
        duration=int(frame_seconds * 1000), loop=0))
