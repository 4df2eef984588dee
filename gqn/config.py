"""GQNConfig: every hyper-parameter of the model and its training, with the
paper's defaults (Eslami et al. 2018, supplementary material).

A model_dir stores its config as JSON so that resuming, evaluating and
rendering rebuild exactly the network that was trained.
"""
import dataclasses
import json
import os
from typing import Optional

import tensorflow.compat.v1 as tf

from gqn.poses import POSE_DIM

CONFIG_FILE_NAME = "gqn_config.json"
REPRESENTATIONS = ("tower", "pool", "sweep")


def config_path(model_dir):
    """Where a model_dir keeps its config."""
    return os.path.join(model_dir, CONFIG_FILE_NAME)


# 'transposed' is the paper's stride-4 transposed conv; it writes each 4x4
# block of the canvas from one hidden cell and shows block artefacts.
# 'subpixel' (3x3 conv + depth-to-space) and 'resize_conv' (bilinear resize,
# then 3x3 conv) mix neighbouring cells into every output pixel.
UPSAMPLERS = ("transposed", "subpixel", "resize_conv")
# How a rendering (z from the prior: generation, evaluation, sampling) mixes
# the colour path with the generator's image; the training reconstruction
# always uses the learnt mix. 'seen': by how many context views see the
# pixel's points (gqn.colour_path.ColourPath.rendered_share), so the
# context's pixels win wherever they exist; 'learnt': the mix fitted on the
# training views, where the generator knows the answer, while a new view's
# generator image is a blur (docs/benchmarks.md: 'seen' renders held-out
# apple views 0.6 dB better and still-life fruit 1.7 dB).
COLOUR_SHARES = ("seen", "learnt")
# The colour path's resampling kernels (gqn.sweep.SAMPLERS).
COLOUR_SAMPLERS = ("bilinear", "bicubic")
# bfloat16: TPU, GPUs of compute capability >= 8.0, CPUs with AVX512-BF16 or
# AMX; float16: older GPUs, with dynamic loss scaling (gqn.hardware,
# gqn.optimization).
PRECISIONS = ("float32", "bfloat16", "float16")
# The schedules' lengths, which a short run sets to its own length.
ANNEALED_OVER_RUN = ("learning_rate_anneal_steps", "sigma_anneal_steps")
# Fields of earlier configs that the data now supply: a saved config that
# names them still loads. (The depth range is a feature of every example.)
RETIRED_FIELDS = ("sweep_near", "sweep_far")
# The representation and generator work at 1/4 of the image resolution.
DOWNSAMPLE_FACTOR = 4


