"""Tests of the data package: folders, image reading, the reference-exact transforms, datasets and loader."""
from __future__ import annotations

import argparse
import math
import pickle
import random
import types
from pathlib import Path
from typing import Any, Tuple

import numpy as np
import pytest
from helpers import ROOT
import torch
import torchvision.transforms as T
import torchvision.transforms.functional as TF
from PIL import Image

import data
from data import DATASETS, DatasetLoader, create_dataset, get_option_setter
from data.base_dataset import BaseDataset, get_params, get_transform, size_divisor
from data.image_folder import IMG_EXTENSIONS, is_image_file, load_image, make_dataset
from models import data_options
from util.errors import DataError, OptionError

SHARED_DATA = ROOT.parent / "shared" / "data"


# ---- helpers ------------------------------------------------------------------------------------------------


def make_opt(root: Any, **overrides: Any) -> types.SimpleNamespace:
    """Options as the toolkit's parser would produce them (pix2pix-like defaults, CPU, no workers), with what
    options/ resolves for data/ from the model and its generator (models.data_options: size_divisor, ...)."""
    values = dict(
        dataroot=str(root), phase="train", dataset_mode="aligned", direction="AtoB", input_nc=3, output_nc=3,
        serial_batches=True, num_threads=0, batch_size=1, load_size=286, crop_size=256,
        max_dataset_size=math.inf, preprocess="resize_and_crop", no_flip=False, isTrain=True, gpu_ids=[],
        netG="resnet_9blocks", seed=None, skip_bad_images=False, model="pix2pix",
    )
    values.update(overrides)
    values.update(data_options(types.SimpleNamespace(**values)))
    return types.SimpleNamespace(**values)


def rand_image(size: Tuple[int, int], seed: int = 0, mode: str = "RGB") -> Image.Image:
    """A noise image of (w, h) = size: every pixel differs, so any resampling or offset error shows."""
    w, h = size
    rng = np.random.default_rng(seed)
    channels = 3 if mode == "RGB" else 1
    arr = rng.integers(0, 256, size=(h, w, channels), dtype=np.uint8)
    return Image.fromarray(arr[..., 0] if channels == 1 else arr, mode)


def save(img: Image.Image, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


def side_by_side(a: Image.Image, b: Image.Image) -> Image.Image:
    ab = Image.new("RGB", (a.width + b.width, a.height))
    ab.paste(a, (0, 0))
    ab.paste(b, (a.width, 0))
    return ab


def check_sample(t: torch.Tensor, channels: int, h: int, w: int) -> None:
    assert t.shape == (channels, h, w)
    assert t.dtype == torch.float32
    assert t.min() >= -1.0 and t.max() <= 1.0


# ---- image_folder -------------------------------------------------------------------------------------------


def test_is_image_file_ignores_case() -> None:
    assert all(is_image_file("x" + e.upper()) for e in IMG_EXTENSIONS)
    assert is_image_file("a/b/photo.JPEG") and is_image_file("x.webp")
    assert not is_image_file("notes.txt") and not is_image_file("jpg")


def test_make_dataset_sorted_recursive_and_capped(tmp_path: Path) -> None:
    for name in ["b.png", "a.jpg", "sub/c.PNG", "sub/deeper/d.bmp", "readme.txt", ".hidden.jpg", "._e.jpg"]:
        save(rand_image((8, 8)), tmp_path / name) if is_image_file(name) else (tmp_path / name).write_text("x")
    paths = make_dataset(str(tmp_path))
    rel = [str(Path(p).relative_to(tmp_path)) for p in paths]
    assert rel == ["a.jpg", "b.png", "sub/c.PNG", "sub/deeper/d.bmp"]
    assert make_dataset(str(tmp_path), 2) == paths[:2]
    assert make_dataset(str(tmp_path), 2.0) == paths[:2]


def test_make_dataset_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"does not exist: check --dataroot"):
        make_dataset(str(tmp_path / "missing"))
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError, match=r"no images \(jpg, jpeg, png"):
        make_dataset(str(tmp_path))


