"""objective.sharpness: generated over true mean |image gradient|."""
import numpy as np
import tensorflow.compat.v1 as tf

from gqn import objective


def _sharpness(target, image):
    with tf.Graph().as_default(), tf.Session() as session:
        return session.run(objective.sharpness(tf.constant(target), tf.constant(image)))


def _box_blur(images):
    """3x3 box blur with edge padding, per channel."""
    padded = np.pad(images, [(0, 0), (1, 1), (1, 1), (0, 0)], mode="edge")
    height, width = images.shape[1:3]
    return np.mean([padded[:, row:row + height, col:col + width]
                    for row in range(3) for col in range(3)], axis=0)


def test_an_image_is_as_sharp_as_itself_and_a_blur_is_not():
    images = np.random.RandomState(0).rand(3, 16, 16, 3).astype(np.float32)
    itself = _sharpness(images, images)
    assert itself.shape == (3,)
    np.testing.assert_allclose(itself, 1.0, rtol=1e-6)
    blurred = _sharpness(images, _box_blur(images))
    assert blurred.shape == (3,)
    assert np.all(blurred < 0.8), blurred
    assert np.all(blurred > 0), blurred


def test_a_flat_image_scores_zero_and_a_flat_target_is_not_a_nan():
    images = np.random.RandomState(1).rand(2, 8, 8, 3).astype(np.float32)
    flat = np.full_like(images, 0.4)
    np.testing.assert_array_equal(_sharpness(images, flat), [0.0, 0.0])
    np.testing.assert_array_equal(_sharpness(flat, images), [0.0, 0.0])


def test_sharpness_is_per_example_and_measures_both_directions():
    """Stripes across x or across y are half as sharp as a checkerboard of
    the same contrast: each changes in one direction only."""
    x = np.arange(8)
    vertical_stripes = np.broadcast_to((x % 2)[None, :, None], (8, 8, 3))
    horizontal_stripes = np.broadcast_to((x % 2)[:, None, None], (8, 8, 3))
    checkerboard = np.broadcast_to(((x[:, None] + x[None, :]) % 2)[..., None], (8, 8, 3))
    target = np.stack([checkerboard, checkerboard]).astype(np.float32)
    image = np.stack([vertical_stripes, horizontal_stripes]).astype(np.float32)
    np.testing.assert_allclose(_sharpness(target, image), [0.5, 0.5], rtol=1e-6)


def test_image_metrics_report_sharpness():
    images = np.random.RandomState(2).rand(2, 16, 16, 3).astype(np.float32)
    with tf.Graph().as_default(), tf.Session() as session:
        metrics = session.run(objective.image_metrics(tf.constant(images),
                                                      tf.constant(_box_blur(images))))
    assert metrics["sharpness"].shape == (2,)
    assert np.all(metrics["sharpness"] < 0.8)
