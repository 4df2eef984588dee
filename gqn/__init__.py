"""Generative Query Network model: pure functions of (tensors, GQNConfig).

The package is written against TensorFlow's 1.x graph API; importing it
switches TensorFlow 2.x into that mode (as TF 1.15 behaves by default).

Importing it first also keeps TensorFlow's start-up log quiet: on a machine
without a GPU TensorFlow prints about ten lines (CUDA/cuDNN/cuFFT/cuBLAS
"factory" errors, TensorRT, the CPU-instructions notice) that tell a user
nothing. That level (3) hides TensorFlow's C++ error lines too; its Python
exceptions, which the commands report, still carry their messages. Setting
TF_CPP_MIN_LOG_LEVEL yourself, or giving a command --verbosity, brings the
log back.
"""
import logging as _logging
import os as _os
import sys as _sys

_VERBOSITY_FLAGS = ("--verbosity", "-v", "--v")
if not (_os.environ.get("TF_CPP_MIN_LOG_LEVEL")
        or any(arg.split("=")[0] in _VERBOSITY_FLAGS for arg in _sys.argv[1:])):
    _os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"

import tensorflow.compat.v1 as _tf  # noqa: E402  (after the log level is set)

_tf_logger = _logging.getLogger("tensorflow")
_level = _tf_logger.level
_tf_logger.setLevel(_logging.ERROR)  # the v1-mode switch's deprecation notice
_tf.disable_v2_behavior()
_tf_logger.setLevel(_level)
