"""Tests for util/images (sr_io, pixels, resize): reading and writing images for SR without losing grey / alpha /
16 bit, and the literature's bicubic protocol (modcrop, PIL's antialiased bicubic on uint8).

Files are generated in tmp_path with PIL, numpy and zlib; written PNGs are checked through their IHDR and with
an independent decoder (torchvision's decode_png). The Set5 crop test skips when ../shared/data is absent.
"""
from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Optional, Tuple

import numpy as np
import pytest
from helpers import ROOT
import torch
from PIL import Image, ImageOps
from torchvision.io import ImageReadMode, decode_png

from util.errors import DataError
from util.images import (
    SRImage,
    bicubic_downscale,
    bicubic_upscale,
    modcrop,
    quantize,
    read_image,
    resize_bicubic,
    to_pil_8bit,
    write_image,
)

# torchvision 0.29 deprecates its image codecs (in favour of TorchCodec) and warns on every decode_png call.
pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding capabilities of TorchVision")

SHARED_DATA = ROOT.parent / "shared" / "data"
SET5 = SHARED_DATA / "sr_eval" / "Set5"


# ---- helpers ------------------------------------------------------------------------------------------------


def random_levels(shape: Tuple[int, ...], bits: int, seed: int) -> torch.Tensor:
    """Random float32 values on the grid of `bits`-bit images, k / (2^bits - 1), including 0 and 1."""
    levels = 2**bits - 1
    k = np.random.default_rng(seed).integers(0, levels + 1, size=shape).astype(np.float64)
    k.flat[0], k.flat[-1] = 0, levels
    return torch.from_numpy(k / levels).to(torch.float32)


def ihdr(path: Path) -> Tuple[int, int]:
    """(bit depth, colour type) of a PNG file, read from its header."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", f"{path} is not a PNG"
    return data[24], data[25]


def decoded_samples(path: Path) -> np.ndarray:
    """The file's samples as torchvision decodes them: (C, H, W) int64 (an independent PNG decoder)."""
    raw = decode_png(torch.frombuffer(bytearray(path.read_bytes()), dtype=torch.uint8), mode=ImageReadMode.UNCHANGED)
    return raw.to(torch.int64).numpy()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)


def write_png16(path: Path, samples: np.ndarray, color_type: int, exif: Optional[bytes] = None,
                trns: Optional[bytes] = None) -> None:
    """A 16-bit PNG written by hand from (H, W, C) uint16 samples, with optional eXIf and tRNS chunks."""
    h, w = samples.shape[:2]
    rows = b"".join(b"\x00" + samples[y].astype(">u2").tobytes() for y in range(h))
    chunks = png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0))
    if exif is not None:
        chunks += png_chunk(b"eXIf", exif)
    if trns is not None:
        chunks += png_chunk(b"tRNS", trns)
    chunks += png_chunk(b"IDAT", zlib.compress(rows)) + png_chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunks)


