"""Tests of the checkpoint file layer (genesis_torch/checkpoint.py, DESIGN.md §6)."""

import json
import os
import pickle
import tempfile
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from genesis_torch import checkpoint as ck
from genesis_torch.errors import (
    CheckpointError,
    IncompatibleCheckpointError,
    InvalidInputError,
    UnsafeCheckpointError,
)

SUFFIXES = [".pkl", ".safetensors"]
META = {"n_envs": 2, "dtype": "float32", "fingerprint": "abc123"}


def _arrays():
    return {
        "RigidSolver.qpos": np.arange(14, dtype=np.float32).reshape(2, 7) - 3.5,
        "RigidSolver.qvel": np.linspace(-1, 1, 12).reshape(2, 6),
        "RigidSolver.contact_count": np.array([3, 0], dtype=np.int64),
        "MPMSolver.active": np.array([[True, False, True]] * 2),
        "scalar": np.array(2.5, dtype=np.float16),
        "empty": np.zeros((2, 0, 3), dtype=np.float32),
    }


def _assert_bit_exact(got: dict, want: dict) -> None:
    assert sorted(got) == sorted(want)
    for key, a in want.items():
        b = got[key]
        assert isinstance(b, np.ndarray), key
        assert b.dtype == a.dtype, (key, b.dtype, a.dtype)
        assert b.shape == a.shape, (key, b.shape, a.shape)
        assert b.tobytes() == np.asarray(a, order="C").tobytes(), key


def _write_raw_pickle(path: Path, payload: object) -> None:
    path.write_bytes(pickle.dumps(payload, protocol=4))


def _valid_metadata(step_index: int = 0) -> dict:
    return {"format": ck.FORMAT_NAME, "format_version": ck.FORMAT_VERSION, "genesis_torch_version": "0.1.0",
            "step_index": step_index, "timestamp": 1.0, **META}


# ------------------------------------------------------------------ round trip

_DTYPES = st.sampled_from([np.float32, np.float64, np.float16, np.int64, np.int32, np.bool_])
_KEYS = st.text(st.characters(codec="utf-8"), min_size=1, max_size=12).filter(lambda k: k != "__metadata__")


@st.composite
def _array_dicts(draw):
    def one_array(dtype):
        elements = None
        if np.dtype(dtype).kind == "f":
            elements = hnp.from_dtype(np.dtype(dtype), allow_nan=False, allow_infinity=False)
        shape = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)
        return hnp.arrays(dtype, shape, elements=elements)

    return draw(st.dictionaries(_KEYS, _DTYPES.flatmap(one_array), max_size=5))


@settings(max_examples=40, deadline=None, database=None)
@given(arrays=_array_dicts(), step=st.integers(0, 2**40), suffix=st.sampled_from(SUFFIXES))
def test_round_trip_bit_exact(arrays, step, suffix):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"ckpt{suffix}"
        meta = dict(META)
        ck.save_checkpoint_file(path, arrays, meta, step)
        assert meta == META  # caller's dict not mutated
        got = ck.read_checkpoint_file(path)
    _assert_bit_exact(got.arrays, arrays)
    assert got.step_index == step
    assert got.file_format == ("pickle" if suffix == ".pkl" else "safetensors")
    assert got.metadata["step_index"] == step
    assert got.metadata["format"] == ck.FORMAT_NAME
    assert got.metadata["format_version"] == ck.FORMAT_VERSION
    assert got.metadata["timestamp"] == got.timestamp
    for k, v in META.items():
        assert got.metadata[k] == v


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_round_trip_signed_zero_subnormal_and_noncontiguous(tmp_path, suffix):
    base = np.array([-0.0, 0.0, 1e-45, -1e-45, 3.4e38, np.finfo(np.float32).tiny], dtype=np.float32)
    arrays = {"a": base, "b": np.arange(24.0).reshape(4, 6)[:, ::2], "c": np.array([[1, 2], [3, 4]], dtype=">i4")}
    ck.save_checkpoint_file(tmp_path / f"x{suffix}", arrays, META, 7)
    got = ck.read_checkpoint_file(tmp_path / f"x{suffix}").arrays
    assert got["a"].tobytes() == base.tobytes()
    assert np.signbit(got["a"][0]) and not np.signbit(got["a"][1])
    assert got["b"].tobytes() == np.asarray(arrays["b"], order="C").tobytes()
    assert got["c"].dtype == np.int32 and got["c"].dtype.isnative  # stored in native byte order
    np.testing.assert_array_equal(got["c"], arrays["c"])


