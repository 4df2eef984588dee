"""Scene representation networks. The paper's (Fig. S1): each context view
and its pose are encoded independently and the codes are summed over views,
so the representation does not depend on the order or number of views.
'sweep' (gqn.sweep) reads the context views along the query's camera rays
instead."""
import tensorflow.compat.v1 as tf

from gqn import layers


def _broadcast_pose(poses, size):
    """(N, 7) -> (N, size, size, 7)."""
    return tf.tile(poses[:, None, None, :], [1, size, size, 1])


def tower(frames, poses, channels):
    """The 'tower' encoder: (N, H, W, 3), (N, 7) -> (N, H/4, W/4, channels)."""
    half = max(channels // 2, 1)
    relu = tf.nn.relu
    net = layers.conv2d(frames, channels, 2, "conv1", strides=2, activation=relu)
    skip = layers.conv2d(net, channels, 2, "conv2_skip", strides=2, activation=relu)
    net = layers.conv2d(net, half, 3, "conv2", activation=relu)
    net = layers.conv2d(net, channels, 2, "conv3", strides=2, activation=relu)
    net = net + skip
    net = tf.concat([net, _broadcast_pose(poses, net.shape[1])], axis=-1)
    skip = layers.conv2d(net, channels, 3, "conv4_skip", activation=relu)
    net = layers.conv2d(net, half, 3, "conv4", activation=relu)
    net = layers.conv2d(net, channels, 3, "conv5", activation=relu)
    net = net + skip
    return layers.conv2d(net, channels, 1, "conv6", activation=relu)


def pool(frames, poses, channels):
    """The 'pool' encoder: the tower followed by global average pooling,
    (N, H, W, 3), (N, 7) -> (N, 1, 1, channels)."""
    return tf.reduce_mean(tower(frames, poses, channels), axis=[1, 2],
                          keepdims=True)


ENCODERS = {"tower": tower, "pool": pool}


def encoded_views(context_frames, context_poses, config):
    """The paper's representation, (B, M, H, W, 3), (B, M, 7) -> r (B, H/4,
    W/4, R): each view encoded on its own ('tower' or 'pool'), the codes
    summed over the M views (a pooled 1x1 code is broadcast to the latent
    grid), whatever the query. ('sweep', gqn.sweep, reads the context
    along the query's rays instead.)"""
    batch, views, height, width, _ = context_frames.shape.as_list()
    frames = tf.reshape(context_frames, [batch * views, height, width, 3])
    poses = tf.cast(tf.reshape(context_poses, [batch * views, config.pose_dim]),
                    context_frames.dtype)
    codes = ENCODERS[config.representation](frames, poses,
                                            config.representation_channels)
    code_shape = codes.shape.as_list()[1:]
    r = tf.reduce_sum(tf.reshape(codes, [batch, views] + code_shape), axis=1)
    if code_shape[0] != config.latent_size:
        r = tf.tile(r, [1, config.latent_size, config.latent_size, 1])
    return r
