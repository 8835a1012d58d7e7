"""``jaxlogreg.show_config()``: one ``name: value`` item per line, printed and returned; the C
kernel's state without building it unless asked; a broken part reported on its line, never
raised. The kernel lines as on a GPU: tests/training/test_gpu_kernel_choice.py."""

from __future__ import annotations

import platform
from pathlib import Path

import jax
import pytest

import jaxlogreg as jl
from jaxlogreg.kernels import native
from jaxlogreg.runtime import cache

NAMES = ["jaxlogreg", "jax", "jaxlib", "optax", "numpy", "scipy", "scikit-learn", "Python",
         "backend", "devices", "C kernel", "dense fit 10000 x 100, 2 classes, float32",
         "sparse fit 10000 x 100, 2 classes, float32", "compilation cache"]


def _items(text: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in text.splitlines())


def test_one_item_per_line_printed_and_returned(capsys):
    text = jl.show_config()
    assert capsys.readouterr().out == text + "\n"
    items = _items(text)
    assert list(items) == NAMES
    assert items["jaxlogreg"] == jl.__version__ and items["jax"] == jax.__version__
    assert items["Python"].startswith(platform.python_version())
    assert items["backend"] == jax.default_backend()
    assert str(len(jax.devices())) in items["devices"]
    assert items["sparse fit 10000 x 100, 2 classes, float32"] == "xla"


def test_the_c_kernel_is_not_built_unless_asked(monkeypatch):
    if jax.default_backend() != "cpu":
        pytest.skip("the C kernel is for CPUs")
    builds = []
    monkeypatch.setattr(native, "tried", lambda: False)
    monkeypatch.setattr(native, "build_error", lambda: builds.append(1) or "no C compiler")
    monkeypatch.setenv(native.SWITCH, "1")
    assert _items(jl.show_config())["C kernel"].startswith("not built yet in this process")
    assert not builds
    assert _items(jl.show_config(build_native=True))["C kernel"] == "not available: no C compiler"
    assert builds


def test_a_switched_off_or_badly_switched_c_kernel_is_reported(monkeypatch):
    monkeypatch.setenv(native.SWITCH, "0")
    assert _items(jl.show_config())["C kernel"] == f"off, turned off by {native.SWITCH}='0'"
    monkeypatch.setenv(native.SWITCH, "maybe")
    items = _items(jl.show_config())  # no exception: the report shows what is wrong
    assert items["C kernel"].startswith("unknown (ValueError: environment variable "
                                        f"{native.SWITCH} must be one of")
    assert items["C kernel"].endswith("got 'maybe')")


def test_the_cache_folder_or_where_the_command_puts_it(monkeypatch, tmp_path):
    monkeypatch.setattr(cache, "folder", lambda: None)
    off = _items(jl.show_config())["compilation cache"]
    assert off.startswith("off (") and str(cache.default_folder()) in off
    monkeypatch.setattr(cache, "folder", lambda: Path(tmp_path))
    assert _items(jl.show_config())["compilation cache"] == str(tmp_path)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"n_classes": 1}, "n_classes must be an integer >= 2, got 1"),
    ({"n_samples": 0}, "n_samples must be an integer >= 1, got 0"),
    ({"dtype": "float16"}, "dtype must be one of"),
])
def test_a_bad_shape_is_an_error_naming_it(kwargs, message):
    with pytest.raises(ValueError, match=message):
        jl.show_config(**kwargs)
