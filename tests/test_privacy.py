"""Customer data stays where it belongs (issue 9), end to end and by property.

- The scan: every HTML, results.json, run.json, executed notebook and log of
  a demo run is searched for the demo's e-mail addresses, phone numbers, names and CRM numbers
  (read from the demo exports: the CRM and the survey comments, some of which carry them) and
  holds none; only contact_list.csv holds CRM numbers, with the channel, and no contact details.
- The audited run: the session's demo run (`baseline`, the whole pipeline) has a sitecustomize.py
  on PYTHONPATH whose audit hook records socket events of every process (cx and the Jupyter
  kernels, conftest.AUDIT_HOOK): no connection, bind or name lookup leaves the machine.
- Keys and retention, on a copy of the demo project (01_validate_clean, which pseudonymises): a
  run without a key in the environment creates the key file (0600), and its pseudonyms differ
  from the baseline's (another key) and equal those of a second run with the same key file; a
  scheduled run (params/monthly.yml, create_key false) without a key stops with a message that
  says where the key is looked for, changing nothing. The first runs with retention_days=30 over
  old run folders and contact lists.
- Consent as a property: a customer/channel is contactable iff the latest consent event for it is
  an opt-in (an opt-out wins a tie), or there is none and the CRM has the explicit opt-in.
- `make lab` listens on 127.0.0.1 with a token; no project file opens a port to other hosts.
- Scrubbing free text (`cxlib.privacy`): exact outputs of `scrub_pii`, `name_pattern`, `scrub_free_text`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import ipaddress
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import unicodedata
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs
from pandas.testing import assert_frame_equal

from cxlib import catalog, clean, config, moments, privacy, report, schedule

ROOT = Path(__file__).resolve().parents[1]
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
PHONE = re.compile(r"\+?\(?\d[\d /()-]{5,}\d")
CRM_NUMBER = re.compile(r"\bK\d{7}\b")
WORD = r"[^\W\d_][\w'’-]*"
NAME_PAIR = re.compile(rf"(?=(?<![\w'’-])({WORD}(?:,\s*|\s+){WORD}))")
BASE64 = re.compile(r"data:image/[\w+.-]+;base64,[A-Za-z0-9+/=]+|\"image/(?:png|jpeg)\": \"[A-Za-z0-9+/=\\n]*\"")


# --- helpers ------------------------------------------------------------------------------------------
def run_cx(*args: str, cwd: Path, env: dict[str, str | None]) -> subprocess.CompletedProcess:
    """`cx` with environment changes (None removes a variable)."""
    exe = Path(sys.executable).with_name("cx")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "cxlib.cli"]
    merged = {k: v for k, v in {**os.environ, **env}.items() if v is not None}
    return subprocess.run([*command, *args], cwd=cwd, capture_output=True, text=True, timeout=900, env=merged)


def digits(phone: str) -> str:
    """A phone number as its digits, country code 49 as the trunk 0: '+49 (0)40 12' -> '04012'."""
    d = re.sub(r"\D", "", phone.replace("(0)", ""))
    return "0" + d[4:] if d.startswith("0049") else "0" + d[2:] if phone.strip().startswith("+49") else d


def demo_pii(raw: Path) -> dict[str, set[str]]:
    """What must never reach a report: from the CRM export and the survey comments."""
    crm = pd.read_csv(raw / "crm_kunden.csv", sep=";", encoding="latin-1", dtype="str", keep_default_na=False)
    comments = pd.read_csv(raw / "umfrage_antworten.csv", dtype="str", keep_default_na=False)["Kommentar"]
    first, last = crm["Vorname"].str.strip(), crm["Nachname"].str.strip()
    named = (first != "") & (last != "")
    return {
        "email": {e.lower() for e in crm["E-Mail"] if e} | {e.lower() for e in comments.str.findall(EMAIL).explode().dropna()},
        "phone": {digits(p) for p in crm["Telefon"] if p}
                 | {digits(p) for p in comments.str.findall(r"\b0\d{2,4}[ /]\d{6,7}\b").explode().dropna()},
        "name": set((first + " " + last)[named].str.lower()) | set((last + ", " + first)[named].str.lower()),
        "crm_number": set(crm["Kundennummer"]) | set(comments.str.findall(CRM_NUMBER).explode().dropna()),
    }


def found_pii(text: str, pii: dict[str, set[str]]) -> dict[str, list[str]]:
    """The personal data of `pii` that occurs in `text` (after HTML unescaping), by kind."""
    text = BASE64.sub("", html.unescape(text))
    candidates = {
        "email": {e.lower() for e in EMAIL.findall(text)},
        "phone": {digits(p) for p in PHONE.findall(text)},
        "name": {re.sub(r"\s+", " ", n).lower() for n in NAME_PAIR.findall(text)},
        "crm_number": set(CRM_NUMBER.findall(text)),
    }
    return {kind: sorted(candidates[kind] & pii[kind])[:5] for kind in pii if candidates[kind] & pii[kind]}


def readable_text(path: Path) -> str:
    """A report file as text: JSON (results, run record, executed notebooks) without \\u escapes."""
    raw = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix in (".json", ".ipynb"):
        return json.dumps(json.loads(raw), ensure_ascii=False)
    return raw


def report_files(run_dir: Path) -> list[Path]:
    """Everything a reader of the run folder sees, except the lists of customers to contact (the
    service team's call-back list and the occasion list, which name the CRM number by design)."""
    return sorted(p for p in run_dir.rglob("*")
                  if p.is_file() and not any(p.match(pattern) for pattern in schedule.CONTACT_LISTS))


@pytest.fixture(scope="module")
def pii(demo_project) -> dict[str, set[str]]:
    return demo_pii(demo_project / "data" / "raw")


# --- the scan -----------------------------------------------------------------------------------------
def test_the_scan_sees_the_personal_data_planted_in_the_demo(demo_project, pii):
    """Positive control: the exports do hold what the scan looks for, and the scan finds it."""
    assert min(len(v) for v in pii.values()) > 1000
    survey = (demo_project / "data" / "raw" / "umfrage_antworten.csv").read_text(encoding="utf-8")
    hits = found_pii(survey, pii)
    assert set(hits) == {"email", "phone", "name", "crm_number"}, hits
    crm = (demo_project / "data" / "raw" / "crm_kunden.csv").read_text(encoding="latin-1")
    assert set(found_pii(crm.replace(";", " ; "), pii)) == {"email", "phone", "crm_number"}   # names: own columns
    assert found_pii("<td>Gruß Anna M&#252;ller</td>", {**pii, "name": {"anna müller"}}) == {"name": ["anna müller"]}


def test_reports_of_a_demo_run_hold_no_personal_data(baseline, demo_project, pii):
    done, run_dir = baseline
    assert done.returncode == 0, done.stdout + done.stderr
    files = report_files(run_dir) + [p for p in (demo_project / "reports").glob("*.log")]
    kinds = {p.suffix for p in files}
    assert {".html", ".json", ".ipynb", ".log"} <= kinds
    assert (run_dir / "results.json").is_file() and len([p for p in files if p.suffix == ".html"]) >= 7
    assert not any("data_docs" in p.parts for p in files)                 # no Data Docs are written
    leaks = {p.relative_to(run_dir.parent).as_posix(): hits for p in files if (hits := found_pii(readable_text(p), pii))}
    assert leaks == {}


def test_quotes_and_terms_are_scrubbed_with_the_crm_names(baseline):
    _, run_dir = baseline
    nb = json.loads((run_dir / "02_feedback.ipynb").read_text(encoding="utf-8"))
    sources_ = ["".join(c["source"]) for c in nb["cells"]]
    # the CRM names go into voice.prepare, whose `scrub` every quote and term passes through
    assert any('catalog.read(processed_dir, "reidentification", columns=["pii_name"])' in s and "voice.prepare(tables" in s
               for s in sources_)
    assert any("example_quotes(inputs" in s for s in sources_) and any("uncovered_terms(inputs)" in s for s in sources_)


def test_contact_list_holds_the_crm_number_and_channel_only(baseline, pii):
    _, run_dir = baseline
    path = run_dir / "contact_list.csv"
    contacts = pd.read_csv(path, dtype="str", keep_default_na=False)
    assert len(contacts) > 0
    assert {"customer_ref", "customer_id", "channel"} <= set(contacts.columns)
    assert not {"pii_name", "pii_email", "pii_phone", "name", "email", "phone_number"} & set(contacts.columns)
    assert contacts["customer_ref"].isin(pii["crm_number"]).all()
    assert contacts["channel"].isin(moments.DIRECT_CHANNELS).all()
    assert set(found_pii(path.read_text(encoding="utf-8"), pii)) == {"crm_number"}
    results = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    assert results["contact_list"]["included"] == len(contacts)
    text_cells = [v for v in contacts.to_numpy().ravel() if pd.isna(pd.to_numeric(v, errors="coerce"))]
    assert text_cells and not [v for v in text_cells if v.startswith(report.FORMULA_START)]   # no formula injection


def test_occasion_list_holds_the_crm_number_and_no_other_personal_data(baseline, pii):
    _, run_dir = baseline
    path = run_dir / "occasion_list.csv"
    listed = pd.read_csv(path, dtype="str", keep_default_na=False)
    assert len(listed) > 0 and listed["customer_ref"].isin(pii["crm_number"]).all()
    assert set(found_pii(path.read_text(encoding="utf-8"), pii)) == {"crm_number"}


def test_moments_report_states_the_consent_basis_and_exclusions(baseline):
    _, run_dir = baseline
    text = re.sub(r"<[^>]+>", "", html.unescape((run_dir / "04_moments_of_truth.html").read_text(encoding="utf-8")))
    assert "Consent basis: explicit opt-in per channel in the CRM" in text
    assert re.search(r"[\d,]+ were left out for lack of consent and [\d,]+ for other reasons", text)
    results = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))["contact_list"]
    assert results["consent_basis"].startswith("explicit opt-in per channel")
    assert results["excluded_no_consent"] > 0