def test_load_image_mode_conversions(tmp_path: Path) -> None:
    rgb = rand_image((10, 6))
    palette = save(rgb.convert("P", palette=Image.ADAPTIVE), tmp_path / "p.png")
    assert load_image(str(palette)).mode == "RGB"
    assert np.array_equal(np.asarray(load_image(str(palette))), np.asarray(Image.open(palette).convert("RGB")))

    rgba = rgb.copy()
    rgba.putalpha(100)
    rgba_path = save(rgba, tmp_path / "rgba.png")
    assert np.array_equal(np.asarray(load_image(str(rgba_path))), np.asarray(rgb))  # alpha dropped, colours kept

    cmyk_path = save(rgb.convert("CMYK"), tmp_path / "cmyk.tif")
    assert load_image(str(cmyk_path)).mode == "RGB"
    assert load_image(str(cmyk_path), "L").size == (10, 6)

    # 16-bit greyscale: 65535 must become 255 and 257*k must become k, not everything above 255 clipped to 255.
    wide = np.array([[0, 257, 257 * 100, 65535]], dtype=np.uint16)
    wide_path = tmp_path / "grey16.png"
    Image.fromarray(wide).save(wide_path)
    grey = load_image(str(wide_path), "L")
    assert grey.mode == "L"
    assert np.asarray(grey).tolist() == [[0, 1, 100, 255]]
    assert np.asarray(load_image(str(wide_path), "RGB"))[0, :, 1].tolist() == [0, 1, 100, 255]


def test_load_image_applies_exif_orientation(tmp_path: Path) -> None:
    img = rand_image((12, 8))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90 degrees: displayed upright as 8 wide, 12 high
    path = tmp_path / "rot.jpg"
    img.save(path, exif=exif)
    assert load_image(str(path)).size == (8, 12)


