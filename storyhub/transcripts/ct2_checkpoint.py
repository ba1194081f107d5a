"""Rebuild an openai-whisper checkpoint from a CTranslate2 Whisper model.

faster-whisper ships its weights as a CTranslate2 model folder (``model.bin``,
``config.json``, tokenizer files). openai-whisper wants a ``.pt`` file holding
``{"dims": {...ModelDimensions...}, "model_state_dict": {...}}``. This module
reads ``model.bin`` directly (no CTranslate2 runtime needed) and renames, splits
and dequantizes its variables so ``whisper.load_model(path)`` runs offline on the
same weights.

``model.bin`` layout (ctranslate2 ``specs/model_spec.py`` ``ModelSpec._serialize``
writes it, the C++ ``models/model.cc`` reads it; all integers little-endian):

* ``uint32`` binary version (6 for ctranslate2 4.x; the record layout below is
  unchanged since version 4, which is what this reader accepts),
* string spec name (``"WhisperSpec"``), ``uint32`` spec revision (3),
* ``uint32`` variable count, then per variable: string name, ``uint8`` rank,
  ``rank`` x ``uint32`` dims, ``uint8`` dtype id (0 float32, 1 int8, 2 int16,
  3 int32, 4 float16, 5 bfloat16), ``uint32`` byte count, raw C-order bytes,
* ``uint32`` alias count, then per alias: string alias name, string target name.

A string is a ``uint16`` length that counts a trailing NUL, then the UTF-8 bytes
and the NUL. Scalars (rank 0) hold settings such as ``num_heads`` or
``activation``. Quantized weights (int8, int16) sit next to a ``<name>_scale``
variable: CTranslate2 stored ``round(w * scale)`` with one float32 scale per
output row for int8 (conv weights flattened to 2-D first) or a single scale for
int16, so ``w = q / scale``.

Mapping onto openai-whisper (``L`` is a layer index)::

    encoder/conv{1,2}/{weight,bias}              encoder.conv{1,2}.{weight,bias}
    encoder/position_encodings/encodings         encoder.positional_embedding
    encoder/layer_L/self_attention/linear_0      attn.query/key/value (fused q|k|v rows)
    encoder/layer_L/self_attention/linear_1      attn.out
    encoder/layer_L/self_attention/layer_norm    attn_ln (gamma -> weight, beta -> bias)
    encoder/layer_L/ffn/linear_{0,1}             mlp.0 / mlp.2
    encoder/layer_L/ffn/layer_norm               mlp_ln
    encoder/layer_norm                           encoder.ln_post
    decoder/embeddings/weight                    decoder.token_embedding.weight
    decoder/position_encodings/encodings         decoder.positional_embedding
    decoder/layer_L/self_attention/...           attn, attn_ln (as in the encoder)
    decoder/layer_L/attention/linear_0           cross_attn.query
    decoder/layer_L/attention/linear_1           cross_attn.key/value (fused k|v rows)
    decoder/layer_L/attention/linear_2           cross_attn.out
    decoder/layer_L/attention/layer_norm         cross_attn_ln
    decoder/layer_L/ffn/...                      mlp.0 / mlp.2, mlp_ln
    decoder/layer_norm                           decoder.ln
    decoder/projection/weight                    (alias of decoder/embeddings/weight: tied)

openai-whisper's key projections have no bias; CTranslate2 fuses a zero bias for
them. A key bias would not matter anyway: it adds ``q . b`` to every score of a
query, which softmax cancels, so it is dropped (and logged if it is not zero).

Alignment heads: ``whisper.load_model`` only sets them for named models, so a
checkpoint loaded from a path would align words with every head of the last half
of the decoder. ``config.json`` carries the model's ``alignment_heads`` (for
tiny.en the same heads as openai-whisper's ``_ALIGNMENT_HEADS["tiny.en"]``); they
are stored in the checkpoint under ``"alignment_heads"`` in openai-whisper's own
format (base85 of a gzipped boolean layer x head mask), which ``load_model``
ignores. Pass ``read_alignment_heads(path)`` to ``model.set_alignment_heads`` to
use them.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import logging
import os
import struct
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

logger = logging.getLogger(__name__)

SUPPORTED_BINARY_VERSIONS = range(4, 7)
SPEC_NAME = "WhisperSpec"
# Every released Whisper size uses 64-dimensional attention heads.
HEAD_DIM = 64
# ctranslate2.specs.common_spec.Activation.GELU
_GELU = 3
_BFLOAT16 = 5
_DTYPES: dict[int, np.dtype] = {
    0: np.dtype("<f4"),
    1: np.dtype("i1"),
    2: np.dtype("<i2"),
    3: np.dtype("<i4"),
    4: np.dtype("<f2"),
    _BFLOAT16: np.dtype("<u2"),
}
# Scalar settings openai-whisper's architecture fixes; a model must match them.
_REQUIRED_SETTINGS = {"decoder/activation": _GELU, "decoder/pre_norm": 1, "decoder/alibi": 0,
                      "decoder/start_from_zero_embedding": 0}
# Scalar settings with no effect here: ALiBi options while ALiBi is off, and the
# TransformerDecoderSpec alignment defaults (faster-whisper reads config.json).
_IGNORED_SETTINGS = ("decoder/alibi_use_positive_positions", "decoder/scale_alibi",
                     "decoder/alignment_heads", "decoder/alignment_layer")


@dataclass(frozen=True)
class Ct2Model:
    """The header and variables of one CTranslate2 ``model.bin``."""

    binary_version: int
    spec: str
    revision: int
    variables: dict[str, np.ndarray]
    aliases: dict[str, str]


def _read_exact(fh: BinaryIO, size: int) -> bytes:
    """Read exactly `size` bytes or fail on a truncated file."""
    data = fh.read(size)
    if len(data) != size:
        raise ValueError(f"model.bin is truncated: wanted {size} bytes, got {len(data)}")
    return data


def _read_uint(fh: BinaryIO, fmt: str) -> int:
    """Read one little-endian unsigned integer of struct format `fmt`."""
    (value,) = struct.unpack("<" + fmt, _read_exact(fh, struct.calcsize(fmt)))
    return int(value)


def _read_string(fh: BinaryIO) -> str:
    """Read a uint16-length, NUL-terminated UTF-8 string."""
    raw = _read_exact(fh, _read_uint(fh, "H"))
    if not raw or raw[-1] != 0:
        raise ValueError("model.bin string is not NUL-terminated")
    return raw[:-1].decode("utf-8")


def _read_array(fh: BinaryIO, shape: tuple[int, ...], type_id: int, num_bytes: int,
                name: str) -> np.ndarray:
    """Read one variable's raw bytes as a writable array (bfloat16 becomes float32)."""
    dtype = _DTYPES.get(type_id)
    if dtype is None:
        raise ValueError(f"{name}: unknown CTranslate2 dtype id {type_id}")
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if num_bytes != expected:
        raise ValueError(f"{name}: {num_bytes} bytes for shape {shape} of {dtype}")
    array = np.frombuffer(bytearray(_read_exact(fh, num_bytes)), dtype=dtype).reshape(shape)
    if type_id == _BFLOAT16:
        array = (array.astype(np.uint32) << 16).view(np.float32)
    return array