def test_processed_tables_hold_pseudonyms_and_the_restricted_table_is_owner_only(baseline, demo_project, pii):
    processed = demo_project / "data" / "processed"
    readable = catalog.read(processed)                       # what an analysis notebook sees
    assert "reidentification" not in readable and {"customers", "events", "feedback"} <= set(readable)
    for name, frame in readable.items():
        assert not set(frame.columns) & {"customer_ref", "pii_name", "pii_email", "pii_phone"}, name
    restricted = processed / "restricted"
    assert stat.S_IMODE(restricted.stat().st_mode) == 0o700
    assert [p.name for p in restricted.iterdir()] == ["reidentification.parquet"]
    assert stat.S_IMODE((restricted / "reidentification.parquet").stat().st_mode) == 0o600
    free_text = " ".join([*readable["feedback"]["comment"].dropna(), *readable["events"]["text"].dropna()])
    assert found_pii(free_text, pii) == {}                             # comments and notes scrubbed in 01
    assert all(p in free_text for p in ("[name]", "[customer-no]", "[email]", "[phone]"))
    reid = pd.read_parquet(restricted / "reidentification.parquet")
    key = os.environ[config.KEY_ENV].encode("utf-8")
    assert reid["customer_id"].tolist() == clean.pseudonymise(reid["customer_ref"], key).tolist()
    assert set(readable["customers"]["customer_id"]) == set(reid["customer_id"])


