"""The reports as a reader sees them: every stage report and index.html of the session's demo run
rendered by headless Chromium at 1366 px width (offline; a non-trivial page), and their text
checked for what a manager must (not) see: the findings heading near the top, the "How this was
measured" part last, no 'nan'/'inf'/'Traceback', no machine keys such as diff_vs_rest, p_adjusted
or rate_per_1000.

Rendering is skipped with a reason when Debian's `chromium` is not installed, except when
CX_REQUIRE_CHROMIUM=1 (set by .ci/run, which installs it): then a missing browser fails the test.
CX_RENDER_DIR=<folder> keeps the screenshots there to look at."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest

from cxlib import export, locale

CHROMIUM_NAMES = ("chromium", "chromium-browser")
WINDOW = (1366, 2400)
STAGES = ("01_validate_clean", "02_feedback", "03_journey", "04_moments_of_truth", "05_customer_value", "06_summary",
          "07_occasions")
# Column keys of results tables (snake_case keys of the locale's `columns`): a reader sees their labels.
MACHINE_KEYS = sorted({key for key in locale.texts("en")["columns"] if "_" in key} | {"diff_vs_rest", "p_adjusted",
                                                                                      "rate_per_1000"})
NOT_NUMBERS = re.compile(r"(?<![\w-])(nan|NaN|inf|-inf|Infinity|NaT|<NA>)(?![\w-])")
FINDINGS_WITHIN = 1500     # characters of text before the findings heading: back link, title, purpose


def chromium() -> str:
    """Path of the Chromium binary; skip (or fail under CX_REQUIRE_CHROMIUM=1) when there is none."""
    found = next((path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None)
    if found is None and Path("/usr/bin/chromium").exists():
        found = "/usr/bin/chromium"
    if found is None:
        message = "headless Chromium is not installed (Debian: apt-get install chromium; .ci/run installs it)"
        if os.environ.get("CX_REQUIRE_CHROMIUM") == "1":
            pytest.fail(f"CX_REQUIRE_CHROMIUM=1 but {message}")
        pytest.skip(message)
    return found


def screenshot(page: Path, png: Path, profile: Path) -> subprocess.CompletedProcess:
    """Render `page` with headless Chromium to `png` (no network, no first-run or background work)."""
    command = [
        chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
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


def reader_text(soup) -> str:
    """The text a reader sees, and the figures' alt text (their titles and captions): without
    styles, scripts and <code> (parameter names, file paths)."""
    alts = [img.get("alt", "") for img in soup.find_all("img")]
    for tag in soup(["style", "script", "code", "title"]):
        tag.decompose()
    return " ".join([*soup.get_text(" ").split(), *alts])


def tagged(ipynb: Path, tag: str) -> bool:
    """Whether the executed notebook has a cell tagged `tag` that shows something."""
    cells = nbformat.read(ipynb, as_version=4).cells
    return any(tag in (c.metadata.get("tags") or []) and (c.cell_type == "markdown" or c.get("outputs")) for c in cells)


@pytest.fixture(scope="module")
def run_dir(baseline):
    done, folder = baseline
    assert done.returncode == 0, done.stdout + done.stderr
    return folder


@pytest.mark.parametrize("page", ["index", *STAGES])
def test_report_renders_in_headless_chromium(page, run_dir, tmp_path):
    path = run_dir / f"{page}.html"
    assert path.is_file(), path
    keep = os.environ.get("CX_RENDER_DIR")
    png = (Path(keep) if keep else tmp_path) / f"{page}.png"
    png.parent.mkdir(parents=True, exist_ok=True)
    result = screenshot(path, png, tmp_path / "profile")
    assert result.returncode == 0, result.stderr[-2000:]
    assert png.is_file() and png.stat().st_size > 20_000, result.stderr[-2000:]
    assert "net::ERR_" not in result.stderr                     # nothing failed to load
    content = painted(png)
    assert content["size"] == WINDOW
    assert 0.02 < content["not_white"] < 0.9, content           # text, tables and figures, not a blank page
    assert content["colours"] > 50, content                     # more than a few flat colours


@pytest.mark.parametrize("stage", STAGES)
def test_stage_report_reads_findings_first_and_method_last(stage, run_dir):
    from bs4 import BeautifulSoup

    soup = BeautifulSoup((run_dir / f"{stage}.html").read_text(encoding="utf-8"), "html.parser")
    lang = soup.html["lang"]
    headings = soup.find_all("h2")
    findings = soup.find("h2", id=export.FINDINGS_ID)
    assert tagged(run_dir / f"{stage}.ipynb", export.FINDINGS_TAG), f"{stage}: no cell tagged findings with output"
    assert findings is not None and findings.get_text(strip=True) == locale.text("report.findings", lang)
    assert headings[0] is findings, [h.get_text(strip=True) for h in headings[:3]]
    before = reader_text(BeautifulSoup(str(soup).split(f'id="{export.FINDINGS_ID}"')[0], "html.parser"))
    assert len(before) < FINDINGS_WITHIN, before[:300]             # only the back link, the title and the purpose
    method = soup.find("h2", id=export.METHOD_ID)
    if tagged(run_dir / f"{stage}.ipynb", export.METHOD_TAG):
        assert method is not None and headings[-1] is method, stage
        assert method.get_text(strip=True) == locale.text("report.method", lang)
    else:
        assert method is None


@pytest.mark.parametrize("page", ["index", *STAGES])
def test_reader_sees_no_raw_values_tracebacks_or_machine_keys(page, run_dir):
    from bs4 import BeautifulSoup

    text = reader_text(BeautifulSoup((run_dir / f"{page}.html").read_text(encoding="utf-8"), "html.parser"))
    assert NOT_NUMBERS.findall(text) == [], page
    assert "Traceback" not in text and "((none))" not in text, page
    shown = [key for key in MACHINE_KEYS if re.search(rf"(?<![\w.]){re.escape(key)}(?![\w])", text)]
    assert shown == [], (page, shown)


def test_index_names_the_period_of_each_kpi_and_agrees_with_the_summary(run_dir):
    from bs4 import BeautifulSoup

    results = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    soup = BeautifulSoup((run_dir / "index.html").read_text(encoding="utf-8"), "html.parser")
    tiles = {tile["data-key"]: tile for tile in soup.select(".tile[data-key]")}
    nps = tiles["feedback.nps"]
    period = results["feedback"]["period"]
    assert nps.select_one(".period").get_text() == (
        f"all time, {locale.format_date(period['from'])} to {locale.format_date(period['to'])}")
    latest = results["summary"]["tiles"]["nps"]
    assert nps.select_one(".latest").get_text().startswith(
        f"{locale.format_period(latest['period'])} (last {latest['period_kind']}): "
        f"{locale.format_value(latest['value'], 'points', sign=True)}")
    assert tiles["journey.conversion_rate"].select_one(".period").get_text() == "all time"
    # the appendix: results keys in words, not as keys
    keys = [tag.get_text(strip=True) for tag in soup.select("#appendix summary, #appendix th")]
    assert keys and [k for k in keys if "_" in k] == []
