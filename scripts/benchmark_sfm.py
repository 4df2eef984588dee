"""Which COLMAP options register the whole walk: each option of
data_provider.camera_poses.sfm.SfmSettings (and a known focal length) on the
real apple capture and on generated walk-around captures, against the truth.

For every variant: registered photos, the largest camera-centre error after
one similarity fit (share of the mean distance of the true cameras from
their centroid), the largest optical-axis error (degrees) and SfM seconds
(features, matching, mapping; 2 threads). The apple is the CO3D capture in
../shared/data/real/apple (20 frames of 1066x1896, truth in
gt_cameras.npz); the generated captures are textured still lifes
(data_provider.generated_captures) photographed from a full walk round
them. `--part video` compares matching every pair with matching each frame
with its neighbours on generated video frames. The machine is shared: the
load average before each run is printed; compare spreads.

  python -m scripts.benchmark_sfm [--variants default,upright,...] [--seeds 1,2]
"""
import os
import shutil
import tempfile
import time

from gqn import startup

startup.quiet_tensorflow_log()  # before TensorFlow is imported

import numpy as np  # noqa: E402
from absl import flags  # noqa: E402

from data_provider import generated_captures, record_writer  # noqa: E402
from data_provider.camera_poses import sfm  # noqa: E402
from data_provider.camera_poses.frame import similarity_fit  # noqa: E402
from data_provider.camera_poses.intrinsics import Focal  # noqa: E402
from gqn import cli_flags  # noqa: E402
from gqn.poses import viewing_direction  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APPLE = os.path.join(REPO, "..", "shared", "data", "real", "apple")
APPLE_SIZE = (1066, 1896)

# name -> (SfmSettings fields, known focal length?). Each option alone is
# measured on COLMAP's own matching (not guided), as the defaults were chosen.
_PLAIN = {"guided_matching": False}
_RELAXED_REGISTRATION = {"abs_pose_min_num_inliers": 15, "abs_pose_min_inlier_ratio": 0.15}
VARIANTS = {
    "COLMAP's defaults (min_model_size 3)": (_PLAIN, False),
    "upright SIFT": ({**_PLAIN, "upright": True}, False),
    "known focal (the truth)": (_PLAIN, True),
    "16k features": ({**_PLAIN, "max_num_features": 16384}, False),
    "affine shape": ({**_PLAIN, "affine_shape": True}, False),
    "domain-size pooling": ({**_PLAIN, "domain_size_pooling": True}, False),
    "guided matching (the default)": ({}, False),
    "relaxed init (50 inliers)": ({**_PLAIN, "init_min_num_inliers": 50}, False),
    "relaxed registration (15 inliers, ratio 0.15)": ({**_PLAIN, **_RELAXED_REGISTRATION},
                                                      False),
    "min_model_size 10 (COLMAP's)": ({**_PLAIN, "min_model_size": 10}, False),
    "guided + relaxed registration": (_RELAXED_REGISTRATION, False),
    "guided + affine shape": ({"affine_shape": True}, False),
    "affine shape + relaxed registration": (
        {**_PLAIN, "affine_shape": True, **_RELAXED_REGISTRATION}, False),
    "guided + known focal (the truth)": ({}, True),
}

flags.DEFINE_list("variants", list(VARIANTS), "Variants to run (names above).")
flags.DEFINE_list("seeds", ["1", "2"], "Generated still lifes (seeds) to walk round.")
flags.DEFINE_integer("views", 20, "Photos of each generated walk.")
flags.DEFINE_integer("max_image_size", 640, "Long side SfM sees.")
flags.DEFINE_integer("threads", 2, "SfM threads.")
flags.DEFINE_list("part", ["options"], "'options' (the table of variants) and/or "
                  "'video' (matching of generated video frames).")
FLAGS = flags.FLAGS


def camera_errors(model_dir, names, true_centres, true_forward):
    """(largest centre error / radius, largest axis error in degrees) of the
    registered cameras of a COLMAP model against the truth (rows of `names`)."""
    import pycolmap
    found = {}
    for image in pycolmap.Reconstruction(model_dir).images.values():
        matrix = image.cam_from_world().matrix()
        found[image.name] = (-matrix[:, :3].T @ matrix[:, 3], matrix[2, :3])
    indices = [names.index(name) for name in found]
    centres = np.array([found[name][0] for name in found])
    forward = np.array([found[name][1] for name in found])
    if len(indices) < 3:
        return float("nan"), float("nan")
    scale, rotation, translation = similarity_fit(centres, true_centres[indices])
    mapped = scale * centres @ rotation.T + translation
    truth = true_centres[indices]
    radius = np.linalg.norm(true_centres - true_centres.mean(0), axis=1).mean()
    centre_error = np.linalg.norm(mapped - truth, axis=1).max() / radius
    cosine = np.sum((forward @ rotation.T) * true_forward[indices], axis=1)
    return centre_error, float(np.degrees(np.arccos(np.clip(cosine, -1, 1))).max())


