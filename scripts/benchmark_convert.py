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

With --parts sfm (the default runs both) it times structure from motion
(`--poses sfm`): textured synthetic still lifes of 12 photos of 640x480 (the
12-view fruit layout raised to z = 0.7 and pitched down at the fruit, as in
tests/test_sfm.py), SfM seconds per scene (features, exhaustive matching,
incremental mapping, writing the model; rendering not counted) with the
registered views, min / median / max and max/min; and the real apple capture
(../shared/data/real/apple, 20 frames of 1066x1896): SfM alone at each
--apple_sizes long side, and the whole conversion (SfM, de-roll, crop,
records, 4 held-out views) end to end. The machine is shared, so the load
average before each run is printed beside it: compare spreads.

  python scripts/benchmark_convert.py [--scenes 20] [--workers 1,2] [--parts convert,sfm]
"""
import io
import os
import statistics
import tempfile
import time
import zipfile

import numpy as np
from gqn import startup

startup.start_command()  # TensorFlow quiet and in graph mode, before it loads

import tensorflow.compat.v1 as tf
from absl import flags
from PIL import Image, ImageDraw

from data_provider import fruit_stills, photo_preprocess, photo_source, record_writer, synthetic
from data_provider.camera_poses import sfm
from data_provider.fruit_poses import FRUIT_LAYOUTS
from gqn import cli_flags

flags.DEFINE_list("parts", ["convert", "sfm"], "What to time: 'convert' (the fruit "
                  "zip) and 'sfm' (structure from motion).")
flags.DEFINE_integer("scenes", 20, "12-photo scenes in the benchmark zip.")
flags.DEFINE_list("workers", ["1", "2"], "Worker counts to time.")
flags.DEFINE_list("compression", ["deflated", "stored"], "Zip member compression.")
flags.DEFINE_integer("sfm_scenes", 3, "Textured 12-photo still lifes to time (seeds 1..N).")
flags.DEFINE_integer("sfm_max_image_size", 640, "Long side SfM sees of the still lifes.")
flags.DEFINE_list("apple_sizes", ["640", "1000"], "Long sides to time the apple's SfM at.")
flags.DEFINE_integer("sfm_threads", 2, "Threads per SfM stage.")
FLAGS = flags.FLAGS

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APPLE = os.path.join(REPO, "..", "shared", "data", "real", "apple")
SFM_PHOTO_SIZE = (640, 480)
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


def still_life_photos(seed):
    """12 textured 640x480 JPEGs of still life `seed` from the 12-view layout
    photographed from above (synthetic.photographed_from_above)."""
    poses = synthetic.photographed_from_above(FRUIT_LAYOUTS[12])
    scene = synthetic.still_life_scene(np.random.default_rng(seed))
    views = synthetic.render(scene, poses, *SFM_PHOTO_SIZE, textured=True)
    return [(f"IMG_{index + 1:04d}.jpg", record_writer.encode_jpeg(view, quality=90))
            for index, view in enumerate(views)]


def print_table(header, rows):
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(str(cell) for cell in row) + " |")


def time_conversion():
    """Prints the conversion table."""
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
    print_table(header, rows)


def time_sfm():
    """Prints the SfM tables."""
    sfm.require_pycolmap()  # before any rendering
    print(f"{os.cpu_count()} CPU core(s), {FLAGS.sfm_threads} SfM thread(s)")
    rows, seconds = [], []
    with tempfile.TemporaryDirectory() as work:
        for seed in range(1, FLAGS.sfm_scenes + 1):
            photos = still_life_photos(seed)
            load = os.getloadavg()[0]
            result = sfm.estimate_scene(photos, os.path.join(work, f"still_{seed}"),
                                        FLAGS.sfm_max_image_size, FLAGS.sfm_threads)
            seconds.append(result.seconds)
            rows.append((seed, f"{len(result.registered)}/{len(photos)}",
                         result.num_points3d, f"{result.seconds:.1f}", f"{load:.1f}"))
        print(f"\nTextured still lifes, 12 photos of {SFM_PHOTO_SIZE[0]}x{SFM_PHOTO_SIZE[1]}, "
              f"max_image_size {FLAGS.sfm_max_image_size}:")
        print_table(("seed", "registered", "3-D points", "SfM seconds",
                     "load average before"), rows)
        print(f"min / median / max {min(seconds):.1f} / {statistics.median(seconds):.1f}"
              f" / {max(seconds):.1f} s; max/min {max(seconds) / min(seconds):.1f}")

        if not os.path.isdir(APPLE):
            print(f"\nApple capture not found at {os.path.normpath(APPLE)}; skipped.")
            return
        rows = []
        for size in FLAGS.apple_sizes:
            load = os.getloadavg()[0]
            start = time.monotonic()
            photos = []
            for name in sorted(n for n in os.listdir(APPLE) if n.endswith(".jpg")):
                with open(os.path.join(APPLE, name), "rb") as handle:
                    photos.append((name, handle.read()))
            result = sfm.estimate_scene(photos, os.path.join(work, f"apple_{size}"),
                                        int(size), FLAGS.sfm_threads)
            rows.append((size, f"{len(result.registered)}/{len(photos)}",
                         result.num_points3d, f"{time.monotonic() - start:.1f}",
                         f"{load:.1f}"))
        print("\nCO3D apple capture, 20 frames of 1066x1896, SfM alone:")
        print_table(("max_image_size", "registered", "3-D points", "seconds",
                     "load average before"), rows)
        load = os.getloadavg()[0]
        start = time.monotonic()
        summary = fruit_stills.convert(fruit_stills.ConversionOptions(
            input_path=APPLE, output_dir=os.path.join(work, "converted"), name="apple",
            image_size=64, poses="sfm", holdout_views=4))
        print(f"\nThe apple converted end to end (convert_fruit_stills.py --poses sfm "
              f"--holdout_views 4, SfM at the default long side "
              f"{fruit_stills.ConversionOptions.sfm_max_image_size}): "
              f"{time.monotonic() - start:.1f} s, {summary.photos_written} of 20 photos "
              f"posed (load average before {load:.1f})")


def main(argv):
    del argv
    if "convert" in FLAGS.parts:
        time_conversion()
    if "sfm" in FLAGS.parts:
        time_sfm()


if __name__ == "__main__":
    cli_flags.run_main(main, "benchmark_convert")
