"""The README's promises that CI relies on: its two quick-start commands and CI's test command."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _quick_start_commands() -> list[str]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", section, re.DOTALL)]


def test_quick_start_has_two_commands_install_and_run_then_install_and_test():
    commands = _quick_start_commands()
    assert len(commands) == 2, commands
    main_job, tests = commands
    assert "\n" not in main_job and "\n" not in tests
    assert "pip install ." in main_job and main_job.endswith("jaxlogreg train")
    assert "pip install -e '.[test]'" in tests and tests.endswith("python -m pytest")


def test_ci_runs_the_readme_test_command_verbatim():
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert _quick_start_commands()[1] in ci.splitlines()


def test_the_test_extra_installs_what_the_tests_import():
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    names = {re.split(r"[<>=\[]", req)[0] for req in extras["test"]}
    assert {"pytest", "hypothesis", "matplotlib"} <= names


def test_every_third_party_import_of_the_package_is_declared():
    import ast
    import sys

    distribution = {"sklearn": "scikit-learn"}  # import name -> PyPI name where they differ
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = {re.split(r"[<>=\[ ]", req)[0] for req in project["dependencies"]}
    optional = {re.split(r"[<>=\[ ]", req)[0] for reqs in project["optional-dependencies"].values()
                for req in reqs}
    imported = set()
    for path in (REPO / "jaxlogreg").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = {m for m in imported if m not in sys.stdlib_module_names and m != "jaxlogreg"}
    names = {distribution.get(m, m) for m in third_party}
    assert "scipy" in names  # imported by the estimator
    assert names <= declared | optional, names - declared - optional
    assert {"matplotlib"} >= names - declared  # only plots are optional (imported lazily)
