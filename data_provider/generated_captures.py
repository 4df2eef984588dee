"""Generated captures with known cameras: a person walking once round a
textured still life (data_provider.synthetic), as photos or as a video clip.

Why: structure from motion and video conversion are measured and tested
against the truth, which a real capture has only for the apple. The camera
walks a circle round the fruit at a person's height, pitched down at it,
level (no roll), with optional wobble in height and distance as a hand
has; a video's frames are the walk sampled finely, encoded with PyAV (the
'video' extra) the way phones store clips, optionally with a rotation in
the stream's display matrix and with chosen frames blurred.
"""
import numpy as np

from data_provider import record_writer, synthetic
from gqn.poses import yaw_pitch_of

WALK_RADIUS = 1.0
WALK_HEIGHT = 0.7
AIM_Z = -0.2  # a little above the table top (-0.25), among the fruit


def walk_poses(count, turn=2 * np.pi, wobble=0.0, seed=0, closed=True):
    """Raw (count, 5) poses of a walk of `turn` radians round the origin,
    each camera looking at (0, 0, AIM_Z); `wobble` (share of the radius and
    height) moves each camera a little, smoothly along the walk. A closed
    walk does not repeat its first pose at the end."""
    steps = count if closed and turn >= 2 * np.pi else max(count - 1, 1)
    azimuth = np.pi + turn * np.arange(count) / steps
    rng = np.random.default_rng(seed)
    phases = rng.uniform(0, 2 * np.pi, 2)
    radius = WALK_RADIUS * (1 + wobble * np.sin(3 * azimuth + phases[0]))
    height = WALK_HEIGHT * (1 + wobble * np.sin(2 * azimuth + phases[1]))
    positions = np.stack([radius * np.cos(azimuth), radius * np.sin(azimuth), height], 1)
    yaw, pitch = yaw_pitch_of(np.array([0.0, 0.0, AIM_Z]) - positions)
    return np.concatenate([positions, yaw[:, None], pitch[:, None]], 1).astype(np.float32)


def still_life(seed):
    """The textured still life of `seed` (synthetic.still_life_scene)."""
    return synthetic.still_life_scene(np.random.default_rng(seed))


def photos(seed, count, size=(640, 480), wobble=0.05):
    """([(name, JPEG bytes)], raw poses) of a walk round still life `seed`."""
    poses = walk_poses(count, wobble=wobble, seed=seed)
    views = synthetic.render(still_life(seed), poses, *size, textured=True)
    return ([(f"IMG_{index + 1:04d}.jpg", record_writer.encode_jpeg(view, quality=90))
             for index, view in enumerate(views)], poses)


def blur(frame, passes=4):
    """A strongly blurred copy of a uint8 frame (repeated 5x5 box blurs)."""
    from PIL import Image, ImageFilter
    image = Image.fromarray(frame)
    for _ in range(passes):
        image = image.filter(ImageFilter.BoxBlur(2))
    return np.asarray(image)


def write_video(path, frames, fps=10, display_rotation=0):
    """Encodes uint8 (N, H, W, 3) frames as H.264 in an MP4/MOV at `fps`;
    `display_rotation` (degrees counter-clockwise, FFmpeg's display
    matrix, as phones write it: -90 for a phone held upright) tells players
    to turn the stored frames."""
    import av
    frames = np.asarray(frames)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "18", "preset": "veryfast"}
        if display_rotation:
            stream.set_display_rotation(display_rotation)
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def video_frames(seed, count, size=(320, 240), turn=2 * np.pi, wobble=0.05):
    """(uint8 (count, H, W, 3) frames, raw poses) of a walk filmed round
    still life `seed`."""
    poses = walk_poses(count, turn=turn, wobble=wobble, seed=seed)
    return synthetic.render(still_life(seed), poses, *size, textured=True), poses