@dataclasses.dataclass
class GQNConfig:
    """Model and optimisation settings; derived sizes are properties."""
    # data
    image_size: int = 64
    pose_dim: int = POSE_DIM
    context_size: int = 5
    # networks
    representation: str = "tower"
    representation_channels: int = 256
    # 'sweep' only (gqn.sweep): planes along each query ray, over each
    # scene's depth range (a feature, from the records).
    sweep_depths: int = 12
    # The cameras' field of view comes with every example (from the
    # records); this angle in degrees, when set, overrides it.
    field_of_view: Optional[float] = None
    # Colour at full resolution (gqn.colour_path): the context's pixels,
    # reprojected along the sweep's planes, mixed per pixel with the
    # generator's image. Needs the sweep representation.
    colour_path: bool = False
    # With the colour path: the generator may add a correction to the
    # reprojected image (gqn.draw.observation_mean). Off for a single
    # capture: fine-tuned on its own few views, the correction learns their
    # detail by heart and costs held-out views 0-0.7 dB (docs/benchmarks.md).
    colour_correction: bool = True
    # With the colour path: the mix a rendering uses (COLOUR_SHARES), and
    # how much more sharply it picks among the context views and the sweep's
    # depths than training does (gqn.colour_path.RenderingFocus; 1 and 1:
    # as in training).
    rendered_colour_share: str = "seen"
    rendered_view_focus: float = 3.0
    rendered_depth_focus: float = 1.0
    # With the sweep representation: a graph that only renders sweeps this
    # many times sweep_depths planes (GQNConfig.rendering). The sweep's
    # networks are shared by its planes, so a model trained on 12 renders on
    # 24 without retraining, and finer planes misplace less: every model
    # measured rendered better (docs/benchmarks.md) at no cost to training.
    rendered_sweep_multiple: int = 2
    # With the colour path: how it resamples the context views (SAMPLERS,
    # gqn.sweep), in training and in a graph that only renders. Bicubic
    # keeps the edges a bilinear sample between pixel centres blurs, for
    # 4x the gathers, so training keeps bilinear (docs/benchmarks.md).
    colour_sampling: str = "bilinear"
    rendered_colour_sampling: str = "bicubic"
    hidden_channels: int = 256
    canvas_channels: int = 256
    z_channels: int = 64
    lstm_kernel_size: int = 5
    seq_length: int = 12
    share_core_weights: bool = True
    upsample: str = "transposed"
    # The paper's observation mean is a linear 1x1 convolution (images shown
    # or served are clipped to [0, 1]) and its ConvLSTM gates have no bias
    # offset; the small presets keep a sigmoid on the mean and a forget-gate
    # bias of +1 (README, "The paper preset"; PACKAGE_CHOICES).
    observation_sigmoid: bool = False
    forget_bias: float = 0.0
    # optimisation (Adam, lr annealed linearly)
    batch_size: int = 36
    learning_rate_start: float = 5e-4
    learning_rate_end: float = 5e-5
    learning_rate_anneal_steps: int = 1600000
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-8
    # pixel likelihood standard deviation, annealed linearly
    sigma_start: float = 2.0
    sigma_end: float = 0.7
    sigma_anneal_steps: int = 200000
    # sharpening: a patch discriminator's adversarial and feature-matching
    # terms added to the ELBO; both 0 is the paper's objective and builds
    # no discriminator (checkpoints hold the GQN alone).
    adversarial_weight: float = 0.0
    feature_matching_weight: float = 0.0
    # With the colour path: weight of the depth choice's likelihood
    # (gqn.objective.depth_choice_nll) added to the ELBO; 0 trains the
    # depth through the reconstruction alone.
    depth_loss_weight: float = 0.0
    discriminator_channels: int = 32
    discriminator_learning_rate: float = 2e-4
    # execution
    precision: str = "float32"
    predict_samples: int = 1

    def __post_init__(self):
        self.validate()

    # --- derived sizes -------------------------------------------------
    @property
    def latent_size(self):
        """Spatial size of representation, LSTM states and latents."""
        return self.image_size // DOWNSAMPLE_FACTOR

    @property
    def generator_input_channels(self):
        """Generator core input: query pose, representation, latent z."""
        return self.pose_dim + self.representation_channels + self.z_channels

    @property
    def inference_input_channels(self):
        """Inference core input: downsampled target, query pose,
        representation, generator hidden state and downsampled canvas."""
        return (self.target_feature_channels + self.pose_dim
                + self.representation_channels + 2 * self.hidden_channels)

    @property
    def target_feature_channels(self):
        """Channels of the stride-4 features of the target image (its 4x4
        patches, losslessly: 4 * 4 * 3)."""
        return DOWNSAMPLE_FACTOR * DOWNSAMPLE_FACTOR * 3

    @property
    def pixels_per_image(self):
        return self.image_size * self.image_size * 3

    @property
    def uses_discriminator(self):
        """Does training build and train the discriminator?"""
        return self.adversarial_weight > 0 or self.feature_matching_weight > 0

    # --- checks and persistence ---------------------------------------
    def validate(self):
        """Raises ValueError naming the first impossible field."""
        positive = ["image_size", "pose_dim", "context_size",
                    "representation_channels", "hidden_channels",
                    "canvas_channels", "z_channels", "lstm_kernel_size",
                    "seq_length", "batch_size", "learning_rate_anneal_steps",
                    "sigma_anneal_steps", "predict_samples",
                    "discriminator_channels", "sweep_depths", "rendered_sweep_multiple"]
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"GQNConfig.{name} must be a positive integer, "
                                 f"got {value!r}")
        if self.image_size % DOWNSAMPLE_FACTOR:
            raise ValueError(f"GQNConfig.image_size must be divisible by "
                             f"{DOWNSAMPLE_FACTOR}, got {self.image_size}")
        if self.pose_dim != POSE_DIM:
            raise ValueError(f"GQNConfig.pose_dim must be {POSE_DIM} (x, y, z, "
                             f"sin/cos yaw, sin/cos pitch), got {self.pose_dim}")
        if self.lstm_kernel_size % 2 == 0:
            raise ValueError(f"GQNConfig.lstm_kernel_size must be odd, got "
                             f"{self.lstm_kernel_size}")
        for name, allowed in [("representation", REPRESENTATIONS),
                              ("upsample", UPSAMPLERS),
                              ("rendered_colour_share", COLOUR_SHARES),
                              ("colour_sampling", COLOUR_SAMPLERS),
                              ("rendered_colour_sampling", COLOUR_SAMPLERS),
                              ("precision", PRECISIONS)]:
            if getattr(self, name) not in allowed:
                raise ValueError(f"GQNConfig.{name} must be one of {allowed}, "
                                 f"got {getattr(self, name)!r}")
        for name in ["learning_rate_start", "learning_rate_end", "sigma_start",
                     "sigma_end", "adam_epsilon", "discriminator_learning_rate",
                     "rendered_view_focus", "rendered_depth_focus"]:
            if not getattr(self, name) > 0:
                raise ValueError(f"GQNConfig.{name} must be > 0, got "
                                 f"{getattr(self, name)!r}")
        if self.field_of_view is not None and not 0 < self.field_of_view < 180:
            raise ValueError(f"GQNConfig.field_of_view must be between 0 and 180 "
                             f"degrees (or None: from the data), got "
                             f"{self.field_of_view!r}")
        if self.sweep_depths < 2:  # the near and the far plane at least
            raise ValueError(f"GQNConfig.sweep_depths must be at least 2, got "
                             f"{self.sweep_depths}")
        if self.colour_path and self.representation != "sweep":
            raise ValueError("GQNConfig.colour_path needs the sweep representation "
                             f"(its depth scores), not {self.representation!r}")
        if not abs(self.forget_bias) < float("inf"):
            raise ValueError(f"GQNConfig.forget_bias must be finite, got "
                             f"{self.forget_bias!r}")
        for name in ["adversarial_weight", "feature_matching_weight", "depth_loss_weight"]:
            if not 0 <= getattr(self, name) < float("inf"):
                raise ValueError(f"GQNConfig.{name} must be >= 0 and finite, got "
                                 f"{getattr(self, name)!r}")
        if self.depth_loss_weight and not self.colour_path:
            raise ValueError("GQNConfig.depth_loss_weight needs the colour path (it "
                             "trains the colour path's depth choice), got "
                             f"{self.depth_loss_weight!r} with colour_path off")
        for name in ["adam_beta1", "adam_beta2"]:
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"GQNConfig.{name} must be in [0, 1), got "
                                 f"{getattr(self, name)!r}")
        return self

    def rendering(self):
        """The config of a graph that only renders (z from the prior:
        gqn.predictor.Predictor.render, the exported model): its sweep on
        rendered_sweep_multiple times the planes, its colour path resampling
        by rendered_colour_sampling. The training graph and its evaluation
        (which scores the training reconstruction beside a rendering from
        the same scene encoding) keep sweep_depths and colour_sampling."""
        return self.replace(sweep_depths=self.sweep_depths * self.rendered_sweep_multiple,
                            colour_sampling=self.rendered_colour_sampling)

    def annealed_over(self, steps):
        """A copy whose learning rate and pixel sigma reach their end values
        at `steps` (a short run's schedule: its length)."""
        return self.replace(**dict.fromkeys(ANNEALED_OVER_RUN, steps))

    def replace(self, **changes):
        """A validated copy with `changes`; unknown names are refused."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise ValueError(f"unknown GQNConfig field(s): {', '.join(unknown)}")
        return dataclasses.replace(self, **changes)

    def to_json(self):
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text):
        """The config a JSON text describes. One written before a field of
        PACKAGE_CHOICES existed describes a model built with that choice;
        fields since retired are dropped."""
        fields = json.loads(text)
        for name in RETIRED_FIELDS:
            fields.pop(name, None)
        return cls().replace(**{**PACKAGE_CHOICES, **fields})

    def save(self, path):
        """Writes the config as JSON (gs:// paths work)."""
        with tf.io.gfile.GFile(path, "w") as handle:
            handle.write(self.to_json())

    @classmethod
    def load(cls, path):
        with tf.io.gfile.GFile(path, "r") as handle:
            try:
                return cls.from_json(handle.read())
            except ValueError as error:
                raise ValueError(f"{path}: {error}") from None


# Where the package departed from the paper before the config could follow
# it: a sigmoid on the observation mean and a forget-gate bias of +1. The
# small presets keep them (their measurements were made with them), and so
# does every model_dir saved before these fields existed.
PACKAGE_CHOICES = dict(observation_sigmoid=True, forget_bias=1.0)
# What trains best in a few thousand steps (scripts/benchmark_quality.py,
# scripts/capture_experiment.py, docs/benchmarks.md): the sweep
# representation with the colour path (on the real apple capture 22.6 dB
# against 20.3 without it), a resize-conv canvas, and Adam at 1e-3 annealed
# to 1e-4; both schedules end after 2,000 steps (set --anneal_steps to a
# run's length).
_SHORT_RUNS = dict(representation="sweep", colour_path=True, upsample="resize_conv",
                   learning_rate_start=1e-3, learning_rate_end=1e-4,
                   learning_rate_anneal_steps=2000, sigma_anneal_steps=2000,
                   **PACKAGE_CHOICES)
# Named sizes used by the benchmark, the demo and --preset: the paper's model
# and two that fit a laptop and train in short runs.
PRESETS = {
    "tiny": dict(image_size=32, seq_length=4, hidden_channels=64,
                 canvas_channels=64, representation_channels=64,
                 z_channels=16, batch_size=16, **_SHORT_RUNS),
    "small": dict(image_size=64, seq_length=8, hidden_channels=128,
                  canvas_channels=128, representation_channels=128,
                  z_channels=32, batch_size=8, **_SHORT_RUNS),
    "paper": {},
}


def preset(name, **overrides):
    """The named preset with `overrides`, validated. Choosing another
    representation than the sweep turns the preset's colour path off (it
    reads the sweep's depth scores) unless the overrides ask for it."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}")
    fields = {**PRESETS[name], **overrides}
    if fields.get("representation", "tower") != "sweep" and "colour_path" not in overrides:
        fields["colour_path"] = False
    return GQNConfig().replace(**fields)
