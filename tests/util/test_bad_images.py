"""A corpus of awkward and broken image files: each one loads as documented in util/images/reading.py or fails
with a DataError naming the file; under --skip_bad_images the loader skips and counts them instead.

Every file is generated in the test's tmp_path with PIL, numpy and zlib; nothing outside it is read or written.
The decompression bomb is a small PNG whose header claims 20000 x 20000 pixels, so nothing large is allocated.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import re
import struct
import types
import warnings
import zlib
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import numpy as np
import pytest
from PIL import Image

from data import create_dataset
from util.images import load_image, read_image
from util.errors import DataError

# ---- writing files -----------------------------------------------------------------------------------------


def noise(h: int, w: int, channels: int, seed: int) -> np.ndarray:
    """uint8 noise of shape (H, W, C), or (H, W) for channels == 0."""
    shape = (h, w) if channels == 0 else (h, w, channels)
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)


def write_png16(path: Path, samples: np.ndarray, color_type: int) -> None:
    """A 16-bit-per-sample PNG written by hand (PIL cannot write 16-bit RGB): samples (H, W, C) uint16."""
    h, w = samples.shape[:2]
    rows = b"".join(b"\x00" + samples[y].astype(">u2").tobytes() for y in range(h))  # filter 0 per row
    header = struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0)
    chunks = png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(rows)) + png_chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunks)


def write_bomb(path: Path, width: int = 20000, height: int = 20000) -> None:
    """A valid 8x8 PNG whose IHDR is patched to claim width x height (CRC fixed), so PIL rejects it unread."""
    Image.new("L", (8, 8)).save(path)
    data = bytearray(path.read_bytes())
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
    path.write_bytes(bytes(data))


def first_half(path: Path, img: Image.Image) -> None:
    """Save `img` to `path` (format from the suffix), then keep only the first half of its bytes."""
    img.save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def stored(path: Path) -> Image.Image:
    """The file as PIL opens it, before any conversion (header only; the file is closed again)."""
    with Image.open(path) as img:
        return img


def rgb(img: Image.Image) -> np.ndarray:
    assert img.mode == "RGB"
    return np.asarray(img).astype(int)


# ---- the corpus ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Case:
    """One file and what load_image must do with it: `check(path)` for a good file, `error` (regex) for a bad one."""

    name: str
    path: Path
    check: Optional[Callable[[Path], None]] = None
    error: Optional[str] = None

    @property
    def bad(self) -> bool:
        return self.error is not None


BOMB_PIXELS = 20000 * 20000  # 400 Mpx: more than twice PIL's default MAX_IMAGE_PIXELS (89.5 Mpx)


def build_corpus(root: Path) -> Dict[str, Case]:
    """Write every file of the corpus under `root` and return its cases by name."""
    root.mkdir(parents=True, exist_ok=True)
    cases: Dict[str, Case] = {}

    def add(name: str, filename: str, write: Callable[[Path], None], check=None, error=None) -> None:
        path = root / filename
        write(path)
        cases[name] = Case(name, path, check, error)

    # -- files that load --
    src_rgb = noise(16, 24, 3, seed=1)

    def check_rgb(path: Path) -> None:
        img = load_image(str(path))
        assert img.size == (24, 16)
        assert np.array_equal(np.asarray(img), src_rgb)

    add("rgb_png", "rgb.png", lambda p: Image.fromarray(src_rgb).save(p), check_rgb)
    # The contents decide the format, not the extension.
    add("png_named_jpg", "really_a_png.jpg", lambda p: Image.fromarray(src_rgb).save(p, format="PNG"), check_rgb)

    src_l = noise(16, 24, 0, seed=2)

    def check_grey(path: Path) -> None:
        as_rgb = rgb(load_image(str(path), "RGB"))
        assert as_rgb.shape == (16, 24, 3)
        for c in range(3):  # replicated into three equal channels
            assert np.array_equal(as_rgb[..., c], src_l)
        as_l = load_image(str(path), "L")
        assert as_l.mode == "L" and np.array_equal(np.asarray(as_l), src_l)

    add("grey_png", "grey.png", lambda p: Image.fromarray(src_l, "L").save(p), check_grey)

    bits = noise(16, 24, 0, seed=3) > 127

    def check_1bit(path: Path) -> None:
        out = rgb(load_image(str(path)))
        assert np.array_equal(out[..., 0], np.where(bits, 255, 0)) and np.array_equal(out[..., 2], out[..., 0])

    add("one_bit_png", "one_bit.png", lambda p: Image.fromarray(bits).convert("1").save(p), check_1bit)

    colours = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]], dtype=np.uint8)
    indices = np.random.default_rng(4).integers(0, 4, size=(16, 24), dtype=np.uint8)

    def palette_image() -> Image.Image:
        img = Image.fromarray(indices, "P")
        img.putpalette(colours.flatten().tolist())
        return img

    def check_palette(path: Path) -> None:
        assert stored(path).mode == "P"
        assert np.array_equal(np.asarray(load_image(str(path))), colours[indices])  # alpha (if any) dropped

    add("palette_png", "palette.png", lambda p: palette_image().save(p), check_palette)
    add("palette_transparent_index_png", "palette_trns_index.png",
        lambda p: palette_image().save(p, transparency=0), check_palette)
    # tRNS with one alpha per palette entry: PIL warns on convert('RGB'); load_image goes through RGBA, silently.
    add("palette_transparent_bytes_png", "palette_trns_bytes.png",
        lambda p: palette_image().save(p, transparency=bytes([0, 128, 255, 10])), check_palette)

    src_rgba = noise(16, 24, 4, seed=5)
    src_rgba[0, :4, 3] = [0, 1, 128, 255]  # fully transparent pixels included

    def check_rgba(path: Path) -> None:
        out = load_image(str(path))
        assert np.array_equal(np.asarray(out), src_rgba[..., :3])  # alpha dropped, colours kept as stored
        expected_l = Image.fromarray(np.ascontiguousarray(src_rgba[..., :3])).convert("L")
        assert np.array_equal(np.asarray(load_image(str(path), "L")), np.asarray(expected_l))

    add("rgba_png", "rgba.png", lambda p: Image.fromarray(src_rgba, "RGBA").save(p), check_rgba)

    src_la = noise(16, 24, 2, seed=6)
    src_la[0, :2, 1] = [0, 255]

    def check_la(path: Path) -> None:
        assert stored(path).mode == "LA"
        out = rgb(load_image(str(path)))
        assert all(np.array_equal(out[..., c], src_la[..., 0]) for c in range(3))
        assert np.array_equal(np.asarray(load_image(str(path), "L")), src_la[..., 0])

    add("la_png", "la.png", lambda p: Image.fromarray(src_la, "LA").save(p), check_la)

    # 16-bit greyscale: scaled by 255/65535 and rounded, not clipped.
    # Tiled to 16x16 so that the file also fits the dataset tests' 16x16 crop.
    wide = np.tile(np.array([0, 128, 129, 257, 32896, 65280, 65534, 65535], dtype=np.uint16), (16, 2))
    wide_8bit = np.tile(np.array([0, 0, 1, 1, 128, 254, 255, 255]), (16, 2))

    def check_grey16(path: Path) -> None:
        assert stored(path).mode.startswith("I;16")
        as_l = load_image(str(path), "L")
        assert as_l.mode == "L" and np.array_equal(np.asarray(as_l), wide_8bit)
        as_rgb = rgb(load_image(str(path)))
        assert all(np.array_equal(as_rgb[..., c], wide_8bit) for c in range(3))

    add("grey16_png", "grey16.png", lambda p: Image.fromarray(wide).save(p), check_grey16)

    # 16-bit RGB (48-bit) PNG: PIL decodes it to 8-bit RGB keeping each sample's high byte.
    deep = np.array([[[65535, 0, 32896], [65280, 255, 257], [0x1234, 0xABCD, 0x8000]]], dtype=np.uint16)
    deep = np.tile(deep, (16, 6, 1))  # (16, 18, 3)

    def check_rgb48(path: Path) -> None:
        assert stored(path).mode == "RGB"
        out = rgb(load_image(str(path)))
        assert out.shape == (16, 18, 3)
        assert np.array_equal(out, deep >> 8)
        assert out[0, 0].tolist() == [255, 0, 128] and out[0, 1].tolist() == [255, 0, 1]

    add("rgb48_png", "rgb48.png", lambda p: write_png16(p, deep, color_type=2), check_rgb48)

    alpha = np.tile(np.array([[[0], [32896], [65535]]], dtype=np.uint16), (16, 6, 1))
    deep_rgba = np.concatenate([deep, alpha], axis=2)

    def check_rgba64(path: Path) -> None:
        assert np.array_equal(rgb(load_image(str(path))), deep >> 8)  # high byte, alpha dropped

    add("rgba64_png", "rgba64.png", lambda p: write_png16(p, deep_rgba, color_type=6), check_rgba64)

    # CMYK: PIL's conversion. Pure cyan-free magenta + yellow = red; K = 255 is black; all zero is white.
    cmyk = np.zeros((16, 24, 4), dtype=np.uint8)
    cmyk[:, :8] = [0, 255, 255, 0]
    cmyk[:, 8:16] = [0, 0, 0, 255]
    expected_cmyk = np.zeros((16, 24, 3), dtype=int)
    expected_cmyk[:, :8] = [255, 0, 0]
    expected_cmyk[:, 16:] = 255

    def check_cmyk(lossy: bool) -> Callable[[Path], None]:
        def check(path: Path) -> None:
            assert stored(path).mode == "CMYK"
            out = rgb(load_image(str(path)))
            with Image.open(path) as img:
                assert np.array_equal(out, np.asarray(img.convert("RGB")))  # exactly PIL's conversion
            # Away from the block edges, JPEG's error is small.
            tolerance = 8 if lossy else 0
            for x in (2, 12, 20):
                assert np.abs(out[4:12, x] - expected_cmyk[4:12, x]).max() <= tolerance
            assert load_image(str(path), "L").size == (24, 16)
        return check

    add("cmyk_jpg", "cmyk.jpg", lambda p: Image.fromarray(cmyk, "CMYK").save(p, quality=95), check_cmyk(True))
    add("cmyk_tif", "cmyk.tif", lambda p: Image.fromarray(cmyk, "CMYK").save(p), check_cmyk(False))

    # EXIF orientation 6 ("rotate 90 degrees clockwise to display"): stored 40x20, upright 20x40. The stored
    # left half (white) becomes the upright top half.
    def write_exif(path: Path) -> None:
        stored = np.zeros((20, 40, 3), dtype=np.uint8)
        stored[:, :20] = 255
        img = Image.fromarray(stored)
        exif = img.getexif()
        exif[0x0112] = 6
        img.save(path, exif=exif, quality=95)

    def check_exif(path: Path) -> None:
        assert stored(path).size == (40, 20)
        out = rgb(load_image(str(path)))
        assert out.shape == (40, 20, 3)  # (H, W): 20 wide, 40 high
        assert out[:16].min() > 200 and out[24:].max() < 50

    add("exif_rotated_jpg", "exif_rotated.jpg", write_exif, check_exif)

    # Smaller than any crop used here: loads fine; the crop step refuses it (see the dataset tests).
    def check_tiny(path: Path) -> None:
        assert load_image(str(path)).size == (8, 8)

    add("tiny_png", "tiny.png", lambda p: Image.fromarray(noise(8, 8, 3, seed=7)).save(p), check_tiny)

    # 32-bit float TIFFs (mode 'F'): read by their range, 0..1 or 0..255 here, never clipped to black.
    unit = np.linspace(0.0, 1.0, 16 * 24, dtype=np.float32).reshape(16, 24)

    def check_float(full_scale: float) -> Callable[[Path], None]:
        def check(path: Path) -> None:
            assert stored(path).mode == "F"
            out = rgb(load_image(str(path)))
            expected = np.rint(unit.astype(np.float64) * 255).astype(int)
            assert out.max() == 255 and all(np.array_equal(out[..., c], expected) for c in range(3))
            sr = read_image(str(path))  # SR inference: kept at 16-bit precision
            assert (sr.channels, sr.bit_depth, sr.alpha) == (1, 16, None)
            levels = np.rint(sr.pixels[0].double().numpy() * 65535)
            assert np.array_equal(levels, np.rint(unit.astype(np.float64) * 65535))
            assert len(np.unique(levels)) == unit.size  # more than 8 bits of precision survive
        return check

    add("float01_tif", "float01.tif", lambda p: Image.fromarray(unit, "F").save(p), check_float(1.0))
    add("float255_tif", "float255.tif", lambda p: Image.fromarray(unit * 255, "F").save(p), check_float(255.0))

    # -- files that must fail, naming themselves --
    add("truncated_png", "truncated.png", lambda p: first_half(p, Image.fromarray(noise(64, 64, 3, seed=8))),
        error=r"truncated")
    add("truncated_jpg", "truncated.jpg", lambda p: first_half(p, Image.fromarray(noise(64, 64, 3, seed=9))),
        error=r"truncated")
    add("zero_byte_png", "zero_byte.png", lambda p: p.write_bytes(b""), error=r"the file is empty \(0 bytes\)")
    add("text_named_jpg", "notes.jpg", lambda p: p.write_text("camera settings: f/2.8, 1/250 s\n"),
        error=r"not an image format PIL can decode \(it starts with b'camera settings")
    add("html_named_png", "download.png",
        lambda p: p.write_text("<!DOCTYPE html>\n<html><body>404 Not Found</body></html>\n"),
        error=r"not an image format PIL can decode \(it starts with b'<!DOCTYPE html>")
    add("bomb_png", "bomb.png", write_bomb,
        error=rf"image is too large \({BOMB_PIXELS} pixels; the limit is {2 * Image.MAX_IMAGE_PIXELS} pixels.*"
              r"raise PIL\.Image\.MAX_IMAGE_PIXELS")
    add("missing_png", "missing.png", lambda p: None, error=r"No such file")
    signed = unit * 2 - 1  # -1..1: what it means cannot be told
    add("float_signed_tif", "float_signed.tif", lambda p: Image.fromarray(signed, "F").save(p),
        error=r"a float image with values from -1 to 1 cannot be read: only the ranges 0\.\.1, 0\.\.255 and "
              r"0\.\.65535 are understood")
    with_nan = unit.copy()
    with_nan[3, 4] = np.nan
    add("float_nan_tif", "float_nan.tif", lambda p: Image.fromarray(with_nan, "F").save(p),
        error=r"a float image with NaN or infinite values cannot be read")
    return cases


CASE_NAMES = [
    "rgb_png", "png_named_jpg", "grey_png", "one_bit_png", "palette_png", "palette_transparent_index_png",
    "palette_transparent_bytes_png", "rgba_png", "la_png", "grey16_png", "rgb48_png", "rgba64_png", "cmyk_jpg",
    "cmyk_tif", "exif_rotated_jpg", "tiny_png", "float01_tif", "float255_tif", "truncated_png", "truncated_jpg",
    "zero_byte_png", "text_named_jpg", "html_named_png", "bomb_png", "missing_png", "float_signed_tif",
    "float_nan_tif",
]
BAD_NAMES = [
    "truncated_png", "truncated_jpg", "zero_byte_png", "text_named_jpg", "html_named_png", "bomb_png",
    "float_signed_tif",
]


@pytest.fixture
def corpus(tmp_path: Path) -> Dict[str, Case]:
    return build_corpus(tmp_path / "corpus")


def test_corpus_lists_every_case(corpus: Dict[str, Case]) -> None:
    assert sorted(corpus) == sorted(CASE_NAMES)
    assert set(BAD_NAMES) < {name for name, case in corpus.items() if case.bad}


@pytest.mark.parametrize("name", CASE_NAMES)
def test_load_image_corpus(corpus: Dict[str, Case], name: str) -> None:
    case = corpus[name]
    if case.bad:
        with pytest.raises(DataError) as info:
            load_image(str(case.path))
        message = str(info.value)
        assert str(case.path) in message
        assert message.startswith(f"cannot read image {case.path}: ")
        assert re.search(case.error, message), message
        assert info.value.path == str(case.path)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the documented conversions load silently
            case.check(case.path)


def test_palette_with_byte_transparency_would_warn_without_rgba(corpus: Dict[str, Case]) -> None:
    """Guards the reason for the RGBA detour: PIL's plain convert('RGB') warns on this file."""
    with Image.open(corpus["palette_transparent_bytes_png"].path) as img, pytest.warns(UserWarning, match="RGBA"):
        img.convert("RGB")


