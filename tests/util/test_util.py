"""Tests for util/ and util/reports/: image conversion, atomic writes, the HTML page, the visualizer and visdom."""
from __future__ import annotations

import errno
import importlib.util
import json
import logging
import os
import re
import shutil
import sys
import types
from html.parser import HTMLParser
from urllib.parse import unquote

import numpy as np
import pytest
from helpers import free_port
import torch
from PIL import Image

from util import fileio
from util.reports import HTML, Visualizer, visdom_display
from util.reports.grid import make_grid
from util.reports.results import write_metrics_report
from util.reports.visdom_display import VisdomDisplay, start_command
from util.util import mkdirs, save_image, tensor2im


# ---------------------------------------------------------------------------------------------- helpers


def make_opt(tmp_path, **overrides):
    values = dict(
        name="exp",
        checkpoints_dir=str(tmp_path / "checkpoints"),
        isTrain=True,
        display_id=0,
        display_server="http://localhost",
        display_port=8097,
        display_env="main",
        display_ncols=4,
        display_winsize=256,
        no_html=False,
        use_wandb=False,
        print_freq=100,
    )
    values.update(overrides)
    return types.SimpleNamespace(**values)


class _LinkParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.srcs, self.hrefs, self.headers, self.cells, self.metas = [], [], [], [], []
        self._in_h3 = False
        self._in_cell = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.srcs.append(attrs["src"])
        elif tag == "a":
            self.hrefs.append(attrs["href"])
        elif tag == "h3":
            self._in_h3 = True
        elif tag in ("td", "th"):
            self._in_cell = True
        elif tag == "meta":
            self.metas.append(attrs)

    def handle_endtag(self, tag):
        if tag == "h3":
            self._in_h3 = False
        elif tag in ("td", "th"):
            self._in_cell = False

    def handle_data(self, data):
        if self._in_h3 and data.strip():
            self.headers.append(data.strip())
        elif self._in_cell and data.strip():
            self.cells.append(data.strip())


def parse_page(path) -> _LinkParser:
    parser = _LinkParser()
    with open(path, encoding="utf-8") as fh:
        parser.feed(fh.read())
    return parser


def our_warnings(caplog):
    return [r for r in caplog.records if r.levelno >= logging.WARNING]


# ---------------------------------------------------------------------------------------------- tensor2im


def test_tensor2im_values_match_hand_computed():
    # (N, C, H, W) = (2, 3, 1, 4); only the first image of the batch is used
    t = torch.tensor([[[-1.0, 0.0, 1.0, 0.5]]]).repeat(3, 1, 1).unsqueeze(0).repeat(2, 1, 1, 1)
    t[1] = 0.9  # second image must be ignored
    im = tensor2im(t)
    assert im.dtype == np.uint8
    assert im.shape == (1, 4, 3)
    # (x + 1) / 2 * 255 truncated: -1 -> 0, 0 -> 127 (127.5 truncated), 1 -> 255, 0.5 -> 191 (191.25)
    expected = np.array([[[0, 0, 0], [127, 127, 127], [255, 255, 255], [191, 191, 191]]], dtype=np.uint8)
    np.testing.assert_array_equal(im, expected)


def test_tensor2im_single_image_and_channel_order():
    t = torch.stack([torch.full((2, 2), -1.0), torch.zeros(2, 2), torch.ones(2, 2)])  # (3, 2, 2)
    im = tensor2im(t)
    assert im.shape == (2, 2, 3)
    np.testing.assert_array_equal(im[0, 0], [0, 127, 255])


def test_tensor2im_greyscale_is_tiled_to_rgb():
    t = torch.tensor([[[[-1.0, 1.0], [0.0, -1.0]]]])  # (1, 1, 2, 2)
    im = tensor2im(t)
    assert im.shape == (2, 2, 3)
    for c in range(3):
        np.testing.assert_array_equal(im[..., c], [[0, 255], [127, 0]])


def test_tensor2im_ndarray_passthrough_and_out_of_range():
    arr = np.zeros((4, 4, 3), dtype=np.uint8)
    assert tensor2im(arr) is arr
    im = tensor2im(torch.tensor([[[-3.0, 3.0]]]))  # out of range is clipped, not wrapped
    np.testing.assert_array_equal(im[..., 0], [[0, 255]])


def test_tensor2im_requires_grad_tensor():
    t = torch.zeros(1, 3, 2, 2, requires_grad=True)
    assert tensor2im(t * 1).shape == (2, 2, 3)


# ---------------------------------------------------------------------------------------------- save_image


