"""What a converted scene's records say about its cameras beyond their poses:
each frame's field of view and the scene's depth range, with where each
came from (for the records, dataset_info.json's `scene_cameras`, the
summary and the preview).

Field of view, per view, from the first source that states it: the user's
--focal_length_35mm, the camera of the pose file or of structure from
motion, the photo's EXIF, else the labelled assumption of a phone's main
camera (camera_poses.intrinsics); then across the square frame as cropped
(photo_preprocess.cropped_field_of_view). Depth range
(data_provider.scene_geometry): the depths at which the frames see the pose
source's 3-D points where it has some (a COLMAP model, SfM), else the
camera distances.
"""
import collections
import dataclasses
import math
from typing import Tuple

import numpy as np

from data_provider import scene_geometry
from data_provider.camera_poses import intrinsics
from data_provider.photo_preprocess import cropped_field_of_view
from gqn.poses import camera_axes_np, encode_poses_np

# Angles that differ by less than this (degrees) are one angle for the scene.
_SAME_ANGLE = 1e-3
DEPTH_FROM_CAMERAS = "camera distances (no 3-D points)"


@dataclasses.dataclass(frozen=True)
class SceneCameras:
    """One scene's field of view per view (degrees, the plan's view order)
    and depth range (near, far) in GQN units, with their sources."""
    field_of_view_degrees: Tuple[float, ...]
    field_of_view_source: str
    depth_range: Tuple[float, float]
    depth_range_source: str

    @property
    def single_angle(self):
        """The scene's one angle (degrees) when all views share it, else None."""
        angles = self.field_of_view_degrees
        return angles[0] if max(angles) - min(angles) < _SAME_ANGLE else None

    def record_field_of_view(self, order):
        """Radians for record_writer.serialize_scene: one angle, or one per
        view in `order` (indices into the plan's views)."""
        if self.single_angle is not None:
            return [math.radians(self.single_angle)]
        return [math.radians(self.field_of_view_degrees[i]) for i in order]

    def json_dict(self):
        angle = self.single_angle
        return {"field_of_view_degrees": (round(angle, 4) if angle is not None else
                                          [round(a, 4) for a in self.field_of_view_degrees]),
                "field_of_view_source": self.field_of_view_source,
                "depth_range": [round(value, 4) for value in self.depth_range],
                "depth_range_source": self.depth_range_source}

    def angle_text(self):
        """'28.4 deg' or '28.1-28.9 deg' (the range over the views)."""
        angles = self.field_of_view_degrees
        if self.single_angle is not None:
            return f"{angles[0]:.1f} deg"
        return f"{min(angles):.1f}-{max(angles):.1f} deg"

    def caption(self):
        near, far = self.depth_range
        return (f"field of view {self.angle_text()} ({self.field_of_view_source}); "
                f"depth {near:.2f}-{far:.2f} ({self.depth_range_source})")


def view_focal(pose_focal, photo, focal_35mm=None):
    """The Focal one converted photo gets (see the module docstring)."""
    return (intrinsics.known_focal(photo.photo_size, photo.exif_focal, pose_focal,
                                   focal_35mm)
            or intrinsics.assumed(photo.photo_size))


def describe_scene(scene, photos, image_size, focal_35mm=None):
    """SceneCameras of a ScenePlan and its ConvertedPhotos (in view order)."""
    pose_focals = scene.focals or [None] * len(photos)
    focals = [view_focal(pose_focal, photo, focal_35mm)
              for pose_focal, photo in zip(pose_focals, photos)]
    angles = tuple(cropped_field_of_view(focal.short_side_degrees(photo.photo_size),
                                         image_size)
                   for focal, photo in zip(focals, photos))
    near_far, depth_source = depth_range(scene.poses, scene.points, angles)
    return SceneCameras(angles, _sources_text([focal.source for focal in focals]),
                        near_far, depth_source)


def _sources_text(sources):
    """The one source, or each with its number of views."""
    counts = collections.Counter(sources)
    if len(counts) == 1:
        return sources[0]
    return "; ".join(f"{count} views: {source}" for source, count in counts.most_common())


def depth_range(raw_poses, points, angles_degrees):
    """((near, far), source) of a scene's cameras (raw GQN poses) and 3-D
    points (GQN frame, or None): the depths of the points inside each square
    frame of `angles_degrees`, else the camera distances."""
    raw_poses = np.asarray(raw_poses, np.float64)
    if points is not None and len(points):
        forward, right, up = camera_axes_np(encode_poses_np(raw_poses))
        depths = scene_geometry.point_depths(points, raw_poses[:, :3], forward)
        offsets = np.asarray(points, np.float64)[None] - raw_poses[:, None, :3]
        reach = np.tan(np.radians(np.asarray(angles_degrees)) / 2)[:, None] * depths
        seen = ((depths > 0)
                & (np.abs(np.einsum("cpk,ck->cp", offsets, right)) <= reach)
                & (np.abs(np.einsum("cpk,ck->cp", offsets, up)) <= reach))
        if seen.any():
            seen_points = int(seen.any(axis=0).sum())
            return (scene_geometry.depth_range_from_depths(
                        depths[seen], scene_geometry.SFM_POINT_PERCENTILES),
                    f"depths of the {seen_points} 3-D points the frames see ("
                    + scene_geometry.depth_range_rule(scene_geometry.SFM_POINT_PERCENTILES)
                    + ")")
    return scene_geometry.depth_range_from_cameras(raw_poses[:, :3]), DEPTH_FROM_CAMERAS


def dataset_field_of_view(scene_cameras):
    """(degrees, source) for DatasetInfo: the median of every view's angle,
    for a reader that meets a record without its own (these records all
    carry theirs)."""
    angles = [angle for cameras in scene_cameras.values()
              for angle in cameras.field_of_view_degrees]
    return (round(float(np.median(angles)), 4),
            "the median of the frames' own angles (every record carries its own)")


def summary_lines(scene_cameras, limit=8):
    """Summary lines: each scene's cameras, or with more than `limit`
    scenes, how many scenes got each field-of-view and depth source."""
    if len(scene_cameras) <= limit:
        return [f"    {name}: {cameras.caption()}" for name, cameras in scene_cameras.items()]
    lines = []
    for what, key in (("field of view", lambda c: c.field_of_view_source),
                      ("depth range", lambda c: c.depth_range_source)):
        groups = collections.defaultdict(list)
        for cameras in scene_cameras.values():
            groups[key(cameras)].append(cameras)
        for source, members in sorted(groups.items(), key=lambda item: -len(item[1])):
            if what == "field of view":
                angles = [a for c in members for a in c.field_of_view_degrees]
                span = f"{min(angles):.1f}-{max(angles):.1f} deg"
            else:
                span = (f"{min(c.depth_range[0] for c in members):.2f}-"
                        f"{max(c.depth_range[1] for c in members):.2f}")
            lines.append(f"    {what} of {len(members)} scene(s): {span}, from {source}")
    return lines

