"""`python train.py --gpu_ids 0,1`: one training process per GPU on this machine, supervised until they end.

Each worker gets the environment `torchrun --standalone --nproc_per_node N` gives its workers (RANK, LOCAL_RANK,
WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT), so it runs exactly as under torchrun (util/distributed).

Why not torchrun itself: a run must stop the way a single process does ("finish the step, save, exit 130/143";
util/stop.py), and torchrun (2.15) cannot be supervised for that. Run through `subprocess.call`, a SIGTERM to
`python train.py` killed only that process while torchrun and the workers trained on, and a Ctrl-C made Python
SIGKILL torchrun 0.25 s later; torchrun itself SIGKILLs the workers --shutdown-timeout (30) seconds after passing
a signal on, and exits with 1 and a traceback whatever the workers' codes were. Here:
  * the workers run in sessions of their own, so a terminal's Ctrl-C reaches this process alone, and every
    SIGINT/SIGTERM this process receives is passed to each worker's process group exactly once (a worker that
    saw two Ctrl-Cs would stop at once, without saving). SIGHUP (the terminal closed) is passed on as SIGTERM:
    no worker trains on unsupervised;
  * this process then waits for the workers however long their save takes, and exits with their code (a
    second Ctrl-C is passed on too, and the workers stop at once; a third kills them);
  * when a worker fails, the others cannot go on (they would wait for it in the next all-reduce): they get
    SIGTERM, and SIGKILL after `FAILURE_GRACE_S`, and the failed worker's code is returned.
Several machines need a launcher on each (torchrun, a scheduler); see the README.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from types import FrameType
from typing import Dict, List, Mapping, Optional, Sequence

logger = logging.getLogger(__name__)

FAILURE_GRACE_S = 30.0  # after one worker failed: how long the others get to exit before SIGKILL
POLL_S = 0.2
# Signal received here -> signal passed to the workers.
FORWARDED = {signal.SIGINT: signal.SIGINT, signal.SIGTERM: signal.SIGTERM, signal.SIGHUP: signal.SIGTERM}


def worker_command(script: str, argv: Sequence[str]) -> List[str]:
    """What each worker runs: the same script and arguments, with this Python."""
    return [sys.executable, script, *argv]


def worker_env(rank: int, nproc: int, port: int, base: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """The environment of worker `rank` of `nproc` on this machine: torchrun's variables for a single node."""
    env = dict(os.environ if base is None else base)
    env.update(RANK=str(rank), LOCAL_RANK=str(rank), GROUP_RANK="0", WORLD_SIZE=str(nproc),
               LOCAL_WORLD_SIZE=str(nproc), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    env.setdefault("OMP_NUM_THREADS", "1")  # torchrun's default: N processes share the CPU cores
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def exit_code(returncode: int) -> int:
    """A child's exit status in the shell's convention: killed by signal N -> 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


class _Supervisor:
    """The workers of one launch, the signals passed to them, and their exit codes."""

    def __init__(self, procs: List[subprocess.Popen], work: str = "training") -> None:
        self.procs = procs
        self.work = work  # what the processes do, for the log: training, upscaling
        self.forwarded: List[int] = []
        self.codes: Dict[int, int] = {}
        self.failure: Optional[int] = None
        self.kill_at: Optional[float] = None

    def signal_all(self, signum: int) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signum)  # the worker and its data-loading processes (those ignore it)
                except ProcessLookupError:
                    pass

    def forward(self, signum: int, frame: Optional[FrameType]) -> None:
        sent = FORWARDED[signal.Signals(signum)]
        interrupts = self.forwarded.count(signal.SIGINT) + (sent == signal.SIGINT)
        self.forwarded.append(int(sent))
        if interrupts >= 3:  # a process stuck in a collective never returns to Python to see the second one
            logger.warning("received SIGINT a third time: killing the %d %s processes", len(self.procs), self.work)
            self.signal_all(signal.SIGKILL)
            return
        logger.warning("received %s: passing %s to the %d %s processes (%s)", signal.Signals(signum).name,
                       sent.name, len(self.procs), self.work, "they stop at once, without saving; a third Ctrl-C kills them"
                       if interrupts == 2 else "each finishes its step, saves and exits; a second Ctrl-C stops "
                       "them at once")
        self.signal_all(sent)

    def poll(self) -> None:
        """Collect exit codes; on the first failure that is not a requested stop, stop the others."""
        for rank, proc in enumerate(self.procs):
            if rank in self.codes or proc.poll() is None:
                continue
            code = self.codes[rank] = exit_code(proc.returncode)
            if code == 0 or self.failure is not None:
                continue
            self.failure = code
            if code not in {128 + s for s in self.forwarded} and len(self.codes) < len(self.procs):
                logger.error("%s process %d exited with code %d: stopping the others", self.work, rank, code)
                self.signal_all(signal.SIGTERM)
                self.kill_at = time.monotonic() + FAILURE_GRACE_S
        if self.kill_at is not None and time.monotonic() > self.kill_at:
            logger.error("%s processes still running %.0f s after a failure: killing them", self.work,
                         FAILURE_GRACE_S)
            self.signal_all(signal.SIGKILL)
            self.kill_at = None

    def wait(self) -> int:
        while len(self.codes) < len(self.procs):
            self.poll()
            if len(self.codes) < len(self.procs):
                time.sleep(POLL_S)
        return self.failure or 0


def relaunch(script: str, argv: Sequence[str], nproc: int, env: Optional[Mapping[str, str]] = None,
             pass_fds: Sequence[int] = (), work: str = "training") -> int:
    """Run `script argv` as ranks 0..nproc-1 of one machine, wait for all of them, and return their exit code
    (0, or the first failure's: 130/143 after a stop signal). `env` and `pass_fds` go to every worker: the lock
    of the run's folder, which this process took and the workers adopt (util/locks.FolderLock.for_children).
    `work` names what the processes do in the log ("training", "upscaling")."""
    port = _free_port()
    command = worker_command(script, argv)
    logger.info("%d GPUs: starting one %s process each (ranks 0..%d, as torchrun --standalone "
                "--nproc_per_node %d would)", nproc, work, nproc - 1, nproc)
    procs: List[subprocess.Popen] = []
    supervisor = _Supervisor(procs, work)
    handled = threading.current_thread() is threading.main_thread()  # signals can only be caught there
    previous = {signum: signal.signal(signum, supervisor.forward) for signum in FORWARDED} if handled else {}
    try:
        for rank in range(nproc):
            if supervisor.forwarded:  # stopped while starting: the workers started so far got the signal
                break
            procs.append(subprocess.Popen(command, env={**worker_env(rank, nproc, port), **(env or {})},
                                          pass_fds=tuple(pass_fds), start_new_session=True))
        return supervisor.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        supervisor.signal_all(signal.SIGKILL)  # only when leaving by an exception: the workers have all ended
        for proc in procs:
            proc.wait()