def exif_orientation(value: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = value
    data = exif.tobytes()
    return data[6:] if data.startswith(b"Exif\x00\x00") else data  # PNG's eXIf holds the TIFF block only


# ---- round trips --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, channels, has_alpha, bits, pil_mode, png_header", [
    ("rgb8", 3, False, 8, "RGB", (8, 2)),
    ("grey8", 1, False, 8, "L", (8, 0)),
    ("rgba8", 3, True, 8, "RGBA", (8, 6)),
    ("la8", 1, True, 8, "LA", (8, 4)),
    ("grey16", 1, False, 16, "I;16", (16, 0)),
    ("rgb16", 3, False, 16, "RGB", (16, 2)),  # PIL reports 16-bit colour PNGs as 8-bit modes
    ("rgba16", 3, True, 16, "RGBA", (16, 6)),
    ("la16", 1, True, 16, "RGBA", (16, 4)),
])
def test_write_read_round_trip_is_exact(tmp_path, name, channels, has_alpha, bits, pil_mode, png_header) -> None:
    h, w = 7, 9
    pixels = random_levels((channels, h, w), bits, seed=len(name))
    alpha = random_levels((1, h, w), bits, seed=100 + len(name)) if has_alpha else None
    path = tmp_path / f"{name}.png"
    write_image(str(path), SRImage(pixels, alpha, bits))

    assert ihdr(path) == png_header
    with Image.open(path) as stored:
        assert stored.mode == pil_mode and stored.size == (w, h)
    levels = 2**bits - 1
    expected = np.concatenate([pixels.numpy()] + ([alpha.numpy()] if has_alpha else [])) * levels
    assert np.array_equal(decoded_samples(path), np.rint(expected).astype(np.int64))  # independent decoder

    back = read_image(str(path))
    assert back.bit_depth == bits and back.channels == channels and back.size == (w, h)
    assert back.pixels.dtype == torch.float32 and back.pixels.shape == (channels, h, w)
    assert torch.equal(back.pixels, pixels)
    if has_alpha:
        assert back.alpha is not None and back.alpha.shape == (1, h, w) and torch.equal(back.alpha, alpha)
    else:
        assert back.alpha is None
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # atomic write left no temporary file


def test_write_rounds_and_clamps(tmp_path) -> None:
    pixels = torch.tensor([0.6 / 255, 0.4 / 255, 254.5001 / 255, 1.7, -0.3, 0.5]).view(1, 1, 6)
    path = tmp_path / "r.png"
    write_image(str(path), SRImage(pixels))
    assert np.asarray(Image.open(path)).tolist() == [[1, 0, 255, 255, 0, 128]]  # rounded, not truncated
    write_image(str(path), SRImage(pixels, bit_depth=16))
    assert decoded_samples(path).ravel().tolist() == [round(0.6 / 255 * 65535), round(0.4 / 255 * 65535),
                                                      round(254.5001 / 255 * 65535), 65535, 0, 32768]


