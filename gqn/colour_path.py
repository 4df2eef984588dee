"""Colour at full resolution: the context views' own pixels, reprojected
into the query view and blended, beside what the DRAW generator paints.

Why: the generator paints on the latent grid (a quarter of the image side)
and upsamples, so even where the context views show exactly what the query
camera sees, the rendered view is a blur of them. Image-based renderers
(IBRNet and its kin) instead read the answer from the context: for every
output pixel, its ray is walked over the sweep's planes, each point is
projected into the context views and their colours sampled there. Per
point the views are blended with weights learnt from how close each view's
ray is to the query's (a near ray sees the same side of the surface) and
how well the view agrees with the others; per pixel the planes are weighed
by a softmax of the sweep's depth scores (upsampled from the latent grid),
of the views' colour agreement at full resolution (averaged over 3x3
pixels) and of how well their 3x3 patches correlate (which, unlike the
colour agreement, a phone's per-frame exposure does not upset). What comes
out is an image and the cues that say how far to trust it (the share of
views that see the chosen points, their colour variance, how sure the
depth is); the observation (gqn.draw.observation_mean) mixes
it per pixel with the generator's image, which paints what the context does
not show.

At initialisation the blend is already a sensible renderer: the depth
follows the colour agreement as in the plane-sweep baseline, the views are
weighed towards the nearest ray, and training adjusts a handful of weights.
Everything here is float32 (geometry and colours) and gathers with static
shapes, so it runs on TPU as on CPU and beside a bfloat16 network.
"""
import collections
import math

import tensorflow.compat.v1 as tf

from gqn import plane_sweep, poses, sweep

# image: what the training reconstruction mixes in. cues: the share of
# context views that see the pixel's points (first: the observation's learnt
# mix never exceeds it), their colour variance and the largest depth weight,
# each averaged over the pixel's depth weights.
# rendered_image: what a rendering mixes in, the same blend with its view
# and depth softmaxes sharpened by the RenderingFocus (the image itself
# where both are 1).
# rendered_share (B, H, W, 1): the path's share of a rendered pixel
# (gqn.config.COLOUR_SHARES 'seen'): all of it where every context view
# but one sees the pixel's points (one view missing is the common case at
# a view's edge), less in proportion where fewer do; with a single context
# view, the share of it that sees them.
# depth_choice: training's choice among the planes (DepthChoice), which the
# depth loss (gqn.objective.depth_choice_nll) scores against the target.
ColourPath = collections.namedtuple(
    "ColourPath", ["image", "cues", "rendered_image", "rendered_share", "depth_choice"])
# Per pixel and plane (B, H, W, D): the log of training's depth weight, the
# views' blended colour there (B, H, W, D, 3) and the share of the views
# that see the point.
DepthChoice = collections.namedtuple("DepthChoice", ["log_weights", "colours", "seen"])
# How much more sharply a rendering picks among the context views and the
# sweep's depths than training does (gqn.config.GQNConfig.rendered_view_focus
# and rendered_depth_focus): factors on the view blend's logits and on the
# depth scores. The views' factor applies in full where a context view
# that sees the point looks along nearly the query's ray, and fades to 1
# (training's blend) as the nearest such ray turns away (to 1/e of the
# way at NEAR_VIEW_DEGREES). Why: where a context view nearly coincides
# with the query, copying it is right and a mean with views farther round
# is a blur; but training never sees that case (in a walk-around the
# target's nearest context frame is often 10 degrees or more away, where
# the ray-angle logit already picks it), so it cannot learn it. Where the
# views are all far, blending them is the safer guess: the factor without
# the fade cost generated still lifes 0.2 dB, whose queries stand 45
# degrees from every view (docs/benchmarks.md). The depth factor makes a
# rendering commit to a depth: sharper, at some cost in PSNR.
RenderingFocus = collections.namedtuple("RenderingFocus", ["views", "depths"])
TRAINING_FOCUS = RenderingFocus(1.0, 1.0)
NEAR_VIEW_DEGREES = 10.0
CUE_CHANNELS = 3

# Initial weights of the blend: of the angle between a view's ray and the
# query's ray, 1 - cos, in the views' blend (views 10 degrees apart differ by
# 1.5 in logit); of a view's squared colour distance from the views' mean;
# and in the depth scores, of the sweep's scores, of the colour variance
# (relative to its spread over depth), of the share of views that do not
# see a point and of the patch correlation. The first five were chosen on
# generated walk-arounds of textured still lifes, not on the real capture
# they are measured on; the correlation's weight on the apple capture and
# generated still lifes together (training-free, docs/benchmarks.md).
INITIAL_WEIGHTS = {"ray_angle": 100.0, "disagreement": 10.0, "sweep_scores": 1.0,
                   "colour_variance": 5.0, "unseen": 20.0, "correlation": 10.0}
