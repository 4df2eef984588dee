"""One normalisation of imported or estimated cameras into the GQN frame.

Every pose source (transforms.json, COLMAP, SfM) yields a CameraSet in its own
world frame, whose origin, scale and up direction are arbitrary. GQN poses
mean DeepMind's geometry (gqn.poses): the object at the origin, z up, yaw
clockwise seen from +z. `normalise_cameras` maps any CameraSet into that frame
by one similarity transform, so the same capture gives the same raw poses
whichever tool produced its cameras.
"""
import dataclasses

import numpy as np

from data_provider.photo_source import InputError
from gqn.poses import viewing_direction, yaw_pitch_of

# Mean camera distance from the object in GQN units: the fruit still-life
# layout's cameras stand 1.0-1.41 from the table centre (mean 1.22).
DEFAULT_RADIUS = 1.2
# Readers' float32 files round rotations to ~1e-7; anything beyond this is
# not a rotation.
ROTATION_TOLERANCE = 1e-3
# Optical axes closer to parallel than this (smallest eigenvalue of the
# least-squares system per camera) meet in no well-defined point.
_PARALLEL_TOLERANCE = 1e-6
_UP = np.array([0.0, 0.0, 1.0])
# Right axes spanning less than this (second eigenvalue of their mean outer
# product; 0.5 for axes spread evenly over a plane) leave up undetermined.
_LEVEL_SPAN_TOLERANCE = 0.01


def _read_only(array):
    array.setflags(write=False)
    return array


def rotation_error(matrix):
    """(max |M^T M - I|, det M) of a 3x3 matrix: how far from a rotation."""
    matrix = np.asarray(matrix, np.float64)
    return (float(np.abs(matrix.T @ matrix - np.eye(3)).max()),
            float(np.linalg.det(matrix)))


def _nearest_rotation(matrix):
    u, _, vt = np.linalg.svd(matrix)
    return u @ vt


@dataclasses.dataclass(frozen=True, eq=False)
class CameraSet:
    """N cameras in some world frame, in OpenCV/COLMAP camera axes.

    `camera_to_world[i]` has the camera's right, down and forward (optical
    axis) directions in world coordinates as its columns. Rotations within
    ROTATION_TOLERANCE of orthonormal are snapped to the nearest rotation, so
    later geometry is exact; `source` labels error messages.
    """
    centres: np.ndarray
    camera_to_world: np.ndarray
    source: str = "cameras"

    def __post_init__(self):
        centres = np.array(self.centres, dtype=np.float64)
        rotations = np.array(self.camera_to_world, dtype=np.float64)
        if centres.ndim != 2 or centres.shape[1] != 3:
            raise InputError(f"{self.source}: camera centres must have shape (N, 3), "
                             f"got {centres.shape}")
        if rotations.shape != (len(centres), 3, 3):
            raise InputError(f"{self.source}: camera rotations must have shape "
                             f"({len(centres)}, 3, 3), got {rotations.shape}")
        for index in range(len(centres)):
            if not (np.isfinite(centres[index]).all()
                    and np.isfinite(rotations[index]).all()):
                raise InputError(f"{self.source}: camera {index} has non-finite "
                                 f"values: centre {centres[index].tolist()}, "
                                 f"rotation {rotations[index].tolist()}")
            error, det = rotation_error(rotations[index])
            if error > ROTATION_TOLERANCE or det < 0:
                raise InputError(
                    f"{self.source}: camera {index}: camera-to-world matrix "
                    f"{rotations[index].tolist()} is not a rotation "
                    f"(|R^T R - I| = {error:.3g}, det = {det:.3g})")
            rotations[index] = _nearest_rotation(rotations[index])
        object.__setattr__(self, "centres", _read_only(centres))
        object.__setattr__(self, "camera_to_world", _read_only(rotations))

    def __len__(self):
        return len(self.centres)

    @property
    def forward(self):
        """(N, 3) optical axes in world coordinates."""
        return self.camera_to_world[:, :, 2]

    @property
    def down(self):
        """(N, 3) image-down directions in world coordinates."""
        return self.camera_to_world[:, :, 1]


