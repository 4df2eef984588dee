"""Child process of tests/test_distribution.py (it needs TF2 behaviour,
which the test process switches off): lowers a whole step of the model_fn
at a static batch to XLA HLO through the TF->XLA bridge, the computation a
TPU compiles, without running it, and prints a JSON summary.

- train: forward, loss, gradients and the Adam update;
- eval: the reconstruction's ELBO terms, the prior's generation and every
  per-example eval metric, with object masks (the fruit metrics): what the
  TPU computes before eval_metrics' metric_fn takes the means on the host.

    python -m tests.xla_step PRESET BATCH_SIZE {train,eval}
"""
import json
import re
import sys
import time

import tensorflow as tf2
import tensorflow.compat.v1 as tf

from gqn.config import preset
from gqn.model import (CONTEXT_FIELD_OF_VIEW_KEY, DEPTH_RANGE_KEY, FEATURE_KEYS,
                       QUERY_FIELD_OF_VIEW_KEY, TARGET_MASK_KEY)
from gqn.model_fn import model_fn_builder


def main(preset_name, batch_size, mode):
    config = preset(preset_name, batch_size=batch_size)
    views, size, pose = config.context_size, config.image_size, config.pose_dim
    shapes = {"context_frames": [batch_size, views, size, size, 3],
              "context_poses": [batch_size, views, pose],
              "query_pose": [batch_size, pose],
              CONTEXT_FIELD_OF_VIEW_KEY: [batch_size, views],
              QUERY_FIELD_OF_VIEW_KEY: [batch_size],
              DEPTH_RANGE_KEY: [batch_size, 2]}
    specs = ([tf2.TensorSpec([batch_size, size, size, 3]),
              tf2.TensorSpec([batch_size, size, size, 1])]
             + [tf2.TensorSpec(shapes[key]) for key in FEATURE_KEYS])

    def step(target, mask, *values):
        features = dict(zip(FEATURE_KEYS, values))
        if mode == "eval":
            features[TARGET_MASK_KEY] = mask
        spec = model_fn_builder(config)(
            features, target,
            tf.estimator.ModeKeys.TRAIN if mode == "train" else tf.estimator.ModeKeys.EVAL,
            {"batch_size": batch_size},
            tf.estimator.tpu.RunConfig(model_dir="/tmp/unused"))
        if mode == "train":
            with tf.control_dependencies([spec.train_op]):
                return {"loss": tf.identity(spec.loss)}
        _, metrics = spec.eval_metrics
        return dict(metrics, loss=spec.loss)

    # wrap_function keeps the v1 variable creation of the model (it lifts the
    # variables out); jit_compile makes the whole step one XLA cluster.
    wrapped = tf.wrap_function(step, specs)
    compiled = tf2.function(lambda *inputs: wrapped(*inputs), jit_compile=True)
    start = time.time()
    hlo = compiled.experimental_get_compiler_ir(
        *[tf2.ones(spec.shape) for spec in specs])(stage="hlo")
    outputs = wrapped.structured_outputs
    print(json.dumps({
        "seconds": time.time() - start,
        "outputs": {name: tensor.shape.as_list() for name, tensor in outputs.items()},
        "variables": len(wrapped.variables),
        "trainable": len(wrapped.graph.get_collection(tf.GraphKeys.TRAINABLE_VARIABLES)),
        "hlo_chars": len(hlo),
        "convolutions": hlo.count("convolution("),
        "adam_updates": hlo.count("ApplyAdam"),
        # bounded dynamic dimensions print as [<=N]: none may appear
        "dynamic_shapes": sorted(set(re.findall(r"[a-z0-9]+\[[0-9,]*<=[0-9<=,]*\]", hlo))),
        "shapes": sorted(set(re.findall(r"f32\[[0-9,]*\]", hlo))),
    }))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