# Each weight is INITIAL_WEIGHTS * exp(LOG_RATE * raw), raw starting at 0:
# Adam's steps of about the learning rate in raw then change a weight by a
# few percent per hundred steps, so a short fine-tuning can move it several
# fold (a plain variable would move by the learning rate, nothing beside 100).
LOG_RATE = 10.0
# The colour variance (summed over the channels) of views that agree up to
# JPEG and resampling noise, about 2 grey levels in each channel.
NOISE_VARIANCE = 3 * (2 / 255) ** 2
# Added to the product of two windows' brightness variances before the
# correlation divides by its root: windows whose brightness varies by less
# than about 14 grey levels (flat colour, noise) score near 0 rather than
# a correlation of noise.
TEXTURE_FLOOR = 1e-5


def _positive_weight(name):
    """A learnt positive scalar starting at INITIAL_WEIGHTS[name]."""
    raw = tf.get_variable(name, [], tf.float32, initializer=tf.zeros_initializer())
    return INITIAL_WEIGHTS[name] * tf.exp(LOG_RATE * raw)


def _ray_cosines(context_poses, query_pose, rays, planes):
    """(B, M, size * size * D): the cosine between each context view's ray to
    each point and the query's ray through it. The point is o + t r on the
    query ray r from the query camera o, so from view centre c it lies along
    (o - c) + t r; its dot product with r and its length follow from
    (o - c).r and |o - c| alone (scalars, not 3-vectors per point)."""
    batch, depths = planes.shape.as_list()
    forward = poses.camera_axes(query_pose)[0]
    along = planes[:, None, None, :] / tf.reduce_sum(
        rays * forward[:, None, None, :], -1, keepdims=True)  # t: (B, s, s, D)
    along = tf.reshape(along, [batch, 1, -1, depths])
    apart = (tf.cast(query_pose, tf.float32)[:, None, :3]
             - tf.cast(context_poses, tf.float32)[..., :3])  # o - c: (B, M, 3)
    offset = tf.einsum("bmk,bsk->bms", apart, tf.reshape(rays, [batch, -1, 3]))
    offset = offset[..., None]  # (o - c).r per cell: (B, M, s * s, 1)
    squared = tf.reduce_sum(tf.square(apart), -1)[:, :, None, None]
    cosine = (offset + along) * tf.math.rsqrt(
        tf.maximum(squared + 2 * offset * along + tf.square(along), 1e-12))
    return tf.reshape(cosine, [batch, apart.shape.as_list()[1], -1])


def _patch_correlation(samples, visibility, grid):
    """(B, H, W, D): per pixel and plane, the normalised cross-correlation
    between each view's brightness over the window around the pixel (on the
    plane) and the mean brightness of the other views there, averaged over
    the views that see the whole window (0 where none does). It is what
    multi-view stereo compares: unlike the colour variance it ignores how
    exposure and white balance differ between views (a phone sets them per
    frame) and follows texture; a flat window has none and scores 0, leaving
    the depth to the other cues. The other views, not all of them: a view
    correlates with any mean that contains it, so one view's edge among
    flat ones would score at every depth."""
    batch, views = samples.shape.as_list()[:2]
    per_view = [batch, views] + grid[1:]

    def window_mean(values):
        flat = tf.reshape(values, [batch * views] + grid[1:])
        return tf.reshape(sweep.window_mean(flat), per_view)

    brightness = tf.reshape(tf.reduce_mean(samples, -1), per_view)
    seen = tf.reshape(visibility, per_view)
    others = ((tf.reduce_sum(brightness, 1, keepdims=True) - brightness)
              / tf.maximum(tf.reduce_sum(seen, 1, keepdims=True) - seen, 1.0))
    brightness_mean, others_mean = window_mean(brightness), window_mean(others)
    covariance = window_mean(brightness * others) - brightness_mean * others_mean
    brightness_variance = tf.nn.relu(window_mean(tf.square(brightness))
                                     - tf.square(brightness_mean))
    others_variance = tf.nn.relu(window_mean(tf.square(others)) - tf.square(others_mean))
    correlation = covariance * tf.math.rsqrt(brightness_variance * others_variance + TEXTURE_FLOOR)
    whole = tf.cast(window_mean(seen) > 0.999, tf.float32)
    return (tf.reduce_sum(correlation * whole, 1)
            / tf.maximum(tf.reduce_sum(whole, 1), 1.0))


def _view_focus(focus, cosine, visibility):
    """(B, 1, N): the rendering's factor on the view blend's logits at each
    point, RenderingFocus.views `focus` faded by the ray angle of the
    nearest view that sees the point (from cosines and visibility (B, M,
    N))."""
    nearest = tf.reduce_max(tf.where(visibility > 0, cosine, -tf.ones_like(cosine)),
                            axis=1, keepdims=True)
    nearness = tf.exp((nearest - 1) / (1 - math.cos(math.radians(NEAR_VIEW_DEGREES))))
    return 1 + (focus - 1) * nearness


