"""The command-line flags shared by the entry points, defined in one place,
and the turning of flags into a GQNConfig.

Only entry points import this module; the model itself never reads flags.
"""
import sys
import typing

import tensorflow.compat.v1 as tf
from absl import app, flags

from gqn import startup
from gqn.config import (ANNEALED_OVER_RUN, PRECISIONS, PRESETS, REPRESENTATIONS,
                        UPSAMPLERS, GQNConfig, preset)

FLAGS = flags.FLAGS

# flag name -> GQNConfig field, for the flags a user tunes most.
MODEL_FLAG_FIELDS = {
    "batch_size": "batch_size",
    "context_size": "context_size",
    "img_size": "image_size",
    "seq_length": "seq_length",
    "hidden_channels": "hidden_channels",
    "z_channels": "z_channels",
    "representation": "representation",
    "colour_path": "colour_path",
    "upsample": "upsample",
    "precision": "precision",
    "adversarial_weight": "adversarial_weight",
    "feature_matching_weight": "feature_matching_weight",
    "depth_loss_weight": "depth_loss_weight",
}


# How a run computes or what it optimises, not what the model is: a resumed
# run may change these. The sharpening and depth loss weights are loss
# weights like a learning rate, so a run may sharpen harder or stop
# sharpening (a fine-tuning may add the depth loss); only
# turning the discriminator on is refused on resume, since the model_dir's
# checkpoints hold no discriminator to restore. How renderings mix in the
# colour path uses the same variables either way.
RUN_CHOICE_FIELDS = ("precision", "adversarial_weight", "feature_matching_weight",
                     "depth_loss_weight",
                     "rendered_colour_share", "rendered_view_focus", "rendered_depth_focus",
                     "rendered_sweep_multiple", "rendered_colour_sampling")


class FlagError(ValueError):
    """A user error in the flags: reported as one line and a non-zero exit."""


# Errors that mean "the input is wrong", not "the program is": reported as
# one line naming the file or value, with exit status 1 and no traceback.
# TensorFlow's data errors (a record failing the reader's checks, a
# truncated file) name the file in their first line.
USER_ERRORS = (ValueError, OSError)
DATA_ERRORS = (tf.errors.InvalidArgumentError, tf.errors.DataLossError)


def show_flags_in_help(entry_module):
    """Makes --help show the docstring of `entry_module` (a module name) and
    list its flags and the shared ones defined here. absl shows only what the
    module named by sys.argv[0] defined, which for a console script
    (gqn-train) is its generated wrapper, and never the shared flags."""
    main_module = sys.argv[0]
    if entry_module != "__main__":
        sys.modules["__main__"].__doc__ = sys.modules[entry_module].__doc__
    for module in {entry_module, __name__} - {"__main__", main_module}:
        for flag in FLAGS.get_key_flags_for_module(module):
            FLAGS.register_key_flag_for_module(main_module, flag)


def run_main(main, program):
    """absl app.run(main) with user errors turned into a one-line message and
    every flag of the command in --help. Words that are no flag are refused:
    absl would hand them to main, which reads none, so a typo such as
    `--hparams a=1 b=2` (a space for the comma) would silently drop b=2.
    TensorFlow's log goes out once, through absl's handler, without its
    deprecation notices (gqn.startup.one_copy_of_each_log_line)."""
    show_flags_in_help(main.__module__)
    startup.one_copy_of_each_log_line()

    def guarded_main(argv):
        try:
            if len(argv) > 1:
                raise FlagError(f"unexpected arguments {argv[1:]}: every input is a "
                                "--flag (--hparams takes key=value pairs separated "
                                "by commas, no spaces)")
            main(argv)
        except USER_ERRORS as error:
            print(f"{program}: error: {error}", file=sys.stderr)
            sys.exit(1)
        except DATA_ERRORS as error:
            print(f"{program}: error: {error.message.splitlines()[0]}", file=sys.stderr)
            sys.exit(1)
    app.run(guarded_main)


def define_data_flags():
    flags.DEFINE_string("data_dir", None,
                        "Folder (or gs:// path) holding <dataset>/{train,test}/"
                        "i-of-N.tfrecord.")
    flags.DEFINE_string("dataset", "rooms_ring_camera",
                        "A DeepMind gqn-datasets name, or a set written by this "
                        "package (described by its dataset_info.json).")
    flags.DEFINE_integer("seed", 0, "Seed of the view draws, the weight "
                         "initialisation and the sampling noise.")