@pytest.mark.parametrize(
    "ratio, expected_size",  # PIL size is (width, height); the image is 20 high x 30 wide
    [(1.0, (30, 20)), (2.0, (30, 40)), (0.5, (60, 20))],
)
def test_save_image_aspect_ratio(tmp_path, ratio, expected_size):
    image = np.random.RandomState(0).randint(0, 256, (20, 30, 3), dtype=np.uint8)
    path = tmp_path / "out.png"
    save_image(image, str(path), aspect_ratio=ratio)
    with Image.open(path) as saved:
        assert saved.size == expected_size
        if ratio == 1.0:
            np.testing.assert_array_equal(np.asarray(saved), image)
    assert os.listdir(tmp_path) == ["out.png"]


def test_mkdirs_accepts_one_path_or_a_list(tmp_path):
    mkdirs(str(tmp_path / "a" / "b"))
    mkdirs([str(tmp_path / "c"), str(tmp_path / "d" / "e")])
    mkdirs(str(tmp_path / "a" / "b"))  # existing is fine
    for p in ("a/b", "c", "d/e"):
        assert (tmp_path / p).is_dir()


# ---------------------------------------------------------------------------------------------- fileio


def test_atomic_write_keeps_old_file_when_write_fn_raises(tmp_path):
    target = tmp_path / "model.pth"
    target.write_bytes(b"old content")

    def failing(fh):
        fh.write(b"half of the new")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        fileio.atomic_write(str(target), failing)
    assert target.read_bytes() == b"old content"
    assert os.listdir(tmp_path) == ["model.pth"]  # no temp file left behind


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    target = tmp_path / "page.html"
    fileio.atomic_write_text(str(target), "<p>one</p>")
    fileio.atomic_write_text(str(target), "<p>two</p>")
    assert target.read_text() == "<p>two</p>"
    assert os.listdir(tmp_path) == ["page.html"]


def test_atomic_write_gives_normal_permissions(tmp_path):
    if os.name != "posix":
        pytest.skip("POSIX permissions")
    target = tmp_path / "f.txt"
    fileio.atomic_write_text(str(target), "x")
    umask = os.umask(0o022)
    os.umask(umask)
    assert (os.stat(target).st_mode & 0o777) == (0o666 & ~umask)  # not the temp file's 0600
    os.chmod(target, 0o640)
    fileio.atomic_write_text(str(target), "y")
    assert (os.stat(target).st_mode & 0o777) == 0o640  # the replaced file's mode is kept


def test_atomic_write_oserror_names_the_target(tmp_path):
    target = tmp_path / "x.bin"

    def disk_full(fh):
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError) as info:
        fileio.atomic_write(str(target), disk_full)
    assert info.value.errno == errno.ENOSPC
    assert str(target) in str(info.value)
    assert os.listdir(tmp_path) == []

    with pytest.raises(FileNotFoundError) as info:  # missing folder: still an OSError naming the path
        fileio.atomic_write_text(str(tmp_path / "missing" / "f.txt"), "x")
    assert "missing" in str(info.value)


def test_atomic_save_torch_and_pil(tmp_path):
    fileio.atomic_save_torch({"w": torch.arange(3)}, str(tmp_path / "net.pth"))
    loaded = torch.load(str(tmp_path / "net.pth"), weights_only=True)
    assert torch.equal(loaded["w"], torch.arange(3))

    img = Image.new("RGB", (3, 2), (10, 20, 30))
    fileio.atomic_save_pil(img, str(tmp_path / "a.jpg"))
    with Image.open(tmp_path / "a.jpg") as saved:
        assert saved.format == "JPEG" and saved.size == (3, 2)
    with pytest.raises(ValueError, match="suffix"):
        fileio.atomic_save_pil(img, str(tmp_path / "noext"))
    assert sorted(os.listdir(tmp_path)) == ["a.jpg", "net.pth"]


# ---------------------------------------------------------------------------------------------- HTML


def test_html_page_uses_relative_links_and_survives_a_move(tmp_path):
    web = tmp_path / "web"
    page = HTML(str(web), "test page", refresh=0)
    assert os.path.isdir(page.get_image_dir())
    names = ["a.png", "b c#1.png"]  # a space and a '#' must not break the links
    for name in names:
        Image.new("RGB", (2, 2)).save(os.path.join(page.get_image_dir(), name))
    page.add_header("epoch [1]")
    ims = ["images/" + n for n in names]
    page.add_images(ims, ["a", "b"], ims, width=128)
    page.add_table(["image", "PSNR"], [["a.png", 31.123456], ["mean", np.float32(30.5)]])
    html_file = page.save()
    assert html_file == str(web / "index.html")

    moved = tmp_path / "elsewhere" / "copy"
    shutil.move(str(web), str(moved))
    parsed = parse_page(moved / "index.html")
    assert parsed.headers == ["epoch [1]"]
    assert len(parsed.srcs) == 2 and len(parsed.hrefs) == 2
    for url in parsed.srcs + parsed.hrefs:
        assert not url.startswith("/") and "://" not in url and str(tmp_path) not in url
        assert (moved / unquote(url)).is_file(), url
    assert "31.1235" in parsed.cells and "30.5000" in parsed.cells and "PSNR" in parsed.cells
    assert all(m.get("http-equiv") != "refresh" for m in parsed.metas)
    assert sorted(os.listdir(moved)) == ["images", "index.html"]  # no temp files left


