"""FID and KID of generated images against real ones, through torch-fidelity (the TensorFlow-Inception protocol).

Why torch-fidelity (the `[metrics]` extra), of the libraries that compute FID in PyTorch:
  * Agreement with the standard FID (TTUR's TensorFlow code, the numbers papers publish): its Inception-v3 is
    the TF graph's, with the TF weights `inception-2015-12-05` converted to PyTorch (the file pytorch-fid
    publishes as pt_inception-2015-12-05-6726825d.pth, same bytes), and it resizes to 299x299 inside the network
    with a bilinear resampler written to match TF 1.x's ResizeBilinear, as the TF graph does. Its FID is
    TTUR's formula; its KID is the reference polynomial-kernel MMD (degree 3) over 100 random subsets.
  * torchmetrics' FrechetInceptionDistance / KernelInceptionDistance build on this very network (they need
    torch-fidelity installed), but FrechetInceptionDistance resizes with antialiasing by default
    (antialias=True), which moves the numbers away from the TF FID; using torchmetrics would add a layer and a
    dependency (lightning-utilities) around the same network.
  * pytorch-fid (last release 0.3.0, 2023) resizes with torch's bilinear interpolate (not TF's) and takes
    weights only from its URL; clean-fid (0.1.35, 2022) defaults to its own "clean" resizing, and its
    TF-compatible mode loads a TorchScript file, which cannot be read with weights_only=True.
  * torch-fidelity is maintained (0.4.0, 2026), is an 86 KB pure-Python wheel and needs nothing the toolkit
    does not already install (torch, torchvision, numpy, pillow, tqdm).

What is ours, and why: the folder walk and decoding (util/images/reading: greyscale, RGBA, palette and 16-bit
files become 8-bit RGB, EXIF orientation applied, a bad file is one error naming it); batching by image size
(the library's own folder loader stacks images, so a folder of mixed sizes fails there; each size is batched
apart and every image is resized by the network itself, as the protocol says); and the weights. The library
reads a weights file with `torch.load(weights_only=False)` and downloads with `torch.hub.load_state_dict_from_url`
(which unpickles in full as well), so here the file (--inception_weights, or torch's hub cache, where the
library downloads it) is read with weights_only=True and the library gets that state dict, re-serialised from
tensors only. Offline with neither, the error says both ways in one line. Random weights are never used.

Features, FID and KID are the library's (`FeatureExtractorInceptionV3`, `fid_features_to_statistics`,
`fid_statistics_to_metric`, `kid_features_to_metric`), called with the generated images as input 1 and the real
ones as input 2, so `fidelity --input1 FAKE --input2 REAL --fid --kid --kid-subset-size N` gives the same numbers.
One exception, for speed: below 1024 images a set, FID's matrix square root term is computed exactly in the
images' space instead of the library's 2048 x 2048 eigendecomposition (`frechet_distance` says how; it takes
the 10 to 50 s that term costs on a CPU down to milliseconds), equal to the library's value to ~1e-7.

Small sets: FID is biased (upward, falling as the image count grows) below a few thousand images, so FIDs are
comparable only at equal counts; KID is unbiased and comes with its standard deviation over subsets. The KID
subset size defaults to half the smaller set, at most 1000 (the library's default for large sets): subsets of
the whole set would all be the same set, and their standard deviation 0, which says nothing.
"""
from __future__ import annotations

import hashlib
import io
import logging
import os
import socket
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import torch
from tqdm import tqdm

from .errors import CheckpointError, DataError, OptionError, ToolkitError
from .fileio import file_problem, load_torch_weights_only
from .images.reading import IMG_EXTENSIONS, load_image, make_dataset

logger = logging.getLogger(__name__)

__all__ = ["BIAS_NOTE", "FIDResult", "InceptionFeatures", "available", "cached_weights_path",
           "fid_kid", "folder_images", "frechet_distance", "kid_subset_size", "resolve_weights", "weights_url"]

