"""Process-wide TensorFlow set-up for the command-line entry points.

The library sets nothing for the process: a notebook or another program can
import `gqn` and keep TensorFlow as it had it. The commands (train, eval,
convert, render, the generator, scripts) do what google-research/bert's
run_*.py scripts do for themselves, as the first thing a command runs:

- quiet_tensorflow_log(), before TensorFlow is imported: on a machine
  without a GPU TensorFlow prints about ten start-up lines (CUDA/cuDNN/
  cuFFT/cuBLAS "factory" errors, TensorRT, the CPU-instructions notice) that
  tell a user nothing. The level used (3) hides TensorFlow's C++ error lines
  too; its Python exceptions, which the commands report, still carry their
  messages. Setting TF_CPP_MIN_LOG_LEVEL yourself, or giving a command
  --verbosity, brings the log back.
- use_graph_mode(), before any graph is built: the package is written
  against TensorFlow's 1.x graph API, and TensorFlow 2.x runs it in that
  mode (as TF 1.15 behaves by default).
- one_copy_of_each_log_line(), which gqn.cli_flags.run_main calls for
  every command: TensorFlow gives its logger a handler of its
  own when imported, and absl's app.run gives the root logger another, so
  every line (the training progress too) was printed twice. And the
  Estimator API that the package is built on draws about twenty "is
  deprecated ... Use tf.keras instead" notices per run, which a user of
  this package can do nothing about; they are dropped.

This module imports TensorFlow only inside those two.
"""
import logging
import os
import sys

VERBOSITY_FLAGS = ("--verbosity", "-v", "--v")
QUIET_LEVEL = "3"


def quiet_tensorflow_log(argv=None):
    """Hides TensorFlow's C++ start-up log unless TF_CPP_MIN_LOG_LEVEL is
    set or `argv` (default sys.argv) asks for a --verbosity. Must run before
    TensorFlow is imported, which reads the level once."""
    argv = sys.argv if argv is None else argv
    if not (os.environ.get("TF_CPP_MIN_LOG_LEVEL")
            or any(arg.split("=")[0] in VERBOSITY_FLAGS for arg in argv[1:])):
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = QUIET_LEVEL


def use_graph_mode():
    """Switches TensorFlow 2.x to 1.x graph behaviour, without its
    deprecation notice."""
    import tensorflow.compat.v1 as tf
    tf_logger = logging.getLogger("tensorflow")
    level = tf_logger.level
    tf_logger.setLevel(logging.ERROR)
    try:
        tf.disable_v2_behavior()
    finally:
        tf_logger.setLevel(level)


# Where TensorFlow's deprecation notices come from (the module that logs them).
DEPRECATION_NOTICE_MODULES = ("deprecation.py", "module_wrapper.py")


def _not_a_deprecation_notice(record):
    return record.filename not in DEPRECATION_NOTICE_MODULES


def one_copy_of_each_log_line():
    """Leaves TensorFlow's log to absl's handler (which app.run installs on
    the root logger, with time stamps) and drops its deprecation notices."""
    import tensorflow.compat.v1 as tf
    tf_logger = tf.get_logger()
    for handler in list(tf_logger.handlers):
        tf_logger.removeHandler(handler)
    tf_logger.addFilter(_not_a_deprecation_notice)


def start_command():
    """The first two, for a command whose module has not imported TensorFlow
    yet (gqn.cli_flags.run_main does the third)."""
    quiet_tensorflow_log()
    use_graph_mode()