def read_ct2_model(model_bin: Path) -> Ct2Model:
    """Parse a CTranslate2 ``model.bin``: header, variables and aliases."""
    with Path(model_bin).open("rb") as fh:
        version = _read_uint(fh, "I")
        if version not in SUPPORTED_BINARY_VERSIONS:
            raise ValueError(f"{model_bin}: unsupported CTranslate2 binary version {version}")
        spec = _read_string(fh)
        revision = _read_uint(fh, "I")
        variables: dict[str, np.ndarray] = {}
        for _ in range(_read_uint(fh, "I")):
            name = _read_string(fh)
            rank = _read_uint(fh, "B")
            shape = tuple(_read_uint(fh, "I") for _ in range(rank))
            type_id = _read_uint(fh, "B")
            num_bytes = _read_uint(fh, "I")
            variables[name] = _read_array(fh, shape, type_id, num_bytes, name)
        aliases = {}
        for _ in range(_read_uint(fh, "I")):
            alias = _read_string(fh)
            aliases[alias] = _read_string(fh)
        if fh.read(1):
            raise ValueError(f"{model_bin}: unexpected bytes after the aliases")
    stored = len(variables)
    for alias, target in aliases.items():
        if target not in variables:
            raise ValueError(f"{model_bin}: alias {alias} points to missing {target}")
        variables[alias] = variables[target]
        # A quantized target's scale (and zero point) belongs to its aliases too.
        for suffix in ("_scale", "_zero"):
            if target + suffix in variables and alias + suffix not in variables:
                variables[alias + suffix] = variables[target + suffix]
    logger.debug("Read %s: binary v%d, %s rev %d, %d variables, %d aliases", model_bin,
                 version, spec, revision, stored, len(aliases))
    return Ct2Model(version, spec, revision, variables, aliases)


