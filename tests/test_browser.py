"""report.html in a real browser (headless Chromium): it renders, logs no error, requests nothing.

Chromium is found on PATH (or /usr/bin/chromium). Without it these tests skip on a developer's
machine but fail under CI (environment variable CI set), where .ci/run installs it.

Two ways in:
- the command line (``--screenshot``, ``--dump-dom`` with console logging on stderr), as a user's
  Chromium would run it;
- the DevTools protocol over ``--remote-debugging-pipe`` (file descriptors 3 and 4, messages
  separated by NUL bytes; no websocket needed), which reports every network request, console
  message, log entry and uncaught exception of the page. A self-test checks that this harness does
  catch a bad page, so a clean result means something.
"""

from __future__ import annotations

import base64
import json
import os
import re
import select
import shutil
import struct
import subprocess
import time
from pathlib import Path

import pytest
from conftest import SAMPLE_DIR

from segkit import config, pipeline
from segkit.outputs.staging import StagedDir
from segkit.outputs.report import write_reports

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic"]
WIDTH, HEIGHT = 1280, 2000
TIMEOUT = 90


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


@pytest.fixture(scope="module")
def chromium() -> str:
    path = find_chromium()
    if path is None:
        if in_ci():
            pytest.fail("chromium is not installed; CI must install it (apt-get install -y chromium) "
                        "so report.html is tested in a real browser")
        pytest.skip("chromium is not installed (apt-get install chromium to run the browser tests)")
    return path


@pytest.fixture(scope="module", params=["en", "zh"])
def report(request, tmp_path_factory) -> Path:
    """report.html of the sample data, in English and in Chinese."""
    lang = request.param
    out = tmp_path_factory.mktemp(f"browser_{lang}")
    source = SAMPLE_DIR / ("orders.xlsx" if lang == "en" else "orders_zh.csv")
    cfg = config.load(None, {"output.reports": ["html"], "output.lang": lang}, use_env=False)
    result = pipeline.run(str(source), cfg)
    staged = StagedDir(out)
    write_reports(result, staged)
    staged.commit()
    return out / "report.html"


