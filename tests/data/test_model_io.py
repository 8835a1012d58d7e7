"""Model files (jaxlogreg.data.model_io): exact round trips, files of earlier versions, and
clear refusals of damaged or unsafe files."""

from __future__ import annotations

import json
import tracemalloc
import zipfile
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

from jaxlogreg.core.model import Params
from jaxlogreg.data.model_io import (
    FORMAT_NAME,
    FORMAT_VERSION,
    ModelFileError,
    SavedModel,
    load_model,
    save_model,
)
from jaxlogreg.data.scaling import fit_scaler

TEST_DATA = Path(__file__).resolve().parent


def _binary(dtype=np.float32) -> Params:
    g = np.random.default_rng(0)
    return Params(w=g.normal(size=5).astype(dtype), b=np.asarray(-0.25, dtype))


def _multinomial(dtype=np.float32, k: int = 3) -> Params:
    g = np.random.default_rng(1)
    return Params(w=g.normal(size=(5, k)).astype(dtype), b=g.normal(size=k).astype(dtype))


def _save(path: Path, **overrides) -> Path:
    kwargs = {
        "classes": ["no", "yes"],
        "config": {"learning_rate": 0.005, "max_iter": 2000, "solver": "gd"},
        "scaler": None,
        "metadata": {"data": "catvnoncat"},
    }
    kwargs.update(overrides)
    params = kwargs.pop("params", _binary())
    return save_model(path, params, **kwargs)


