"""Child process of tests/test_distribution.py (it needs TF2 behaviour,
which importing gqn switches off in the test process): lowers the whole
TRAIN step of the model_fn - forward, loss, gradients and the Adam update -
at a static batch to XLA HLO through the TF->XLA bridge, the step a TPU
compiles, without running it, and prints a JSON summary.

    python -m tests.xla_train_step PRESET BATCH_SIZE
"""
import json
import re
import sys
import time

import tensorflow as tf2

import gqn  # noqa: F401  (switches to graph mode; undone below)

tf2.compat.v1.enable_v2_behavior()

import tensorflow.compat.v1 as tf  # noqa: E402

from gqn.config import preset  # noqa: E402
from gqn.model import (CONTEXT_FIELD_OF_VIEW_KEY, DEPTH_RANGE_KEY,  # noqa: E402
                       FEATURE_KEYS, QUERY_FIELD_OF_VIEW_KEY)
from gqn.model_fn import model_fn_builder  # noqa: E402


def main(preset_name, batch_size):
    config = preset(preset_name, batch_size=batch_size)
    views, size, pose = config.context_size, config.image_size, config.pose_dim
    shapes = {"context_frames": [batch_size, views, size, size, 3],
              "context_poses": [batch_size, views, pose],
              "query_pose": [batch_size, pose],
              CONTEXT_FIELD_OF_VIEW_KEY: [batch_size, views],
              QUERY_FIELD_OF_VIEW_KEY: [batch_size],
              DEPTH_RANGE_KEY: [batch_size, 2]}
    specs = ([tf2.TensorSpec([batch_size, size, size, 3])]
             + [tf2.TensorSpec(shapes[key]) for key in FEATURE_KEYS])

    def train_step(target, *values):
        features = dict(zip(FEATURE_KEYS, values))
        spec = model_fn_builder(config)(
            features, target, tf.estimator.ModeKeys.TRAIN,
            {"batch_size": batch_size},
            tf.estimator.tpu.RunConfig(model_dir="/tmp/unused"))
        with tf.control_dependencies([spec.train_op]):
            return tf.identity(spec.loss)

    # wrap_function keeps the v1 variable creation of the model (it lifts the
    # variables out); jit_compile makes the whole step one XLA cluster.
    step = tf.wrap_function(train_step, specs)
    compiled = tf2.function(lambda *inputs: step(*inputs), jit_compile=True)
    start = time.time()
    hlo = compiled.experimental_get_compiler_ir(
        *[tf2.ones(spec.shape) for spec in specs])(stage="hlo")
    print(json.dumps({
        "seconds": time.time() - start,
        "variables": len(step.variables),
        "trainable": len(step.graph.get_collection(tf.GraphKeys.TRAINABLE_VARIABLES)),
        "hlo_chars": len(hlo),
        "convolutions": hlo.count("convolution("),
        "adam_updates": hlo.count("ApplyAdam"),
        "shapes": sorted(set(re.findall(r"f32\[[0-9,]*\]", hlo))),
    }))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
