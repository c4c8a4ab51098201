"""FID and KID (util/fid.py, scripts/eval_fid.py, test.py --fid) against torch-fidelity's own computation.

No test needs the real Inception weights (95 MB, a download): `inception_weights` builds torch-fidelity's network,
randomises it and saves its state_dict, a file of the real one's keys and shapes. The numbers are meaningless as
FIDs, but every step that runs on the real weights runs on these: the safe loading, the library's network and
resize, its FID and KID. Each test uses 2-4 small images a folder, with one torch thread (conftest.py).
"""
from __future__ import annotations

import io
import json
import math
import shutil
import sys
from pathlib import Path
from typing import List

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import ROOT, load_script
from util import fid
from util.cli import run_cli
from util.errors import CheckpointError, DataError, OptionError, ToolkitError
from util.reports.fid_results import fid_pairs

torch_fidelity = pytest.importorskip("torch_fidelity", reason="FID / KID need the [metrics] extra (torch-fidelity)")
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3  # noqa: E402

FACADES = ROOT.parent / "shared" / "data" / "paired" / "facades"
CPU = ["--gpu_ids", "-1"]

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


# ---- fixtures -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def inception_weights(tmp_path_factory) -> Path:
    """torch-fidelity's Inception-v3 with random weights, saved as its state_dict (the real file's format).

    The library's constructor always loads weights, so it is built with its loading step skipped, then every
    convolution and batch norm gets random values (He-scaled, so activations keep their size through the
    network's depth and the features differ between images)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(FeatureExtractorInceptionV3, "load_state_dict", lambda self, state, strict=True: None)
        empty = io.BytesIO()
        torch.save({}, empty)
        empty.seek(0)
        network = FeatureExtractorInceptionV3(fid.EXTRACTOR_NAME, [fid.FEATURE_LAYER],
                                              feature_extractor_weights_path=empty)
    generator = torch.Generator().manual_seed(0)
    for module in network.modules():
        if isinstance(module, torch.nn.Conv2d):
            fan_in = module.weight[0].numel()
            module.weight.data = torch.randn(module.weight.shape, generator=generator) * math.sqrt(2.0 / fan_in)
        elif isinstance(module, torch.nn.BatchNorm2d):
            module.weight.data = 0.5 + torch.rand(module.weight.shape, generator=generator)
            module.bias.data = 0.1 * torch.randn(module.bias.shape, generator=generator)
    path = tmp_path_factory.mktemp("inception") / "random-inception.pth"
    torch.save(network.state_dict(), path)
    return path


def noise(shape, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """real: 3 RGB 64x64 images; fake: 3 of mixed sizes and modes (RGB 48x80, greyscale and RGBA 64x64);
    pair and copy: 2 RGB images and their copies."""
    root = tmp_path_factory.mktemp("fid_images")
    for name in ("real", "fake", "pair"):
        (root / name).mkdir()
    for i in range(3):
        Image.fromarray(noise((64, 64, 3), i)).save(root / "real" / f"{i}.png")
    Image.fromarray(noise((48, 80, 3), 10)).save(root / "fake" / "0.png")
    Image.fromarray(noise((64, 64), 11), mode="L").save(root / "fake" / "1.png")
    Image.fromarray(noise((64, 64, 4), 12), mode="RGBA").save(root / "fake" / "2.png")
    for i in range(2):
        Image.fromarray(noise((40, 40, 3), 20 + i)).save(root / "pair" / f"{i}.png")
    shutil.copytree(root / "pair", root / "copy")
    return root


@pytest.fixture(scope="module")
def network(inception_weights) -> fid.InceptionFeatures:
    return fid.InceptionFeatures(str(inception_weights), torch.device("cpu"), batch_size=8)


@pytest.fixture(scope="module")
def eval_fid():
    return load_script("scripts/eval_fid.py")


def images(folder: Path, pattern: str = "*.png") -> List[str]:
    return [str(p) for p in sorted(folder.glob(pattern))]


# ---- the metric -----------------------------------------------------------------------------------------------


def test_frechet_distance_equals_the_library_formula():
    """Below D/2 images a set, FID's square-root term comes from the singular values of the images' cross
    products instead of the library's D x D eigenvalues (util/fid.frechet_distance): the same number."""
    from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_features_to_statistics, fid_statistics_to_metric

    generator = torch.Generator().manual_seed(0)
    for n_fake, n_real in ((2, 2), (3, 5), (9, 4), (40, 50)):  # D = 64: the last pair takes the library's way
        fake = torch.relu(torch.randn(n_fake, 64, generator=generator) + 0.3)  # (N, 64), non-negative like pool3
        real = torch.relu(torch.randn(n_real, 64, generator=generator))
        library = fid_statistics_to_metric(fid_features_to_statistics(fake), fid_features_to_statistics(real),
                                           verbose=False)[KEY_METRIC_FID]
        assert fid.frechet_distance(fake, real) == pytest.approx(library, rel=1e-6), (n_fake, n_real)
        assert library > 0.1
    same = torch.relu(torch.randn(5, 64, generator=generator))
    assert abs(fid.frechet_distance(same, same.clone())) < 1e-9