def apple_capture():
    """(photos, true centres, true optical axes, true Focal per name)."""
    names = sorted(name for name in os.listdir(APPLE) if name.endswith(".jpg"))
    photos = []
    for name in names:
        with open(os.path.join(APPLE, name), "rb") as handle:
            photos.append((name, handle.read()))
    with np.load(os.path.join(APPLE, "gt_cameras.npz")) as truth:
        rotations, translations = truth["gtR"], truth["gtT"]
        ndc = truth["gtFL"][:, 0]
    centres = -np.einsum("nij,nj->ni", rotations, translations)
    # PyTorch3D NDC focal length: the short side spans 2 units.
    focals = {name: Focal(f * APPLE_SIZE[0] / 2, f * APPLE_SIZE[0] / 2, APPLE_SIZE,
                          "the truth (gt_cameras.npz)") for name, f in zip(names, ndc)}
    return photos, centres, rotations[:, :, 2], focals


def generated_capture(seed):
    photos, poses = generated_captures.photos(seed, FLAGS.views)
    # 640x480 renders at the generator's 45 degrees across the short side.
    focal = 240 / np.tan(np.radians(22.5))
    focals = {name: Focal(focal, focal, (640, 480), "the truth") for name, _ in photos}
    return photos, poses[:, :3].astype(np.float64), \
        viewing_direction(poses[:, 3], poses[:, 4]), focals


def run(work, label, capture, settings, known_focal, sequential=False):
    """One SfM run -> (registered, total, centre error, axis error, seconds,
    CPU seconds, models, load). CPU seconds (every thread of this process)
    do not grow with other processes' load: half of them is what 2 idle
    cores would need if every stage used both."""
    photos, centres, forward, focals = capture
    load = os.getloadavg()[0]
    model_dir = os.path.join(work, label)
    cpu = time.process_time()
    result = sfm.estimate_scene(photos, model_dir, FLAGS.max_image_size, FLAGS.threads,
                                settings=settings, sequential=sequential,
                                pose_file_focals=focals if known_focal else None)
    cpu = time.process_time() - cpu
    names = [name for name, _ in photos]
    centre_error, axis_error = camera_errors(model_dir, names, centres, forward)
    shutil.rmtree(model_dir)
    return (len(result.registered), len(photos), centre_error, axis_error, result.seconds,
            cpu, result.model_sizes, load)


def print_table(header, rows):
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(str(cell) for cell in row) + " |", flush=True)


def options_table(work):
    captures = {}
    if os.path.isdir(APPLE):
        captures["apple"] = apple_capture()
    for seed in FLAGS.seeds:
        captures[f"walk {seed}"] = generated_capture(int(seed))
    header = ["variant"] + [f"{name}: registered, centre %, axis deg, s, CPU s (load)"
                            for name in captures]
    rows = []
    for variant in FLAGS.variants:
        fields, known_focal = VARIANTS[variant]
        settings = sfm.SfmSettings(**fields)
        cells = [variant]
        for name, capture in captures.items():
            registered, total, centre, axis, seconds, cpu, models, load = run(
                work, f"{variant}-{name}".replace(" ", "_"), capture, settings, known_focal)
            split = f", models {'+'.join(map(str, models))}" if len(models) > 1 else ""
            cells.append(f"{registered}/{total}{split}, {100 * centre:.2f}, {axis:.2f}, "
                         f"{seconds:.1f}, {cpu:.1f} ({load:.1f})")
        rows.append(cells)
        print(" | ".join(cells), flush=True)
    print()
    print_table(header, rows)


def video_table(work):
    """Matching generated video frames: every pair, or neighbours only."""
    rows = []
    for seed in FLAGS.seeds:
        frames, poses = generated_captures.video_frames(int(seed), 40, size=(640, 360))
        photos = [(f"frame_{index:05d}.jpg", record_writer.encode_jpeg(frame, quality=95))
                  for index, frame in enumerate(frames)]
        capture = (photos, poses[:, :3].astype(np.float64),
                   viewing_direction(poses[:, 3], poses[:, 4]), {})
        for label, sequential, overlap in (("every pair", False, 0),
                                           ("neighbours, overlap 5", True, 5),
                                           ("neighbours, overlap 10", True, 10)):
            settings = sfm.SfmSettings(sequential_overlap=overlap or 10)
            registered, total, centre, axis, seconds, cpu, models, load = run(
                work, f"video-{seed}-{overlap}", capture, settings, False, sequential)
            rows.append((seed, label, f"{registered}/{total}", f"{100 * centre:.2f}",
                         f"{axis:.2f}", f"{seconds:.1f}", f"{cpu:.1f}", f"{load:.1f}"))
            print(rows[-1], flush=True)
    print()
    print_table(("walk", "matching", "registered", "centre %", "axis deg", "seconds",
                 "CPU seconds", "load"), rows)


def main(argv):
    del argv
    sfm.require_pycolmap()
    print(f"{os.cpu_count()} CPU core(s), {FLAGS.threads} SfM threads, long side "
          f"{FLAGS.max_image_size}")
    with tempfile.TemporaryDirectory() as work:
        if "options" in FLAGS.part:
            options_table(work)
        if "video" in FLAGS.part:
            video_table(work)


if __name__ == "__main__":
    cli_flags.run_main(main, "benchmark_sfm")
