"""Pictures the package writes: whole files, readable by others."""
import os
import stat

import numpy as np
from PIL import Image

from gqn import images


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
