"""`[tool.bnlint]`: find it, validate it, and answer "is this rule on for this file?".

Selection follows ruff: `select` chooses the rules (default "ALL"), `extend-select` adds,
`ignore` removes, `per-file-ignores` removes for matching files. BN000 (syntax-error) is on
whatever `select` says, unless an `ignore` selector names it. The command line is a layer
above the file, as in ruff: its `--extend-select` turns on a rule the file ignores.

Layers of a table, lowest first: a table named by `extend = "../pyproject.toml"` (its keys,
replaced by the extending table's), the file's own table, then `--config KEY=VALUE`
overrides. `Config.origins` says where each key's value came from (`--show-settings`).
Every problem is reported as one line naming the file (or the override), the key and what
is accepted.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pathspec

from bnlint import registry
from bnlint.diagnostics import Severity
from bnlint.errors import ConfigError, UsageError
from bnlint.input_specs import split_spec
from bnlint.paths import display_path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

SYNTAX_ERROR_CODE = "BN000"
ALL_SELECTOR = "ALL"
_SELECTOR_HELP = "ALL, a rule code (BN304), a code prefix (BN3) or a rule name (redundant-bias)"
_TOML_TYPE_NAMES = {
    bool: "boolean", int: "integer", float: "float", str: "string", list: "array", tuple: "array", dict: "table"
}  # fmt: skip


@dataclass(frozen=True)
class Config:
    root: Path  # directory of the pyproject.toml used, or the cwd
    select: tuple[str, ...] = (ALL_SELECTOR,)
    ignore: tuple[str, ...] = ()
    extend_select: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()  # gitignore-style, relative to root, on top of the default skips
    per_file_ignores: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # pattern -> selectors
    fail_on: Severity = Severity.WARNING
    respect_gitignore: bool = True
    rule_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # by rule code
    source: Path | None = None  # the file the configuration came from
    origins: Mapping[str, str] = field(default_factory=dict, compare=False)  # TOML key -> where it was set
    src: tuple[str, ...] = ()  # the project's source roots, relative to root (default: the project root)

    @cached_property
    def enabled_codes(self) -> frozenset[str]:
        """The rules on for files no per-file-ignores pattern matches."""
        selected = resolve_selectors(self.select) | resolve_selectors(self.extend_select) | {SYNTAX_ERROR_CODE}
        return selected - resolve_selectors(self.ignore)

    @cached_property
    def _compiled_per_file_ignores(self) -> tuple[tuple[pathspec.GitIgnoreSpec, frozenset[str]], ...]:
        return tuple(
            (pathspec.GitIgnoreSpec.from_lines([pattern]), resolve_selectors(selectors))
            for pattern, selectors in self.per_file_ignores.items()
        )

    def is_enabled(self, code: str, path: Path | str | None = None) -> bool:
        """Whether findings of `code` are reported (for `path`, when given).

        Per-file-ignores patterns are gitignore-style and relative to `root`; a file outside
        `root` matches none of them.
        """
        if code not in self.enabled_codes:
            return False
        if path is None or not self.per_file_ignores:
            return True
        relative = _relative_to(Path(path), self.root)
        if relative is None:
            return True
        return not any(code in codes and spec.match_file(relative) for spec, codes in self._compiled_per_file_ignores)

    def option(self, code: str, name: str) -> Any:
        """The configured value of a rule option, or the rule's default."""
        configured = self.rule_options.get(code, {})
        if name in configured:
            return configured[name]
        return _option_defaults()[code][name]

    def fingerprint(self) -> str:
        """A stable hash of everything that changes which findings a file gets (cache keys)."""
        state = {
            "root": str(self.root),
            "enabled": sorted(self.enabled_codes),
            "per_file_ignores": {
                pattern: sorted(resolve_selectors(selectors)) for pattern, selectors in self.per_file_ignores.items()
            },
            "rule_options": {code: dict(options) for code, options in self.rule_options.items()},
            "src": list(self.src),
        }
        encoded = json.dumps(state, sort_keys=True, default=str).encode()
        return hashlib.sha256(encoded).hexdigest()

    def describe(self) -> str:
        """The resolved settings as TOML, each key with where its value came from (--show-settings)."""
        values: dict[str, Any] = {
            "select": list(self.select),
            "extend-select": list(self.extend_select),
            "ignore": list(self.ignore),
            "exclude": list(self.exclude),
            "per-file-ignores": {pattern: list(codes) for pattern, codes in self.per_file_ignores.items()},
            "fail-on": self.fail_on.value,
            "respect-gitignore": self.respect_gitignore,
            "rule-options": {code: dict(options) for code, options in self.rule_options.items()},
        }
        source = "none (defaults)" if self.source is None else str(self.source)
        lines = [f"# configuration file: {source}", f"# root: {self.root}"]
        lines += [f"{key} = {json.dumps(value)}  # {self.origins.get(key, 'default')}" for key, value in values.items()]
        lines.append(f"# enabled rules: {', '.join(sorted(self.enabled_codes))}")
        return "\n".join(lines) + "\n"

    def with_overrides(
        self,
        *,
        select: Iterable[str] | None = None,
        ignore: Iterable[str] | None = None,
        extend_select: Iterable[str] | None = None,
        exclude: Iterable[str] | None = None,
        extend_exclude: Iterable[str] | None = None,
        fail_on: Severity | str | None = None,
    ) -> Config:
        """Apply command-line options on top of the file's configuration, like ruff's layers.

        A `select` starts over: the file's selection is dropped. Otherwise the file's
        selection is resolved first, then `extend_select` adds to it (also what the file
        ignores) and `ignore` removes. `exclude` replaces the file's, `extend_exclude` adds.
        Unknown selectors raise UsageError.
        """
        changes: dict[str, Any] = {}
        origins = dict(self.origins)
        if select is not None or ignore is not None or extend_select is not None:
            added = _checked_selectors(extend_select or ())
            carried: tuple[str, ...] = ()
            if select is not None:
                base: tuple[str, ...] = _checked_selectors(select)
            else:  # the file's layer, resolved; BN000 stays off where the file ignored it
                base = tuple(sorted(self.enabled_codes))
                if SYNTAX_ERROR_CODE not in self.enabled_codes | resolve_selectors(added):
                    carried = (SYNTAX_ERROR_CODE,)
            changes |= {"select": base, "extend_select": added,
                        "ignore": (*carried, *_checked_selectors(ignore or ()))}
            origins |= dict.fromkeys(("select", "extend-select", "ignore"), "command line")
        if exclude is not None or extend_exclude is not None:
            changes["exclude"] = (*(self.exclude if exclude is None else exclude), *(extend_exclude or ()))
            origins["exclude"] = "command line"
        if fail_on is not None:
            changes["fail_on"] = parse_severity(fail_on)
            origins["fail-on"] = "command line"
        return dataclasses.replace(self, **changes, origins=origins)


