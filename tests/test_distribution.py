"""Scaling out, proved on CPU: MirroredStrategy over two logical CPU devices
follows the one-device run step for step; a chief and two workers train in
sync from TF_CONFIG; the paper-size TRAIN step lowers to XLA at a static
batch; a TPU that cannot be reached, or a batch that cannot be split over its
cores, stops with one line."""
import json
import os
import re
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from data_provider import synthetic
from gqn import estimator
from gqn.model_fn import TRAIN_SCALARS
from tests.cli_helpers import REPO, TINY_MODEL_FLAGS, assert_refused, run_cli

TRAIN = "train_gqn_draw.py"


def run_child(module, *args, timeout):
    """`python -m module args` from the repo; its JSON line and stderr."""
    result = subprocess.run([sys.executable, "-m", module, *map(str, args)],
                            capture_output=True, text=True, timeout=timeout, cwd=REPO,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
                                     PYTHONPATH=REPO))
    assert result.returncode == 0, result.stderr[-5000:]
    return json.loads(result.stdout.strip().splitlines()[-1]), result.stderr


def test_per_replica_batch_size_names_both_numbers():
    assert estimator.per_replica_batch_size(36, 4) == 9
    assert estimator.per_replica_batch_size(36, 1) == 36
    with pytest.raises(ValueError, match=r"global batch size 36 cannot be divided "
                       r"over 8 TPU cores.*--batch_size 32 or 40"):
        estimator.per_replica_batch_size(36, 8, "TPU cores")
    with pytest.raises(ValueError, match="batch size 2 cannot be divided over 3 "
                       "replicas.*--batch_size 3"):
        estimator.per_replica_batch_size(2, 3)


def test_mirrored_over_two_cpu_devices_follows_one_device(tmp_path):
    """Same initial weights, same data: the mirrored run's per-step loss
    terms (averaged over replicas, written by the host_call) and its final
    weights equal the one-device run's. The child's Adam epsilon makes the
    update linear in the gradient, so a gradient summed instead of averaged
    over the two replicas would show. gradient_norm is the norm of the
    gradient summed over replicas, the one applied: the one device's, not
    the replicas' norms of their halves (about half as large)."""
    summary, stderr = run_child("tests.mirrored_run", tmp_path, timeout=300)
    assert summary["replicas"] == 2
    single, mirrored = summary["single"], summary["mirrored"]
    assert len(single["loss"]) == 3 and len(mirrored["loss"]) == 3
    for name in ("loss", "elbo", "kl"):
        np.testing.assert_allclose(mirrored[name], single[name], rtol=2e-6, err_msg=name)
    # summed in another order than the one device's batch gradient
    np.testing.assert_allclose(mirrored["gradient_norm"], single["gradient_norm"],
                               rtol=1e-5)
    assert min(single["gradient_norm"]) > 0
    # the weights moved, by far more than the two runs differ
    assert summary["weight_change"] > 1e-4
    assert summary["weight_gap"] < 1e-3 * summary["weight_change"]
    assert summary["mirrored_checkpoint"].endswith("model.ckpt-3")
    for name in ("elbo", "kl", "mse", "psnr"):  # evaluation under the strategy
        assert np.isfinite(summary["mirrored_eval"][name]), name
    # the progress log of both runs (hooks fetch the averaged scalars)
    assert stderr.count("step 3/3") == 2, stderr[-3000:]
    # Estimator's own loss log shows the global mean loss, not the sum of
    # the replicas' losses
    logged = [float(value) for value in re.findall(r"loss = ([0-9.]+), step = 0", stderr)]
    assert logged, stderr[-3000:]
    np.testing.assert_allclose(logged, single["loss"][0], rtol=1e-5)


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    try:
        for probe in sockets:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in sockets]
    finally:
        for probe in sockets:
            probe.close()


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("distribution")
    synthetic.generate_dataset(str(root / "data"), "rooms", "rooms",
                               num_train_scenes=12, num_test_scenes=2,
                               image_size=16, scenes_per_file=2, num_workers=1)
    return root


def test_multi_worker_chief_and_two_workers_train_in_sync(data_root, tmp_path):
    """TF_CONFIG with a chief and two workers on 127.0.0.1: all three finish
    4 steps of one 6-example global batch (2 per worker), each read its own
    input pipeline, all logged the same (all-reduced) loss, and the model_dir
    holds one checkpoint series, written by the chief."""
    model_dir = tmp_path / "model"
    ports = _free_ports(3)
    cluster = {"chief": [f"127.0.0.1:{ports[0]}"],
               "worker": [f"127.0.0.1:{port}" for port in ports[1:]]}
    tasks = [("chief", 0), ("worker", 0), ("worker", 1)]
    args = [sys.executable, os.path.join(REPO, TRAIN), "--data_dir",
            data_root / "data", "--dataset", "rooms", "--model_dir", model_dir,
            *TINY_MODEL_FLAGS, "--batch_size", "6", "--seq_length", "1",
            "--strategy", "multi_worker",
            "--max_steps", "4", "--save_checkpoints_steps", "4",
            "--log_every_steps", "1", "--summary_every_steps", "1", "--skip_eval"]
    processes, logs = [], []
    try:
        for task_type, index in tasks:
            log = open(tmp_path / f"{task_type}{index}.log", "w+")
            logs.append(log)
            tf_config = {"cluster": cluster, "task": {"type": task_type, "index": index}}
            processes.append(subprocess.Popen(
                list(map(str, args)), stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
                env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO,
                         TF_CONFIG=json.dumps(tf_config))))
        deadline = time.time() + 240
        for process in processes:
            process.wait(timeout=max(1, deadline - time.time()))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)
    outputs = []
    for log in logs:
        log.seek(0)
        outputs.append(log.read())
        log.close()
    for (task_type, index), process, output in zip(tasks, processes, outputs):
        assert process.returncode == 0, (task_type, index, output[-4000:])

    last_lines = []
    for pipeline, output in enumerate(outputs):
        assert (f"input pipeline {pipeline} of 3: batches of 2 per replica "
                "(global batch 6 over 3 replicas)") in output
        step_lines = [line for line in output.splitlines()
                      if "step 4/4" in line and "examples/s" in line]
        assert step_lines, output[-3000:]
        last_lines.append(step_lines[-1].split("step 4/4")[1].split("examples/s")[0])
    # identical loss terms on every task (the printed part before the rate)
    assert len({line.rsplit("learning_rate", 1)[0] for line in last_lines}) == 1, last_lines

    state = tf.train.get_checkpoint_state(str(model_dir))
    assert [os.path.basename(p) for p in state.all_model_checkpoint_paths] == [
        "model.ckpt-0", "model.ckpt-4"]
    assert int(tf.train.load_variable(str(model_dir), "global_step")) == 4
    leftovers = [name for name in os.listdir(model_dir) if name.startswith("tmp_")]
    assert leftovers == [], leftovers  # workers' scratch checkpoints removed
    assert os.path.exists(model_dir / "gqn_config.json")
    tags = set()
    from tensorflow.python.summary.summary_iterator import summary_iterator
    for name in os.listdir(model_dir):
        if name.startswith("events.out.tfevents"):
            for event in summary_iterator(str(model_dir / name)):
                tags.update(value.tag for value in event.summary.value)
    assert set(TRAIN_SCALARS) <= tags, sorted(tags)


