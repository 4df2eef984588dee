"""The 'sweep' scene representation: every cell of the query view looks
along its own camera ray into the context views; and the geometry it shares
with the full-resolution colour path and the plane-sweep baseline.

Why: the paper's tower and pool networks encode each context view on its
own and sum the codes, so where a thing seen in one view appears in another
must be learnt from data, which takes the paper's GQN hundreds of thousands
of steps; at a few thousand, the still lifes' fruit never appears in the
rendered view. But the poses are given, and with each camera's field of
view (a feature of every example, from the records) that geometry is
known. So, for each cell of the query view's latent grid, points on
`sweep_depths` planes facing the query camera (evenly spaced in inverse
depth over the scene's depth range, another feature) are projected into
every context view, whose features are sampled there (bilinearly). Where
the point lies on a surface, the views that see it agree, so the features'
mean and variance over those views (as in IBRNet, Wang et al. 2021) say
both what is there and whether it is there; a small network on those
statistics scores each depth, and the softmax of the scores over the depths
weighs its features into the cell's representation. The representation is
thus on the query view's own grid, and a fruit seen in the context views
lands where the query camera sees it. The depth scores also go to the
colour path (gqn.colour_path), which reads the context's pixels.

Sampling gathers the four neighbours of each projected point (no dense
interpolation matrix, whose size grows with points x pixels); XLA compiles
gathers on TPU as well. Shapes are static, the geometry and the statistics
are float32, the networks run in the frames' dtype (bfloat16 or float32).

Conventions: an image position (x, y) runs from -1 to 1 across the image,
x left to right, y top to bottom, so the centre of pixel j of W lies at
x = (2 j + 1) / W - 1, as gqn.poses.image_plane_offsets puts it. The view
features are computed so that their cell i is centred on the image pixels
2i and 2i + 1, the same convention on a grid of half the size.
"""
import collections

import numpy as np
import tensorflow.compat.v1 as tf

from gqn import layers, poses

# Context features are sampled at half the image resolution.
FEATURE_STRIDE = 2
# Side in pixels of the windows over which the views' colours are compared
# (the plane-sweep baseline's cost; the colour path's variance and patch
# correlation): one pixel's noise does not decide a depth.
WINDOW = 3

# r on the query's latent grid; per cell, the depth scores (before their
# softmax) on the planes at `planes` (B, D).
Sweep = collections.namedtuple("Sweep", ["representation", "depth_logits", "planes"])


def depth_planes(depth_range, count):
    """(B, 2) near and far -> (B, count) plane depths, near to far, evenly
    spaced in inverse depth (as far-away depths matter less to the image)."""
    depth_range = tf.cast(depth_range, tf.float32)
    steps = tf.constant(np.linspace(0, 1, count, dtype=np.float32))[None]
    near, far = 1 / depth_range[:, :1], 1 / depth_range[:, 1:]
    return 1 / (near + steps * (far - near))


def ray_points(query_pose, query_field_of_view, planes, size):
    """World points (B, size * size * D, 3) where the rays through the
    centres of a size x size grid over the query image meet the planes
    facing the query camera at depths `planes` (B, D); cells in row-major
    order, depths innermost. Also returns the unit rays (B, size, size, 3)."""
    rays = poses.ray_directions(query_pose, size, query_field_of_view)
    forward = poses.camera_axes(query_pose)[0][:, None, None, :]
    along_axis = rays / tf.reduce_sum(rays * forward, -1, keepdims=True)
    origin = tf.cast(query_pose, tf.float32)[:, None, None, None, :3]
    points = origin + planes[:, None, None, :, None] * along_axis[:, :, :, None, :]
    batch, depths = planes.shape.as_list()
    return tf.reshape(points, [batch, size * size * depths, 3]), rays


def project(points, context_poses, fields_of_view):
    """Image positions of world points in each context camera.

    points (B, N, 3), context_poses (B, M, 7), fields_of_view (B, M) radians
    -> (x, y, depth), each (B, M, N): x and y run from -1 to 1 across the
    image, depth along the camera's optical axis (> 0 in front of it).
    """
    forward, right, up = (axis[:, :, None, :] for axis in
                          poses.camera_axes(context_poses))
    offsets = points[:, None] - tf.cast(context_poses, tf.float32)[:, :, None, :3]
    depth = tf.reduce_sum(offsets * forward, -1)
    half_extent = tf.tan(tf.cast(fields_of_view, tf.float32) / 2)[:, :, None]
    scale = 1 / (half_extent * tf.maximum(depth, 1e-6))
    x = tf.reduce_sum(offsets * right, -1) * scale
    y = -tf.reduce_sum(offsets * up, -1) * scale
    return x, y, depth