def test_equals_torch_fidelity_on_mixed_sizes_and_modes(folders, inception_weights):
    """Our pipeline (reading, mode conversion, batching by size, safe weights, FID / KID calls) against the
    library's own run on the same folders. On its 768 features (Mixed_6e, after all but the last 3 blocks):
    the library's FID eigendecomposes a D x D matrix, 20 times cheaper at 768 than at pool3's 2048."""
    network = fid.InceptionFeatures(str(inception_weights), torch.device("cpu"), batch_size=8, layer="768")
    # Batched by size: the two 64x64 fakes together, the 48x80 one apart (KID would differ if that changed
    # the order of the features: its subsets are drawn by index).
    ours = fid.fid_kid(network(images(folders / "real")), network(images(folders / "fake")))
    assert ours.kid_subset_size == 2 and ours.kid_subsets == 100 and (ours.n_real, ours.n_fake) == (3, 3)
    # Its loader: PIL convert('RGB') (as load_image for these modes), one image a batch (it cannot stack mixed
    # sizes); its network, loading the weights file itself.
    theirs = torch_fidelity.calculate_metrics(
        input1=str(folders / "fake"), input2=str(folders / "real"), fid=True, kid=True, kid_subset_size=2,
        feature_layer_fid="768", feature_layer_kid="768", feature_extractor_weights_path=str(inception_weights),
        cuda=False, batch_size=1, save_cpu_ram=True, cache=False, verbose=False)
    assert ours.fid == pytest.approx(theirs["frechet_inception_distance"], rel=1e-4)
    assert ours.kid_mean == pytest.approx(theirs["kernel_inception_distance_mean"], rel=1e-4)
    assert ours.kid_std == pytest.approx(theirs["kernel_inception_distance_std"], rel=1e-4)
    # Different images: clearly above the numerical floor; KID's spread over subsets of 2 of 3 is reported.
    assert ours.fid > 1e-2 and ours.kid_std > 0


def test_kid_subset_size_defaults_and_limits():
    assert fid.kid_subset_size(4, 6) == 2 and fid.kid_subset_size(2, 2) == 2 and fid.kid_subset_size(3, 9) == 2
    assert fid.kid_subset_size(501, 900) == 250 and fid.kid_subset_size(5000, 2500) == 1000
    assert fid.kid_subset_size(10, 10, 10) == 10
    for bad in (1, 11):
        with pytest.raises(OptionError, match=rf"--kid_subset_size {bad}: must be from 2 to the smaller image count"):
            fid.kid_subset_size(10, 12, bad)


def test_pairs_follow_the_model_visuals():
    assert fid_pairs(["real_A", "fake_B", "real_B"], None) == [("fake_B", "real_B")]
    cycle = ["real_A", "fake_B", "rec_A", "idt_B", "real_B", "fake_A", "rec_B", "idt_A"]
    assert fid_pairs(cycle, None) == [("fake_B", "real_B"), ("fake_A", "real_A")]
    assert fid_pairs(cycle, "/data/testB") == [("fake_B", None)]
    assert fid_pairs(["real", "fake"], "/data/testB") == [("fake", None)]
    with pytest.raises(OptionError, match="--fid_real_dir"):  # the test model's `real` is its input domain
        fid_pairs(["real", "fake"], None)


# ---- weights --------------------------------------------------------------------------------------------------


def test_offline_without_weights_is_one_line_naming_both_ways(eval_fid, folders, tmp_path, monkeypatch, capsys,
                                                             forbid_network):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # an empty cache
    downloads = []
    download = fid._download
    monkeypatch.setattr(fid, "_download", lambda url, path: (downloads.append((url, path)), download(url, path)))
    rc = run_cli(eval_fid.main, [str(folders / "pair"), str(folders / "copy"), *CPU])
    err = capsys.readouterr().err
    assert rc == 2
    assert downloads == [(fid.weights_url(), fid.cached_weights_path())]  # tried, and refused (no network here)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    cached = tmp_path / "torch" / "hub" / "checkpoints" / "weights-inception-2015-12-05-6726825d.pth"
    assert fid.weights_url() in lines[0] and "--inception_weights PATH" in lines[0] and str(cached) in lines[0]
    assert not cached.exists()


