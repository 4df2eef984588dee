"""Procedural posed scenes written in DeepMind's gqn-datasets record layout.

DeepMind's sets are terabytes; these scenes let the reader, training and demo
run on real records anywhere, in seconds. Two presets:

- `rooms`, in the spirit of rooms_ring_camera: a square room with coloured
  walls and floor, 1-3 spheres, boxes or cylinders, a point light with Lambert
  shading and shadows, cameras on a ring looking inwards (random yaw, small
  random pitch).
- `still_life`, mimicking the fruit photos: fruit-like shapes on a table-top in
  a corner between two walls, shot from the fixed 12- and 8-view pose tables
  (the first 129/235 of each split's scenes use 12 views, like the real set).
  It can also write a zip of `SceneN/` phone-sized photos, the input of the
  photo converter.

World frame: z up; a camera at (x, y, z) with DeepMind's yaw and pitch (it
looks along gqn.poses.viewing_direction: yaw turns clockwise seen from +z,
pitch is the elevation), the same raw pose the records store. Rendering is a numpy ray
caster over every pixel of every view of a scene at once. Every scene draws
from its own generator keyed by (seed, split, index), so the output is the
same however many worker processes render it.
"""
if __name__ == "__main__":  # the command: set TensorFlow up before it loads
    from gqn import startup
    startup.start_command()

import argparse
import colorsys
import functools
import math
import multiprocessing
import os
import zipfile

import numpy as np
from PIL import Image

from data_provider import record_writer, scene_geometry
from data_provider.fruit_poses import FRUIT_LAYOUTS
from gqn.poses import camera_axes_np, encode_poses_np, image_plane_offsets

PRESETS = ("rooms", "still_life")
_EPS = 1e-4
# Every generated camera's field of view across its (square) frames; the
# records state it.
FIELD_OF_VIEW_DEGREES = 45.0
# What dataset_info.json says of the cameras; each record holds its own
# angle and its scene's depth range.
GENERATED_CAMERAS = dict(
    field_of_view_degrees=FIELD_OF_VIEW_DEGREES,
    field_of_view_source="the generator's camera",
    depth_range_source="each scene's rendered surface depths ("
                       + scene_geometry.depth_range_rule(scene_geometry.SURFACE_PERCENTILES)
                       + "), in its record")
_TWELVE_VIEW_FRACTION = 129 / 235  # scenes 1-129 of the 235 fruit scenes


def _rotate_z(vectors, angle):
    """Rotates (..., 3) vectors by `angle` radians about the z axis."""
    c, s = math.cos(angle), math.sin(angle)
    x, y, z = vectors[..., 0], vectors[..., 1], vectors[..., 2]
    return np.stack([c * x - s * y, s * x + c * y, z], axis=-1)


# numpy reduces over a length-3 last axis very slowly; these work on the
# components instead (tens of times faster on ray batches).

def _dot(a, b):
    return a[..., 0] * b[..., 0] + a[..., 1] * b[..., 1] + a[..., 2] * b[..., 2]


def _normalize(v):
    return v / np.sqrt(_dot(v, v))[..., None]


def _min3(v):
    return np.minimum(np.minimum(v[..., 0], v[..., 1]), v[..., 2])


def _max3(v):
    return np.maximum(np.maximum(v[..., 0], v[..., 1]), v[..., 2])


def _axis_normals(scores, signs):
    """Per row of (P, K) `scores`, the column of the largest and its unit
    normal: column k stands for axis k % 3 with sign `signs[k]`."""
    best = scores[:, 0].copy()
    winner = np.zeros(len(scores), np.int64)
    for column in range(1, scores.shape[1]):
        wins = scores[:, column] > best
        best[wins], winner[wins] = scores[wins, column], column
    normals = np.zeros((len(scores), 3), np.float32)
    normals[np.arange(len(scores)), winner % 3] = np.take(signs, winner)
    return normals, winner


# Primitives. Each answers two questions for a batch of rays or points:
# `distance(origins, dirs)` (inf where missed; dirs unit length) and
# `surface(points)` -> (unit normals, albedo).