def test_html_refresh_and_absolute_paths(tmp_path):
    page = HTML(str(tmp_path / "web"), "t", refresh=1)
    abs_img = os.path.join(page.get_image_dir(), "x.png")
    page.add_images([abs_img], ["x"], [abs_img])
    page.save()
    parsed = parse_page(tmp_path / "web" / "index.html")
    assert parsed.srcs == ["images/x.png"] and parsed.hrefs == ["images/x.png"]
    assert {"http-equiv": "refresh", "content": "1"} in parsed.metas
    with pytest.raises(ValueError):
        page.add_images(["a"], [], ["a"])


def test_metrics_report_table_mean_row_and_json(tmp_path):
    page = HTML(str(tmp_path / "web"), "t")
    rows = [{"image": "a.png", "SR_psnr": 30.0, "SR_ssim": 0.9},
            {"image": "b.png", "SR_psnr": 31.0, "SR_ssim": 0.8}]
    report = write_metrics_report(page, rows, "metrics, x4", info={"scale": 4, "protocol": "p"})
    assert report.path == str(tmp_path / "web" / "metrics.json")
    assert report.mean == pytest.approx({"SR_psnr": 30.5, "SR_ssim": 0.85})
    data = json.loads((tmp_path / "web" / "metrics.json").read_text(encoding="utf-8"))
    assert list(data) == ["scale", "protocol", "mean", "images", "count"]
    assert data["images"] == rows and data["count"] == 2 and data["scale"] == 4
    page.save()
    parsed = parse_page(tmp_path / "web" / "index.html")
    assert parsed.headers == ["metrics, x4"]
    assert parsed.cells == ["image", "SR_psnr", "SR_ssim", "a.png", "30.00", "0.9000", "b.png", "31.00", "0.8000",
                            "mean", "30.50", "0.8500"]
    with pytest.raises(ValueError):
        write_metrics_report(page, [], "empty", info={})


# ---------------------------------------------------------------------------------------------- Visualizer


def _visuals(value: float):
    return {
        "real_A": torch.full((1, 3, 8, 8), value),
        "fake_B": torch.full((1, 3, 8, 8), -value),
        "real_B": torch.zeros(1, 1, 8, 8),
    }