# ---- decompression bombs with a lowered limit ---------------------------------------------------------------


def test_decompression_bomb_limit_is_twice_max_image_pixels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    over = tmp_path / "over.png"  # 10000 px > 2 x 1000: refused
    Image.fromarray(noise(100, 100, 3, seed=10)).save(over)
    with pytest.raises(DataError) as info:
        load_image(str(over))
    message = str(info.value)
    assert str(over) in message
    assert "image is too large (10000 pixels; the limit is 2000 pixels" in message
    assert "downscale it" in message

    between = tmp_path / "between.png"  # 1600 px, between 1x and 2x: loads, PIL only warns
    Image.fromarray(noise(40, 40, 3, seed=11)).save(between)
    with pytest.warns(Image.DecompressionBombWarning):
        assert load_image(str(between)).size == (40, 40)


def test_bomb_header_is_rejected_before_decoding(tmp_path: Path) -> None:
    """The patched header alone is enough: the 8x8 payload is never decoded into a 400-megapixel buffer."""
    path = tmp_path / "bomb.png"
    write_bomb(path)
    assert path.stat().st_size < 200
    with pytest.raises(Image.DecompressionBombError):
        Image.open(path)
    with pytest.raises(DataError, match="too large"):
        load_image(str(path))


# ---- datasets and the loader --------------------------------------------------------------------------------


