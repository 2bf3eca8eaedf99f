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

A stage whose load cell calls `stage_note(run_dir, "journey", lang=lang)` says once, at that place,
what the data lacks for several sections ("no events (needs ...): stages, episodes, funnel"): the
first section missing an input shows the full note, every later one with the same reason a short
one ("as above"), and the line at the top lists them all (a display updated as sections skip).
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
_AGAIN = {"en": "as above", "de": "wie oben"}
_TOP = {"en": "Not shown for this data", "de": "Für diese Daten nicht gezeigt"}
_SECTIONS_WORD = {"en": "sections", "de": "Abschnitte"}
_ACRONYMS = {"nps": "NPS", "csat": "CSAT", "ces": "CES", "clv": "CLV", "rfm": "RFM", "kpi": "KPI", "kpis": "KPIs",
             "fcr": "FCR"}


@dataclass
class _StageNote:
    """The stage-level note of one stage: its display and the sections skipped so far, in order."""

    lang: str
    handle: object = None
    skipped: list[dict] = field(default_factory=list)


_NOTES: dict[tuple[str, str], _StageNote] = {}     # (run_dir, stage) -> note, set by `stage_note`


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


def skip_note(missing: Missing, lang: str = "en", *, again: bool = False) -> str:
    """One Markdown line for a skipped section: what is missing and what would enable it; `again`:
    the short form for a reason an earlier section of the stage already showed."""
    shown, needs = _WORDS.get(lang, _WORDS["en"])
    if again:
        return f"*{shown}: {missing.reason} ({_AGAIN.get(lang, _AGAIN['en'])}).*"
    enable = f" ({needs} {missing.enable})" if missing.enable else ""
    return f"*{shown}: {missing.reason}{enable}.*"


def section_name(key: str) -> str:
    """A section key in words: 'journey.stage_flow' -> 'stage flow', 'value.kpi_by_tier' -> 'KPI by tier'."""
    words = str(key).partition(".")[2].replace(".", " ").replace("_", " ").split()
    return " ".join(_ACRONYMS.get(w, w) for w in words)


def group_skipped(skipped: list[dict]) -> list[dict]:
    """Skipped sections ({section, reason, enable}) grouped by reason and enable, in the order of
    their first appearance: [{reason, enable, sections: [key, ...]}]."""
    groups: dict[tuple, dict] = {}
    for item in skipped:
        key = (item.get("reason"), item.get("enable"))
        groups.setdefault(key, {"reason": key[0], "enable": key[1], "sections": []})["sections"].append(item["section"])
    return list(groups.values())


def stage_text(skipped: list[dict], lang: str = "en") -> str:
    """Markdown for the top of a stage report: each reason that hides two or more sections, what
    would enable it and the sections it hides; '' when no reason hides more than one."""
    _, needs = _WORDS.get(lang, _WORDS["en"])
    lines = [f"- {g['reason'][:1].upper()}{g['reason'][1:]}" + (f" ({needs} {g['enable']})" if g["enable"] else "")
             + f": {len(g['sections'])} {_SECTIONS_WORD.get(lang, 'sections')} ("
             + ", ".join(section_name(k) for k in g["sections"]) + ")."
             for g in group_skipped(skipped) if len(g["sections"]) >= 2]
    return f"**{_TOP.get(lang, _TOP['en'])}:**\n\n" + "\n".join(lines) if lines else ""


def stage_note(run_dir: str | Path, stage: str, *, lang: str = "en") -> None:
    """Show here the stage-level note of `stage` (empty until two sections skip for one reason,
    then `stage_text`), and shorten the notes of later sections that repeat a reason (module doc)."""
    note = _StageNote(lang)
    _NOTES[(str(Path(run_dir)), stage)] = note
    note.handle = display(Markdown(""), display_id=True)


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
        note = _NOTES.get((str(run_dir), key.partition(".")[0]))
        again = note is not None and any((s["reason"], s["enable"]) == (missing.reason, missing.enable)
                                         for s in note.skipped)
        display(Markdown(skip_note(missing, lang, again=again)))
        if note is not None:
            note.skipped.append(current.skipped)
            if note.handle is not None:
                note.handle.update(Markdown(stage_text(note.skipped, note.lang)))
    else:
        path.unlink(missing_ok=True)      # a section that ran is no longer skipped (re-runs in one folder)