INSTALL_HINT = "pip install -e '.[metrics]' (or pip install torch-fidelity)"
FEATURE_LAYER = "2048"  # pool3: the 2048 features FID and KID are defined on
EXTRACTOR_NAME = "inception-v3-compat"  # the library's registry name of this network
STANDARD_SHA256_PREFIX = "6726825d"  # of the TF FID weights, as torch hub file names carry it
KID_SUBSETS = 100
KID_MAX_SUBSET_SIZE = 1000
DOWNLOAD_TIMEOUT_S = 60.0
BIAS_NOTE = ("FID is biased upward below a few thousand images (it falls as the count grows): compare FIDs only at "
             "equal image counts, and for small sets prefer KID (unbiased) with its std")


def available() -> bool:
    """Whether torch-fidelity can be imported (without importing it)."""
    import importlib.util

    return importlib.util.find_spec("torch_fidelity") is not None


def _library() -> Tuple[Any, Any, Any]:
    """torch-fidelity's Inception, FID and KID modules; a one-line ToolkitError when it is not installed."""
    try:
        import torch_fidelity.feature_extractor_inceptionv3 as inception
        import torch_fidelity.metric_fid as metric_fid
        import torch_fidelity.metric_kid as metric_kid
    except ImportError as e:
        raise ToolkitError(f"FID / KID need the torch-fidelity package, which is not installed: {INSTALL_HINT}") from e
    return inception, metric_fid, metric_kid


def weights_url() -> str:
    """Where the library downloads the TF FID Inception weights from."""
    return _library()[0].URL_INCEPTION_V3


def cached_weights_path() -> str:
    """Where the library's download lands: torch's hub cache ($TORCH_HOME/hub/checkpoints, by default
    ~/.cache/torch/hub/checkpoints), under the URL's file name."""
    return os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(weights_url()))