def make_opt(root: Path, **overrides: Any) -> types.SimpleNamespace:
    """Options for a `single` dataset that crops 16x16 without resizing (so a tiny image is an error)."""
    values = dict(
        dataroot=str(root), phase="test", dataset_mode="single", direction="AtoB", input_nc=3, output_nc=3,
        serial_batches=True, num_threads=0, batch_size=1, load_size=16, crop_size=16, max_dataset_size=math.inf,
        preprocess="crop", no_flip=True, isTrain=False, gpu_ids=[], netG="resnet_9blocks", seed=0,
        skip_bad_images=False, size_divisor=4, sr_scale=0, sr_test_hr=False,  # options/ resolves these for data/
    )
    values.update(overrides)
    return types.SimpleNamespace(**values)


GOOD_IN_FOLDER = [
    "rgb_png", "png_named_jpg", "grey_png", "palette_transparent_bytes_png", "rgba_png", "la_png", "grey16_png",
    "rgb48_png", "cmyk_jpg", "exif_rotated_jpg",
]
BAD_IN_FOLDER = BAD_NAMES + ["tiny_png"]  # tiny: smaller than the 16x16 crop


@pytest.fixture
def folder(corpus: Dict[str, Case], tmp_path: Path) -> Dict[str, List[str]]:
    """tmp_path/images: good files as a*, bad ones as b* (sample 0 is good; the bad ones come last in order)."""
    root = tmp_path / "images"
    root.mkdir()
    paths: Dict[str, List[str]] = {"good": [], "bad": []}
    for prefix, names, key in (("a", GOOD_IN_FOLDER, "good"), ("b", BAD_IN_FOLDER, "bad")):
        for i, name in enumerate(names):
            src = corpus[name].path
            dst = root / f"{prefix}{i:02d}_{src.name}"
            dst.write_bytes(src.read_bytes())
            paths[key].append(str(dst))
    return paths


