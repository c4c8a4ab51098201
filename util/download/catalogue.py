"""The catalogue: every published dataset and pretrained generator, its address and how to use it.

One table per kind (`DATASETS`, `PRETRAINED`, both `Registry`s of `Registry`s) is the single source of
names and addresses: the command line takes its choices from them, the fetchers look entries up in them,
and the hints printed after a download read their flags from them. An entry may carry the `sha256` of its
file; when it does, the file is verified before it is installed (the reference's own files are published
without hashes, so theirs are None).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

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
