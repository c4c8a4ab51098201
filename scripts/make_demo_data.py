"""Make the embedded demo dataset: procedural label maps (A) and the "photos" they describe (B).

`--layout aligned` (default) saves each 256x256 pair side by side (A | B, 512x256), the pix2pix layout,
under `<out>/train/` and `<out>/test/`. `--layout unaligned` saves label maps and photos of *different*
scenes into `<out>/trainA`, `trainB`, `testA`, `testB`, the CycleGAN layout. `--layout single` saves the
photos alone under `<out>/train/` and `<out>/test/`: high-resolution images for super-resolution (SRGAN). A is a flat-coloured layout of rectangles and discs (like the facades
labels); B paints each shape with a lit gradient, a texture and a soft shadow, so the mapping A -> B is
learnable but not trivial. Deterministic for a given --seed; needs only numpy and Pillow.

    python scripts/make_demo_data.py --out datasets/demo_shapes
    python scripts/make_demo_data.py --out datasets/demo_shapes_unpaired --layout unaligned
    python scripts/make_demo_data.py --out datasets/demo_sr --layout single
"""
from __future__ import annotations

import argparse
import os
from typing import Tuple

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SIZE = 256
# Label colours (A) and the base colour each label is painted with (B).
CLASSES = [
    ((255, 0, 0), (176, 84, 60)),  # brick
    ((0, 0, 255), (70, 110, 170)),  # window
    ((0, 255, 0), (80, 140, 70)),  # foliage
    ((255, 255, 0), (215, 190, 120)),  # sandstone
    ((255, 0, 255), (120, 70, 120)),  # awning
]
BACKGROUND_LABEL, BACKGROUND_PHOTO = (0, 0, 0), (200, 205, 210)


def _shape(rng: np.random.Generator) -> Tuple[str, Tuple[int, int, int, int]]:
    kind = "disc" if rng.random() < 0.3 else "rect"
    w, h = rng.integers(24, 110, size=2)
    x, y = rng.integers(0, SIZE - w), rng.integers(0, SIZE - h)
    return kind, (int(x), int(y), int(x + w), int(y + h))


def make_pair(rng: np.random.Generator, noise_std: float = 4.0) -> Tuple[Image.Image, Image.Image]:
    """One (label map, photo) pair, both 256x256 RGB; `noise_std` is the sensor-like noise added to the photo."""
    label = Image.new("RGB", (SIZE, SIZE), BACKGROUND_LABEL)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) / SIZE
    sky = np.stack([np.full_like(yy, c) for c in BACKGROUND_PHOTO], -1) * (1.05 - 0.25 * yy[..., None])
    photo = sky
    draw = ImageDraw.Draw(label)
    for _ in range(int(rng.integers(4, 9))):
        kind, box = _shape(rng)
        label_colour, base = CLASSES[int(rng.integers(len(CLASSES)))]
        mask_img = Image.new("L", (SIZE, SIZE), 0)
        mask_draw = ImageDraw.Draw(mask_img)
        (draw.ellipse if kind == "disc" else draw.rectangle)(box, fill=label_colour)
        (mask_draw.ellipse if kind == "disc" else mask_draw.rectangle)(box, fill=255)
        mask = np.asarray(mask_img, dtype=np.float32)[..., None] / 255.0
        shadow = np.asarray(mask_img.filter(ImageFilter.GaussianBlur(6)).transform(
            (SIZE, SIZE), Image.AFFINE, (1, 0, -5, 0, 1, -5)), dtype=np.float32)[..., None] / 255.0
        # Light from the top left, stripes whose period depends on the class: texture G must invent.
        light = 1.15 - 0.35 * (xx + yy)[..., None] / 2
        period = 6 + 3 * CLASSES.index((label_colour, base))
        stripes = 0.9 + 0.1 * np.sign(np.sin(2 * np.pi * yy * SIZE / period))[..., None]
        paint = np.array(base, np.float32) * light * stripes
        photo = photo * (1 - 0.35 * shadow * (1 - mask))
        photo = photo * (1 - mask) + paint * mask
    noise = rng.normal(0, noise_std, size=photo.shape).astype(np.float32) if noise_std > 0 else 0.0
    photo_img = Image.fromarray(np.clip(photo + noise, 0, 255).astype(np.uint8))
    return label, photo_img


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="datasets/demo_shapes", help="output folder")
    parser.add_argument("--n_train", type=int, default=24)
    parser.add_argument("--n_test", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--layout", choices=("aligned", "unaligned", "single"), default="aligned",
                        help="aligned: A|B side by side (pix2pix); unaligned: trainA/trainB folders (CycleGAN); "
                             "single: photos only, train/ and test/ (super-resolution)")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    for phase, count in (("train", args.n_train), ("test", args.n_test)):
        for i in range(count):
            # Super-resolution photos without noise: the demo should show detail a network can recover.
            label, photo = make_pair(rng, noise_std=0.0 if args.layout == "single" else 4.0)
            name = f"{i + 1:03d}.png"
            if args.layout == "single":
                _save(photo, args.out, phase, name)
            elif args.layout == "aligned":
                pair = Image.new("RGB", (2 * SIZE, SIZE))
                pair.paste(label, (0, 0))
                pair.paste(photo, (SIZE, 0))
                _save(pair, args.out, phase, name)
            else:
                _save(label, args.out, phase + "A", name)
                _save(make_pair(rng)[1], args.out, phase + "B", name)  # a photo of another scene: unpaired
    print(f"demo data ({args.layout}): {args.n_train} train and {args.n_test} test samples in {args.out}")


def _save(img: Image.Image, root: str, folder: str, name: str) -> None:
    os.makedirs(os.path.join(root, folder), exist_ok=True)
    img.save(os.path.join(root, folder, name))

if __name__ == "__main__":
    main()
