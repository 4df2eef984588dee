"""Pictures the package and its scripts write: whole files, readable by
others."""
import os
import stat

import numpy as np
from PIL import Image

from gqn import images
from scripts.curves import plot_curves


def test_pictures_are_written_whole_with_the_usual_permissions(tmp_path):
    previous = os.umask(0o022)
    try:
        frames = [np.full((8, 8, 3), value, np.float32) for value in (0.2, 0.8)]
        png = images.save_png(images.grid([frames]), str(tmp_path / "grid.png"))
        gif = images.save_gif(frames, str(tmp_path / "fly.gif"))
    finally:
        os.umask(previous)
    for path in (png, gif):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert Image.open(gif).n_frames == 2
    assert sorted(os.listdir(tmp_path)) == ["fly.gif", "grid.png"]  # no partial files


def test_curves_are_written_whole_with_the_usual_permissions(tmp_path):
    previous = os.umask(0o022)
    try:
        plot_curves({"finetuned": {"75": {"psnr": 20.0}, "150": {"psnr": 21.0}}},
                    {"context_mean": {"psnr": 19.0}}, [("psnr", "PSNR (dB)")],
                    "two points", str(tmp_path / "curves.png"))
    finally:
        os.umask(previous)
    curves = tmp_path / "curves.png"
    assert stat.S_IMODE(os.stat(curves).st_mode) == 0o644
    assert Image.open(curves).format == "PNG"
    assert os.listdir(tmp_path) == ["curves.png"]  # no partial files
