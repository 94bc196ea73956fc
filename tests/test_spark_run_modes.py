"""The spark engine where the README says it runs: inside ``spark-submit`` (segkit's ``__main__``
as the driver script) and on a Spark Connect server (``SPARK_REMOTE``), each giving the polars
engine's assignments.csv byte for byte. Both start their own JVM, so each runs segkit in a child
process; the Connect server is the one PySpark's package ships (``sbin/start-connect-server.sh``,
no download).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("pyspark")

from conftest import run_cli, run_process, write_csv  # noqa: E402

pytestmark = pytest.mark.spark
SERVER_START_S = 120  # the server starts in ~15 s on an idle 2-core machine


def _orders(path: Path) -> Path:
    """Order lines with every row kind the engines treat alike: good, blank, totals, bad."""
    rows = [[f"K{i % 41}", f"O{i // 3}", f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}", f"{(i * 37) % 1000}.25"]
            for i in range(1500)]
    rows += [["", "", "", ""], ["合计", "", "", "9"], ["K1", "O9", "2024/02/30", "1"], ["K2", "O9", "2024-02-01", "x"]]
    return write_csv(path, ["customer", "order", "date", "amount"], rows)


def _segment_polars(src: Path, out: Path) -> bytes:
    proc = run_cli("segment", str(src), "-o", str(out), "-q", "--no-report", "--max-bad-rows", "0.5")
    assert proc.returncode == 0, proc.stderr.decode()
    return (out / "assignments.csv").read_bytes()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pyspark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


def test_inside_spark_submit(tmp_path):
    """spark-submit runs segkit's __main__.py as the driver; segkit uses spark-submit's session."""
    src = _orders(tmp_path / "orders.csv")
    import segkit

    main = Path(segkit.__file__).with_name("__main__.py")
    submit = _pyspark_home() / "bin" / "spark-submit"
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable,
           "NO_COLOR": "1"}
    env.pop("SPARK_REMOTE", None)
    cmd = [str(submit), "--master", "local[1]", "--conf", "spark.log.level=WARN", "--conf", "spark.ui.enabled=false",
           str(main), "segment", str(src), "--engine", "spark", "-o", str(tmp_path / "spark"), "-q",
           "--no-report", "--max-bad-rows", "0.5"]
    proc = subprocess.run(cmd, env=env, capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    assert (tmp_path / "spark" / "assignments.csv").read_bytes() == _segment_polars(src, tmp_path / "polars")
    rejected = (tmp_path / "spark" / "rejected_rows.csv").read_text(encoding="utf-8").splitlines()
    assert len(rejected) == 3 and "2024/02/30" in rejected[1] and ",x," in rejected[2]


@pytest.fixture(scope="module")
def connect_server(tmp_path_factory):
    """A local Spark Connect server on a free port, stopped with its process group."""
    port = _free_port()
    logs = tmp_path_factory.mktemp("connect")
    env = {**os.environ, "SPARK_NO_DAEMONIZE": "1", "SPARK_LOG_DIR": str(logs), "SPARK_PID_DIR": str(logs),
           "PYSPARK_PYTHON": sys.executable}
    env.pop("SPARK_REMOTE", None)
    cmd = ["bash", str(_pyspark_home() / "sbin" / "start-connect-server.sh"), "--master", "local[1]",
           "--conf", f"spark.connect.grpc.binding.port={port}", "--conf", "spark.ui.enabled=false"]
    log = (logs / "server.log").open("wb")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + SERVER_START_S
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail(f"the Spark Connect server did not start: {(logs / 'server.log').read_text()[-1500:]}")
        yield f"sc://127.0.0.1:{port}"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
        log.close()


def test_on_spark_connect(tmp_path, connect_server):
    src = _orders(tmp_path / "orders.csv")
    proc = run_process("segment", str(src), "--engine", "spark", "-o", str(tmp_path / "spark"), "-q",
                       "--no-report", "--max-bad-rows", "0.5", env={"SPARK_REMOTE": connect_server})
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    assert (tmp_path / "spark" / "assignments.csv").read_bytes() == _segment_polars(src, tmp_path / "polars")
    rejected = (tmp_path / "spark" / "rejected_rows.csv").read_text(encoding="utf-8").splitlines()
    assert len(rejected) == 3 and "2024/02/30" in rejected[1] and ",x," in rejected[2]


def test_unreachable_connect_server_fails_fast(tmp_path):
    """The Connect client retries a dead address for over ten minutes; segkit stops after seconds."""
    src = _orders(tmp_path / "orders.csv")
    remote = f"sc://127.0.0.1:{_free_port()}"
    t = time.monotonic()
    proc = run_process("segment", str(src), "--engine", "spark", "-o", str(tmp_path / "out"), "-q",
                       env={"SPARK_REMOTE": remote}, timeout=120)
    assert time.monotonic() - t < 60
    assert proc.returncode == 74
    lines = proc.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and remote in lines[0] and "SPARK_REMOTE" in lines[0], lines
    assert not (tmp_path / "out").exists()