def resolve_selectors(selectors: Iterable[str]) -> frozenset[str]:
    """The rule codes a list of selectors names; UsageError names the first unknown one."""
    rules = registry.all_rules()
    codes: set[str] = set()
    for selector in selectors:
        key = selector.strip()
        if key.upper() == ALL_SELECTOR:
            codes.update(code for code, rule in rules.items() if not rule.opt_in)
            continue
        rule = registry.find_rule(key)
        if rule is not None:
            codes.add(rule.code)
            continue
        matched = {code for code, rule in rules.items()
                   if key.upper().startswith("BN") and code.startswith(key.upper()) and not rule.opt_in}
        if not matched:
            candidates = [ALL_SELECTOR, *rules, *(rule.name for rule in rules.values())]
            suggestion = _suggestion(selector, candidates)
            raise UsageError(f"unknown rule selector '{selector}'{suggestion}; expected {_SELECTOR_HELP}")
        codes.update(matched)
    return frozenset(codes)


def parse_severity(value: Severity | str) -> Severity:
    if isinstance(value, Severity):
        return value
    try:
        return Severity(value.lower())
    except ValueError:
        accepted = ", ".join(f"'{severity.value}'" for severity in Severity)
        raise UsageError(f"unknown severity '{value}'; expected one of {accepted}") from None