@dataclasses.dataclass(frozen=True, eq=False)
class GQNFrame:
    """The similarity x_gqn = scale * rotation @ x_world + translation."""
    scale: float
    rotation: np.ndarray
    translation: np.ndarray

    def __post_init__(self):
        object.__setattr__(self, "scale", float(self.scale))
        object.__setattr__(self, "rotation",
                           _read_only(np.array(self.rotation, np.float64).reshape(3, 3)))
        object.__setattr__(self, "translation",
                           _read_only(np.array(self.translation, np.float64).reshape(3)))

    def apply(self, points):
        """(P, 3) world points -> (P, 3) GQN points."""
        points = np.asarray(points, np.float64).reshape(-1, 3)
        return self.scale * points @ self.rotation.T + self.translation

    def to_json_dict(self):
        """Plain lists and floats for dataset_info.json, with the formula."""
        return {"maps": "x_gqn = scale * rotation @ x_world + translation",
                "scale": self.scale,
                "rotation": self.rotation.tolist(),
                "translation": self.translation.tolist()}


@dataclasses.dataclass(frozen=True, eq=False)
class NormalisedCameras:
    """Raw GQN poses (N, 5) float32 and the roll each photo must undo.

    `roll_degrees[i]` is the angle to pass to Pillow's `Image.rotate` (counter-
    clockwise in the displayed image) so photo i looks as if taken by the
    level camera of pose i (see `normalise_cameras`).
    """
    raw_poses: np.ndarray
    roll_degrees: np.ndarray
    frame: GQNFrame

    @property
    def max_abs_roll_degrees(self):
        return float(np.abs(self.roll_degrees).max()) if len(self.roll_degrees) else 0.0


def nearest_point_to_axes(centres, directions, source="cameras"):
    """The point with the least summed squared distance to the lines
    centres[i] + s * directions[i]; InputError if the lines are parallel."""
    centres = np.asarray(centres, np.float64)
    directions = np.asarray(directions, np.float64)
    directions = directions / np.linalg.norm(directions, axis=1, keepdims=True)
    projectors = np.eye(3) - directions[:, :, None] * directions[:, None, :]
    system = projectors.sum(axis=0)
    if np.linalg.eigvalsh(system)[0] < _PARALLEL_TOLERANCE * len(centres):
        raise InputError(f"{source}: the {len(centres)} cameras' optical axes are "
                         "(nearly) parallel, so they meet in no point to put at "
                         "the origin")
    return np.linalg.solve(system, np.einsum("nij,nj->i", projectors, centres))


def _world_up(cameras):
    """Unit up direction of the cameras' world (see normalise_cameras)."""
    mean_up = -cameras.down.mean(axis=0)
    if np.linalg.norm(mean_up) < 1e-6:
        raise InputError(f"{cameras.source}: the cameras' up vectors cancel out "
                         f"(mean {mean_up.tolist()}), so the world's up is unknown")
    right = cameras.camera_to_world[:, :, 0]
    values, vectors = np.linalg.eigh(right.T @ right / len(right))
    if values[1] < _LEVEL_SPAN_TOLERANCE:
        return mean_up / np.linalg.norm(mean_up)
    up = vectors[:, 0]
    return up if up @ mean_up > 0 else -up


