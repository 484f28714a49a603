"""`[tool.bnlint]`: rule selection, lookup of the nearest configuration, and its errors."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from bnlint import registry
from bnlint.config import Config, load_config, resolve_selectors
from bnlint.diagnostics import Severity
from bnlint.errors import ConfigError, UsageError
from bnlint.registry import RuleInfo

CODES = {
    "BN000": "syntax-error",
    "BN203": "small-batch",
    "BN302": "num-features-mismatch",
    "BN303": "bn-dimension-mismatch",
    "BN304": "redundant-bias",
    "BN305": "dropout-before-bn",
    "BN306": "momentum-convention",
}
OPTION_DEFAULTS = {"BN203": {"threshold": 8, "frameworks": ["torch"]}, "BN306": {"limit": 0.5, "strict": False}}


@pytest.fixture(autouse=True)
def catalogue(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fixed rule catalogue and option set, so these tests do not move with the rules."""
    rules = {
        code: RuleInfo(code, name, Severity.WARNING, ("torch",), None, "summary", "")
        for code, name in CODES.items()
    }
    monkeypatch.setattr(registry, "all_rules", lambda: rules)
    monkeypatch.setattr("bnlint.checks.option_defaults", lambda: OPTION_DEFAULTS, raising=False)


def write_pyproject(directory: Path, body: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "pyproject.toml"
    path.write_text(body, encoding="utf-8")
    return path


def config_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, table: str) -> Config:
    monkeypatch.chdir(tmp_path)
    write_pyproject(tmp_path, "[tool.bnlint]\n" + table)
    return load_config(tmp_path)


def enabled(config: Config, path: str | None = None) -> set[str]:
    return {code for code in CODES if config.is_enabled(code, path)}


# --- selection ---------------------------------------------------------------------------


def test_default_selects_every_rule(tmp_path: Path) -> None:
    assert enabled(Config(root=tmp_path)) == set(CODES)


def test_selectors_accept_all_codes_prefixes_and_names() -> None:
    assert resolve_selectors(["ALL"]) == set(CODES)
    assert resolve_selectors(["bn304"]) == {"BN304"}
    assert resolve_selectors(["BN30"]) == {"BN302", "BN303", "BN304", "BN305", "BN306"}
    assert resolve_selectors(["BN2", "dropout-before-bn"]) == {"BN203", "BN305"}


def test_unknown_selector_is_named_with_a_suggestion() -> None:
    with pytest.raises(UsageError, match=r"unknown rule selector 'redundant-bais' \(did you mean 'redundant-bias'\?\)"):
        resolve_selectors(["redundant-bais"])
    with pytest.raises(UsageError, match="unknown rule selector 'BN9'"):
        resolve_selectors(["BN9"])


def test_select_extend_select_and_ignore_combine(tmp_path: Path) -> None:
    config = Config(root=tmp_path, select=("BN30",), extend_select=("small-batch",), ignore=("BN304", "BN305"))
    assert enabled(config) == {"BN000", "BN203", "BN302", "BN303", "BN306"}


def test_syntax_errors_stay_on_unless_ignored_explicitly(tmp_path: Path) -> None:
    assert enabled(Config(root=tmp_path, select=("BN304",))) == {"BN000", "BN304"}
    assert "BN000" not in enabled(Config(root=tmp_path, ignore=("syntax-error",)))


def test_per_file_ignores_match_gitignore_style_relative_to_root(tmp_path: Path) -> None:
    config = Config(root=tmp_path, per_file_ignores={"tests/": ("BN3",), "legacy_*.py": ("redundant-bias",)})
    assert enabled(config, str(tmp_path / "tests" / "unit" / "test_model.py")) == {"BN000", "BN203"}
    assert enabled(config, str(tmp_path / "src" / "legacy_net.py")) == set(CODES) - {"BN304"}
    assert enabled(config, str(tmp_path / "src" / "net.py")) == set(CODES)
    assert enabled(config, "/elsewhere/tests/test_model.py") == set(CODES)  # outside root