def load_config(start: Path, explicit: Path | None = None, overrides: Iterable[str] = ()) -> Config:
    """The configuration for a run started at `start` (a directory or file).

    Without `explicit`, the nearest pyproject.toml upward from `start` that has a
    `[tool.bnlint]` table is used (others are skipped); without one, the defaults with the
    cwd as root. `explicit` may be any TOML file holding a `[tool.bnlint]` table, or the
    bnlint table at its top level (a pyproject.toml without the table means the defaults).
    `overrides` are `KEY=VALUE` strings in TOML (`fail-on="error"`, `select=["BN3"]`,
    `rule-options.BN203.threshold=4`), applied last.
    """
    table: dict[str, Any] = {}
    source: Path | None = None
    section = ""
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigError(f"config file not found: {explicit}")
        source = explicit
        table, section = _bnlint_table(_read_toml(explicit), explicit)
    else:
        directory = start.absolute()
        if not directory.is_dir():
            directory = directory.parent
        for candidate_dir in (directory, *directory.parents):
            candidate = candidate_dir / "pyproject.toml"
            if candidate.is_file():
                tool = _read_toml(candidate).get("tool", {})
                if isinstance(tool, dict) and "bnlint" in tool:
                    source, table, section = candidate, tool["bnlint"], _TOOL_SECTION
                    break
    origins: dict[str, str] = {}
    if source is not None:
        table = _with_extended(table, source, section, origins, seen=())
    if overrides:
        override_table = _override_table(overrides, origins)
        _build(override_table, _OVERRIDES, "", {})  # a bad override is reported as such
        table = {**table, **override_table}
    return _build(table, source or _OVERRIDES, section, origins)


_TOOL_SECTION = "[tool.bnlint] "
_OVERRIDES = Path("--config")  # where `--config KEY=VALUE` overrides come from (no file)


def _bnlint_table(document: dict[str, Any], path: Path) -> tuple[Any, str]:
    """The bnlint table of a TOML document: `[tool.bnlint]` when there is one (any file
    name), else the top level, except for a pyproject.toml (whose other tables are not ours)."""
    tool = document.get("tool")
    if isinstance(tool, dict) and "bnlint" in tool:
        return tool["bnlint"], _TOOL_SECTION
    if path.name == "pyproject.toml":
        return {}, _TOOL_SECTION
    if "tool" in document:
        raise ConfigError(f"{display_path(path)}: has a [tool] table but no [tool.bnlint]; expected bnlint's keys "
                          "at the top level or under [tool.bnlint]")
    return document, ""


def _with_extended(table: Any, source: Path, section: str, origins: dict[str, str],
                   seen: tuple[Path, ...]) -> Any:
    """`table` on top of the table its `extend` names (recursively), recording origins."""
    if not isinstance(table, dict):
        return table  # _build says what is wrong
    merged: dict[str, Any] = {}
    extend = table.get("extend")
    if extend is not None:
        if not isinstance(extend, str):
            raise _TableReader(source, section).error(f"extend must be a path (a string), not {_describe(extend)}")
        base = (source.parent / extend).resolve()
        if base in seen or base == source.resolve():
            raise _TableReader(source, section).error(f"extend: {extend} extends itself (through {display_path(base)})")
        if not base.is_file():
            raise _TableReader(source, section).error(f"extend: file not found: {extend}")
        base_table, base_section = _bnlint_table(_read_toml(base), base)
        merged = _with_extended(base_table, base, base_section, origins, (*seen, source.resolve()))
    for key, value in table.items():
        if key != "extend":
            merged[key] = value
            origins[key] = display_path(source)
    return merged


def _override_table(overrides: Iterable[str], origins: dict[str, str]) -> dict[str, Any]:
    """`--config KEY=VALUE` strings as one table (later ones win), each parsed as TOML."""
    table: dict[str, Any] = {}
    for text in overrides:
        try:
            parsed = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"--config {text!r}: not a KEY=VALUE pair in TOML ({error}); "
                              "strings need quotes: fail-on=\"error\"") from None
        for key, value in parsed.items():
            if key == "extend":
                raise ConfigError(f"--config {text!r}: extend works in a file; name the file with --config FILE")
            if isinstance(value, dict) and isinstance(table.get(key), dict):
                table[key] = {**table[key], **value}
            else:
                table[key] = value
            origins[key] = f"--config {text}"
    return table


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"{display_path(path)}: cannot read: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{display_path(path)}: not valid UTF-8") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{display_path(path)}: invalid TOML: {error}") from None


class _TableReader:
    """Reads one bnlint table, turning every problem into a ConfigError that names the key."""

    def __init__(self, source: Path, section: str) -> None:
        self.prefix = f"{display_path(source)}: {section}"

    def error(self, message: str) -> ConfigError:
        return ConfigError(self.prefix + message)

    def strings(self, key: str, value: Any) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self.error(f"{key} must be an array of strings, not {_describe(value)}")
        return tuple(value)

    def selectors(self, key: str, value: Any) -> tuple[str, ...]:
        selectors = self.strings(key, value)
        try:
            resolve_selectors(selectors)
        except UsageError as error:
            raise self.error(f"{key}: {error}") from None
        return selectors


