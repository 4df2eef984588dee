"""Evaluation of trained model_dirs on a fixed set of scenes: the ELBO terms,
image metrics of generated views, four baselines that need no training,
and picture grids.

Baselines: 'nearest_context' answers with the context view whose pose is
closest to the query pose; 'context_mean' with the mean of the context
views; 'plane_sweep' with what geometry alone renders from the context
(gqn.plane_sweep); 'reprojection' with the model's own colour path
(gqn.colour_path) at its starting weights and with no network's depth
scores, i.e. the reprojected image an untrained model renders wherever
the context sees (gqn.colour_path.ColourPath.rendered_share). A model that does
not beat them has not learned to render, and one that only ties the
reprojection has learnt nothing its untrained geometry did not give.
"""
import json
import os

import numpy as np
import tensorflow.compat.v1 as tf

from gqn import colour_path, images, objective, plane_sweep, poses, sweep
from gqn.config import GQNConfig
from gqn.model import (CONTEXT_FIELD_OF_VIEW_KEY, DEPTH_RANGE_KEY, FEATURE_KEYS,
                       QUERY_FIELD_OF_VIEW_KEY, TARGET_MASK_KEY, rendering_focus)
from gqn.predictor import Predictor

ELBO_TERMS = ("elbo", "kl", "nll", "bits_per_dim")
IMAGE_METRICS = ("mse", "psnr", "ssim", "sharpness")
MAX_GRID_SCENES = 8
# A query whose viewing direction is farther than this from every context
# view's stands in a gap of a walk-around. On the apple (32 px, seed 0) the
# fine-tuned model scored 28.7, 24.5, 22.1 and 14.0 dB on held-out views 2,
# 5, 17 and 30 degrees from their nearest frame.
GAP_DEGREES = 25.0


class ImageMetrics:
    """objective.image_metrics (TensorFlow's PSNR/SSIM) on NumPy arrays, and
    objective.masked_image_metrics where an object mask is given."""

    def __init__(self, image_size):
        self.graph = tf.Graph()
        with self.graph.as_default():
            shape = [None, image_size, image_size, 3]
            self.target = tf.placeholder(tf.float32, shape)
            self.image = tf.placeholder(tf.float32, shape)
            self.mask = tf.placeholder(tf.float32, shape[:3] + [1])
            self.metrics = objective.image_metrics(self.target, self.image)
            self.masked = objective.masked_image_metrics(self.target, self.image,
                                                         self.mask)
        self.session = tf.Session(graph=self.graph)

    def __call__(self, target, image, mask=None):
        feed = {self.target: target, self.image: image}
        if mask is None:
            return self.session.run(self.metrics, feed)
        return self.session.run({**self.metrics, **self.masked}, {**feed, self.mask: mask})


def nearest_context_views(scenes):
    distances = np.linalg.norm(
        scenes["context_poses"] - scenes["query_pose"][:, None, :], axis=-1)
    nearest = np.argmin(distances, axis=1)
    return scenes["context_frames"][np.arange(len(nearest)), nearest]


def nearest_context_degrees(scenes):
    """Per scene, the angle (degrees) between the query camera's viewing
    direction and the closest of its context views': how far the query is
    from every view it is given (a held-out view in a gap of a walk-around
    has a large one, and comes out worst)."""
    query = poses.camera_axes_np(scenes["query_pose"])[0]
    context = poses.camera_axes_np(scenes["context_poses"])[0]
    closest = np.einsum("nk,nmk->nm", query, context).max(axis=1).astype(np.float64)
    return np.degrees(np.arccos(np.clip(closest, -1.0, 1.0)))


def _listed(per_example):
    """{name: values} -> {name: [float or None]} for JSON (None: NaN, a
    masked metric of a view without the object)."""
    return {name: [None if np.isnan(value) else float(value)
                   for value in np.asarray(values, np.float64)]
            for name, values in per_example.items()}


def summarise(per_example):
    """{name: values} -> {name: {'mean', 'stderr'}} (stderr 0 for one value).
    NaN values (a masked metric of a view without the object) are left out,
    and a metric with no value left is not reported."""
    summary = {}
    for name, values in per_example.items():
        values = np.asarray(values, np.float64)
        values = values[~np.isnan(values)]
        if not len(values):  # e.g. no view shows the object
            continue
        stderr = values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else 0.0
        summary[name] = {"mean": float(values.mean()), "stderr": float(stderr)}
    return summary


def _batches(count, batch_size):
    return [slice(start, min(start + batch_size, count))
            for start in range(0, count, batch_size)]


