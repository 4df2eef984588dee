"""Video clips as captures (data_provider.video_source), on clips this test
writes with PyAV: a walk round a generated textured still life
(data_provider.generated_captures), encoded as H.264 the way phones store
clips. The walk converts end to end with structure from motion and every
kept frame's camera matches the truth; the kept frames are spread over the
clip and sharp; a clip the phone marked as rotated comes out upright; a
missing decoder, a corrupt clip and a truncated one are refused with
nothing written."""
import sys

import numpy as np
import pytest

av = pytest.importorskip("av", reason="video tests need PyAV, the optional 'video' "
                                      "extra: pip install '.[video]'")

from data_provider import generated_captures, video_source  # noqa: E402
from data_provider.camera_poses.frame import similarity_fit  # noqa: E402
from data_provider.fruit_stills import ConversionOptions, convert  # noqa: E402
from data_provider.photo_source import InputError  # noqa: E402
from gqn.poses import viewing_direction  # noqa: E402
from tests.test_convert_fruit_stills import assert_nothing_written, read_records  # noqa: E402

CLIP_FRAMES = 24
KEPT = 12
SIZE = (320, 240)


@pytest.fixture(scope="module")
def walk(tmp_path_factory):
    """(frames uint8 (24, 240, 320, 3), raw poses, clip path) of a full walk
    round still life 1, 15 degrees between frames."""
    frames, poses = generated_captures.video_frames(1, CLIP_FRAMES, size=SIZE)
    path = tmp_path_factory.mktemp("video") / "walk.mp4"
    generated_captures.write_video(path, frames)
    return frames, poses, path


def test_the_sharpest_frame_of_each_stretch_is_kept(walk, tmp_path):
    """12 of 24 frames: one from each stretch of two. Blurring the frame
    each stretch gave makes it give its other frame instead."""
    frames, _, path = walk
    chosen, total = video_source.choose_frames(str(path), KEPT)
    indices = [index for index, _ in chosen]
    assert total == CLIP_FRAMES
    assert [index // 2 for index in indices] == list(range(KEPT))
    for index, pixels in chosen:  # decoded, upright, the frame it says
        assert np.abs(pixels.astype(float) - frames[index]).mean() < 4
    blurred = frames.copy()
    for index in indices:
        blurred[index] = generated_captures.blur(frames[index])
    generated_captures.write_video(tmp_path / "blurred.mp4", blurred)
    rechosen, _ = video_source.choose_frames(str(tmp_path / "blurred.mp4"), KEPT)
    assert [index for index, _ in rechosen] == [index ^ 1 for index in indices]


def test_a_clip_the_phone_marked_as_turned_comes_out_upright(walk, tmp_path):
    """A phone held upright stores landscape pixels and a display matrix of
    -90 degrees (turn clockwise to show): the kept frames are the portrait
    views."""
    frames, _, _ = walk
    portrait = np.ascontiguousarray(frames[:6, :, 70:250])  # 180 wide, 240 tall
    stored = np.ascontiguousarray(np.rot90(portrait, k=1, axes=(1, 2)))  # 240 x 180
    path = tmp_path / "portrait.mov"
    generated_captures.write_video(path, stored, display_rotation=-90)
    with av.open(str(path)) as container:
        first = next(container.decode(video=0))
        assert (first.width, first.height, first.rotation) == (240, 180, -90)
    chosen, _ = video_source.choose_frames(str(path), 3)
    for index, pixels in chosen:
        assert pixels.shape == portrait.shape[1:]
        assert np.abs(pixels.astype(float) - portrait[index]).mean() < 4
        assert np.abs(pixels.astype(float) - portrait[index][::-1, ::-1]).mean() > 10


def test_a_walk_round_video_converts_with_every_kept_frame_posed(walk, tmp_path):
    """`--input walk.mp4` alone: structure from motion (implied) poses every
    kept frame, each within 2% of the walk's radius and 2 degrees of the
    truth after one similarity; the summary says what was kept and
    registered."""
    pytest.importorskip("pycolmap")
    _, poses, path = walk
    sfm_dir = tmp_path / "models"
    summary = convert(ConversionOptions(
        input_path=str(path), output_dir=str(tmp_path / "out"), name="walk", image_size=16,
        frames=KEPT, test_fraction=0.0, sfm_dir=str(sfm_dir), workers=1))
    [(frames, cameras)] = read_records(summary.output_path, "train")
    assert len(frames) == KEPT
    # The records hold the kept frames in time order (choose_frames is
    # deterministic).
    indices = [index for index, _ in video_source.choose_frames(str(path), KEPT)[0]]
    truth = poses[indices]
    scale, rotation, translation = similarity_fit(cameras[:, :3], truth[:, :3])
    mapped = scale * cameras[:, :3].astype(np.float64) @ rotation.T + translation
    assert np.linalg.norm(mapped - truth[:, :3], axis=1).max() < 0.02 * np.linalg.norm(
        truth[:, :2], axis=1).mean()
    directions = viewing_direction(cameras[:, 3], cameras[:, 4]) @ rotation.T
    cosines = np.sum(directions * viewing_direction(truth[:, 3], truth[:, 4]), axis=1)
    assert np.degrees(np.arccos(np.clip(cosines, -1, 1))).max() < 2
    text = summary.format()
    assert f"walk: {KEPT} of the clip's {CLIP_FRAMES} frames kept" in text
    assert f"walk: structure from motion registered {KEPT}/{KEPT} (100%)" in text


def test_without_pyav_the_error_names_the_extra(walk, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "av", None)  # import now fails
    options = ConversionOptions(input_path=str(walk[2]), output_dir=str(tmp_path / "out"))
    with pytest.raises(InputError, match=r"'video' extra \(PyAV.*pip install '\.\[video\]'"):
        convert(options)
    assert_nothing_written(options.output_dir)


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_corrupt_clip_is_refused_with_nothing_written(walk, tmp_path, damage):
    data = walk[2].read_bytes()
    path = tmp_path / "clips" / "broken.mp4"
    path.parent.mkdir()
    path.write_bytes(b"not a video " * 100 if damage == "garbage" else data[:len(data) // 2])
    options = ConversionOptions(input_path=str(path.parent), output_dir=str(tmp_path / "out"))
    with pytest.raises(InputError, match=r"broken\.mp4: (cannot decode the video|holds no "
                                         r"video stream)"):
        convert(options)
    assert_nothing_written(options.output_dir)


def test_video_options_are_checked(walk, tmp_path):
    for overrides, message in (({"frames": 1}, "--frames must be at least 2"),
                               ({"poses": "transforms"}, "is posed by structure from motion")):
        options = ConversionOptions(input_path=str(walk[2]),
                                    output_dir=str(tmp_path / "out"), **overrides)
        with pytest.raises(InputError, match=message):
            convert(options)
        assert_nothing_written(options.output_dir)
