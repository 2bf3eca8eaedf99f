"""Sections of a stage report that run what the data supports.

A notebook wraps each section in `section(run_dir, key, lang=lang)`. When an analysis function
inside raises `schema.Missing` (a table, column or outcome the data does not hold), the section
shows one line saying what is missing and what would enable it, records it under `skipped` in
results.json and the notebook goes on with the next section. Any other error still fails the
run. Results recorded with `s.record(...)` are written at once, so a later failure never loses
an earlier section's numbers.

    with sections.section(run_dir, "moments.impact", lang=lang) as s:
        impact = moments.kpi_impact(...)          # raises schema.Missing("no NPS answers", enable="feedback.nps")
        s.record("moments_of_truth", impact)
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from IPython.display import Markdown, display

from cxlib import report
from cxlib.schema import Missing

_KEY = re.compile(r"[a-z0-9_]+(\.[a-z0-9_]+)*")
_WORDS = {
    "en": ("Not shown", "needs"),
    "de": ("Nicht gezeigt", "benötigt"),
}


@dataclass
class Section:
    """An open report section: `record` writes results now; `skipped` is set when it was skipped."""

    run_dir: Path
    key: str
    skipped: dict | None = None
    recorded: list[str] = field(default_factory=list)

    def record(self, name: str, results) -> Path:
        """Write `results` under the top-level key `name` of results.json (report.record_results)."""
        self.recorded.append(name)
        if isinstance(results, dict):
            return report.record_results(self.run_dir, name, results)
        return report.write_json(self.run_dir / report.RESULTS_DIR / f"{name}.json", results)


def skip_note(missing: Missing, lang: str = "en") -> str:
    """One Markdown line for a skipped section: what is missing and what would enable it."""
    shown, needs = _WORDS.get(lang, _WORDS["en"])
    enable = f" ({needs} {missing.enable})" if missing.enable else ""
    return f"*{shown}: {missing.reason}{enable}.*"


@contextmanager
def section(run_dir: str | Path, key: str, *, lang: str = "en"):
    """Run a notebook section; a `schema.Missing` raised inside becomes a skip note (see module doc).

    `key` names the section in results.json (`stage.section`, lower case, e.g. "feedback.nps_trend").
    """
    if not _KEY.fullmatch(key):
        raise ValueError(f"section key must look like 'stage.section', got {key!r}")
    run_dir = Path(run_dir)
    path = run_dir / report.RESULTS_DIR / report.SKIPPED_DIR / f"{key}.json"
    current = Section(run_dir, key)
    try:
        yield current
    except Missing as missing:
        current.skipped = {"section": key, "reason": missing.reason, "enable": missing.enable}
        report.write_json(path, current.skipped)
        display(Markdown(skip_note(missing, lang)))
    else:
        path.unlink(missing_ok=True)      # a section that ran is no longer skipped (re-runs in one folder)