def test_write_rejects_bad_input(tmp_path) -> None:
    img = SRImage(torch.rand(3, 4, 4))
    with pytest.raises(ValueError, match=r"\.png suffix"):
        write_image(str(tmp_path / "x.jpg"), img)
    bad = torch.rand(3, 4, 4)
    bad[0, 1, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        write_image(str(tmp_path / "x.png"), SRImage(bad))
    assert not list(tmp_path.iterdir())
    with pytest.raises(OSError, match="cannot write"):
        write_image(str(tmp_path / "missing_folder" / "x.png"), img)


def test_srimage_validation_and_properties() -> None:
    img = SRImage(torch.rand(3, 5, 8), torch.rand(1, 5, 8), 16)
    assert img.size == (8, 5) and img.channels == 3
    with pytest.raises(ValueError, match="C = 1 or 3"):
        SRImage(torch.rand(2, 5, 8))
    with pytest.raises(ValueError, match="C = 1 or 3"):
        SRImage(torch.rand(5, 8))
    with pytest.raises(ValueError, match="alpha"):
        SRImage(torch.rand(3, 5, 8), torch.rand(1, 5, 7))
    with pytest.raises(ValueError, match="bit_depth"):
        SRImage(torch.rand(3, 5, 8), None, 12)
    with pytest.raises(ValueError, match="floating point"):
        SRImage(torch.zeros(3, 5, 8, dtype=torch.uint8))


def test_quantize() -> None:
    x = torch.tensor([-0.5, 0.0, 0.3 / 255, 0.7 / 255, 0.5, 1.0, 1.5])
    assert torch.equal(quantize(x, 8) * 255, torch.tensor([0.0, 0.0, 0.0, 1.0, 128.0, 255.0, 255.0]))
    q16 = quantize(torch.rand(1000, dtype=torch.float64), 16)
    assert torch.equal(q16 * 65535, torch.round(q16 * 65535)) and q16.dtype == torch.float64
    with pytest.raises(ValueError, match="8 or 16"):
        quantize(x, 10)


def test_to_pil_8bit_modes() -> None:
    grey = torch.rand(1, 4, 6)
    assert to_pil_8bit(SRImage(grey)).mode == "L"
    assert to_pil_8bit(SRImage(torch.rand(3, 4, 6), bit_depth=16)).mode == "RGB"
    rgba = to_pil_8bit(SRImage(torch.rand(3, 4, 6), torch.rand(1, 4, 6)))
    assert rgba.mode == "RGBA" and rgba.size == (6, 4)
    grey_alpha = to_pil_8bit(SRImage(grey, torch.ones(1, 4, 6)))
    assert grey_alpha.mode == "RGBA"
    arr = np.asarray(grey_alpha)
    assert np.array_equal(arr[..., 0], np.rint(grey[0].numpy() * 255)) and (arr[..., 3] == 255).all()


# ---- reading other files ------------------------------------------------------------------------------------


def test_read_kinds_written_by_pil(tmp_path) -> None:
    rng = np.random.default_rng(3)
    # Palette with a transparent entry -> RGB + alpha.
    pal = Image.fromarray(rng.integers(0, 4, (5, 6), dtype=np.uint8), mode="P")
    pal.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30])
    pal.save(tmp_path / "p.png", transparency=3)
    img = read_image(str(tmp_path / "p.png"))
    index = np.asarray(pal)
    assert img.channels == 3 and img.bit_depth == 8 and img.alpha is not None
    assert np.array_equal(img.alpha[0].numpy() == 0, index == 3)
    assert np.array_equal(np.rint(img.pixels[:, index == 0].numpy() * 255).T, np.tile([255, 0, 0], ((index == 0).sum(), 1)))
    # 1-bit -> one channel, 0 / 1.
    bits = Image.fromarray(rng.integers(0, 2, (5, 6), dtype=np.uint8) * 255).convert("1")
    bits.save(tmp_path / "b.png")
    img = read_image(str(tmp_path / "b.png"))
    assert img.channels == 1 and img.alpha is None and set(img.pixels.unique().tolist()) <= {0.0, 1.0}
    # Grey with a tRNS colour key -> grey + alpha.
    grey = Image.fromarray(rng.integers(0, 4, (5, 6), dtype=np.uint8))
    grey.save(tmp_path / "k.png", transparency=2)
    img = read_image(str(tmp_path / "k.png"))
    assert img.channels == 1 and np.array_equal(img.alpha[0].numpy() == 0, np.asarray(grey) == 2)
    # CMYK JPEG -> RGB.
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(tmp_path / "c.jpg")
    img = read_image(str(tmp_path / "c.jpg"))
    assert img.channels == 3 and img.alpha is None and img.pixels[0].mean() > 0.9 and img.pixels[1:].mean() < 0.1
    # 16-bit greyscale written by PIL.
    values = rng.integers(0, 65536, (5, 6)).astype(np.uint16)
    Image.fromarray(values).save(tmp_path / "g16.png")
    img = read_image(str(tmp_path / "g16.png"))
    assert img.bit_depth == 16 and img.channels == 1
    assert np.array_equal(np.rint(img.pixels[0].numpy().astype(np.float64) * 65535), values)


def test_read_16bit_rgb_written_by_hand(tmp_path) -> None:
    samples = np.random.default_rng(4).integers(0, 65536, (6, 5, 3)).astype(np.uint16)
    write_png16(tmp_path / "rgb16.png", samples, color_type=2)
    img = read_image(str(tmp_path / "rgb16.png"))
    assert img.bit_depth == 16 and img.channels == 3 and img.alpha is None
    assert np.array_equal(np.rint(img.pixels.numpy().astype(np.float64) * 65535).transpose(1, 2, 0), samples)