class Ellipsoid:
    """Spheres and fruit: an ellipsoid with `radii` along its axes, turned by
    `yaw` about z."""

    def __init__(self, center, radii, color, yaw=0.0):
        self.center = np.asarray(center, np.float32)
        self.radii = np.asarray(radii, np.float32)
        self.color = np.asarray(color, np.float32)
        self.yaw = yaw

    def distance(self, origins, dirs):
        o = _rotate_z(origins - self.center, -self.yaw) / self.radii
        d = _rotate_z(dirs, -self.yaw) / self.radii
        a, b, c = _dot(d, d), _dot(o, d), _dot(o, o) - 1
        disc = b * b - a * c
        t = (-b - np.sqrt(np.maximum(disc, 0))) / a
        return np.where((disc > 0) & (t > _EPS), t, np.inf)

    def surface(self, points):
        local = _rotate_z(points - self.center, -self.yaw) / self.radii ** 2
        return _normalize(_rotate_z(local, self.yaw)), self.color


class Box:
    """A box with half-extents `half`, turned by `yaw` about z."""

    def __init__(self, center, half, color, yaw=0.0):
        self.center = np.asarray(center, np.float32)
        self.half = np.asarray(half, np.float32)
        self.color = np.asarray(color, np.float32)
        self.yaw = yaw

    def distance(self, origins, dirs):
        o = _rotate_z(origins - self.center, -self.yaw)
        d = _rotate_z(dirs, -self.yaw)
        d = np.where(np.abs(d) < 1e-9, 1e-9, d)
        near, far = (-self.half - o) / d, (self.half - o) / d
        t_in = _max3(np.minimum(near, far))
        t_out = _min3(np.maximum(near, far))
        return np.where((t_out >= t_in) & (t_in > _EPS), t_in, np.inf)

    def surface(self, points):
        local = _rotate_z(points - self.center, -self.yaw) / self.half
        faces = np.concatenate([local, -local], axis=-1)  # +x +y +z -x -y -z
        normals, _ = _axis_normals(faces, [1, 1, 1, -1, -1, -1])
        return _rotate_z(normals, self.yaw), self.color


class Cylinder:
    """An upright cylinder standing on z = `base`."""

    def __init__(self, center_xy, base, radius, height, color):
        self.center = np.asarray([*center_xy, 0.0], np.float32)
        self.base, self.top = base, base + height
        self.radius = radius
        self.color = np.asarray(color, np.float32)

    def distance(self, origins, dirs):
        o = origins - self.center
        a = dirs[..., 0] ** 2 + dirs[..., 1] ** 2
        b = o[..., 0] * dirs[..., 0] + o[..., 1] * dirs[..., 1]
        c = o[..., 0] ** 2 + o[..., 1] ** 2 - self.radius ** 2
        disc = b * b - a * c
        t_side = (-b - np.sqrt(np.maximum(disc, 0))) / np.maximum(a, 1e-12)
        z_side = o[..., 2] + t_side * dirs[..., 2]
        side = (disc > 0) & (t_side > _EPS) & (z_side >= self.base) & (z_side <= self.top)
        dz = np.where(np.abs(dirs[..., 2]) < 1e-9, 1e-9, dirs[..., 2])
        t_cap = (self.top - o[..., 2]) / dz
        cap_x = o[..., 0] + t_cap * dirs[..., 0]
        cap_y = o[..., 1] + t_cap * dirs[..., 1]
        cap = (t_cap > _EPS) & (cap_x ** 2 + cap_y ** 2 <= self.radius ** 2)
        return np.minimum(np.where(side, t_side, np.inf), np.where(cap, t_cap, np.inf))

    def surface(self, points):
        radial = points - self.center
        radial[..., 2] = 0
        radial /= np.maximum(np.sqrt(_dot(radial, radial)), 1e-9)[..., None]
        on_cap = (points[..., 2] > self.top - 1e-3)[..., None]
        return np.where(on_cap, np.float32([0, 0, 1]), radial), self.color


