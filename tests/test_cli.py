"""The command-line product end to end on tiny generated data: train ->
resume -> warm start -> eval -> export -> the SavedModel agrees with the
predictor; the refusals; TensorBoard sees the scalars."""
import io
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from PIL import Image

from data_provider import record_writer, synthetic
from data_provider.datasets import get_dataset_info
from data_provider.photo_preprocess import cropped_field_of_view
from data_provider.fruit_stills import ConversionOptions, convert
from data_provider.scene_arrays import load_scenes
from gqn import hardware, objective
from gqn.config import GQNConfig, config_path
from gqn.model import FEATURE_KEYS
from gqn.model_fn import EVAL_METRICS, TRAIN_SCALARS
from gqn.predictor import Predictor
from tests.capture_helpers import apple  # noqa: F401  (a fixture)
from tests.capture_helpers import lay_out
from tests.cli_helpers import (TINY_MODEL_FLAGS, assert_ok, assert_refused, event_tags,
                                generate_rooms, rooms_flags, run_cli)

TRAIN = "train_gqn_draw.py"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    return generate_rooms(tmp_path_factory.mktemp("cli"))



@pytest.fixture(scope="module")
def pretrained(workspace):
    """A model_dir trained 4 steps, then resumed to 6."""
    model_dir = workspace / "pretrained"
    common = [*rooms_flags(workspace), "--model_dir", model_dir, *TINY_MODEL_FLAGS,
              "--save_checkpoints_steps", "2", "--summary_every_steps", "1",
              "--log_every_steps", "2", "--eval_steps", "2", "--debug"]
    first = assert_ok(run_cli(TRAIN, *common, "--max_steps", "4"))
    assert tf.train.latest_checkpoint(str(model_dir)).endswith("model.ckpt-4")
    resumed = assert_ok(run_cli(TRAIN, *rooms_flags(workspace), "--model_dir", model_dir,
                                "--max_steps", "6", "--save_checkpoints_steps", "2",
                                "--summary_every_steps", "1"))
    return model_dir, first, resumed



def test_train_resume_progress_and_summaries(pretrained):
    model_dir, first, resumed = pretrained
    config = GQNConfig.load(config_path(str(model_dir)))
    assert (config.image_size, config.hidden_channels, config.seq_length) == (16, 8, 2)
    assert config.representation == "sweep"  # the tiny preset's
    assert config.learning_rate_anneal_steps == config.sigma_anneal_steps == 20
    assert tf.train.latest_checkpoint(str(model_dir)).endswith("model.ckpt-6")
    assert int(tf.train.load_variable(str(model_dir), "global_step")) == 6
    assert "step 4/4" in first.stderr and "examples/s" in first.stderr
    assert "ETA" in first.stderr
    # each line once (TensorFlow's own handler printed it beside absl's),
    # and none of the Estimator API's deprecation notices
    assert first.stderr.count("step 4/4 ") == 1, first.stderr[-3000:]
    assert "is deprecated" not in first.stderr and "Use tf.keras" not in first.stderr
    assert "step 6/6" in resumed.stderr and "step 2/" not in resumed.stderr
    train_tags = event_tags(str(model_dir))
    assert set(TRAIN_SCALARS) | {"target", "generation", "examples/sec"} <= train_tags
    # generated scenes carry object masks: the error on the objects too
    assert set(EVAL_METRICS) | set(objective.MASKED_METRICS) <= event_tags(
        str(model_dir / "eval"))


def test_flag_contradicting_saved_config_is_refused(pretrained, workspace):
    model_dir, _, _ = pretrained
    result = run_cli(TRAIN, *rooms_flags(workspace), "--model_dir", model_dir,
                     "--hidden_channels", "16", "--max_steps", "8")
    assert_refused(result, "--hidden_channels=16", "hidden_channels=8",
                   config_path(str(model_dir)))
    assert tf.train.latest_checkpoint(str(model_dir)).endswith("model.ckpt-6")


