"""Checkpoint files: the file layer, independent of scenes (DESIGN.md §6).

A checkpoint is a flat dict of NumPy arrays keyed ``"<Solver>.<field>"``, batch dim first (e.g.
``"RigidSolver.qpos": (B, nq) float32``), plus a JSON-compatible metadata dict. Two encodings, same content:

- ``.pkl`` / ``.pickle``: ``pickle.dump`` (protocol 4) of the plain dict
  ``{"timestamp": float, "step_index": int, "arrays": {key: np.ndarray}, "metadata": {...}}``.
- any other suffix: safetensors with the same array keys; the metadata (which also holds ``step_index`` and
  ``timestamp``) is JSON-encoded under the single ``__metadata__`` key ``"genesis_torch"``.

Reading detects the encoding from the bytes, never the name, and validates everything. Pickles go through a
restricted unpickler that admits only NumPy arrays and plain containers. Writes are atomic (temp file in the
same folder, fsync, ``os.replace``, fsync of the folder).

Sharp bits: arrays are stored C-contiguous in native byte order. Metadata goes through JSON on save, so
tuples come back as lists in both encodings. Complex, object, string and structured arrays are refused, and
so are protocol-2 pickles (their arrays reference ``_codecs.encode``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.metadata
import io
import json
import os
import pickle
import tempfile
import time
from pathlib import Path

import numpy as np
import safetensors.numpy
from numpy.typing import DTypeLike

from genesis_torch.errors import CheckpointError, IncompatibleCheckpointError, InvalidInputError, UnsafeCheckpointError

try:  # NumPy >= 2
    from numpy._core import multiarray as _np_multiarray, numeric as _np_numeric
except ImportError:  # pragma: no cover - NumPy 1.x
    from numpy.core import multiarray as _np_multiarray, numeric as _np_numeric

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "CheckpointData", "save_checkpoint_file", "read_checkpoint_file",
           "check_compatible", "convert_checkpoint", "describe_checkpoint"]

FORMAT_NAME = "genesis-torch-checkpoint"
FORMAT_VERSION = 1

PathLike = str | os.PathLike
_PICKLE_SUFFIXES = (".pkl", ".pickle")
_PICKLE_PROTOCOL = 4
_TOP_LEVEL_KEYS = frozenset({"timestamp", "step_index", "arrays", "metadata"})
_SAFETENSORS_META_KEY = "genesis_torch"
_RESERVED_METADATA = ("format", "format_version", "genesis_torch_version", "step_index", "timestamp")
_ARRAY_KINDS = "biuf"  # bool, signed int, unsigned int, float


@dataclasses.dataclass(frozen=True)
class CheckpointData:
    """A validated checkpoint as read from disk.

    Attributes:
        arrays: ``{key: np.ndarray}``, e.g. ``"RigidSolver.qpos": (B, nq) float32``; finite, bool/int/float.
        metadata: JSON-compatible dict; always has ``format``, ``format_version``, ``genesis_torch_version``,
            ``step_index``, ``timestamp`` plus what the saver passed (``n_envs``, ``dtype``, ``fingerprint``...).
        step_index: number of steps the scene had taken when saved.
        timestamp: ``time.time()`` at save, seconds since the epoch.
        file_format: ``"pickle"`` or ``"safetensors"``, detected from the bytes.
    """

    arrays: dict[str, np.ndarray]
    metadata: dict[str, object]
    step_index: int
    timestamp: float
    file_format: str


def _package_version() -> str:
    try:
        return importlib.metadata.version("genesis-torch")
    except importlib.metadata.PackageNotFoundError:
        return "0.1.0"


# --------------------------------------------------------------------------- restricted unpickling

# Exactly what pickling ndarrays / dtypes / NumPy scalars references with protocols 3-5 (checked with
# pickletools), under the NumPy 1.x (`numpy.core`) and 2.x (`numpy._core`) module names. The objects are
# resolved here at import time; a pickle can never make us import a module by name.
_SAFE_GLOBALS = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    **{(f"numpy.{core}.multiarray", "_reconstruct"): _np_multiarray._reconstruct for core in ("core", "_core")},
    **{(f"numpy.{core}.multiarray", "scalar"): _np_multiarray.scalar for core in ("core", "_core")},
    **{(f"numpy.{core}.numeric", "_frombuffer"): _np_numeric._frombuffer for core in ("core", "_core")},
    **{("builtins", t.__name__): t for t in (dict, list, tuple, set, frozenset, bytearray)},
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler whose only reachable globals are those in ``_SAFE_GLOBALS``."""

    def find_class(self, module: str, name: str) -> object:
        try:
            return _SAFE_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafeCheckpointError(
                f"checkpoint pickle references '{module}.{name}', which is not a NumPy array, dtype or plain "
                "container; refusing to load it (nothing was executed). Only load checkpoints you trust, "
                "and prefer the safetensors format."
            ) from None


