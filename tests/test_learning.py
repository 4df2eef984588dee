"""Learning, not just running: the tiny model fits a small fixed batch of
generated scenes."""
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from data_provider import synthetic
from gqn.model import CONTEXT_FIELD_OF_VIEW_KEY, DEPTH_RANGE_KEY, QUERY_FIELD_OF_VIEW_KEY
from gqn.model_fn import model_fn_builder
from gqn.poses import encode_poses_np
from tests.tiny import tiny_config


def rendered_batch(config, num_scenes, seed=0):
    """(features, target) of `num_scenes` synthetic rooms at the config's size."""
    frames, poses, depth_ranges = [], [], []
    for index in range(num_scenes):
        scene, raw = synthetic.make_scene("rooms", seed, "train", index, num_scenes,
                                          config.context_size + 1)
        frames.append(synthetic.render(scene, raw, config.image_size, config.image_size))
        poses.append(encode_poses_np(raw))
        depth_ranges.append(synthetic.surface_depth_range(scene, raw))
    frames = np.stack(frames).astype(np.float32) / 255.0
    poses = np.stack(poses)
    angle = np.float32(np.radians(synthetic.FIELD_OF_VIEW_DEGREES))
    features = {"context_frames": frames[:, :-1], "context_poses": poses[:, :-1],
                "query_pose": poses[:, -1],
                CONTEXT_FIELD_OF_VIEW_KEY: np.full(poses.shape[:1] + (poses.shape[1] - 1,),
                                                   angle),
                QUERY_FIELD_OF_VIEW_KEY: np.full(num_scenes, angle),
                DEPTH_RANGE_KEY: np.float32(depth_ranges)}
    return features, frames[:, -1]


@pytest.mark.parametrize("choices", [
    {},  # the small presets': sigmoid mean, forget bias +1
    dict(observation_sigmoid=False, forget_bias=0.0),  # the paper preset's
])
def test_reconstruction_mse_halves_on_a_fixed_batch(choices):
    config = tiny_config(image_size=16, batch_size=8, sigma_start=0.3, sigma_end=0.3,
                         learning_rate_start=2e-3, learning_rate_end=2e-3, **choices)
    features, target = rendered_batch(config, config.batch_size)
    with tf.Graph().as_default():
        tf.set_random_seed(0)
        spec = model_fn_builder(config)(
            {k: tf.constant(v) for k, v in features.items()}, tf.constant(target),
            tf.estimator.ModeKeys.TRAIN, {"batch_size": config.batch_size},
            tf.estimator.tpu.RunConfig(model_dir="/tmp/unused"))
        mse = spec.host_call[1]["reconstruction_mse"][0]
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            first = np.mean([session.run(mse) for _ in range(5)])
            for _ in range(300):
                session.run(spec.train_op)
            last = np.mean([session.run(mse) for _ in range(5)])
    print(f"reconstruction MSE {first:.4f} -> {last:.4f}")
    assert last < 0.5 * first, (first, last)