_KEYS = (
    "extend",  # a TOML file whose bnlint table this one builds on
    "select", "ignore", "extend-select", "exclude", "per-file-ignores", "fail-on", "respect-gitignore", "rule-options",
    "src",  # the project's source roots (`src = ["src", "tests"]`), like ruff's
    "verify",  # `bnlint verify`'s settings, read and checked by bnlint.runtime
)  # fmt: skip


def _build(table: Any, source: Path, section: str, origins: dict[str, str]) -> Config:
    reader = _TableReader(source, section)
    if not isinstance(table, dict):
        what = section.strip() or "the file"
        raise ConfigError(f"{display_path(source)}: {what} must be a table, not {_describe(table)}")
    for key in table:
        if key not in _KEYS:
            raise reader.error(f"unknown key '{key}'{_suggestion(key, _KEYS)}; accepted keys: {', '.join(_KEYS)}")
    if source is _OVERRIDES:
        settings: dict[str, Any] = {"root": Path.cwd(), "origins": origins}
    else:
        settings = {"root": source.parent.absolute(), "source": source, "origins": origins}
    for key in ("select", "ignore", "extend-select"):
        if key in table:
            settings[key.replace("-", "_")] = reader.selectors(key, table[key])
    if "exclude" in table:
        settings["exclude"] = reader.strings("exclude", table["exclude"])
        try:
            pathspec.GitIgnoreSpec.from_lines(settings["exclude"])
        except ValueError as error:
            raise reader.error(f"exclude: invalid pattern: {error}") from None
    if "per-file-ignores" in table:
        settings["per_file_ignores"] = _per_file_ignores(reader, table["per-file-ignores"])
    if "src" in table:
        settings["src"] = reader.strings("src", table["src"])
    if "fail-on" in table:
        settings["fail_on"] = _fail_on(reader, table["fail-on"])
    if "respect-gitignore" in table:
        settings["respect_gitignore"] = _checked_option(reader, "respect-gitignore", table["respect-gitignore"], True)
    if "rule-options" in table:
        settings["rule_options"] = _rule_options(reader, table["rule-options"])
    if "verify" in table:
        verify_inputs(table["verify"], reader.prefix)
    return Config(**settings)


def verify_inputs(table: Any, prefix: str) -> dict[str, Any]:
    """The inputs a `[tool.bnlint.verify]` table (`bnlint verify`'s settings) gives, as
    `--input-shape` spellings: {"default": [...], "models": {name: [...]}}; ConfigError
    (after `prefix`) for anything else in it."""
    if not isinstance(table, dict):
        raise ConfigError(f"{prefix}verify must be a table (input-shape = [N, C, ...]), not {_describe(table)}")
    unknown = sorted(set(table) - {"input-shape", "models"})
    if unknown:
        raise ConfigError(f"{prefix}verify: unknown key '{unknown[0]}'; accepted keys: input-shape, models")
    models = table.get("models", {})
    if not isinstance(models, dict):
        raise ConfigError(f"{prefix}verify.models must be a table of model = input shapes, not {_describe(models)}")
    return {"default": _input_specs(f"{prefix}verify.input-shape", table.get("input-shape", [])),
            "models": {name: _input_specs(f"{prefix}verify.models.{name}", value) for name, value in models.items()}}


def _input_specs(where: str, value: Any) -> list[str]:
    """`[N, C, H, W]` (one input) or `["N,C", "h=N,H", "N,T:int"]` (several), checked."""
    if isinstance(value, list) and value and all(type(n) is int for n in value):
        value = [",".join(map(str, value))]
    if not isinstance(value, list) or not all(isinstance(spec, str) for spec in value):
        raise ConfigError(f'{where} takes [N, C, H, W] or a list of input shapes such as ["8,16", "h=8,32"], '
                          f"not {_describe(value)}")
    for spec in value:
        try:
            split_spec(spec)
        except ValueError as error:
            raise ConfigError(f"{where}: {error}") from None
    return value


def _per_file_ignores(reader: _TableReader, value: Any) -> Mapping[str, tuple[str, ...]]:
    if not isinstance(value, dict):
        raise reader.error(f"per-file-ignores must be a table of pattern = [selectors], not {_describe(value)}")
    for pattern in value:
        try:
            pathspec.GitIgnoreSpec.from_lines([pattern])
            _check_brackets(pattern)
        except ValueError as error:
            raise reader.error(f'per-file-ignores: invalid pattern "{pattern}": {error}') from None
    return {
        pattern: reader.selectors(f'per-file-ignores."{pattern}"', selectors) for pattern, selectors in value.items()
    }


