"""Measuring one command in a fresh child: wall time, CPU, peak RSS, other processes' load."""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from common import MAXRSS_UNIT, ROOT, log

@dataclass
class Run:
    wall: float  # seconds, spawn to exit
    maxrss: int  # bytes, peak resident set of the child
    rc: int
    stdout: str = ""
    stderr: str = ""
    killed: str | None = None
    busy_before: float | None = None  # share of all CPUs busy just before the start (other load)
    cpu: float = 0.0  # user + system seconds of the child
    others_during: float | None = None  # share of all CPUs used by other processes during the run

    @property
    def ok(self) -> bool:
        return self.rc == 0 and self.killed is None


@dataclass
class Series:
    """Repeated measurements of one command."""

    name: str
    cmd: list[str]
    runs: list[Run] = field(default_factory=list)
    note: str = ""

    @property
    def good(self) -> list[Run]:
        return [r for r in self.runs if r.ok]

    @property
    def ok(self) -> bool:
        return bool(self.runs) and all(r.ok for r in self.runs)

    @property
    def median(self) -> float | None:
        return statistics.median(r.wall for r in self.good) if self.good else None

    @property
    def min(self) -> float | None:
        return min(r.wall for r in self.good) if self.good else None

    @property
    def max(self) -> float | None:
        return max(r.wall for r in self.good) if self.good else None

    @property
    def cpu(self) -> float | None:
        return statistics.median(r.cpu for r in self.good) if self.good else None

    @property
    def others_max(self) -> float | None:
        v = [r.others_during for r in self.runs if r.others_during is not None]
        return max(v) if v else None

    @property
    def peak_rss(self) -> int | None:
        return max(r.maxrss for r in self.good) if self.good else None

    def error(self) -> str:
        bad = next((r for r in self.runs if not r.ok), None)
        if bad is None:
            return ""
        if bad.killed:
            return bad.killed
        tail = (bad.stderr.strip().splitlines() or [""])[-1]
        return f"exit {bad.rc}: {tail[:200]}"

    def as_dict(self) -> dict:
        return {
            "name": self.name, "cmd": self.cmd, "note": self.note, "median_s": self.median,
            "peak_rss_bytes": self.peak_rss, "ok": self.ok,
            "runs": [{k: v for k, v in asdict(r).items() if k != "stdout" or len(v) < 2000} for r in self.runs],
        }


def series_from_dict(d: dict) -> Series:
    """A ``Series`` back from ``Series.as_dict`` (a results JSON), for rendering it again."""
    return Series(d["name"], d["cmd"], [Run(**r) for r in d["runs"]], d.get("note", ""))


def _rss_of(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _cpu_times() -> tuple[int, int]:
    with open("/proc/stat") as fh:
        values = [int(v) for v in fh.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return sum(values[:8]), idle


def cpu_busy(interval: float = 0.5) -> float | None:
    """Share of all CPUs busy over ``interval`` seconds (None where /proc/stat is missing)."""
    try:
        t1, i1 = _cpu_times()
        time.sleep(interval)
        t2, i2 = _cpu_times()
    except (OSError, ValueError, IndexError):
        return None
    return 1.0 - (i2 - i1) / (t2 - t1) if t2 > t1 else 0.0


def wait_idle(max_wait: float, threshold: float = 0.25) -> float | None:
    """Wait (at most ``max_wait`` s) until other processes leave the CPUs mostly idle.

    The machine may be shared; a busy core slows multi-threaded code (polars, OpenMP) far more
    than its share. Returns the last busy share seen, which is stored with the measurement.
    """
    deadline = time.perf_counter() + max_wait
    busy = cpu_busy()
    warned = False
    while busy is not None and busy > threshold and time.perf_counter() < deadline:
        if not warned:
            log(f"  CPUs {busy:.0%} busy with other work; waiting up to {max_wait:.0f} s for them to calm down")
            warned = True
        time.sleep(2)
        busy = cpu_busy()
    return busy


def measure(cmd: list[str], *, timeout: float, mem_limit: int, cwd: Path = ROOT,
            idle_wait: float = 0.0) -> Run:
    """Run ``cmd`` in a fresh child; wall time and the child's own peak RSS (os.wait4 rusage).

    A watchdog thread kills the child (its own process group: it was started in a new session)
    when it exceeds ``mem_limit`` bytes of RSS or ``timeout`` seconds. The child is waited for
    with WNOWAIT first, so the watchdog can never signal a pid that was already reaped and reused.
    """
    busy = wait_idle(idle_wait)  # with 0: only measured
    try:
        cpu0 = _cpu_times()
    except (OSError, ValueError, IndexError):
        cpu0 = None
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=cwd,
                                start_new_session=True)
        pid = proc.pid
        lock = threading.Lock()
        done = threading.Event()
        killed: list[str] = []

        def watchdog() -> None:
            while not done.wait(0.1):
                rss = _rss_of(pid)
                why = None
                if rss > mem_limit:
                    why = f"killed: RSS {rss / 2**30:.1f} GiB above --mem-limit-gb {mem_limit / 2**30:.1f}"
                elif time.perf_counter() - t0 > timeout:
                    why = f"killed: still running after {timeout:.0f} s"
                if why:
                    with lock:
                        if not done.is_set():
                            killed.append(why)
                            try:
                                os.killpg(pid, signal.SIGKILL)
                            except ProcessLookupError:
                                pass
                    return

        thread = threading.Thread(target=watchdog, daemon=True)
        thread.start()
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)  # exited, not yet reaped
        wall = time.perf_counter() - t0
        with lock:
            done.set()
        _, status, usage = os.wait4(pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here; Popen must not wait again
        thread.join()
        child_cpu = usage.ru_utime + usage.ru_stime
        others = None
        if cpu0 is not None:
            try:
                total1, idle1 = _cpu_times()
                tick, ncpu = os.sysconf("SC_CLK_TCK"), os.cpu_count() or 1
                machine_busy = ((total1 - cpu0[0]) - (idle1 - cpu0[1])) / tick
                others = max(0.0, machine_busy - child_cpu) / (ncpu * wall) if wall > 0 else None
            except (OSError, ValueError, IndexError):
                pass
        out.seek(0)
        err.seek(0)
        return Run(wall=wall, maxrss=usage.ru_maxrss * MAXRSS_UNIT, rc=proc.returncode,
                   stdout=out.read().decode("utf-8", "replace"),
                   stderr=err.read().decode("utf-8", "replace")[-4000:],
                   killed=killed[0] if killed else None, busy_before=busy, cpu=child_cpu,
                   others_during=others)