def test_warm_start_copies_weights_and_restarts_schedules(pretrained, workspace):
    """The source's model, its weights, the schedules from step 0 - annealed
    over this run's 2 steps, as no --anneal_steps said otherwise (the
    source's were 20)."""
    source, _, _ = pretrained
    target = workspace / "finetuned"
    result = assert_ok(run_cli(TRAIN, *rooms_flags(workspace), "--model_dir", target,
                               "--warm_start_from", source, "--max_steps", "2",
                               "--save_checkpoints_steps", "100", "--skip_eval"))
    assert "anneal over this run's 2 steps" in result.stderr
    assert GQNConfig.load(config_path(str(target))) == GQNConfig.load(
        config_path(str(source))).annealed_over(2)
    source_reader = tf.train.load_checkpoint(str(source))
    start_reader = tf.train.load_checkpoint(str(target / "model.ckpt-0"))
    names = [name for name in source_reader.get_variable_to_shape_map()
             if name.startswith("gqn/") and "Adam" not in name]
    assert len(names) > 10
    for name in names:
        np.testing.assert_array_equal(start_reader.get_tensor(name),
                                      source_reader.get_tensor(name), err_msg=name)
    assert start_reader.get_tensor("global_step") == 0
    assert int(tf.train.load_variable(str(target), "global_step")) == 2


def test_warm_start_from_mismatched_model_lists_the_variables(pretrained, workspace):
    source, _, _ = pretrained
    target = workspace / "mismatch"
    result = run_cli(TRAIN, *rooms_flags(workspace), "--model_dir", target,
                     "--warm_start_from", source, "--hidden_channels", "12",
                     "--max_steps", "1")
    assert_refused(result, "does not fit this model", "generator_core/kernel",
                   "shape:")
    assert not os.path.exists(target / "model.ckpt-0.index")


def _checkpoint_without(source, dropped, prefix):
    """A copy of `source`'s newest checkpoint without the variables `dropped`,
    as a checkpoint written before they existed would be."""
    reader = tf.train.load_checkpoint(str(source))
    with tf.Graph().as_default():
        kept = {name: tf.Variable(reader.get_tensor(name))
                for name in reader.get_variable_to_shape_map() if name not in dropped}
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            tf.train.Saver(kept).save(session, str(prefix))
    return prefix


def test_warm_start_from_a_checkpoint_older_than_a_colour_path_weight(pretrained, workspace):
    """A colour-path blend weight the checkpoint lacks starts from its
    designed value (raw 0), said in the log; every other weight is copied.
    A missing network weight is still refused."""
    source, _, _ = pretrained
    new_weight = "gqn/colour_path/correlation"
    older = _checkpoint_without(source, {new_weight}, workspace / "older" / "model.ckpt-6")
    target = workspace / "from_older"
    result = assert_ok(run_cli(TRAIN, *rooms_flags(workspace), *TINY_MODEL_FLAGS,
                               "--model_dir", target, "--warm_start_from", older,
                               "--max_steps", "1", "--save_checkpoints_steps", "100",
                               "--skip_eval"))
    assert f"predates {new_weight}" in result.stderr
    start = tf.train.load_checkpoint(str(target / "model.ckpt-0"))
    assert start.get_tensor(new_weight) == 0.0
    source_reader = tf.train.load_checkpoint(str(source))
    for name in ("gqn/colour_path/ray_angle", "gqn/draw/prior/kernel"):
        np.testing.assert_array_equal(start.get_tensor(name), source_reader.get_tensor(name))
    assert not source_reader.get_tensor("gqn/colour_path/ray_angle") == 0.0  # trained

    older = _checkpoint_without(source, {"gqn/draw/prior/kernel"},
                                workspace / "no_prior" / "model.ckpt-6")
    result = run_cli(TRAIN, *rooms_flags(workspace), *TINY_MODEL_FLAGS,
                     "--model_dir", workspace / "refused", "--warm_start_from", older,
                     "--max_steps", "1")
    assert_refused(result, "does not fit this model", "missing: gqn/draw/prior/kernel")


