"""Linear annealing of the learning rate and the pixel sigma from global_step.

The paper anneals both linearly and then holds them at the final value:
Adam lr 5e-4 -> 5e-5 over 1.6M steps, pixel sigma 2.0 -> 0.7 over 200K steps.
"""
import tensorflow.compat.v1 as tf


def linear_anneal(global_step, start, end, anneal_steps):
    """start at step 0, end at step `anneal_steps` and after, float32."""
    progress = tf.cast(global_step, tf.float32) / float(anneal_steps)
    progress = tf.clip_by_value(progress, 0.0, 1.0)
    return start + (end - start) * progress


def learning_rate(config, global_step):
    return linear_anneal(global_step, config.learning_rate_start,
                         config.learning_rate_end,
                         config.learning_rate_anneal_steps)


def pixel_sigma(config, global_step):
    return linear_anneal(global_step, config.sigma_start, config.sigma_end,
                         config.sigma_anneal_steps)