# --------------------------------------------------------------------------- validation

def _check_array(key: str, value: object, error: type[Exception], where: str, allow_nonfinite: bool = False) -> None:
    """Raise ``error`` unless ``value`` is a bool/int/float ndarray without NaN (or inf, except in ranges); with
    ``allow_nonfinite`` NaN and inf are admitted (a diverged state kept on purpose)."""
    if not isinstance(value, np.ndarray):
        raise error(f"{where}: array '{key}' is a {type(value).__name__}, expected np.ndarray.")
    if value.dtype.kind not in _ARRAY_KINDS:
        raise error(f"{where}: array '{key}' has dtype {value.dtype}; only bool, int and float arrays are allowed.")
    if allow_nonfinite:
        return
    # bounds of ranges (keys ending in "range") may be infinite, meaning unlimited; nothing may be NaN
    bad = (np.isnan(value) if key.endswith("range") else ~np.isfinite(value)) if value.dtype.kind == "f" else None
    if bad is not None and bad.any():
        n_bad = int(np.count_nonzero(bad))
        raise error(
            f"{where}: array '{key}' holds {n_bad} NaN/inf value(s); the simulation diverged. "
            "Reset the diverged envs (or lower the time step) before saving a checkpoint, or save and load it with "
            "allow_nonfinite=True."
        )


def _check_metadata(metadata: object, where: str) -> dict:
    if not isinstance(metadata, dict) or not all(isinstance(k, str) for k in metadata):
        raise CheckpointError(f"{where}: 'metadata' must be a dict with str keys, got {type(metadata).__name__}.")
    try:
        json.dumps(metadata, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{where}: metadata is not JSON-compatible ({e}); re-save the checkpoint.") from e
    if metadata.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{where}: metadata 'format' is {metadata.get('format')!r}, expected {FORMAT_NAME!r}.")
    version = metadata.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise CheckpointError(f"{where}: metadata 'format_version' is {version!r}, expected a positive int.")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{where}: format_version {version} is newer than this genesis-torch reads ({FORMAT_VERSION}); upgrade it."
        )
    return metadata


def _check_payload(payload: object, where: str, file_format: str, allow_nonfinite: bool = False) -> CheckpointData:
    """Check the decoded top-level dict and build a :class:`CheckpointData`."""
    if not isinstance(payload, dict):
        raise CheckpointError(f"{where}: top level is a {type(payload).__name__}, expected a dict.")
    if set(payload) != _TOP_LEVEL_KEYS:
        missing, extra = sorted(_TOP_LEVEL_KEYS - set(payload)), sorted(map(repr, set(payload) - _TOP_LEVEL_KEYS))
        raise CheckpointError(
            f"{where}: top-level keys must be exactly {sorted(_TOP_LEVEL_KEYS)}; missing {missing}, "
            f"unexpected [{', '.join(extra)}]. Re-save the checkpoint with genesis-torch."
        )
    step_index, timestamp = payload["step_index"], payload["timestamp"]
    if not isinstance(step_index, int) or isinstance(step_index, bool) or step_index < 0:
        raise CheckpointError(f"{where}: 'step_index' is {step_index!r}, expected a non-negative int.")
    if not isinstance(timestamp, (int, float)) or isinstance(timestamp, bool):
        raise CheckpointError(f"{where}: 'timestamp' is {timestamp!r}, expected a float.")
    metadata = _check_metadata(payload["metadata"], where)
    if metadata.get("step_index") != step_index:
        raise CheckpointError(f"{where}: 'step_index' {step_index} != metadata's {metadata.get('step_index')!r}.")
    arrays = payload["arrays"]
    if not isinstance(arrays, dict):
        raise CheckpointError(f"{where}: 'arrays' is a {type(arrays).__name__}, expected a dict.")
    for key, value in arrays.items():
        if not isinstance(key, str) or not key:
            raise CheckpointError(f"{where}: array key {key!r} is not a non-empty str.")
        _check_array(key, value, CheckpointError, where, allow_nonfinite)
    return CheckpointData(dict(arrays), metadata, step_index, float(timestamp), file_format)