def test_warm_start_from_missing_checkpoint(workspace):
    result = run_cli(TRAIN, *rooms_flags(workspace), "--model_dir", workspace / "x",
                     *TINY_MODEL_FLAGS, "--warm_start_from", workspace / "nowhere")
    assert_refused(result, "nowhere", "neither a model_dir nor a checkpoint")


def test_a_word_that_is_no_flag_is_refused_not_dropped(workspace):
    """`--hparams a=1 b=2` (a space for the comma) leaves 'b=2' as a stray
    argument: refused with its name, nothing trained."""
    result = run_cli(TRAIN, *rooms_flags(workspace), "--model_dir", workspace / "z",
                     *TINY_MODEL_FLAGS, "rendered_depth_focus=2")
    assert_refused(result, "unexpected arguments ['rendered_depth_focus=2']", "commas")
    assert not os.path.exists(workspace / "z")


@pytest.mark.parametrize("script", ["scripts/capture_experiment.py", "scripts/demo.py",
                                    "scripts/benchmark_quality.py"])
def test_the_scripts_refuse_a_stray_word_too(script, tmp_path):
    """The long jobs refuse a stray word before doing anything (each would
    otherwise run for minutes without it)."""
    result = run_cli(script, "--output_dir", tmp_path / "out", "seed=1")
    assert_refused(result, "unexpected arguments ['seed=1']")
    assert not os.path.exists(tmp_path / "out")


def test_a_depth_loss_without_the_colour_path_is_refused(workspace):
    """The depth loss trains the colour path's depth choice: asked for with
    the colour path off it would be dropped silently, so it is refused."""
    result = run_cli(TRAIN, *rooms_flags(workspace), "--model_dir", workspace / "d",
                     *TINY_MODEL_FLAGS, "--colour_path=false", "--depth_loss_weight", "1")
    assert_refused(result, "depth_loss_weight needs the colour path")
    assert not os.path.exists(workspace / "d")


def test_the_quality_benchmark_refuses_a_missing_pretrained_model(tmp_path):
    result = run_cli("scripts/benchmark_quality.py", "--output_dir", tmp_path / "out",
                     "--pretrained_model_dir", tmp_path / "nowhere")
    assert_refused(result, "nowhere", "neither a model_dir nor a checkpoint")
    assert not os.path.exists(tmp_path / "out")


def test_unknown_dataset_lists_known_ones(workspace):
    result = run_cli(TRAIN, "--data_dir", workspace / "data", "--dataset", "roms",
                     "--model_dir", workspace / "y", *TINY_MODEL_FLAGS)
    assert_refused(result, "'roms'", "rooms_ring_camera")
    assert not os.path.exists(workspace / "y")


def test_eval_writes_metrics_and_grid_and_compares(pretrained, workspace):
    model_dir, _, _ = pretrained
    output = workspace / "eval"
    result = assert_ok(run_cli("eval_gqn.py", *rooms_flags(workspace), "--model_dir",
                               model_dir, "--compare_model_dir", model_dir,
                               "--output_dir", output, "--num_scenes", "6",
                               "--num_samples", "2"))
    metrics = json.loads((output / "metrics.json").read_text())
    for name in ("elbo", "kl", "nll", "bits_per_dim", "mse", "psnr", "ssim"):
        assert set(metrics["model"][name]) == {"mean", "stderr"}
        assert np.isfinite(metrics["model"][name]["mean"])
    assert set(metrics["baselines"]) == {"nearest_context", "context_mean", "plane_sweep",
                                         "reprojection"}
    for baseline in metrics["baselines"]:
        # generated scenes carry object masks: the error on the objects too
        assert set(metrics["baselines"][baseline]) == {"mse", "psnr", "ssim", "sharpness",
                                                       "fruit_mse", "fruit_psnr",
                                                       "background_mse", "background_psnr"}
    assert np.isfinite(metrics["model"]["fruit_psnr"]["mean"])
    assert np.isfinite(metrics["model"]["background_psnr"]["mean"])
    assert metrics["num_scenes"] == 6
    # the same model on the same scenes and noise scores identically
    assert metrics["compare_model"] == metrics["model"]
    assert "baseline: nearest_context" in result.stdout
    from PIL import Image
    grid = Image.open(output / "grid.png")
    # 6 rows of 16px tiles scaled 6x; 3 context + target + 2 x (generated, spread)
    assert grid.width > 7 * 16 * 6 and grid.height > 6 * 16 * 6


