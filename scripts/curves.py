"""Quality against training step, beside the training-free baselines: the
picture the quality benchmark and the capture experiment draw (matplotlib,
a well-kept plotting library, rather than axes drawn by hand)."""
import matplotlib

matplotlib.use("Agg")
from matplotlib import pyplot  # noqa: E402  (after choosing the file backend)

from gqn.images import save_atomically  # noqa: E402

BASELINE_STYLES = ("--", ":", "-.", (0, (8, 2, 1, 2, 1, 2)))


def plot_curves(curves, baselines, panels, title, path):
    """curves: {label: {step: {metric: value}}}; baselines: {name: {metric:
    value}}, drawn as lines; panels: [(metric, axis title)], one panel each
    (a metric a curve lacks is left out of it). Writes the PNG atomically."""
    figure, axes = pyplot.subplots(1, len(panels), figsize=(5 * len(panels), 4),
                                   squeeze=False)
    for axis, (metric, panel_title) in zip(axes[0], panels):
        for label, curve in curves.items():
            steps = sorted((int(step), values) for step, values in curve.items()
                           if metric in values)
            axis.plot([step for step, _ in steps], [values[metric] for _, values in steps],
                      marker="o", label=label)
        for (baseline, values), style in zip(baselines.items(), BASELINE_STYLES):
            if metric in values:
                axis.axhline(values[metric], color="grey", linestyle=style,
                             label=f"baseline: {baseline.replace('_', ' ')}")
        if metric == "sharpness":
            axis.axhline(1.0, color="black", linewidth=0.5)
        axis.set_title(panel_title)
        axis.set_xlabel("fine-tuning step")
        axis.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    figure.suptitle(title)
    figure.tight_layout()
    try:
        save_atomically(path, lambda target: figure.savefig(target, dpi=90, format="png"))
    finally:
        pyplot.close(figure)