def test_weights_from_the_cache_are_used(folders, inception_weights, tmp_path, monkeypatch, forbid_network):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cached = Path(fid.cached_weights_path())
    assert cached.parent == tmp_path / "torch" / "hub" / "checkpoints"
    cached.parent.mkdir(parents=True)
    shutil.copy(inception_weights, cached)
    assert fid.resolve_weights(None) == str(cached) and not forbid_network


def test_unsafe_or_foreign_weights_are_refused(tmp_path):
    pickled = tmp_path / "code.pth"
    torch.save({"fc.weight": torch.zeros(1), "hook": print}, pickled)  # a global that weights_only refuses
    with pytest.raises(CheckpointError, match="it holds Python objects"):
        fid.InceptionFeatures(str(pickled))
    foreign = tmp_path / "foreign.pth"
    torch.save({"conv.weight": torch.zeros(3, 3, 3, 3)}, foreign)
    with pytest.raises(CheckpointError, match="not the weights of torch-fidelity's Inception-v3"):
        fid.InceptionFeatures(str(foreign))
    with pytest.raises(CheckpointError, match="--inception_weights .*missing.pth: no such file"):
        fid.resolve_weights(str(tmp_path / "missing.pth"))


# ---- scripts/eval_fid.py ------------------------------------------------------------------------------------


def test_eval_fid_identical_folders(eval_fid, folders, inception_weights, tmp_path, capsys):
    out = tmp_path / "fid.json"
    assert eval_fid.main([str(folders / "pair"), str(folders / "copy"), "--inception_weights", str(inception_weights),
                          "--json", str(out), "--batch_size", "1", *CPU]) == 0
    printed = capsys.readouterr().out
    report = json.loads(out.read_text(encoding="utf-8"))
    # Pixel-identical sets, features extracted apart: FID at the float32 features' numerical floor. (KID is
    # not ~0 here: with subsets of 2 its unbiased estimate is noisy around 0 even for one distribution.)
    assert abs(report["fid"]) < 1e-3, report
    assert (report["n_real"], report["n_fake"], report["kid_subset_size"]) == (2, 2, 2)
    assert report["standard_weights"] is False and report["weights"] == str(inception_weights)
    assert report["library"] == f"torch-fidelity {torch_fidelity.__version__}"
    assert f"FID {report['fid']:.4f}" in printed
    assert f"KID {report['kid_mean']:.6f} ± {report['kid_std']:.6f} (100 subsets of 2 images)" in printed
    assert f"images: 2 real in {folders / 'pair'}, 2 generated in {folders / 'copy'}" in printed
    assert "FID is biased upward below a few thousand images" in printed


def test_eval_fid_bad_folders_are_one_line_errors(eval_fid, folders, inception_weights, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "one").mkdir()
    shutil.copy(folders / "real" / "0.png", tmp_path / "one" / "0.png")
    broken = tmp_path / "broken"
    shutil.copytree(folders / "real", broken)
    (broken / "0.png").write_bytes(b"not a png at all")  # the first image read: no Inception batch runs
    real, weights = str(folders / "real"), ["--inception_weights", str(inception_weights), *CPU]
    cases = [([real, str(tmp_path / "nowhere")], f"generated images folder {tmp_path / 'nowhere'} does not exist"),
             ([str(tmp_path / "empty"), real], f"real images folder {tmp_path / 'empty'} holds no images"),
             ([real, str(tmp_path / "one")], "holds 1 image: FID and KID need at least 2"),
             ([real, real, "--kid_subset_size", "4"], "--kid_subset_size 4: must be from 2 to the smaller"),
             ([real], "the following arguments are required: fake_dir"),
             ([str(broken), real], f"cannot read image {broken / '0.png'}")]
    for argv, expected in cases:
        assert run_cli(eval_fid.main, argv + weights) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and expected in err[0], (argv, err)


# ---- test.py --fid --------------------------------------------------------------------------------------------