def _download(url: str, path: str) -> None:
    """Download `url` to `path` as torch hub does (temporary file, then renamed), checking the SHA-256 prefix.
    A bounded socket timeout: a network that drops packets must end in an error, not a hang."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        torch.hub.download_url_to_file(url, path, hash_prefix=STANDARD_SHA256_PREFIX, progress=True)
    finally:
        socket.setdefaulttimeout(old)


def resolve_weights(path: Optional[str] = None, flag: str = "--inception_weights") -> str:
    """The Inception weights file to use: `path` when given, else the library's cached download, else downloaded
    into that cache now. CheckpointError (one line, exit 2) when `path` is not a readable file, or when there
    is no cached file and the download fails: the message gives the URL, the flag that takes the file and the
    cache path where it may be put instead."""
    if path is not None:
        problem = file_problem(path)
        if problem is not None:
            raise CheckpointError(f"{flag} {path}: {problem}")
        return path
    cached = cached_weights_path()
    if os.path.isfile(cached):
        return cached
    url = weights_url()
    logger.info("downloading the FID Inception weights (%s) to %s", url, cached)
    try:
        _download(url, cached)
    except (OSError, RuntimeError) as e:  # URLError, timeouts and HTTP errors are OSErrors; a bad hash RuntimeError
        reason = " ".join(str(e).split()) or type(e).__name__
        raise CheckpointError(f"the FID Inception weights are not in torch's cache and could not be downloaded "
                              f"({reason}): download {url} and pass it with {flag} PATH, or put it at {cached}") from e
    return cached


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class InceptionFeatures:
    """The library's Inception-v3 (pool3, 2048 features) on `device`, with weights read from `path` safely.
    (`layer`: another of its outputs, '64', '192' or '768' features; FID and KID are defined on pool3.)

    `standard` says whether the file is the TF FID weights (SHA-256 prefix 6726825d); other weights of the same
    shape load, with a warning that their numbers are not comparable with published FID / KID.
    """

    def __init__(self, path: str, device: torch.device = torch.device("cpu"), batch_size: int = 50,
                 layer: str = FEATURE_LAYER) -> None:
        inception, _, _ = _library()
        state = load_torch_weights_only(path)  # CheckpointError for a pickle with code, a damaged file
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise CheckpointError(f"cannot load {path}: not a state dict of tensors (the FID Inception weights are "
                                  f"one: {weights_url()})")
        # The library unpickles its weights argument with weights_only=False: it gets these tensors, re-serialised.
        buffer = io.BytesIO()
        torch.save(state, buffer)
        buffer.seek(0)
        del state
        try:
            self.model = inception.FeatureExtractorInceptionV3(EXTRACTOR_NAME, [layer],
                                                               feature_extractor_weights_path=buffer)
        except RuntimeError as e:  # load_state_dict: missing / unexpected keys, wrong shapes
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise CheckpointError(f"cannot load {path}: not the weights of torch-fidelity's Inception-v3 ({first}); "
                                  f"the FID weights are {weights_url()}") from e
        self.model.to(device)
        self.layer = layer
        self.device = device
        self.batch_size = batch_size
        self.path = path
        self.sha256 = _sha256(path)
        self.standard = self.sha256.startswith(STANDARD_SHA256_PREFIX)
        if not self.standard:
            logger.warning("%s is not the TF FID Inception weights (SHA-256 %s..., expected %s...): its FID / KID are "
                           "not comparable with published ones", path, self.sha256[:8], STANDARD_SHA256_PREFIX)

    def describe(self) -> Dict[str, Any]:
        """What a report should say about the network that measured it."""
        import torch_fidelity

        return {"library": f"torch-fidelity {torch_fidelity.__version__}", "network": "Inception-v3 (TF FID graph), "
                f"{self.layer} features, bilinear resize to 299x299 as TF 1.x", "weights": self.path,
                "weights_sha256": self.sha256, "standard_weights": self.standard}

    def _forward(self, batch: List[Tuple[int, torch.Tensor]], out: List[Optional[torch.Tensor]]) -> None:
        """Features of images of one size: `batch` is (index, (3, H, W) uint8) pairs; results go to out[index]."""
        images = torch.stack([image for _, image in batch]).to(self.device)  # (B, 3, H, W) uint8
        with torch.no_grad():
            features = self.model(images)[0].cpu()  # (B, 2048) float32; the network resizes to 299x299 itself
        for (index, _), row in zip(batch, features):
            out[index] = row

    def __call__(self, paths: Sequence[str], desc: str = "inception") -> torch.Tensor:
        """(N, 2048) float32 features of the images at `paths`, in that order.

        Images are read as 8-bit RGB (load_image) and batched by size: at most `batch_size` images are held, and
        each flush runs one batch per distinct size among them. DataError naming a file that cannot be read.
        """
        out: List[Optional[torch.Tensor]] = [None] * len(paths)
        pending: Dict[Tuple[int, int], List[Tuple[int, torch.Tensor]]] = {}
        held = 0
        with tqdm(total=len(paths), unit="img", desc=desc, disable=None) as progress:
            for index, path in enumerate(paths):
                pixels = np.array(load_image(path, "RGB"), dtype=np.uint8)  # (H, W, 3)
                image = torch.from_numpy(pixels).permute(2, 0, 1)  # (3, H, W)
                pending.setdefault((image.shape[1], image.shape[2]), []).append((index, image))
                held += 1
                if held == self.batch_size or index == len(paths) - 1:
                    for batch in pending.values():
                        self._forward(batch, out)
                    progress.update(held)
                    pending, held = {}, 0
        return torch.stack([row for row in out if row is not None])


def folder_images(folder: str, what: str) -> List[str]:
    """The sorted image files under `folder` (make_dataset: recursive, hidden files skipped), at least 2 of them.
    DataError naming the folder (`what`: 'real images', '--fid_real_dir') when it is missing, empty or holds one
    image."""
    if not os.path.isdir(folder):
        raise DataError(f"{what} folder {folder} does not exist", path=folder)
    try:
        paths = make_dataset(folder)
    except DataError as e:
        exts = ", ".join(ext.lstrip(".") for ext in IMG_EXTENSIONS)
        raise DataError(f"{what} folder {folder} holds no images ({exts})", path=folder) from e
    if len(paths) < 2:
        raise DataError(f"{what} folder {folder} holds 1 image: FID and KID need at least 2 per set "
                        f"(and FID thousands to be stable)", path=folder)
    return paths


def kid_subset_size(n_real: int, n_fake: int, requested: Optional[int] = None,
                    flag: str = "--kid_subset_size") -> int:
    """`requested`, checked to be from 2 to the smaller set's count (OptionError naming `flag`), or by default
    half the smaller set, at least 2 and at most 1000 (module docstring)."""
    smaller = min(n_real, n_fake)
    if requested is None:
        return max(2, min(KID_MAX_SUBSET_SIZE, smaller // 2))
    if not 2 <= requested <= smaller:
        raise OptionError(f"{flag} {requested}: must be from 2 to the smaller image count ({smaller})")
    return requested


class FIDResult(NamedTuple):
    fid: float
    kid_mean: float
    kid_std: float
    kid_subset_size: int
    kid_subsets: int
    n_real: int
    n_fake: int

    def to_dict(self) -> Dict[str, Any]:
        return self._asdict()


def frechet_distance(fake: torch.Tensor, real: torch.Tensor) -> float:
    """FID of features `fake` (N, D) against `real` (M, D): the library's statistics (mean, covariance) and, for
    sets of more than D/2 images, its formula; for smaller sets the same quantity computed in the images' space.

    Why: the formula's costly term is tr sqrt(S1 S2), which the library takes from the eigenvalues of the
    D x D product, O(D^3) whatever the count: 10 to 50 s for D = 2048 on a CPU. With Ai the centred features
    (N x D), S1 S2 = A1' (A1 A2') A2 / ((N-1)(M-1)), whose non-zero eigenvalues are the squared singular values
    of C = A1 A2' / sqrt((N-1)(M-1)) (N x M): tr sqrt(S1 S2) is the sum of C's singular values, exactly, in
    O(N M D). Both ways agree to ~1e-7 relative (tests/util/test_fid.py).
    """
    _, metric_fid, _ = _library()
    stats_fake = metric_fid.fid_features_to_statistics(fake)  # mu (D,), sigma (D, D)
    stats_real = metric_fid.fid_features_to_statistics(real)
    n_fake, n_real, dims = len(fake), len(real), fake.shape[1]
    if min(n_fake, n_real) > dims // 2:
        return float(metric_fid.fid_statistics_to_metric(stats_fake, stats_real, verbose=False)[
            metric_fid.KEY_METRIC_FID])
    a = fake.numpy().astype(np.float64)
    b = real.numpy().astype(np.float64)
    a -= a.mean(axis=0)  # (N, D)
    b -= b.mean(axis=0)  # (M, D)
    cross = a @ b.T / np.sqrt((n_fake - 1) * (n_real - 1))  # (N, M)
    trace_sqrt = float(np.linalg.svd(cross, compute_uv=False).sum())
    diff = stats_fake["mu"] - stats_real["mu"]
    return float(diff.dot(diff) + np.trace(stats_fake["sigma"]) + np.trace(stats_real["sigma"]) - 2 * trace_sqrt)


def fid_kid(real: torch.Tensor, fake: torch.Tensor, subset_size: Optional[int] = None,
            kid_subsets: int = KID_SUBSETS, flag: str = "--kid_subset_size") -> FIDResult:
    """FID and KID (mean, std over `kid_subsets` random subsets) of features `fake` (N, 2048) against `real`
    (M, 2048): `frechet_distance` and the library's KID. OptionError naming `flag` for a subset size outside
    2..min(N, M)."""
    _, metric_fid, metric_kid = _library()
    n_real, n_fake = len(real), len(fake)
    size = kid_subset_size(n_real, n_fake, subset_size, flag)
    if kid_subsets < 1:
        raise OptionError(f"the number of KID subsets must be >= 1, got {kid_subsets}")
    fid = frechet_distance(fake, real)
    kid = metric_kid.kid_features_to_metric(fake, real, kid_subsets=kid_subsets, kid_subset_size=size, verbose=False)
    return FIDResult(float(fid), float(kid[metric_kid.KEY_METRIC_KID_MEAN]), float(kid[metric_kid.KEY_METRIC_KID_STD]),
                     size, kid_subsets, n_real, n_fake)