class Room:
    """The inside of an axis-aligned box; `face_colors` (6, 3) are ordered
    -x, +x, -y, +y, floor, ceiling."""

    def __init__(self, low, high, face_colors):
        self.low = np.asarray(low, np.float32)
        self.high = np.asarray(high, np.float32)
        self.face_colors = np.asarray(face_colors, np.float32)

    def distance(self, origins, dirs):
        bound = np.where(dirs > 0, self.high, self.low)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (bound - origins) / dirs
        return _min3(np.where(np.isfinite(t) & (t > 0), t, np.inf))

    def surface(self, points):
        # The nearest wall; columns: -x, -y, -z walls then +x, +y, +z walls,
        # whose inward normals point +, +, +, -, -, -.
        closeness = -np.abs(np.concatenate([points - self.low, points - self.high], -1))
        normals, face = _axis_normals(closeness, [1, 1, 1, -1, -1, -1])
        return normals, self.face_colors[2 * (face % 3) + face // 3]


class Scene:
    """What a renderer needs: primitives, a point light, ambient level and
    the camera's vertical field of view (radians). `subjects` are the objects
    an object mask covers (the fruit of a still life, not its table);
    default: all of them."""

    def __init__(self, room, objects, light, ambient, fov_y, subjects=None):
        self.room = room
        self.objects = objects
        self.light = np.asarray(light, np.float32)
        self.ambient = ambient
        self.fov_y = fov_y
        self.subjects = objects if subjects is None else subjects


def camera_rays(raw_poses, width, height, fov_y):
    """Unit ray directions (V, H, W, 3) through pixel centres of each pose."""
    forward, right, up = (axis[:, None, None, :] for axis in
                          camera_axes_np(encode_poses_np(raw_poses)))
    half_height = math.tan(fov_y / 2)
    across = image_plane_offsets(width, half_height * width / height)
    down = -image_plane_offsets(height, half_height)
    dirs = (forward + across[None, None, :, None] * right
            + down[None, :, None, None] * up)
    return _normalize(dirs).astype(np.float32)


_TEXTURE_CONTRAST = 0.35
# Lattice cells per unit: blotches from 0.1 units (a fruit's radius) down to
# a few pixels of a 640x480 photo, each octave 0.85 as strong as the last;
# smoother noise (0.7 per octave from 5 cells) registered 3-4 of 12 views.
_TEXTURE_FREQUENCIES = (10.0, 21.0, 43.0, 89.0, 181.0)
_TEXTURE_GAIN = 0.85


def _value_noise(points, frequency):
    """Smooth noise in [0, 1] at (N, 3) `points`: random values on an integer
    lattice of `frequency` cells per unit, hashed from the cell corners and
    interpolated with a smoothstep, so it is a fixed function of space."""
    scaled = points * np.float32(frequency)
    cell = np.floor(scaled)
    fraction = scaled - cell
    fraction = fraction * fraction * (3 - 2 * fraction)
    cell = cell.astype(np.int64).astype(np.uint32)
    noise = np.zeros(len(points), np.float32)
    for corner in range(8):
        offset = [(corner >> axis) & 1 for axis in range(3)]
        key = ((cell[:, 0] + np.uint32(offset[0])) * np.uint32(0x8DA6B343)
               ^ (cell[:, 1] + np.uint32(offset[1])) * np.uint32(0xD8163841)
               ^ (cell[:, 2] + np.uint32(offset[2])) * np.uint32(0xCB1AB31F))
        key ^= key >> np.uint32(15)
        key *= np.uint32(0x2C1B3C6D)
        key ^= key >> np.uint32(12)
        weight = np.ones(len(points), np.float32)
        for axis in range(3):
            weight *= fraction[:, axis] if offset[axis] else 1 - fraction[:, axis]
        noise += weight * (key >> np.uint32(8)).astype(np.float32) / np.float32(1 << 24)
    return noise


def _texture(points):
    """Albedo factors (N,) in 1 +- _TEXTURE_CONTRAST: multi-octave value noise
    of the surface point, so SIFT finds features that stay put on the surfaces
    from every view (flat colours give structure-from-motion nothing)."""
    noise = np.zeros(len(points), np.float32)
    total = 0.0
    for octave, frequency in enumerate(_TEXTURE_FREQUENCIES):
        amplitude = _TEXTURE_GAIN ** octave
        noise += amplitude * _value_noise(points, frequency)
        total += amplitude
    # Sums of octaves crowd around 0.5; stretch them back to about [0, 1].
    contrast = np.clip((noise / total - 0.5) * 2.5, -1, 1)
    return 1 + _TEXTURE_CONTRAST * contrast


def render(scene, raw_poses, width, height, supersample=1, textured=False,
           with_masks=False):
    """uint8 (V, height, width, 3) views of `scene` from raw (V, 5) poses.

    Renders `supersample`^2 rays per pixel and averages them (anti-aliasing).
    `textured` modulates every surface's albedo with procedural noise (for
    structure-from-motion tests); off, the colours are flat. `with_masks`
    also returns uint8 (V, height, width) object masks: 255 where a pixel
    shows one of scene.subjects (the fraction of its rays, when
    supersampled), 0 elsewhere.
    """
    raw_poses = np.asarray(raw_poses, np.float32)
    origins, dirs, shape = _pixel_rays(scene, raw_poses, width * supersample,
                                       height * supersample)
    primitives = [scene.room] + scene.objects
    nearest, owner = _first_hits(primitives, origins, dirs)
    points = origins + nearest[:, None] * dirs
    normals = np.empty_like(points)
    albedo = np.empty_like(points)
    for index, primitive in enumerate(primitives):
        mask = owner == index
        normals[mask], albedo[mask] = primitive.surface(points[mask])
    if textured:
        albedo *= _texture(points)[:, None]
    to_light = scene.light - points
    light_distance = np.sqrt(_dot(to_light, to_light))
    to_light /= light_distance[:, None]
    lambert = np.clip(_dot(normals, to_light), 0, None)
    shadow_origins = points + 1e-3 * normals
    for primitive in scene.objects:
        blocked = primitive.distance(shadow_origins, to_light) < light_distance
        lambert = np.where(blocked, 0, lambert)
    shade = scene.ambient + (1 - scene.ambient) * lambert
    # Shading is applied in linear light; colours are specified in sRGB.
    rgb = albedo * shade[:, None] ** (1 / 2.2)
    views = _to_uint8(rgb, shape[0], height, width, supersample)
    if not with_masks:
        return views
    subjects = [1 + scene.objects.index(subject) for subject in scene.subjects]
    covered = np.isin(owner, subjects).astype(np.float32)[:, None]
    return views, _to_uint8(covered, shape[0], height, width, supersample)[..., 0]


def _pixel_rays(scene, raw_poses, width, height):
    """(origins, unit directions) of every pixel's ray of every view, both
    (V * height * width, 3), and the (V, height, width, 3) shape they fill."""
    dirs = camera_rays(raw_poses, width, height, scene.fov_y)
    origins = np.repeat(raw_poses[:, :3], width * height, axis=0)
    return origins, dirs.reshape(-1, 3), dirs.shape


def _first_hits(primitives, origins, dirs):
    """Distance along each ray to the first surface, and which primitive."""
    nearest = np.full(len(dirs), np.inf, np.float32)
    owner = np.zeros(len(dirs), np.int64)
    for index, primitive in enumerate(primitives):
        t = primitive.distance(origins, dirs)
        owner = np.where(t < nearest, index, owner)
        nearest = np.minimum(nearest, t)
    return nearest, owner


# Rays per side of each view that measure where a scene's surfaces lie.
_DEPTH_PROBE_SIZE = 16


def surface_depth_range(scene, raw_poses):
    """(near, far) of the depths (along each optical axis) at which the
    cameras see the scene's surfaces (scene_geometry's rule for surface
    points), from a coarse grid of rays per view."""
    raw_poses = np.asarray(raw_poses, np.float32)
    origins, dirs, _ = _pixel_rays(scene, raw_poses, _DEPTH_PROBE_SIZE,
                                   _DEPTH_PROBE_SIZE)
    distances, _ = _first_hits([scene.room] + scene.objects, origins, dirs)
    forward = camera_axes_np(encode_poses_np(raw_poses))[0]
    along_axis = np.einsum("nk,nk->n", dirs,
                           np.repeat(forward, _DEPTH_PROBE_SIZE ** 2, axis=0))
    return scene_geometry.depth_range_from_depths(distances * along_axis,
                                                  scene_geometry.SURFACE_PERCENTILES)


def _to_uint8(values, views, height, width, supersample):
    """Per-ray values in [0, 1] -> uint8 (views, height, width, channels),
    averaging each pixel's supersample^2 rays."""
    values = values.reshape(views, height, supersample, width, supersample, -1)
    return np.clip(values.mean((2, 4)) * 255 + 0.5, 0, 255).astype(np.uint8)


# Scene sampling.

def _colour(rng, hue=(0.0, 1.0), saturation=(0.5, 0.9), value=(0.55, 0.95)):
    return colorsys.hsv_to_rgb(rng.uniform(*hue) % 1, rng.uniform(*saturation),
                               rng.uniform(*value))


def _place(rng, footprints, area_radius, gap=0.03, tries=200):
    """Non-overlapping (x, y) centres inside a disc for circular footprints;
    objects that find no room are dropped (the first always fits)."""
    placed = []
    for radius in footprints:
        for _ in range(tries):
            angle = rng.uniform(0, 2 * np.pi)
            distance = np.sqrt(rng.uniform()) * max(area_radius - radius, 0)
            xy = np.array([np.cos(angle), np.sin(angle)]) * distance
            if all(np.linalg.norm(xy - other) > radius + other_radius + gap
                   for other, other_radius in placed):
                placed.append((xy, radius))
                break
    return [xy for xy, _ in placed]


def _room_object(rng, kind, size, xy):
    colour = _colour(rng, saturation=(0.6, 1.0))
    if kind == "sphere":
        return Ellipsoid([*xy, size], [size] * 3, colour)
    if kind == "box":
        half = [size, size * rng.uniform(0.6, 1.0), size * rng.uniform(0.7, 1.3)]
        return Box([*xy, half[2]], half, colour, yaw=rng.uniform(0, np.pi))
    return Cylinder(xy, 0.0, size * rng.uniform(0.6, 0.9),
                    2 * size * rng.uniform(0.8, 1.5), colour)


def _footprint(kind, size):
    """Radius of the circle an object of `size` stands in."""
    return size * math.sqrt(2) if kind == "box" else size


def rooms_scene(rng):
    """A square room with 1-3 random objects, lit from near the ceiling."""
    wall, floor = _colour(rng), _colour(rng, value=(0.4, 0.8))
    room = Room([-1, -1, 0], [1, 1, 1.5],
                [wall, wall, wall, wall, floor, (0.9, 0.9, 0.9)])
    count = rng.integers(1, 4)
    kinds = rng.choice(["sphere", "box", "cylinder"], size=count)
    sizes = rng.uniform(0.1, 0.2, size=count)
    footprints = [_footprint(k, s) for k, s in zip(kinds, sizes)]
    places = _place(rng, footprints, area_radius=0.5)
    objects = [_room_object(rng, k, s, xy) for k, s, xy in zip(kinds, sizes, places)]
    light = [rng.uniform(-0.5, 0.5), rng.uniform(-0.5, 0.5), 1.3]
    return Scene(room, objects, light, ambient=0.3,
                 fov_y=math.radians(FIELD_OF_VIEW_DEGREES))


def ring_poses(rng, num_views, radius=0.9, height=0.4):
    """Cameras on a ring around the centre looking at it: random yaw in
    [0, 2 pi), small random pitch (downwards)."""
    yaw = rng.uniform(0, 2 * np.pi, size=num_views)
    pitch = rng.uniform(-0.35, 0.0, size=num_views)
    z = height + rng.uniform(-0.05, 0.05, size=num_views)
    return np.stack([-radius * np.cos(yaw), radius * np.sin(yaw), z, yaw, pitch],
                    -1).astype(np.float32)


_FRUITS = {  # name: (radii relative to size, hue range, saturation range)
    "apple": ((1.0, 1.0, 0.9), (-0.03, 0.04), (0.7, 0.95)),
    "green apple": ((1.0, 1.0, 0.9), (0.2, 0.3), (0.6, 0.9)),
    "orange": ((1.05, 1.05, 1.0), (0.06, 0.09), (0.85, 1.0)),
    "lemon": ((1.4, 0.95, 0.95), (0.13, 0.16), (0.75, 0.95)),
    "plum": ((0.8, 0.8, 0.8), (0.75, 0.85), (0.5, 0.8)),
    "banana": ((2.6, 0.6, 0.55), (0.12, 0.15), (0.7, 0.9)),
}
_TABLE_TOP = -0.25


def still_life_scene(rng):
    """2-4 fruit-like shapes on a table-top in a corner between two walls."""
    wall = _colour(rng, saturation=(0.1, 0.35), value=(0.75, 0.95))
    far_wall = _colour(rng, saturation=(0.0, 0.15), value=(0.6, 0.85))
    floor = _colour(rng, hue=(0.05, 0.1), saturation=(0.3, 0.6), value=(0.3, 0.5))
    room = Room([-3.5, -3.5, -1.0], [1.9, 1.9, 3.0],
                [far_wall, wall, far_wall, wall, floor, (0.95, 0.95, 0.95)])
    table_colour = (_colour(rng, hue=(0.06, 0.1), saturation=(0.35, 0.6),
                            value=(0.5, 0.8)) if rng.uniform() < 0.7
                    else _colour(rng, saturation=(0.0, 0.08), value=(0.85, 0.98)))
    table = Box([0, 0, _TABLE_TOP - 0.03], [1.6, 1.6, 0.03], table_colour)
    count = rng.integers(2, 5)
    kinds = rng.choice(sorted(_FRUITS), size=count)
    sizes = rng.uniform(0.1, 0.16, size=count)
    footprints = [size * max(_FRUITS[kind][0]) for kind, size in zip(kinds, sizes)]
    places = _place(rng, footprints, area_radius=0.45)
    fruit = []
    for kind, size, xy in zip(kinds, sizes, places):
        shape, hue, saturation = _FRUITS[kind]
        radii = np.array(shape) * size
        fruit.append(Ellipsoid([*xy, _TABLE_TOP + radii[2]], radii,
                               _colour(rng, hue, saturation, (0.6, 0.95)),
                               yaw=rng.uniform(0, np.pi)))
    light = [rng.uniform(-1, 1), rng.uniform(-1, 1), 1.2]
    return Scene(room, [table] + fruit, light, ambient=0.35,
                 fov_y=math.radians(FIELD_OF_VIEW_DEGREES), subjects=fruit)


def photographed_from_above(poses, height=0.7, aim_z=-0.2):
    """Fruit-table poses (positions and yaws) raised to `height` and pitched
    down at the fruit (aim_z: among them, a little above the table top at
    -0.25), as someone photographing a still life holds the camera; at the
    table's own z = 0 and pitch 0 the cameras see the table edge on, and
    structure from motion registers 4 of 12 views."""
    poses = np.array(poses, np.float64)
    poses[:, 2] = height
    poses[:, 4] = -np.arctan2(height - aim_z, np.hypot(poses[:, 0], poses[:, 1]))
    return poses


def still_life_layout(index, num_scenes):
    """Views of scene `index` of a split: the first 129/235 use 12."""
    return 12 if index < round(num_scenes * _TWELVE_VIEW_FRACTION) else 8


def make_scene(preset, seed, split, index, num_scenes, num_views):
    """(scene, raw poses (V, 5)) for one scene, fixed by its seed and place."""
    rng = np.random.default_rng([seed, ("train", "test").index(split), index])
    if preset == "rooms":
        return rooms_scene(rng), ring_poses(rng, num_views)
    poses = FRUIT_LAYOUTS[still_life_layout(index, num_scenes)]
    return still_life_scene(rng), poses


# Writing.

def _render_scene(job, preset, seed, num_views, image_size, supersample,
                  photo_size, textured):
    """One scene as (serialized record, photo JPEGs or None); runs in a
    worker process. Test records carry each view's object mask."""
    split, index, num_scenes = job
    scene, poses = make_scene(preset, seed, split, index, num_scenes, num_views)
    frames, masks = render(scene, poses, image_size, image_size, supersample,
                           textured, with_masks=True)
    record = record_writer.serialize_scene(
        [record_writer.encode_jpeg(frame) for frame in frames], poses,
        masks=[record_writer.encode_png(mask) for mask in masks]
        if split == "test" else None,
        field_of_view=scene.fov_y, depth_range=surface_depth_range(scene, poses))
    photos = None
    if photo_size:
        exif = photo_exif(photo_size, scene.fov_y)
        photos = [record_writer.encode_jpeg(view, quality=90, exif=exif)
                  for view in render(scene, poses, *photo_size, textured=textured)]
    return record, photos


# The photos state their camera in EXIF as a phone does: a lens of this
# focal length (mm) on a sensor whose pixel pitch (FocalPlaneXResolution, in
# pixels per centimetre) gives the generator's field of view.
PHOTO_FOCAL_LENGTH_MM = 4.0
_EXIF_IFD, _FOCAL_LENGTH = 0x8769, 0x920A
_FOCAL_PLANE_X_RESOLUTION, _FOCAL_PLANE_RESOLUTION_UNIT = 0xA20E, 0xA210
_CENTIMETRE = 3


def photo_exif(photo_size, fov_y):
    """EXIF of a (width, height) photo whose camera sees `fov_y` (radians)
    across its height."""
    focal_pixels = photo_size[1] / 2 / math.tan(fov_y / 2)
    exif = Image.Exif()
    tags = exif.get_ifd(_EXIF_IFD)
    tags[_FOCAL_LENGTH] = PHOTO_FOCAL_LENGTH_MM
    tags[_FOCAL_PLANE_X_RESOLUTION] = focal_pixels / PHOTO_FOCAL_LENGTH_MM * 10
    tags[_FOCAL_PLANE_RESOLUTION_UNIT] = _CENTIMETRE
    return exif


def generate_dataset(output_dir, name, preset="rooms", num_train_scenes=100,
                     num_test_scenes=20, image_size=64, num_views=None, seed=0,
                     scenes_per_file=50, overwrite=False, zip_path=None,
                     photo_size=(320, 240), supersample=1, num_workers=None,
                     textured=False):
    """Renders a dataset to `<output_dir>/<name>/` in DeepMind's layout.

    `num_views` applies to 'rooms' (default 10, like rooms_ring_camera);
    'still_life' scenes take their views from the fruit pose tables. With
    `zip_path`, 'still_life' also writes the same scenes as a zip of
    `SceneN/` photos of `photo_size` (width, height), train scenes first.
    `supersample` > 1 anti-aliases the records' frames at that factor squared
    in time. Scenes render in `num_workers` processes (default: one per core); the
    output does not depend on it. `textured` adds procedural surface texture
    (see render). Returns the DatasetInfo written.
    """
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {PRESETS}, got {preset!r}")
    if preset == "still_life" and num_views is not None:
        raise ValueError("still_life scenes use the fruit pose tables (12 or 8 "
                         "views); num_views applies to the rooms preset only")
    if zip_path is not None and preset != "still_life":
        raise ValueError("a photo zip is only written for the still_life preset")
    if num_train_scenes < 1 or num_test_scenes < 1:
        raise ValueError("need at least one train and one test scene")
    num_views = 10 if num_views is None else num_views
    if preset == "rooms" and num_views < 2:
        raise ValueError(f"num_views={num_views}: a scene needs at least 2 views")
    render_job = functools.partial(
        _render_scene, preset=preset, seed=seed, num_views=num_views,
        image_size=image_size, supersample=supersample,
        photo_size=photo_size if zip_path else None, textured=textured)
    photos = _PhotoZip(zip_path) if zip_path else None
    num_workers = num_workers or os.cpu_count() or 1
    # fork: workers inherit the imported modules instead of re-importing them.
    with record_writer.DatasetWriter(output_dir, name, overwrite) as writer, \
            multiprocessing.get_context("fork").Pool(num_workers) as pool:
        for split, num_scenes in (("train", num_train_scenes),
                                  ("test", num_test_scenes)):
            jobs = [(split, index, num_scenes) for index in range(num_scenes)]
            records = []
            for record, photo_jpegs in pool.imap(render_job, jobs, chunksize=4):
                records.append(record)
                if photos:
                    photos.add_scene(photo_jpegs)
            writer.write_split(split, records,
                               num_files=math.ceil(num_scenes / scenes_per_file))
        cameras = dict(object_masks=True, **GENERATED_CAMERAS)
        if preset == "rooms":
            info = writer.finish(image_size, num_views, **cameras)
        else:
            info = writer.finish(image_size, sequence_size=12, min_views=8, **cameras)
    if photos:
        photos.close()
    return info


class _PhotoZip:
    """Writes scenes as `<stem>/SceneN/IMG_000V.jpg` photos, numbered in order,
    views in pose-table order (so a natural sort of the names pairs them)."""

    def __init__(self, path):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.path = path
        self.partial_path = path + ".partial"
        self.archive = zipfile.ZipFile(self.partial_path, "w", zipfile.ZIP_STORED)
        self.folder = os.path.splitext(os.path.basename(path))[0]
        self.num_scenes = 0

    def add_scene(self, jpegs):
        self.num_scenes += 1
        for index, jpeg in enumerate(jpegs, start=1):
            self.archive.writestr(
                f"{self.folder}/Scene{self.num_scenes}/IMG_{index:04d}.jpg", jpeg)

    def close(self):
        self.archive.close()
        os.replace(self.partial_path, self.path)


def _photo_size(text):
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got {text!r}")
    if width < 1 or height < 1:
        raise argparse.ArgumentTypeError(f"photo size must be positive: {text!r}")
    return width, height


def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m data_provider.synthetic",
        description=(
            "Render posed synthetic scenes into DeepMind's gqn-datasets record "
            "layout (<output_dir>/<name>/{train,test}/i-of-N.tfrecord plus "
            "dataset_info.json), readable by data_provider.gqn_tfr_provider. "
            "Deterministic for a given seed."))
    parser.add_argument("--output_dir", required=True,
                        help="root folder; the set goes to <output_dir>/<name>/")
    parser.add_argument("--preset", choices=PRESETS, default="rooms",
                        help="rooms: objects in a room, ring cameras "
                             "(rooms_ring_camera-like); still_life: fruit on a "
                             "table from the fixed 12-/8-view pose tables")
    parser.add_argument("--name", help="dataset name (default: synthetic_<preset>)")
    parser.add_argument("--num_train_scenes", type=int, default=100)
    parser.add_argument("--num_test_scenes", type=int, default=20)
    parser.add_argument("--image_size", type=int, default=64,
                        help="side of the square frames in the records")
    parser.add_argument("--num_views", type=int,
                        help="views per scene (rooms only; default 10)")
    parser.add_argument("--scenes_per_file", type=int, default=50,
                        help="scenes per .tfrecord shard")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--supersample", type=int, default=1,
                        help="anti-alias frames with NxN rays per pixel (N^2 "
                             "times slower)")
    parser.add_argument("--num_workers", type=int,
                        help="rendering processes (default: one per core)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing <output_dir>/<name>/")
    parser.add_argument("--zip", dest="zip_path",
                        help="still_life only: also write the scenes as a zip of "
                             "SceneN/ photo folders here (converter input)")
    parser.add_argument("--photo_size", type=_photo_size, default=(320, 240),
                        help="WIDTHxHEIGHT of the zip's photos (default 320x240)")
    parser.add_argument("--textured", action="store_true",
                        help="give every surface a procedural texture (features "
                             "for structure-from-motion); default flat colours")
    return parser


def main(argv=None):
    args = _parser().parse_args(argv)
    info = generate_dataset(
        args.output_dir, args.name or f"synthetic_{args.preset}", args.preset,
        args.num_train_scenes, args.num_test_scenes, args.image_size,
        args.num_views, args.seed, args.scenes_per_file, args.overwrite,
        args.zip_path, args.photo_size, args.supersample, args.num_workers,
        args.textured)
    print(f"wrote {os.path.join(args.output_dir, info.name)}: "
          f"{info.train_files} train + {info.test_files} test files, "
          f"{info.frame_size}x{info.frame_size} frames, "
          f"{info.min_views}-{info.sequence_size} views per scene"
          + (f"; photos in {args.zip_path}" if args.zip_path else ""))


if __name__ == "__main__":
    main()