def _read_raw(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def _header(raw: dict[str, np.ndarray]) -> dict:
    return json.loads(raw["header"].tobytes().decode("utf-8"))


def _with_header(raw: dict[str, np.ndarray], header: dict) -> dict[str, np.ndarray]:
    out = dict(raw)
    out["header"] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    return out


def _write_raw(path: Path, arrays: dict[str, np.ndarray], allow_pickle: bool = False) -> Path:
    with open(path, "wb") as f:
        np.savez(f, allow_pickle=allow_pickle, **arrays)
    return path


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("kind", ["binary", "multinomial"])
@pytest.mark.parametrize("classes_kind", ["str", "int"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_is_exact(tmp_path, kind, classes_kind, dtype):
    params = _binary(dtype) if kind == "binary" else _multinomial(dtype)
    k = 2 if kind == "binary" else 3
    classes = (
        np.array(["cat", "dog", "non-cat"][:k])
        if classes_kind == "str"
        else np.array([-1, 1, 7][:k], dtype=np.int64)
    )
    scaler = fit_scaler(np.random.default_rng(2).normal(size=(10, 5)) * 3 + 1)
    config = {"learning_rate": 0.1, "l2": 1e-3, "nested": {"a": [1, 2]}, "flag": True}
    metadata = {"train_accuracy": 0.99, "note": "ünïcode"}
    path = save_model(
        tmp_path / "m.npz",
        params,
        classes=classes,
        config=config,
        scaler=scaler,
        metadata=metadata,
    )
    loaded = load_model(path)
    assert isinstance(loaded, SavedModel) and isinstance(loaded.params, Params)
    for got, want in zip(loaded.params, params, strict=True):
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(loaded.classes, classes)
    assert loaded.classes.dtype.kind == classes.dtype.kind
    if classes_kind == "int":
        assert loaded.classes.dtype == classes.dtype
    assert loaded.config == config and loaded.metadata == metadata
    np.testing.assert_array_equal(loaded.scaler.mean_, scaler.mean_)
    np.testing.assert_array_equal(loaded.scaler.scale_, scaler.scale_)
    X = np.random.default_rng(3).normal(size=(4, 5))
    np.testing.assert_array_equal(loaded.scaler.transform(X), scaler.transform(X))


def test_round_trip_from_jax_arrays(tmp_path):
    params = Params(w=jnp.arange(3, dtype=jnp.float32), b=jnp.zeros((), jnp.float32))
    path = save_model(tmp_path / "j.model", params, classes=[0, 1])
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.params.w, [0.0, 1.0, 2.0])
    assert loaded.config == {} and loaded.metadata == {} and loaded.scaler is None
    raw = _read_raw(path)
    assert set(raw) == {"header", "w", "b", "classes"}
    header = _header(raw)
    assert header["format"] == FORMAT_NAME and header["version"] == FORMAT_VERSION
    assert header["arrays"]["w"] == {"dtype": "float32", "shape": [3]}
    assert not list(tmp_path.glob(".*.tmp"))  # the temporary file was renamed away


def test_non_finite_values_are_written_as_strings(tmp_path):
    # the package's one JSON encoding: "inf" / "nan" strings, never invalid JSON
    path = _save(tmp_path / "m.npz", metadata={"log_loss": float("inf"), "x": float("nan")})
    assert load_model(path).metadata == {"log_loss": "inf", "x": "nan"}
    assert '"inf"' in _read_raw(path)["header"].tobytes().decode()


@pytest.mark.parametrize(
    "name, classes, n_features, with_scaling",
    [("binary", ["no", "yes"], 3, True), ("softmax", [3, 5, 7], 4, False)],
)
def test_files_written_by_version_0_1_0_still_load(name, classes, n_features, with_scaling):
    # tests/data/model_v1_*.npz were written by jaxlogreg 0.1.0 (format version 1), whose
    # feature scaling was its own Standardizer class
    saved = load_model(TEST_DATA / f"model_v1_{name}.npz")
    assert saved.classes.tolist() == classes
    assert saved.params.w.shape[0] == n_features
    if with_scaling:
        np.testing.assert_array_equal(saved.scaler.mean_, [1.0, 2.0, -3.0])
        np.testing.assert_array_equal(saved.scaler.scale_, [0.5, 4.0, 1.5])
        X = np.array([[2.0, 6.0, 0.0]])
        np.testing.assert_allclose(saved.scaler.transform(X), [[2.0, 1.0, 2.0]])
        np.testing.assert_array_equal(saved.params.w, np.array([0.5, -1.25, 2.0], np.float32))
    else:
        assert saved.scaler is None and saved.params.w.dtype == np.float64


def test_feature_names_round_trip_and_version_1_files_have_none(tmp_path):
    names = ("age", "größe", "x 3", "a", "b")
    loaded = load_model(_save(tmp_path / "m.npz", feature_names=np.array(names)))
    assert loaded.feature_names == names and isinstance(loaded.feature_names, tuple)
    assert _header(_read_raw(tmp_path / "m.npz"))["feature_names"] == list(names)
    assert load_model(_save(tmp_path / "none.npz")).feature_names is None
    for name in ("binary", "softmax"):
        assert load_model(TEST_DATA / f"model_v1_{name}.npz").feature_names is None


@pytest.mark.parametrize(
    "names, error, match",
    [
        (["a", "b"], ValueError, "feature_names must have one name per feature, 5, got 2"),
        (["a", "b", "a", "c", "b"], ValueError, r"must be unique, got \['a', 'b'\] more than once"),
        ([1, 2, 3, 4, 5], TypeError, "feature_names must be a list of 5 strings, got"),
        ("abcde", TypeError, "feature_names must be a list of 5 strings, got 'abcde'"),
    ],
)
def test_bad_feature_names_are_refused_on_save_and_on_load(tmp_path, names, error, match):
    with pytest.raises(error, match=match):
        _save(tmp_path / "m.npz", feature_names=names)
    assert not list(tmp_path.iterdir())
    raw = _read_raw(_save(tmp_path / "good.npz"))
    path = _write_raw(tmp_path / "bad.npz", _with_header(raw, {**_header(raw),
                                                               "feature_names": names}))
    _expect_refusal(path, match)


def test_a_version_2_header_must_hold_feature_names(tmp_path):
    raw = _read_raw(_save(tmp_path / "m.npz"))
    header = {k: x for k, x in _header(raw).items() if k != "feature_names"}
    _expect_refusal(_write_raw(tmp_path / "no_names.npz", _with_header(raw, header)),
                    "header field 'feature_names' .* is missing")
    old = _write_raw(tmp_path / "v1.npz", _with_header(raw, {**header, "version": 1}))
    assert load_model(old).feature_names is None


def test_saving_onto_a_directory_or_below_a_file_names_the_given_path(tmp_path):
    (tmp_path / "runs").mkdir()
    with pytest.raises(IsADirectoryError, match=f"^cannot write {tmp_path / 'runs'}: it is a "
                                                "directory") as err:
        _save(tmp_path / "runs")
    assert ".tmp" not in str(err.value)
    (tmp_path / "file").write_text("")
    for target in (tmp_path / "file" / "m.npz", tmp_path / "file" / "sub" / "m.npz"):
        with pytest.raises(NotADirectoryError, match=f"^cannot write {target}: "
                                                     f"{tmp_path / 'file'} is not a directory"):
            _save(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "runs"]
    assert not list((tmp_path / "runs").iterdir())


def test_string_classes_live_in_the_json_header(tmp_path):
    raw = _read_raw(_save(tmp_path / "m.npz"))
    assert set(raw) == {"header", "w", "b"}
    assert all(a.dtype.kind in "uif" for a in raw.values())  # numeric arrays only
    assert _header(raw)["classes"] == {"kind": "str", "values": ["no", "yes"]}


# --------------------------------------------------------------------------- save-time checks


@pytest.mark.parametrize(
    "overrides, error, match",
    [
        ({"classes": ["a", "b", "c"]}, ValueError, r"classes must have shape \(2,\)"),
        ({"classes": ["a", "a"]}, ValueError, "classes must be unique"),
        ({"classes": [{"a": 1}, None]}, TypeError, "classes must be numbers or strings"),
        ({"config": {"f": object()}}, TypeError, "config must hold only JSON values"),
        ({"metadata": {"x": object()}}, TypeError, "metadata must hold only JSON values"),
        ({"config": [1]}, TypeError, "config must be a dict with string keys"),
        (
            {"params": Params(np.zeros(3, np.int32), np.zeros((), np.int32))},
            TypeError,
            r"params.w must have dtype in \['float16', 'float32', 'float64'\], got int32",
        ),
        ({"params": Params(np.zeros((3, 2)), np.zeros(3))}, ValueError, "params must be binary"),
        (
            {"params": Params(np.array([np.nan]), np.zeros(()))},
            ValueError,
            "params.w must be finite",
        ),
        (
            {"scaler": fit_scaler(np.zeros((3, 1)))},
            ValueError,
            "scaler must have 5 features to match params.w, got 1",
        ),
    ],
)
def test_save_rejects_bad_inputs(tmp_path, overrides, error, match):
    with pytest.raises(error, match=match):
        _save(tmp_path / "m.npz", **overrides)
    assert not list(tmp_path.iterdir())  # nothing half-written


# --------------------------------------------------------------------------- damaged files


def _expect_refusal(path: Path, match: str) -> ModelFileError:
    with pytest.raises(ModelFileError, match=match) as err:
        load_model(path)
    assert str(path) in str(err.value) and isinstance(err.value, ValueError)
    return err.value


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.npz does not exist"):
        load_model(tmp_path / "nope.npz")


@pytest.mark.parametrize("fraction", [0.5, 0.9, 0.1])
def test_truncated_file(tmp_path, fraction):
    data = _save(tmp_path / "m.npz").read_bytes()
    path = tmp_path / "cut.npz"
    path.write_bytes(data[: int(len(data) * fraction)])
    _expect_refusal(path, "not a readable .npz archive|corrupt")


def test_random_bytes_and_empty_file(tmp_path):
    path = tmp_path / "random.npz"
    path.write_bytes(np.random.default_rng(0).bytes(2000))
    _expect_refusal(path, r"expected an .npz \(zip\) archive")
    (tmp_path / "empty.npz").write_bytes(b"")
    _expect_refusal(tmp_path / "empty.npz", "got an empty file")
    np.save(tmp_path / "plain.npy", np.zeros(3))
    _expect_refusal(tmp_path / "plain.npy", r"expected an .npz \(zip\) archive")


def test_flipped_bytes_inside_an_array_are_detected(tmp_path):
    path = _save(tmp_path / "m.npz")
    data = bytearray(path.read_bytes())
    w_bytes = _read_raw(path)["w"].tobytes()
    at = bytes(data).index(w_bytes)
    data[at] ^= 0xFF  # the zip CRC no longer matches
    path.write_bytes(bytes(data))
    _expect_refusal(path, "corrupt or unsafe array .*CRC")


def test_wrong_version_and_format(tmp_path):
    raw = _read_raw(_save(tmp_path / "m.npz"))
    header = _header(raw)
    path = _write_raw(tmp_path / "v3.npz", _with_header(raw, {**header, "version": 3}))
    _expect_refusal(path, "format version 3 is not supported; this jaxlogreg reads versions 1 "
                          "and 2")
    path = _write_raw(tmp_path / "f.npz", _with_header(raw, {**header, "format": "other"}))
    _expect_refusal(path, "header format is 'other', expected 'jaxlogreg-model'")


def test_missing_and_extra_arrays(tmp_path):
    raw = _read_raw(_save(tmp_path / "m.npz"))
    path = _write_raw(tmp_path / "no_b.npz", {k: a for k, a in raw.items() if k != "b"})
    _expect_refusal(path, r"missing array\(s\) \['b'\]")
    path = _write_raw(tmp_path / "no_header.npz", {k: a for k, a in raw.items() if k != "header"})
    _expect_refusal(path, r"missing array\(s\) \['header'\]")
    path = _write_raw(tmp_path / "extra.npz", {**raw, "payload": np.zeros(2)})
    _expect_refusal(path, r"unexpected array\(s\) \['payload'\]")


class _Boom:
    """Unpickling this would create a file: the test checks that it never happens."""

    def __init__(self, target: str):
        self.target = target

    def __reduce__(self):
        return (Path.touch, (Path(self.target),))


def test_object_array_is_refused_without_unpickling(tmp_path):
    raw = _read_raw(_save(tmp_path / "m.npz"))
    marker = tmp_path / "unpickled.txt"
    evil = np.array([_Boom(str(marker)), None], dtype=object)
    path = _write_raw(tmp_path / "evil.npz", {**raw, "w": evil}, allow_pickle=True)
    _expect_refusal(path, "corrupt or unsafe array")
    assert not marker.exists()
    # also as the header itself
    path = _write_raw(tmp_path / "evil2.npz", {**raw, "header": evil}, allow_pickle=True)
    _expect_refusal(path, "corrupt or unsafe array")
    assert not marker.exists()


def test_shape_mismatches(tmp_path):
    raw = _read_raw(_save(tmp_path / "m.npz", params=_multinomial(), classes=[0, 1, 2]))
    header = _header(raw)
    # w and b disagree on K, with a header that agrees with the arrays
    bad = {**raw, "b": np.zeros(4, np.float32)}
    header_b = json.loads(json.dumps(header))
    header_b["arrays"]["b"]["shape"] = [4]
    _expect_refusal(
        _write_raw(tmp_path / "wb.npz", _with_header(bad, header_b)),
        "params must be binary .* or multinomial",
    )
    # array differs from what the header declares
    _expect_refusal(
        _write_raw(tmp_path / "decl.npz", {**raw, "w": np.zeros((6, 3), np.float32)}),
        r"array 'w' has dtype float32 and shape \[6, 3\], but the header says",
    )
    # dtype differs from the header
    _expect_refusal(
        _write_raw(tmp_path / "dt.npz", {**raw, "w": raw["w"].astype(np.float64)}),
        "array 'w' has dtype float64",
    )
    # n_features, n_classes and classes inconsistent with the arrays
    _expect_refusal(
        _write_raw(tmp_path / "k.npz", _with_header(raw, {**header, "n_classes": 4})),
        "header says n_features=5 and n_classes=4",
    )
    _expect_refusal(
        _write_raw(tmp_path / "n.npz", _with_header(raw, {**header, "n_features": 6})),
        "header says n_features=6 and n_classes=3",
    )
    raw2 = {**raw, "classes": np.array([0, 1, 1])}
    _expect_refusal(_write_raw(tmp_path / "dup.npz", raw2), "classes must be unique")


def test_bad_header_contents(tmp_path):
    raw = _read_raw(_save(tmp_path / "m.npz"))
    header = _header(raw)
    bad_json = {**raw, "header": np.frombuffer(b"{not json", dtype=np.uint8)}
    _expect_refusal(_write_raw(tmp_path / "j.npz", bad_json), "header is not valid UTF-8 JSON")
    bad_utf8 = {**raw, "header": np.frombuffer(b"\xff\xfe{}", dtype=np.uint8)}
    _expect_refusal(_write_raw(tmp_path / "u.npz", bad_utf8), "header is not valid UTF-8 JSON")
    as_int = {**raw, "header": raw["header"].astype(np.int64)}
    _expect_refusal(_write_raw(tmp_path / "i.npz", as_int), "array 'header' must be 1-D uint8")
    listed = {**raw, "header": np.frombuffer(b"[1, 2]", dtype=np.uint8)}
    _expect_refusal(_write_raw(tmp_path / "l.npz", listed), "header must be a JSON object")
    no_cfg = {k: val for k, val in header.items() if k != "config"}
    _expect_refusal(
        _write_raw(tmp_path / "c.npz", _with_header(raw, no_cfg)),
        "header field 'config' must be a dict",
    )
    nan_params = {**raw, "w": np.full(5, np.nan, np.float32)}
    _expect_refusal(_write_raw(tmp_path / "n.npz", nan_params), "array 'w' must be finite, got NaN or inf")
    bad_std = {**header, "standardizer": {"mean": [0.0] * 5}}
    _expect_refusal(
        _write_raw(tmp_path / "s.npz", _with_header(raw, bad_std)),
        "invalid feature scaling: .*missing key",
    )
    three = {**header, "classes": {"kind": "str", "values": ["a", "b", "c"]}}
    _expect_refusal(
        _write_raw(tmp_path / "k.npz", _with_header(raw, three)),
        r"expected 2 classes, got shape \[3\]",
    )


def test_deeply_nested_header_is_refused_in_one_line(tmp_path):  # defect D5
    raw = _read_raw(_save(tmp_path / "m.npz"))
    deep = ("[" * 100_000 + "]" * 100_000).encode()
    path = _write_raw(tmp_path / "deep.npz", {**raw, "header": np.frombuffer(deep, np.uint8)})
    _expect_refusal(path, "header is nested too deeply")


def _with_zeros_member(source: Path, target: Path, name: str, n_bytes: int) -> Path:
    """A copy of the archive with member ``name``.npy holding ``n_bytes`` of zeros, deflated
    (a few hundred kB on disk for hundreds of MB declared)."""
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            if info.filename != f"{name}.npy":
                zout.writestr(info, zin.read(info))
        header = np.lib.format.header_data_from_array_1_0(np.zeros(n_bytes, np.uint8))
        with zout.open(f"{name}.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array_header_1_0(member, header)
            chunk = bytes(2**20)
            for _ in range(n_bytes // len(chunk)):
                member.write(chunk)
    return target


@pytest.mark.parametrize("name, match", [
    ("payload", r"unexpected array\(s\) \['payload'\]"),
    ("w", "array 'w' declares .* bytes, more than the 20 bytes its header allows"),
])
def test_oversized_members_are_refused_before_decompression(tmp_path, name, match):  # D11
    path = _with_zeros_member(_save(tmp_path / "m.npz"), tmp_path / "big.npz", name, 256 * 2**20)
    assert path.stat().st_size < 2 * 2**20
    tracemalloc.start()
    try:
        _expect_refusal(path, match)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20  # nothing near the 256 MiB the member would expand to
