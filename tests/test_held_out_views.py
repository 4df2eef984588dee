"""Per held-out view: how far each query is from its context, and the
report of which views stand in gaps of the walk."""
import math

import numpy as np

from gqn import evaluation
from gqn.poses import encode_poses_np


def _looking(yaw_degrees, pitch_degrees=0.0):
    """A raw pose at the origin looking along (yaw, pitch)."""
    return [0.0, 0.0, 0.0, math.radians(yaw_degrees) % (2 * math.pi),
            math.radians(pitch_degrees)]


def test_nearest_context_degrees_is_the_angle_to_the_closest_viewing_direction():
    scenes = {"query_pose": encode_poses_np([_looking(0), _looking(100, 20)]),
              "context_poses": encode_poses_np([[_looking(-50), _looking(30), _looking(90)],
                                                [_looking(0), _looking(100), _looking(180)]])}
    np.testing.assert_allclose(evaluation.nearest_context_degrees(scenes), [30.0, 20.0],
                               atol=1e-3)


def test_per_view_table_names_the_views_in_gaps_of_the_walk():
    def psnr(*values):
        return {"psnr": list(values)}

    per_scene = {"nearest_context_degrees": [2.0, 17.3, 29.8, 5.3],
                 "model": psnr(28.7, 22.1, 14.0, 24.5),
                 "compare_model": psnr(29.2, 21.1, 15.5, 24.2),
                 "baselines": {"reprojection": psnr(31.1, 20.0, 15.1, 23.5),
                               "nearest_context": psnr(23.4, 16.1, 15.2, 20.7),
                               "context_mean": psnr(22.6, 18.8, 16.2, 19.0)}}
    lines = evaluation.per_view_table(per_scene).splitlines()
    row_three = next(line for line in lines if line.split()[:2] == ["3", "30°"])
    assert row_three.split()[2:] == ["14.00", "15.50", "15.10", "15.20"]
    assert lines[-1].startswith("row(s) 3: more than 25 degrees")
    del per_scene["compare_model"]
    assert evaluation.per_view_table(per_scene, gap_degrees=40).splitlines()[-1].split() == [
        "4", "5°", "24.50", "23.50", "20.70"]