def evaluate_model(predictor, scenes, metrics, num_samples, batch_size=8):
    """Per-example ELBO terms and image metrics of the first sample, plus the
    samples' per-pixel spread. Scene i always uses noise seed i."""
    count = len(scenes["target"])
    seeds = np.arange(count)
    masks = scenes.get(TARGET_MASK_KEY)
    per_example = {name: [] for name in ELBO_TERMS + image_metric_names(scenes)}
    generated, spread = [], []
    for part in _batches(count, batch_size):
        features = {key: scenes[key][part] for key in FEATURE_KEYS}
        samples = predictor.render(features, seeds[part], num_samples=num_samples)
        terms = predictor.score(features, scenes["target"][part], seeds[part])
        quality = metrics(scenes["target"][part], samples[:, 0],
                          None if masks is None else masks[part])
        for name in ELBO_TERMS:
            per_example[name].extend(terms[name])
        for name in image_metric_names(scenes):
            per_example[name].extend(quality[name])
        generated.append(samples[:, 0])
        spread.append(samples.std(axis=1).mean(axis=-1))
    return per_example, np.concatenate(generated), np.concatenate(spread)


def image_metric_names(scenes):
    """The image metrics `scenes` allow: the masked ones need object masks."""
    return IMAGE_METRICS + (objective.MASKED_METRICS if TARGET_MASK_KEY in scenes else ())


def _views_in_batches(scenes, render, batch_size=8):
    """`render(inputs)` (a dict of FEATURE_KEYS tensors -> images) run over
    `scenes` in batches of a fixed size (the last one padded by repeating
    its end): (N, H, W, 3)."""
    views = []
    with tf.Graph().as_default():
        inputs = {key: tf.placeholder(tf.float32, [batch_size] + list(scenes[key].shape[1:]))
                  for key in FEATURE_KEYS}
        image = render(inputs)
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            for part in _batches(len(scenes["target"]), batch_size):
                feed = {}
                for key, placeholder in inputs.items():
                    values = scenes[key][part]
                    feed[placeholder] = np.concatenate(
                        [values, np.repeat(values[-1:], batch_size - len(values), 0)])
                views.append(session.run(image, feed)[:len(values)])
    return np.concatenate(views)


def renderer_geometry(inputs):
    """The context frames, poses and fields of view, the query's pose and
    field of view: the arguments every reprojecting renderer starts with."""
    return (inputs["context_frames"], inputs["context_poses"],
            inputs[CONTEXT_FIELD_OF_VIEW_KEY], inputs["query_pose"],
            inputs[QUERY_FIELD_OF_VIEW_KEY])


def _plane_sweep_image(inputs):
    return plane_sweep.plane_sweep(*renderer_geometry(inputs), inputs[DEPTH_RANGE_KEY]).image


def untrained_rendering(geometry, planes):
    """The colour path's rendered image at its starting weights, as a
    preset renders (its focus and resampling), on `planes` (B, D) with its
    depth chosen by the views' agreement alone (flat sweep scores).
    geometry: renderer_geometry's tuple."""
    config = GQNConfig().rendering()
    return colour_path.without_network(*geometry, planes, rendering_focus(config),
                                       config.colour_sampling).rendered_image


def _reprojection_image(inputs):
    """untrained_rendering on the planes a preset renders on."""
    planes = sweep.depth_planes(inputs[DEPTH_RANGE_KEY], GQNConfig().rendering().sweep_depths)
    return untrained_rendering(renderer_geometry(inputs), planes)


def baseline_views(scenes):
    """{baseline name: its views of `scenes` (N, H, W, 3)}."""
    return {"nearest_context": nearest_context_views(scenes),
            "context_mean": scenes["context_frames"].mean(axis=1),
            "plane_sweep": _views_in_batches(scenes, _plane_sweep_image),
            "reprojection": _views_in_batches(scenes, _reprojection_image)}


def evaluate_baselines(scenes, metrics):
    return {name: metrics(scenes["target"], answer, scenes.get(TARGET_MASK_KEY))
            for name, answer in baseline_views(scenes).items()}


def scene_grid(scenes, renderings, scale):
    """Rows: context views | target | per model: generated, spread."""
    views = scenes["context_frames"].shape[1]
    labels = [f"ctx {i + 1}" for i in range(views)] + ["target"]
    rows = []
    shown = min(len(scenes["target"]), MAX_GRID_SCENES)
    spread_max = max(float(spread[:shown].max()) for _, _, spread in renderings)
    for label, _, _ in renderings:
        labels += [f"{label}", "spread"]
    for index in range(shown):
        row = list(scenes["context_frames"][index]) + [scenes["target"][index]]
        for _, generated, spread in renderings:
            row += [generated[index], images.heatmap(spread[index], spread_max)]
        rows.append(row)
    return images.grid(rows, column_labels=labels, scale=scale)


def write_json(data, path):
    """Atomic JSON write."""
    temporary = path + ".partial"
    with open(temporary, "w") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.replace(temporary, path)


