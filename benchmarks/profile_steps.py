"""Per-step wall time and memory of `segkit segment`, for finding where the time goes.

Usage: python benchmarks/profile_steps.py ORDERS.csv [segment options...]
       e.g. python benchmarks/profile_steps.py benchmarks/data/orders_10m.csv --no-report

Runs the same code path as the CLI (``segkit.cli.app.main``) in this process with a progress
callback that stamps each pipeline step (read, clean, customers, cluster, validate, migration,
reports) and the output writing after it; imports are timed separately. For each step it prints
the wall time, the process's RSS at the end of the step and the peak RSS so far (ru_maxrss).
Output goes to a temporary folder unless ``-o`` is given. The table goes to stderr; one line of
JSON with the same numbers goes to stdout (benchmarks/run.py reads it).
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import time

T0 = time.perf_counter()
marks: list[tuple[str, float, int, int]] = []


def rss_now() -> int:
    with open("/proc/self/status", "rb") as fh:
        for line in fh:
            if line.startswith(b"VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def mark(name: str) -> None:
    marks.append((name, time.perf_counter(), rss_now(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024))


mark("import polars, segkit.cli")
import polars  # noqa: E402,F401

import segkit.cli.app  # noqa: E402
import segkit.cli.commands  # noqa: E402

mark("cli parsing, config")


class Progress:
    """What segkit.cli.commands.segment_command calls with each step name; also has stop()."""

    def __call__(self, step: str) -> None:
        mark(f"before {step}")

    def stop(self) -> None:
        mark("before terminal summary")


def main(argv: list[str]) -> int:
    original = segkit.cli.commands.segment_command

    def traced(*args, **kwargs):
        kwargs["progress"] = Progress()
        result = original(*args, **kwargs)
        mark("after outputs")
        return result

    segkit.cli.commands.segment_command = traced  # cli.segment imports it from segkit.commands at call time
    run = segkit.cli.commands.pipeline.run

    def traced_run(*args, **kwargs):
        result = run(*args, **kwargs)
        mark("before summary.json")
        result.document  # computed once and cached: every writer after this reads it for free
        mark("before write outputs")
        return result

    segkit.cli.commands.pipeline.run = traced_run
    args = list(argv)
    if "-o" not in args and "--output" not in args:
        args += ["-o", tempfile.mkdtemp(prefix="segkit-profile-")]
    if "-q" not in args and "--quiet" not in args:
        args.append("-q")
    sys.argv = ["segkit", "segment", *args]
    try:
        segkit.cli.app.main()
    except SystemExit as exc:
        code = exc.code or 0
    else:
        code = 0
    mark("exit")
    # each row: the span from this mark to the next, labelled by what ran in it
    steps = [{"step": name.replace("before ", ""), "seconds": round(t2 - t, 4), "rss_after": rss2,
              "peak_rss": peak2}
             for (name, t, _rss, _peak), (_n2, t2, rss2, peak2) in zip(marks, marks[1:])]
    print(f"{'step':<30}{'seconds':>9}{'RSS after':>12}{'peak so far':>13}", file=sys.stderr)
    for st in steps:
        print(f"{st['step']:<30}{st['seconds']:>9.2f}{st['rss_after'] / 2**20:>9.0f} MiB"
              f"{st['peak_rss'] / 2**20:>9.0f} MiB", file=sys.stderr)
    print(f"{'total (after interpreter start)':<30}{marks[-1][1] - T0:>9.2f}", file=sys.stderr)
    print(json.dumps({"exit": code if isinstance(code, int) else 1, "steps": steps,
                      "total_seconds": round(marks[-1][1] - T0, 4)}))
    return int(code) if isinstance(code, int) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