# --------------------------------------------------------------------------- reading

def _detect_format(data: bytes) -> str | None:
    """``"safetensors"`` (u64 LE header length, then ``{``), ``"pickle"`` (``\\x80``, protocol 2..5), or None."""
    if len(data) >= 9 and data[8:9] == b"{":
        return "safetensors"
    if len(data) >= 2 and data[0] == 0x80 and 2 <= data[1] <= 5:
        return "pickle"
    return None


def _decode_safetensors(data: bytes, where: str) -> dict:
    """Decode safetensors bytes into the same top-level dict a pickle checkpoint holds."""
    header = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")].decode("utf-8"))
    arrays = safetensors.numpy.load(data)
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(meta, dict) or set(meta) != {_SAFETENSORS_META_KEY}:
        raise CheckpointError(
            f"{where}: safetensors __metadata__ must hold exactly the key {_SAFETENSORS_META_KEY!r}, found "
            f"{sorted(meta) if isinstance(meta, dict) else meta!r}; this file was not written by genesis-torch."
        )
    metadata = json.loads(meta[_SAFETENSORS_META_KEY])
    if not isinstance(metadata, dict):
        raise CheckpointError(f"{where}: metadata is a {type(metadata).__name__}, expected a JSON object.")
    return {"timestamp": metadata.get("timestamp"), "step_index": metadata.get("step_index"),
            "arrays": arrays, "metadata": metadata}


def read_checkpoint_file(path: PathLike, allow_nonfinite: bool = False) -> CheckpointData:
    """Read and validate a checkpoint in either encoding (detected from the bytes); NaN/inf arrays only with
    ``allow_nonfinite``.

    Raises:
        UnsafeCheckpointError: a pickle references anything but NumPy arrays and plain containers.
        CheckpointError: the file is missing, unreadable, truncated, corrupt, of another format or a newer
            version, or holds a non-numeric or non-finite array.
    """
    path = Path(os.fspath(path))
    where = f"checkpoint {str(path)!r}"
    try:
        data = path.read_bytes()
    except FileNotFoundError as e:
        raise CheckpointError(f"{where} does not exist; check the path.") from e
    except OSError as e:
        raise CheckpointError(f"{where} cannot be read: {e}") from e
    file_format = _detect_format(data)
    if file_format is None:
        raise CheckpointError(f"{where} is neither a pickle nor a safetensors file (starts with {data[:9]!r}).")
    try:
        if file_format == "pickle":
            payload = _RestrictedUnpickler(io.BytesIO(data)).load()
        else:
            payload = _decode_safetensors(data, where)
    except CheckpointError:
        raise
    except Exception as e:  # any parser failure: truncated or corrupt bytes
        raise CheckpointError(
            f"{where} is truncated or corrupt ({file_format}: {type(e).__name__}: {e}); restore or re-save it."
        ) from e
    return _check_payload(payload, where, file_format, allow_nonfinite)


# --------------------------------------------------------------------------- writing

