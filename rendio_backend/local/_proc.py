"""Process bookkeeping shared by the stack's pieces: pid files, ports, logs."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from .errors import PieceFailed


def port_in_use(host: str, port: int) -> bool:
    """True when something accepts TCP connections on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel considers free right now (for tests and benchmarks)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours still answers kill(0); it is not running.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def process_cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of a process (clock ticks since boot), or None."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


class PidFile:
    """A pid file for one process we started; `live_pid` ignores stale or foreign pids.

    The file records the pid and the process's start time: a pid is trusted only while
    a process with that pid *and* that start time runs and its command line contains
    `marker`, so a recycled pid never makes us signal somebody else's process.
    """

    def __init__(self, path: Path, marker: str) -> None:
        self.path = path
        self.marker = marker

    def write(self, pid: int) -> None:
        # A child just forked may not have exec'd its program yet; until it has, its
        # command line is still ours and `live_pid` would take it for gone.
        wait_until(lambda: self.marker in process_cmdline(pid) or not process_alive(pid),
                   5.0, interval=0.005)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(f"{pid} {process_start_time(pid)}\n")

    def read(self) -> int | None:
        try:
            return int(self.path.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def live_pid(self) -> int | None:
        try:
            pid_text, started = self.path.read_text().split()[:2]
            pid = int(pid_text)
        except (OSError, ValueError):
            return None
        if (process_alive(pid) and process_start_time(pid) == started
                and self.marker in process_cmdline(pid)):
            return pid
        return None

    def is_stale(self) -> bool:
        return self.path.exists() and self.live_pid() is None

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)

    def stop(self, *, timeout: float = 10.0) -> bool:
        """Terminate the process group we started; True when something was stopped."""
        pid = self.live_pid()
        self.remove()
        if pid is None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        if not wait_until(lambda: not process_alive(pid), timeout):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            wait_until(lambda: not process_alive(pid), 5.0)
        return True

    def kill(self) -> bool:
        """SIGKILL the process group now, no grace (a crash, for the chaos campaign);
        True when something was killed. The pid file goes either way."""
        pid = self.live_pid()
        self.remove()
        if pid is None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        wait_until(lambda: not process_alive(pid), 5.0)
        return True


def spawn(
    argv: Sequence[str], *, log_path: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start a daemon in its own session (so `down` can stop its whole process group)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )


def wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def fail_with_log(piece: str, log_path: Path, what: str) -> PieceFailed:
    return PieceFailed(f"{piece} {what}; see {log_path}:\n{log_tail(log_path)}")
