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
