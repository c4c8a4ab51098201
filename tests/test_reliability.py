"""Reliability of training: exact resume after kills and signals, and clean failures (NaN, full disk,
unwritable folder, crafted pickles, bad images).

Every run whose weights are compared bit for bit runs as a subprocess with OMP_NUM_THREADS=1 and
MKL_NUM_THREADS=1, so the uninterrupted reference and the interrupted-then-resumed runs do the same float
operations in the same order. Runs that are killed go through a small wrapper script (written into the test's
tmp folder) that executes train.py with `runpy` and adds, without touching library code, either a short sleep
after every training step (so a kill always lands mid-run, never after the run ended), a signal sent to
itself at an exact step, or a hook on `os.replace` inside `util.fileio` only (a slow, detectable replace, so
a SIGKILL lands in the middle of an atomic save; or a SIGKILL right after a given save). The resumed runs are
plain `python train.py ... --continue_train`.

Only files under pytest's tmp folders are written; nothing contacts the network.
"""
from __future__ import annotations

import errno
import logging
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import pytest
import torch

from util.locks import LOCK_FILE

ROOT = Path(__file__).resolve().parents[1]
TRAIN = str(ROOT / "train.py")

TINY = ["--netG", "resnet_6blocks", "--ngf", "4", "--ndf", "4", "--load_size", "36", "--crop_size", "32",
        "--display_id", "0", "--gpu_ids", "-1", "--seed", "7", "--num_threads", "0", "--print_freq", "1000",
        "--save_latest_freq", "2", "--n_epochs", "2", "--n_epochs_decay", "1"]
PIX2PIX = ["--model", "pix2pix"] + TINY
# A pool smaller than the number of steps, so the pool's random swaps (python `random`) are exercised.
CYCLE_GAN = ["--model", "cycle_gan", "--pool_size", "3"] + TINY
TOTAL_IMAGES = 8 * 3  # 8 training images, 3 epochs, batch size 1

STEP_SLEEP = "0.05"  # seconds added after each step in killed runs: 24 steps take > 1.2 s, so kills land mid-run
RUN_TIMEOUT = 120

WRAPPER = r'''
"""Run train.py as __main__ with test instrumentation: a sleep after each step, a signal sent to itself at
a given step, or a hook on one atomic replace (stall before it, or SIGKILL right after it)."""
import os
import runpy
import sys
import time

ROOT = os.environ["RT_ROOT"]
sys.path.insert(0, ROOT)

step_sleep = float(os.environ.get("RT_STEP_SLEEP", "0"))
signal_at = int(os.environ.get("RT_SIGNAL_AT_STEP", "0"))
if step_sleep or signal_at:
    import signal

    from models.base_model import BaseModel

    real_check = BaseModel.check_step
    steps = {"n": 0}

    def instrumented_check(self, *args, **kwargs):  # called once after every optimisation step
        steps["n"] += 1
        if steps["n"] == signal_at:  # as if the signal(s) had arrived during this step
            for _ in range(int(os.environ.get("RT_SIGNAL_COUNT", "1"))):
                os.kill(os.getpid(), int(os.environ["RT_SIGNAL"]))
        time.sleep(step_sleep)
        return real_check(self, *args, **kwargs)

    BaseModel.check_step = instrumented_check

hook_target = os.environ.get("RT_HOOK_TARGET")
if hook_target:
    import signal

    import util.fileio as fileio

    real_os = fileio.os
    nth = int(os.environ.get("RT_HOOK_NTH", "1"))
    action = os.environ["RT_HOOK_ACTION"]
    calls = {"n": 0}

    class HookedOS:
        """`os` for util.fileio only; the nth replace onto `hook_target` either stalls (after writing a
        marker that names the temp file) or completes and then SIGKILLs this process."""

        def __getattr__(self, name):
            return getattr(real_os, name)

        def replace(self, src, dst, *args, **kwargs):
            hit = False
            if real_os.path.basename(dst) == hook_target:
                calls["n"] += 1
                hit = calls["n"] == nth
            if hit and action == "stall":
                marker = os.environ["RT_MARKER"]
                with open(marker + ".part", "w") as fh:
                    fh.write(f"{src}\n{dst}\n")
                real_os.replace(marker + ".part", marker)
                time.sleep(float(os.environ.get("RT_STALL_SECONDS", "2")))
            result = real_os.replace(src, dst, *args, **kwargs)
            if hit and action == "kill_after":
                os.kill(os.getpid(), signal.SIGKILL)
            return result

    fileio.os = HookedOS()

sys.argv = [os.path.join(ROOT, "train.py")] + sys.argv[1:]
runpy.run_path(os.path.join(ROOT, "train.py"), run_name="__main__")
'''


# ---------------------------------------------------------------------------------------------- helpers


def run_env(**extra: str) -> Dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1", RT_ROOT=str(ROOT))
    env.pop("CUDA_VISIBLE_DEVICES", None)
    env.update(extra)
    return env