@pytest.mark.parametrize("name", BAD_IN_FOLDER)
def test_each_bad_file_stops_iteration_naming_it(corpus: Dict[str, Case], tmp_path: Path, name: str) -> None:
    root = tmp_path / "one_bad"
    root.mkdir()
    good = root / "a_good.png"
    good.write_bytes(corpus["rgb_png"].path.read_bytes())
    bad = root / f"b_{corpus[name].path.name}"
    bad.write_bytes(corpus[name].path.read_bytes())
    loader = create_dataset(make_opt(root))
    seen: List[str] = []
    with pytest.raises(DataError) as info:
        for batch in loader:
            seen.extend(batch["A_paths"])
    assert seen == [str(good)]
    assert str(bad) in str(info.value)
    if name == "tiny_png":
        assert "image of size 8x8 is smaller than --crop_size 16" in str(info.value)


def test_good_files_of_every_kind_load_through_the_dataset(folder: Dict[str, List[str]], tmp_path: Path) -> None:
    root = tmp_path / "only_good"
    root.mkdir()
    for path in folder["good"]:
        (root / Path(path).name).write_bytes(Path(path).read_bytes())
    loader = create_dataset(make_opt(root))
    seen = []
    for batch in loader:
        assert batch["A"].shape == (1, 3, 16, 16)
        seen.extend(batch["A_paths"])
    assert seen == sorted(str(root / Path(p).name) for p in folder["good"])


