"""Photos per second converting phone-sized (4032x3024) JPEGs from a zip.

The fruit still-life set is 2,396 such photos; the target is at least 50
photos/s on 2 cores, so the whole set converts in under a minute. This writes
zips of generated photos in the fruit layout (12 views per scene) and times
full conversions (pool start-up, decoding, encoding and writing) of one scene
and of --scenes scenes, for each worker count and zip compression. The
difference of the two gives the steady rate and the fixed start-up, from
which it estimates the full set. It also reports what one photo costs in CPU
time in this process (read + decode + crop), and the JPEG decode alone, with
Pillow and with TensorFlow: those bound what N cores can do whatever the
machine's load. Prints a Markdown table.

  python scripts/benchmark_convert.py [--scenes 20] [--workers 1,2]
"""
import io
import os
import tempfile
import time
import zipfile

import numpy as np
import tensorflow.compat.v1 as tf
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


def decode_ms(photos, repeats=2):
    """{decoder: CPU milliseconds to decode one photo at 1/8 scale}: the
    floor under the converter's cost, whatever else it does."""
    def pillow(data):
        with Image.open(io.BytesIO(data)) as image:
            image.draft("RGB", (PHOTO_SIZE[0] // 8, PHOTO_SIZE[1] // 8))
            image.load()

    encoded = tf.placeholder(tf.string, [])
    decoded = tf.io.decode_jpeg(encoded, ratio=8)
    with tf.Session() as session:
        decoders = {"Pillow (libjpeg-turbo), draft 1/8": pillow,
                    "TensorFlow decode_jpeg, ratio 8":
                        lambda data: session.run(decoded, {encoded: data})}
        costs = {}
        for name, decode in decoders.items():
            decode(photos[0])
            start = time.process_time()
            for _ in range(repeats):
                for data in photos:
                    decode(data)
            costs[name] = 1000 * (time.process_time() - start) / (repeats * len(photos))
    return costs


def main(argv):
    del argv
    print(f"{os.cpu_count()} CPU core(s); {FLAGS.scenes * 12} photos of "
          f"{PHOTO_SIZE[0]}x{PHOTO_SIZE[1]} per run")
    photos = [phone_photo(view, seed=view) for view in range(12)]
    mean_size = f"{sum(map(len, photos)) / len(photos) / 1e6:.1f} MB"
    for decoder, cost in decode_ms(photos).items():
        print(f"decode alone, {decoder}: {cost:.0f} ms of CPU per photo, so at "
              f"most {2000 / cost:.0f} photos/s on 2 idle cores")
    rows = []
    with tempfile.TemporaryDirectory() as work:
        output_dir = os.path.join(work, "out")
        for compression in FLAGS.compression:
            one_scene, many_scenes = (
                write_benchmark_zip(os.path.join(work, f"{compression}-{n}.zip"),
                                    photos, n, COMPRESSION[compression])
                for n in (1, FLAGS.scenes))
            for workers in FLAGS.workers:
                load = os.getloadavg()[0]
                small_seconds, small_count = timed_conversion(one_scene, output_dir,
                                                              int(workers))
                seconds, count = timed_conversion(many_scenes, output_dir, int(workers))
                rate = (count - small_count) / (seconds - small_seconds)
                start_up = max(small_seconds - small_count / rate, 0.0)
                rows.append((workers, compression, mean_size, count, f"{seconds:.1f}",
                             f"{start_up:.1f}", f"{rate:.0f}",
                             f"{start_up + FULL_SET_PHOTOS / rate:.0f} s", f"{load:.1f}"))
            cost = cpu_ms_per_photo(many_scenes)
            print(f"{compression} zip: {cost:.0f} ms of CPU per photo in one process "
                  f"(read, decode, crop), so at most {2000 / cost:.0f} photos/s on 2 "
                  "idle cores")
    header = ("workers", "zip", "photo size", "photos", "seconds", "start-up s",
              "steady photos/s", f"{FULL_SET_PHOTOS} photos (with start-up)",
              "load average before")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(str(cell) for cell in row) + " |")


if __name__ == "__main__":
    app.run(main)
