"""Draw a folder of coloured shapes to train on: circles, squares and triangles in six colours, one sub-folder per
shape, with random position, size and a dim background tint.

    python examples/draw_shapes.py data/shapes --n 6000 --size 64
    vae-hub train --dataset data/shapes --model conv --likelihood gaussian --learn-std --epochs 30 ...
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle")
COLOURS = [(230, 40, 40), (40, 200, 60), (50, 80, 240), (240, 220, 40), (230, 60, 230), (40, 220, 230)]


def draw(shape: str, size: int, rng: random.Random) -> Image.Image:
    background = tuple(rng.randrange(0, 50) for _ in range(3))
    image = Image.new("RGB", (size, size), background)
    r = rng.uniform(0.18, 0.34) * size
    cx, cy = rng.uniform(r, size - r), rng.uniform(r, size - r)
    colour = rng.choice(COLOURS)
    pen = ImageDraw.Draw(image)
    if shape == "circle":
        pen.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
    elif shape == "square":
        pen.rectangle((cx - r, cy - r, cx + r, cy + r), fill=colour)
    else:
        pen.polygon([(cx, cy - r), (cx - r, cy + r * 0.8), (cx + r, cy + r * 0.8)], fill=colour)
    return image


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", type=Path, help="where to write <shape>/<n>.png")
    p.add_argument("--n", type=int, default=6000, help="pictures in all")
    p.add_argument("--size", type=int, default=64, help="side in pixels")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    rng = random.Random(args.seed)
    for shape in SHAPES:
        (args.folder / shape).mkdir(parents=True, exist_ok=True)
    for i in range(args.n):
        shape = SHAPES[i % len(SHAPES)]
        draw(shape, args.size, rng).save(args.folder / shape / f"{i:05d}.png")
    print(f"wrote {args.n} pictures of {args.size}x{args.size} to {args.folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
