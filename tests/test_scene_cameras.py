"""A converted scene's depth range and field-of-view bookkeeping
(data_provider.scene_cameras)."""
import math

import numpy as np
import pytest

from data_provider import scene_cameras, scene_geometry


def test_depth_range_counts_only_the_points_the_frames_see():
    """One camera at (-2, 0, 0) looking along +x with a 40 degree frame:
    points inside its frame set the range; as many points beside the frame
    or behind the camera, at other depths, do not."""
    rng = np.random.RandomState(0)
    poses = np.array([[-2.0, 0.0, 0.0, 0.0, 0.0]])
    depths = rng.uniform(1.5, 2.5, 200)
    spread = np.tan(math.radians(19)) * depths
    seen = np.stack([depths - 2, rng.uniform(-1, 1, 200) * spread,
                     rng.uniform(-1, 1, 200) * spread], axis=1)
    beside = np.stack([np.full(200, 8.0), np.full(200, 9.0), np.zeros(200)], axis=1)
    behind = np.stack([np.full(200, -6.0), np.zeros(200), np.zeros(200)], axis=1)
    (near, far), source = scene_cameras.depth_range(
        poses, np.concatenate([seen, beside, behind]), [40.0])
    assert (near, far) == pytest.approx(scene_geometry.depth_range_from_depths(
        depths, scene_geometry.SFM_POINT_PERCENTILES))
    assert source == ("depths of the 200 3-D points the frames see "
                      "(2nd-90th percentile, widened 0.8x / 1.25x)")


def test_far_plane_of_points_ignores_the_background_past_the_object():
    """An SfM model's object and table (92% of the points, 1-1.5 deep) and
    the background seen past them (8%, 4-5 deep): the points' far plane
    stays near the object, while rendered surfaces, all of them scene,
    keep their far wall inside the range."""
    rng = np.random.RandomState(1)
    depths = np.concatenate([rng.uniform(1.0, 1.5, 920), rng.uniform(4.0, 5.0, 80)])
    near, far = scene_geometry.depth_range_from_depths(
        depths, scene_geometry.SFM_POINT_PERCENTILES)
    assert near == pytest.approx(0.8 * np.percentile(depths, 2))
    assert 1.5 < far < 2.0
    assert scene_geometry.depth_range_from_depths(
        depths, scene_geometry.SURFACE_PERCENTILES)[1] > 5.0


def test_depth_range_without_seen_points_comes_from_the_cameras():
    poses = np.array([[-2.0, 0.0, 0.0, 0.0, 0.0], [0.0, 3.0, 0.0, math.pi / 2, 0.0]])
    for points in (None, np.zeros((0, 3)), np.array([[-9.0, -9.0, 0.0]])):
        near_far, source = scene_cameras.depth_range(poses, points, [40.0, 40.0])
        assert near_far == pytest.approx((scene_geometry.NEAR_SHARE * 2,
                                          scene_geometry.FAR_SHARE * 3))
        assert source == scene_cameras.DEPTH_FROM_CAMERAS


def test_one_angle_or_one_per_view_in_record_order():
    same = scene_cameras.SceneCameras((40.0, 40.0, 40.0), "s", (0.5, 3.0), "d")
    assert same.record_field_of_view([2, 0]) == [math.radians(40.0)]
    assert same.json_dict()["field_of_view_degrees"] == 40.0
    mixed = scene_cameras.SceneCameras((40.0, 41.0, 42.0), "s", (0.5, 3.0), "d")
    assert mixed.record_field_of_view([2, 0]) == [math.radians(42.0), math.radians(40.0)]
    assert mixed.json_dict()["field_of_view_degrees"] == [40.0, 41.0, 42.0]
    assert mixed.angle_text() == "40.0-42.0 deg"
