"""What does the colour path render before any training, and how far is
that from what the context could give?

The colour path (gqn/colour_path.py) reprojects the context views' pixels
into the query view along its depth planes; its handful of blend weights
start from designed values (INITIAL_WEIGHTS). This script renders held-out
views of converted records with those starting weights (and with any
variants given by --weights) and the presets' rendering focus
(gqn.colour_path.RenderingFocus), with no sweep scores (no trained network),
beside the evaluation's baselines (its reprojection is the starting
weights on the planes the presets render on, 24) and a depth oracle: the views' mean
colour on the plane whose colour is nearest the target, per pixel. The
oracle reads the target, so it is no renderer; it is the ceiling of any
depth choice on these planes and these context views, and the gap below it
is the depth choice's error. It is not a geometry ceiling: the plane it
picks is the one whose colour fits, which on the apple a depth prior from
the SfM points themselves does not approach (docs/benchmarks.md). Prints
PSNR and sharpness per row (mean and per view; on scenes with object masks
also the PSNR on the object and on the rest) and writes colour_path.png:
target | each row's image.

    python scripts/benchmark_colour_path.py --data_dir capture_output/data \\
        --dataset capture --num_scenes 4 --weights correlation=0
"""
import os

from gqn import startup

startup.start_command()  # TensorFlow quiet and in graph mode, before it loads

import numpy as np  # noqa: E402
import tensorflow.compat.v1 as tf  # noqa: E402
from absl import flags  # noqa: E402

from data_provider.scene_arrays import load_scenes  # noqa: E402
from gqn import cli_flags, colour_path, evaluation, images, plane_sweep, sweep  # noqa: E402
from gqn.config import GQNConfig  # noqa: E402
from gqn.model import DEPTH_RANGE_KEY, FEATURE_KEYS, TARGET_MASK_KEY  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("data_dir", None, "Converted records (a folder of datasets).")
flags.DEFINE_string("dataset", None, "Dataset name in --data_dir.")
flags.DEFINE_integer("num_scenes", 8, "Test examples rendered (a capture's "
                     "test examples are its held-out views).")
flags.DEFINE_integer("context_size", 5, "Context views per query (the nearest).")
flags.DEFINE_integer("depths", GQNConfig().rendering().sweep_depths,
                     "Depth planes (default: what the presets render on).")
flags.DEFINE_multi_string("weights", [], "A variant of the starting weights, "
                          "name=value[,name=value] (repeat for more variants), "
                          f"names from {sorted(colour_path.INITIAL_WEIGHTS)}.")
flags.DEFINE_string("output_dir", ".", "Where colour_path.png goes.")
flags.mark_flags_as_required(["data_dir", "dataset"])


def parse_variant(text):
    """'a=1,b=2' -> {'a': 1.0, 'b': 2.0}, names checked."""
    variant = {}
    for item in text.split(","):
        name, _, value = item.partition("=")
        if name not in colour_path.INITIAL_WEIGHTS:
            raise cli_flags.FlagError(f"--weights {text!r}: unknown weight {name!r}; "
                                      f"choose from {sorted(colour_path.INITIAL_WEIGHTS)}")
        try:
            variant[name] = float(value)
        except ValueError:
            raise cli_flags.FlagError(f"--weights {text!r}: {value!r} is not a number") from None
        if variant[name] < 0:
            raise cli_flags.FlagError(f"--weights {text!r}: a weight cannot be negative")
    return variant


def _raw_value(name, weight):
    """The variable value that makes weight `name` equal `weight` (the path
    learns weight = INITIAL_WEIGHTS * exp(LOG_RATE * raw)); 0 -> a tiny one."""
    return np.log(max(weight, 1e-12) / colour_path.INITIAL_WEIGHTS[name]) / colour_path.LOG_RATE