def test_read_16bit_rgb_tiff(tmp_path) -> None:
    """A 16-bit RGB TIFF keeps its 16 bits (PIL alone would keep the high byte); an 8-bit TIFF stays 8-bit."""
    import cv2

    samples = np.random.default_rng(6).integers(0, 65536, (6, 5, 3)).astype(np.uint16)
    assert cv2.imwrite(str(tmp_path / "rgb16.tif"), samples[:, :, ::-1])  # an independent writer, B, G, R order
    img = read_image(str(tmp_path / "rgb16.tif"))
    assert img.bit_depth == 16 and img.channels == 3 and img.alpha is None
    assert np.array_equal(np.rint(img.pixels.numpy().astype(np.float64) * 65535).transpose(1, 2, 0), samples)
    Image.fromarray((samples >> 8).astype(np.uint8)).save(tmp_path / "rgb8.tif")
    img = read_image(str(tmp_path / "rgb8.tif"))
    assert img.bit_depth == 8 and torch.equal(img.pixels, torch.from_numpy((samples >> 8).transpose(2, 0, 1) / 255).float())


def test_read_16bit_colour_keys(tmp_path) -> None:
    """A tRNS chunk on a 16-bit grey or RGB PNG (a colour key in 16-bit units) becomes an alpha channel."""
    rgb = np.random.default_rng(5).integers(0, 4, (5, 6, 3)).astype(np.uint16) * 20000
    key = rgb[2, 3]
    write_png16(tmp_path / "rgb_key.png", rgb, color_type=2, trns=key.astype(">u2").tobytes())
    img = read_image(str(tmp_path / "rgb_key.png"))
    assert img.bit_depth == 16 and img.channels == 3 and img.alpha is not None
    assert np.array_equal(img.alpha[0].numpy() == 0, np.all(rgb == key, axis=2)) and img.alpha[0, 2, 3] == 0
    assert set(img.alpha.unique().tolist()) == {0.0, 1.0}
    grey = rgb[:, :, :1]
    write_png16(tmp_path / "grey_key.png", grey, color_type=0, trns=struct.pack(">H", int(grey[0, 0, 0])))
    img = read_image(str(tmp_path / "grey_key.png"))
    assert img.bit_depth == 16 and img.channels == 1
    assert np.array_equal(img.alpha[0].numpy() == 0, grey[:, :, 0] == grey[0, 0, 0])


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_for_8_and_16_bit(tmp_path, orientation: int) -> None:
    h, w = 4, 7
    high = np.random.default_rng(orientation).integers(0, 256, (h, w, 3)).astype(np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(high).save(tmp_path / "o8.png", exif=exif)
    # The same picture as a 16-bit PNG with samples k * 257, whose 8-bit reading is k again.
    write_png16(tmp_path / "o16.png", high.astype(np.uint16) * 257, color_type=2, exif=exif_orientation(orientation))
    with Image.open(tmp_path / "o8.png") as stored:
        upright = np.asarray(ImageOps.exif_transpose(stored))  # what PIL considers upright
    assert upright.shape[:2] == ((w, h) if orientation >= 5 else (h, w))  # the tag was written and is read
    for name, bits in (("o8.png", 8), ("o16.png", 16)):
        img = read_image(str(tmp_path / name))
        assert img.bit_depth == bits
        got = np.rint(img.pixels.numpy().astype(np.float64) * (2**bits - 1)).transpose(1, 2, 0)
        assert np.array_equal(got / (257 if bits == 16 else 1), upright), (name, orientation)


def test_exif_rotated_jpeg_comes_out_upright(tmp_path) -> None:
    stored = np.zeros((20, 40, 3), dtype=np.uint8)  # 40 wide, 20 high, as stored
    stored[:, :20] = (255, 0, 0)  # left half red
    stored[:, 20:] = (0, 0, 255)  # right half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.fromarray(stored).save(tmp_path / "rotated.jpg", exif=exif, quality=95)
    img = read_image(str(tmp_path / "rotated.jpg"))
    assert img.size == (20, 40)  # upright: 20 wide, 40 high
    top, bottom = img.pixels[:, 5, 10], img.pixels[:, 35, 10]  # stored left half ends up on top
    assert top[0] > 0.9 and top[2] < 0.1, top
    assert bottom[2] > 0.9 and bottom[0] < 0.1, bottom


def test_bad_files_raise_data_error_naming_the_path(tmp_path) -> None:
    missing = tmp_path / "missing.png"
    with pytest.raises(DataError, match=r"cannot read image .*missing\.png: .*No such file") as info:
        read_image(str(missing))
    assert info.value.path == str(missing)

    text = tmp_path / "notes.png"
    text.write_text("hello, not an image\n")
    with pytest.raises(DataError, match=r"notes\.png: not an image format PIL can decode.*remove or replace the file"):
        read_image(str(text))

    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match=r"empty\.png: the file is empty \(0 bytes\)"):
        read_image(str(empty))

    truncated = tmp_path / "truncated.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:400])
    with pytest.raises(DataError, match=r"cannot read image .*truncated\.png: .*; remove or replace the file") as info:
        read_image(str(truncated))
    assert info.value.path == str(truncated)

    truncated16 = tmp_path / "truncated16.png"
    write_png16(truncated16, np.random.default_rng(1).integers(0, 65536, (32, 32, 3)).astype(np.uint16), 2)
    truncated16.write_bytes(truncated16.read_bytes()[:300])
    with pytest.raises(DataError, match=r"truncated16\.png"):
        read_image(str(truncated16))

    with pytest.raises(DataError, match=r"cannot read image"):
        read_image(str(tmp_path))  # a folder