def run_chromium(chromium: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([chromium, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args],
                          capture_output=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


def console_lines(stderr: bytes) -> list[str]:
    """Chromium's log lines for page console messages (errors, CSP violations, uncaught exceptions)."""
    return [line for line in stderr.decode("utf-8", "replace").splitlines() if ":CONSOLE" in line]


class DevTools:
    """A minimal Chrome DevTools Protocol client over --remote-debugging-pipe."""

    def __init__(self, chromium: str, profile: Path):
        cmd_read, self._cmd = os.pipe()
        self._res, res_write = os.pipe()

        def to_fds_3_and_4():  # duplicate first: dup2(3, 3) would keep close-on-exec
            a, b = os.dup(cmd_read), os.dup(res_write)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [chromium, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            close_fds=False, preexec_fn=to_fds_3_and_4,
        )
        os.close(cmd_read)
        os.close(res_write)
        self._buf = b""
        self._id = 0
        self.events: list[dict] = []

    def _message(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("chromium did not answer in time")
            ready, _, _ = select.select([self._res], [], [], left)
            if ready:
                chunk = os.read(self._res, 1 << 16)
                if not chunk:
                    raise EOFError("chromium closed the DevTools pipe")
                self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._cmd, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + TIMEOUT
        while True:
            reply = self._message(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str) -> dict:
        deadline = time.monotonic() + TIMEOUT
        seen = next((e for e in self.events if e.get("method") == method), None)
        while seen is None:
            event = self._message(deadline)
            self.events.append(event)
            seen = event if event.get("method") == method else None
        return seen

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except (EOFError, TimeoutError, OSError, RuntimeError):
            self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._cmd)
        os.close(self._res)


# Draws Chinese text, a character no font has (drawn as the missing-glyph box) and nothing, in the
# page's own font list, and says whether the Chinese came out as boxes or blank.
CJK_CHECK = """((text) => {
  const family = getComputedStyle(document.body).fontFamily;
  const draw = (s) => {
    const c = document.createElement('canvas'); c.width = 240; c.height = 60;
    const g = c.getContext('2d'); g.font = '40px ' + family; g.fillText(s, 0, 45);
    return Array.from(g.getImageData(0, 0, 240, 60).data).join(',');
  };
  const cjk = draw(text), tofu = draw('\\u{10FFFD}\\u{10FFFD}\\u{10FFFD}\\u{10FFFD}'), blank = draw('');
  return {family, tofu: cjk === tofu, blank: cjk === blank};
})"""


def open_page(chromium: str, profile: Path, url: str) -> dict:
    """Load ``url``; return its requests, problems, a few DOM facts, a screenshot and a PDF."""
    dt = DevTools(chromium, profile)
    try:
        page = next(t for t in dt.send("Target.getTargets")["targetInfos"] if t["type"] == "page")
        session = dt.send("Target.attachToTarget", {"targetId": page["targetId"], "flatten": True})["sessionId"]
        for domain in ("Page", "Network", "Runtime", "Log"):
            dt.send(f"{domain}.enable", session=session)
        dt.send("Emulation.setDeviceMetricsOverride",
                {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False}, session=session)
        dt.send("Page.navigate", {"url": url}, session=session)
        dt.wait_for("Page.loadEventFired")

        def evaluate(expression: str):
            return dt.send("Runtime.evaluate", {"expression": expression, "returnByValue": True},
                           session=session)["result"].get("value")

        facts = {
            "svgs": evaluate("document.querySelectorAll('svg').length"),
            "svg_shapes": evaluate("document.querySelectorAll('svg rect, svg polyline').length"),
            "title": evaluate("document.title"),
            "scroll_width": evaluate("document.documentElement.scrollWidth"),
        }
        facts["cjk"] = evaluate(CJK_CHECK + "('战略客户')")
        facts["cjk_self_test"] = evaluate(CJK_CHECK + "('\\u{10FFFE}\\u{10FFFE}\\u{10FFFE}\\u{10FFFE}')")
        dt.send("DOM.enable", session=session)
        dt.send("CSS.enable", session=session)
        root = dt.send("DOM.getDocument", session=session)["root"]["nodeId"]
        h1 = dt.send("DOM.querySelector", {"nodeId": root, "selector": "h1"}, session=session)["nodeId"]
        facts["h1_fonts"] = (dt.send("CSS.getPlatformFontsForNode", {"nodeId": h1}, session=session)["fonts"]
                             if h1 else [])
        screenshot = base64.b64decode(dt.send("Page.captureScreenshot", {"format": "png"}, session=session)["data"])
        dt.send("Emulation.setEmulatedMedia", {"media": "print"}, session=session)
        facts["nav_in_print"] = evaluate("getComputedStyle(document.querySelector('nav')).display")
        pdf = base64.b64decode(dt.send("Page.printToPDF", {}, session=session)["data"])
    finally:
        dt.close()
    requests, problems = [], []
    for e in dt.events:
        method, params = e.get("method"), e.get("params", {})
        if method == "Network.requestWillBeSent":
            requests.append(params["request"]["url"])
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            problems.append(f"{details.get('text')} {details.get('exception', {}).get('description', '')}")
        elif method == "Runtime.consoleAPICalled":
            problems.append(f"console.{params['type']}: {params.get('args')}")
        elif method == "Log.entryAdded" and params["entry"]["level"] in ("error", "warning"):
            problems.append(f"log {params['entry']['level']}: {params['entry']['text']}")
    return {"requests": requests, "problems": problems, "screenshot": screenshot, "pdf": pdf, **facts}


# --- tests -------------------------------------------------------------------------------------

def test_report_references_no_external_resource(report):
    html = report.read_text(encoding="utf-8")
    attrs = re.findall(r"""\b(?:src|href|action|data|poster)\s*=\s*["']?([^"'\s>]*)""", html, flags=re.I)
    assert attrs and all(a.startswith("#") for a in attrs), attrs
    assert not re.search(r"@import|url\(|@font-face", html)


def test_screenshot_of_the_report(chromium, report, tmp_path):
    shot = tmp_path / "report.png"
    proc = run_chromium(chromium, tmp_path, f"--screenshot={shot}", f"--window-size={WIDTH},{HEIGHT}",
                        report.as_uri())
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    data = shot.read_bytes()
    assert png_size(data) == (WIDTH, HEIGHT)
    assert len(data) > 50_000  # charts and tables, not a blank page
    assert console_lines(proc.stderr) == []


def test_dom_after_load_has_the_charts_and_no_console_message(chromium, report, tmp_path):
    proc = run_chromium(chromium, tmp_path, "--enable-logging=stderr", "--v=0", "--log-level=0", "--dump-dom",
                        report.as_uri())
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    dom = proc.stdout.decode("utf-8")
    assert dom.count("<svg") >= 4
    assert '<section id="validation">' in dom
    assert console_lines(proc.stderr) == []


def test_report_makes_no_request_and_logs_no_error(chromium, report, tmp_path):
    page = open_page(chromium, tmp_path / "profile", report.as_uri())
    assert page["requests"] == [report.as_uri()]  # the file itself, nothing else
    assert page["problems"] == []
    assert page["svgs"] >= 4 and page["svg_shapes"] > 40
    assert page["title"]
    assert page["scroll_width"] <= WIDTH  # wide tables scroll inside the page, not the page itself
    assert png_size(page["screenshot"]) == (WIDTH, HEIGHT) and len(page["screenshot"]) > 50_000
    assert page["nav_in_print"] == "none"
    assert page["pdf"].startswith(b"%PDF") and len(page["pdf"]) > 20_000


def test_the_harness_catches_requests_and_errors(chromium, tmp_path):
    """A page that fetches a remote image and throws must be caught, or the clean result above means nothing."""
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><html><head><title>bad</title></head><body><nav></nav>'
                   '<img src="http://127.0.0.1:9/x.png"><script>console.error("boom"); notDefined();</script>'
                   "</body></html>", encoding="utf-8")
    page = open_page(chromium, tmp_path / "profile", bad.as_uri())
    assert "http://127.0.0.1:9/x.png" in page["requests"]
    assert any("boom" in p for p in page["problems"])
    assert any("notDefined" in p for p in page["problems"])
    proc = run_chromium(chromium, tmp_path, "--enable-logging=stderr", "--v=0", "--log-level=0", "--dump-dom",
                        bad.as_uri())
    assert any("boom" in line for line in console_lines(proc.stderr))


def test_chinese_text_renders_as_glyphs_not_boxes(chromium, report, tmp_path):
    """The CSS font list reaches an installed CJK font (no Noto CJK needed): the title's text is
    drawn by a font that has its glyphs, and Chinese differs from the missing-glyph boxes."""
    listed = subprocess.run(["fc-list", ":lang=zh"], capture_output=True, text=True).stdout if shutil.which("fc-list") else ""
    if not listed.strip() and not in_ci():
        pytest.skip("no Chinese font installed (apt-get install fonts-wqy-microhei); CI installs one")
    page = open_page(chromium, tmp_path / "profile", report.as_uri())
    assert page["cjk_self_test"]["tofu"] is True  # the check does see boxes where there are boxes
    assert page["cjk"]["tofu"] is False and page["cjk"]["blank"] is False, page["cjk"]
    if "zh" in report.parent.name:
        fonts = page["h1_fonts"]
        assert sum(f["glyphCount"] for f in fonts) >= len("客户分层报告"), fonts
        cjk_fonts = [f["familyName"] for f in fonts if f["glyphCount"] > 0]
        named = page["cjk"]["family"]
        assert any(name in named for name in cjk_fonts), (cjk_fonts, named)