@pytest.mark.parametrize("content", [b"", b"this is not an image", "truncated"])
def test_load_image_bad_files_name_the_file(tmp_path: Path, content: Any) -> None:
    path = tmp_path / "bad.jpg"
    if content == "truncated":
        good = save(rand_image((64, 64)), tmp_path / "good.jpg").read_bytes()
        content = good[: len(good) // 2]
    path.write_bytes(content)
    with pytest.raises(DataError, match=r"cannot read image .*bad\.jpg: .*; remove or replace the file"):
        load_image(str(path))


# ---- size divisor and transforms ----------------------------------------------------------------------------


def test_size_divisor_table(tmp_path: Path) -> None:
    assert size_divisor(make_opt(tmp_path, netG="resnet_9blocks")) == 4
    assert size_divisor(make_opt(tmp_path, netG="resnet_6blocks")) == 4
    assert size_divisor(make_opt(tmp_path, netG="unet_256")) == 256
    assert size_divisor(make_opt(tmp_path, netG="unet_128")) == 128
    with pytest.raises(KeyError, match="valid: .*resnet_9blocks"):
        size_divisor(make_opt(tmp_path, netG="no_such_net"))


def test_get_params_follows_reference_random_stream(tmp_path: Path) -> None:
    opt = make_opt(tmp_path, preprocess="scale_width_and_crop", load_size=128, crop_size=64)
    random.seed(3)
    params = get_params(opt, (300, 200))
    random.seed(3)
    x = random.randint(0, 128 - 64)
    y = random.randint(0, 128 * 200 // 300 - 64)
    assert params == {"crop_pos": (x, y), "flip": random.random() > 0.5}
    assert get_params(make_opt(tmp_path, preprocess="none"), (10, 10))["crop_pos"] == (0, 0)


@pytest.mark.parametrize(
    "preprocess, size, load, crop, netG, expected_hw",
    [
        ("resize_and_crop", (300, 200), 286, 256, "resnet_9blocks", (256, 256)),
        ("crop", (300, 280), 286, 256, "resnet_9blocks", (256, 256)),
        ("scale_width", (300, 200), 128, 64, "resnet_9blocks", (84, 128)),  # int(85.33) = 85 -> 84
        ("scale_width", (128, 90), 128, 64, "resnet_9blocks", (88, 128)),  # returned unscaled, then 90 -> 88
        ("scale_width_and_crop", (300, 200), 128, 64, "resnet_9blocks", (64, 64)),
        ("none", (301, 203), 286, 256, "resnet_9blocks", (204, 300)),
        ("none", (301, 203), 286, 256, "unet_256", (256, 256)),
        ("none", (600, 300), 286, 256, "unet_256", (256, 512)),
        ("none", (40, 30), 286, 256, "unet_128", (128, 128)),  # never below one divisor
    ],
)
def test_output_size_per_preprocess_mode(
    tmp_path: Path, preprocess: str, size: Tuple[int, int], load: int, crop: int, netG: str,
    expected_hw: Tuple[int, int],
) -> None:
    opt = make_opt(tmp_path, preprocess=preprocess, load_size=load, crop_size=crop, netG=netG)
    img = rand_image(size)
    for params in (None, get_params(opt, img.size)):
        check_sample(get_transform(opt, params)(img), 3, *expected_hw)
    check_sample(get_transform(opt, grayscale=True)(img), 1, *expected_hw)


def test_transform_matches_torchvision_bit_exactly(tmp_path: Path) -> None:
    """Same pixels as the reference's Compose, with fixed params and with torch-drawn random crop/flip."""
    opt = make_opt(tmp_path)
    img = rand_image((300, 200), seed=1)
    norm = T.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    resize = T.Resize([286, 286], T.InterpolationMode.BICUBIC)

    params = {"crop_pos": (17, 29), "flip": True}
    expected = T.Compose(
        [resize, T.Lambda(lambda im: TF.crop(im, 29, 17, 256, 256)), T.RandomHorizontalFlip(p=1.0), T.ToTensor(),
         norm]
    )(img)
    assert torch.equal(get_transform(opt, params)(img), expected)
    assert torch.equal(get_transform(opt, params, method=T.InterpolationMode.BICUBIC)(img), expected)

    reference_random = T.Compose([resize, T.RandomCrop(256), T.RandomHorizontalFlip(), T.ToTensor(), norm])
    ours_random = get_transform(opt)
    for seed in range(4):
        torch.manual_seed(seed)
        expected = reference_random(img)
        torch.manual_seed(seed)
        assert torch.equal(ours_random(img), expected)

    grey_expected = T.Compose(
        [T.Grayscale(1), resize, T.Lambda(lambda im: TF.crop(im, 29, 17, 256, 256)), T.ToTensor(),
         T.Normalize((0.5,), (0.5,))]
    )(img)
    assert torch.equal(get_transform(opt, {"crop_pos": (17, 29), "flip": False}, grayscale=True)(img), grey_expected)

    pil = get_transform(opt, params, convert=False)(img)
    assert isinstance(pil, Image.Image) and pil.size == (256, 256)


def test_crop_larger_than_image_is_a_data_error(tmp_path: Path) -> None:
    opt = make_opt(tmp_path, preprocess="crop", crop_size=256)
    with pytest.raises(DataError, match=r"image of size 100x300 is smaller than --crop_size 256"):
        get_transform(opt)(rand_image((100, 300)))
    with pytest.raises(DataError, match=r"--preprocess resize_and_crop"):
        get_transform(opt, {"crop_pos": (0, 0), "flip": False})(rand_image((300, 100)))


# ---- datasets -----------------------------------------------------------------------------------------------


@pytest.fixture
def ab_root(tmp_path: Path) -> Path:
    """Side-by-side layout: train/ with 3 AB images (A = seed k, B = seed k + 100), 2 of size 2x(64x48)."""
    for k, (w, h) in enumerate([(64, 48), (64, 48), (70, 40)]):
        save(side_by_side(rand_image((w, h), k), rand_image((w, h), k + 100)), tmp_path / "train" / f"{k}.png")
    return tmp_path


def test_registry_and_option_setter() -> None:
    assert set(DATASETS.names()) >= {"aligned", "unaligned", "single"}
    assert data.DATASETS is DATASETS
    parser = argparse.ArgumentParser()
    assert get_option_setter("aligned")(parser, True) is parser
    with pytest.raises(OptionError, match=r"unknown dataset mode 'nope'; valid: .*aligned"):
        get_option_setter("nope")


def test_aligned_side_by_side(ab_root: Path) -> None:
    opt = make_opt(ab_root, preprocess="none", no_flip=True)
    ds = DATASETS.get("aligned")(opt)
    assert len(ds) == 3
    sample = ds[0]
    assert set(sample) == {"A", "B", "A_paths", "B_paths"}
    check_sample(sample["A"], 3, 48, 64)
    check_sample(sample["B"], 3, 48, 64)
    assert sample["A_paths"] == sample["B_paths"] == str(ab_root / "train" / "0.png")
    expected_a = TF.normalize(TF.to_tensor(rand_image((64, 48), 0)), [0.5] * 3, [0.5] * 3)
    expected_b = TF.normalize(TF.to_tensor(rand_image((64, 48), 100)), [0.5] * 3, [0.5] * 3)
    assert torch.equal(sample["A"], expected_a) and torch.equal(sample["B"], expected_b)

    swapped = DATASETS.get("aligned")(make_opt(ab_root, preprocess="none", no_flip=True, direction="BtoA"))[0]
    assert torch.equal(swapped["A"], expected_b) and torch.equal(swapped["B"], expected_a)


def test_aligned_greyscale_channels_follow_direction(ab_root: Path) -> None:
    for direction in ("AtoB", "BtoA"):
        sample = DATASETS.get("aligned")(make_opt(ab_root, preprocess="none", input_nc=1, direction=direction))[0]
        assert sample["A"].shape == (1, 48, 64) and sample["B"].shape == (3, 48, 64)  # 'A' is the network input
        sample = DATASETS.get("aligned")(make_opt(ab_root, preprocess="none", output_nc=1, direction=direction))[0]
        assert sample["A"].shape[0] == 3 and sample["B"].shape[0] == 1
    # BtoA: the stored right half, greyscaled, is the input
    sample = DATASETS.get("aligned")(
        make_opt(ab_root, preprocess="none", no_flip=True, input_nc=1, direction="BtoA")
    )[0]
    expected = TF.normalize(TF.to_tensor(rand_image((64, 48), 100).convert("L")), [0.5], [0.5])
    assert torch.equal(sample["A"], expected)


def test_aligned_a_and_b_get_the_same_crop_and_flip(tmp_path: Path) -> None:
    half = rand_image((80, 80), 7)
    save(side_by_side(half, half), tmp_path / "train" / "same.png")
    ds = DATASETS.get("aligned")(make_opt(tmp_path, load_size=72, crop_size=48))
    outputs = set()
    for seed in range(12):
        random.seed(seed)
        sample = ds[0]
        assert torch.equal(sample["A"], sample["B"])
        outputs.add(sample["A"].numpy().tobytes())
    assert len(outputs) > 2  # crops and flips really vary


def test_aligned_two_folder_layout(tmp_path: Path) -> None:
    for k in range(3):
        save(rand_image((32, 32), k), tmp_path / "testA" / f"img{k}.png")
        save(rand_image((32, 32), k + 50), tmp_path / "testB" / f"img{k}.jpg")
    opt = make_opt(tmp_path, phase="test", preprocess="none", no_flip=True)
    ds = DATASETS.get("aligned")(opt)
    assert len(ds) == 3
    sample = ds[1]
    assert sample["A_paths"].endswith("testA/img1.png") and sample["B_paths"].endswith("testB/img1.jpg")
    check_sample(sample["A"], 3, 32, 32)
    swapped = DATASETS.get("aligned")(make_opt(tmp_path, phase="test", preprocess="none", direction="BtoA"))[1]
    assert swapped["A_paths"].endswith("testB/img1.jpg") and swapped["B_paths"].endswith("testA/img1.png")
    assert len(DATASETS.get("aligned")(make_opt(tmp_path, phase="test", max_dataset_size=2))) == 2


def test_aligned_two_folder_mismatch_lists_names(tmp_path: Path) -> None:
    for name in ["a", "b", "c", "d", "e"]:
        save(rand_image((16, 16)), tmp_path / "trainA" / f"{name}.png")
    save(rand_image((16, 16)), tmp_path / "trainB" / "a.png")
    save(rand_image((16, 16)), tmp_path / "trainB" / "zz.png")
    with pytest.raises(DataError) as info:
        DATASETS.get("aligned")(make_opt(tmp_path))
    message = str(info.value)
    assert "b, c, d and 1 more" in message and "zz" in message and "\n" not in message


def test_aligned_missing_layouts(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"no paired data in .*train/ .*trainA/ and .*trainB/"):
        DATASETS.get("aligned")(make_opt(tmp_path))
    save(rand_image((16, 16)), tmp_path / "trainA" / "a.png")
    with pytest.raises(DataError, match=r"trainB does not exist"):
        DATASETS.get("aligned")(make_opt(tmp_path))


@pytest.fixture
def unpaired_root(tmp_path: Path) -> Path:
    for k in range(3):
        save(rand_image((40 + k, 36), k), tmp_path / "trainA" / f"a{k}.jpg")
    for k in range(2):
        save(rand_image((50, 44 + k), k + 10), tmp_path / "trainB" / f"b{k}.png")
    return tmp_path


def test_unaligned_serial_indexing_and_swap(unpaired_root: Path) -> None:
    opt = make_opt(unpaired_root, dataset_mode="unaligned", preprocess="resize_and_crop", load_size=36, crop_size=32)
    ds = DATASETS.get("unaligned")(opt)
    assert len(ds) == 3
    for i in range(5):
        sample = ds[i]
        assert set(sample) == {"A", "B", "A_paths", "B_paths"}
        assert sample["A_paths"].endswith(f"a{i % 3}.jpg") and sample["B_paths"].endswith(f"b{i % 2}.png")
        check_sample(sample["A"], 3, 32, 32)
        check_sample(sample["B"], 3, 32, 32)
    random_ds = DATASETS.get("unaligned")(make_opt(unpaired_root, serial_batches=False, load_size=36, crop_size=32))
    random.seed(0)
    assert {Path(random_ds[0]["B_paths"]).name for _ in range(20)} == {"b0.png", "b1.png"}

    swapped = DATASETS.get("unaligned")(
        make_opt(unpaired_root, direction="BtoA", input_nc=1, load_size=36, crop_size=32)
    )[0]
    assert swapped["A_paths"].endswith("b0.png") and swapped["B_paths"].endswith("a0.jpg")
    assert swapped["A"].shape[0] == 1 and swapped["B"].shape[0] == 3  # 'A' (network input) has input_nc


def test_unaligned_empty_side(unpaired_root: Path) -> None:
    for f in (unpaired_root / "trainB").iterdir():
        f.unlink()
    with pytest.raises(DataError, match=r"no images .* in .*trainB"):
        DATASETS.get("unaligned")(make_opt(unpaired_root))
    with pytest.raises(DataError, match=r"testA does not exist"):
        DATASETS.get("unaligned")(make_opt(unpaired_root, phase="test"))


def test_single_dataset(tmp_path: Path) -> None:
    save(rand_image((64, 64), 1), tmp_path / "x" / "1.png")
    save(rand_image((64, 64), 2), tmp_path / "2.jpg")
    ds = DATASETS.get("single")(make_opt(tmp_path, preprocess="none", input_nc=1, output_nc=3))
    assert len(ds) == 2
    sample = ds[0]
    assert set(sample) == {"A", "A_paths"} and sample["A_paths"].endswith("2.jpg")
    check_sample(sample["A"], 1, 64, 64)
    btoa = DATASETS.get("single")(make_opt(tmp_path, preprocess="none", input_nc=1, output_nc=3, direction="BtoA"))
    assert btoa[0]["A"].shape[0] == 3  # reference rule: BtoA reads output_nc
    with pytest.raises(DataError, match=r"does not exist: check --dataroot"):
        DATASETS.get("single")(make_opt(tmp_path / "nope"))


# ---- create_dataset and the loader --------------------------------------------------------------------------


def test_create_dataset_batches(ab_root: Path) -> None:
    opt = make_opt(ab_root, preprocess="resize_and_crop", load_size=36, crop_size=32, batch_size=2)
    loader = create_dataset(opt)
    assert loader.load_data() is loader and len(loader) == 3
    batches = list(loader)
    assert [b["A"].shape for b in batches] == [(2, 3, 32, 32), (1, 3, 32, 32)]
    assert batches[0]["A_paths"] == [str(ab_root / "train" / "0.png"), str(ab_root / "train" / "1.png")]
    assert loader.dataloader.pin_memory is False


def test_loader_stops_at_max_dataset_size(tmp_path: Path) -> None:
    for k in range(5):
        save(rand_image((16, 16), k), tmp_path / f"{k}.png")
    opt = make_opt(tmp_path, dataset_mode="single", preprocess="none", batch_size=2, max_dataset_size=3)
    loader = create_dataset(opt)
    assert len(loader.dataset) == 3 and len(loader) == 3
    assert sum(len(b["A_paths"]) for b in loader) == 3
    # The loader also caps a larger dataset itself, like the reference: batches start below the cap.
    full = DATASETS.get("single")(make_opt(tmp_path, preprocess="none"))
    capped = DatasetLoader(make_opt(tmp_path, preprocess="none", batch_size=2, max_dataset_size=3), full)
    assert len(capped) == 3 and len(list(capped)) == 2


class _RandomDraws(BaseDataset):
    """Returns the python, numpy and torch draws made while loading the item."""

    def __len__(self) -> int:
        return 6

    def __getitem__(self, index: int) -> Any:
        draws = [random.random(), float(np.random.rand()), torch.rand(()).item()]
        return {"A": torch.tensor(draws, dtype=torch.float64), "A_paths": str(index)}


def _draws(opt: Any, epoch: int = 0, start: int = 0) -> list:
    loader = DatasetLoader(opt, _RandomDraws(opt))
    loader.set_epoch(epoch, start)
    return [(b["A_paths"][0], tuple(b["A"][0].tolist())) for b in loader]


@pytest.mark.parametrize("workers", [0, 2])
def test_sample_stream_depends_on_seed_and_epoch_not_on_workers(tmp_path: Path, workers: int) -> None:
    opt = make_opt(tmp_path, num_threads=workers, seed=123, batch_size=1, serial_batches=False)
    first = _draws(opt)
    assert first == _draws(make_opt(tmp_path, num_threads=0, seed=123, batch_size=1, serial_batches=False))
    assert len({d for _, d in first}) == len(first)  # every sample has its own random stream
    assert first != _draws(opt, epoch=1)  # another epoch: another order and other augmentations
    assert first != _draws(make_opt(tmp_path, num_threads=workers, seed=7, batch_size=1, serial_batches=False))


def test_resuming_mid_epoch_continues_the_same_stream(tmp_path: Path) -> None:
    opt = make_opt(tmp_path, num_threads=0, seed=5, batch_size=1, serial_batches=False)
    assert _draws(opt, epoch=3, start=4) == _draws(opt, epoch=3)[4:]


def test_loading_in_the_main_process_leaves_the_global_random_state_alone(tmp_path: Path) -> None:
    opt = make_opt(tmp_path, num_threads=0, seed=5, batch_size=2)
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    _draws(opt)
    after = (random.random(), float(np.random.rand()), torch.rand(()).item())
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    assert after == (random.random(), float(np.random.rand()), torch.rand(()).item())


def test_seeded_unaligned_loader_is_reproducible(unpaired_root: Path) -> None:
    opt = make_opt(
        unpaired_root, dataset_mode="unaligned", serial_batches=False, num_threads=2, seed=123,
        load_size=36, crop_size=32,
    )

    def run() -> list:
        return [(tuple(b["A_paths"]), tuple(b["B_paths"]), b["A"].sum().item()) for b in create_dataset(opt)]

    assert run() == run()


@pytest.mark.parametrize("mode", ["aligned", "unaligned", "single"])
def test_datasets_pickle_for_spawned_workers(ab_root: Path, mode: str) -> None:
    for side in "AB":
        save(rand_image((40, 36), 0), ab_root / f"train{side}" / "x.png")
    ds = DATASETS.get(mode)(make_opt(ab_root, load_size=36, crop_size=32, serial_batches=False))
    clone = pickle.loads(pickle.dumps(ds))
    assert len(clone) == len(ds) and set(clone[0]) == set(ds[0])


def test_create_dataset_probe_keeps_random_state(ab_root: Path) -> None:
    random.seed(5)
    torch.manual_seed(5)
    create_dataset(make_opt(ab_root, dataset_mode="aligned", load_size=36, crop_size=32))
    after = (random.random(), torch.rand(1).item())
    random.seed(5)
    torch.manual_seed(5)
    assert after == (random.random(), torch.rand(1).item())


@pytest.mark.parametrize("content", [b"", b"<html>not an image</html>", "truncated"])
def test_create_dataset_fails_on_bad_first_file(tmp_path: Path, content: Any) -> None:
    good = save(rand_image((64, 64)), tmp_path / "b_good.jpg")
    if content == "truncated":
        content = good.read_bytes()[:300]
    (tmp_path / "a_bad.jpg").write_bytes(content)
    with pytest.raises(DataError, match=r"cannot read image .*a_bad\.jpg"):
        create_dataset(make_opt(tmp_path, dataset_mode="single"))


def test_bad_file_later_in_dataset_is_named(unpaired_root: Path) -> None:
    (unpaired_root / "trainA" / "a9.jpg").write_bytes(b"")
    ds = create_dataset(make_opt(unpaired_root, dataset_mode="unaligned", load_size=36, crop_size=32)).dataset
    with pytest.raises(DataError, match=r"a9\.jpg"):
        ds[3]


def test_create_dataset_crop_larger_than_image_names_file(tmp_path: Path) -> None:
    save(rand_image((100, 100)), tmp_path / "small.png")
    with pytest.raises(DataError, match=r"small\.png: image of size 100x100 is smaller than --crop_size 256"):
        create_dataset(make_opt(tmp_path, dataset_mode="single", preprocess="crop"))


# ---- real data (../shared/data, absent for users) ----------------------------------------------------------


needs_shared = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"shared test images not present at {SHARED_DATA}")


@needs_shared
def test_shared_facades_aligned() -> None:
    opt = make_opt(SHARED_DATA / "paired" / "facades", batch_size=2)
    loader = create_dataset(opt)
    assert len(loader) == 2
    batch = next(iter(loader))
    check_sample(batch["A"][0], 3, 256, 256)
    check_sample(batch["B"][1], 3, 256, 256)
    sample = DATASETS.get("aligned")(make_opt(SHARED_DATA / "paired" / "facades", preprocess="none", no_flip=True))[0]
    check_sample(sample["A"], 3, 256, 256)
    assert not torch.equal(sample["A"], sample["B"])


@needs_shared
def test_shared_horse2zebra_unaligned() -> None:
    opt = make_opt(SHARED_DATA / "unpaired" / "horse2zebra_mini", dataset_mode="unaligned", serial_batches=False)
    loader = create_dataset(opt)
    assert len(loader) == 2
    for batch in loader:
        check_sample(batch["A"][0], 3, 256, 256)
        assert "trainA" in batch["A_paths"][0] and "trainB" in batch["B_paths"][0]
