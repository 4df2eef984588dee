"""Photos per second converting phone-sized (4032x3024) JPEGs from a zip.

The fruit still-life set is 2,396 such photos; the target is at least 50
photos/s on 2 cores, so the whole set converts in under a minute. This writes
a zip of generated photos in the fruit layout (12 views per scene) and times
the full conversion (pool start-up, decoding, encoding and writing) for each
worker count and zip compression, printing a Markdown table.

  python scripts/benchmark_convert.py [--scenes 20] [--workers 1,2]
"""
import io
import os
import tempfile
import time
import zipfile

import numpy as np
from absl import app, flags
from PIL import Image, ImageDraw

flags.DEFINE_integer("scenes", 20, "12-photo scenes in the benchmark zip.")
flags.DEFINE_list("workers", ["1", "2"], "Worker counts to time.")
flags.DEFINE_list("compression", ["deflated", "stored"], "Zip member compression.")
FLAGS = flags.FLAGS

FULL_SET_PHOTOS = 2396
PHOTO_SIZE = (4032, 3024)
COMPRESSION = {"deflated": zipfile.ZIP_DEFLATED, "stored": zipfile.ZIP_STORED}


def phone_photo(view, seed):
    """A 12-megapixel JPEG with texture and sensor-like noise, so it weighs
    (a few MB) and decodes like a real photo rather than a flat colour."""
    rng = np.random.RandomState(seed)
    width, height = PHOTO_SIZE
    image = Image.new("RGB", PHOTO_SIZE, (200, 190, 170))
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x, y = rng.randint(0, width), rng.randint(height // 3, height)
        radius = rng.randint(150, 600)
        draw.ellipse((x - radius, y - radius, x + radius, y + radius),
                     fill=tuple(int(c) for c in rng.randint(0, 255, 3)))
    draw.text((100, 100), f"view {view}", fill="black")
    noise = rng.normal(0, 6, (height, width, 3))
    pixels = np.clip(np.asarray(image, dtype=np.float32) + noise, 0, 255)
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


def write_benchmark_zip(path, scenes, compression):
    photos = [phone_photo(view, seed=view) for view in range(12)]
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for scene in range(1, scenes + 1):
            for view, data in enumerate(photos):
                archive.writestr(f"fruit_stills_dataset/Scene{scene}/IMG_{view + 1}.JPG",
                                 data)
    return sum(len(data) for data in photos) / len(photos)


def main(argv):
    del argv
    # Imported here: spawned conversion workers re-import this script and
    # must not load TensorFlow.
    from data_provider import fruit_stills

    print(f"{os.cpu_count()} CPU core(s); {FLAGS.scenes * 12} photos of "
          f"{PHOTO_SIZE[0]}x{PHOTO_SIZE[1]} per run")
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for compression in FLAGS.compression:
            zip_path = os.path.join(work, f"{compression}.zip")
            mean_bytes = write_benchmark_zip(zip_path, FLAGS.scenes, COMPRESSION[compression])
            for workers in FLAGS.workers:
                options = fruit_stills.ConversionOptions(
                    input_path=zip_path, output_dir=os.path.join(work, "out"),
                    overwrite=True, workers=int(workers))
                start = time.monotonic()
                summary = fruit_stills.convert(options)
                seconds = time.monotonic() - start
                rate = summary.photos_written / seconds
                rows.append((workers, compression, f"{mean_bytes / 1e6:.1f} MB",
                             summary.photos_written, f"{seconds:.1f}", f"{rate:.0f}",
                             f"{FULL_SET_PHOTOS / rate:.0f} s"))
    header = ("workers", "zip", "photo size", "photos", "seconds", "photos/s",
              f"{FULL_SET_PHOTOS} photos")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(str(cell) for cell in row) + " |")


if __name__ == "__main__":
    app.run(main)
