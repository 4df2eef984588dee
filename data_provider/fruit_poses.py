"""The fixed camera poses of the fruit still-life photos (from the seed project).

Each scene was photographed from one of two fixed layouts around the table:
12 views (scenes 1-129) or 8 views (scenes 130-235). The seed wrote them as
(x, y, sin yaw, cos yaw) with the camera at z = 0 and pitch 0; here they are
stored raw, (x, y, z, yaw, pitch) in radians, like every record in the
package. The seed's (sin, cos) pairs point every camera into the table (the
corners at the centre, the sides straight across) only when read as
counter-clockwise yaw; in DeepMind's clockwise convention (gqn.poses) the same
camera has yaw = -atan2(sin, cos), stored in [0, 2 pi).
"""
import numpy as np

_LAYOUT_12 = [(-1, -1, .707, .707), (-.5, -1, 1, 0), (.5, -1, 1, 0),
              (1, -1, .707, -.707), (1, -.5, 0, -1), (1, .5, 0, -1),
              (1, 1, -.707, -.707), (.5, 1, -1, 0), (-.5, 1, -1, 0),
              (-1, 1, -.707, .707), (-1, .5, 0, 1), (-1, -.5, 0, 1)]
_LAYOUT_8 = [(-1, -1, .707, .707), (0, -1, 1, 0), (1, -1, .707, -.707),
             (1, 0, 0, -1), (1, 1, -.707, -.707), (0, 1, -1, 0),
             (-1, 1, -.707, .707), (-1, 0, 0, 1)]


def _raw_layout(rows):
    return np.array([(x, y, 0.0, np.mod(-np.arctan2(s, c), 2 * np.pi), 0.0)
                     for x, y, s, c in rows],
                    dtype=np.float32)


# views per scene -> (views, 5) raw poses in photo order
FRUIT_LAYOUTS = {12: _raw_layout(_LAYOUT_12), 8: _raw_layout(_LAYOUT_8)}
