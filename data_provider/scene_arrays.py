"""Scenes as NumPy arrays: a fixed, seeded set of test scenes for
evaluation and rendering (which look at whole scenes rather than stream
batches), the context each rendered pose takes from a scene's views, and
random arrays of a config's shapes for tests and benchmarks that need
inputs but not pictures."""
import numpy as np
import tensorflow.compat.v1 as tf

from data_provider.gqn_tfr_provider import gqn_input_fn
from gqn.model import CONTEXT_FIELD_OF_VIEW_KEY, DEPTH_RANGE_KEY, QUERY_FIELD_OF_VIEW_KEY
from gqn.poses import camera_distances_np, encode_poses_np

# A scene's views as rendering holds them: the per-view context features
# (poses raw, (M, 5)) and the scene's depth range.
SCENE_VIEW_KEYS = ("context_frames", "context_poses", CONTEXT_FIELD_OF_VIEW_KEY,
                   DEPTH_RANGE_KEY)
PER_VIEW_KEYS = SCENE_VIEW_KEYS[:3]


def load_scenes(dataset_name, root, context_size, num_scenes, image_size=None,
                seed=0, mode="test"):
    """Up to `num_scenes` examples of the reader, in a repeatable order.

    Returns {'context_frames' (N, M, H, W, 3), 'context_poses' (N, M, 7),
    'query_pose' (N, 7), 'target' (N, H, W, 3)}; N < num_scenes only when
    the split holds fewer scenes.
    """
    input_fn = gqn_input_fn(dataset_name, root, mode, context_size,
                            image_size=image_size, seed=seed, repeat=False)
    batches = []
    with tf.Graph().as_default():
        features, target = tf.data.make_one_shot_iterator(
            input_fn({"batch_size": 1})).get_next()
        with tf.Session() as session:
            for _ in range(num_scenes):
                try:
                    batches.append(session.run(dict(features, target=target)))
                except tf.errors.OutOfRangeError:
                    break
    if not batches:
        raise ValueError(f"no {mode} scenes in {root}/{dataset_name}")
    return {key: np.concatenate([batch[key] for batch in batches])
            for key in batches[0]}


def nearest_contexts(views, raw_poses, context_size):
    """Features of one example per raw query pose (N, 5): as context the
    `context_size` of a scene's `views` (SCENE_VIEW_KEYS) nearest to that
    pose by the reader's rule (gqn.poses.camera_distances), and as the query
    camera's field of view their mean."""
    distances = camera_distances_np(encode_poses_np(raw_poses),
                                    encode_poses_np(views["context_poses"]))
    chosen = np.argsort(distances, axis=1, kind="stable")[:, :context_size]
    features = {key: views[key][chosen] for key in PER_VIEW_KEYS}
    features[DEPTH_RANGE_KEY] = np.repeat(views[DEPTH_RANGE_KEY][None], len(raw_poses), 0)
    features["query_pose"] = np.asarray(raw_poses, np.float32)
    features[QUERY_FIELD_OF_VIEW_KEY] = features[CONTEXT_FIELD_OF_VIEW_KEY].mean(axis=1)
    return features


def random_inputs(config, num_examples, seed=0):
    """numpy (features, labels) of `config`'s shapes: frames and targets
    uniform in [0, 1], poses uniform in [-1, 1], fields of view of 35-55
    degrees, depth ranges of 0.5-3."""
    rng = np.random.RandomState(seed)
    size, views = config.image_size, config.context_size
    features = {
        "context_frames": rng.rand(num_examples, views, size, size, 3).astype(np.float32),
        "context_poses": rng.uniform(-1, 1, (num_examples, views, 7)).astype(np.float32),
        "query_pose": rng.uniform(-1, 1, (num_examples, 7)).astype(np.float32),
        CONTEXT_FIELD_OF_VIEW_KEY: rng.uniform(0.6, 1.0, (num_examples, views)
                                               ).astype(np.float32),
        QUERY_FIELD_OF_VIEW_KEY: rng.uniform(0.6, 1.0, num_examples).astype(np.float32),
        DEPTH_RANGE_KEY: np.tile(np.float32([[0.5, 3.0]]), [num_examples, 1]),
    }
    labels = rng.rand(num_examples, size, size, 3).astype(np.float32)
    return features, labels