def normalise_cameras(cameras, radius=DEFAULT_RADIUS):
    """Maps `cameras` (CameraSet) into the GQN frame and encodes their poses.

    The frame, the same for every source:
    - origin: the point nearest (least squares) to all optical axes, i.e. the
      object the cameras look at;
    - +z: the direction most nearly perpendicular to every camera's right
      axis (least squares). People hold a camera level, so its right axis is
      horizontal whatever its pitch; the mean up vector instead leans
      towards the object by each camera's pitch and, over a walk that covers
      one side more than the other, does not cancel out (17.5 degrees off on
      the real apple capture, with rolls of up to 29 degrees against 10 with
      this estimate). The normal of a fitted camera ring is wrong wherever
      the cameras do not move in a plane. When the right axes span less
      than a plane (all cameras facing one way), the mean up vector is used.
      The sign: the side the cameras' up vectors point to;
    - rotation about z: the first camera's centre lies at azimuth pi (on the
      -x half of the x-z plane), so a first camera looking at the object has
      yaw ~0. The first camera at the object's vertical (no azimuth) hands
      this role to the next camera that has one;
    - scale: the mean camera distance from the origin equals `radius`.

    Yaw and pitch follow each optical axis (gqn.poses.yaw_pitch_of). The pose
    has no roll, so each photo is to be rotated about its centre into the
    view of the level camera with the same optical axis, whose right axis is
    horizontal (forward x z, normalised); `roll_degrees` holds that rotation
    for Pillow's `Image.rotate`, in (-180, 180].
    """
    source = cameras.source
    if not (np.isfinite(radius) and radius > 0):
        raise InputError(f"{source}: radius must be a positive number, got {radius!r}")
    if len(cameras) < 2:
        raise InputError(f"{source}: {len(cameras)} camera(s); normalising needs "
                         "at least 2 (a scene needs a context and a query view)")
    centre = nearest_point_to_axes(cameras.centres, cameras.forward, source)
    up = _world_up(cameras)
    offsets = cameras.centres - centre
    distances = np.linalg.norm(offsets, axis=1)
    mean_distance = distances.mean()
    if mean_distance < 1e-12:
        raise InputError(f"{source}: every camera sits at the point its optical "
                         "axes meet; there is no scale to normalise")
    horizontal = offsets - np.outer(offsets @ up, up)
    lengths = np.linalg.norm(horizontal, axis=1)
    with_azimuth = np.flatnonzero(lengths > 1e-9 * mean_distance)
    if not len(with_azimuth):
        raise InputError(f"{source}: every camera stands on the vertical through "
                         "the object, so no azimuth fixes the rotation about up")
    x_axis = -horizontal[with_azimuth[0]] / lengths[with_azimuth[0]]
    rotation = np.stack([x_axis, np.cross(up, x_axis), up])
    scale = radius / mean_distance
    frame = GQNFrame(scale=scale, rotation=rotation,
                     translation=-scale * rotation @ centre)

    axes = np.einsum("ij,njk->nik", rotation, cameras.camera_to_world)
    right, down, forward = axes[:, :, 0], axes[:, :, 1], axes[:, :, 2]
    yaw, pitch = yaw_pitch_of(forward)
    # The level right axis from the heading, not from forward x z, so that a
    # camera looking straight up or down levels to the yaw that was written.
    level_right = np.cross(viewing_direction(yaw, np.zeros_like(yaw)), _UP)
    roll = np.degrees(np.arctan2(np.einsum("ni,ni->n", level_right, down),
                                 np.einsum("ni,ni->n", level_right, right)))
    roll = np.where(roll <= -180.0, roll + 360.0, roll)
    positions = frame.apply(cameras.centres)
    raw = np.concatenate([positions, yaw[:, None], pitch[:, None]], axis=1)
    return NormalisedCameras(raw_poses=_read_only(raw.astype(np.float32)),
                             roll_degrees=_read_only(roll), frame=frame)


def similarity_fit(source_points, target_points):
    """(scale, rotation, translation) minimising the summed squared distance
    of scale * rotation @ source + translation to target (Umeyama 1991).

    The rotation is proper (det +1): a mirrored match is not a fit.
    """
    source = np.asarray(source_points, np.float64).reshape(-1, 3)
    target = np.asarray(target_points, np.float64).reshape(-1, 3)
    if len(source) != len(target) or len(source) < 3:
        raise ValueError(f"similarity_fit needs two equal sets of >= 3 points, "
                         f"got {len(source)} and {len(target)}")
    source_mean, target_mean = source.mean(axis=0), target.mean(axis=0)
    source_centred, target_centred = source - source_mean, target - target_mean
    covariance = target_centred.T @ source_centred / len(source)
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])
    rotation = u @ sign @ vt
    variance = (source_centred ** 2).sum() / len(source)
    if variance == 0:
        raise ValueError("similarity_fit: the source points all coincide")
    scale = float(np.trace(np.diag(singular) @ sign) / variance)
    translation = target_mean - scale * rotation @ source_mean
    return scale, rotation, translation


def similarity_residual(source_points, target_points):
    """(P,) distances from each target point to its source point after the
    best similarity_fit, in target units."""
    scale, rotation, translation = similarity_fit(source_points, target_points)
    source = np.asarray(source_points, np.float64).reshape(-1, 3)
    target = np.asarray(target_points, np.float64).reshape(-1, 3)
    return np.linalg.norm(scale * source @ rotation.T + translation - target, axis=1)