def _write_atomic(path: Path, write) -> None:
    """Call ``write(fileobj)`` on a temp file next to ``path``, fsync it, then ``os.replace`` it onto ``path``."""
    folder = path.parent
    if not folder.is_dir():
        raise CheckpointError(f"cannot write checkpoint {str(path)!r}: folder {str(folder)!r} does not exist.")
    tmp_name = None
    try:
        fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, path)
        tmp_name = None
    except BaseException as e:  # also on KeyboardInterrupt: never leave a temp file behind
        if tmp_name is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
        if not isinstance(e, Exception):
            raise
        raise CheckpointError(f"writing checkpoint {str(path)!r} failed: {type(e).__name__}: {e}") from e
    # Make the rename durable too. Best effort: the data is already fsynced and in place, and some
    # platforms (Windows, some network filesystems) cannot fsync a directory.
    with contextlib.suppress(OSError, AttributeError):
        dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _write_checkpoint(path: Path, arrays: dict[str, np.ndarray], metadata: dict) -> None:
    """Write validated ``arrays`` and complete ``metadata`` in the encoding given by ``path``'s suffix."""
    if path.suffix.lower() in _PICKLE_SUFFIXES:
        payload = {"timestamp": metadata["timestamp"], "step_index": metadata["step_index"],
                   "arrays": arrays, "metadata": metadata}
        _write_atomic(path, lambda f: pickle.dump(payload, f, protocol=_PICKLE_PROTOCOL))
    else:
        meta = {_SAFETENSORS_META_KEY: json.dumps(metadata, allow_nan=False)}
        _write_atomic(path, lambda f: f.write(safetensors.numpy.save(arrays, metadata=meta)))


def _prepare_arrays(arrays: object, allow_nonfinite: bool = False) -> dict[str, np.ndarray]:
    """Validate save inputs; return a new dict of C-contiguous, native-byte-order arrays (views where possible)."""
    if not isinstance(arrays, dict):
        raise InvalidInputError(f"checkpoint arrays must be a dict, got {type(arrays).__name__}.")
    out = {}
    for key, value in arrays.items():
        if not isinstance(key, str) or not key or key == "__metadata__":
            raise InvalidInputError(f"checkpoint array key {key!r} must be a non-empty str other than '__metadata__'.")
        try:
            key.encode("utf-8")
        except UnicodeEncodeError as e:
            raise InvalidInputError(f"checkpoint array key {key!r} is not valid UTF-8.") from e
        _check_array(key, value, InvalidInputError, "cannot save checkpoint", allow_nonfinite)
        value = np.asarray(value, order="C")  # not np.ascontiguousarray: it turns 0-d arrays into 1-d
        out[key] = value if value.dtype.isnative else value.astype(value.dtype.newbyteorder("="))
    return out


def save_checkpoint_file(path: PathLike, arrays: dict[str, np.ndarray], metadata: dict, step_index: int,
                         allow_nonfinite: bool = False) -> None:
    """Atomically write ``arrays`` and ``metadata`` to ``path`` (pickle for ``.pkl``/``.pickle``, else safetensors).

    Args:
        path: target file; its folder must exist. An existing file is replaced only on success.
        arrays: ``{key: np.ndarray}``, bool/int/float and finite, e.g. ``"RigidSolver.qpos": (B, nq)``.
        metadata: JSON-compatible dict (callers pass at least ``n_envs``, ``dtype``, ``fingerprint``); must not
            use the reserved keys ``format``, ``format_version``, ``genesis_torch_version``, ``step_index``,
            ``timestamp``, which are added here. Never mutated.
        step_index: non-negative number of steps taken.
        allow_nonfinite: admit NaN/inf values (a diverged state saved on purpose).

    Raises:
        InvalidInputError: bad keys, non-array or non-numeric values, NaN/inf, non-JSON or reserved metadata.
        CheckpointError: the folder is missing or the write failed (the target is left untouched).
    """
    prepared = _prepare_arrays(arrays, allow_nonfinite)
    if not isinstance(step_index, (int, np.integer)) or isinstance(step_index, bool) or step_index < 0:
        raise InvalidInputError(f"step_index must be a non-negative int, got {step_index!r}.")
    if not isinstance(metadata, dict):
        raise InvalidInputError(f"checkpoint metadata must be a dict, got {type(metadata).__name__}.")
    reserved = sorted(set(_RESERVED_METADATA) & set(metadata))
    if reserved:
        raise InvalidInputError(f"checkpoint metadata keys {reserved} are reserved and set by save; remove them.")
    try:  # the JSON round trip deep-copies and makes both encodings hold identical metadata
        user = json.loads(json.dumps(metadata, allow_nan=False))
    except (TypeError, ValueError) as e:
        raise InvalidInputError(f"checkpoint metadata must be JSON-compatible (no NaN/inf): {e}") from e
    full = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "genesis_torch_version": _package_version(),
            "step_index": int(step_index), "timestamp": time.time(), **user}
    _write_checkpoint(Path(os.fspath(path)), prepared, full)


