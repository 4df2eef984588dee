"""Running the command-line entry points as a user does: a fresh Python
process each, output captured; the tiny generated rooms they train on, and
the summary tags they write."""
import glob
import os
import subprocess
import sys

from tensorflow.python.summary.summary_iterator import summary_iterator

from data_provider import synthetic

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Flags of a model small enough to train in seconds.
TINY_MODEL_FLAGS = ["--preset", "tiny", "--img_size", "16", "--batch_size", "4",
                    "--context_size", "3", "--seq_length", "2",
                    "--hidden_channels", "8", "--z_channels", "4",
                    "--anneal_steps", "20", "--hparams",
                    "representation_channels=8,canvas_channels=8,lstm_kernel_size=3"]


def run_cli(script, *args, timeout=300):
    """Runs `python <script> args...` from the repo; returns CompletedProcess."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO)
    return subprocess.run([sys.executable, os.path.join(REPO, script), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=env,
                          cwd=REPO)


def assert_ok(result):
    assert result.returncode == 0, (
        f"exit {result.returncode}\nstdout:\n{result.stdout[-3000:]}\n"
        f"stderr:\n{result.stderr[-5000:]}")
    return result


def assert_refused(result, *fragments):
    """Non-zero exit, one-line error naming each fragment, no traceback."""
    assert result.returncode != 0, result.stdout[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    for fragment in fragments:
        assert fragment in result.stderr, (fragment, result.stderr[-3000:])
    return result


def generate_rooms(root):
    """Tiny rooms (16 train, 8 test scenes of 16 px) in <root>/data/rooms."""
    synthetic.generate_dataset(str(root / "data"), "rooms", "rooms",
                               num_train_scenes=16, num_test_scenes=8,
                               image_size=16, scenes_per_file=4, num_workers=1)
    return root


def rooms_flags(root):
    """--data_dir/--dataset of generate_rooms(root)."""
    return ["--data_dir", root / "data", "--dataset", "rooms"]


def event_tags(folder):
    """Every summary tag in the event files of `folder`."""
    tags = set()
    for path in glob.glob(os.path.join(folder, "events.out.tfevents.*")):
        for event in summary_iterator(path):
            tags.update(value.tag for value in event.summary.value)
    return tags
