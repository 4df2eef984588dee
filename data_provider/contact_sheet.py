"""A preview of converted scenes, so a person can check the poses by eye.

One row per scene: the cameras seen from above and from the side, each a
numbered arrow (position, viewing direction in DeepMind's convention, see
gqn.poses), with the scene's 3-D points as grey dots where structure from
motion gave some, then the converted views with the same number and colour.
A photo paired with the wrong pose shows up as a view whose content does not
match where its arrow stands.
"""
import colorsys
import dataclasses
from typing import Optional

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from gqn.poses import viewing_direction

THUMBNAIL = 128  # views are enlarged (nearest neighbour) to about this size
MAX_VIEWS_PER_LINE = 10
MAP_SIZE = 220
MARGIN = 8
TITLE_HEIGHT = 22
CAPTION_HEIGHT = 16
BACKGROUND = (250, 250, 247)
INK = (40, 40, 40)
POINT_INK = (150, 150, 150)
MAX_POINTS_DRAWN = 4000


@dataclasses.dataclass
class SheetRow:
    """One scene of the sheet: uint8 (S, S, 3) views with raw (V, 5) poses
    in the GQN frame, optional (P, 3) scene points in that frame, and an
    optional second title line (what the cameras' intrinsics are)."""
    title: str
    views: list
    poses: np.ndarray
    points: Optional[np.ndarray] = None
    subtitle: Optional[str] = None


def view_colour(index, count):
    red, green, blue = colorsys.hsv_to_rgb(index / count, 0.8, 0.8)
    return int(red * 255), int(green * 255), int(blue * 255)


def draw_contact_sheet(rows):
    """PIL image of a list of SheetRow."""
    frame_size = rows[0].views[0].shape[0]
    zoom = max(1, THUMBNAIL // frame_size)
    thumb = frame_size * zoom
    per_line = min(MAX_VIEWS_PER_LINE, max(len(row.views) for row in rows))
    lines = [-(-len(row.views) // per_line) for row in rows]
    views_height = [n * (thumb + CAPTION_HEIGHT + MARGIN) for n in lines]
    titles = [TITLE_HEIGHT * (2 if row.subtitle else 1) for row in rows]
    heights = [title + max(MAP_SIZE + CAPTION_HEIGHT, h) + MARGIN
               for title, h in zip(titles, views_height)]
    width = MARGIN + 2 * (MAP_SIZE + MARGIN) + per_line * (thumb + MARGIN)
    sheet = Image.new("RGB", (width, MARGIN + sum(heights)), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=13)
    top = MARGIN
    for row, height, title_height in zip(rows, heights, titles):
        draw.text((MARGIN, top + 3), row.title, fill=INK, font=font)
        if row.subtitle:
            draw.text((MARGIN, top + TITLE_HEIGHT + 1), row.subtitle, fill=INK, font=font)
        body = top + title_height
        poses = np.asarray(row.poses, np.float64)
        extent = _extent(poses)
        _draw_map(draw, font, (MARGIN, body), poses, row.points, extent, axes=(0, 1),
                  caption="from above (x right, y up)")
        _draw_map(draw, font, (2 * MARGIN + MAP_SIZE, body), poses, row.points, extent,
                  axes=(0, 2), caption="from the side (x right, z up)")
        views_left = 3 * MARGIN + 2 * MAP_SIZE
        for index, view in enumerate(row.views):
            line, column = divmod(index, per_line)
            left = views_left + column * (thumb + MARGIN)
            view_top = body + line * (thumb + CAPTION_HEIGHT + MARGIN)
            image = Image.fromarray(view).resize((thumb, thumb), Image.Resampling.NEAREST)
            sheet.paste(image, (left, view_top))
            colour = view_colour(index, len(row.views))
            draw.rectangle((left, view_top, left + 20, view_top + 16), fill=colour)
            draw.text((left + 3, view_top + 1), str(index + 1), fill="white", font=font)
            _, _, _, yaw, pitch = poses[index]
            draw.text((left, view_top + thumb + 2),
                      f"yaw {np.degrees(yaw):.0f}\N{DEGREE SIGN} pitch "
                      f"{np.degrees(pitch):+.0f}\N{DEGREE SIGN}", fill=INK, font=font)
        top += height
    return sheet


def _extent(poses):
    """Half-width of the world square both maps show: the cameras and the
    origin, with a margin."""
    return max(float(np.abs(poses[:, :3]).max()), 1e-6) * 1.25


def _draw_map(draw, font, origin, poses, points, extent, axes, caption):
    """Cameras projected on two world axes; arrow = viewing direction."""
    left, top = origin
    draw.rectangle((left, top, left + MAP_SIZE, top + MAP_SIZE), fill="white",
                   outline=(190, 190, 190))
    centre = np.array([left + MAP_SIZE / 2, top + MAP_SIZE / 2])
    scale = 0.5 * MAP_SIZE / extent
    first, second = axes

    def to_screen(world):
        return centre + scale * np.stack([world[..., first], -world[..., second]], -1)

    if points is not None and len(points):
        shown = np.asarray(points, np.float64)
        shown = shown[np.all(np.abs(shown) < extent, axis=1)]
        step = max(1, len(shown) // MAX_POINTS_DRAWN)
        for x, y in to_screen(shown[::step]):
            draw.point((x, y), fill=POINT_INK)
    draw.ellipse((*(centre - 4), *(centre + 4)), outline=(170, 170, 170))
    draw.text((left, top + MAP_SIZE + 2), caption, fill=INK, font=font)
    directions = viewing_direction(poses[:, 3], poses[:, 4])
    arrow = 0.14 * MAP_SIZE
    for index, (pose, direction) in enumerate(zip(poses, directions)):
        colour = view_colour(index, len(poses))
        start = to_screen(pose[:3])
        screen_direction = np.array([direction[first], -direction[second]])
        length = np.linalg.norm(screen_direction)
        if length < 1e-6:  # looking straight along the hidden axis
            draw.ellipse((*(start - 4), *(start + 4)), outline=colour, width=2)
            continue
        screen_direction /= length
        tip = start + arrow * length * screen_direction
        draw.line((*start, *tip), fill=colour, width=3)
        side = np.array([-screen_direction[1], screen_direction[0]])
        head = [tuple(tip + 9 * screen_direction), tuple(tip + 6 * side),
                tuple(tip - 6 * side)]
        draw.polygon(head, fill=colour)
        draw.text(tuple(start - 14 * screen_direction), str(index + 1), fill=colour,
                  font=font, anchor="mm")