def test_eval_refuses_a_folder_that_is_not_a_model_dir(workspace):
    result = run_cli("eval_gqn.py", *rooms_flags(workspace), "--model_dir",
                     workspace / "data", "--output_dir", workspace / "e2")
    assert_refused(result, "gqn_config.json", "not a trained model_dir")


def test_export_matches_the_predictor(pretrained, workspace):
    model_dir, _, _ = pretrained
    result = assert_ok(run_cli(TRAIN, "--model_dir", model_dir, "--export_dir",
                               workspace / "export", "--export_batch_size", "2"))
    export_path = result.stdout.strip().splitlines()[-1].split("SavedModel: ")[1]
    scenes = load_scenes("rooms", str(workspace / "data"), 3, 2, seed=5)
    seeds = np.array([17, 4])
    predictor = Predictor(str(model_dir))
    features = {key: scenes[key] for key in FEATURE_KEYS}
    expected = predictor.render(features, seeds)[:, 0]
    with tf.Graph().as_default(), tf.Session() as session:
        meta = tf.saved_model.loader.load(session, ["serve"], export_path)
        signature = meta.signature_def["serving_default"]
        feeds = {signature.inputs[key].name: value
                 for key, value in dict(features, noise_seed=seeds).items()}
        served = session.run(signature.outputs["mean_image"].name, feeds)
    np.testing.assert_allclose(served, expected, atol=1e-5)
    assert not np.allclose(served[0], served[1])
    if hardware.cpu_has_bfloat16():  # same weights, networks in bfloat16
        in_bfloat16 = Predictor(str(model_dir), precision="bfloat16").render(
            features, seeds)[:, 0]
        gap = np.abs(in_bfloat16 - expected)
        assert 0 < gap.mean() < 0.01, gap.mean()


def test_render_from_photos_reads_their_field_of_view_from_exif(pretrained, tmp_path):
    """Photos with a pose CSV: each frame's angle is read from its EXIF, as
    the converter reads it (the generator's 45 degrees, cropped to the
    square frame), and without EXIF the labelled assumption is said."""
    model_dir, _, _ = pretrained
    scene, poses = synthetic.make_scene("rooms", 0, "test", 0, 1, 4)
    views = synthetic.render(scene, poses, 96, 72)
    rows = ["scene,image,x,y,z,yaw,pitch"]
    for index, (view, pose) in enumerate(zip(views, poses)):
        name = f"view{index}.jpg"
        exif = synthetic.photo_exif((96, 72), scene.fov_y) if index < 3 else None
        (tmp_path / name).write_bytes(record_writer.encode_jpeg(view, exif=exif))
        rows.append(f"room,{name}," + ",".join(f"{value:.6f}" for value in pose))
    (tmp_path / "poses.csv").write_text("\n".join(rows[:4]) + "\n")
    result = assert_ok(run_cli("scripts/render.py", "--model_dir", model_dir,
                               "--output_dir", tmp_path / "out", "--photos_dir", tmp_path,
                               "--poses_csv", tmp_path / "poses.csv",
                               "--angle_unit", "radians", "--num_frames", "3"))
    expected = cropped_field_of_view(synthetic.FIELD_OF_VIEW_DEGREES, 16)
    assert f"field of view of the frames: {expected:.2f} deg (EXIF FocalLength" in result.stdout
    assert (tmp_path / "out" / "strip.png").exists()
    (tmp_path / "poses.csv").write_text("\n".join(rows[:1] + rows[4:]) + "\n")
    result = assert_ok(run_cli("scripts/render.py", "--model_dir", model_dir,
                               "--output_dir", tmp_path / "out2", "--photos_dir", tmp_path,
                               "--poses_csv", tmp_path / "poses.csv",
                               "--angle_unit", "radians", "--num_frames", "3"))
    assert "assumed: a phone main camera" in result.stdout