def render(scenes, variants):
    """{label: images (N, H, W, 3)} of the colour path at each variant of
    the starting weights, and of the depth oracle."""
    count, size = len(scenes["target"]), scenes["target"].shape[1]
    grid = [count, size, size, FLAGS.depths]
    inputs = {key: tf.constant(scenes[key].astype(np.float32)) for key in FEATURE_KEYS}
    geometry = evaluation.renderer_geometry(inputs)
    planes = sweep.depth_planes(inputs[DEPTH_RANGE_KEY], FLAGS.depths)
    image = evaluation.untrained_rendering(geometry, planes)
    samples, visibility, _ = plane_sweep.colours_along_rays(*geometry, planes, size)
    means = tf.reshape(sweep.view_statistics(samples, visibility)[..., :3], grid + [3])
    error = tf.reduce_sum(tf.square(means - tf.constant(scenes["target"])[..., None, :]), -1)
    oracle = tf.reduce_sum(tf.one_hot(tf.argmin(error, -1), FLAGS.depths)[..., None] * means, 3)
    weights = {variable.op.name.split("/")[-1]: variable for variable in tf.global_variables()}
    rendered = {}
    with tf.Session() as session:
        for label, variant in variants.items():
            session.run(tf.global_variables_initializer())
            for name, value in variant.items():
                session.run(weights[name].assign(_raw_value(name, value)))
            rendered[label] = session.run(image)
        rendered["depth oracle (reads the target)"] = session.run(oracle)
    return rendered


def main(_):
    variants = {"colour path, starting weights": {}}
    for text in FLAGS.weights:
        variants[f"colour path, {text}"] = parse_variant(text)
    try:
        scenes = load_scenes(FLAGS.dataset, FLAGS.data_dir, FLAGS.context_size,
                             FLAGS.num_scenes)
    except (ValueError, FileNotFoundError) as error:  # no records, unknown set
        raise SystemExit(f"error: {error}") from None
    size = scenes["target"].shape[1]
    metrics = evaluation.ImageMetrics(size)
    answers = {f"baseline: {name}": views
               for name, views in evaluation.baseline_views(scenes).items()}
    with tf.Graph().as_default():
        answers.update(render(scenes, variants))
    width = max(len(label) for label in answers)
    masks = scenes.get(TARGET_MASK_KEY)
    regions = ("fruit_psnr", "background_psnr") if masks is not None else ()
    print(f"{len(scenes['target'])} test views of {FLAGS.dataset}, {size} px, "
          f"{FLAGS.context_size} nearest views as context, {FLAGS.depths} planes")
    print(f"{'':{width}}  PSNR (dB)  sharpness" + "".join(f"  {name:>15}" for name in regions)
          + "  PSNR per view")
    for label, answer in answers.items():
        scores = metrics(scenes["target"], np.clip(answer, 0, 1), masks)
        per_view = " ".join(f"{value:5.1f}" for value in scores["psnr"][:12])
        print(f"{label:{width}}  {np.mean(scores['psnr']):9.2f}  "
              f"{np.mean(scores['sharpness']):9.3f}"
              + "".join(f"  {np.nanmean(scores[name]):15.2f}" for name in regions)
              + f"  {per_view}")
    shown = min(len(scenes["target"]), evaluation.MAX_GRID_SCENES)
    rows = [[scenes["target"][index]] + [np.clip(answer[index], 0, 1)
                                         for answer in answers.values()]
            for index in range(shown)]
    labels = ["target"] + [label.split(": ")[1].replace("_", " ") for label in answers
                           if label.startswith("baseline: ")] + [
        f"colour {index}" for index in range(len(variants))] + ["oracle"]
    path = os.path.join(FLAGS.output_dir, "colour_path.png")
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    picture = images.grid(rows, column_labels=labels, scale=max(1, 128 // size))
    images.save_atomically(path, lambda temporary: picture.save(temporary, "PNG"))
    print(f"pictures: {path} (colour i: the i-th colour path row above)")


if __name__ == "__main__":
    cli_flags.run_main(main, "benchmark_colour_path")
