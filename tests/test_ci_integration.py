"""What CI users copy: action.yml and the README's "Use it in CI" snippets validate against
the published schemas (vendored by check-jsonschema), and the bnlint commands they run
work on the examples."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from ruamel.yaml import YAML  # YAML 1.2, as GitHub reads it (`on:` is a key, not a boolean)

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")
yaml = YAML(typ="safe", pure=True)
ACTION = yaml.load((REPO / "action.yml").read_text(encoding="utf-8"))


def schema(name: str) -> dict[str, Any]:
    vendored = resources.files("check_jsonschema").joinpath("builtin_schemas", "vendor", f"{name}.json")
    return json.loads(vendored.read_text(encoding="utf-8"))


def validate(document: Any, name: str) -> None:
    rules = schema(name)
    jsonschema.validators.validator_for(rules)(rules).validate(document)


def snippet(first_line: str) -> str:
    """The README's yaml block that starts with `# <file name>`."""
    match = re.search(rf"```yaml\n# {re.escape(first_line)}\n(.*?)```", README, re.S)
    assert match, f"no snippet for {first_line} in the README"
    return match.group(1)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project whose `src` holds two of the examples (findings in a module and a notebook)."""
    (tmp_path / "src").mkdir()
    for name in ("resnet.py", "notebook.ipynb"):
        shutil.copy(REPO / "examples" / name, tmp_path / "src" / name)
    return tmp_path


def run_bnlint(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    words = shlex.split(command)
    assert words[0] == "bnlint"
    return subprocess.run([sys.executable, "-m", "bnlint", *words[1:]], cwd=cwd, capture_output=True, text=True,
                          check=False)


# --- the action ---------------------------------------------------------------------------


def test_action_validates_against_the_actions_metadata_schema() -> None:
    validate(ACTION, "github-actions")
    assert ACTION["runs"]["using"] == "composite"


def test_action_inputs_are_documented_and_reach_scripts_through_the_environment() -> None:
    for name, spec in ACTION["inputs"].items():
        assert f"| `{name}` |" in README, f"input {name} is not in the README's table"
        assert spec["description"]
    for step in ACTION["runs"]["steps"]:
        assert "${{" not in step["run"], "inputs go through env, never into the script"


def test_action_steps_annotate_and_write_sarif_on_the_examples(project: Path, tmp_path: Path) -> None:
    scripts = [step for step in ACTION["runs"]["steps"] if "bnlint check" in step["run"]]
    binaries = tmp_path / "bin"
    binaries.mkdir()
    (binaries / "bnlint").write_text(f"#!/bin/sh\nexec {sys.executable} -m bnlint \"$@\"\n")
    (binaries / "bnlint").chmod(0o755)
    inputs = {"BNLINT_PATHS": "src", "BNLINT_ARGS": "--no-cache --fail-on error", "BNLINT_SARIF": "bnlint.sarif"}
    environment = {**os.environ, **inputs, "PATH": f"{binaries}{os.pathsep}{os.environ['PATH']}"}
    outcomes = [subprocess.run(["bash", "-c", step["run"]], cwd=project, env=environment, capture_output=True,
                               text=True, check=False) for step in scripts]
    sarif, annotate = outcomes
    assert sarif.returncode == 0, sarif.stderr  # the log is written whatever was found
    log = json.loads((project / "bnlint.sarif").read_text())
    assert log["runs"][0]["results"]
    assert annotate.returncode == 1  # the examples have errors: the job fails
    assert re.search(r"^::error file=src/resnet\.py,line=40,", annotate.stdout, re.M)


# --- the README's snippets ----------------------------------------------------------------


def test_github_workflow_snippet() -> None:
    workflow = yaml.load(snippet(".github/workflows/bnlint.yml"))
    validate(workflow, "github-workflows")
    step = next(step for step in workflow["jobs"]["bnlint"]["steps"] if "bnlint" in step["uses"].split("/")[0])
    assert set(step["with"]) <= set(ACTION["inputs"])


def test_gitlab_snippet_validates_and_its_reports_parse(project: Path) -> None:
    pipeline = yaml.load(snippet(".gitlab-ci.yml"))
    validate(pipeline, "gitlab-ci")
    commands = [line for line in pipeline["bnlint"]["script"] if line.startswith("bnlint ")]
    junit, codequality = (run_bnlint(command, project) for command in commands)
    assert junit.returncode == 0 and codequality.returncode == 1  # the second one fails the job
    reports = pipeline["bnlint"]["artifacts"]["reports"]
    issues = json.loads((project / reports["codequality"]).read_text())
    assert issues and all({"description", "check_name", "fingerprint", "severity", "location"} <= set(i) for i in issues)
    assert ET.parse(project / reports["junit"]).getroot().tag == "testsuites"


def test_azure_snippet_validates_and_its_commands_run(project: Path) -> None:
    pipeline = yaml.load(snippet("azure-pipelines.yml"))
    validate(pipeline, "azure-pipelines")
    commands = [step["script"] for step in pipeline["steps"] if step.get("script", "").startswith("bnlint ")]
    report, issues = (run_bnlint(command, project) for command in commands)
    assert report.returncode == 0
    assert ET.parse(project / "bnlint-junit.xml").getroot().tag == "testsuites"
    assert issues.returncode == 1 and issues.stdout.startswith("##vso[task.logissue type=")


def test_pre_commit_snippet_uses_the_published_hooks() -> None:
    config = yaml.load(snippet(".pre-commit-config.yaml"))
    hooks = {hook["id"] for hook in yaml.load((REPO / ".pre-commit-hooks.yaml").read_text())}
    used = {hook["id"] for repo in config["repos"] for hook in repo["hooks"]}
    assert used <= hooks and config["ci"]["autofix_prs"] is True
