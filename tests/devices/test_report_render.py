"""report.html as a user sees it: headless Chromium at 1400 and 420 px (skipped without chromium)."""

from __future__ import annotations

import io
import json
import os

import numpy as np
import pytest
from chromium import Browser, find, render

CHROMIUM = find()
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not installed (make system-deps installs Debian's chromium)"
)

# what the page looks like from inside: the first table's rows and whether anything overflows sideways
PROBE = """(() => {
  const t = document.querySelector('table');
  const rows = t ? [...t.tBodies[0].rows].map(r => [...r.cells].map(c => c.innerText.trim())) : [];
  const head = t ? [...t.tHead.rows[0].cells].map(c => c.innerText.trim()) : [];
  const imgs = [...document.images].map(i => [i.complete, i.naturalWidth]);
  return {id: t && t.id, head, rows, imgs,
          scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth,
          viewport: !!document.querySelector('meta[name=viewport]')};
})()"""


def _pixels(png: bytes) -> np.ndarray:
    import matplotlib.image as mpimg

    return mpimg.imread(io.BytesIO(png), format="png")[..., :3]


def _blank(png: bytes) -> bool:
    px = _pixels(png)
    non_white = (px < 0.95).any(axis=-1).mean()
    return bool(non_white < 0.01 or px.std() < 0.02)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    b = Browser(CHROMIUM, tmp_path_factory.mktemp("chromium-profile"))
    yield b
    b.close()


@needs_chromium
def test_probe_sees_console_errors_and_blank_pages(browser, tmp_path):
    """The checks below can fail: a page with a console error and nothing drawn is caught."""
    page = tmp_path / "bad.html"
    page.write_text("<!doctype html><title>x</title><script>console.error('broken')</script>")
    png, _, errors = render(browser, page.as_uri(), 420, 600, "1")
    assert any("broken" in e for e in errors) and _blank(png)


@needs_chromium
@pytest.mark.parametrize("width", [1400, 420])
def test_report_renders_answer_first(profiled_run, browser, width, tmp_path):
    html_path = profiled_run / "profile" / "report.html"
    png, probe, errors = render(browser, html_path.as_uri(), width, 900, PROBE)
    shots = os.environ.get("TINYSHIP_SCREENSHOTS")
    (tmp_path / f"report-{width}.png").write_bytes(png)
    if shots:
        os.makedirs(shots, exist_ok=True)
        with open(os.path.join(shots, f"report-{width}.png"), "wb") as f:
            f.write(png)
    assert errors == []
    assert not _blank(png), "the first screen is blank"
    assert probe["viewport"] and probe["id"] == "answer"
    devices = {
        r["device"]
        for r in json.loads((profiled_run / "profile" / "profile.json").read_text())["records"]
    }
    assert probe["head"][:2] == ["device", "verdict"]
    assert sorted(r[0].splitlines()[0] for r in probe["rows"]) == sorted(
        devices
    )  # one row per device
    assert all(r[1] in ("fits", "nothing fits", "not judged") for r in probe["rows"])
    assert all(ok and w > 0 for ok, w in probe["imgs"]), "an image failed to decode"
    # tables scroll inside their box; the page itself never scrolls sideways
    assert probe["scrollWidth"] <= probe["innerWidth"] + 1, probe