def visible(x, y, depth):
    """1.0 where a projected point is in front of the camera and inside its
    image (the border pixels' outer halves included), else 0.0."""
    inside = (depth > 1e-6) & (tf.abs(x) <= 1) & (tf.abs(y) <= 1)
    return tf.cast(inside, tf.float32)


def _pixel_positions(images, x, y):
    """(column, row) (B, M, N) of image positions x, y in [-1, 1], in
    pixels from the first pixel's centre, clamped to the outermost pixel
    centres (a point in a border pixel's outer half reads that pixel;
    `visible` says which points count); and the images flattened to rows
    of pixels with each view's first row index (B, M, 1), for gathers."""
    batch, views, height, width, channels = images.shape.as_list()
    if height < 2 or width < 2:
        raise ValueError(f"sampling needs images of at least 2x2, got {height}x{width}")
    column = tf.clip_by_value((x + 1) * (width / 2) - 0.5, 0.0, width - 1.0)
    row = tf.clip_by_value((y + 1) * (height / 2) - 0.5, 0.0, height - 1.0)
    first = tf.reshape(tf.range(batch * views) * (height * width), [batch, views, 1])
    flat = tf.reshape(images, [batch * views * height * width, channels])
    return column, row, flat, first


def sample(images, x, y):
    """Bilinear samples (B, M, N, C), float32, of images (B, M, H, W, C) at
    image positions x, y (B, M, N): 4 gathers per sample, weights summing
    to 1."""
    height, width = images.shape.as_list()[2:4]
    column, row, flat, first = _pixel_positions(images, x, y)
    left = tf.minimum(tf.floor(column), width - 2.0)
    top = tf.minimum(tf.floor(row), height - 2.0)
    across, down = column - left, row - top
    corner = first + tf.cast(top, tf.int32) * width + tf.cast(left, tf.int32)
    total = 0.0
    for offset, weight in [(0, (1 - down) * (1 - across)), (1, (1 - down) * across),
                           (width, down * (1 - across)), (width + 1, down * across)]:
        total += (tf.cast(tf.gather(flat, corner + offset), tf.float32)
                  * weight[..., None])
    return total


def _catmull_rom(distance):
    """The Catmull-Rom cubic's weight of a pixel `distance` pixels from the
    sample (0 beyond 2): 1 at 0, 0 at the other pixel centres."""
    t = tf.abs(distance)
    near = 1.5 * t ** 3 - 2.5 * t ** 2 + 1
    far = -0.5 * t ** 3 + 2.5 * t ** 2 - 4 * t + 2
    return tf.where(t <= 1, near, tf.where(t < 2, far, tf.zeros_like(t)))


def sample_bicubic(images, x, y):
    """Bicubic (Catmull-Rom) samples of images (B, M, H, W, C) in [0, 1] at
    image positions x, y (B, M, N): (B, M, N, C) in [0, 1], float32.
    Why: a bilinear sample between pixel centres averages its neighbours,
    so an image resampled at sub-pixel offsets comes out blurred; the cubic
    keeps edges (and reproduces the pixels at their centres). Costs 16
    gathers per sample to bilinear's 4; pixels past the border repeat it."""
    height, width = images.shape.as_list()[2:4]
    column, row, flat, first = _pixel_positions(images, x, y)
    left, top = tf.floor(column), tf.floor(row)
    total = 0.0
    for down in (-1, 0, 1, 2):
        pixel_row = tf.cast(tf.clip_by_value(top + down, 0, height - 1), tf.int32)
        row_weight = _catmull_rom(row - top - down)
        for across in (-1, 0, 1, 2):
            pixel_column = tf.cast(tf.clip_by_value(left + across, 0, width - 1), tf.int32)
            weight = row_weight * _catmull_rom(column - left - across)
            total += (tf.cast(tf.gather(flat, first + pixel_row * width + pixel_column),
                              tf.float32) * weight[..., None])
    return tf.clip_by_value(total, 0.0, 1.0)