def _check_brackets(pattern: str) -> None:
    """ValueError for a `[` without its `]`: git matches nothing with such a pattern, which
    would turn the ignore off without a word (pathspec accepts it too)."""
    position = 0
    while position < len(pattern):
        character = pattern[position]
        if character == "\\":
            position += 2
            continue
        if character == "[":
            first = position + 1 + (pattern[position + 1: position + 2] in ("!", "^"))
            closing = pattern.find("]", first + 1)
            if closing < 0:
                raise ValueError(f"'[' at column {position + 1} is never closed")
            position = closing
        position += 1


def _fail_on(reader: _TableReader, value: Any) -> Severity:
    if not isinstance(value, str):
        raise reader.error(f"fail-on must be a string, not {_describe(value)}")
    try:
        return parse_severity(value)
    except UsageError:
        accepted = ", ".join(f"'{severity.value}'" for severity in Severity)
        raise reader.error(f"fail-on must be one of {accepted}, not '{value}'") from None


def _rule_options(reader: _TableReader, value: Any) -> Mapping[str, Mapping[str, Any]]:
    if not isinstance(value, dict):
        raise reader.error(f"rule-options must be a table keyed by rule code, not {_describe(value)}")
    defaults = _option_defaults()
    by_code: dict[str, Mapping[str, Any]] = {}
    for key, options in value.items():
        rule = registry.find_rule(key)
        if rule is None:
            known = [*registry.all_rules(), *(info.name for info in registry.all_rules().values())]
            raise reader.error(f"rule-options: unknown rule '{key}'{_suggestion(key, known)}")
        accepted = defaults.get(rule.code, {})
        if not accepted:
            raise reader.error(f"rule-options: rule {rule.code} ({rule.name}) has no options")
        if not isinstance(options, dict):
            raise reader.error(f"rule-options.{key} must be a table of options, not {_describe(options)}")
        checked: dict[str, Any] = dict(by_code.get(rule.code, {}))
        for name, option_value in options.items():
            where = f"rule-options.{key}.{name}"
            if name not in accepted:
                raise reader.error(
                    f"rule-options.{key}: unknown option '{name}'{_suggestion(name, accepted)}; "
                    f"accepted: {', '.join(accepted)}"
                )
            checked[name] = _checked_option(reader, where, option_value, accepted[name])
        by_code[rule.code] = checked
    return by_code


def _checked_option(reader: _TableReader, where: str, value: Any, default: Any) -> Any:
    """`value` converted to the default's type (ints are accepted for floats)."""
    if default is None:
        return value
    expected = type(default)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(default, (list, tuple)):
        element_type = type(default[0]) if default else None
        if isinstance(value, list) and all(element_type is None or type(item) is element_type for item in value):
            return expected(value)
        elements = f" of {_type_name(element_type)}s" if element_type else ""
        raise reader.error(f"{where} must be an array{elements}, not {_describe(value)}")
    if type(value) is not expected:
        raise reader.error(f"{where} must be {_with_article(_type_name(expected))}, not {_describe(value)}")
    return value


def _option_defaults() -> dict[str, dict[str, Any]]:
    # Imported here: the checks package imports the whole rule set, which loading a
    # configuration without rule options never needs.
    from bnlint.checks import option_defaults

    return option_defaults()


def _checked_selectors(selectors: Iterable[str]) -> tuple[str, ...]:
    selectors = tuple(selectors)
    resolve_selectors(selectors)
    return selectors


def _relative_to(path: Path, root: Path) -> str | None:
    """`path` relative to `root` with forward slashes, or None when it lies outside."""
    absolute, base = os.path.abspath(path), os.path.abspath(root)
    if not absolute.startswith(base.rstrip(os.sep) + os.sep):
        return None
    return Path(os.path.relpath(absolute, base)).as_posix()


def _suggestion(word: str, candidates: Iterable[str]) -> str:
    matches = difflib.get_close_matches(word, list(candidates), n=1)
    return f" (did you mean '{matches[0]}'?)" if matches else ""


def _type_name(kind: type) -> str:
    return _TOML_TYPE_NAMES.get(kind, kind.__name__)


def _with_article(noun: str) -> str:
    return ("an " if noun[0] in "aeiou" else "a ") + noun


def _describe(value: Any) -> str:
    """`a string ('8')`: how a wrong value is shown in messages."""
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
    return f"{_with_article(_type_name(type(value)))} ({shown})"
