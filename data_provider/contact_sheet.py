"""A preview of converted scenes, so a person can check the pairing by eye.

One row per scene: a top-down map with each camera drawn as a numbered arrow
(position, looking along its yaw), then the converted views with the same
number and colour. A photo paired with the wrong pose shows up as a view whose
content does not match where its arrow stands.
"""
import colorsys

import numpy as np
from PIL import Image, ImageDraw, ImageFont

THUMBNAIL = 128  # views are enlarged (nearest neighbour) to about this size
MAP_SIZE = 220
MARGIN = 8
TITLE_HEIGHT = 22
CAPTION_HEIGHT = 16
BACKGROUND = (250, 250, 247)
INK = (40, 40, 40)


def view_colour(index, count):
    red, green, blue = colorsys.hsv_to_rgb(index / count, 0.8, 0.8)
    return int(red * 255), int(green * 255), int(blue * 255)


def draw_contact_sheet(scenes):
    """PIL image for [(title, [uint8 (S, S, 3) views], raw poses (V, 5))]."""
    frame_size = scenes[0][1][0].shape[0]
    zoom = max(1, THUMBNAIL // frame_size)
    thumb = frame_size * zoom
    max_views = max(len(views) for _, views, _ in scenes)
    row_height = TITLE_HEIGHT + max(MAP_SIZE, thumb) + CAPTION_HEIGHT + MARGIN
    width = MARGIN + MAP_SIZE + MARGIN + max_views * (thumb + MARGIN)
    sheet = Image.new("RGB", (width, MARGIN + row_height * len(scenes)), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=13)
    for row, (title, views, poses) in enumerate(scenes):
        top = MARGIN + row * row_height
        draw.text((MARGIN, top + 3), title, fill=INK, font=font)
        top += TITLE_HEIGHT
        _draw_map(draw, font, (MARGIN, top), poses)
        for index, view in enumerate(views):
            left = 2 * MARGIN + MAP_SIZE + index * (thumb + MARGIN)
            image = Image.fromarray(view).resize((thumb, thumb), Image.Resampling.NEAREST)
            sheet.paste(image, (left, top))
            colour = view_colour(index, len(views))
            draw.rectangle((left, top, left + 20, top + 16), fill=colour)
            draw.text((left + 3, top + 1), str(index + 1), fill="white", font=font)
            x, y, _, yaw, _ = poses[index]
            draw.text((left, top + thumb + 2),
                      f"({x:+.2f}, {y:+.2f}) {np.degrees(yaw):+.0f}\N{DEGREE SIGN}",
                      fill=INK, font=font)
    return sheet


def _draw_map(draw, font, origin, poses):
    """Cameras seen from above: x to the right, y up, arrow = viewing direction."""
    left, top = origin
    draw.rectangle((left, top, left + MAP_SIZE, top + MAP_SIZE), fill="white",
                   outline=(190, 190, 190))
    centre = np.array([left + MAP_SIZE / 2, top + MAP_SIZE / 2])
    extent = max(float(np.abs(poses[:, :2]).max()), 1e-6)
    scale = 0.36 * MAP_SIZE / extent  # positions reach 36% of the width out
    arrow = 0.14 * MAP_SIZE
    draw.ellipse((*(centre - 10), *(centre + 10)), outline=(170, 170, 170))
    draw.text((left, top + MAP_SIZE + 2), "top view (x right, y up), arrow = view direction",
              fill=INK, font=font)
    for index, (x, y, _, yaw, _) in enumerate(poses):
        colour = view_colour(index, len(poses))
        start = centre + scale * np.array([x, -y])
        direction = np.array([np.cos(yaw), -np.sin(yaw)])
        tip = start + arrow * direction
        draw.line((*start, *tip), fill=colour, width=3)
        side = np.array([-direction[1], direction[0]])
        head = [tuple(tip + 9 * direction), tuple(tip + 6 * side), tuple(tip - 6 * side)]
        draw.polygon(head, fill=colour)
        label = start - 14 * direction
        draw.text(tuple(label), str(index + 1), fill=colour, font=font, anchor="mm")