def test_first_bad_file_stops_iteration_without_skip(folder: Dict[str, List[str]], tmp_path: Path) -> None:
    loader = create_dataset(make_opt(tmp_path / "images", skip_bad_images=False))
    seen: List[str] = []
    with pytest.raises(DataError) as info:
        for batch in loader:
            seen.extend(batch["A_paths"])
    assert seen == folder["good"]  # sorted order: all a_* files, then the first b_* file fails
    assert folder["bad"][0] in str(info.value)


@pytest.mark.parametrize("batch_size", [1, 3])
def test_skip_bad_images_skips_and_counts(
    folder: Dict[str, List[str]], tmp_path: Path, caplog: pytest.LogCaptureFixture, batch_size: int
) -> None:
    loader = create_dataset(make_opt(tmp_path / "images", skip_bad_images=True, batch_size=batch_size))
    seen: List[str] = []
    with caplog.at_level(logging.WARNING):
        for batch in loader:
            assert batch["A"].shape == (len(batch["A_paths"]), 3, 16, 16)
            seen.extend(batch["A_paths"])
    assert seen == folder["good"]
    assert sorted(loader.skipped) == sorted(folder["bad"])
    for path, reason in loader.skipped.items():
        assert path in str(reason)
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    for path in folder["bad"]:
        assert sum(path in message for message in warned) == 1, (path, warned)