# --- the audited baseline: no network; key file, pseudonyms, retention -----------------------------------
LOCAL_NAMES = {"localhost", "ip6-localhost", "localhost.localdomain"}


def is_loopback(host) -> bool:
    if not isinstance(host, str) or not host:
        return False                          # "" binds every interface
    if host.lower() in LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def stamp(when: dt.datetime) -> str:
    return when.strftime("%Y%m%dT%H%M%SZ")


def fake_run(reports: Path, run_id: str) -> Path:
    folder = reports / run_id
    folder.mkdir(parents=True)
    (folder / "contact_list.csv").write_text("customer_ref,customer_id,channel\nK0000001,Cabc,phone\n", encoding="utf-8")
    (folder / "index.html").write_text("<html></html>", encoding="utf-8")
    (folder / "run.json").write_text(json.dumps({"run_id": run_id}), encoding="utf-8")   # retention deletes only cx's run folders
    return folder


def processed_snapshot(project: Path) -> dict:
    folder = project / "data" / "processed"
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def audited(demo_project, tmp_path_factory) -> dict:
    """A copy of the demo project; run 1: 01_validate_clean with no key anywhere (a new key file
    is created), retention_days=30 over planted old runs; run 2: 01_validate_clean again with
    create_key=false and the same key file; run 3: the scheduled parameter file with the key file
    missing. (The network audit is the baseline's: the whole pipeline.)"""
    base = tmp_path_factory.mktemp("privacy")
    project = base / "project"
    for folder in ("config", "notebooks", "params"):
        shutil.copytree(ROOT / folder, project / folder, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    shutil.copytree(demo_project / "data" / "raw", project / "data" / "raw")
    (project / "data" / "processed").mkdir(parents=True)
    reports = project / "reports"
    now = dt.datetime.now(dt.UTC)
    planted = {"old_run": fake_run(reports, stamp(now - dt.timedelta(days=400))),
               "recent_run": fake_run(reports, stamp(now - dt.timedelta(days=2)))}
    interactive = reports / "interactive"
    interactive.mkdir()
    for name, age in (("old_csv", 90), ("recent_csv", 1)):
        path = interactive / f"contact_list_{name}.csv"
        path.write_text("customer_ref,channel\nK0000002,email\n", encoding="utf-8")
        old = (now - dt.timedelta(days=age)).timestamp()
        os.utime(path, (old, old))
        planted[name] = path
    key_file = base / "keys" / "cx-insights" / "pseudonym.key"
    no_key = {config.KEY_ENV: None, config.KEY_FILE_ENV: str(key_file)}

    first = run_cx("run", "--project", str(project), "--only", "01_validate_clean", "-p", "retention_days=30",
                   cwd=project, env=no_key)
    if first.returncode != 0:
        pytest.fail("the first run (no key) failed:\n" + first.stdout + first.stderr[-3000:])
    first_run = (reports / "latest").resolve()
    customers = project / "data" / "processed" / "customers.parquet"
    first_ids = pd.read_parquet(customers)["customer_id"]
    reid = pd.read_parquet(project / "data" / "processed" / "restricted" / "reidentification.parquet")
    key_mode, key_dir_mode = stat.S_IMODE(key_file.stat().st_mode), stat.S_IMODE(key_file.parent.stat().st_mode)
    key = key_file.read_text(encoding="utf-8").strip()

    second = run_cx("run", "--project", str(project), "--only", "01_validate_clean", "-p", "create_key=false",
                    cwd=project, env=no_key)
    second_ids = pd.read_parquet(customers)["customer_id"] if second.returncode == 0 else None

    missing = base / "elsewhere" / "pseudonym.key"
    before = processed_snapshot(project)
    latest_before = os.readlink(reports / "latest")
    third = run_cx("run", "--project", str(project), "-f", "params/monthly.yml", "--only", "01_validate_clean",
                   cwd=project, env={config.KEY_ENV: None, config.KEY_FILE_ENV: str(missing)})
    return {"project": project, "first": first, "first_run": first_run, "first_ids": first_ids, "reid": reid,
            "key": key, "key_mode": key_mode, "key_dir_mode": key_dir_mode, "second": second,
            "second_ids": second_ids, "third": third, "missing": missing, "before": before,
            "after": processed_snapshot(project), "latest_before": latest_before,
            "latest_after": os.readlink(reports / "latest"), "planted": planted}


def audit_records(audit: Path) -> dict[str, list[dict]]:
    return {p.stem: [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines()]
            for p in sorted(audit.glob("*.jsonl"))}


def test_a_full_run_makes_no_network_connection(baseline, baseline_audit, demo_project):
    first = baseline[0]
    assert first.returncode == 0, first.stdout + first.stderr
    stages = len(config.load_yaml(demo_project / "config" / "pipeline.yml")["notebooks"])
    assert re.search(rf"\[{stages}/{stages}\] \S+ … ok", first.stdout), first.stdout      # the whole pipeline ran
    processes = audit_records(baseline_audit)
    starts = {pid: records[0]["args"] for pid, records in processes.items() if records[0]["event"] == "start"}
    assert len(starts) == len(processes)
    kernels = [pid for pid, argv in starts.items() if "ipykernel_launcher" in argv]
    runners = [pid for pid, argv in starts.items() if any(a.endswith("cx") for a in argv[:2]) and "run" in argv]
    assert len(runners) == 1 and len(kernels) == stages, starts        # the hook ran in cx and in each kernel
    events = [(pid, r["event"], r["args"]) for pid, records in processes.items() for r in records[1:]]
    assert not [e for e in events if e[1] == "hook-error"]
    connections = [e for e in events if e[1] == "kernel.connection"]
    assert len(connections) == stages and all(args[0] in ("tcp", "ipc") and (args[0] == "ipc" or is_loopback(args[1]))
                                         for _, _, args in connections), connections
    outside = []
    for pid, event, args in events:
        if event in ("socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg"):
            address = args[1]                                            # (socket, address)
            if isinstance(address, list) and not is_loopback(address[0]):
                outside.append((pid, event, args))                     # AF_UNIX paths are strings: local
        elif event in ("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex",
                       "socket.gethostbyaddr", "socket.getnameinfo"):
            host = args[0][0] if event == "socket.getnameinfo" else args[0]
            if not is_loopback(host):
                outside.append((pid, event, args))
        elif event not in ("socket.gethostname", "kernel.connection"):
            outside.append((pid, event, args))                         # anything unexpected is reported
    assert outside == []


def test_audit_classifies_addresses():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost") and is_loopback("127.8.0.1")
    assert not is_loopback("") and not is_loopback("0.0.0.0") and not is_loopback("10.0.0.1")
    assert not is_loopback("extensions.duckdb.org") and not is_loopback(None)


def test_first_run_without_a_key_creates_an_owner_only_key_file(audited):
    assert audited["first"].returncode == 0
    assert re.fullmatch(r"[0-9a-f]{64}", audited["key"] or "")
    assert audited["key_mode"] == 0o600 and audited["key_dir_mode"] == 0o700
    reid = audited["reid"]
    assert reid["customer_id"].tolist() == clean.pseudonymise(reid["customer_ref"], audited["key"].encode()).tolist()


def test_same_key_same_pseudonyms_across_runs_other_key_other_pseudonyms(audited, baseline, demo_project):
    second = audited["second"]
    assert second.returncode == 0, second.stdout + second.stderr       # create_key=false with the key present
    first_ids, second_ids = audited["first_ids"], audited["second_ids"]
    assert len(first_ids) > 1000 and second_ids.tolist() == first_ids.tolist()
    assert baseline[0].returncode == 0
    baseline_ids = pd.read_parquet(demo_project / "data" / "processed" / "customers.parquet")["customer_id"]
    assert len(baseline_ids) == len(first_ids) and not set(baseline_ids) & set(first_ids)


def test_scheduled_run_without_a_key_stops_and_changes_nothing(audited):
    third, missing = audited["third"], audited["missing"]
    assert third.returncode == 1, third.stdout + third.stderr
    message = third.stdout + third.stderr
    assert "FAILED 01_validate_clean" in message and "ConfigError" in message
    assert "no pseudonymisation key found" in message
    assert f"the file named by CX_KEY_FILE: {missing} (missing)" in message and "create_key" in message
    assert not missing.exists() and not missing.parent.exists()
    assert audited["after"] == audited["before"] and audited["latest_after"] == audited["latest_before"]


def test_retention_deletes_old_run_folders_and_contact_lists(audited):
    planted, first_run = audited["planted"], audited["first_run"]
    assert audited["first"].returncode == 0
    assert not planted["old_run"].exists() and not planted["old_csv"].exists()
    assert (planted["recent_run"] / "contact_list.csv").exists() and planted["recent_csv"].exists()
    assert (first_run / "01_validate_clean.html").exists()                  # the run that applied it is kept
    record = json.loads((first_run / "run.json").read_text(encoding="utf-8"))
    assert record["retention"]["retention_days"] == 30
    assert set(record["retention"]["deleted"]) == {planted["old_run"].name, "interactive/contact_list_old_csv.csv"}


# --- consent, as a property -------------------------------------------------------------------------------
CANONICAL = {"phone": "phone", "Telefon": "phone", "email": "email", "E-Mail": "email", "SMS": "sms",
             "Brief": "letter", "letter": "letter", "Chat": "chat", "Fax": None}
DIRECT = list(moments.DIRECT_CHANNELS)
DAYS = pd.date_range("2024-01-01", periods=5, freq="D", tz="UTC")


@pytest.fixture(scope="module")
def taxonomy():
    return config.load_taxonomy(ROOT / "config" / "taxonomy.yml")


@hs.composite
def consent_histories(draw):
    """Customers with a CRM opt-in flag and channel list, and a consent log of opt-in / opt-out
    events per customer and channel (few days: ties happen; channel None = every channel)."""
    n = draw(hs.integers(1, 4))
    ids = [f"P{i}" for i in range(n)]
    flags = draw(hs.lists(hs.sampled_from([True, False, None]), min_size=n, max_size=n))
    lists = draw(hs.lists(hs.none() | hs.lists(hs.sampled_from(sorted(CANONICAL)), max_size=4).map(", ".join),
                          min_size=n, max_size=n))
    events = draw(hs.lists(hs.tuples(hs.sampled_from([*ids, "Z"]), hs.sampled_from([*sorted(CANONICAL), None]),
                                     hs.integers(0, len(DAYS) - 1), hs.booleans()), max_size=14))
    customers = pd.DataFrame({"customer_id": pd.Series(ids, dtype="str"),
                              "contact_consent": pd.array(flags, dtype="boolean"),
                              "consent_channels": pd.Series(lists, dtype="str"),
                              "churn_date": pd.Series(pd.NaT, index=range(n), dtype="datetime64[us, UTC]")})
    log = pd.DataFrame({"customer_id": pd.Series([e[0] for e in events], dtype="str"),
                        "timestamp": pd.Series(DAYS[[e[2] for e in events]], dtype="datetime64[ns, UTC]"),
                        "channel": pd.Series([e[1] for e in events], dtype="object"),
                        "consent": pd.Series([e[3] for e in events], dtype="bool")})
    return customers, log, events, list(zip(ids, flags, lists))


def expected_consent(crm: list, events: list) -> set[tuple[str, str, str]]:
    """The rule, stated independently: per customer and direct channel, the latest event (an
    opt-out wins a tie; an event without a channel is an opt-out of every channel, or nothing if
    an opt-in) decides; without an event, the CRM's explicit opt-in for the channel."""
    out = set()
    crm_channels = {cid: ({CANONICAL[s] for s in (lst or "").split(", ") if s} if flag is True else set())
                    for cid, flag, lst in crm}
    for cid in {*crm_channels, *(e[0] for e in events)}:
        for channel in DIRECT:
            relevant = [(day, ok) for who, spelled, day, ok in events
                        if who == cid and ((spelled is not None and CANONICAL[spelled] == channel)
                                           or (spelled is None and not ok))]
            if relevant:
                last = max(day for day, _ in relevant)
                if all(ok for day, ok in relevant if day == last):
                    out.add((cid, channel, "consent log"))
            elif channel in crm_channels.get(cid, set()):
                out.add((cid, channel, "crm"))
    return out


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(world=consent_histories(), use_log=hs.booleans())
def test_property_contactable_iff_latest_consent_event_is_an_opt_in(taxonomy, world, use_log):
    customers, log, events, crm = world
    out = moments.consented_channels(customers, taxonomy, consent_log=log if use_log else None)
    got = set(out.itertuples(index=False, name=None))
    assert got == expected_consent(crm, events if use_log else [])
    assert len(got) == len(out) and list(out.columns) == ["customer_id", "channel", "basis"]


@settings(max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(world=consent_histories(), moment_channel=hs.sampled_from(DIRECT))
def test_property_contact_list_includes_exactly_the_consented(taxonomy, world, moment_channel):
    customers, log, events, crm = world
    pool = [*customers["customer_id"], "Z"]
    recent = pd.DataFrame({"event_id": [f"e{i}" for i in range(len(pool))], "customer_id": pd.Series(pool, dtype="str"),
                           "timestamp": pd.Series([DAYS[-1]] * len(pool), dtype="datetime64[ns, UTC]"),
                           "moment": "invoice_unclear", "channel": moment_channel,
                           "resolved": pd.array([False] * len(pool), dtype="boolean")})
    feedback = pd.DataFrame({"customer_id": pd.Series([], dtype="str"),
                             "timestamp": pd.Series([], dtype="datetime64[ns, UTC]"), "nps": pd.Series([], dtype="float64")})
    out = moments.contact_list(recent, customers, feedback, taxonomy, as_of=DAYS[-1], recent_days=30, consent_log=log)
    allowed = expected_consent(crm, events)
    by_customer = out.set_index("customer_id")
    assert sorted(by_customer.index) == sorted(pool)                          # every candidate accounted for
    assert by_customer.loc["Z", "status"] == "excluded_other"                 # not in the CRM
    for cid in customers["customer_id"]:
        mine = {(ch, basis) for who, ch, basis in allowed if who == cid}
        row = by_customer.loc[cid]
        if not mine:
            assert row["status"] == "excluded_no_consent" and pd.isna(row["channel"]), (cid, row.to_dict())
            continue
        assert row["status"] == "included" and (row["channel"], row["consent_basis"]) in mine, (cid, row.to_dict())
        if any(ch == moment_channel for ch, _ in mine):
            assert row["channel"] == moment_channel                           # the moment's own channel first


def test_an_undated_opt_in_never_overrides_a_dated_opt_out(taxonomy):
    customers = pd.DataFrame({"customer_id": ["A"], "contact_consent": pd.array([True], dtype="boolean"),
                              "consent_channels": ["email"]})
    log = pd.DataFrame({"customer_id": ["A", "A"], "timestamp": pd.to_datetime(["2024-02-01", None], utc=True),
                        "channel": ["email", "email"], "consent": [False, True]})
    assert moments.consented_channels(customers, taxonomy, consent_log=log).empty


def test_an_undated_opt_out_wins_over_a_dated_opt_in_and_an_undated_opt_in_alone_counts(taxonomy):
    customers = pd.DataFrame({"customer_id": ["A", "B"], "contact_consent": pd.array([False, False], dtype="boolean"),
                              "consent_channels": [None, None]})
    log = pd.DataFrame({"customer_id": ["A", "A", "B"],
                        "timestamp": pd.to_datetime([None, "2024-03-01", None], utc=True),
                        "channel": ["phone", "phone", "phone"], "consent": [False, True, True]})
    allowed = moments.consented_channels(customers, taxonomy, consent_log=log)
    assert allowed[["customer_id", "channel", "basis"]].values.tolist() == [["B", "phone", "consent log"]]


# --- nothing listens to other hosts ---------------------------------------------------------------------------
def test_make_lab_binds_loopback_with_a_token():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    recipe = re.search(r"^lab:.*\n((?:\t.*\n)+)", makefile, flags=re.M).group(1)
    command = next(line for line in recipe.splitlines() if "jupyter lab" in line)
    assert re.search(r"--ip[ =]127\.0\.0\.1\b", command) and "--no-browser" in command
    assert not re.search(r"token\s*=\s*(''|\"\"|$|\s)", command, flags=re.I)
    assert not re.search(r"password|allow_remote_access|allow-origin|disable_check_xsrf", command, flags=re.I)


def test_no_project_file_opens_a_port_to_other_hosts_or_fetches_from_the_network():
    files = [ROOT / "Makefile", *sorted((ROOT / "cxlib").rglob("*.py")), *sorted((ROOT / "config").rglob("*.yml")),
             *sorted((ROOT / "notebooks").glob("*.ipynb")), *sorted((ROOT / "params").glob("*.yml"))]
    offending = {}
    for path in files:
        text = path.read_text(encoding="utf-8")
        hits = re.findall(r"0\.0\.0\.0|--ip[ =](?!127\.0\.0\.1)\S+|\bimport (?:urllib|requests|httpx|http\.client|ftplib|"
                          r"smtplib)\b|\bfrom (?:urllib|requests|httpx|http) import|socket\.socket\(|\.listen\(|"
                          r"token\s*=\s*''", text)
        if hits:
            offending[path.relative_to(ROOT).as_posix()] = hits
    assert offending == {}

# --- scrubbing free text (cxlib.privacy) -------------------------------------------------------------
CRM_NAMES = pd.Series(["Karl-Heinz Müller", "Anna Lange", "Jo Wu", None, "Name Test"])


def test_scrub_pii_masks_email_phone_iban_names():
    raw = pd.Series([
        "Bitte rufen Sie mich an: 0170/1234567 oder +49 40 123 456 78.",
        "Mail an max.muster@web.de, IBAN DE89 3704 0044 0532 0130 00",
        "Herr Yilmaz war super. My name is Anna Schmidt.",
        "Rechnung vom 12.03.2024 über 39,99 Euro, Tarif 250",
        None,
    ], index=list("abcde"))
    out = privacy.scrub_pii(raw)
    assert out.tolist()[:4] == [
        "Bitte rufen Sie mich an: [phone] oder [phone].",
        "Mail an [email], IBAN [iban]",
        "Herr [name] war super. My name is [name].",
        "Rechnung vom 12.03.2024 über 39,99 Euro, Tarif 250",   # dates, amounts and short numbers stay
    ]
    assert pd.isna(out["e"]) and out.index.tolist() == list("abcde")


def test_scrub_pii_scrubs_repeated_texts_alike_and_keeps_index_name_and_missing_values():
    texts = ["Anruf von 0170/1234567", None, "gut", "Anruf von 0170/1234567", "Herr Lange rief an", "gut"]
    raw = pd.Series(texts, index=[5, 3, 9, 1, 7, 2], name="comment")
    out = privacy.scrub_pii(raw, names=CRM_NAMES, keep={"lange"})
    one_by_one = [privacy.scrub_pii(pd.Series([t]), names=CRM_NAMES, keep={"lange"}).iloc[0] for t in texts]
    shown = [None if pd.isna(v) else v for v in out]
    assert shown == ["Anruf von [phone]", None, "gut", "Anruf von [phone]", "Herr [name] rief an", "gut"]
    assert shown == [None if pd.isna(v) else v for v in one_by_one]
    assert out.index.tolist() == [5, 3, 9, 1, 7, 2] and out.name == "comment"
    assert privacy.scrub_pii(pd.Series([], dtype="str")).empty


def test_scrub_pii_phone_formats_german_and_international_but_not_dates_or_amounts():
    raw = pd.Series([
        "Festnetz 040 1234567, (030) 1234567, 030/1234567 oder 0171-1234567.",
        "Aus dem Ausland: +49 (0)40 123456, 0049 171 1234567, +44 20 7946 0958, +1 (555) 123-4567, +33 1 23 45 67 89",
        "Termine 12/03/2024, 2024-03-12 und 12.03.2024; Tarif 250, 39,99 Euro, PLZ 20095",
        "IBAN DE89370400440532013000 bitte",
    ])
    assert privacy.scrub_pii(raw).tolist() == [
        "Festnetz [phone], [phone], [phone] oder [phone].",
        "Aus dem Ausland: [phone], [phone], [phone], [phone], [phone]",
        "Termine 12/03/2024, 2024-03-12 und 12.03.2024; Tarif 250, 39,99 Euro, PLZ 20095",
        "IBAN [iban] bitte",
    ]


def test_scrub_pii_customer_numbers_demo_pattern_custom_pattern_and_none():
    raw = pd.Series(["Kundennummer K0001234, nicht K12345 und nicht XK00012345", "Kd-Nr KD-123456"])
    assert privacy.scrub_pii(raw).tolist() == ["Kundennummer [customer-no], nicht K12345 und nicht XK00012345",
                                            "Kd-Nr KD-123456"]
    assert privacy.scrub_pii(raw, customer_number=r"\bKD-\d{6}\b").tolist() == [
        "Kundennummer K0001234, nicht K12345 und nicht XK00012345", "Kd-Nr [customer-no]"]
    assert privacy.scrub_pii(raw, customer_number=None).tolist() == raw.tolist()
    with pytest.raises(privacy.PrivacyError, match="customer_number is not a regular expression"):
        privacy.scrub_pii(raw, customer_number="K(")


def test_scrub_pii_crm_names_whole_words_any_case_folded_spelling_short_tokens_skipped():
    raw = pd.Series(["Gruß, Karl-Heinz Müller", "Heinz MUELLER war da", "Ich habe lange gewartet", "Anna Lange",
                     "Jo Wu hier", "Annabell und Annas", "Frau Weiß: [name] ok", "lange Anna", None],
                    index=range(10, 19))
    out = privacy.scrub_pii(raw, names=CRM_NAMES, keep={"lange"})
    assert out.tolist()[:8] == ["Gruß, [name]", "[name] war da", "Ich habe lange gewartet", "[name]", "Jo Wu hier",
                                "Annabell und [name]", "Frau [name]: [name] ok", "lange [name]"]
    assert pd.isna(out.iloc[8]) and out.index.tolist() == list(range(10, 19))
    # without `keep` a surname that is also a word is masked everywhere
    assert privacy.scrub_pii(raw, names=CRM_NAMES).tolist()[2] == "Ich habe [name] gewartet"
    assert privacy.scrub_pii(pd.Series(["Jo Wu hier"]), names=CRM_NAMES, min_name_length=2).tolist() == ["[name] hier"]


def test_scrub_free_text_masks_comments_and_notes_only():
    fb = pd.DataFrame({"response_id": ["U1", "U2", "U3"], "nps": [1.0, 2.0, 3.0],
                       "comment": pd.Series(["Gruß Anna Lange, K0000001", None, "zu lange gewartet"], dtype="str")})
    ev = pd.DataFrame({"event_id": ["E1"], "text": pd.Series(["Rückruf unter 0171 5550123"], dtype="str")})
    orders = pd.DataFrame({"order_id": ["K0000001"]})
    before = {"feedback": fb.copy(), "events": ev.copy(), "orders": orders.copy()}
    out = privacy.scrub_free_text({"feedback": fb, "events": ev, "orders": orders}, names=CRM_NAMES, keep={"lange"})
    assert_frame_equal(out["feedback"], fb.assign(comment=pd.Series(["Gruß [name], [customer-no]", None,
                                                                     "zu lange gewartet"], dtype="str")))
    assert out["events"]["text"].tolist() == ["Rückruf unter [phone]"]
    assert_frame_equal(out["orders"], orders)                                # not a free-text table
    for name, frame in before.items():
        assert_frame_equal(frame, {"feedback": fb, "events": ev, "orders": orders}[name])   # inputs unchanged
    assert privacy.describe_scrubbing(before, out) == (
        "Personal data masked in free text (e-mail addresses, phone numbers, IBANs, customer numbers, names of the "
        "CRM) before writing: 1 of 2 texts in feedback.comment; 1 of 1 texts in events.text.")
    assert privacy.scrub_free_text({}, names=CRM_NAMES) == {}
    assert privacy.describe_scrubbing({}, {}) == "No free-text column to scrub."


def test_name_pattern_edge_cases():
    assert privacy.name_pattern(pd.Series([], dtype="str")) is None
    assert privacy.name_pattern(["Jo Wu", None]) is None                        # only short tokens
    assert privacy.name_pattern(["Anna Lange"], keep={"anna", "lange"}) is None  # nothing may start a match
    out = privacy.scrub_pii(pd.Series(["herr oeztuerk und ÖMER"]), names=["Ömer Öztürk"])   # folded, upper case
    assert out.tolist() == ["herr [name] und [name]"]


def test_name_tokens_are_a_vocabulary_that_gives_the_same_pattern():
    names = ["Karl-Heinz Müller", unicodedata.normalize("NFD", "Ömer Öztürk"), "Anna Lange", "Eva Müller", "O’Brien Jo",
             None, "Karl Heinz"]
    tokens = privacy.name_tokens(names)
    assert tokens == ["Karl-Heinz", "Müller", "Ömer", "Öztürk", "Anna", "Lange", "Eva", "O’Brien", "Jo", "Karl",
                      "Heinz", "O", "Brien"]
    assert privacy.name_pattern(tokens, keep={"lange"}) == privacy.name_pattern(names, keep={"lange"})
    halves = set(privacy.name_tokens(names[:3])) | set(privacy.name_tokens(names[3:]))   # tokens of parts, combined
    assert privacy.name_pattern(sorted(halves)) == privacy.name_pattern(names)


def test_name_pattern_scales_to_many_names():
    digits = pd.Series([f"{i:05d}" for i in range(5000)]).str.translate(str.maketrans("0123456789", "abcdefghij"))
    names = "Vorname" + digits + " Nachname" + digits                   # 10,000 distinct tokens: one trie
    out = privacy.scrub_pii(pd.Series(["vornameabcde war nett, NACHNAMEaejjj auch, vornameafaaa nicht"]), names=names)
    assert out.tolist() == ["[name] war nett, [name] auch, vornameafaaa nicht"]


def test_scrub_pii_normalises_unicode_and_masks_possessives_lower_case_numbers_and_separated_numbers():
    decomposed = unicodedata.normalize("NFD", "Gruß, Hans Lüdemann")          # as a macOS keyboard writes it
    raw = pd.Series([decomposed, "Lüdemanns Tarif und Müller's Rechnung", "Kundennummer k0000001 / K0000002",
                     "Ruf an: +49 (0) 421 / 82 74 11 oder 0421 / 82 74 11.", "IBAN DE89-3704-0044-0532-0130-00."])
    names = pd.Series([unicodedata.normalize("NFD", "Hans Lüdemann"), "Eva Müller"])
    assert privacy.scrub_pii(raw, names=names).tolist() == [
        "Gruß, [name]", "[name] Tarif und [name] Rechnung", "Kundennummer [customer-no] / [customer-no]",
        "Ruf an: [phone] oder [phone].", "IBAN [iban]."]
    # a custom customer-number pattern is matched in any case too
    assert privacy.scrub_pii(pd.Series(["kd-123456"]), customer_number=r"\bKD-\d{6}\b").tolist() == ["[customer-no]"]
    # what must stay: amounts, dates, short number lists, words that merely start like a name
    keep = pd.Series(["Tarif 30 / 40 / 50 Euro, 1.234.567 €", "am 12.03.2024 um 10:30", "Hansestadt Bremen"])
    assert privacy.scrub_pii(keep, names=names).tolist() == keep.tolist()


def test_scrub_free_text_scrubs_the_processed_comment_and_note_columns_the_same_way():
    fb = pd.DataFrame({"comment": pd.Series([unicodedata.normalize("NFD", "Frau Lüdemanns Anruf: k0000001")],
                                            dtype="str")})
    ev = pd.DataFrame({"text": pd.Series(["Rückruf +49 (0) 421 / 82 74 11, IBAN de89-3704-0044-0532-0130-00"],
                                         dtype="str")})
    out = privacy.scrub_free_text({"feedback": fb, "events": ev}, names=["Anna Lüdemann"])
    assert out["feedback"]["comment"].tolist() == ["Frau [name] Anruf: [customer-no]"]
    assert out["events"]["text"].tolist() == ["Rückruf [phone], IBAN [iban]"]
