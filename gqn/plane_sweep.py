"""The plane-sweep baseline: what geometry alone renders from the context.

Training-free. For each pixel of the query view it walks the pixel's ray
over planes facing the query camera, projects each point into the context
views and samples their colours; where a surface is, the views that see it
agree, so it keeps the depth where their colours vary least (the variance
averaged over a 3x3 window of pixels, gqn.sweep.WINDOW, so that one pixel's
noise does not decide) and paints their mean colour there. On a textured
capture with near views it is sharp and right wherever the geometry is; a
model that loses to it has not learnt the scene (evaluation reports it
beside the nearest context view and the context mean).

It shares the sweep representation's geometry (gqn.sweep): the same rays,
planes, projection and sampling.
"""
import collections

import tensorflow.compat.v1 as tf

from gqn import sweep

# Planes along each ray: finer than the model's (the baseline has no
# network to interpolate between them).
DEFAULT_DEPTHS = 48
# Points seen by fewer views than this cannot be checked for agreement.
MIN_VIEWS = 2

# The rendered image (B, H, W, 3) and each pixel's chosen depth (B, H, W).
PlaneSweep = collections.namedtuple("PlaneSweep", ["image", "depth"])


def colours_along_rays(context_frames, context_poses, context_field_of_view,
                       query_pose, query_field_of_view, planes, size,
                       sampler=sweep.sample):
    """The context views' colours at the points of every query pixel's ray
    on `planes`, read by `sampler` (gqn.sweep.SAMPLERS): samples (B, M,
    size * size * D, 3) (zero where unseen), the visibility (B, M, N) and
    the unit query rays (B, size, size, 3)."""
    points, rays = sweep.ray_points(query_pose, query_field_of_view, planes, size)
    x, y, depth = sweep.project(points, context_poses, context_field_of_view)
    visibility = sweep.visible(x, y, depth)
    samples = sampler(tf.cast(context_frames, tf.float32), x, y)
    return samples * visibility[..., None], visibility, rays


def plane_sweep(context_frames, context_poses, context_field_of_view, query_pose,
                query_field_of_view, depth_range, num_depths=DEFAULT_DEPTHS):
    """Context frames (B, M, H, W, 3) in [0, 1] with poses (B, M, 7) and
    fields of view (B, M); query pose (B, 7) and field of view (B,); depth
    range (B, 2) -> PlaneSweep. A pixel whose ray no two views see at any
    depth gets the mean of the context views (and the far depth)."""
    batch, views, size = context_frames.shape.as_list()[:3]
    planes = sweep.depth_planes(depth_range, num_depths)
    samples, visibility, _ = colours_along_rays(
        context_frames, context_poses, context_field_of_view, query_pose,
        query_field_of_view, planes, size)
    statistics = sweep.view_statistics(samples, visibility)
    mean = tf.reshape(statistics[..., :3], [batch, size, size, num_depths, 3])
    variance = tf.reduce_sum(statistics[..., 3:6], -1)
    count = statistics[..., 6] * views
    variance = tf.reshape(variance, [batch, size, size, num_depths])
    checked = tf.reshape(count >= MIN_VIEWS, [batch, size, size, num_depths])
    # Unchecked points take part in the window's mean as the worst value.
    worst = tf.reduce_max(variance) + 1.0
    cost = sweep.window_mean(tf.where(checked, variance,
                                      tf.fill(tf.shape(variance), worst)))
    cost = tf.where(checked, cost, tf.fill(tf.shape(cost), worst + 1.0))
    best = tf.one_hot(tf.argmin(cost, axis=-1), num_depths)
    painted = tf.reduce_sum(best[..., None] * mean, axis=3)
    seen = tf.reduce_any(checked, axis=-1, keepdims=True)
    fallback = tf.reduce_mean(tf.cast(context_frames, tf.float32), axis=1)
    image = tf.where(tf.broadcast_to(seen, painted.shape), painted, fallback)
    depth = tf.where(seen[..., 0], tf.reduce_sum(best * planes[:, None, None, :], -1),
                     tf.broadcast_to(planes[:, -1:, None], seen.shape[:3]))
    return PlaneSweep(image, depth)
