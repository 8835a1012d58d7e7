"""``jaxlogreg --version`` and ``jaxlogreg --version --verbose`` (the environment report of
:func:`jaxlogreg.show_config`), in process through ``main``."""

from __future__ import annotations

import pytest

import jaxlogreg as jl
from jaxlogreg.cli import main as cli_main
from jaxlogreg.kernels import native


def test_version_prints_the_version(capsys):
    assert cli_main(["--version"]) == 0
    assert capsys.readouterr().out == f"jaxlogreg {jl.__version__}\n"


def test_version_verbose_prints_the_report_and_whether_the_c_kernel_builds(capsys, monkeypatch):
    asked = []
    monkeypatch.setenv(native.SWITCH, "1")
    monkeypatch.setattr(native, "build_error", lambda: asked.append(1) or "no C compiler")
    assert cli_main(["--version", "--verbose"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"jaxlogreg: {jl.__version__}\njax: ")
    assert "\ncompilation cache: " in out and "\ndense fit 10000 x 100, 2 classes" in out
    if "\nbackend: cpu\n" in out:
        assert "\nC kernel: not available: no C compiler\n" in out and asked


@pytest.mark.parametrize(("argv", "message"), [
    (["--verbose", "train"], "--verbose goes with --version"),
    ([], "the following arguments are required: COMMAND"),
])
def test_verbose_without_version_and_no_command_are_errors(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_:
        cli_main(argv)
    assert exit_.value.code == 2 and message in capsys.readouterr().err