# ---- geometry and the bicubic protocol ----------------------------------------------------------------------


def test_modcrop_shapes() -> None:
    assert modcrop(torch.rand(3, 13, 17), 4).shape == (3, 12, 16)
    assert modcrop(torch.rand(2, 3, 13, 17), 3).shape == (2, 3, 12, 15)
    assert modcrop(torch.rand(13, 17), 2).shape == (12, 16)
    x = torch.rand(1, 8, 12)
    assert torch.equal(modcrop(x, 4), x) and torch.equal(modcrop(x, 1), x)
    y = torch.rand(3, 10, 11)
    assert torch.equal(modcrop(y, 3), y[:, :9, :9])  # keeps the top-left corner
    img = modcrop(SRImage(torch.rand(3, 10, 11), torch.rand(1, 10, 11), 16), 4)
    assert img.size == (8, 8) and img.alpha.shape == (1, 8, 8) and img.bit_depth == 16
    for bad in (0, -2, 2.0, True):
        with pytest.raises(ValueError, match="scale"):
            modcrop(y, bad)


def test_downscale_needs_multiples() -> None:
    img = SRImage(torch.rand(3, 10, 12))
    assert bicubic_downscale(img, 2).size == (6, 5)
    assert bicubic_upscale(img, 3).size == (36, 30)
    with pytest.raises(ValueError, match=r"12x10 .* not a multiple of the scale 4; modcrop"):
        bicubic_downscale(img, 4)


def set5_crop() -> np.ndarray:
    path = SET5 / "butterfly.png"
    if not path.is_file():
        pytest.skip(f"shared test image {path} is absent (expected at ../shared/data from the project root)")
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))[100:148, 60:124].copy()  # (48, 64, 3) uint8


def test_bicubic_protocol_equals_pil_on_real_image() -> None:
    crop = set5_crop()
    hr = SRImage(torch.from_numpy(crop.transpose(2, 0, 1).astype(np.float32) / 255))
    for size in ((16, 12), (37, 29), (128, 96)):
        expected = np.asarray(Image.fromarray(crop).resize(size, Image.Resampling.BICUBIC))  # (H', W', 3)
        got = resize_bicubic(hr, size)
        assert got.size == size and got.bit_depth == 8
        assert np.array_equal(np.rint(got.pixels.numpy() * 255).astype(np.uint8).transpose(1, 2, 0), expected), size
    lr = bicubic_downscale(hr, 4)
    expected_lr = np.asarray(Image.fromarray(crop).resize((16, 12), Image.Resampling.BICUBIC))
    assert torch.equal(lr.pixels, torch.from_numpy(expected_lr.transpose(2, 0, 1).astype(np.float32) / 255))
    sr = bicubic_upscale(lr, 4)
    expected_sr = np.asarray(Image.fromarray(expected_lr).resize((64, 48), Image.Resampling.BICUBIC))
    assert np.array_equal(np.rint(sr.pixels.numpy() * 255).astype(np.uint8).transpose(1, 2, 0), expected_sr)
    # Greyscale goes through mode 'L' and agrees with PIL too.
    grey = np.asarray(Image.fromarray(crop).convert("L"))
    got = resize_bicubic(SRImage(torch.from_numpy(grey[None].astype(np.float32) / 255)), (16, 12))
    expected = np.asarray(Image.fromarray(grey).resize((16, 12), Image.Resampling.BICUBIC))
    assert np.array_equal(np.rint(got.pixels[0].numpy() * 255).astype(np.uint8), expected)


