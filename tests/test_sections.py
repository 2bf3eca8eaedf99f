"""Sections that run what the data supports: a Missing input becomes a recorded skip note."""

import json

import pytest

from cxlib import report, schema, sections


@pytest.fixture
def shown(monkeypatch):
    """The Markdown texts a section displays."""
    texts = []
    monkeypatch.setattr(sections, "display", lambda obj: texts.append(obj.data))
    return texts


def test_missing_input_is_recorded_as_skipped_and_shown(tmp_path, shown):
    with sections.section(tmp_path, "feedback.nps_trend") as s:
        schema.require(False, "no NPS answers", enable="feedback.nps")
        s.record("never", {"x": 1})                       # not reached
    assert s.skipped == {"section": "feedback.nps_trend", "reason": "no NPS answers", "enable": "feedback.nps"}
    results = report.read_results(tmp_path)
    assert results["skipped"] == [s.skipped]
    assert "never" not in results
    assert shown == ["*Not shown: no NPS answers (needs feedback.nps).*"]


def test_section_that_runs_records_at_once_and_clears_an_old_skip(tmp_path, shown):
    with sections.section(tmp_path, "journey.funnel"):
        raise schema.Missing("no events")
    assert [r["section"] for r in report.read_results(tmp_path)["skipped"]] == ["journey.funnel"]
    with sections.section(tmp_path, "journey.funnel") as s:
        s.record("journey", {"conversion_rate": 0.25})
        assert json.loads((tmp_path / "results" / "journey.json").read_text()) == {"conversion_rate": 0.25}
    results = report.read_results(tmp_path)
    assert "skipped" not in results and results["journey"] == {"conversion_rate": 0.25}


def test_other_errors_still_fail_and_german_note(tmp_path, shown):
    with pytest.raises(KeyError):
        with sections.section(tmp_path, "moments.impact"):
            raise KeyError("nps")
    assert "skipped" not in report.read_results(tmp_path)
    with sections.section(tmp_path, "moments.churn", lang="de"):
        raise schema.Missing("kein Kunde ist abgewandert", enable="customers.churn_date")
    assert shown == ["*Nicht gezeigt: kein Kunde ist abgewandert (benötigt customers.churn_date).*"]


def test_section_key_is_checked(tmp_path):
    with pytest.raises(ValueError, match="stage.section"):
        with sections.section(tmp_path, "Bad Key"):
            pass


class _Handle:
    """A display handle that keeps what it was last updated with."""

    def __init__(self, texts):
        self.texts = texts

    def update(self, obj):
        self.texts.append(("top", obj.data))


@pytest.fixture
def shown_with_top(monkeypatch):
    """The Markdown texts shown, the stage note's updates as ('top', text)."""
    texts = []

    def fake_display(obj, display_id=None):
        texts.append(obj.data if display_id is None else ("top", obj.data))
        return _Handle(texts) if display_id else None

    monkeypatch.setattr(sections, "display", fake_display)
    return texts


def test_stage_note_lists_a_reason_shared_by_sections_once(tmp_path, shown_with_top):
    sections.stage_note(tmp_path, "journey")
    for key in ("journey.stages", "journey.funnel", "journey.stage_flow"):
        with sections.section(tmp_path, key):
            raise schema.Missing("no events", enable="the events table")
    with sections.section(tmp_path, "journey.conversion"):
        raise schema.Missing("no leads", enable="customers.lead_date")
    with sections.section(tmp_path, "moments.impact"):        # another stage: not part of the journey's note
        raise schema.Missing("no events", enable="the events table")
    notes = [t for t in shown_with_top if isinstance(t, str)]
    assert notes == ["*Not shown: no events (needs the events table).*", "*Not shown: no events (as above).*",
                     "*Not shown: no events (as above).*", "*Not shown: no leads (needs customers.lead_date).*",
                     "*Not shown: no events (needs the events table).*"]
    top = [t for kind, t in (x for x in shown_with_top if isinstance(x, tuple))]
    assert top[0] == "" and top[1] == ""                  # one section skipped: nothing to group yet
    assert top[-1] == ("**Not shown for this data:**\n\n"
                       "- No events (needs the events table): 3 sections (stages, funnel, stage flow).")
    assert len(report.read_results(tmp_path)["skipped"]) == 5      # every skip still recorded


def test_section_names_and_groups_in_words():
    assert sections.section_name("value.kpi_by_tier") == "KPI by tier"
    assert sections.section_name("feedback.nps") == "NPS"
    groups = sections.group_skipped([{"section": "a.x", "reason": "r", "enable": None},
                                     {"section": "a.y", "reason": "s", "enable": "e"},
                                     {"section": "a.z", "reason": "r", "enable": None}])
    assert groups == [{"reason": "r", "enable": None, "sections": ["a.x", "a.z"]},
                      {"reason": "s", "enable": "e", "sections": ["a.y"]}]
    assert sections.stage_text([{"section": "a.y", "reason": "s", "enable": "e"}]) == ""
    assert sections.stage_text([{"section": "value.rfm", "reason": "keine Bestellungen", "enable": None},
                                {"section": "value.tiers", "reason": "keine Bestellungen", "enable": None}], "de") == (
        "**Für diese Daten nicht gezeigt:**\n\n- Keine Bestellungen: 2 Abschnitte (RFM, tiers).")
