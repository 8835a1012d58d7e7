"""The one archive format and JSON encoding shared by model files, checkpoints and metrics."""

from __future__ import annotations

import json

import numpy as np
import pytest

from jaxlogreg.data.archive import ArchiveError, dumps, jsonable, open_archive, write_archive


def test_jsonable_is_the_one_encoding_of_non_finite_numbers():
    value = {"a": float("inf"), "b": [float("-inf"), float("nan")], "c": (1, 2),
             "d": np.float32(0.5), "e": np.arange(3), "f": None, "g": True}
    assert jsonable(value) == {"a": "inf", "b": ["-inf", "nan"], "c": [1, 2], "d": 0.5,
                               "e": [0, 1, 2], "f": None, "g": True}
    assert json.loads(dumps(value))["a"] == "inf"  # strict JSON: no Infinity literal
    with pytest.raises(TypeError, match="object is not a JSON value"):
        jsonable({"x": object()})


def test_write_is_atomic_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "a.npz"
    write_archive(path, {"version": 1}, {"x": np.arange(3)})
    with pytest.raises(TypeError):
        write_archive(path, {"bad": object()}, {"x": np.zeros(2)})
    with open_archive(path) as archive:  # the first file is intact
        assert archive.header() == {"version": 1}
        np.testing.assert_array_equal(archive.array("x", 3 * 8), np.arange(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npz"]


def test_reading_names_the_file_and_the_problem(tmp_path):
    path = write_archive(tmp_path / "a.npz", {"k": 1}, {"x": np.zeros(10_000)})
    with open_archive(path) as archive:
        with pytest.raises(ArchiveError, match=r"a.npz: unexpected array\(s\) \['x'\]"):
            archive.check_names({"header"})
        with pytest.raises(ArchiveError, match="array 'x' declares .* more than the 8 bytes"):
            archive.array("x", 8)
    (tmp_path / "b.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ArchiveError, match="b.npz: not a readable .npz archive"):
        open_archive(tmp_path / "b.npz")