def test_paper_train_step_lowers_to_xla_at_a_static_batch():
    """The whole TRAIN step at the paper's sizes (64x64, 5 views, L=12, 256
    channels, 5x5 kernels), batch 2: forward, loss, gradients and the Adam
    update pass the TF->XLA bridge (every op has an XLA kernel, every shape
    is static). Backend code generation is not run (that part is the TPU's)."""
    summary, _ = run_child("tests.xla_step", "paper", 2, "train", timeout=240)
    assert summary["trainable"] >= 20
    assert summary["dynamic_shapes"] == []
    assert summary["convolutions"] > 100 and summary["adam_updates"] > 0
    shapes = set(summary["shapes"])
    assert "f32[2,5,64,64,3]" in shapes  # context frames, batch 2
    assert "f32[2,64,64,3]" in shapes  # target and mean image
    # fused ConvLSTM gate kernels: 5x5, 4 x 256 output channels
    assert {"f32[5,5,583,1024]", "f32[5,5,1079,1024]"} <= shapes


def test_sweep_train_step_lowers_to_xla_at_a_static_batch():
    """The tiny preset's step with the sweep representation (projection,
    the four-corner gathers of the bilinear sampling, the softmax over
    depths) passes the TF->XLA bridge too."""
    summary, _ = run_child("tests.xla_step", "tiny", 2, "train", timeout=240)
    shapes = set(summary["shapes"])
    assert "f32[2,5,32,32,3]" in shapes  # context frames
    # 16x16 view features, sampled at 8x8 query cells x 12 depths
    assert {"f32[2,5,16,16,64]", "f32[2,5,768,64]"} <= shapes
    assert summary["adam_updates"] > 0


def test_eval_step_with_object_masks_lowers_to_xla_at_a_static_batch():
    """What a TPU computes for evaluation - the reconstruction's ELBO terms,
    the prior's generation and every per-example metric, the fruit ones
    from object masks included - passes the TF->XLA bridge with static
    shapes only (eval_metrics' metric_fn then averages on the host)."""
    summary, _ = run_child("tests.xla_step", "tiny", 2, "eval", timeout=240)
    outputs = summary["outputs"]
    assert {"mse", "psnr", "ssim", "sharpness", "blockiness", "elbo", "kl", "nll",
            "bits_per_dim", "fruit_mse", "fruit_psnr"} <= set(outputs)
    assert all(outputs[name] == [2] for name in outputs if name != "loss")
    assert summary["dynamic_shapes"] == []
    assert "f32[2,32,32,1]" in summary["shapes"]  # the masks
    assert summary["convolutions"] > 10 and summary["adam_updates"] == 0


def test_unreachable_tpu_fails_fast_with_its_name(data_root):
    start = time.time()
    result = run_cli(TRAIN, "--data_dir", data_root / "data", "--dataset", "rooms",
                     "--model_dir", data_root / "tpu_model", *TINY_MODEL_FLAGS,
                     "--use_tpu", "--tpu", "gqn-no-such-tpu", "--tpu_zone",
                     "europe-west4-a", timeout=150)
    assert_refused(result, "cannot reach Cloud TPU 'gqn-no-such-tpu'",
                   "zone europe-west4-a")
    # resolve_tpu gives up after 60 s whatever the network does
    assert time.time() - start < 120


def test_batch_that_does_not_split_over_tpu_cores_or_with_strategy_is_refused(data_root):
    result = run_cli(TRAIN, "--data_dir", data_root / "data", "--dataset", "rooms",
                     "--model_dir", data_root / "shards", *TINY_MODEL_FLAGS,
                     "--use_tpu", "--tpu", "unused", "--num_shards", "3", timeout=120)
    assert_refused(result, "global batch size 4 cannot be divided over 3 TPU cores",
                   "--batch_size 3 or 6")
    assert not os.path.exists(data_root / "shards")
    result = run_cli(TRAIN, "--data_dir", data_root / "data", "--dataset", "rooms",
                     "--model_dir", data_root / "both", *TINY_MODEL_FLAGS,
                     "--use_tpu", "--strategy", "mirrored", timeout=120)
    assert_refused(result, "--use_tpu and --strategy mirrored exclude each other")