# --------------------------------------------------------------------------- compatibility & tools

def check_compatible(
    ckpt: CheckpointData, expected: dict[str, tuple[tuple[int, ...], DTypeLike]], fingerprint: str
) -> None:
    """Raise :class:`IncompatibleCheckpointError` naming the first difference between ``ckpt`` and a scene.

    Checked in order: fingerprint, missing keys, unexpected keys, then for each key (sorted) its shape, then
    its dtype. Nothing is modified, so callers can check before touching the scene.

    Args:
        ckpt: a checkpoint from :func:`read_checkpoint_file`.
        expected: ``{key: (shape, dtype)}`` of the scene's state, e.g. ``"RigidSolver.qpos": ((B, nq), float32)``.
        fingerprint: the scene configuration's fingerprint.
    """
    saved_fp = ckpt.metadata.get("fingerprint")
    if saved_fp != fingerprint:
        raise IncompatibleCheckpointError(
            f"checkpoint fingerprint {saved_fp!r} differs from the scene's {fingerprint!r}: it was saved from a "
            "different scene configuration. Load it into a scene built from the same entities, options and n_envs."
        )
    missing = sorted(set(expected) - set(ckpt.arrays))
    if missing:
        raise IncompatibleCheckpointError(f"checkpoint lacks key {missing[0]!r} the scene needs (missing: {missing}).")
    unexpected = sorted(set(ckpt.arrays) - set(expected))
    if unexpected:
        raise IncompatibleCheckpointError(
            f"checkpoint has key {unexpected[0]!r} the scene does not have (unexpected: {unexpected})."
        )
    for key in sorted(expected):
        array, shape, dtype = ckpt.arrays[key], tuple(int(n) for n in expected[key][0]), np.dtype(expected[key][1])
        for what, got, want in (("shape", array.shape, shape), ("dtype", array.dtype, dtype)):
            if got != want:
                raise IncompatibleCheckpointError(f"checkpoint array {key!r} has {what} {got}, scene expects {want}.")


def convert_checkpoint(src: PathLike, dst: PathLike) -> None:
    """Read ``src`` (validated) and write it to ``dst`` in the encoding of ``dst``'s suffix, bit-exact.

    Arrays, metadata (timestamp and version included) and step_index are carried over unchanged.
    """
    ckpt = read_checkpoint_file(src)
    _write_checkpoint(Path(os.fspath(dst)), _prepare_arrays(ckpt.arrays), ckpt.metadata)


def describe_checkpoint(path: PathLike) -> tuple[dict, list[tuple[str, tuple, str, object, object]]]:
    """Summarise a checkpoint for ``genesis-torch inspect``.

    Returns:
        ``(metadata, rows)`` with one row ``(key, shape, dtype_name, min, max)`` per array, sorted by key;
        min/max are Python scalars, or None for empty arrays.
    """
    ckpt = read_checkpoint_file(path)
    rows = []
    for key in sorted(ckpt.arrays):
        a = ckpt.arrays[key]
        lo, hi = (a.min().item(), a.max().item()) if a.size else (None, None)
        rows.append((key, a.shape, str(a.dtype), lo, hi))
    return dict(ckpt.metadata), rows
