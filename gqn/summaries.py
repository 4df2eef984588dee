"""TensorBoard summaries of training, written through TPUEstimator's
host_call: TPU-safe (no v1 tf.summary ops in the model_fn; the host writes
v2 summaries from tensors the step hands over), and the same on CPU/GPU and
under a strategy.
"""
import tensorflow.compat.v1 as tf
from tensorboard.plugins.image import metadata as image_metadata

NUM_DEBUG_IMAGES = 3


def _image_summary(name, images, step):
    """TensorBoard image summary of float [0, 1] images (B, H, W, 3).

    Written directly in the image plugin's format ([width, height, PNG...])
    because tf.summary.image leaves an unused assert op in graph mode, which
    TensorFlow reports as an error at every graph teardown.
    """
    height, width = images.shape.as_list()[1:3]
    pixels = tf.image.convert_image_dtype(images, tf.uint8, saturate=True)
    pngs = [tf.image.encode_png(pixels[i]) for i in range(images.shape[0])]
    tensor = tf.stack([tf.as_string(width), tf.as_string(height)] + pngs)
    tf.compat.v2.summary.write(name, tensor, step=step,
                               metadata=image_metadata.create_summary_metadata(
                                   display_name=name, description=None))


def host_call(model_dir, global_step, scalars, images, every_n_steps):
    """host_call writing `scalars` (float32 scalars) and `images` into
    `model_dir` every `every_n_steps`. All its tensors get a leading
    dimension (TPU concatenates them over cores; scalars are averaged)."""
    def host_call_fn(global_step, **tensors):
        step = global_step[0]
        writer = tf.compat.v2.summary.create_file_writer(model_dir)
        with writer.as_default(), tf.compat.v2.summary.record_if(
                tf.equal(step % every_n_steps, 0)):
            for name in scalars:
                tf.compat.v2.summary.scalar(name, tf.reduce_mean(tensors[name]),
                                            step=step)
            for name in images:
                _image_summary(name, tensors[name], step)
            return tf.summary.all_v2_summary_ops()

    tensors = {"global_step": tf.reshape(global_step, [1])}
    tensors.update({name: tf.reshape(value, [1]) for name, value in scalars.items()})
    tensors.update(images)
    return host_call_fn, tensors


def silent_host_call(tensors):
    """A host_call of the same shape that writes nothing: for every replica
    but the first under a strategy (Estimator runs the first replica's hooks
    only, and one writer per model_dir keeps one event series)."""
    def host_call_fn(**_):
        return tf.no_op()
    return host_call_fn, tensors


def debug_images(target, reconstruction, generated, generate, global_step,
                 every_n_steps):
    """The first examples' target, reconstruction and prior generation, for
    --debug. `generated` is a generation the step made anyway (the
    discriminator's), else None: `generate()` then makes one, on the steps
    whose summaries are written only."""
    shown = slice(0, NUM_DEBUG_IMAGES)
    if generated is not None:
        generation = generated[shown]
    else:
        generation = tf.cond(tf.equal(global_step % every_n_steps, 0),
                             lambda: generate()[shown],
                             lambda: tf.zeros_like(target[shown]))
    return {"target": target[shown], "reconstruction": reconstruction[shown],
            "generation": generation}
