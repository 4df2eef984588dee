"""Importing the package changes nothing for the process; the commands set
TensorFlow up for themselves (gqn.startup): quiet and in graph mode."""
import json
import os
import subprocess
import sys

from tests.cli_helpers import REPO

# Imports every module of the two library packages, then reports what a
# program that imported them would find.
IMPORT_EVERYTHING = """
import importlib, json, os, pkgutil, sys
import gqn, data_provider
names = []
for package in (gqn, data_provider):
    for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        importlib.import_module(module.name)
        names.append(module.name)
import tensorflow as tf
from tensorflow.python import tf2
print(json.dumps({"modules": names,
                  "level": os.environ.get("TF_CPP_MIN_LOG_LEVEL"),
                  "tf2": tf2.enabled(), "eager": tf.executing_eagerly()}))
"""


def _run(args, environment):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True,
                          timeout=300, cwd=REPO, env=environment)


def _environment(**changes):
    environment = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    environment.update(PYTHONPATH=REPO, **changes)
    return environment


def test_importing_the_package_leaves_tensorflow_as_it_was():
    for level in (None, "1"):
        environment = _environment(**({"TF_CPP_MIN_LOG_LEVEL": level} if level else {}))
        result = _run(["-c", IMPORT_EVERYTHING], environment)
        assert result.returncode == 0, result.stderr[-3000:]
        found = json.loads(result.stdout.strip().splitlines()[-1])
        assert {"gqn.model_fn", "gqn.training", "gqn.startup",
                "data_provider.gqn_tfr_provider"} <= set(found["modules"])
        assert found["level"] == level  # not set, or left at the user's value
        assert found["tf2"] and found["eager"]  # TF2 behaviour, eager


def test_commands_start_quiet_unless_asked():
    """The quiet start-up the commands had when importing gqn did it for
    them: no C++ log lines (they name their source file, tensorflow/... or
    external/...), unless --verbosity asks for them."""
    quiet = _run(["train_gqn_draw.py", "--help"], _environment())
    assert "Train, resume or fine-tune" in quiet.stdout  # (absl exits 1 after --help)
    assert "tensorflow/" not in quiet.stderr and "external/" not in quiet.stderr, (
        quiet.stderr[-2000:])
    loud = _run(["train_gqn_draw.py", "--help", "--verbosity=0"], _environment())
    assert "tensorflow/" in loud.stderr or "external/" in loud.stderr