def define_model_flags():
    """Architecture and optimisation flags; unset flags keep the preset's (or
    the saved model_dir's) value."""
    flags.DEFINE_enum("preset", "paper", sorted(PRESETS),
                      "Starting sizes: 'paper' is Eslami et al. 2018; 'small' "
                      "and 'tiny' fit a laptop.")
    flags.DEFINE_integer("batch_size", None, "Global batch size (paper: 36).")
    flags.DEFINE_integer("context_size", None, "Context views per scene (paper: 5).")
    flags.DEFINE_integer("img_size", None, "Image side in pixels, divisible by 4 "
                         "(paper: 64). Records of another size are resized.")
    flags.DEFINE_integer("seq_length", None, "Generation steps L (paper: 12).")
    flags.DEFINE_integer("hidden_channels", None, "ConvLSTM channels (paper: 256).")
    flags.DEFINE_integer("z_channels", None, "Latent channels (paper: 64).")
    flags.DEFINE_enum("representation", None, list(REPRESENTATIONS),
                      "Scene encoder: 'tower' and 'pool' are the paper's (Fig. "
                      "S1); 'sweep' reads the context views along the query "
                      "camera's rays, with the cameras' field of view and the "
                      "scene's depth range from the records.")
    flags.DEFINE_boolean("colour_path", None, "Also reproject the context views' "
                         "pixels into the query view at full resolution and mix "
                         "them per pixel with the generator's image (needs "
                         "--representation sweep; on in the tiny and small "
                         "presets).")
    flags.DEFINE_enum("upsample", None, list(UPSAMPLERS),
                      "Canvas upsampling: 'transposed' is the paper's (4x4 block "
                      "artefacts); 'subpixel' and 'resize_conv' avoid them.")
    define_precision_flag()
    flags.DEFINE_float("adversarial_weight", None, "Sharpening: weight of a "
                       "patch discriminator's non-saturating GAN loss on "
                       "generated views, added to the ELBO (default 0: the "
                       "paper's objective, no discriminator).")
    flags.DEFINE_float("feature_matching_weight", None, "Sharpening: weight of "
                       "the L1 distance between the discriminator's features of "
                       "the target and of the generated view (default 0).")
    flags.DEFINE_float("depth_loss_weight", None, "With the colour path: weight "
                       "of the likelihood of the target under the colour path's "
                       "planes taken one at a time, added to the ELBO; it "
                       "teaches the sweep to commit to the depth the target "
                       "shows (default 0; capture_experiment.py sets 1: it "
                       "helped a real capture at 64 px and cost generated "
                       "still lifes' fruit, docs/benchmarks.md).")
    flags.DEFINE_integer("anneal_steps", None, "Anneal the learning rate and "
                         "the pixel sigma over this many steps (both "
                         "learning_rate_anneal_steps and sigma_anneal_steps; "
                         "default: the preset's). For a short run, its "
                         "--max_steps.")
    flags.DEFINE_list("hparams", [], "Any other GQNConfig field as key=value, "
                      "e.g. 'learning_rate_start=1e-4,sigma_anneal_steps=50000'.")


def define_precision_flag():
    flags.DEFINE_enum("precision", None, list(PRECISIONS),
                      "Compute precision of the networks (default: float32, or "
                      "what the model_dir trained with). bfloat16 needs a TPU, a "
                      "GPU of compute capability 8.0 or more (A100, H100, RTX "
                      "30xx/40xx) or a CPU with AVX512-BF16/AMX (about 2-4x faster "
                      "at the small and paper sizes); float16 is for GPUs without "
                      "bfloat16 (V100, T4, RTX 20xx) and trains with dynamic loss "
                      "scaling. Elsewhere the run says why and computes in "
                      "float32. Likelihood, KL, loss and optimizer stay float32.")


def parse_hparams(items):
    """['key=value', ...] -> {field: typed value}, typed like GQNConfig's
    default for that field."""
    kinds = {name: typing.get_args(kind)[0] if typing.get_args(kind) else kind
             for name, kind in typing.get_type_hints(GQNConfig).items()}
    parsed = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or key not in kinds:
            raise FlagError(f"--hparams entry {item!r} is not key=value with a "
                            "GQNConfig field as key")
        kind = kinds[key]  # Optional[float] -> float
        try:
            if kind is bool:
                if text.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(text)
                value = text.lower() in ("true", "1")
            elif kind is int:
                value = int(float(text)) if float(text).is_integer() else int(text)
            else:
                value = kind(text)
        except ValueError:
            raise FlagError(f"--hparams {key}={text!r}: expected a "
                            f"{kind.__name__}") from None
        parsed[key] = value
    return parsed


def config_overrides():
    """GQNConfig fields the user set on this command line."""
    overrides = {field: getattr(FLAGS, name)
                 for name, field in MODEL_FLAG_FIELDS.items()
                 if FLAGS[name].present and getattr(FLAGS, name) is not None}
    if FLAGS.anneal_steps is not None:
        overrides.update(dict.fromkeys(ANNEALED_OVER_RUN, FLAGS.anneal_steps))
    overrides.update(parse_hparams(FLAGS.hparams))
    return overrides


def resolve_config(saved, overrides, saved_path=None):
    """The config for this run: a saved config wins and a flag that
    contradicts it is refused; without one, the preset plus the flags."""
    try:
        if saved is None:
            return preset(FLAGS.preset, **overrides)
        resolved = saved
        for field, value in overrides.items():
            if field in RUN_CHOICE_FIELDS:
                resolved = resolved.replace(**{field: value})
            elif getattr(saved, field) != value:
                flag = next((name for name, f in MODEL_FLAG_FIELDS.items()
                             if f == field), None)
                given = f"--{flag}={value}" if flag else f"--hparams {field}={value}"
                if field in ANNEALED_OVER_RUN:
                    given = f"--anneal_steps or {given}"
                raise FlagError(f"{given} contradicts {field}="
                                f"{getattr(saved, field)!r} saved in {saved_path}; "
                                "use a new --model_dir to change it")
        if resolved.uses_discriminator and not saved.uses_discriminator:
            raise FlagError(f"{saved_path} describes a model trained without a "
                            "discriminator: its checkpoints hold none to resume. "
                            "Sharpen it in a new --model_dir with --warm_start_from")
        return resolved
    except ValueError as error:
        if isinstance(error, FlagError):
            raise
        raise FlagError(str(error)) from None
