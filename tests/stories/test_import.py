"""`storyhub import`: stories gathered offline come in with their consent, file by file."""

from __future__ import annotations

import csv
import shutil
import subprocess

import pytest
from sqlalchemy import func, select

from storyhub.accounts.models import Role
from storyhub.extensions import db
from storyhub.stories.models import Recording, Story
from storyhub.stories.state import states_of


@pytest.fixture
def folder(tmp_path):
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    folder = tmp_path / "gathered"
    folder.mkdir()
    for name, text in (("hostel.wav", "I had nowhere to live when I came out."),
                       ("mentor.wav", "My peer mentor came with me to the job centre.")):
        subprocess.run(["espeak-ng", "-w", str(folder / name), text], check=True)
    (folder / "empty.wav").write_bytes(b"")
    shutil.copy(folder / "hostel.wav", folder / "no-consent.wav")
    return folder


def _write_csv(path, rows):
    fields = ["file", "title", "storyteller_role", "story_type", "recorded_on",
              "consent_given_on", "consent_method", "spoken_at_seconds",
              "consent_transcribe_analyse", "consent_quote_in_packs", "tags", "consent_form",
              "storyteller_code", "language"]
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def test_import_reports_each_file(app, runner, make_user, folder, tmp_path):
    make_user(Role.REPORTER, username="rita")
    base = {"storyteller_role": "person_on_probation", "story_type": "snapshot",
            "recorded_on": "2026-10-01", "consent_given_on": "2026-10-01",
            "consent_method": "spoken", "spoken_at_seconds": "0",
            "consent_transcribe_analyse": "yes"}
    consents = tmp_path / "consents.csv"
    _write_csv(consents, [
        {**base, "file": "hostel.wav", "title": "Nowhere to live", "tags": "housing"},
        {**base, "file": "mentor.wav", "title": "Peer mentor", "consent_quote_in_packs": "y"},
        {**base, "file": "empty.wav", "title": "Empty"},
        {**base, "file": "../escape.wav", "title": "Outside"},
        {**base, "file": "hostel.wav", "title": "Again"},
    ])
    result = runner.invoke(args=["import", str(folder), "--consents", str(consents),
                                 "--as", "rita"])
    assert result.exit_code == 1, result.output
    out = result.output
    assert "Importing stories" in out
    assert "OK   hostel.wav" in out and "OK   mentor.wav" in out
    assert "The file is empty" in out
    assert "must be a file inside the import folder" in out
    assert "already been uploaded" in out
    assert "no-consent.wav  Not imported: no consent row" in out
    assert "2 of 6 recordings stored." in out
    with app.app_context():
        assert db.session.scalar(select(func.count(Story.id))) == 2
        assert db.session.scalar(select(func.count(Recording.id))) == 2
        story = db.session.scalar(select(Story).where(Story.title == "Nowhere to live"))
        assert story.tag_list == ["housing"]
        assert story.consent.transcribe_analyse and not story.consent.quote_in_packs


PDF = b"%PDF-1.4\n% a signed consent form\n"


def test_import_keeps_to_its_folder_and_checks_fields_as_the_form_does(app, runner, make_user,
                                                                      folder, tmp_path):
    make_user(Role.REPORTER, username="rita")
    outside = tmp_path / "private.pdf"
    outside.write_bytes(PDF)
    (folder / "form.pdf").write_bytes(PDF)
    (folder / "linked.pdf").symlink_to(outside)
    (folder / "linked.wav").symlink_to(folder / "hostel.wav")
    base = {"storyteller_role": "person_on_probation", "story_type": "snapshot",
            "recorded_on": "2026-10-01", "consent_given_on": "2026-10-01",
            "consent_method": "signed_form", "consent_transcribe_analyse": "yes"}
    consents = tmp_path / "consents.csv"
    rows = [
        ("../private.pdf", "hostel.wav", {}, "must be a file inside the import folder"),
        (str(outside), "hostel.wav", {}, "must be a file inside the import folder"),
        ("linked.pdf", "hostel.wav", {}, "is a link to another file"),
        ("missing.pdf", "hostel.wav", {}, "“missing.pdf” is not in the import folder"),
        ("form.pdf", "linked.wav", {}, "is a link to another file"),
        ("form.pdf", "hostel.wav", {"title": "x" * 201},
         "title: Keep the title to 200 characters or fewer"),
        ("form.pdf", "hostel.wav", {"storyteller_code": "../../etc"},
         "storyteller_code: Use letters, digits and dashes only."),
        ("form.pdf", "hostel.wav", {"storyteller_role": "judge"}, "storyteller_role: Not a "
                                                                  "valid choice"),
        ("form.pdf", "hostel.wav", {"language": "klingon"}, "language: Not a valid choice"),
    ]
    _write_csv(consents, [{**base, "file": audio, "consent_form": form, "title": "A story",
                           **extra} for form, audio, extra, _ in rows])
    result = runner.invoke(args=["import", str(folder), "--consents", str(consents),
                                 "--as", "rita"])
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("FAIL")]
    for (_form, _audio, _extra, message), line in zip(rows, lines, strict=False):
        assert message in line, (message, line)
    assert "0 of" in result.output
    with app.app_context():
        assert db.session.scalar(select(func.count(Story.id))) == 0
    # The valid row goes in, with its form.
    _write_csv(consents, [{**base, "file": "hostel.wav", "consent_form": "form.pdf",
                           "title": "With a form"}])
    result = runner.invoke(args=["import", str(folder), "--consents", str(consents),
                                 "--as", "rita"])
    assert "OK   hostel.wav" in result.output, result.output
    with app.app_context():
        story = db.session.scalar(select(Story))
        assert story is not None and story.consent.form_key


def test_import_needs_a_known_account(runner, folder, tmp_path):
    consents = tmp_path / "consents.csv"
    _write_csv(consents, [])
    result = runner.invoke(args=["import", str(folder), "--consents", str(consents),
                                 "--as", "nobody"])
    assert result.exit_code != 0
    assert "No active account called “nobody”" in result.output


class TestImportAndWait:
    @pytest.fixture
    def config_overrides(self):
        from tests.support.workers import FAST_JOBS

        return dict(FAST_JOBS)

    @pytest.mark.slow
    @pytest.mark.one_database  # waiting on a worker; the import's rows are covered
    def test_wait_shows_transcription_progress(self, app, runner, make_user, folder, tmp_path):
        from tests.support.workers import Worker

        make_user(Role.REPORTER, username="rita")
        consents = tmp_path / "consents.csv"
        base = {"storyteller_role": "staff", "story_type": "snapshot",
                "recorded_on": "2026-10-01", "consent_given_on": "2026-10-01",
                "consent_method": "spoken", "spoken_at_seconds": "0",
                "consent_transcribe_analyse": "yes"}
        _write_csv(consents, [{**base, "file": "hostel.wav", "title": "Hostel"},
                              {**base, "file": "mentor.wav", "title": "Mentor"}])
        worker = Worker(app, "import", tmp_path)
        try:
            result = runner.invoke(args=["import", str(folder), "--consents", str(consents),
                                         "--as", "rita", "--wait"])
        finally:
            worker.stop()
        assert "Transcribing" in result.output, result.output
        assert "2 transcribed, 0 failed." in result.output
        with app.app_context():
            states = states_of(list(db.session.scalars(select(Story))))
        assert [s.status.value for s in states.values()] == ["transcribed", "transcribed"]
