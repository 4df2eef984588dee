"""Photos per second converting phone-sized (4032x3024) JPEGs from a zip.

The fruit still-life set is 2,396 such photos; the target is at least 50
photos/s on 2 cores, so the whole set converts in under a minute. This writes
a zip of generated photos in the fruit layout (12 views per scene) and times
the full conversion (pool start-up, decoding, encoding and writing) for each
worker count and zip compression, printing a Markdown table. Wall-clock rates
depend on what else the machine runs, so it also reports the load average and
the CPU time one photo costs (read + decode + crop, in this process), which
bounds what N cores can do whatever the load.

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

from data_provider import fruit_stills, photo_preprocess, photo_source

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


def write_benchmark_zip(path, photos, scenes, compression):
    """`scenes` SceneN folders holding the 12 `photos`."""
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for scene in range(1, scenes + 1):
            for view, data in enumerate(photos):
                archive.writestr(f"fruit_stills_dataset/Scene{scene}/IMG_{view + 1}.JPG",
                                 data)
    return path


def timed_conversion(zip_path, output_dir, workers):
    """(seconds, photos written) for one conversion."""
    options = fruit_stills.ConversionOptions(input_path=zip_path, output_dir=output_dir,
                                             overwrite=True, workers=workers)
    start = time.monotonic()
    summary = fruit_stills.convert(options)
    return time.monotonic() - start, summary.photos_written


def cpu_ms_per_photo(zip_path, repeats=2):
    """CPU milliseconds to read, decode and crop one photo, in this process."""
    source = photo_source.ZipSource(zip_path)
    names = photo_source.classify_files(source.list_files())[0][:12]
    start = time.process_time()
    for _ in range(repeats):
        photo_preprocess.convert_photos(source, names, 64)
    return 1000 * (time.process_time() - start) / (repeats * len(names))


def main(argv):
    del argv
    print(f"{os.cpu_count()} CPU core(s); {FLAGS.scenes * 12} photos of "
          f"{PHOTO_SIZE[0]}x{PHOTO_SIZE[1]} per run")
    photos = [phone_photo(view, seed=view) for view in range(12)]
    mean_size = f"{sum(map(len, photos)) / len(photos) / 1e6:.1f} MB"
    rows = []
    with tempfile.TemporaryDirectory() as work:
        output_dir = os.path.join(work, "out")
        warm_up = write_benchmark_zip(os.path.join(work, "one.zip"), photos, 1,
                                      zipfile.ZIP_STORED)
        start_up = timed_conversion(warm_up, output_dir, workers=1)[0]
        print(f"start-up: {start_up:.1f} s for a 12-photo conversion, mostly the "
              "worker server importing the package (once per run)")
        for compression in FLAGS.compression:
            zip_path = write_benchmark_zip(os.path.join(work, f"{compression}.zip"),
                                           photos, FLAGS.scenes, COMPRESSION[compression])
            for workers in FLAGS.workers:
                load = os.getloadavg()[0]
                seconds, count = timed_conversion(zip_path, output_dir, int(workers))
                rate = count / seconds
                rows.append((workers, compression, mean_size, count, f"{seconds:.1f}",
                             f"{rate:.0f}", f"{start_up + FULL_SET_PHOTOS / rate:.0f} s",
                             f"{load:.1f}"))
            cost = cpu_ms_per_photo(zip_path)
            print(f"{compression} zip: {cost:.0f} ms of CPU per photo in one process, "
                  f"so at most {2000 / cost:.0f} photos/s on 2 idle cores")
    header = ("workers", "zip", "photo size", "photos", "seconds", "photos/s",
              f"{FULL_SET_PHOTOS} photos (with start-up)", "load average before")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(str(cell) for cell in row) + " |")


if __name__ == "__main__":
    app.run(main)
