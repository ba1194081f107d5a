"""Exports for evaluators, on a real theme run of the twelve corpus stories: the REFI-QDA
project validated against the published Project schema (QDA-XML 1.0, 18 March 2019, in
tests/data/refi-qda) by an XML Schema validator, with the right codes and segments; the
redacted words, the stories whose consent covers analysis, the audit record, the CSV and the
command. Broken projects show the validator refuses what the schema does not allow.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from xml.etree import ElementTree as ET

import pytest
from lxml import etree
from sqlalchemy import select

from storyhub.audit import AuditEvent
from storyhub.evaluation import exports
from storyhub.evaluation.corpus import Corpus, Source
from storyhub.evaluation.corpus import Segment as CorpusSegment
from storyhub.extensions import db
from storyhub.policy import Form
from storyhub.stories.models import Story
from storyhub.themes.models import Theme, ThemePassage, ThemeRun
from storyhub.transcripts.models import Segment, Transcript, Word
from storyhub.transcripts.text import text_between
from tests.support.factories import PASSWORD

NS = "{urn:QDA-XML:project:1.0}"
# The published REFI-QDA Project schema (QDA-XML 1.0, 18 March 2019), as QualCoder ships it.
SCHEMA_FILE = Path(__file__).parents[1] / "data" / "refi-qda" / "Project-mrt2019.xsd"
Q = {"q": "urn:QDA-XML:project:1.0"}


@pytest.fixture(scope="module")
def project_schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(SCHEMA_FILE))


def schema_errors(schema: etree.XMLSchema, xml: bytes) -> list[str]:
    """What in project.qde the Project schema does not allow, as the validator words it."""
    document = etree.fromstring(xml, etree.XMLParser(resolve_entities=False, no_network=True))
    if schema.validate(document):
        return []
    return [f"line {e.line}: {e.message}" for e in schema.error_log]


def _small_project() -> bytes:
    """project.qde of a one-theme, one-story corpus, as the exporter writes it."""
    text = "Speaker 1: I needed a flat before I could look for work.\n"
    start = text.index("I needed")
    corpus = Corpus(run=SimpleNamespace(number=3),
                    themes=[SimpleNamespace(id=1, label="Housing first", keywords=["flat"],
                                            description="Somewhere to live comes first.")],
                    sources={7: Source(7, "S007", "Person on probation", text, {})},
                    segments=[CorpusSegment(7, 1, start, text.index(" before"))], left_out=0)
    xml, _files = exports.project_xml(corpus, "Lead Facilitator",
                                      datetime(2025, 1, 2, tzinfo=UTC))
    return xml


def _without(element: etree._Element, attribute: str) -> None:
    del element.attrib[attribute]


# Ways a project can break the schema, and a word the validator's message must name.
BREAKS = {
    "a code without isCodable": (lambda p: _without(p.find(".//q:Code", Q), "isCodable"),
                                 "isCodable"),
    "a position that is not a whole number": (
        lambda p: p.find(".//q:PlainTextSelection", Q).set("startPosition", "11.5"),
        "startPosition"),
    "a GUID that is not one": (lambda p: p.find(".//q:Code", Q).set("guid", "theme-1"), "guid"),
    "the description before the users": (
        lambda p: p.insert(0, p.find("q:Description", Q)), "Users"),
    "a coding with no code": (
        lambda p: p.find(".//q:Coding", Q).remove(p.find(".//q:CodeRef", Q)), "CodeRef"),
    "a variable of a type the standard lacks": (
        lambda p: p.find(".//q:Variable", Q).set("typeOfVariable", "Category"),
        "typeOfVariable"),
    "a colour that is not RGB": (lambda p: p.find(".//q:Code", Q).set("color", "orange"),
                                 "color"),
}


@pytest.mark.parametrize("broken", BREAKS)
def test_the_schema_refuses_a_broken_project(project_schema, broken):
    xml = _small_project()
    assert schema_errors(project_schema, xml) == []
    project = etree.fromstring(xml)
    damage, named = BREAKS[broken]
    damage(project)
    errors = schema_errors(project_schema, etree.tostring(project))
    assert errors and named in " ".join(errors), errors


@pytest.fixture
def prepared(themed_instance):
    return themed_instance


@pytest.fixture
def data(themed_instance) -> dict:
    return themed_instance.data


def _login_facilitator(client):
    response = client.post("/login", data={"username": "lead-facilitator",
                                           "password": PASSWORD})
    assert response.status_code == 302


def _expected(app, run_id: int) -> dict[int, list[tuple[int, str, float, float]]]:
    """The shown themes' passages (story, speaker, start, end) of stories whose consent
    covers analysis, by theme."""
    with app.app_context():
        rows = db.session.scalars(
            select(ThemePassage).join(Theme, ThemePassage.theme_id == Theme.id)
            .where(ThemePassage.run_id == run_id, Theme.hidden.is_(False))).all()
        found: dict[int, list[tuple[int, str, float, float]]] = {}
        for row in rows:
            consent = db.session.get(Story, row.story_id).consent
            if consent.transcribe_analyse and consent.withdrawn_at is None:
                found.setdefault(row.theme_id, []).append(
                    (row.story_id, row.passage.speaker, row.passage.start, row.passage.end))
        return found


def _open(payload: bytes) -> tuple[bytes, ET.Element, dict[str, str]]:
    """project.qde as written and as parsed, and the text of each file in sources/."""
    with zipfile.ZipFile(io.BytesIO(payload)) as archive:
        assert archive.testzip() is None
        xml = archive.read("project.qde")
        texts = {name: archive.read(name).decode("utf-8") for name in archive.namelist()
                 if name.startswith("sources/")}
    return xml, ET.fromstring(xml), texts  # noqa: S314 - our own export


def _without_speakers(text: str) -> str:
    return " ".join(re.sub(r"(^|\n)Speaker \d+:", " ", text).split())


def test_a_theme_run_exports_as_a_refi_qda_project_evaluators_can_open(app, client, data,
                                                                      project_schema):
    run_id = data["run"]
    with app.app_context():
        # A word the reporter redacted since the run (one said once in the story), and a
        # story no longer for analysis.
        transcript = db.session.scalar(select(Transcript).where(
            Transcript.story_id == data["ids"]["housing-1"]))
        words = db.session.scalars(select(Word).join(Segment).where(
            Segment.transcript_id == transcript.id)).all()
        said = [w.text.strip(".,?!").lower() for w in words]
        word = next(w for w, text in zip(words, said, strict=True)
                    if len(text) >= 5 and said.count(text) == 1)
        redacted = word.text.strip(".,?!")
        word.redaction = "[NAME]"
        left = db.session.get(Story, data["ids"]["work-1"])
        left.consent.transcribe_analyse = False
        db.session.commit()
    expected = _expected(app, run_id)
    assert expected and len(expected) >= 2

    _login_facilitator(client)
    assert client.get("/evaluation/").status_code == 200
    response = client.get(f"/evaluation/runs/{run_id}/themes.qdpx")
    assert response.status_code == 200
    assert "attachment" in response.headers["Content-Disposition"]
    xml, root, texts = _open(response.get_data())

    assert schema_errors(project_schema, xml) == []
    guids = [e.get("guid") for e in root.iter() if e.get("guid")]
    assert len(guids) == len(set(guids))  # every GUID names one thing
    targets = {e.get("targetGUID") for e in root.iter() if e.get("targetGUID")}
    assert targets <= set(guids) | {root.get("creatingUserGUID")}

    codes = root.findall(f"{NS}CodeBook/{NS}Codes/{NS}Code")
    with app.app_context():
        labels = {t.id: t.label for t in db.session.get(ThemeRun, run_id).themes}
    assert sorted(c.get("name") for c in codes) == sorted(labels[t] for t in expected)
    code_of = {c.get("guid"): c.get("name") for c in codes}

    sources = root.findall(f"{NS}Sources/{NS}TextSource")
    names = {s.get("name") for s in sources}
    assert f"S{data['ids']['work-1']:03d}" not in names  # no consent to analysis: not in it
    assert f"S{data['ids']['housing-1']:03d}" in names
    selections = 0
    with app.app_context():
        for source in sources:
            text = texts["sources/" + source.get("plainTextPath").removeprefix("internal://")]
            story_id = int(source.get("name").removeprefix("S"))
            passages = [(labels[theme_id], speaker, start, end)
                        for theme_id, rows in expected.items()
                        for (story, speaker, start, end) in rows if story == story_id]
            transcript = db.session.scalar(select(Transcript).where(
                Transcript.story_id == story_id))
            for selection in source.findall(f"{NS}PlainTextSelection"):
                start, end = int(selection.get("startPosition")), int(
                    selection.get("endPosition"))
                assert 0 <= start < end <= len(text)
                theme = code_of[selection.find(f"{NS}Coding/{NS}CodeRef").get("targetGUID")]
                said = _without_speakers(text[start:end])
                matches = [p for p in passages if p[0] == theme and said == " ".join(
                    text_between(transcript, p[1], p[2], p[3], Form.REDACTED).split())]
                assert matches, f"{said!r} is not a passage of {theme}"
                selections += 1
            if story_id == data["ids"]["housing-1"]:
                assert "[NAME]" in text
                assert not re.search(rf"\b{re.escape(redacted.lower())}\b", text.lower())
    assert selections == sum(len(rows) for rows in expected.values())

    cases = root.findall(f"{NS}Cases/{NS}Case")
    assert {c.get("name") for c in cases} == names
    roles = {c.find(f"{NS}VariableValue/{NS}TextValue").text for c in cases}
    assert roles <= {"Person on probation", "Probation staff member",
                     "Peer mentor or volunteer", "Family member", "Partner agency"}

    with app.app_context():
        audited = db.session.scalars(select(AuditEvent).where(
            AuditEvent.action == "themes.export")).all()
        assert [(e.target_id, e.detail.split(":")[0]) for e in audited] == [(run_id, "qdpx")]


def test_the_csv_and_the_command_give_the_same_themes_by_story_and_role(app, client, runner,
                                                                       data, tmp_path,
                                                                       project_schema):
    run_id = data["run"]
    expected = _expected(app, run_id)
    _login_facilitator(client)
    response = client.get(f"/evaluation/runs/{run_id}/themes.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert sum(int(r["passages"]) for r in rows) == sum(len(v) for v in expected.values())
    assert {r["storyteller_role"] for r in rows} >= {"Person on probation"}

    with app.app_context():
        number = db.session.get(ThemeRun, run_id).number
    out = tmp_path / "run.qdpx"
    done = runner.invoke(args=["export-themes", str(number), str(out), "--as",
                               "lead-facilitator"])
    assert done.exit_code == 0, done.output
    xml, root, _texts = _open(out.read_bytes())
    assert schema_errors(project_schema, xml) == []
    assert len(root.findall(f"{NS}Sources/{NS}TextSource/{NS}PlainTextSelection")) == \
        sum(len(v) for v in expected.values())
    refused = runner.invoke(args=["export-themes", str(number), str(tmp_path / "x.qdpx"),
                                  "--as", "corpus-reporter"])
    assert refused.exit_code != 0 and "facilitators and admins" in refused.output
    assert uuid.UUID(root.get("creatingUserGUID"))