def test_skip_bad_images_with_a_bad_first_file(corpus: Dict[str, Case], tmp_path: Path) -> None:
    """Sample 0 being bad must not stop create_dataset under --skip_bad_images."""
    root = tmp_path / "bad_first"
    root.mkdir()
    bad = root / "a_empty.png"
    bad.write_bytes(b"")
    good = root / "b_good.png"
    good.write_bytes(corpus["rgb_png"].path.read_bytes())
    loader = create_dataset(make_opt(root, skip_bad_images=True))
    assert [p for batch in loader for p in batch["A_paths"]] == [str(good)]
    assert list(loader.skipped) == [str(bad)]


@pytest.mark.parametrize("name", ["float_signed_tif", "float_nan_tif"])
def test_sr_reader_refuses_a_float_image_of_unknown_range_alike(corpus: Dict[str, Case], name: str) -> None:
    """SR inference (util/images/sr_io.read_image) names the file with the training loader's words."""
    case = corpus[name]
    with pytest.raises(DataError) as info:
        read_image(str(case.path))
    assert str(info.value).startswith(f"cannot read image {case.path}: ") and re.search(case.error, str(info.value))


# ---- images too small for their mode ------------------------------------------------------------------------


def aligned_folder(root: Path, sizes: Dict[str, tuple]) -> Path:
    """root/train with one side-by-side A|B file of each (width, height) in `sizes`, named by its key."""
    folder = root / "train"
    folder.mkdir(parents=True)
    for i, (name, (w, h)) in enumerate(sizes.items()):
        Image.fromarray(noise(h, w, 3, seed=20 + i)).save(folder / name)
    return folder


@pytest.mark.parametrize("width", [1, 2])
def test_aligned_image_too_narrow_for_a_and_b_is_named(tmp_path: Path, width: int) -> None:
    """A 1-pixel-wide side-by-side file has an empty A half: a DataError naming it, not a blank A trained on. Two
    pixels (one for A, one for B) is the least that holds a pair, and loads."""
    folder = aligned_folder(tmp_path, {"a_good.png": (32, 16), "b_narrow.png": (width, 1)})
    opt = make_opt(tmp_path, dataset_mode="aligned", phase="train", isTrain=True, preprocess="resize_and_crop",
                   load_size=16, crop_size=16)
    loader = create_dataset(opt)
    if width == 2:
        seen = [p for batch in loader for p in batch["A_paths"]]
        assert seen == [str(folder / "a_good.png"), str(folder / "b_narrow.png")]
        return
    with pytest.raises(DataError) as info:
        for _ in loader:
            pass
    assert str(info.value).startswith(f"{folder / 'b_narrow.png'}: the image is 1x1, too narrow to hold A and B")
    assert info.value.path == str(folder / "b_narrow.png")


def test_aligned_image_too_narrow_is_skipped_and_counted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = aligned_folder(tmp_path, {"a_narrow.png": (1, 1), "b_good.png": (32, 16), "c_good.png": (40, 20)})
    opt = make_opt(tmp_path, dataset_mode="aligned", phase="train", isTrain=True, preprocess="resize_and_crop",
                   load_size=16, crop_size=16, skip_bad_images=True)
    with caplog.at_level(logging.WARNING):
        loader = create_dataset(opt)  # sample 0 is the bad one: no probe under --skip_bad_images
        seen = [p for batch in loader for p in batch["A_paths"]]
    assert seen == [str(folder / "b_good.png"), str(folder / "c_good.png")]
    assert list(loader.skipped) == [str(folder / "a_narrow.png")]
    assert any("skipped bad image (1 so far)" in r.getMessage() and "a_narrow.png" in r.getMessage()
               for r in caplog.records)
