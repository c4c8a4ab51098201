"""The catalogue: every published dataset and pretrained generator, its address and how to use it.

One table per kind (`DATASETS`, `PRETRAINED`, both `Registry`s of `Registry`s, and `SR_MODELS`, the
super-resolution zoo) is the single source of names and addresses: the command line takes its choices from them, the fetchers look entries up in them,
and the hints printed after a download read their flags from them. An entry may carry the `sha256` of its
file; when it does, the file is verified before it is installed (the reference's own files and the SR
publishers' are published without hashes, so theirs are None; the installed SR folder records the hash of
what it was made from).
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from ..registry import Registry
from .checksum import normalise_sha256

CITYSCAPES_LICENCE = (
    "the Cityscapes dataset cannot be downloaded from the reference's server because of its licence: "
    "register at https://cityscapes-dataset.com, download gtFine_trainvaltest.zip and "
    "leftImg8bit_trainvaltest.zip, build the dataset (the reference's datasets/prepare_cityscapes_dataset.py), "
    "then pass an archive of it with --from-file PATH"
)


@dataclass(frozen=True)
class DatasetEntry:
    """One published dataset archive. `train_flags` are the extra `train.py` flags the dataset needs."""

    name: str
    url: str
    train_flags: Tuple[str, ...] = ()
    restricted: Optional[str] = None  # why the reference's server does not serve it (None: it does)
    sha256: Optional[str] = None  # of the archive; checked before extraction when known

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha256", normalise_sha256(self.sha256))


@dataclass(frozen=True)
class PretrainedEntry:
    """One published generator, and how `test.py` applies it.

    `test_dataroot` is relative to the datasets root; `test_flags` are the flags that rebuild the
    generator the file was saved from (pix2pix: U-Net 256 with batch norm; CycleGAN: ResNet, no dropout).
    """

    name: str
    url: str
    test_dataroot: str
    test_flags: Tuple[str, ...]
    single_image_flags: Tuple[str, ...] = ()  # for the user's own images (pix2pix; CycleGAN uses test_flags)
    sha256: Optional[str] = None  # of the .pth; checked before it becomes latest_net_G.pth when known

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha256", normalise_sha256(self.sha256))


_PIX2PIX_DATA = "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/{name}.tar.gz"
_CYCLEGAN_DATA = "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets/{name}.zip"
_PIX2PIX_MODEL = "http://efrosgans.eecs.berkeley.edu/pix2pix/models-pytorch/{name}.pth"
_CYCLEGAN_MODEL = "http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/{name}.pth"

# pix2pix datasets store A|B side by side; the direction is the one the reference trains them in
# (facades and cityscapes: label map -> photo, which is B -> A in their archives).
_PIX2PIX_DATASETS: Dict[str, Tuple[str, ...]] = {
    "facades": ("--direction", "BtoA"),
    "cityscapes": ("--direction", "BtoA"),
    "night2day": (),
    "edges2handbags": (),
    "edges2shoes": (),
    "maps": (),
}
_CYCLEGAN_DATASETS = (
    "apple2orange", "summer2winter_yosemite", "horse2zebra", "monet2photo", "cezanne2photo", "ukiyoe2photo",
    "vangogh2photo", "maps", "cityscapes", "facades", "iphone2dslr_flower", "ae_photos",
)
# Neither of the reference's scripts serves Cityscapes (its licence forbids redistribution).
_RESTRICTED = {"cityscapes": CITYSCAPES_LICENCE}

_PIX2PIX_NETWORK = ("--netG", "unet_256", "--norm", "batch")
# name -> (paired dataset, direction, phase of the published archive that holds held-out pairs).
# maps and edges2shoes are published with train/ and val/ only.
_PIX2PIX_MODELS: Dict[str, Tuple[str, str, str]] = {
    "edges2shoes": ("edges2shoes", "AtoB", "val"),
    "sat2map": ("maps", "AtoB", "val"),
    "map2sat": ("maps", "BtoA", "val"),
    "facades_label2photo": ("facades", "BtoA", "test"),
    "day2night": ("night2day", "BtoA", "test"),
}
# name -> the CycleGAN test folder holding its inputs (A of `x2y` is x; the style_* models turn photos,
# the B side of `<painter>2photo`, into paintings).
_CYCLEGAN_MODELS: Dict[str, str] = {
    "apple2orange": "apple2orange/testA",
    "orange2apple": "apple2orange/testB",
    "summer2winter_yosemite": "summer2winter_yosemite/testA",
    "winter2summer_yosemite": "summer2winter_yosemite/testB",
    "horse2zebra": "horse2zebra/testA",
    "zebra2horse": "horse2zebra/testB",
    "monet2photo": "monet2photo/testA",
    "style_monet": "monet2photo/testB",
    "style_cezanne": "cezanne2photo/testB",
    "style_ukiyoe": "ukiyoe2photo/testB",
    "style_vangogh": "vangogh2photo/testB",
    "sat2map": "maps/testA",
    "map2sat": "maps/testB",
    "cityscapes_photo2label": "cityscapes/testA",
    "cityscapes_label2photo": "cityscapes/testB",
    "facades_photo2label": "facades/testA",
    "facades_label2photo": "facades/testB",
    "iphone2dslr_flower": "iphone2dslr_flower/testA",
}


def _dataset_table(kind: str, template: str, flags: Dict[str, Tuple[str, ...]]) -> Registry[DatasetEntry]:
    table: Registry[DatasetEntry] = Registry(f"{kind} dataset")
    for name, train_flags in flags.items():
        table.add(name, DatasetEntry(name, template.format(name=name), train_flags, _RESTRICTED.get(name)))
    return table


def _pix2pix_models() -> Registry[PretrainedEntry]:
    table: Registry[PretrainedEntry] = Registry("pix2pix pretrained model")
    for name, (dataset, direction, phase) in _PIX2PIX_MODELS.items():
        phase_flags = () if phase == "test" else ("--phase", phase)
        table.add(name, PretrainedEntry(
            name, _PIX2PIX_MODEL.format(name=name), dataset,
            ("--model", "pix2pix", "--direction", direction) + phase_flags,
            ("--model", "test") + _PIX2PIX_NETWORK + ("--dataset_mode", "single"),
        ))
    return table


def _cyclegan_models() -> Registry[PretrainedEntry]:
    table: Registry[PretrainedEntry] = Registry("CycleGAN pretrained model")
    for name, dataroot in _CYCLEGAN_MODELS.items():
        table.add(name, PretrainedEntry(name, _CYCLEGAN_MODEL.format(name=name), dataroot,
                                        ("--model", "test", "--no_dropout")))
    return table


DATASETS: Registry[Registry[DatasetEntry]] = Registry("dataset kind")
DATASETS.add("pix2pix", _dataset_table("pix2pix", _PIX2PIX_DATA, _PIX2PIX_DATASETS))
DATASETS.add("cyclegan", _dataset_table("CycleGAN", _CYCLEGAN_DATA, {n: () for n in _CYCLEGAN_DATASETS}))

PRETRAINED: Registry[Registry[PretrainedEntry]] = Registry("pretrained model kind")
PRETRAINED.add("pix2pix", _pix2pix_models())
PRETRAINED.add("cyclegan", _cyclegan_models())


def dataset_names(kind: str) -> List[str]:
    """Names `fetch_dataset(kind, ...)` accepts (the command line's choices)."""
    return DATASETS.get(kind).names()


def pretrained_names(kind: str) -> List[str]:
    """Names `fetch_pretrained(kind, ...)` accepts (the command line's choices)."""
    return PRETRAINED.get(kind).names()


# ------------------------------------------------------------------------------------- the SR model zoo

# "basicsr": BasicSR's key names, which the toolkit's rrdbnet/srvgg/msrresnet use; "esrgan-2018": the original
# ESRGAN release's (model.0, model.1.sub.N.RDBk.convj.0, ...).
SR_KEY_LAYOUTS = ("basicsr", "esrgan-2018")


@dataclass(frozen=True)
class SRModelEntry:
    """One super-resolution generator `download.py model sr NAME` installs as `<checkpoints_dir>/<NAME>/`.

    `netG`, `scale` and `options` (the architecture's own flags and --ngf) rebuild the network the file was
    saved from: they become the folder's train_opt.json, so `test.py --name NAME` needs no other flag.
    `wrapper_key` is the dict the publisher nests the weights in (BasicSR's 'params_ema' / 'params');
    `key_layout` 'esrgan-2018' marks the original ESRGAN release, whose key names are converted on install
    (models/inference/published_weights.py). `url` None: no direct download (a Google Drive folder), `page` says
    where
    to fetch the file by hand. `bundled`: a file of this repository (installs offline).
    """

    name: str
    file: str  # the published file's name, as the publisher's page lists it
    page: str  # where a person finds it
    netG: str
    scale: int
    options: Mapping[str, int]
    size_mb: float  # of the published file, in 10^6 bytes
    purpose: str
    url: Optional[str] = None
    wrapper_key: Optional[str] = None
    key_layout: str = "basicsr"
    bundled: Optional[str] = None  # path relative to the repository root
    denoise_pair: Optional[str] = None  # the entry --denoise interpolates these weights with (Real-ESRGAN's -dn)
    sha256: Optional[str] = None  # of the published file; checked before install when known

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha256", normalise_sha256(self.sha256))
        if self.key_layout not in SR_KEY_LAYOUTS:
            raise ValueError(f"{self.name}: key_layout must be one of {SR_KEY_LAYOUTS}, got {self.key_layout!r}")

    @property
    def architecture(self) -> str:
        """`rrdbnet (ngf 64, n_blocks 23, growth_channels 32)`: the network, as --list shows it."""
        return f"{self.netG} ({', '.join(f'{k} {v}' for k, v in self.options.items())})"

    @property
    def source(self) -> str:
        """Where the file comes from when no --from-file / --url is given: the address, page or repository path."""
        return self.bundled or self.url or self.page


_REAL_ESRGAN = "https://github.com/xinntao/Real-ESRGAN/releases/download/{tag}/{file}"
_REAL_ESRGAN_PAGE = "https://github.com/xinntao/Real-ESRGAN/releases/tag/{tag}"
# The original ESRGAN files are only on Google Drive (linked from https://github.com/xinntao/ESRGAN), which
# serves large files through a confirmation page: no direct address.
_ESRGAN_PAGE = "https://drive.google.com/drive/folders/17VYV_SoZZesU6mbxz2dMAIccSSlqLecY (see github.com/xinntao/ESRGAN)"
_BASICSR_PAGE = ("https://drive.google.com/drive/folders/1XN4WXKJ53KQ0Cu0Yv-uCt8DZWq6uufaP (BasicSR's reproduced "
                 "models, see github.com/XPixelGroup/BasicSR/blob/master/docs/ModelZoo.md)")
_RRDB = {"ngf": 64, "n_blocks": 23, "growth_channels": 32}
_SRVGG = {"ngf": 64, "n_conv": 32}


def _real_esrgan(name: str, file: str, tag: str, netG: str, scale: int, options: Mapping[str, int], size_mb: float,
                 purpose: str, wrapper_key: str, denoise_pair: Optional[str] = None) -> SRModelEntry:
    return SRModelEntry(name, file, _REAL_ESRGAN_PAGE.format(tag=tag), netG, scale, dict(options), size_mb, purpose,
                        url=_REAL_ESRGAN.format(tag=tag, file=file), wrapper_key=wrapper_key,
                        denoise_pair=denoise_pair)


SR_MODELS: Registry[SRModelEntry] = Registry("SR zoo model")
for _entry in (
    _real_esrgan("realesrgan-x4plus", "RealESRGAN_x4plus.pth", "v0.1.0", "rrdbnet", 4, _RRDB, 67.0,
                 "real-world photos: removes blur, noise and JPEG artefacts (GAN: sharp, invented texture)",
                 "params_ema"),
    _real_esrgan("realesrnet-x4plus", "RealESRNet_x4plus.pth", "v0.1.1", "rrdbnet", 4, _RRDB, 67.0,
                 "real-world photos without the GAN stage: smoother, fewer invented details", "params_ema"),
    _real_esrgan("realesrgan-x4plus-anime-6b", "RealESRGAN_x4plus_anime_6B.pth", "v0.2.2.4", "rrdbnet", 4,
                 {**_RRDB, "n_blocks": 6}, 17.9, "anime and illustrations (6 blocks: smaller and faster than x4plus)",
                 "params_ema"),
    _real_esrgan("realesrgan-x2plus", "RealESRGAN_x2plus.pth", "v0.2.1", "rrdbnet", 2, _RRDB, 67.1,
                 "real-world photos at x2", "params_ema"),
    _real_esrgan("realesr-general-x4v3", "realesr-general-x4v3.pth", "v0.2.5.0", "srvgg", 4, _SRVGG, 4.9,
                 "general scenes, fast (small VGG-style net); --denoise blends in realesr-general-wdn-x4v3",
                 "params", denoise_pair="realesr-general-wdn-x4v3"),
    _real_esrgan("realesr-general-wdn-x4v3", "realesr-general-wdn-x4v3.pth", "v0.2.5.0", "srvgg", 4, _SRVGG, 4.9,
                 "realesr-general-x4v3 with strong denoising (the other end of --denoise)", "params"),
    _real_esrgan("realesr-animevideov3", "realesr-animevideov3.pth", "v0.2.5.0", "srvgg", 4,
                 {**_SRVGG, "n_conv": 16}, 2.5, "anime video frames, fastest", "params"),
    SRModelEntry("esrgan-x4", "RRDB_ESRGAN_x4.pth", _ESRGAN_PAGE, "rrdbnet", 4, dict(_RRDB), 67.0,
                 "the original ESRGAN (PIRM 2018): bicubic-degraded images, perceptual quality",
                 key_layout="esrgan-2018"),
    SRModelEntry("esrgan-psnr-x4", "RRDB_PSNR_x4.pth", _ESRGAN_PAGE, "rrdbnet", 4, dict(_RRDB), 67.0,
                 "the original ESRGAN's PSNR-oriented RRDB: bicubic x4, highest PSNR of the zoo",
                 key_layout="esrgan-2018"),
    SRModelEntry("msrresnet-x4", "001_MSRResNet_x4_f64b16_DIV2K_1000k_B16G1_wandb.pth", _BASICSR_PAGE, "msrresnet",
                 4, {"ngf": 64, "n_blocks": 16}, 6.1, "BasicSR's SRResNet baseline without BN: bicubic x4",
                 wrapper_key="params"),
    # Trained by this toolkit (docs/ has its model card): the architecture of its training run, stored in fp16.
    SRModelEntry("gan-translate-x4", "gan-translate-x4.pth", "models/zoo/ in this repository", "msrresnet", 4,
                 {"ngf": 64, "n_blocks": 8}, 1.9, "this toolkit's own model: bicubic x4 photos; ships with the "
                 "repository, installs offline", bundled="models/zoo/gan-translate-x4.pth"),
    SRModelEntry("gan-translate-realworld-x4", "gan-translate-realworld-x4.pth", "models/zoo/ in this repository",
                 "srvgg", 4, _SRVGG, 2.5, "this toolkit's real-world model: photos with blur, noise and JPEG "
                 "blocks (pixel loss, no GAN); ships with the repository, installs offline",
                 bundled="models/zoo/gan-translate-realworld-x4.pth"),
):
    SR_MODELS.add(_entry.name, _entry)


def sr_zoo_name(name: str) -> Optional[str]:
    """The zoo name `name` means, or None: the zoo's own name, or the publisher's, which is the file's stem as
    Real-ESRGAN's inference script takes it (`RealESRGAN_x4plus`, `realesr-animevideov3`; as that script
    does, anything from the first '.' on is dropped: `RealESRGAN_x4plus.pth`)."""
    stem = name.split(".")[0]
    for candidate in (name, stem):
        if candidate in SR_MODELS:
            return candidate
    return next((n for n in SR_MODELS.names() if SR_MODELS.get(n).file.split(".")[0] == stem), None)


def closest_sr_names(name: str, others: Sequence[str] = ()) -> List[str]:
    """Up to three zoo names (the zoo's or the publishers') and `others` (e.g. saved runs) that look like `name`:
    the "did you mean" of an unknown -n."""
    known = [*SR_MODELS.names(), *(SR_MODELS.get(n).file.split(".")[0] for n in SR_MODELS.names()), *others]
    lowered = {k.lower(): k for k in known}
    return [lowered[m] for m in difflib.get_close_matches(name.lower(), list(lowered), n=3, cutoff=0.6)]


def sr_model_names() -> List[str]:
    """Names `install_sr_model` accepts (the command line's choices)."""
    return SR_MODELS.names()


def sr_model_table() -> List[str]:
    """The lines of `download.py model sr --list`: name, scale, architecture, size, what it is for, source."""
    rows = [("NAME", "SCALE", "ARCHITECTURE", "SIZE", "FOR")]
    for name in SR_MODELS.names():
        e = SR_MODELS.get(name)
        where = " [in the repository]" if e.bundled else "" if e.url else " [manual download, then --from-file]"
        rows.append((name, f"x{e.scale}", e.architecture, f"{e.size_mb:.1f} MB", e.purpose + where))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[4] for row in rows]