def test_render_writes_gif_and_strip(pretrained, workspace):
    model_dir, _, _ = pretrained
    output = workspace / "render"
    assert_ok(run_cli("scripts/render.py", "--model_dir", model_dir, "--output_dir",
                      output, *rooms_flags(workspace), "--num_frames", "6"))
    gif = Image.open(output / "flyaround.gif")
    assert gif.n_frames == 6
    strip = np.asarray(Image.open(output / "strip.png").convert("L"))
    # row labels (64 px), then the scene's views (every one but the test
    # query's) above 6 rendered views, 16 px shown at 4x, 2 px gaps
    scene_views = get_dataset_info("rooms", str(workspace / "data")).min_views - 1
    assert strip.shape == (2 * 66 + 2, 64 + max(6, scene_views) * 66 + 2)
    labels, first_scene_view = strip[:, :64], strip[2:66, 66:130]
    assert labels.min() < 128  # "views" / "rendered" drawn in dark ink
    assert first_scene_view.std() > 0


def test_held_out_views_are_evaluated_and_rendered_with_no_further_flags(
        pretrained, workspace, apple, tmp_path):
    """The real apple capture, posed by its transforms.json, with two views
    held out: eval asks for exactly those two, render shows them beside the
    views rendered at their poses."""
    model_dir, _, _ = pretrained
    root, _ = lay_out(tmp_path, apple, "transforms")
    convert(ConversionOptions(input_path=str(root), output_dir=str(tmp_path / "data"),
                              name="apple", image_size=16, poses="transforms",
                              holdout_views=2, context_size=3, workers=1))
    data = ["--data_dir", tmp_path / "data", "--dataset", "apple"]
    assert_ok(run_cli("eval_gqn.py", *data, "--model_dir", model_dir, "--output_dir",
                      tmp_path / "eval", "--num_scenes", "10"))
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["num_scenes"] == 2
    assert_ok(run_cli("scripts/render.py", "--model_dir", model_dir, "--output_dir",
                      tmp_path / "render", *data, "--num_frames", "6"))
    strip = np.asarray(Image.open(tmp_path / "render" / "strip.png").convert("L"))
    # the scene's views, rendered ring, held-out photos, rendered at their poses
    assert strip.shape[0] == 4 * 66 + 2
    held_out_photo = strip[2 + 2 * 66:2 + 2 * 66 + 64, 66:130]
    assert held_out_photo.std() > 5
    # Training evaluates in batches the two test examples can fill.
    trained = assert_ok(run_cli(TRAIN, *data, "--model_dir", tmp_path / "model",
                                *TINY_MODEL_FLAGS, "--max_steps", "2", "--eval_steps", "1"))
    evaluated = re.search(r"eval at step 2: .*?mse ([0-9.e-]+)", trained.stderr)
    assert evaluated and float(evaluated.group(1)) > 0, trained.stderr[-2000:]


def test_nan_loss_stops_training_and_keeps_last_good_checkpoint(pretrained, workspace):
    source, _, _ = pretrained
    model_dir = workspace / "diverging"
    result = run_cli(TRAIN, *rooms_flags(workspace), "--model_dir", model_dir,
                     "--warm_start_from", source, "--skip_eval",
                     "--save_checkpoints_steps", "1", "--max_steps", "20",
                     "--hparams", "learning_rate_start=1e35")
    assert_refused(result, "NaN or Inf", "last good checkpoint", str(model_dir))
    latest = tf.train.latest_checkpoint(str(model_dir))
    reader = tf.train.load_checkpoint(latest)
    assert 0 <= reader.get_tensor("global_step") < 20
    # a step whose loss was NaN also made NaN weights: none were saved
    for name in reader.get_variable_to_shape_map():
        assert np.all(np.isfinite(reader.get_tensor(name))), (latest, name)


