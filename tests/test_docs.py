"""Every command example in README.md and docs/*.md runs as written (sqlite-utils keeps its docs true
this way).

A ```sh block is a list of commands; a ```console block shows commands after ``$ `` and their
output. Each block runs in order in a fresh folder that has ``sample_data/`` and ``configs/`` of
this repository and ``../shared`` beside it, with segkit on the PATH, so relative paths in the docs
mean what they mean in a checkout. A command ending in ``# exits N`` must exit with N, any other
with 0. Illustrations that cannot run here (a cluster's URL, a cron line, an ERP command) are in
```text blocks.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, SHARED

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```(sh|console)\n(.*?)^```", re.S | re.M)
EXITS = re.compile(r"\s+#\s*exits (\d+)\s*$")


def commands(lang: str, body: str) -> list[str]:
    """The commands of one block: continuation lines joined, comments and output left out."""
    out: list[str] = []
    pending = ""
    for line in body.splitlines():
        if lang == "console" and not pending:
            if not line.startswith("$ "):
                continue
            line = line[2:]
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        out.append(pending + line)
        pending = ""
    return out


SPARK = re.compile(r"--engine spark|spark-submit|SPARK_")


def blocks() -> list[tuple[str, int, list[str]]]:
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for m in BLOCK.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            found.append((str(page.relative_to(ROOT)), line, commands(m.group(1), m.group(2))))
    return found


def cases() -> list:
    """One test per block; a block that runs Spark is a Spark test (``make test-spark``)."""
    return [pytest.param(page, line, cmds, id=f"{page}:{line}",
                         marks=[pytest.mark.spark] if any(SPARK.search(c) for c in cmds) else [])
            for page, line, cmds in blocks()]


def test_the_parser_reads_blocks_as_a_reader_would():
    assert commands("console", "$ segkit a \\\n  --b\noutput line\n$ head -2 x\n") == ["segkit a    --b", "head -2 x"]
    assert commands("sh", "# comment\nsegkit x  # note\n\nsegkit y\n") == ["segkit x  # note", "segkit y"]
    assert len(blocks()) >= 5


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in ("sample_data", "configs"):
        (repo / name).symlink_to(ROOT / name)
    if not SHARED.exists():
        pytest.skip("../shared is not beside the repository")
    (tmp_path / "shared").symlink_to(SHARED)
    return repo


@pytest.mark.parametrize("page, line, cmds", cases())
def test_command_examples_run_as_written(workdir: Path, page: str, line: int, cmds: list[str]):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "NO_COLOR": "1",
           # a Spark daemon the block starts keeps its pid and logs here, not in /tmp, and is stopped below
           "SPARK_PID_DIR": str(workdir), "SPARK_LOG_DIR": str(workdir / "spark-logs")}
    for name in ("SEGKIT_CONFIG", "COLUMNS", "LINES"):
        env.pop(name, None)
    try:
        for cmd in cmds:
            m = EXITS.search(cmd)
            want = int(m.group(1)) if m else 0
            proc = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], cwd=workdir, env=env, capture_output=True,
                                  stdin=subprocess.DEVNULL, timeout=300)
            assert proc.returncode == want, f"{page}:{line}: {cmd}\n{proc.stderr.decode(errors='replace')[-2000:]}"
    finally:
        if any("start-connect-server" in c for c in cmds):  # a failed block must not leave the server running
            import pyspark

            stop = Path(pyspark.__file__).parent / "sbin" / "stop-connect-server.sh"
            subprocess.run(["bash", str(stop)], cwd=workdir, env=env, capture_output=True, timeout=120)