class Proc:
    """A training subprocess whose output goes to files (no pipe can fill up while the test polls)."""

    def __init__(self, args: Sequence[str], log_dir: Path, tag: str, env: Optional[Dict[str, str]] = None,
                 script: str = TRAIN) -> None:
        self.out_path, self.err_path = log_dir / f"{tag}.out", log_dir / f"{tag}.err"
        self.out_fh, self.err_fh = open(self.out_path, "wb"), open(self.err_path, "wb")
        self.popen = subprocess.Popen([sys.executable, script, *args], cwd=str(ROOT), env=env or run_env(),
                                      stdout=self.out_fh, stderr=self.err_fh, stdin=subprocess.DEVNULL)

    def wait(self, timeout: float = RUN_TIMEOUT) -> int:
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
            raise
        finally:
            self.out_fh.close()
            self.err_fh.close()

    def poll(self) -> Optional[int]:
        return self.popen.poll()

    def signal(self, signum: int) -> None:
        self.popen.send_signal(signum)

    def kill_if_running(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
        self.wait()

    @property
    def stdout(self) -> str:
        return self.out_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def describe(self) -> str:
        return (f"rc={self.popen.returncode}\n--- stdout (tail)\n{self.stdout[-3000:]}\n"
                f"--- stderr\n{self.stderr[-3000:]}")


def train_args(dataroot: Path, ckpt: Path, name: str, model_args: Sequence[str] = PIX2PIX,
               *extra: str) -> List[str]:
    return ["--dataroot", str(dataroot), "--checkpoints_dir", str(ckpt), "--name", name, *model_args, *extra]


def run_train(args: Sequence[str], log_dir: Path, tag: str) -> Proc:
    proc = Proc(args, log_dir, tag)
    proc.wait()
    return proc


def start_wrapped(args: Sequence[str], log_dir: Path, tag: str, wrapper: Path, **env: str) -> Proc:
    return Proc(args, log_dir, tag, env=run_env(**env), script=str(wrapper))


def wait_until(proc: Proc, condition: Callable[[], bool], what: str, timeout: float = 90.0) -> None:
    """Poll `condition` every few ms; fail if the process ends first (the kill would then test nothing)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            proc.wait()
            pytest.fail(f"process ended before {what}:\n{proc.describe()}")
        if time.monotonic() > deadline:
            proc.kill_if_running()
            pytest.fail(f"timed out waiting for {what}:\n{proc.describe()}")
        time.sleep(0.003)


def mtime(path: Path) -> Optional[int]:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return None


def resume_to_end(args: Sequence[str], log_dir: Path, tag: str, max_runs: int = 3) -> Proc:
    """`train.py ... --continue_train` until it finishes with 0 (it should need exactly one run)."""
    for attempt in range(max_runs):
        proc = run_train([*args, "--continue_train"], log_dir, f"{tag}_resume{attempt}")
        assert proc.popen.returncode == 0, proc.describe()
        assert "resuming at epoch" in proc.stdout, proc.describe()
        state = load_state(Path(args[args.index("--checkpoints_dir") + 1]) / args[args.index("--name") + 1])
        if state["total_iters"] == TOTAL_IMAGES:
            return proc
    pytest.fail("training did not finish after several resumes")


def load_state(run_dir: Path) -> Dict[str, Any]:
    return torch.load(run_dir / "latest_train_state.pth", map_location="cpu", weights_only=True)


def load_net(path: Path) -> Dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)


def assert_same(a: Any, b: Any, where: str = "") -> None:
    """Recursive bit-exact equality of tensors, containers and plain values."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor), where
        assert a.dtype == b.dtype and a.shape == b.shape, \
            f"{where}: {a.dtype}{tuple(a.shape)} vs {b.dtype}{tuple(b.shape)}"
        assert torch.equal(a, b), f"{where}: tensors differ (max |diff| {(a.double() - b.double()).abs().max()})"
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"{where}: keys {sorted(map(str, a))} vs {sorted(map(str, b))}"
        for key in a:
            assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), f"{where}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def net_files(run_dir: Path) -> List[str]:
    return sorted(p.name for p in run_dir.glob("*_net_*.pth"))


def assert_matches_reference(run_dir: Path, ref_dir: Path, extra_files_ok: bool = False) -> None:
    """Every network file (latest_* and per-epoch) equal bit for bit, and the whole final training state too
    (networks, optimisers, schedulers, image pools, position, random states; the options differ by --name)."""
    if extra_files_ok:  # e.g. --save_by_iter adds iter_* files the reference does not have
        assert set(net_files(ref_dir)) <= set(net_files(run_dir))
    else:
        assert net_files(run_dir) == net_files(ref_dir)
    for name in net_files(ref_dir):
        ref, got = load_net(ref_dir / name), load_net(run_dir / name)
        assert list(ref) == list(got), name
        for key in ref:
            assert torch.equal(ref[key], got[key]), f"{name}: {key} differs from the uninterrupted run"
    ref_state, state = load_state(ref_dir), load_state(run_dir)
    for key in ("networks", "optimizers", "schedulers", "extra", "epoch", "position", "total_iters", "data_seed",
                "rng", "format_version"):
        assert_same(ref_state[key], state[key], key)


def no_tmp_files(folder: Path) -> List[str]:
    return sorted(p.name for p in folder.rglob("*.tmp"))


