#!/usr/bin/python3
"""Writes the synthetic test images (rendered text and shapes) used by the goldens.

Deterministic PIL drawing only; PNGs stay a few KB each.
"""
import os
import sys

from PIL import Image, ImageDraw, ImageFont

IMAGES = {
    "square-448.png": (448, 448),
    "wide-700x500.png": (700, 500),
    "tall-300x1200.png": (300, 1200),
    "small-37x23.png": (37, 23),
}


def draw(w, h, seed):
    img = Image.new("RGB", (w, h), (245, 242, 230))
    d = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    s = max(1, min(w, h) // 8)
    # Shapes in a few flat colours; positions scale with the canvas.
    d.ellipse((w // 10, h // 10, w // 10 + 2 * s, h // 10 + 2 * s), fill=(200, 30, 40))
    d.rectangle((w // 2, h // 6, w // 2 + 2 * s, h // 6 + int(1.5 * s)), fill=(30, 60, 190))
    d.polygon([(w // 5, h - h // 8), (w // 5 + 2 * s, h - h // 8), (w // 5 + s, h - h // 8 - 2 * s)],
              fill=(40, 160, 60))
    d.line((0, h // 2, w, h // 2 + seed * 7 % max(1, h // 4)), fill=(20, 20, 20), width=max(1, s // 6))
    lines = ["OPEN 9-5", "TOTAL 42.50", "monostream"]
    for k, text in enumerate(lines):
        d.text((w // 12, h // 3 + k * max(12, h // 10)), text, fill=(10, 10, 10), font=font)
    return img


def main():
    root = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    out = os.path.join(root, "model-operator/src/test/resources/images")
    os.makedirs(out, exist_ok=True)
    for k, (name, (w, h)) in enumerate(IMAGES.items()):
        path = os.path.join(out, name)
        draw(w, h, k + 1).save(path, optimize=True)
        print(f"{path} ({os.path.getsize(path)} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