# The colour path's resampling kernels (GQNConfig.colour_sampling).
SAMPLERS = {"bilinear": sample, "bicubic": sample_bicubic}


def view_statistics(samples, visibility):
    """Mean and variance over the views that see each point, and the share
    of views that do: (B, N, 2C + 1) from samples (B, M, N, C)."""
    weight = visibility[..., None]
    count = tf.reduce_sum(weight, axis=1)
    mean = tf.reduce_sum(samples * weight, axis=1) / tf.maximum(count, 1.0)
    variance = (tf.reduce_sum(weight * tf.square(samples - mean[:, None]), axis=1)
                / tf.maximum(count, 1.0))
    return tf.concat([mean, variance, count / samples.shape.as_list()[1]], -1)


def window_mean(values):
    """The mean over each pixel's WINDOW x WINDOW neighbourhood of (N, H, W,
    D) values, per plane (the planes are channels here)."""
    return tf.nn.avg_pool2d(values, WINDOW, 1, "SAME")


def view_features(frames, channels):
    """Per-view features (N, H/2, W/2, channels) of frames (N, H, W, 3). The
    stride-2 layer's 2x2 kernel covers pixels 2i and 2i + 1 exactly, so a
    feature cell is centred where `sample` expects it."""
    relu = tf.nn.relu
    net = layers.conv2d(frames, channels, 3, "view_conv1", activation=relu)
    net = layers.conv2d(net, channels, FEATURE_STRIDE, "view_conv2",
                        strides=FEATURE_STRIDE, activation=relu)
    return layers.conv2d(net, channels, 3, "view_conv3", activation=relu)


def sweep_representation(context_frames, context_poses, context_field_of_view,
                         query_pose, query_field_of_view, depth_range, config):
    """Context frames (B, M, H, W, 3) in the compute dtype, their poses
    (B, M, 7) and fields of view (B, M), the query's pose (B, 7) and field
    of view (B,), the scene's (near, far) (B, 2) -> Sweep: r (B, s, s, R) on
    the query view's latent grid in the frames' dtype, float32 depth logits
    (B, s, s, D) and the planes (B, D)."""
    batch, views, height, width, _ = context_frames.shape.as_list()
    channels, size = config.representation_channels, config.latent_size
    dtype = context_frames.dtype
    planes = depth_planes(depth_range, config.sweep_depths)
    depths = config.sweep_depths
    features = view_features(
        tf.reshape(context_frames, [batch * views, height, width, 3]), channels)
    features = tf.reshape(features, [batch, views] + features.shape.as_list()[1:])

    points, _ = ray_points(query_pose, query_field_of_view, planes, size)
    x, y, depth = project(points, context_poses, context_field_of_view)
    visibility = visible(x, y, depth)
    samples = sample(features, x, y) * visibility[..., None]
    statistics = view_statistics(samples, visibility)

    # Per point: its statistics and how far along the ray it is (0 near, 1
    # far; the depths are evenly spaced in inverse depth, so its index).
    statistics = tf.reshape(statistics, [batch, size * size, depths, -1])
    nearness = np.linspace(0, 1, depths, dtype=np.float32)
    nearness = tf.tile(tf.constant(nearness)[None, None, :, None],
                       [batch, size * size, 1, 1])
    point_inputs = tf.cast(tf.concat([statistics, nearness], -1), dtype)
    relu = tf.nn.relu
    # 1x1 convolutions over the (cells, depths) grid: a network per point.
    hidden = layers.conv2d(point_inputs, channels, 1, "point_conv1", activation=relu)
    hidden = layers.conv2d(hidden, channels, 1, "point_conv2", activation=relu)
    scores = tf.cast(layers.conv2d(hidden, 1, 1, "depth_score"), tf.float32)
    weights = tf.cast(tf.nn.softmax(scores, axis=2), dtype)
    r = tf.reduce_sum(weights * layers.conv2d(hidden, channels, 1, "point_features"),
                      axis=2)
    return Sweep(tf.reshape(r, [batch, size, size, channels]),
                 tf.reshape(scores, [batch, size, size, depths]), planes)