def test_pickle_file_is_documented_plain_dict(tmp_path):
    path = tmp_path / "c.pickle"
    ck.save_checkpoint_file(path, _arrays(), META, 5)
    raw = pickle.loads(path.read_bytes())
    assert set(raw) == {"timestamp", "step_index", "arrays", "metadata"}
    assert raw["step_index"] == 5 and isinstance(raw["timestamp"], float)
    assert raw["metadata"]["genesis_torch_version"]
    assert path.read_bytes()[1] <= 5  # protocol readable by Python 3.11


def test_safetensors_file_is_plain_safetensors(tmp_path):
    path = tmp_path / "c.st"
    ck.save_checkpoint_file(path, _arrays(), META, 5)
    _assert_bit_exact(safetensors.numpy.load_file(str(path)), _arrays())
    data = path.read_bytes()
    header = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])
    inner = json.loads(header["__metadata__"]["genesis_torch"])
    assert inner["step_index"] == 5 and inner["fingerprint"] == "abc123"


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_metadata_is_json_normalised_and_copied(tmp_path, suffix):
    options = {"dt": 0.01, "substeps": (1, 2)}
    meta = {**META, "options": options}
    ck.save_checkpoint_file(tmp_path / f"m{suffix}", _arrays(), meta, 0)
    assert meta["options"] is options and options == {"dt": 0.01, "substeps": (1, 2)}  # caller's objects untouched
    got = ck.read_checkpoint_file(tmp_path / f"m{suffix}").metadata
    assert got["options"] == {"dt": 0.01, "substeps": [1, 2]}  # same JSON form in both encodings
    assert got["genesis_torch_version"] == ck._package_version()


@pytest.mark.parametrize("src_suffix,dst_suffix", [(".pkl", ".safetensors"), (".safetensors", ".pkl")])
def test_format_detected_from_bytes_not_name(tmp_path, src_suffix, dst_suffix):
    src = tmp_path / f"a{src_suffix}"
    ck.save_checkpoint_file(src, _arrays(), META, 3)
    renamed = tmp_path / f"b{dst_suffix}"
    src.rename(renamed)
    got = ck.read_checkpoint_file(renamed)
    assert got.file_format == ("pickle" if src_suffix == ".pkl" else "safetensors")
    _assert_bit_exact(got.arrays, _arrays())


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_convert_round_trip_bit_exact(tmp_path, suffix):
    other = ".safetensors" if suffix == ".pkl" else ".pkl"
    a, b, c = tmp_path / f"a{suffix}", tmp_path / f"b{other}", tmp_path / f"c{suffix}"
    ck.save_checkpoint_file(a, _arrays(), META, 11)
    ck.convert_checkpoint(a, b)
    ck.convert_checkpoint(b, c)
    ra, rb, rc = (ck.read_checkpoint_file(p) for p in (a, b, c))
    assert rb.file_format != ra.file_format and rc.file_format == ra.file_format
    for r in (rb, rc):
        _assert_bit_exact(r.arrays, _arrays())
        assert r.metadata == ra.metadata
        assert (r.step_index, r.timestamp) == (ra.step_index, ra.timestamp)


def test_describe_reports_min_max(tmp_path):
    path = tmp_path / "d.pkl"
    ck.save_checkpoint_file(path, _arrays(), META, 1)
    meta, rows = ck.describe_checkpoint(path)
    assert meta["fingerprint"] == "abc123"
    by_key = {r[0]: r for r in rows}
    assert [r[0] for r in rows] == sorted(_arrays())
    assert by_key["RigidSolver.qpos"] == ("RigidSolver.qpos", (2, 7), "float32", -3.5, 9.5)
    assert by_key["RigidSolver.qvel"][3:] == (-1.0, 1.0)
    assert by_key["RigidSolver.contact_count"][2:] == ("int64", 0, 3)
    assert by_key["empty"][3:] == (None, None)


# ------------------------------------------------------------------ corrupt / unsafe files

@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize("fraction", [0.0, 0.01, 0.1, 0.5, 0.9, 0.999])
def test_truncated_file_raises(tmp_path, suffix, fraction):
    path = tmp_path / f"t{suffix}"
    ck.save_checkpoint_file(path, _arrays(), META, 1)
    data = path.read_bytes()
    cut = min(int(len(data) * fraction), len(data) - 1)
    path.write_bytes(data[:cut])
    with pytest.raises(CheckpointError):
        ck.read_checkpoint_file(path)


def test_unknown_bytes_raise_neither_format(tmp_path):
    path = tmp_path / "junk.pkl"
    path.write_bytes(b"PK\x03\x04 this is a zip file, not a checkpoint")
    with pytest.raises(CheckpointError, match="neither"):
        ck.read_checkpoint_file(path)