def colour_path(context_frames, context_poses, context_field_of_view, query_pose,
                query_field_of_view, sweep_output, rendering_focus=TRAINING_FOCUS,
                sampling="bilinear"):
    """Context frames (B, M, H, W, 3) in [0, 1] (float32), their poses and
    fields of view, the query's, the sweep (gqn.sweep.Sweep), a
    RenderingFocus and the resampling kernel (gqn.sweep.SAMPLERS) ->
    ColourPath: the reprojected image (B, H, W, 3), its cues (B, H, W,
    CUE_CHANNELS), the rendered image (B, H, W, 3), its share of a rendered
    pixel (B, H, W, 1) and training's DepthChoice. A graph that only trains
    never runs the rendered image's ops."""
    batch, views, size = context_frames.shape.as_list()[:3]
    planes = sweep_output.planes
    depths = planes.shape.as_list()[1]
    with tf.variable_scope("colour_path", reuse=tf.AUTO_REUSE):
        (ray_angle, disagreement, sweep_scores, colour_variance, unseen,
         correlation) = (_positive_weight(name) for name in INITIAL_WEIGHTS)
    samples, visibility, rays = plane_sweep.colours_along_rays(
        context_frames, context_poses, context_field_of_view, query_pose,
        query_field_of_view, planes, size, sweep.SAMPLERS[sampling])
    statistics = sweep.view_statistics(samples, visibility)
    mean, variance = statistics[..., :3], tf.reduce_sum(statistics[..., 3:6], -1)
    seen_share = statistics[..., 6]

    grid = [batch, size, size, depths]
    cosine = _ray_cosines(context_poses, query_pose, rays, planes)
    distance = tf.reduce_sum(tf.square(samples - mean[:, None]), -1)
    logits = -ray_angle * (1 - cosine) - disagreement * distance
    unseen_logits = (visibility - 1) * 1e4  # views that do not see the point: none

    def blended(focused_logits):  # (B, H, W, D, 3)
        blend = tf.nn.softmax(focused_logits + unseen_logits, axis=1) * visibility
        return tf.reshape(tf.reduce_sum(blend[..., None] * samples, axis=1), grid + [3])

    upsampled = tf.image.resize_bilinear(sweep_output.depth_logits, [size, size],
                                         half_pixel_centers=True)
    agreement = sweep.window_mean(tf.reshape(variance, grid))
    # Relative to the spread over the ray's depths (textures differ in
    # contrast, the depth where the views agree best does not), but not
    # below the spread of image noise: on a flat colour every depth agrees,
    # and the sweep's scores decide.
    mean, spread = tf.nn.moments(agreement, axes=[3], keepdims=True)
    agreement = (agreement - mean) / (tf.sqrt(spread) + NOISE_VARIANCE)
    scores = (sweep_scores * upsampled - colour_variance * agreement
              - unseen * (1 - tf.reshape(seen_share, grid))
              + correlation * _patch_correlation(samples, visibility, grid))
    seen_share = tf.reshape(seen_share, grid)

    def image(depth_weights, views_blended):
        return tf.reduce_sum(depth_weights[..., None] * views_blended, axis=3)

    # Training's blend and depth weights; a rendering's are the same
    # tensors wherever its focus is 1, so each is built once.
    trained_blend = blended(logits)
    log_trained = tf.nn.log_softmax(scores, axis=-1)  # (B, H, W, D)
    trained = tf.exp(log_trained)
    rendered_blend, rendered = trained_blend, trained
    if rendering_focus.views != 1:
        rendered_blend = blended(_view_focus(rendering_focus.views, cosine, visibility) * logits)
    if rendering_focus.depths != 1:
        rendered = tf.nn.softmax(rendering_focus.depths * scores, axis=-1)
    trained_seen = tf.reduce_sum(trained * seen_share, -1)
    cues = tf.stack([trained_seen,
                     tf.reduce_sum(trained * tf.reshape(variance, grid), -1),
                     tf.reduce_max(trained, -1)], axis=-1)
    rendered_seen = (trained_seen if rendered is trained
                     else tf.reduce_sum(rendered * seen_share, -1))[..., None]
    rendered_share = tf.minimum(1.0, rendered_seen * views / max(views - 1, 1))
    trained_image = image(trained, trained_blend)
    rendered_image = (trained_image if rendering_focus == TRAINING_FOCUS
                      else image(rendered, rendered_blend))
    return ColourPath(trained_image, cues, rendered_image, rendered_share,
                      DepthChoice(log_trained, trained_blend, seen_share))


def without_network(context_frames, context_poses, context_field_of_view, query_pose,
                    query_field_of_view, planes, rendering_focus=TRAINING_FOCUS,
                    sampling="bilinear"):
    """The colour path with flat sweep scores on `planes` (B, D): its depth
    chosen by the views' agreement alone, no network's scores. At the
    starting weights its rendered image is what the model renders before
    any training (the evaluation's reprojection baseline)."""
    batch, depths = planes.shape.as_list()
    flat = sweep.Sweep(None, tf.zeros([batch, 1, 1, depths]), planes)
    return colour_path(context_frames, context_poses, context_field_of_view, query_pose,
                       query_field_of_view, flat, rendering_focus, sampling)