def test_command_line_select_starts_over_and_ignore_adds(tmp_path: Path) -> None:
    config = Config(root=tmp_path, select=("BN3",), ignore=("BN304",), extend_select=("BN203",))
    assert enabled(config.with_overrides(select=["BN304"])) == {"BN000", "BN304"}
    assert enabled(config.with_overrides(ignore=["BN305"])) == {"BN000", "BN203", "BN302", "BN303", "BN306"}
    assert config.with_overrides(fail_on="error").fail_on is Severity.ERROR
    with pytest.raises(UsageError, match="unknown rule selector 'BN999'"):
        config.with_overrides(extend_select=["BN999"])
    with pytest.raises(UsageError, match="unknown severity 'fatal'"):
        config.with_overrides(fail_on="fatal")


# --- loading -----------------------------------------------------------------------------


def test_reads_every_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = config_from(
        tmp_path,
        monkeypatch,
        'select = ["BN3"]\nignore = ["BN306"]\nextend-select = ["BN203"]\nexclude = ["generated/"]\n'
        'fail-on = "error"\nrespect-gitignore = false\n'
        '[tool.bnlint.per-file-ignores]\n"tests/*" = ["BN304"]\n'
        "[tool.bnlint.rule-options.small-batch]\nthreshold = 4\n",
    )
    assert config.root == tmp_path
    assert config.source == tmp_path / "pyproject.toml"
    assert (config.select, config.ignore, config.extend_select) == (("BN3",), ("BN306",), ("BN203",))
    assert config.exclude == ("generated/",)
    assert config.fail_on is Severity.ERROR and config.respect_gitignore is False
    assert dict(config.per_file_ignores) == {"tests/*": ("BN304",)}
    assert config.option("BN203", "threshold") == 4  # keyed by name in the file, by code here
    assert config.option("BN306", "limit") == 0.5  # the rule's default


def test_nearest_pyproject_with_a_bnlint_table_wins(tmp_path: Path) -> None:
    write_pyproject(tmp_path, '[tool.bnlint]\nselect = ["BN304"]\n')
    write_pyproject(tmp_path / "pkg", '[project]\nname = "pkg"\n')  # no table: skipped
    write_pyproject(tmp_path / "other", '[tool.bnlint]\nselect = ["BN305"]\n')
    start = tmp_path / "pkg" / "src"
    start.mkdir()
    assert load_config(start).select == ("BN304",)
    assert load_config(start).root == tmp_path
    assert load_config(tmp_path / "other" / "model.py").select == ("BN305",)  # a file as start


def test_without_configuration_the_cwd_is_the_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_config(tmp_path)
    assert config == Config(root=tmp_path)
    assert config.source is None


def test_explicit_file_may_be_a_pyproject_or_a_plain_table(tmp_path: Path) -> None:
    explicit = tmp_path / "bnlint.toml"
    explicit.write_text('select = ["BN302"]\n', encoding="utf-8")
    assert load_config(tmp_path, explicit).select == ("BN302",)
    pyproject = write_pyproject(tmp_path / "cfg", '[tool.bnlint]\nignore = ["BN302"]\n')
    assert load_config(tmp_path, pyproject).ignore == ("BN302",)
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path, tmp_path / "missing.toml")