def test_missing_file_raises(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        ck.read_checkpoint_file(tmp_path / "nope.pkl")


class _Evil:
    def __init__(self, func, arg):
        self.func, self.arg = func, arg

    def __reduce__(self):
        return (self.func, (self.arg,))


def test_malicious_pickle_os_system_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    payload = {"timestamp": 1.0, "step_index": 0, "metadata": _valid_metadata(),
               "arrays": {"x": _Evil(os.system, f"touch {marker}")}}
    path = tmp_path / "evil.pkl"
    _write_raw_pickle(path, payload)
    assert not marker.exists()
    with pytest.raises(UnsafeCheckpointError, match=r"(posix|nt|os)\.system"):
        ck.read_checkpoint_file(path)
    assert not marker.exists()


def test_malicious_pickle_eval_not_executed(tmp_path):
    marker = tmp_path / "pwned_eval"
    code = f"open({str(marker)!r}, 'w').close()"
    path = tmp_path / "evil2.safetensors"  # name must not matter
    _write_raw_pickle(path, _Evil(eval, code))
    with pytest.raises(UnsafeCheckpointError, match=r"builtins\.eval"):
        ck.read_checkpoint_file(path)
    assert not marker.exists()
    assert isinstance(UnsafeCheckpointError("x"), CheckpointError)


def test_numpy_pickle_protocol5_is_admitted(tmp_path):
    arrays = _arrays()
    payload = {"timestamp": 1.0, "step_index": 4, "metadata": _valid_metadata(4), "arrays": arrays}
    path = tmp_path / "p5.pkl"
    path.write_bytes(pickle.dumps(payload, protocol=5))
    _assert_bit_exact(ck.read_checkpoint_file(path).arrays, arrays)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_in_file_raises(tmp_path, bad):
    qpos = np.zeros((2, 3), np.float32)
    qpos[1, 2] = bad
    payload = {"timestamp": 1.0, "step_index": 0, "metadata": _valid_metadata(), "arrays": {"RigidSolver.qpos": qpos}}
    _write_raw_pickle(tmp_path / "n.pkl", payload)
    meta = {"genesis_torch": json.dumps(_valid_metadata())}
    (tmp_path / "n.safetensors").write_bytes(safetensors.numpy.save({"RigidSolver.qpos": qpos}, metadata=meta))
    for name in ("n.pkl", "n.safetensors"):
        with pytest.raises(CheckpointError, match=r"RigidSolver\.qpos.*NaN/inf"):
            ck.read_checkpoint_file(tmp_path / name)


@pytest.mark.parametrize("mutate,match", [
    (lambda p: p.pop("arrays"), "missing"),
    (lambda p: p.update(extra=1), "unexpected"),
    (lambda p: p["metadata"].update(format="other"), "format"),
    (lambda p: p["metadata"].update(format_version=ck.FORMAT_VERSION + 1), "newer"),
    (lambda p: p["arrays"].update(bad=[1.0, 2.0]), "'bad'.*np.ndarray"),
    (lambda p: p["arrays"].update(obj=np.array(["a", "b"])), "'obj'.*dtype"),
    (lambda p: p.update(step_index=3), "step_index"),
    (lambda p: p["metadata"].update(extra=np.zeros(2)), "JSON"),
])
def test_invalid_structure_raises(tmp_path, mutate, match):
    payload = {"timestamp": 1.0, "step_index": 0, "metadata": _valid_metadata(), "arrays": _arrays()}
    _write_raw_pickle(tmp_path / "ok.pkl", payload)
    ck.read_checkpoint_file(tmp_path / "ok.pkl")  # the unmutated payload is valid
    mutate(payload)
    _write_raw_pickle(tmp_path / "bad.pkl", payload)
    with pytest.raises(CheckpointError, match=match):
        ck.read_checkpoint_file(tmp_path / "bad.pkl")


def test_top_level_not_dict_raises(tmp_path):
    _write_raw_pickle(tmp_path / "l.pkl", [1, 2, 3])
    with pytest.raises(CheckpointError, match="expected a dict"):
        ck.read_checkpoint_file(tmp_path / "l.pkl")


def test_foreign_safetensors_raises(tmp_path):
    path = tmp_path / "foreign.safetensors"
    safetensors.numpy.save_file({"w": np.ones(3, np.float32)}, str(path))
    with pytest.raises(CheckpointError, match="not written by genesis-torch"):
        ck.read_checkpoint_file(path)


# ------------------------------------------------------------------ save validation & atomicity

@pytest.mark.parametrize("suffix", SUFFIXES)
def test_save_refuses_nan(tmp_path, suffix):
    arrays = _arrays()
    arrays["RigidSolver.qvel"] = arrays["RigidSolver.qvel"].copy()
    arrays["RigidSolver.qvel"][0, 1] = np.nan
    with pytest.raises(InvalidInputError, match=r"RigidSolver\.qvel.*[Rr]eset"):
        ck.save_checkpoint_file(tmp_path / f"n{suffix}", arrays, META, 0)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("arrays,metadata,step", [
    ({"": np.zeros(1)}, META, 0),
    ({3: np.zeros(1)}, META, 0),
    ({"__metadata__": np.zeros(1)}, META, 0),
    ({"a": [1.0]}, META, 0),
    ({"a": np.float32(1.0)}, META, 0),
    ({"a": np.array(["s"])}, META, 0),
    ({"a": np.zeros(1, np.complex64)}, META, 0),
    ([np.zeros(1)], META, 0),
    ({"a": np.zeros(1)}, {"x": object()}, 0),
    ({"a": np.zeros(1)}, {"x": float("nan")}, 0),
    ({"a": np.zeros(1)}, {"step_index": 3}, 0),
    ({"a": np.zeros(1)}, META, -1),
    ({"a": np.zeros(1)}, META, 1.5),
])
def test_save_validates_inputs(tmp_path, arrays, metadata, step):
    with pytest.raises(InvalidInputError):
        ck.save_checkpoint_file(tmp_path / "v.pkl", arrays, metadata, step)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize("failing", ["replace", "fsync"])
def test_failed_write_keeps_old_file_and_no_temp(tmp_path, monkeypatch, suffix, failing):
    path = tmp_path / f"c{suffix}"
    ck.save_checkpoint_file(path, _arrays(), META, 1)
    old = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk on fire")

    monkeypatch.setattr(os, failing, boom)
    new = _arrays()
    new["RigidSolver.qpos"] = new["RigidSolver.qpos"] * 2
    with pytest.raises(CheckpointError, match="disk on fire"):
        ck.save_checkpoint_file(path, new, META, 2)
    monkeypatch.undo()
    assert path.read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]
    assert ck.read_checkpoint_file(path).step_index == 1