def test_empty_train_split_is_reported_not_looped(workspace, tmp_path):
    root = tmp_path / "data"
    synthetic.generate_dataset(str(root), "rooms", "rooms", num_train_scenes=1,
                               num_test_scenes=1, image_size=16, num_workers=1)
    for shard in (root / "rooms" / "train").glob("*.tfrecord"):
        shard.write_bytes(b"")  # a valid TFRecord file holding no records
    result = run_cli(TRAIN, "--data_dir", root, "--dataset", "rooms", "--model_dir",
                     tmp_path / "m", *TINY_MODEL_FLAGS, "--max_steps", "3",
                     "--skip_eval")
    assert_refused(result, "training data ran out at step 0")


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _get_json(url):
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def test_tensorboard_serves_train_and_eval_scalars(pretrained):
    model_dir, _, _ = pretrained
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", str(model_dir),
         "--host", "127.0.0.1", "--port", str(port), "--reload_interval", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/data/plugin/scalars"
    try:
        deadline, tags = time.time() + 90, {}
        while time.time() < deadline:
            try:
                tags = _get_json(f"{base}/tags")
                if "elbo" in tags.get(".", {}) and "elbo" in tags.get("eval", {}):
                    break
            except OSError:
                pass
            time.sleep(1)
        assert set(TRAIN_SCALARS) <= set(tags.get(".", {})), tags
        assert set(EVAL_METRICS) <= set(tags.get("eval", {})), tags
        series = _get_json(f"{base}/scalars?run=.&tag=elbo")
        assert [step for _, step, _ in series] == list(range(6))
        assert all(np.isfinite(value) and value > 0 for _, _, value in series)
        evals = _get_json(f"{base}/scalars?run=eval&tag=psnr")
        assert [step for _, step, _ in evals] == [4, 6]
        image_tags = _get_json(f"http://127.0.0.1:{port}/data/plugin/images/tags")
        assert {"target", "reconstruction", "generation"} <= set(image_tags["."])
        plugin = f"http://127.0.0.1:{port}/data/plugin/images"
        shown = _get_json(f"{plugin}/images?run=.&tag=generation&sample=0")
        assert [entry["step"] for entry in shown] == list(range(4))  # --debug run only
        with urllib.request.urlopen(f"{plugin}/individualImage?{shown[-1]['query']}",
                                    timeout=5) as response:
            picture = Image.open(io.BytesIO(response.read()))
        assert (picture.format, picture.size) == ("PNG", (16, 16))
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_console_scripts_are_installed_and_answer_help():
    """Each console script setup.py declares is installed beside the venv's
    python; its --help shows the command's docstring and lists its own and
    the shared flags, without TensorFlow's start-up log."""
    declared = {
        "gqn-train": ("Train, resume or fine-tune", ["--warm_start_from", "--data_dir",
                                                     "--preset", "--precision"]),
        "gqn-eval": ("Evaluate trained GQN", ["--compare_model_dir", "--data_dir"]),
        "gqn-convert-fruit-stills": ("Converts the fruit", ["--manifest", "--poses",
                                                            "--holdout_views"]),
        "gqn-render": ("Render a fly-around", ["--poses_csv", "--precision"])}
    environment = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    for script, (title, flags) in declared.items():
        path = os.path.join(os.path.dirname(sys.executable), script)
        result = subprocess.run([path, "--help"], capture_output=True, text=True,
                                timeout=120, env=environment)
        assert "Traceback" not in result.stderr, (script, result.stderr[-2000:])
        assert result.stdout.startswith(title), (script, result.stdout[:300])
        for flag in flags:
            assert f"  {flag}" in result.stdout, (script, flag)
        assert "tensorflow/" not in result.stderr, (script, result.stderr[-2000:])
    loud = subprocess.run([path, "--help", "--verbosity=0"], capture_output=True,
                          text=True, timeout=120, env=environment)
    assert "tensorflow/" in loud.stderr  # C++ log lines name their source file


def test_help_keeps_the_docstring_line_breaks():
    result = run_cli(TRAIN, "--help")
    assert "python3 train_gqn_draw.py ... \\\n        --strategy multi_worker" in result.stdout
