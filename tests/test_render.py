"""The reports render in a real browser: headless Chromium opens reports/latest/index.html and a
stage report of the session's demo run, offline, and paints a non-trivial page.

Skipped with a reason when Debian's `chromium` is not installed, except when CX_REQUIRE_CHROMIUM=1
(set by .ci/run, which installs it): then a missing browser fails the test."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM_NAMES = ("chromium", "chromium-browser")
WINDOW = (1280, 2000)


def chromium() -> str:
    """Path of the Chromium binary; skip (or fail under CX_REQUIRE_CHROMIUM=1) when there is none."""
    found = next((path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None)
    if found is None and Path("/usr/bin/chromium").exists():
        found = "/usr/bin/chromium"
    if found is None:
        message = ("headless Chromium is not installed (Debian: apt-get install chromium; .ci/run installs it)")
        if os.environ.get("CX_REQUIRE_CHROMIUM") == "1":
            pytest.fail(f"CX_REQUIRE_CHROMIUM=1 but {message}")
        pytest.skip(message)
    return found


def screenshot(page: Path, png: Path, profile: Path) -> subprocess.CompletedProcess:
    """Render `page` with headless Chromium to `png` (no network, no first-run or background work)."""
    command = [
        chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", f"--screenshot={png}", f"--window-size={WINDOW[0]},{WINDOW[1]}",
        page.resolve().as_uri(),
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=180)


def painted(png: Path) -> dict:
    """Size and content of a screenshot: width, height, share of pixels that are not white, colours."""
    import numpy as np
    from PIL import Image

    with Image.open(png) as image:
        rgb = image.convert("RGB")
        pixels = np.asarray(rgb.resize((rgb.width // 4, rgb.height // 4))).reshape(-1, 3)
        return {
            "size": rgb.size,
            "not_white": float((pixels.min(axis=1) < 245).mean()),
            "colours": len(np.unique(pixels, axis=0)),
        }


@pytest.mark.parametrize("page", ["index.html", "02_feedback.html"])
def test_report_renders_in_headless_chromium(page, baseline, demo_project, tmp_path):
    done, run_dir = baseline
    assert done.returncode == 0, done.stdout + done.stderr
    path = demo_project / "reports" / "latest" / page
    assert path.is_file()
    png = tmp_path / f"{Path(page).stem}.png"
    result = screenshot(path, png, tmp_path / "profile")
    assert result.returncode == 0, result.stderr[-2000:]
    assert png.is_file() and png.stat().st_size > 20_000, result.stderr[-2000:]
    assert "net::ERR_" not in result.stderr                     # nothing failed to load
    content = painted(png)
    assert content["size"] == WINDOW
    assert 0.02 < content["not_white"] < 0.9, content           # text, tables and figures, not a blank page
    assert content["colours"] > 50, content                     # more than a few flat colours