def read_ct2_variables(model_bin: Path) -> dict[str, np.ndarray]:
    """Return every variable of a CTranslate2 ``model.bin`` by name, aliases resolved.

    Arrays keep their stored dtype (quantized weights stay int8/int16 next to their
    ``_scale``), except bfloat16, which numpy lacks and is widened to float32. An
    alias is the very array of its target, and also gets the target's ``_scale``.
    """
    return read_ct2_model(model_bin).variables


class _Weights:
    """Hand out CTranslate2 variables as float arrays and track which were used."""

    def __init__(self, variables: dict[str, np.ndarray]) -> None:
        """Wrap the variables of one model."""
        self._variables = variables
        self.used: set[str] = set()

    def has(self, name: str) -> bool:
        """Tell whether variable `name` exists."""
        return name in self._variables

    def setting(self, name: str) -> float | None:
        """Return scalar variable `name` as a number, or None when it is absent."""
        value = self._variables.get(name)
        if value is None:
            return None
        self.used.add(name)
        if value.ndim != 0:
            raise ValueError(f"{name} should be a scalar, has shape {value.shape}")
        return float(value)

    def get(self, name: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
        """Return weight `name` as floats (dequantized if needed), checking its shape."""
        if name not in self._variables:
            raise ValueError(f"model.bin has no variable {name}")
        value = self._variables[name]
        self.used.add(name)
        scale_name = name + "_scale"
        if value.dtype.kind == "f":
            if scale_name in self._variables:
                raise ValueError(f"{name} is {value.dtype} but has a {scale_name}")
        else:
            value = self._dequantize(name, value)
        if shape is not None and value.shape != shape:
            raise ValueError(f"{name} has shape {value.shape}, expected {shape}")
        return value

    def _dequantize(self, name: str, value: np.ndarray) -> np.ndarray:
        """Undo CTranslate2's int8 (per row) or int16 (global) weight quantization."""
        scale_name = name + "_scale"
        if scale_name not in self._variables:
            raise ValueError(f"{name} is {value.dtype} without {scale_name}")
        if name + "_zero" in self._variables:
            raise ValueError(f"{name} uses pre-quantized (AWQ) weights, not supported")
        self.used.add(scale_name)
        scale = self._variables[scale_name].astype(np.float32)
        if value.dtype == np.int8 and scale.shape == value.shape[:1]:
            scale = scale.reshape((-1,) + (1,) * (value.ndim - 1))
        elif not (value.dtype == np.int16 and scale.ndim == 0):
            raise ValueError(f"{name}: cannot dequantize {value.dtype} with a scale of "
                             f"shape {scale.shape}")
        return (value.astype(np.float32) / scale).astype(np.float32)

    def unused(self) -> list[str]:
        """List the variables no mapping consumed."""
        return sorted(set(self._variables) - self.used)


def _split_rows(weight: np.ndarray, parts: int, name: str) -> list[np.ndarray]:
    """Split a fused projection into `parts` equal row blocks (copies, not views)."""
    if weight.shape[0] % parts:
        raise ValueError(f"{name}: {weight.shape[0]} rows do not split into {parts}")
    return [block.copy() for block in np.split(weight, parts)]


def _drop_key_bias(bias: np.ndarray, name: str) -> None:
    """Check the key bias openai-whisper has no room for (softmax ignores it anyway)."""
    peak = float(np.abs(bias.astype(np.float32)).max(initial=0.0))
    if peak:
        logger.info("%s: dropping a non-zero key bias (max %.3g); attention ignores it",
                    name, peak)


def _norm(w: _Weights, src: str, dst: str, state: int, out: dict[str, np.ndarray]) -> None:
    """Map a CTranslate2 layer norm (gamma, beta) onto weight, bias."""
    out[f"{dst}.weight"] = w.get(f"{src}/gamma", (state,))
    out[f"{dst}.bias"] = w.get(f"{src}/beta", (state,))


def _linear(w: _Weights, src: str, dst: str, shape: tuple[int, int],
            out: dict[str, np.ndarray]) -> None:
    """Map a CTranslate2 linear layer (weight, bias) onto the same names."""
    out[f"{dst}.weight"] = w.get(f"{src}/weight", shape)
    out[f"{dst}.bias"] = w.get(f"{src}/bias", shape[:1])


def _attention(w: _Weights, src: str, dst: str, state: int, cross: bool,
               out: dict[str, np.ndarray]) -> None:
    """Map fused CTranslate2 attention projections onto query/key/value/out."""
    if cross:
        q_w, q_b = w.get(f"{src}/linear_0/weight", (state, state)), w.get(
            f"{src}/linear_0/bias", (state,))
        k_w, v_w = _split_rows(w.get(f"{src}/linear_1/weight", (2 * state, state)), 2, src)
        k_b, v_b = _split_rows(w.get(f"{src}/linear_1/bias", (2 * state,)), 2, src)
        out_src = f"{src}/linear_2"
    else:
        q_w, k_w, v_w = _split_rows(w.get(f"{src}/linear_0/weight", (3 * state, state)), 3,
                                    src)
        q_b, k_b, v_b = _split_rows(w.get(f"{src}/linear_0/bias", (3 * state,)), 3, src)
        out_src = f"{src}/linear_1"
    _drop_key_bias(k_b, src)
    out[f"{dst}.query.weight"], out[f"{dst}.query.bias"] = q_w, q_b
    out[f"{dst}.key.weight"] = k_w
    out[f"{dst}.value.weight"], out[f"{dst}.value.bias"] = v_w, v_b
    _linear(w, out_src, f"{dst}.out", (state, state), out)
    _norm(w, f"{src}/layer_norm", f"{dst}_ln", state, out)


def _mlp(w: _Weights, src: str, dst: str, state: int, out: dict[str, np.ndarray]) -> None:
    """Map a CTranslate2 feed-forward block onto mlp.0, mlp.2 and mlp_ln."""
    hidden = w.get(f"{src}/linear_0/weight").shape[0]
    _linear(w, f"{src}/linear_0", f"{dst}.mlp.0", (hidden, state), out)
    _linear(w, f"{src}/linear_1", f"{dst}.mlp.2", (state, hidden), out)
    _norm(w, f"{src}/layer_norm", f"{dst}.mlp_ln", state, out)


def _count_layers(w: _Weights, stack: str) -> int:
    """Count the consecutive ``<stack>/layer_N`` blocks."""
    count = 0
    while w.has(f"{stack}/layer_{count}/ffn/linear_0/weight"):
        count += 1
    if not count:
        raise ValueError(f"model.bin has no {stack} layers")
    return count


def _heads(w: _Weights, stack: str, state: int) -> int:
    """Return a stack's attention head count, stored or inferred from its width."""
    stored = w.setting(f"{stack}/num_heads")
    heads = int(stored) if stored is not None else state // HEAD_DIM
    if stored is None:
        logger.warning("%s/num_heads missing; assuming %d heads of %d dims", stack, heads,
                       HEAD_DIM)
    if heads <= 0 or state % heads:
        raise ValueError(f"{stack}: width {state} does not split into {heads} heads")
    return heads


def _check_settings(w: _Weights) -> None:
    """Refuse models whose settings openai-whisper's architecture cannot express."""
    for name, want in _REQUIRED_SETTINGS.items():
        value = w.setting(name)
        if value is not None and value != want:
            raise ValueError(f"{name} is {value}, openai-whisper needs {want}")
    scale = w.setting("decoder/scale_embeddings")
    # Stored as a bool (False: no scaling) or as the float factor itself.
    if scale is not None and scale not in (0.0, 1.0):
        raise ValueError(f"decoder/scale_embeddings is {scale}, openai-whisper needs none")
    for name in _IGNORED_SETTINGS:
        w.setting(name)


def convert_variables(variables: dict[str, np.ndarray]) -> tuple[dict[str, int],
                                                                 dict[str, np.ndarray]]:
    """Turn CTranslate2 Whisper variables into openai-whisper dims and state_dict arrays."""
    w = _Weights(variables)
    _check_settings(w)
    conv1 = w.get("encoder/conv1/weight")
    audio_state, n_mels, kernel = conv1.shape
    audio_ctx = w.get("encoder/position_encodings/encodings").shape[0]
    tokens = w.get("decoder/embeddings/weight")
    n_vocab, text_state = tokens.shape
    text_ctx = w.get("decoder/position_encodings/encodings").shape[0]
    dims = {
        "n_mels": int(n_mels),
        "n_audio_ctx": int(audio_ctx),
        "n_audio_state": int(audio_state),
        "n_audio_head": _heads(w, "encoder", audio_state),
        "n_audio_layer": _count_layers(w, "encoder"),
        "n_vocab": int(n_vocab),
        "n_text_ctx": int(text_ctx),
        "n_text_state": int(text_state),
        "n_text_head": _heads(w, "decoder", text_state),
        "n_text_layer": _count_layers(w, "decoder"),
    }
    if kernel != 3:
        raise ValueError(f"encoder/conv1 has kernel {kernel}, openai-whisper uses 3")

    out: dict[str, np.ndarray] = {}
    convs = {"conv1": (audio_state, n_mels, 3), "conv2": (audio_state, audio_state, 3)}
    for conv, shape in convs.items():
        out[f"encoder.{conv}.weight"] = w.get(f"encoder/{conv}/weight", shape)
        out[f"encoder.{conv}.bias"] = w.get(f"encoder/{conv}/bias", (audio_state,))
    out["encoder.positional_embedding"] = w.get("encoder/position_encodings/encodings",
                                                (audio_ctx, audio_state))
    for layer in range(dims["n_audio_layer"]):
        src, dst = f"encoder/layer_{layer}", f"encoder.blocks.{layer}"
        _attention(w, f"{src}/self_attention", f"{dst}.attn", audio_state, False, out)
        _mlp(w, f"{src}/ffn", dst, audio_state, out)
    _norm(w, "encoder/layer_norm", "encoder.ln_post", audio_state, out)

    out["decoder.token_embedding.weight"] = tokens
    out["decoder.positional_embedding"] = w.get("decoder/position_encodings/encodings",
                                                (text_ctx, text_state))
    for layer in range(dims["n_text_layer"]):
        src, dst = f"decoder/layer_{layer}", f"decoder.blocks.{layer}"
        _attention(w, f"{src}/self_attention", f"{dst}.attn", text_state, False, out)
        _attention(w, f"{src}/attention", f"{dst}.cross_attn", text_state, True, out)
        _mlp(w, f"{src}/ffn", dst, text_state, out)
    _norm(w, "decoder/layer_norm", "decoder.ln", text_state, out)

    if w.has("decoder/projection/weight"):
        projection = w.get("decoder/projection/weight", tokens.shape)
        if projection is not tokens and not np.array_equal(projection, tokens):
            raise ValueError("decoder/projection/weight is not tied to the token embedding; "
                             "openai-whisper cannot represent that")
    if w.has("decoder/projection/bias"):
        bias = w.get("decoder/projection/bias", (n_vocab,))
        if np.any(bias):
            raise ValueError("decoder/projection/bias is not zero; openai-whisper has none")
    unused = w.unused()
    if unused:
        raise ValueError(f"model.bin variables with no openai-whisper home: {unused}")
    return dims, out


def alignment_heads_dump(heads: Iterable[Iterable[int]], n_text_layer: int,
                         n_text_head: int) -> str:
    """Encode (layer, head) pairs the way openai-whisper's ``_ALIGNMENT_HEADS`` does."""
    mask = np.zeros((n_text_layer, n_text_head), dtype=bool)
    for pair in heads:
        layer, head = (int(v) for v in pair)
        if not (0 <= layer < n_text_layer and 0 <= head < n_text_head):
            raise ValueError(f"alignment head {(layer, head)} is outside "
                             f"{n_text_layer} layers x {n_text_head} heads")
        mask[layer, head] = True
    return base64.b85encode(gzip.compress(mask.tobytes(), mtime=0)).decode("ascii")


def _config_alignment_heads(ct2_dir: Path, dims: dict[str, int]) -> str | None:
    """Return config.json's alignment heads in openai-whisper's format, if it has any."""
    config_path = ct2_dir / "config.json"
    if not config_path.is_file():
        return None
    heads = json.loads(config_path.read_text(encoding="utf-8")).get("alignment_heads")
    if not heads:
        return None
    return alignment_heads_dump(heads, dims["n_text_layer"], dims["n_text_head"])


def read_alignment_heads(checkpoint: str | Path) -> bytes | None:
    """Return the alignment heads stored in a checkpoint, for ``set_alignment_heads``."""
    import torch

    data = torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True)
    heads = data.get("alignment_heads")
    return heads.encode("ascii") if heads else None