def test_test_py_fid_writes_the_page_and_json(train_main, test_main, network, inception_weights, tmp_path):
    if not FACADES.is_dir():
        pytest.skip(f"shared test images {FACADES} are absent (expected at ../shared/data from the project root)")
    net = ["--dataroot", str(FACADES), "--name", "p2p_fid", "--model", "pix2pix", "--direction", "BtoA",
           "--netG", "unet_128", "--ngf", "8", "--crop_size", "128", "--checkpoints_dir", str(tmp_path / "ckpt"),
           *CPU, "--num_threads", "0"]
    assert train_main(net + ["--ndf", "8", "--load_size", "128", "--n_epochs", "1", "--n_epochs_decay", "0",
                             "--display_id", "0", "--seed", "0"]) == 0
    # The 2 training pairs (the facades test split has 1; FID and KID need 2 a set).
    assert test_main(net + ["--load_size", "128", "--phase", "train", "--results_dir", str(tmp_path / "results"),
                            "--fid", "--inception_weights", str(inception_weights)]) == 0
    page_dir = tmp_path / "results" / "p2p_fid" / "train_latest"
    report = json.loads((page_dir / "fid.json").read_text(encoding="utf-8"))
    [row] = report["comparisons"]
    assert row["comparison"] == "fake_B vs real_B" and (row["n_real"], row["n_fake"]) == (2, 2)
    assert report["count"] == 1 and "mean" not in report and "FID is biased upward" in report["note"]
    # The same numbers from the result files themselves: test.py paired fake_B with real_B, not real_A.
    expected = fid.fid_kid(network(images(page_dir / "images", "*_real_B.png")),
                           network(images(page_dir / "images", "*_fake_B.png")))
    assert expected != fid.fid_kid(network(images(page_dir / "images", "*_real_A.png")),
                                   network(images(page_dir / "images", "*_fake_B.png")))
    assert row["fid"] == pytest.approx(expected.fid, rel=1e-6) and row["fid"] > 1e-2
    assert (row["kid_mean"], row["kid_std"]) == pytest.approx((expected.kid_mean, expected.kid_std), rel=1e-6)
    page = (page_dir / "index.html").read_text(encoding="utf-8")
    assert "FID / KID of the generated images. FID is biased upward below a few thousand images" in page
    assert f">{row['fid']:.2f}<" in page
    assert "fake_B vs real_B" in page and ">mean<" not in page  # two directions are not one set: no mean row


def test_test_py_fid_needs_two_test_images(train_main, test_main, inception_weights, tmp_path, capsys):
    if not FACADES.is_dir():
        pytest.skip(f"shared test images {FACADES} are absent (expected at ../shared/data from the project root)")
    net = ["--dataroot", str(FACADES), "--name", "p2p_one", "--model", "pix2pix", "--netG", "unet_128", "--ngf", "8",
           "--crop_size", "128", "--load_size", "128", "--checkpoints_dir", str(tmp_path / "ckpt"), *CPU]
    assert train_main(net + ["--ndf", "8", "--n_epochs", "1", "--n_epochs_decay", "0", "--display_id", "0",
                             "--max_dataset_size", "1", "--num_threads", "0"]) == 0
    results = tmp_path / "results"
    with pytest.raises(DataError, match=r"--fid: this run tests 1 image \(--num_test 50, .*facades for --phase "
                                        r"test\); FID and KID need at least 2"):
        test_main(net + ["--results_dir", str(results), "--fid", "--inception_weights", str(inception_weights)])
    assert not list(results.rglob("*.png")), "images were generated before the error"


def test_test_py_fid_options_are_checked_before_the_run(test_main, tmp_path, capsys):
    base = ["--dataroot", str(tmp_path), "--name", "x", "--checkpoints_dir", str(tmp_path), *CPU]
    for flags, expected in ((["--fid_real_dir", str(tmp_path)], "--fid_real_dir is an option of --fid: add --fid"),
                            (["--inception_weights", "w.pth"], "--inception_weights is an option of --fid"),
                            (["--fid", "--fid_real_dir", str(tmp_path / "no")], f"--fid_real_dir {tmp_path / 'no'}: "
                                                                                "no such folder")):
        with pytest.raises(SystemExit) as exc:
            test_main(base + flags)
        assert exc.value.code == 2
        assert expected in capsys.readouterr().err


def test_missing_library_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch_fidelity.feature_extractor_inceptionv3", None)  # import fails
    with pytest.raises(ToolkitError, match=r"need the torch-fidelity package.*pip install -e '\.\[metrics\]'") as exc:
        fid.weights_url()
    assert exc.value.exit_code == 2