def test_16bit_downscale_agrees_with_8bit() -> None:
    crop = set5_crop()
    pixels = torch.from_numpy(crop.transpose(2, 0, 1).astype(np.float32) / 255)  # (3, 48, 64)
    alpha = pixels[1:2].clone()
    low8 = bicubic_downscale(SRImage(pixels, alpha, 8), 4)
    low16 = bicubic_downscale(SRImage(pixels, alpha, 16), 4)
    assert low16.bit_depth == 16 and low16.size == low8.size == (16, 12)
    assert torch.equal(low16.pixels, quantize(low16.pixels, 16))  # on the 16-bit grid
    assert (low16.pixels - low8.pixels).abs().max().item() <= 1 / 255 + 1e-6
    assert (low16.alpha - low8.alpha).abs().max().item() <= 1 / 255 + 1e-6
    # The 16-bit path keeps precision the 8-bit path rounds away.
    assert not torch.equal(low16.pixels, quantize(low16.pixels, 8))
    assert 0.0 <= low16.pixels.min().item() and low16.pixels.max().item() <= 1.0


def test_alpha_is_resized_separately() -> None:
    pixels = torch.rand(1, 8, 8)
    alpha = torch.zeros(1, 8, 8)
    alpha[:, :, 4:] = 1.0
    small = bicubic_downscale(SRImage(pixels, alpha), 2)
    assert small.alpha.shape == (1, 4, 4) and small.channels == 1
    assert torch.equal(small.alpha[0, :, 0], torch.zeros(4)) and torch.equal(small.alpha[0, :, 3], torch.ones(4))
    assert bicubic_upscale(SRImage(pixels), 2).alpha is None


def test_resize_rejects_bad_size() -> None:
    with pytest.raises(ValueError, match="positive ints"):
        resize_bicubic(SRImage(torch.rand(3, 4, 4)), (0, 4))


def test_pixel_conversions_in_slices_match_the_whole_image_formula() -> None:
    """to_uint/from_uint/quantize work a slice of rows at a time (bounded memory on 8K images); the result
    must be the whole-image float64 formula's, across slice boundaries, and the input must stay untouched."""
    from util.images.pixels import from_uint, rows_per_slice, to_uint

    x = torch.rand(3, 1500, 1200, dtype=torch.float64) * 1.2 - 0.1  # (C, H, W), some values out of [0, 1]
    assert rows_per_slice(3 * 1200) < 1500  # more than one slice
    original = x.clone()
    for bits, dtype in ((8, np.uint8), (16, np.uint16)):
        levels = 2**bits - 1
        expected = torch.round(x.clamp(0, 1) * levels).permute(1, 2, 0).numpy().astype(dtype)
        got = to_uint(x, bits)
        assert got.dtype == dtype and np.array_equal(got, expected)
        back = from_uint(got, bits)
        assert back.dtype == torch.float32 and torch.equal(
            back, (torch.from_numpy(expected.astype(np.float64)).permute(2, 0, 1) / levels).to(torch.float32))
        assert torch.equal(quantize(x, bits), torch.round(x.clamp(0, 1) * levels) / levels)
    assert torch.equal(x, original)
