"""visual_effects' layouts: a photo with a caption box is no picture-in-picture; a real inset is."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import analyze, encode_frames, make_media
from PIL import Image, ImageDraw, ImageFont
from transition_clips import H, W, pictures, window


def captioned(picture: np.ndarray, text: str, box: tuple[int, int, int, int], fill, ink) -> np.ndarray:
    img = Image.fromarray(picture.astype(np.uint8))
    draw = ImageDraw.Draw(img)
    draw.rectangle(box, fill=fill)
    font = ImageFont.load_default(size=14)
    x0, y0, x1, y1 = box
    for line, y in zip(text.split("\n"), range(y0 + 6, y1 - 10, 18)):
        draw.text((x0 + 8, y), line, fill=ink, font=font)
    return np.asarray(img)


@pytest.mark.parametrize("fill, ink", [((255, 255, 255), (0, 0, 0)), ((20, 20, 20), (255, 230, 0))])
def test_photo_with_caption_is_no_picture_in_picture(tmp_path, settings, fill, ink):
    pics = pictures()
    frames = [captioned(window(pics[1], 260 + k, 300), "Kaffee am Morgen\nso fängt der Tag an\nmorning coffee",
                        (20, 200, 160, 262), fill, ink) for k in range(45)]
    media = make_media(encode_frames(tmp_path / "caption.mp4", frames, fps=15), tmp_path, video_id="caption")
    effects, _ = analyze("visual_effects", media, settings)
    assert not [e for e in effects if e["kind"] == "picture_in_picture"], effects


@pytest.mark.parametrize("background", [(255, 255, 255), (0, 0, 0), (40, 90, 160)])
def test_framed_photo_with_caption_on_a_plain_background_is_no_picture_in_picture(tmp_path, settings, background):
    """The usual photo post: one photo on a flat background, a caption above it."""
    pics = pictures()
    frames = []
    for k in range(45):
        frame = np.empty((H, W, 3), np.uint8)
        frame[:] = background
        photo = np.asarray(Image.fromarray(window(pics[3], 300 + k, 350).astype(np.uint8)).resize((100, 110)))
        frame[120:230, 40:140] = photo
        ink = (0, 0, 0) if sum(background) > 380 else (255, 255, 255)
        frames.append(captioned(frame, "Urlaub 2024\nbest trip ever", (10, 60, 170, 110), background, ink))
    media = make_media(encode_frames(tmp_path / "framed.mp4", frames, fps=15), tmp_path, video_id="framed")
    effects, _ = analyze("visual_effects", media, settings)
    assert not [e for e in effects if e["kind"] in ("picture_in_picture", "split_screen")], effects


def test_picture_inset_is_still_found(tmp_path, settings):
    pics = pictures()
    frames = []
    for k in range(45):
        frame = window(pics[0], 300 + k, 400).astype(np.uint8)
        inset = window(pics[2], 250, 300 - k, zoom=2.0)[: H // 3 : 2, : W // 2 : 2].astype(np.uint8)
        inset = np.asarray(Image.fromarray(np.ascontiguousarray(window(pics[2], 250, 300 - k).astype(np.uint8)))
                           .resize((W // 2, H // 4)))
        frame = frame.copy()
        frame[30 : 30 + H // 4, 70 : 70 + W // 2] = inset
        frames.append(frame)
    media = make_media(encode_frames(tmp_path / "inset.mp4", frames, fps=15), tmp_path, video_id="inset")
    effects, _ = analyze("visual_effects", media, settings)
    boxes = [e for e in effects if e["kind"] == "picture_in_picture"]
    assert len(boxes) == 1, effects
    x0, y0, x1, y1 = boxes[0]["region"]
    assert x0 == pytest.approx(70 / W, abs=0.05) and x1 == pytest.approx((70 + W // 2) / W, abs=0.05)
    assert y0 == pytest.approx(30 / H, abs=0.05) and y1 == pytest.approx((30 + H // 4) / H, abs=0.05)