def _is_fresh(out_path: Path, sources: Iterable[Path]) -> bool:
    """Tell whether `out_path` exists and is newer than every existing source."""
    if not out_path.is_file():
        return False
    built = out_path.stat().st_mtime_ns
    return all(built > src.stat().st_mtime_ns for src in sources if src.exists())


def _save_atomically(checkpoint: dict[str, Any], out_path: Path) -> None:
    """Write the checkpoint to a temporary file beside `out_path`, then rename it."""
    import torch

    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out_path.name}.", suffix=".tmp",
                                    dir=out_path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(checkpoint, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, out_path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def build_openai_checkpoint(ct2_dir: str | Path, out_path: str | Path) -> Path:
    """Write an openai-whisper ``.pt`` checkpoint rebuilt from a CTranslate2 model folder.

    Skips the work when `out_path` is already newer than ``model.bin`` (and
    ``config.json``, which supplies the alignment heads).
    """
    ct2_dir, out_path = Path(ct2_dir), Path(out_path)
    model_bin = ct2_dir / "model.bin"
    if not model_bin.is_file():
        raise FileNotFoundError(f"no CTranslate2 model.bin in {ct2_dir}")
    if _is_fresh(out_path, (model_bin, ct2_dir / "config.json")):
        logger.debug("%s is up to date with %s", out_path, model_bin)
        return out_path

    import torch

    model = read_ct2_model(model_bin)
    if model.spec != SPEC_NAME:
        raise ValueError(f"{model_bin} holds a {model.spec}, not a {SPEC_NAME}")
    dims, arrays = convert_variables(model.variables)
    checkpoint: dict[str, Any] = {
        "dims": dims,
        "model_state_dict": {name: torch.from_numpy(a) for name, a in arrays.items()},
    }
    heads = _config_alignment_heads(ct2_dir, dims)
    if heads is None:
        logger.info("%s has no alignment heads; openai-whisper will align words with all "
                    "heads of the last half of the decoder", ct2_dir)
    else:
        checkpoint["alignment_heads"] = heads
    _save_atomically(checkpoint, out_path)
    dtypes = sorted({str(a.dtype) for a in arrays.values()})
    logger.info("Wrote openai-whisper checkpoint %s from %s (%s rev %d, %s): %s",
                out_path, model_bin, model.spec, model.revision, "/".join(dtypes), dims)
    return out_path
