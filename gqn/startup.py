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

This module imports TensorFlow only inside use_graph_mode().
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


def start_command():
    """Both, for a command whose module has not imported TensorFlow yet."""
    quiet_tensorflow_log()
    use_graph_mode()
