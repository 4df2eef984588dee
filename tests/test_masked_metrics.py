"""Error on the object and on the rest apart: masked MSE/PSNR give known
answers on known images, and evaluation reports them where the scenes carry
object masks."""
import numpy as np
import tensorflow.compat.v1 as tf

from gqn import evaluation, objective


def masked(target, image, mask):
    with tf.Graph().as_default(), tf.Session() as session:
        return session.run(objective.masked_image_metrics(target, image, mask))


def test_masked_psnr_counts_only_the_masked_pixels_and_the_background_the_rest():
    target = np.zeros([3, 8, 8, 3], np.float32)
    image = np.full_like(target, 0.5)  # 6 dB everywhere...
    image[:, 2:4, 2:4] = 0.1  # ...but 20 dB on the object
    mask = np.zeros([3, 8, 8, 1], np.float32)
    mask[:, 2:4, 2:4] = 1.0
    mask[2] = 0.0  # no object in view
    result = masked(target, image, mask)
    np.testing.assert_allclose(result["fruit_mse"][:2], 0.01, rtol=1e-5)
    np.testing.assert_allclose(result["fruit_psnr"][:2], 20.0, rtol=1e-5)
    assert np.isnan(result["fruit_mse"][2]) and np.isnan(result["fruit_psnr"][2])
    # the rest of the image: an error of 0.5 (6 dB); where no object is in
    # view, the whole frame, the object's pixels too
    np.testing.assert_allclose(result["background_mse"][:2], 0.25, rtol=1e-5)
    np.testing.assert_allclose(result["background_psnr"][:2], 10 * np.log10(4), rtol=1e-5)
    np.testing.assert_allclose(result["background_mse"][2], (60 * 0.25 + 4 * 0.01) / 64,
                               rtol=1e-5)
    everywhere = masked(target[:1], image[:1], np.ones_like(mask[:1]))
    assert np.isnan(everywhere["background_mse"][0])
    # Soft masks weight each pixel: half weight on an error of 0.5 and full
    # weight on 0.1 gives (0.5 * 0.25 + 0.01) / 1.5.
    soft = mask[:1].copy()
    soft[0, 0, 0] = 0.5
    soft_result = masked(target[:1], image[:1], soft)
    np.testing.assert_allclose(soft_result["fruit_mse"],
                               (0.5 * 0.25 + 4 * 0.01) / 4.5, rtol=1e-5)
    # ...and the background the other half of that pixel
    np.testing.assert_allclose(soft_result["background_mse"], 0.25, rtol=1e-5)


def test_evaluation_reports_fruit_metrics_for_the_baselines_and_skips_empty_views():
    rng = np.random.RandomState(0)
    target = rng.rand(4, 8, 8, 3).astype(np.float32)
    near_target = np.clip(target + rng.normal(0, 0.001, target.shape), 0, 1)
    scenes = {"context_frames": np.repeat(near_target[:, None], 2, axis=1).astype(np.float32),
              "context_poses": rng.rand(4, 2, 7).astype(np.float32),
              "query_pose": rng.rand(4, 7).astype(np.float32), "target": target,
              "target_mask": np.ones([4, 8, 8, 1], np.float32),
              "context_field_of_view": np.full([4, 2], 0.8, np.float32),
              "query_field_of_view": np.full([4], 0.8, np.float32),
              "depth_range": np.tile(np.float32([[0.5, 3.0]]), [4, 1])}
    scenes["target_mask"][3] = 0.0
    baselines = evaluation.evaluate_baselines(scenes, evaluation.ImageMetrics(8))
    summary = evaluation.summarise(baselines["context_mean"])
    assert summary["fruit_psnr"]["mean"] > 50  # the context is the target, nearly
    assert np.isfinite(summary["fruit_mse"]["mean"])
    table = evaluation.format_table({"baseline: nearest_context": summary, "mean": summary})
    header, *rows = table.splitlines()
    # every column named apart and the rows aligned under the header
    assert {"fruit_psnr", "background_psnr", "background_mse"} <= set(header.split())
    assert {len(row) for row in rows} == {len(header)}
    del scenes["target_mask"]
    assert "fruit_psnr" not in evaluation.evaluate_baselines(
        scenes, evaluation.ImageMetrics(8))["context_mean"]
