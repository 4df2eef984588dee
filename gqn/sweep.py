"""The 'sweep' scene representation: every cell of the query view looks
along its own camera ray into the context views.

Why: the paper's tower and pool networks encode each context view on its
own and sum the codes, so where a thing seen in one view appears in another
must be learnt from data, which takes the paper's GQN hundreds of thousands
of steps; at a few thousand, the still lifes' fruit never appears in the
rendered view. But the poses are given, and with the cameras' field of view
that geometry is known. So, for each cell of the query view's latent grid,
points at `sweep_depths` depths along its ray (evenly spaced in inverse
depth between `sweep_near` and `sweep_far`) are projected into every
context view, whose features are sampled there (bilinearly). Where the
point lies on a surface, the views that see it agree, so the features'
mean and variance over those views (as in IBRNet, Wang et al. 2021) say
both what is there and whether it is there; a small network on those
statistics scores each depth, and the softmax of the scores over the depths
weighs its features into the cell's representation. The representation is
thus on the query view's own grid, and a fruit seen in the context views
lands where the query camera sees it.

The generator, the latent and the objective are the paper's; only r
changes. Shapes are static and the sampling is one batched matmul with a
bilinear interpolation matrix (no gather), so it runs on TPU and in
bfloat16 like the rest; the geometry and the statistics are float32.
"""
import numpy as np
import tensorflow.compat.v1 as tf

from gqn import layers, poses

# Context features are sampled at half the image resolution.
FEATURE_STRIDE = 2


def depth_planes(config):
    """The sweep's depths along each ray, near to far, evenly spaced in
    inverse depth (as far-away depths matter less to the image)."""
    inverse = np.linspace(1 / config.sweep_near, 1 / config.sweep_far,
                          config.sweep_depths)
    return (1 / inverse).astype(np.float32)


def project(points, context_poses, field_of_view):
    """Image positions of world points in each context camera.

    points (B, N, 3), context_poses (B, M, 7) -> (x, y, in_front) each
    (B, M, N): x and y run from -1 to 1 across the image (x left to right,
    y top to bottom), in_front says the point is ahead of the camera.
    """
    forward, right, up = (axis[:, :, None, :] for axis in
                          poses.camera_axes(context_poses))
    offsets = points[:, None] - tf.cast(context_poses, tf.float32)[:, :, None, :3]
    depth = tf.reduce_sum(offsets * forward, -1)
    scale = 1 / (np.tan(field_of_view / 2) * tf.maximum(depth, 1e-6))
    x = tf.reduce_sum(offsets * right, -1) * scale
    y = -tf.reduce_sum(offsets * up, -1) * scale
    return x, y, depth > 1e-6


def bilinear_weights(x, y, height, width):
    """(..., height * width) weights that sample a height x width map
    bilinearly at image positions x, y in [-1, 1] (zero weight outside)."""
    column = (x + 1) * (width / 2) - 0.5
    row = (y + 1) * (height / 2) - 0.5
    across = tf.nn.relu(1 - tf.abs(column[..., None] - tf.range(width, dtype=tf.float32)))
    down = tf.nn.relu(1 - tf.abs(row[..., None] - tf.range(height, dtype=tf.float32)))
    weights = down[..., :, None] * across[..., None, :]
    return tf.reshape(weights, weights.shape.as_list()[:-2] + [height * width])


def sample_views(features, x, y, visible):
    """Features (B, M, H, W, C) sampled at image positions x, y (B, M, N);
    (B, M, N, C) float32, zero where not `visible`."""
    batch, views, height, width, channels = features.shape.as_list()
    weights = bilinear_weights(x, y, height, width) * visible[..., None]
    flat = tf.reshape(features, [batch, views, height * width, channels])
    return tf.cast(tf.matmul(tf.cast(weights, flat.dtype), flat), tf.float32)


def view_statistics(samples, visible):
    """Mean and variance over the views that see each point, and the share
    of views that do: (B, N, 2C + 1) from samples (B, M, N, C)."""
    weight = visible[..., None]
    count = tf.reduce_sum(weight, axis=1)
    mean = tf.reduce_sum(samples * weight, axis=1) / tf.maximum(count, 1.0)
    variance = (tf.reduce_sum(weight * tf.square(samples - mean[:, None]), axis=1)
                / tf.maximum(count, 1.0))
    return tf.concat([mean, variance, count / samples.shape.as_list()[1]], -1)


def _view_features(frames, channels):
    """Per-view features at 1/FEATURE_STRIDE of the image size."""
    relu = tf.nn.relu
    net = layers.conv2d(frames, channels, 3, "view_conv1", activation=relu)
    net = layers.conv2d(net, channels, 3, "view_conv2", strides=FEATURE_STRIDE,
                        activation=relu)
    return layers.conv2d(net, channels, 3, "view_conv3", activation=relu)


def sweep_representation(context_frames, context_poses, query_pose, config):
    """(B, M, H, W, 3), (B, M, 7), (B, 7) -> r (B, s, s, R) on the query
    view's latent grid, in the frames' dtype."""
    batch, views, height, width, _ = context_frames.shape.as_list()
    channels, size = config.representation_channels, config.latent_size
    depths = depth_planes(config)
    field_of_view = np.radians(config.field_of_view)
    dtype = context_frames.dtype
    features = _view_features(
        tf.reshape(context_frames, [batch * views, height, width, 3]), channels)
    features = tf.reshape(features, [batch, views] + features.shape.as_list()[1:])

    rays = poses.ray_directions(query_pose, size, field_of_view)  # (B, s, s, 3)
    origin = tf.cast(query_pose, tf.float32)[:, None, None, None, :3]
    points = origin + depths[:, None] * rays[:, :, :, None, :]  # (B, s, s, D, 3)
    points = tf.reshape(points, [batch, size * size * len(depths), 3])
    x, y, in_front = project(points, context_poses, field_of_view)
    visible = tf.cast(in_front & (tf.abs(x) <= 1) & (tf.abs(y) <= 1), tf.float32)
    statistics = view_statistics(sample_views(features, x, y, visible), visible)

    # Per point: its statistics and how far along the ray it is (0 near, 1
    # far; the depths are evenly spaced in inverse depth, so its index).
    statistics = tf.reshape(statistics, [batch, size * size, len(depths), -1])
    nearness = np.linspace(0, 1, len(depths), dtype=np.float32)
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
    return tf.reshape(r, [batch, size, size, channels])
