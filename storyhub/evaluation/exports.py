"""Exports for evaluators: a REFI-QDA project (.qdpx) and a CSV of themes × stories × roles.

REFI-QDA (www.qdasoftware.org) is the open exchange format that NVivo, MAXQDA, ATLAS.ti and
QualCoder read. A .qdpx file is a ZIP holding `project.qde` (XML in the namespace
urn:QDA-XML:project:1.0) and a `sources/` folder. Here:

- each story is a TextSource: its redacted transcript as UTF-8 plain text in `sources/`;
- each shown theme of the run is a Code (name as the facilitators gave it, its description);
- each of a theme's passages is a PlainTextSelection of its story, coded with the theme;
- each story is also a Case with the variable "Storyteller role".

Positions count characters (Unicode code points) from 0, the end not included, as QDA tools
slice text.
"""

from __future__ import annotations

import csv
import io
import uuid
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from xml.etree import ElementTree as ET

from .corpus import Corpus

NAMESPACE = "urn:QDA-XML:project:1.0"
ROLE_VARIABLE = "Storyteller role"
# Theme colours, one per code in turn (colour-blind safe: Okabe and Ito).
COLOURS = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7",
           "#000000")
# A spreadsheet runs a cell that starts with one of these as a formula (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _guid() -> str:
    return str(uuid.uuid4())


def _element(parent: ET.Element, tag: str, **attributes: str) -> ET.Element:
    return ET.SubElement(parent, f"{{{NAMESPACE}}}{tag}", attributes)


def project_xml(corpus: Corpus, exporter: str, when: datetime) -> tuple[bytes, dict[str, str]]:
    """Return project.qde and the plain text of each source by its file name."""
    ET.register_namespace("", NAMESPACE)
    stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    user = _guid()
    run = corpus.run
    project = ET.Element(f"{{{NAMESPACE}}}Project", {
        "name": f"StoryHub theme run {run.number}", "origin": "StoryHub",
        "creatingUserGUID": user, "creationDateTime": stamp})
    users = _element(project, "Users")
    _element(users, "User", guid=user, name=exporter)

    codes = _element(_element(project, "CodeBook"), "Codes")
    code_guids = {}
    for index, theme in enumerate(corpus.themes):
        code_guids[theme.id] = _guid()
        code = _element(codes, "Code", guid=code_guids[theme.id], name=theme.label,
                        isCodable="true", color=COLOURS[index % len(COLOURS)])
        words = ", ".join(theme.keywords or [])
        description = " ".join(part for part in (
            theme.description, f"Keywords: {words}." if words else "") if part)
        if description:
            _element(code, "Description").text = description

    variables = _element(project, "Variables")
    role = _guid()
    _element(variables, "Variable", guid=role, name=ROLE_VARIABLE, typeOfVariable="Text")

    source_guids = {story_id: _guid() for story_id in corpus.sources}
    cases = _element(project, "Cases")
    for story_id, source in corpus.sources.items():
        case = _element(cases, "Case", guid=_guid(), name=source.code)
        value = _element(case, "VariableValue")
        _element(value, "VariableRef", targetGUID=role)
        _element(value, "TextValue").text = source.role
        _element(case, "SourceRef", targetGUID=source_guids[story_id])

    sources = _element(project, "Sources")
    files = {}
    for story_id, source in corpus.sources.items():
        name = f"{source_guids[story_id]}.txt"
        files[name] = source.text
        element = _element(sources, "TextSource", guid=source_guids[story_id],
                           name=source.code, plainTextPath=f"internal://{name}",
                           creatingUser=user, creationDateTime=stamp)
        _element(element, "Description").text = f"Told by: {source.role}"
        for number, segment in enumerate(
                (s for s in corpus.segments if s.story_id == story_id), start=1):
            selection = _element(element, "PlainTextSelection", guid=_guid(),
                                 name=f"{source.code} passage {number}",
                                 startPosition=str(segment.start), endPosition=str(segment.end),
                                 creatingUser=user, creationDateTime=stamp)
            coding = _element(selection, "Coding", guid=_guid(), creatingUser=user,
                              creationDateTime=stamp)
            _element(coding, "CodeRef", targetGUID=code_guids[segment.theme_id])
    _element(project, "Description").text = (
        f"Themes of StoryHub theme run {run.number} and the redacted transcripts of its "
        f"{len(corpus.sources)} stories whose storytellers' consent covers analysis, exported "
        f"{stamp}. Names and other personal details are replaced by labels such as [NAME].")
    ET.indent(project)
    xml = ET.tostring(project, encoding="utf-8", xml_declaration=True)
    return xml, files


def write_qdpx(corpus: Corpus, out: Path | io.BufferedIOBase, exporter: str,
               when: datetime | None = None) -> None:
    """Write the corpus as a REFI-QDA project (.qdpx) to `out`."""
    xml, files = project_xml(corpus, exporter, when or datetime.now(UTC))
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("project.qde", xml)
        for name, text in files.items():
            archive.writestr(f"sources/{name}", text.encode("utf-8"))


def _cell(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_rows(corpus: Corpus) -> Iterator[list[str | int]]:
    """Header, then one row per theme and story: the story's role and its passages there."""
    yield ["theme_number", "theme", "story", "storyteller_role", "passages"]
    for number, theme in enumerate(corpus.themes, start=1):
        for story_id, source in corpus.sources.items():
            passages = corpus.passages(theme.id, story_id)
            if passages:
                yield [number, _cell(theme.label), source.code, source.role, passages]


def csv_text(corpus: Corpus) -> str:
    out = io.StringIO()
    csv.writer(out).writerows(csv_rows(corpus))
    return out.getvalue()
