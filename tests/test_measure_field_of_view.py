"""scripts/measure_field_of_view.py: its projection is the package's camera
model inverted, it recovers known angles (generated still lifes at 45
degrees from their object masks; cube chains on black at 60 degrees from
their pixels) and it finds the field of view measured for DeepMind's real
shepard_metzler_5_parts records, on coarse grids that run in seconds."""
import json
import os
import pathlib

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from data_provider import synthetic
from data_provider.datasets import DEEPMIND_DATASETS
from gqn.poses import encode_poses_np, ray_directions, yaw_pitch_of
from scripts import measure_field_of_view as fov
from tests.cli_helpers import assert_ok, run_cli

GQN_DATA = (pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"
            / "gqn-datasets")
SM5_RECORD = GQN_DATA / "shepard_metzler_5_parts" / "test" / "001-of-100.tfrecord"
# The dataset table holds the full measurement (96^3 voxels, 10-80 degrees in
# 1-degree steps: 24.0, bootstrap 95% interval 20.8-26.6); the coarse grid
# here must land within this band of it.
SM5_BAND_DEGREES = 4.0


def cameras_on_sphere(num_views, distance, seed):
    """Raw cameras at `distance` from the origin, looking at it, from
    directions spread over the sphere (as DeepMind's shepard_metzler ones)."""
    rng = np.random.default_rng(seed)
    positions = rng.normal(size=(num_views, 3))
    positions *= distance / np.linalg.norm(positions, axis=1, keepdims=True)
    yaw, pitch = yaw_pitch_of(-positions)
    return np.concatenate([positions, yaw[:, None], pitch[:, None]], 1).astype(np.float32)


def test_projection_inverts_the_package_rays(fresh_graph):
    """A point anywhere along the ray gqn.poses.ray_directions casts through
    a pixel's centre projects back into that pixel."""
    cameras = cameras_on_sphere(4, 3.0, seed=1)
    size, field_of_view = 16, np.radians(37.0)
    with tf.Session() as session:
        directions = session.run(ray_directions(encode_poses_np(cameras), size,
                                                field_of_view))
    depths = np.random.default_rng(2).uniform(1.0, 5.0, (4, size, size, 1))
    for view in range(4):
        points = (cameras[view, :3] + depths[view] * directions[view]).reshape(-1, 3)
        rows, columns, inside = fov.project(points, cameras[view:view + 1], size,
                                            field_of_view)
        assert inside.all()
        expected_rows, expected_columns = np.divmod(np.arange(size * size), size)
        np.testing.assert_array_equal(rows[0], expected_rows)
        np.testing.assert_array_equal(columns[0], expected_columns)


def test_cube_chains_on_black_recover_their_angle():
    """Shepard-Metzler-like chains rendered at 60 degrees from cameras on a
    sphere, segmented from their JPEG pixels, peak within 3 degrees of 60;
    30 and 90 degrees fit clearly worse."""
    scenes = [fov.PosedViews(f"sphere {seed}", np.zeros((15, 64, 64, 3), np.uint8),
                             cameras_on_sphere(15, 3.33, seed)) for seed in (0, 1)]
    rendered = fov.render_cube_chains(scenes, 60.0)
    silhouettes = [fov.pixel_silhouettes(s.frames, 32) for s in rendered]
    angles = np.array([30.0, 52.0, 56.0, 60.0, 64.0, 68.0, 90.0])
    iou = fov.measure(silhouettes, [s.cameras for s in rendered], angles, 64)
    summary = fov.summarize(angles, iou, np.repeat([0, 1], 15), bootstrap=100)
    assert abs(summary["peak_degrees"] - 60.0) <= 3.0, summary
    mean = np.array(summary["mean_iou"])
    assert mean[0] < mean.max() - 0.02 and mean[-1] < mean.max() - 0.02, mean


def test_real_shepard_metzler_peak():
    """On DeepMind's two real scenes the coarse measurement peaks within
    SM5_BAND_DEGREES of the angle in the dataset table; the 50 degrees
    listed for DeepMind's other sets and 80 degrees fit clearly worse."""
    if not SM5_RECORD.exists():
        pytest.skip(f"real GQN records not found at {SM5_RECORD} (../shared/data "
                    "relative to the repo root)")
    scenes = fov.read_scenes(str(GQN_DATA), "shepard_metzler_5_parts")
    assert [len(s.cameras) for s in scenes] == [15, 15]
    silhouettes = [fov.pixel_silhouettes(s.frames, 32) for s in scenes]
    angles = np.array([14.0, 18.0, 22.0, 26.0, 30.0, 34.0, 50.0, 80.0])
    iou = fov.measure(silhouettes, [s.cameras for s in scenes], angles, 48)
    summary = fov.summarize(angles, iou, np.repeat([0, 1], 15), bootstrap=100)
    table = DEEPMIND_DATASETS["shepard_metzler_5_parts"].field_of_view_degrees
    assert abs(summary["peak_degrees"] - table) <= SM5_BAND_DEGREES, summary
    mean = dict(zip(angles, summary["mean_iou"]))
    assert mean[50.0] < summary["peak_iou"] - 0.02, mean
    assert mean[80.0] < summary["peak_iou"] - 0.05, mean


def test_generated_still_lifes_recover_45_degrees(tmp_path):
    """The command on generated still lifes (rendered at
    synthetic.FIELD_OF_VIEW_DEGREES, silhouettes from their object masks)
    peaks within 2 degrees of it and writes its table, plot and pictures."""
    synthetic.generate_dataset(str(tmp_path), "still_life", "still_life",
                               num_train_scenes=1, num_test_scenes=3, num_workers=1)
    out = tmp_path / "out"
    result = assert_ok(run_cli(
        "scripts/measure_field_of_view.py", "--data_dir", tmp_path, "--dataset",
        "still_life", "--silhouettes", "masks", "--angles", "37:53:2",
        "--resolution", 48, "--bootstrap", 100, "--output_dir", out))
    report = json.loads((out / "fov.json").read_text())
    peak = report["summary"]["peak_degrees"]
    assert abs(peak - synthetic.FIELD_OF_VIEW_DEGREES) <= 2.0, report["summary"]
    assert f"peak: {peak:.1f} degrees" in result.stdout
    assert len(report["scene_of_view"]) == 12 + 12 + 8
    for picture in ("fov_curve.png", "fov_views.png"):
        assert os.path.getsize(out / picture) > 1000


def test_bad_input_is_named(tmp_path):
    with pytest.raises(ValueError, match="--angles '80:30:1'"):
        fov.parse_angles("80:30:1")
    with pytest.raises(ValueError, match="first:last:step"):
        fov.parse_angles("30-80")
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        fov.read_scenes(str(tmp_path), "shepard_metzler_5_parts")
    unmasked = fov.PosedViews("scene 7", np.zeros((3, 8, 8, 3), np.uint8),
                              np.zeros((3, 5), np.float32))
    with pytest.raises(ValueError, match="scene 7 has no object masks"):
        fov.scene_silhouettes(unmasked, "masks", 32)