# --- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('selcet = ["BN3"]\n', "pyproject.toml: [tool.bnlint] unknown key 'selcet' (did you mean 'select'?)"),
        ('extend_select = ["BN3"]\n', "unknown key 'extend_select' (did you mean 'extend-select'?)"),
        ('select = "BN304"\n', "select must be an array of strings, not a string ('BN304')"),
        ('ignore = ["BN3", "BN9"]\n', "ignore: unknown rule selector 'BN9'"),
        ('fail-on = "fatal"\n', "fail-on must be one of 'error', 'warning', 'info', not 'fatal'"),
        ("fail-on = 1\n", "fail-on must be a string, not an integer (1)"),
        ('respect-gitignore = "yes"\n', "respect-gitignore must be a boolean, not a string ('yes')"),
        ('[tool.bnlint.per-file-ignores]\n"tests/*" = ["BN3x"]\n', 'per-file-ignores."tests/*": unknown rule selector'),
        ("[tool.bnlint.rule-options.BN999]\nx = 1\n", "rule-options: unknown rule 'BN999'"),
        ("[tool.bnlint.rule-options.BN304]\nx = 1\n", "rule BN304 (redundant-bias) has no options"),
        (
            "[tool.bnlint.rule-options.BN203]\nthreshhold = 4\n",
            "rule-options.BN203: unknown option 'threshhold' (did you mean 'threshold'?); accepted: threshold, frameworks",
        ),
        ('[tool.bnlint.rule-options.BN203]\nthreshold = "4"\n', "rule-options.BN203.threshold must be an integer, not a string ('4')"),
        ("[tool.bnlint.rule-options.BN203]\nthreshold = true\n", "must be an integer, not a boolean (True)"),
        ("[tool.bnlint.rule-options.BN203]\nframeworks = [1]\n", "rule-options.BN203.frameworks must be an array of strings"),
        ("[tool.bnlint.rule-options.BN306]\nstrict = 1\n", "rule-options.BN306.strict must be a boolean"),
    ],
)
def test_bad_values_are_one_line_naming_file_and_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, table: str, message: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        config_from(tmp_path, monkeypatch, table)
    text = str(raised.value)
    assert "\n" not in text
    assert text.startswith("pyproject.toml: [tool.bnlint] ")
    assert message in text


def test_an_integer_is_accepted_for_a_float_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = config_from(tmp_path, monkeypatch, "[tool.bnlint.rule-options.BN306]\nlimit = 1\n")
    assert config.option("BN306", "limit") == 1.0
    assert isinstance(config.option("BN306", "limit"), float)


def test_broken_toml_names_the_file_and_the_parser_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match=r"^pyproject.toml: invalid TOML: .* \(at line 3, column \d+\)$"):
        config_from(tmp_path, monkeypatch, 'select = ["BN3"]\nignore = 1 2\n')


def test_bnlint_entry_that_is_not_a_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_pyproject(tmp_path, '[tool]\nbnlint = "on"\n')
    with pytest.raises(ConfigError, match=r"pyproject.toml: \[tool.bnlint\] must be a table, not a string"):
        load_config(tmp_path)


# --- fingerprint -------------------------------------------------------------------------


def test_fingerprint_follows_what_changes_findings(tmp_path: Path) -> None:
    base = Config(root=tmp_path, select=("BN3",))
    assert base.fingerprint() == Config(root=tmp_path, select=("BN30",)).fingerprint()  # same rules
    assert base.fingerprint() == base.with_overrides(fail_on="error").fingerprint()  # exit status only
    assert base.fingerprint() != base.with_overrides(ignore=["BN304"]).fingerprint()
    with_options = Config(root=tmp_path, rule_options={"BN203": {"threshold": 4}})
    assert with_options.fingerprint() != Config(root=tmp_path).fingerprint()
    ignoring_tests = Config(root=tmp_path, per_file_ignores={"tests/": ("BN304",)})
    assert ignoring_tests.fingerprint() != Config(root=tmp_path).fingerprint()


def test_configuration_crosses_process_boundaries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = config_from(
        tmp_path, monkeypatch, '[tool.bnlint.per-file-ignores]\n"tests/" = ["BN304"]\n[tool.bnlint.rule-options.BN203]\nthreshold = 4\n'
    )
    assert config.is_enabled("BN304", "src/model.py")  # fills the cached selection first
    copy = pickle.loads(pickle.dumps(config))
    assert copy == config
    assert not copy.is_enabled("BN304", str(tmp_path / "tests" / "test_model.py"))
