"""Training reads on: each --eval_every segment and a resume in a new
process read other files than the segments before them, seen from outside
through the target images that --debug writes to TensorBoard."""
import glob
import io
import os

import numpy as np
import tensorflow.compat.v1 as tf
from PIL import Image
from tensorflow.python.summary.summary_iterator import summary_iterator

from data_provider import record_writer
from tests.cli_helpers import TINY_MODEL_FLAGS, assert_ok, run_cli

TRAIN = "train_gqn_draw.py"
NUM_FILES, SCENES_PER_FILE, SEGMENT = 24, 96, 8


def _file_frame(file_index, size=16):
    """A frame whose red level names its file (10 apart: JPEG-safe)."""
    return np.full((size, size, 3), (10 * file_index + 5, 128, 128), np.uint8)


def _write_dataset(root):
    """24 train files of 96 scenes (4 views each): more records per file
    than the reader's 256-record shuffle buffer takes from each of the 4
    files it reads at once, so that a stream's first batches come from the
    first 4 files it opens."""
    poses = [(np.cos(a), np.sin(a), 0.5, a, -0.2) for a in np.arange(4) * 1.5]
    scenes = [record_writer.serialize_scene(
        [record_writer.encode_jpeg(_file_frame(f))] * 4, poses) for f in range(NUM_FILES)]
    with record_writer.DatasetWriter(str(root), "files") as writer:
        writer.write_split("train", [scene for scene in scenes
                                     for _ in range(SCENES_PER_FILE)], NUM_FILES)
        writer.write_split("test", scenes[:4], 1)
        writer.finish(16, 4, 4)


def _target_files(model_dir):
    """{global step: files of the target images written at that step}."""
    files = {}
    for path in glob.glob(os.path.join(model_dir, "events.out.tfevents.*")):
        for event in summary_iterator(path):
            for value in event.summary.value:
                if value.tag != "target":
                    continue
                pngs = tf.make_ndarray(value.tensor)[2:]
                red = [np.asarray(Image.open(io.BytesIO(png)))[..., 0].mean()
                       for png in pngs]
                files[event.step] = {int(round((level - 5) / 10)) for level in red}
    return files


def test_segments_and_a_resume_read_other_files(tmp_path):
    _write_dataset(tmp_path / "data")
    model_dir = tmp_path / "model"
    common = ["--data_dir", tmp_path / "data", "--dataset", "files", "--model_dir",
              model_dir, "--debug", "--summary_every_steps", "1", "--eval_steps", "1",
              "--save_checkpoints_steps", SEGMENT]
    # two segments up to an evaluation each, then a new process resumes
    assert_ok(run_cli(TRAIN, *common, *TINY_MODEL_FLAGS, "--max_steps", 2 * SEGMENT,
                      "--eval_every", SEGMENT))
    assert_ok(run_cli(TRAIN, *common, "--max_steps", 3 * SEGMENT))
    by_step = _target_files(str(model_dir))
    assert sorted(by_step) == list(range(3 * SEGMENT))
    segments = [set().union(*(by_step[step] for step in range(s, s + SEGMENT)))
                for s in range(0, 3 * SEGMENT, SEGMENT)]
    print("files read per segment:", [sorted(files) for files in segments])
    for files in segments:
        assert len(files) >= 3, segments
    for i in range(3):
        for j in range(i + 1, 3):
            # the old reader read the same first files in every segment
            shared = segments[i] & segments[j]
            assert len(shared) <= min(len(segments[i]), len(segments[j])) // 2, segments