def test_overwrite_replaces_contents(tmp_path):
    path = tmp_path / "c.pkl"
    ck.save_checkpoint_file(path, _arrays(), META, 1)
    ck.save_checkpoint_file(path, {"only": np.ones(2)}, META, 9)
    got = ck.read_checkpoint_file(path)
    assert got.step_index == 9 and list(got.arrays) == ["only"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pkl"]


def test_missing_folder_raises(tmp_path):
    missing = tmp_path / "no" / "such"
    with pytest.raises(CheckpointError, match="does not exist") as info:
        ck.save_checkpoint_file(missing / "c.pkl", _arrays(), META, 0)
    assert str(missing) in str(info.value)
    assert not missing.exists()


# ------------------------------------------------------------------ compatibility

def _ckpt():
    arrays = _arrays()
    expected = {k: (v.shape, v.dtype) for k, v in arrays.items()}
    return ck.CheckpointData(arrays, _valid_metadata(), 0, 1.0, "pickle"), expected


def test_check_compatible_accepts_match():
    ckpt, expected = _ckpt()
    ck.check_compatible(ckpt, expected, "abc123")


def test_check_compatible_fingerprint():
    ckpt, expected = _ckpt()
    with pytest.raises(IncompatibleCheckpointError, match=r"'abc123'.*'zzz'.*different scene configuration"):
        ck.check_compatible(ckpt, expected, "zzz")


def test_check_compatible_missing_key():
    ckpt, expected = _ckpt()
    expected["RigidSolver.extra"] = ((2,), np.dtype(np.float32))
    expected["RigidSolver.qpos"] = ((9, 9), np.float64)  # a later difference must not be reported first
    with pytest.raises(IncompatibleCheckpointError, match=r"lacks key 'RigidSolver\.extra'"):
        ck.check_compatible(ckpt, expected, "abc123")


def test_check_compatible_unexpected_key():
    ckpt, expected = _ckpt()
    del expected["MPMSolver.active"]
    with pytest.raises(IncompatibleCheckpointError, match=r"has key 'MPMSolver\.active'.*does not have"):
        ck.check_compatible(ckpt, expected, "abc123")


def test_check_compatible_shape_before_dtype():
    ckpt, expected = _ckpt()
    expected["RigidSolver.qpos"] = ((3, 7), np.float32)
    expected["RigidSolver.qvel"] = ((2, 6), np.float32)  # dtype mismatch too, reported after shape
    with pytest.raises(IncompatibleCheckpointError, match=r"'RigidSolver\.qpos'.*\(2, 7\).*\(3, 7\)"):
        ck.check_compatible(ckpt, expected, "abc123")


def test_check_compatible_dtype():
    ckpt, expected = _ckpt()
    expected["RigidSolver.qvel"] = ((2, 6), np.float32)
    with pytest.raises(IncompatibleCheckpointError, match=r"'RigidSolver\.qvel'.*float64.*float32"):
        ck.check_compatible(ckpt, expected, "abc123")
