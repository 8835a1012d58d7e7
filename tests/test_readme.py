"""The README's promises that CI relies on (its two quick-start commands, CI's test command),
and the documentation kept true: a short README, links that resolve, benchmark tables that are
the committed results."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from benchmarks import report, tables

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "benchmarks" / "README.md"]
README_MAX_LINES = 200


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
    # only plots and Inference.to_frame are optional (imported lazily)
    assert {"matplotlib", "pandas"} >= names - declared


# ------------------------------------------------------------------ the documentation


def test_the_readme_is_short():
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move detail to docs/"


_FENCE = re.compile(r"^```.*?^```", re.DOTALL | re.MULTILINE)
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def _prose(text: str) -> str:
    """Markdown without its fenced code blocks (their brackets are code, not links)."""
    return _FENCE.sub("", text)


def _anchors(path: Path) -> set[str]:
    """GitHub's anchors of the headings of a Markdown file (lower case, punctuation dropped,
    spaces to hyphens, -1, -2, ... for repeats)."""
    anchors: set[str] = set()
    repeats: dict[str, int] = {}
    for line in _prose(path.read_text(encoding="utf-8")).splitlines():
        heading = re.match(r"#{1,6} (.*)", line)
        if heading:
            slug = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower()).replace(" ", "-")
            n = repeats.get(slug, 0)
            repeats[slug] = n + 1
            anchors.add(slug if n == 0 else f"{slug}-{n}")
    return anchors


def _broken_links(page: Path) -> list[str]:
    broken = []
    for target in _LINK.findall(_prose(page.read_text(encoding="utf-8"))):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        linked = (page.parent / file_part).resolve() if file_part else page
        if not linked.exists():
            broken.append(f"{target} (no file {linked})")
        elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
            broken.append(f"{target} (no heading #{anchor} in {linked.name})")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_relative_link_points_to_an_existing_file_and_heading(page):
    assert _broken_links(page) == []


def test_the_link_check_finds_a_missing_file_and_a_missing_heading(tmp_path):
    (tmp_path / "other.md").write_text("# Present\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text("[a](other.md#present) [b](missing.md) [c](other.md#absent) [d](#here)\n"
                    "## Here\n```\n[e](in-code.md)\n```\n", encoding="utf-8")
    assert _broken_links(page) == [
        f"missing.md (no file {tmp_path / 'missing.md'})",
        "other.md#absent (no heading #absent in other.md)",
    ]


def test_benchmark_tables_are_the_committed_results():
    readme = (REPO / "benchmarks" / "README.md").read_text(encoding="utf-8")
    assert tables.render(readme) == readme, "run python benchmarks/tables.py"


def test_every_results_file_is_in_the_benchmark_readme():
    readme = (REPO / "benchmarks" / "README.md").read_text(encoding="utf-8")
    assert "<!-- table: machines -->" in readme and "<!-- table: targets -->" in readme
    for source in tables.sources(tables.RESULTS):
        assert f"(results/{source.removesuffix('.json')}.md)" in readme, source


_DURATION = re.compile(r"\b\d+(?:\.\d+)?\s?(?:ms|s|min|minutes|seconds|hours)\b")


def test_no_retold_timings_outside_the_generated_tables():
    """Timings live in benchmarks/results/*.json; the READMEs show them only as rendered tables."""
    for page in (REPO / "README.md", REPO / "benchmarks" / "README.md"):
        text = re.sub(r"<!-- table: [\w-]+ -->.*?<!-- /table -->", "",
                      page.read_text(encoding="utf-8"), flags=re.DOTALL)
        assert _DURATION.findall(text) == [], page.name


@pytest.mark.parametrize(
    "text, message",
    [
        ("<!-- table: nothing -->\n<!-- /table -->", "unknown table name(s) ['nothing']"),
        ("<!-- table: cv -->\nno end", "needs its own '<!-- /table -->'"),
        ("<!-- table: cv -->\n<!-- table: sparse -->\n<!-- /table -->",
         "needs its own '<!-- /table -->'"),
    ],
)
def test_tables_refuse_unknown_or_unclosed_regions(text, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        tables.render(text)


def test_tables_name_a_missing_results_file_and_a_missing_column(tmp_path):
    with pytest.raises(FileNotFoundError, match="cv.json is missing"):
        tables.render("<!-- table: cv -->\n<!-- /table -->", tmp_path)
    (tmp_path / "cv.json").write_text('{"rows": [{"m": 1}]}', encoding="utf-8")
    with pytest.raises(ValueError, match=r"no row has the column\(s\) \['n', "):
        tables.render("<!-- table: cv -->\n<!-- /table -->", tmp_path)


def test_a_pipe_in_a_column_name_stays_one_column():
    # cv.json's column "max |coef_ - sklearn|" split its header into three cells before
    header, rule, row = report.markdown_table([{"max |d|": 1.0, "n": 2}]).splitlines()
    assert header == "| max \\|d\\| | n |" and rule == "|---|---|" and row == "| 1 | 2 |"


def test_tables_render_and_check_from_the_command_line(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text("<!-- table: scaling-slopes -->\nstale\n<!-- /table -->\n", encoding="utf-8")
    assert tables.main(["--readme", str(readme), "--check"]) == 1
    assert "run python benchmarks/tables.py" in capsys.readouterr().err
    assert tables.main(["--readme", str(readme)]) == 0
    assert "| series | slope |" in readme.read_text(encoding="utf-8")
    assert tables.main(["--readme", str(readme), "--check"]) == 0
