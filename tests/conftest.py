from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SEGKIT_SHARED", ROOT.parent / "shared"))
DATASETS = SHARED / "datasets"
SAMPLE_DIR = ROOT / "sample_data"
SEGKIT = [sys.executable, "-m", "segkit"]


def dataset(name: str) -> Path:
    path = DATASETS / name
    if not path.exists():
        pytest.skip(f"real dataset {path} is missing: ../shared must sit beside the repository")
    return path


def run_cli(*args: str, input: bytes | None = None, env: dict | None = None, cwd: Path | None = None,
            timeout: int = 300) -> subprocess.CompletedProcess:
    """Run segkit as a user would, stdout and stderr kept apart."""
    full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
    if "SEGKIT_CONFIG" not in (env or {}):
        full_env.pop("SEGKIT_CONFIG", None)
    return subprocess.run([*SEGKIT, *args], input=input, capture_output=True, env=full_env,
                          cwd=cwd, timeout=timeout, stdin=None if input is not None else subprocess.DEVNULL)


@pytest.fixture
def cfg():
    from segkit import config

    return config.load(None, use_env=False)


def write_csv(path: Path, header: list[str], rows: list[list], encoding: str = "utf-8") -> Path:
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    path.write_bytes(buf.getvalue().encode(encoding))
    return path