def test_visualizer_offline_writes_log_and_page_newest_first(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    opt = make_opt(tmp_path)
    vis = Visualizer(opt)
    exp = tmp_path / "checkpoints" / "exp"
    log = exp / "loss_log.txt"
    assert re.fullmatch(r"================ Training Loss \(.+\) ================\n", log.read_text())

    line = vis.print_current_losses(1, 100, {"G_GAN": 0.6931, "G_L1": torch.tensor(12.3456)}, 0.1234, 0.01)
    assert line == "(epoch: 1, iters: 100, time: 0.123, data: 0.010) G_GAN: 0.693 G_L1: 12.346"
    assert log.read_text().splitlines()[1:] == [line]
    assert line in caplog.text

    vis.plot_current_losses(1, 0.5, {"G_GAN": 1.0, "G_L1": 2.0})
    vis.plot_current_losses(1, 1.0, {"G_GAN": 3.0, "G_L1": 4.0})
    assert vis.history.legend == ["G_GAN", "G_L1"]
    assert vis.history.x == [1.5, 2.0] and vis.history.y == [[1.0, 2.0], [3.0, 4.0]]

    for epoch in (1, 2, 3):
        vis.reset()
        vis.display_current_results(_visuals(0.5), epoch, save_result=False)  # first of the epoch: saved
        vis.display_current_results(_visuals(0.9), epoch, save_result=False)  # not saved again
    img_dir = exp / "web" / "images"
    assert sorted(os.listdir(img_dir)) == sorted(
        "epoch%.3d_%s.png" % (e, k) for e in (1, 2, 3) for k in ("real_A", "fake_B", "real_B")
    )
    with Image.open(img_dir / "epoch002_real_A.png") as saved:
        assert saved.size == (8, 8) and saved.getpixel((0, 0)) == (191, 191, 191)  # first call's visuals

    os.remove(img_dir / "epoch002_fake_B.png")  # the page lists only what exists
    vis.display_current_results(_visuals(0.5), 3, save_result=True)
    parsed = parse_page(exp / "web" / "index.html")
    assert parsed.headers == ["epoch [3]", "epoch [2]", "epoch [1]"]
    assert parsed.srcs[:3] == ["images/epoch003_real_A.png", "images/epoch003_fake_B.png",
                               "images/epoch003_real_B.png"]
    assert parsed.srcs[3:5] == ["images/epoch002_real_A.png", "images/epoch002_real_B.png"]
    assert len(parsed.srcs) == 8
    assert {"http-equiv": "refresh", "content": "1"} in parsed.metas
    assert not our_warnings(caplog)


def test_visualizer_no_html_and_test_mode(tmp_path):
    vis = Visualizer(make_opt(tmp_path, no_html=True))
    vis.display_current_results(_visuals(0.5), 1, save_result=True)
    assert not (tmp_path / "checkpoints" / "exp" / "web").exists()

    test_opt = make_opt(tmp_path, name="testexp", isTrain=False)
    vis = Visualizer(test_opt)
    vis.print_current_losses(1, 1, {"a": 1.0}, 0.0, 0.0)
    vis.display_current_results(_visuals(0.5), 1, save_result=True)
    assert not (tmp_path / "checkpoints" / "testexp").exists()


def test_display_id_0_never_opens_a_connection(tmp_path, forbid_network):
    vis = Visualizer(make_opt(tmp_path, display_id=0))
    vis.plot_current_losses(1, 0.1, {"G": 1.0})
    vis.display_current_results(_visuals(0.5), 1, save_result=True)
    vis.print_current_losses(1, 1, {"G": 1.0}, 0.0, 0.0)
    assert vis.display is None
    assert forbid_network == []


def test_unreachable_visdom_warns_once_and_training_continues(tmp_path, caplog, capsys):
    port = free_port()
    caplog.set_level(logging.INFO)
    vis = Visualizer(make_opt(tmp_path, display_id=1, display_server="http://127.0.0.1", display_port=port))
    assert vis.display is not None and not vis.display.enabled
    for epoch in (1, 2):
        vis.reset()
        vis.plot_current_losses(epoch, 0.5, {"G": 1.0, "D": 0.5})
        vis.display_current_results(_visuals(0.5), epoch, save_result=True)
        vis.print_current_losses(epoch, 10, {"G": 1.0, "D": 0.5}, 0.1, 0.0)

    warnings_logged = our_warnings(caplog)
    assert len(warnings_logged) == 1
    message = warnings_logged[0].getMessage()
    assert start_command(port) in message
    assert f"python -m visdom.server -port {port} --hostname 127.0.0.1 -bind_local" in message
    assert (tmp_path / "checkpoints" / "exp" / "web" / "images" / "epoch002_real_A.png").is_file()
    assert len((tmp_path / "checkpoints" / "exp" / "loss_log.txt").read_text().splitlines()) == 3
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err


# ---------------------------------------------------------------------------------------------- visdom seam


class _FakeVisdom:
    """Stands in for visdom.Visdom: records calls; `fail` makes sends return False like a dead server."""

    instances: list = []

    def __init__(self, **kwargs):
        self.kwargs = kwargs
        self.calls = []
        self.fail = False
        _FakeVisdom.instances.append(self)

    def check_connection(self, timeout_seconds=0):
        return True

    def image(self, img, win=None, env=None, opts=None):
        self.calls.append(("image", img, win, opts))
        return False if self.fail else "win"

    def line(self, X=None, Y=None, win=None, env=None, opts=None):
        self.calls.append(("line", X, Y, win, opts))
        return False if self.fail else "win"


@pytest.fixture
def fake_visdom(monkeypatch):
    _FakeVisdom.instances = []
    module = types.ModuleType("visdom")
    module.Visdom = _FakeVisdom
    monkeypatch.setitem(sys.modules, "visdom", module)
    monkeypatch.setattr(VisdomDisplay, "_port_open", lambda self: None)
    return _FakeVisdom


def test_visdom_display_sends_grid_and_losses(fake_visdom, tmp_path, caplog):
    vis = Visualizer(make_opt(tmp_path, display_id=3, display_ncols=2, display_winsize=16))
    assert vis.display.enabled
    client = fake_visdom.instances[0]
    assert client.kwargs["raise_exceptions"] is False and client.kwargs["use_incoming_socket"] is False

    vis.display_current_results(_visuals(1.0), 1, save_result=False)
    kind, grid, win, opts = client.calls[0]
    assert kind == "image" and win == 4  # images go to display_id + 1, like the reference
    # 3 images of 8x8, 2 per row, padding 2: 2 rows x 2 cols -> (3, 2*10+2, 2*10+2)
    assert grid.shape == (3, 22, 22) and grid.dtype == np.uint8
    assert (grid[:, 2:10, 2:10] == 255).all() and (grid[:, 2:10, 12:20] == 0).all()
    assert (grid[:, 12:20, 12:20] == 255).all()  # empty 4th tile stays white
    assert opts["caption"] == "epoch 1: real_A | fake_B | real_B"
    assert opts["width"] == 44  # scaled so one tile is display_winsize pixels wide

    vis.plot_current_losses(1, 0.5, {"G": 1.0, "D": 2.0})
    vis.plot_current_losses(1, 1.0, {"G": 3.0, "D": 4.0})
    kind, x, y, win, opts = client.calls[-1]
    assert kind == "line" and win == 3 and opts["legend"] == ["G", "D"]
    np.testing.assert_array_equal(x, [[1.5, 1.5], [2.0, 2.0]])
    np.testing.assert_array_equal(y, [[1.0, 2.0], [3.0, 4.0]])

    client.fail = True  # the server goes away mid-training: one warning, then silence
    for _ in range(3):
        vis.plot_current_losses(2, 0.5, {"G": 1.0, "D": 2.0})
        vis.display_current_results(_visuals(1.0), 2, save_result=False)
    warnings_logged = our_warnings(caplog)
    assert len(warnings_logged) == 1 and "-bind_local" in warnings_logged[0].getMessage()
    assert not vis.display.enabled


def test_visdom_not_installed_warns_once(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "visdom", None)  # makes `import visdom` raise ImportError
    display = VisdomDisplay("http://localhost", 8097, "main", 4, 256)
    display.show_images(_visuals(0.0), 1)
    assert not display.enabled
    messages = [r.getMessage() for r in our_warnings(caplog)]
    assert len(messages) == 1 and "not installed" in messages[0] and start_command(8097) in messages[0]


def test_make_grid_mixed_sizes_uses_nearest_upscaling():
    small = np.zeros((2, 2, 3), dtype=np.uint8)
    small[0, 0] = 200
    big = np.full((4, 4, 3), 50, dtype=np.uint8)
    grid = make_grid([small, big], ncols=0)  # ncols <= 0: one row
    assert grid.shape == (3, 4 + 4, 2 * 6 + 2)
    assert (grid[:, 2:4, 2:4] == 200).all() and (grid[:, 4:6, 4:6] == 0).all()
    assert (grid[:, 2:6, 8:12] == 50).all()


def test_start_command_flags_exist_in_installed_visdom():
    """The advertised command must only use flags that visdom's own server parser defines."""
    pytest.importorskip("visdom")
    spec = importlib.util.find_spec("visdom.server.run_server")
    assert spec is not None and spec.origin
    with open(spec.origin, encoding="utf-8") as fh:
        source = fh.read()
    for flag in ("-port", "--hostname", "-bind_local"):
        assert f'"{flag}"' in source, flag
    assert visdom_display.START_COMMAND.startswith("python -m visdom.server ")


def test_remove_stale_temp_files_removes_only_atomic_write_leftovers(tmp_path):
    from util.fileio import remove_stale_temp_files

    (tmp_path / "latest_net_G.pth").write_bytes(b"keep")
    (tmp_path / ".latest_net_G.pth.abc123.tmp").write_bytes(b"partial")
    (tmp_path / "notes.tmp").write_bytes(b"not ours: not hidden")
    removed = remove_stale_temp_files(tmp_path)
    assert removed == [str(tmp_path / ".latest_net_G.pth.abc123.tmp")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest_net_G.pth", "notes.tmp"]
    assert remove_stale_temp_files(tmp_path / "missing") == []


def test_remove_stale_temp_files_walks_subfolders_only_when_asked(tmp_path):
    from util.fileio import remove_stale_temp_files

    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    (nested / ".photo_out.png.x1.tmp").write_bytes(b"partial")
    (nested / "photo_out.png").write_bytes(b"keep")
    assert remove_stale_temp_files(tmp_path) == []
    assert remove_stale_temp_files(tmp_path, recursive=True) == [str(nested / ".photo_out.png.x1.tmp")]
    assert sorted(p.name for p in nested.iterdir()) == ["photo_out.png"]