def snapshot(folder: Path) -> Dict[str, Optional[tuple]]:
    """Each file's mtime and bytes, and each folder, under `folder`. Not the lock file a run holds while it runs
    (util/locks.py: it comes and goes with every run, even a refused one), nor, for that, the folders' mtimes."""
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.read_bytes()) if p.is_file() else None
            for p in sorted(folder.rglob("*")) if p.name != LOCK_FILE}


def error_lines(stderr: str) -> List[str]:
    return [line for line in stderr.splitlines() if line.strip()]


# ---------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def demo_aligned(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("data") / "shapes"
    subprocess.run([sys.executable, "scripts/make_demo_data.py", "--out", str(out), "--n_train", "8",
                    "--n_test", "2"], cwd=str(ROOT), env=run_env(), check=True, capture_output=True)
    return out


@pytest.fixture(scope="session")
def demo_unaligned(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("data") / "shapes_unaligned"
    subprocess.run([sys.executable, "scripts/make_demo_data.py", "--out", str(out), "--n_train", "8",
                    "--n_test", "2", "--layout", "unaligned"], cwd=str(ROOT), env=run_env(), check=True,
                   capture_output=True)
    return out


@pytest.fixture(scope="session")
def wrapper(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("wrapper") / "train_wrapper.py"
    path.write_text(WRAPPER)
    return path


def _reference(tmp_path_factory, dataroot: Path, model_args: Sequence[str], tag: str) -> Path:
    base = tmp_path_factory.mktemp(f"ref_{tag}")
    proc = run_train(train_args(dataroot, base / "ck", "ref", model_args), base, "ref")
    assert proc.popen.returncode == 0, proc.describe()
    run_dir = base / "ck" / "ref"
    assert load_state(run_dir)["total_iters"] == TOTAL_IMAGES
    return run_dir


@pytest.fixture(scope="session")
def reference_pix2pix(tmp_path_factory, demo_aligned) -> Path:
    """The uninterrupted pix2pix run every interrupted one must reproduce bit for bit."""
    return _reference(tmp_path_factory, demo_aligned, PIX2PIX, "pix2pix")


@pytest.fixture(scope="session")
def reference_cycle_gan(tmp_path_factory, demo_unaligned) -> Path:
    return _reference(tmp_path_factory, demo_unaligned, CYCLE_GAN, "cycle_gan")


@pytest.fixture
def in_process(monkeypatch):
    """For in-process runs: one thread, and the logging set-up run_cli changes is put back afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    torch.set_num_threads(threads)


# ---------------------------------------------------------------------------------------------- 1. SIGKILL


def _after_first_state(run_dir: Path) -> Callable[[], bool]:
    return lambda: (run_dir / "latest_train_state.pth").exists()


def _after_two_more_saves(run_dir: Path) -> Callable[[], bool]:
    """True once the state file has been rewritten twice after it first appeared."""
    seen: List[int] = []

    def condition() -> bool:
        t = mtime(run_dir / "latest_train_state.pth")
        if t is not None and (not seen or seen[-1] != t):
            seen.append(t)
        return len(seen) >= 3

    return condition


@pytest.mark.parametrize("point", ["after_first_state", "later"])
def test_sigkill_then_resume_is_bit_exact(point, reference_pix2pix, demo_aligned, wrapper, tmp_path):
    name = f"kill_{point}"
    run_dir = tmp_path / "ck" / name
    args = train_args(demo_aligned, tmp_path / "ck", name)
    proc = start_wrapped(args, tmp_path, name, wrapper, RT_STEP_SLEEP=STEP_SLEEP)
    condition = _after_first_state(run_dir) if point == "after_first_state" else _after_two_more_saves(run_dir)
    wait_until(proc, condition, f"kill point {point}")
    proc.signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, proc.describe()

    # What the kill left: a loadable state from the middle of the run, and loadable network files (those of a
    # save killed right after its state may not be written yet: the resume writes them from the state).
    state = load_state(run_dir)
    assert 0 < state["total_iters"] < TOTAL_IMAGES
    for net in ("latest_net_G.pth", "latest_net_D.pth"):
        if (run_dir / net).exists():
            assert all(torch.isfinite(t).all() for t in load_net(run_dir / net).values() if t.is_floating_point())

    resume_to_end(args, tmp_path, name)
    assert_matches_reference(run_dir, reference_pix2pix)
    assert no_tmp_files(run_dir) == []


def test_sigkill_right_after_last_save_of_an_epoch(reference_pix2pix, demo_aligned, wrapper, tmp_path):
    """SIGKILL just after the state save at the epoch's last sample (position == epoch length): the resumed run
    starts with an empty rest of epoch 1 and must still step the learning-rate schedule exactly once."""
    name = "kill_epoch_end"
    run_dir = tmp_path / "ck" / name
    args = train_args(demo_aligned, tmp_path / "ck", name)
    proc = start_wrapped(args, tmp_path, name, wrapper, RT_HOOK_TARGET="latest_train_state.pth", RT_HOOK_NTH="4",
                         RT_HOOK_ACTION="kill_after")
    assert proc.wait() == -signal.SIGKILL, proc.describe()
    state = load_state(run_dir)
    assert (state["epoch"], state["position"], state["total_iters"]) == (1, 8, 8)
    resume_to_end(args, tmp_path, name)
    assert_matches_reference(run_dir, reference_pix2pix)


@pytest.mark.parametrize("target", ["latest_train_state.pth", "latest_net_G.pth"])
def test_sigkill_during_atomic_save_then_resume_is_bit_exact(target, reference_pix2pix, demo_aligned, wrapper,
                                                             tmp_path):
    """SIGKILL while the 2nd save of `target` has its bytes in a temp file but has not renamed it yet."""
    name = "kill_mid_save"
    run_dir = tmp_path / "ck" / name
    marker = tmp_path / "in_save"
    args = train_args(demo_aligned, tmp_path / "ck", name)
    proc = start_wrapped(args, tmp_path, name, wrapper, RT_HOOK_TARGET=target, RT_HOOK_NTH="2",
                         RT_HOOK_ACTION="stall", RT_MARKER=str(marker), RT_STALL_SECONDS="20")
    wait_until(proc, marker.exists, "the stalled save")
    proc.signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, proc.describe()

    src, dst = marker.read_text().split("\n")[:2]
    assert Path(dst) == run_dir / target
    # The kill landed mid-save: the complete temp file is still there (nobody could clean it up)...
    tmp_files = no_tmp_files(run_dir)
    assert Path(src).name in tmp_files and Path(src).name.endswith(".tmp"), tmp_files
    assert Path(src).stat().st_size > 0
    # ...and it is not the only copy: the previous target and every other file are complete and loadable.
    state = load_state(run_dir)
    nets = {n: load_net(run_dir / n) for n in ("latest_net_G.pth", "latest_net_D.pth")}
    same_G = all(torch.equal(nets["latest_net_G.pth"][k], v) for k, v in state["networks"]["G"].items())
    if target == "latest_train_state.pth":
        # The state, the save's commit record, comes first: the 2nd save had written none of its network files,
        # so every file is still the first save's.
        assert state["total_iters"] == 2 and same_G
    else:
        # The 2nd save's state was complete; latest_net_G.pth is still the first save's, and the resume must
        # write it again from the state (a network file never runs ahead of the state).
        assert state["total_iters"] == 4 and not same_G

    resume_to_end(args, tmp_path, name)
    assert_matches_reference(run_dir, reference_pix2pix)


FIRST_SAVE = ("latest_train_state.pth", "latest_net_G.pth", "latest_net_D.pth")  # in the order they are written


@pytest.mark.parametrize("point", ["in_state", *(f"after_{f}" for f in FIRST_SAVE)])
def test_sigkill_at_each_step_of_the_first_save(point, reference_pix2pix, demo_aligned, wrapper, tmp_path):
    """SIGKILL at each step of the first save (mid-state, then after each file): the resume is bit-exact, or
    refused with the reason and no file changed; never a warning and an inexact run (issue 13, item 1)."""
    name = f"first_{point}"
    run_dir = tmp_path / "ck" / name
    args = train_args(demo_aligned, tmp_path / "ck", name)
    if point == "in_state":  # the state's bytes are in its temp file, not yet renamed
        marker = tmp_path / "in_save"
        proc = start_wrapped(args, tmp_path, name, wrapper, RT_HOOK_TARGET=FIRST_SAVE[0], RT_HOOK_NTH="1",
                             RT_HOOK_ACTION="stall", RT_MARKER=str(marker), RT_STALL_SECONDS="20")
        wait_until(proc, marker.exists, "the stalled first save")
        proc.signal(signal.SIGKILL)
    else:
        proc = start_wrapped(args, tmp_path, name, wrapper, RT_HOOK_TARGET=point[len("after_"):], RT_HOOK_NTH="1",
                             RT_HOOK_ACTION="kill_after")
    assert proc.wait() == -signal.SIGKILL, proc.describe()
    written = [f for f in FIRST_SAVE if (run_dir / f).exists()]
    done = 0 if point == "in_state" else FIRST_SAVE.index(point[len("after_"):]) + 1
    assert written == list(FIRST_SAVE[:done]), written

    if point == "in_state":
        before = {k: v for k, v in snapshot(run_dir).items() if not k.endswith(".tmp")}  # the killed write's
        refused = run_train([*args, "--continue_train"], tmp_path, f"{name}_refused")  # temp file is tidied
        assert refused.popen.returncode == 2, refused.describe()
        lines = error_lines(refused.stderr)
        assert len(lines) == 1 and "nothing to resume" in lines[0] and "latest_train_state.pth" in lines[0], lines
        assert "warning" not in refused.stdout, refused.describe()
        assert snapshot(run_dir) == before
        restarted = run_train(args, tmp_path, f"{name}_restart")  # what the message says to do
        assert restarted.popen.returncode == 0, restarted.describe()
    else:
        proc = resume_to_end(args, tmp_path, name)
        assert "no training state" not in proc.stdout + proc.stderr, proc.describe()
    assert_matches_reference(run_dir, reference_pix2pix)
    assert no_tmp_files(run_dir) == []


# ---------------------------------------------------------------------------------------------- 2. SIGTERM / SIGINT


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_stop_signal_saves_and_resumes_bit_exact(signum, code, reference_pix2pix, demo_aligned, wrapper, tmp_path):
    name = f"stop_{signal.Signals(signum).name}"
    run_dir = tmp_path / "ck" / name
    args = train_args(demo_aligned, tmp_path / "ck", name)
    proc = start_wrapped(args, tmp_path, name, wrapper, RT_STEP_SLEEP=STEP_SLEEP)
    wait_until(proc, _after_first_state(run_dir), "the first state file")
    sent = time.monotonic()
    proc.signal(signum)
    assert proc.wait() == code, proc.describe()
    assert time.monotonic() - sent < 5.0
    output = proc.stdout + proc.stderr
    assert "Resume with" in output and "--continue_train" in output, proc.describe()
    assert "Traceback" not in output
    state = load_state(run_dir)
    assert 0 < state["total_iters"] < TOTAL_IMAGES
    assert no_tmp_files(run_dir) == []

    resume_to_end(args, tmp_path, name)
    assert_matches_reference(run_dir, reference_pix2pix)


@pytest.mark.parametrize("step, expected", [(8, (1, 8, 8)), (24, (3, 8, 24))], ids=["epoch_end", "last_step"])
def test_sigterm_at_epoch_boundaries_resumes_bit_exact(step, expected, reference_pix2pix, demo_aligned, wrapper,
                                                      tmp_path):
    """SIGTERM during the last step of an epoch / of the whole run: saved at position == epoch length, and the
    resume does the end-of-epoch work (scheduler step, epoch files) exactly once."""
    name = f"term_step{step}"
    run_dir = tmp_path / "ck" / name
    args = train_args(demo_aligned, tmp_path / "ck", name)
    proc = start_wrapped(args, tmp_path, name, wrapper, RT_SIGNAL_AT_STEP=str(step), RT_SIGNAL=str(int(signal.SIGTERM)))
    assert proc.wait() == 143, proc.describe()
    state = load_state(run_dir)
    assert (state["epoch"], state["position"], state["total_iters"]) == expected
    resume_to_end(args, tmp_path, name)
    assert_matches_reference(run_dir, reference_pix2pix)


def test_sigterm_with_loader_worker_then_resume_without_is_bit_exact(reference_pix2pix, demo_aligned, wrapper,
                                                                     tmp_path):
    """Stopped while a DataLoader worker runs (--num_threads 1), resumed in-process (--num_threads 0): the
    sample stream does not depend on the workers, so the result is still the reference's."""
    name = "term_worker"
    run_dir = tmp_path / "ck" / name
    args = train_args(demo_aligned, tmp_path / "ck", name)
    proc = start_wrapped([*args, "--num_threads", "1"], tmp_path, name, wrapper, RT_SIGNAL_AT_STEP="5",
                         RT_SIGNAL=str(int(signal.SIGTERM)))
    assert proc.wait() == 143, proc.describe()
    assert "Traceback" not in proc.stdout + proc.stderr, proc.describe()
    assert load_state(run_dir)["total_iters"] == 5
    resume_to_end(args, tmp_path, name)
    assert_matches_reference(run_dir, reference_pix2pix)


def test_second_sigint_stops_at_once_and_last_checkpoint_resumes_bit_exact(reference_pix2pix, demo_aligned,
                                                                           wrapper, tmp_path):
    """Ctrl-C twice: no save at the stop, exit 130 with 'interrupted'; the last periodic state resumes exactly."""
    name = "double_int"
    run_dir = tmp_path / "ck" / name
    args = train_args(demo_aligned, tmp_path / "ck", name)
    proc = start_wrapped(args, tmp_path, name, wrapper, RT_SIGNAL_AT_STEP="7", RT_SIGNAL=str(int(signal.SIGINT)),
                         RT_SIGNAL_COUNT="2")
    assert proc.wait() == 130, proc.describe()
    assert error_lines(proc.stderr) == ["interrupted"], proc.describe()
    assert load_state(run_dir)["total_iters"] == 6  # the periodic save before step 7, not a stop save
    assert no_tmp_files(run_dir) == []
    resume_to_end(args, tmp_path, name)
    assert_matches_reference(run_dir, reference_pix2pix)


def test_save_by_iter_run_killed_in_first_epoch_resumes(reference_pix2pix, demo_aligned, wrapper, tmp_path):
    name = "by_iter"
    run_dir = tmp_path / "ck" / name
    args = [*train_args(demo_aligned, tmp_path / "ck", name), "--save_by_iter"]
    proc = start_wrapped(args, tmp_path, name, wrapper, RT_HOOK_TARGET="latest_train_state.pth", RT_HOOK_NTH="1",
                         RT_HOOK_ACTION="kill_after")
    assert proc.wait() == -signal.SIGKILL, proc.describe()
    assert load_state(run_dir)["total_iters"] == 2
    # Killed right after the state: the save's network file (iter_2, not latest) is not written yet...
    assert not (run_dir / "iter_2_net_G.pth").exists() and not (run_dir / "latest_net_G.pth").exists()
    resume_to_end(args, tmp_path, name)
    # ...the resume wrote it from the state, and every file equals the uninterrupted run's.
    assert (run_dir / "iter_2_net_G.pth").exists()
    assert_matches_reference(run_dir, reference_pix2pix, extra_files_ok=True)


# ---------------------------------------------------------------------------------------------- 3. changed options


def test_resume_with_changed_network_option_is_refused(demo_aligned, tmp_path):
    ckpt = tmp_path / "ck"
    partial = [*PIX2PIX, "--n_epochs", "1", "--n_epochs_decay", "0"]  # later flags win: a 1-epoch run
    first = run_train(train_args(demo_aligned, ckpt, "run", partial), tmp_path, "first")
    assert first.popen.returncode == 0, first.describe()
    run_dir = ckpt / "run"
    before = snapshot(tmp_path / "ck")
    time.sleep(0.01)  # so a rewrite would show in the mtimes even on coarse clocks

    refused = run_train([*train_args(demo_aligned, ckpt, "run"), "--continue_train", "--ngf", "8"], tmp_path,
                        "refused")
    assert refused.popen.returncode == 2, refused.describe()
    lines = error_lines(refused.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: ") and "--ngf" in lines[0], refused.describe()
    assert "--ngf 4" in lines[0], lines[0]  # says which value the run being resumed has
    # Refused by the option check, before the data was read or any network built (not by a failing load).
    assert "dataset [" not in refused.stdout and "[Network" not in refused.stdout, refused.describe()
    assert snapshot(tmp_path / "ck") == before
    assert (run_dir / "latest_train_state.pth").exists()


# ---------------------------------------------------------------------------------------------- 4. NaN


def _nan_on_third_backward_G(monkeypatch) -> None:
    from models.pix2pix_model import Pix2PixModel

    real = Pix2PixModel.backward_G
    calls = {"n": 0}

    def backward_G(self):
        real(self)
        calls["n"] += 1
        if calls["n"] == 3:
            self.loss_G_L1 = torch.tensor(float("nan"))

    monkeypatch.setattr(Pix2PixModel, "backward_G", backward_G)


def test_nan_loss_stops_without_saving_bad_weights(demo_aligned, tmp_path, monkeypatch, in_process, capsys,
                                                   forbid_network):
    import train
    from util.cli import run_cli
    from util.errors import TrainingError

    _nan_on_third_backward_G(monkeypatch)
    ckpt = tmp_path / "ck"
    args = train_args(demo_aligned, ckpt, "nan", PIX2PIX, "--save_latest_freq", "1")
    with pytest.raises(TrainingError) as info:
        train.main(args)
    message = str(info.value)
    assert "G_L1" in message and "epoch 1" in message and "sample 3" in message, message
    assert "G_GAN" not in message  # only the non-finite loss is named

    run_dir = ckpt / "nan"
    state = load_state(run_dir)
    assert state["total_iters"] == 2 and state["epoch"] == 1 and state["position"] == 2
    for label, file in (("G", "latest_net_G.pth"), ("D", "latest_net_D.pth")):
        saved = load_net(run_dir / file)
        assert list(saved) == list(state["networks"][label])
        for key, value in state["networks"][label].items():
            assert torch.equal(saved[key], value), f"{file}: {key} is not the step-2 weight"
            if value.is_floating_point():
                assert torch.isfinite(value).all(), key
    assert no_tmp_files(run_dir) == []

    # Through the command-line wrapper: exit code 1 and one line.
    _nan_on_third_backward_G(monkeypatch)
    capsys.readouterr()
    code = run_cli(train.main, train_args(demo_aligned, ckpt, "nan_cli", PIX2PIX, "--save_latest_freq", "1"))
    err = capsys.readouterr().err
    assert code == 1
    lines = error_lines(err)
    assert len(lines) == 1 and lines[0].startswith("error: ") and "G_L1" in lines[0], err
    assert forbid_network == []


# ---------------------------------------------------------------------------------------------- 5. disk full


@pytest.mark.parametrize("target", ["latest_net_G.pth", "latest_train_state.pth"])
def test_disk_full_on_second_save(target, demo_aligned, tmp_path, monkeypatch, in_process, capsys, forbid_network):
    import train
    from util.cli import run_cli

    real_save = torch.save
    calls = {"n": 0}

    def save(obj, f, *args, **kwargs):
        name = getattr(f, "name", f)
        if isinstance(name, str) and os.path.basename(name).startswith("." + target + "."):
            calls["n"] += 1
            if calls["n"] == 2:
                f.write(b"\0" * 4096)  # the disk filled up part way through
                raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    ckpt = tmp_path / "ck"
    run_dir = ckpt / "full"
    capsys.readouterr()
    code = run_cli(train.main, train_args(demo_aligned, ckpt, "full", PIX2PIX, "--save_latest_freq", "1"))
    err = capsys.readouterr().err
    assert calls["n"] == 2
    assert code == 1, err
    lines = error_lines(err)
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert str(run_dir / target) in lines[0] and "space" in lines[0].lower(), lines[0]
    assert "Traceback" not in err

    assert no_tmp_files(run_dir) == []
    state = load_state(run_dir)

    def holds_state_G() -> bool:
        net_G = load_net(run_dir / "latest_net_G.pth")
        return all(torch.equal(net_G[key], value) for key, value in state["networks"]["G"].items())

    load_net(run_dir / "latest_net_D.pth")
    if target == "latest_train_state.pth":  # the failed state came first: every file is still the first save's
        assert state["total_iters"] == 1 and holds_state_G()
    else:  # the second save's state is complete; its network files are not, and the message says it
        assert state["total_iters"] == 2 and not holds_state_G()
        assert "--continue_train resumes from it" in lines[0], lines[0]
        from models.training import train_state

        written = train_state.complete_network_files(str(run_dir), state)  # what the resume does first
        assert sorted(os.path.basename(p) for p in written) == ["latest_net_D.pth", "latest_net_G.pth"]
        assert holds_state_G() and train_state.complete_network_files(str(run_dir), state) == []
    assert forbid_network == []


def test_disk_full_error_is_storage_error(demo_aligned, tmp_path, monkeypatch, in_process):
    """The same failure seen from Python: a StorageError (exit code 1) chained to the OSError."""
    import train
    import util.fileio
    from util.errors import StorageError

    real_fsync = os.fsync
    calls = {"n": 0}

    class FullDiskOS:
        def __getattr__(self, name):
            return getattr(os, name)

        def fsync(self, fd):
            if os.path.basename(os.readlink(f"/proc/self/fd/{fd}")).startswith(".latest_net_D.pth."):
                calls["n"] += 1
                if calls["n"] == 2:
                    raise OSError(errno.ENOSPC, "No space left on device")
            return real_fsync(fd)

    monkeypatch.setattr(util.fileio, "os", FullDiskOS())
    ckpt = tmp_path / "ck"
    with pytest.raises(StorageError) as info:
        train.main(train_args(demo_aligned, ckpt, "full", PIX2PIX, "--save_latest_freq", "1"))
    assert info.value.exit_code == 1
    assert isinstance(info.value.__cause__, OSError) and info.value.__cause__.errno == errno.ENOSPC
    assert str(ckpt / "full" / "latest_net_D.pth") in str(info.value)
    assert no_tmp_files(ckpt / "full") == []
    assert load_state(ckpt / "full")["total_iters"] == 2  # the failed save's state, complete before its files


def _limit_file_size(limit: int) -> Callable[[], None]:
    def preexec() -> None:  # in the child: writes past `limit` bytes fail with EFBIG (no signal)
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # stays ignored across exec
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    return preexec


def test_real_write_failure_mid_tensor_is_a_storage_error(demo_aligned, tmp_path):
    """A real (kernel-level) write failure at the first save, no mocks: RLIMIT_FSIZE makes every write past 100 kB
    fail, which lands inside a tensor of the first latest_train_state.pth (the save's first file). Same behaviour
    as a full tmpfs (ENOSPC). Nothing half-saved may look resumable: --continue_train then refuses."""
    ckpt = tmp_path / "ck"
    run_dir = ckpt / "fsize"
    out, err = tmp_path / "fsize.out", tmp_path / "fsize.err"
    with open(out, "wb") as fo, open(err, "wb") as fe:
        rc = subprocess.run([sys.executable, TRAIN, *train_args(demo_aligned, ckpt, "fsize")], cwd=str(ROOT),
                            env=run_env(), stdout=fo, stderr=fe, stdin=subprocess.DEVNULL,
                            preexec_fn=_limit_file_size(100_000), timeout=RUN_TIMEOUT).returncode
    stderr = err.read_text(errors="replace")
    assert no_tmp_files(run_dir) == []  # the temp file is cleaned up
    assert not (run_dir / "latest_net_G.pth").exists() and not (run_dir / "latest_train_state.pth").exists()
    assert "Traceback" not in stderr, stderr[-2000:]
    assert rc == 1
    lines = error_lines(stderr)
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(run_dir / "latest_train_state.pth") in lines[0]

    resumed = run_train([*train_args(demo_aligned, ckpt, "fsize"), "--continue_train"], tmp_path, "fsize_resume")
    assert resumed.popen.returncode == 2, resumed.describe()
    lines = error_lines(resumed.stderr)
    assert len(lines) == 1 and "nothing to resume" in lines[0] and "without --continue_train" in lines[0], lines


# ---------------------------------------------------------------------------------------------- 6. unwritable folder


def test_checkpoints_dir_under_a_regular_file(demo_aligned, tmp_path):
    area = tmp_path / "area"
    area.mkdir()
    blocker = area / "not_a_folder"
    blocker.write_text("I am a file")
    target = blocker / "sub"
    before = snapshot(area)
    proc = run_train(train_args(demo_aligned, target, "x"), tmp_path, "unwritable")
    assert proc.popen.returncode == 2, proc.describe()  # a bad option, refused when the options are read
    lines = error_lines(proc.stderr)
    assert len(lines) == 1 and lines[0].startswith("train.py: error: --checkpoints_dir ") and str(target) in lines[0]
    assert f"{blocker} is a file, not a folder" in lines[0], lines[0]
    assert "dataset [" not in proc.stdout and "[Network" not in proc.stdout  # failed before data and networks
    assert blocker.read_text() == "I am a file"
    assert snapshot(area) == before


# ---------------------------------------------------------------------------------------------- 7. crafted pickle


class _Evil:
    """Unpickling this creates `path` (what a malicious checkpoint could do with os.system instead)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.mark.parametrize("file", ["latest_train_state.pth", "latest_net_G.pth"])
def test_crafted_pickle_is_refused(file, demo_aligned, tmp_path):
    run_dir = tmp_path / "ck" / "evil"
    run_dir.mkdir(parents=True)
    marker = tmp_path / "pwned"
    torch.save({"format_version": 1, "networks": {"G": _Evil(str(marker))}} if file.endswith("state.pth")
               else {"weight": _Evil(str(marker))}, run_dir / file)
    # Prove the payload is live: a plain unpickler would create the marker.
    probe = tmp_path / "probe"
    pickle.loads(pickle.dumps(_Evil(str(probe))))
    assert probe.exists()

    proc = run_train([*train_args(demo_aligned, tmp_path / "ck", "evil"), "--continue_train"], tmp_path, "evil")
    assert proc.popen.returncode == 2, proc.describe()
    lines = error_lines(proc.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: cannot load ") and file in lines[0], proc.describe()
    assert "weights_only" not in lines[0] and "it holds Python objects" in lines[0], lines[0]  # no unsafe advice
    assert not marker.exists()


# ---------------------------------------------------------------------------------------------- 8. cycle_gan


def test_cycle_gan_sigterm_resume_is_bit_exact(reference_cycle_gan, demo_unaligned, wrapper, tmp_path):
    name = "cg_stop"
    run_dir = tmp_path / "ck" / name
    args = train_args(demo_unaligned, tmp_path / "ck", name, CYCLE_GAN)
    proc = start_wrapped(args, tmp_path, name, wrapper, RT_STEP_SLEEP=STEP_SLEEP)
    wait_until(proc, _after_two_more_saves(run_dir), "three state saves")  # pool full (3) by then
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 143, proc.describe()
    state = load_state(run_dir)
    assert 3 <= state["total_iters"] < TOTAL_IMAGES
    assert len(state["extra"]["fake_A_pool"]["images"]) == 3 and len(state["extra"]["fake_B_pool"]["images"]) == 3
    resume_to_end(args, tmp_path, name)
    assert_matches_reference(run_dir, reference_cycle_gan)


# ---------------------------------------------------------------------------------------------- 9. bad images


def test_skip_bad_images_end_to_end(demo_aligned, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(demo_aligned, data)
    bad = data / "train" / "005.png"
    bad.write_bytes(b"")
    one_epoch = [*PIX2PIX, "--n_epochs", "1", "--n_epochs_decay", "0"]

    skipped = run_train([*train_args(data, tmp_path / "ck", "skip", one_epoch), "--skip_bad_images"], tmp_path,
                        "skip")
    assert skipped.popen.returncode == 0, skipped.describe()
    output = skipped.stdout + skipped.stderr
    warnings = [line for line in output.splitlines() if line.startswith("warning:") and str(bad) in line]
    assert warnings, skipped.describe()
    state = load_state(tmp_path / "ck" / "skip")
    assert state["total_iters"] == 7  # the 7 good images, once each

    failed = run_train(train_args(data, tmp_path / "ck", "strict", one_epoch), tmp_path, "strict")
    assert failed.popen.returncode == 2, failed.describe()
    lines = error_lines(failed.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(bad) in lines[0], failed.describe()


# ---------------------------------------------------------------------------------------------- 9. one run per folder


def test_a_second_run_of_one_folder_is_refused_and_a_killed_run_frees_it(demo_aligned, tmp_path, wrapper):
    """Two train.py with one --name and --checkpoints_dir, real processes: the second exits 2 at once with one
    line naming the folder and the first's PID, and writes nothing there (the options file is still the first's,
    loss_log.txt has one header). The first is then SIGKILLed: its folder is not locked forever."""
    ckpt = tmp_path / "ck"
    run_dir = ckpt / "race"
    first = start_wrapped(train_args(demo_aligned, ckpt, "race", PIX2PIX, "--n_epochs", "100"), tmp_path, "first",
                          wrapper, RT_STEP_SLEEP="0.1")
    try:
        wait_until(first, lambda: (run_dir / "loss_log.txt").is_file() and (run_dir / "train_opt.json").is_file(),
                   "the first run's log")
        second = run_train(train_args(demo_aligned, ckpt, "race", PIX2PIX, "--lr", "0.001"), tmp_path, "second")
        assert first.poll() is None, first.describe()  # the refusal came while the first was training
    finally:
        first.kill_if_running()
    assert second.popen.returncode == 2, second.describe()
    lines = error_lines(second.stderr)
    assert lines == [f"error: {run_dir} is in use by train.py (PID {first.popen.pid}): wait for that run to end, or "
                     f"give this one another --name or --checkpoints_dir"], second.describe()
    assert "dataset [" not in second.stdout  # refused before the data was read
    assert '"lr": 0.0002' in (run_dir / "train_opt.json").read_text()
    assert (run_dir / "loss_log.txt").read_text().count("Training Loss") == 1

    third = run_train(train_args(demo_aligned, ckpt, "race", PIX2PIX), tmp_path, "third")
    assert third.popen.returncode == 0, third.describe()