def format_table(results):
    """results: {row label: summary} -> aligned text table of means."""
    columns = ELBO_TERMS + IMAGE_METRICS
    if any("fruit_psnr" in summary for summary in results.values()):
        columns += objective.MASKED_METRICS
    widths = [max(18, len(name) + 2) for name in columns]
    label_width = max([24] + [len(label) + 1 for label in results])
    lines = [" " * label_width
             + "".join(f"{name:>{width}}" for name, width in zip(columns, widths))]
    for label, summary in results.items():
        cells = "".join(
            (f"{summary[name]['mean']:.4g}±{summary[name]['stderr']:.2g}"
             if name in summary else "-").rjust(width)
            for name, width in zip(columns, widths))
        lines.append(f"{label:<{label_width}}{cells}")
    return "\n".join(lines)


def per_view_table(per_scene, labels=("model", "compared model"), gap_degrees=GAP_DEGREES):
    """Text: PSNR per scene (the rows of grid.png) of the models, the
    reprojection and the nearest context view, beside each query's angle
    to its nearest context view, and which rows stand in gaps of a walk
    (what a user can change is where the photos are taken). per_scene:
    metrics.json's; labels: the model's and the compared model's."""
    columns = [(label, per_scene[key]) for key, label in zip(("model", "compare_model"), labels)
               if key in per_scene]
    columns += [(name.replace("_", " "), per_scene["baselines"][name])
                for name in ("reprojection", "nearest_context")]
    angles = per_scene["nearest_context_degrees"]
    lines = ["PSNR per view (the rows of grid.png), against the angle to the nearest "
             "context view:", f"{'row':>5}{'angle':>8}"
             + "".join(f"{label:>17}" for label, _ in columns)]
    for row, angle in enumerate(angles):
        lines.append(f"{row + 1:>5}{angle:>7.0f}°"
                     + "".join(f"{values['psnr'][row]:>17.2f}" for _, values in columns))
    gaps = [str(row + 1) for row, angle in enumerate(angles) if angle > gap_degrees]
    if gaps:
        lines.append(f"row(s) {', '.join(gaps)}: more than {gap_degrees:.0f} degrees from "
                     "every context view, in a gap of the walk; photos taken there would "
                     "give the model nearer views to render them from.")
    return "\n".join(lines)


def run_evaluation(model_dirs, scenes, output_dir, num_samples=4, labels=None,
                   precision=None):
    """Evaluates each model_dir on `scenes`, writes metrics.json and
    grid.png to output_dir and returns (metrics dict, table text).

    metrics.json: {"model": summary of the first model_dir, "baselines":
    {"nearest_context": ..., "context_mean": ..., ...}, "compare_model":
    summary of the second model_dir if given, "num_scenes": N, "per_scene":
    the same per scene, in the grid's order, with each query's
    "nearest_context_degrees"}. precision: as Predictor's.
    """
    labels = labels or [os.path.basename(os.path.normpath(d)) for d in model_dirs]
    os.makedirs(output_dir, exist_ok=True)
    image_size = scenes["target"].shape[1]
    metrics = ImageMetrics(image_size)
    summaries, renderings, per_scene = {}, [], {}
    for label, model_dir in zip(labels, model_dirs):
        predictor = Predictor(model_dir, precision=precision)
        if predictor.config.image_size != image_size:
            raise ValueError(f"{model_dir} renders {predictor.config.image_size}px "
                             f"images but the scenes are {image_size}px")
        per_example, generated, spread = evaluate_model(
            predictor, scenes, metrics, num_samples)
        predictor.close()
        summaries[label] = summarise(per_example)
        per_scene[label] = _listed(per_example)
        renderings.append((label, generated, spread))
    baseline_values = evaluate_baselines(scenes, metrics)
    baselines = {name: summarise(values) for name, values in baseline_values.items()}
    result = {"model": summaries[labels[0]], "baselines": baselines,
              "num_scenes": int(len(scenes["target"])),
              "model_dirs": dict(zip(labels, model_dirs)),
              "per_scene": {"model": per_scene[labels[0]],
                            "baselines": {name: _listed(values)
                                          for name, values in baseline_values.items()},
                            "nearest_context_degrees":
                                nearest_context_degrees(scenes).round(2).tolist()}}
    if len(labels) > 1:
        result["compare_model"] = summaries[labels[1]]
        result["per_scene"]["compare_model"] = per_scene[labels[1]]
    write_json(result, os.path.join(output_dir, "metrics.json"))
    scale = max(1, 96 // image_size)
    images.save_png(scene_grid(scenes, renderings, scale),
                    os.path.join(output_dir, "grid.png"))
    table = format_table({**summaries, **{f"baseline: {k}": v for k, v in baselines.items()}})
    return result, table
