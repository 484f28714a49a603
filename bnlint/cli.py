"""The command line: `bnlint check` (the default), `bnlint verify`, `bnlint rule CODE`, `bnlint rules`,
`bnlint server` (bnlint.server).

`bnlint src/` is `bnlint check src/`: when the first argument is not a subcommand, `check`
is assumed (so a directory named like a subcommand needs an explicit `bnlint check rules`).

Exit status (docs/json-contract.md): 0 when nothing is at or above the fail level, 1 when
something is (or --diff has changes to show, or --exit-non-zero-on-fix fixed something), 2
when a file could not be checked (unreadable, undecodable, not a regular file, too big) and
for usage, configuration and internal errors, which print one line on stderr (the traceback
only with BNLINT_DEBUG=1). --exit-zero makes every 1 a 0, as in ruff.

Only `bnlint verify` and `bnlint check --fix --verify` run the user's code, and only in the
worker process of bnlint.runtime (imported on demand: the static command imports neither
torch nor TensorFlow).
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
import traceback
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TextIO

from rich.markdown import Markdown
from rich.text import Text

from bnlint import __version__
from bnlint.config import SYNTAX_ERROR_CODE, Config, load_config
from bnlint.diagnostics import Applicability, Diagnostic, FileResult, Severity
from bnlint.errors import BnlintError, SourceError, UsageError
from bnlint.lifetime import sigterm_as_interrupt
from bnlint.registry import RuleInfo, all_rules, find_rule
from bnlint.report import FORMATS, Report, ReportOptions, check_options, render
from bnlint.report.full import SEVERITY_STYLES
from bnlint.report.summary import make_console, plural, print_table
from bnlint.suppression import UNUSED_NOQA

if TYPE_CHECKING:  # imported where used: the analysis and the runtime checker load on demand
    from bnlint.engine import RunOptions, RunResult
    from bnlint.fixes import FixMode
    from bnlint.runtime import Verification, VerifyOptions

SUBCOMMANDS = ("check", "verify", "rule", "rules", "server")
_TOP_LEVEL_FLAGS = ("-h", "--help", "--version")
_FIX_DESCRIPTIONS = {
    None: "none",
    Applicability.SAFE: "safe (applied by --fix)",
    Applicability.UNSAFE: "unsafe (applied by --fix --unsafe-fixes)",
}


class _Parser(argparse.ArgumentParser):
    """Reports bad arguments like every other usage error: one line, exit 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if not arguments or arguments[0] not in (*SUBCOMMANDS, *_TOP_LEVEL_FLAGS):
        arguments.insert(0, "check")
    try:
        args = _build_parser().parse_args(arguments)
        with sigterm_as_interrupt():
            return args.handler(args)
    except SystemExit as exit_request:  # --help and --version
        return exit_request.code if isinstance(exit_request.code, int) else 0
    except BnlintError as error:
        print(f"bnlint: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bnlint: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `bnlint ... | head`: the reader left; stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as error:  # noqa: BLE001 - the last line of defence: one line, not a traceback
        if os.environ.get("BNLINT_DEBUG") == "1":
            traceback.print_exc()
        else:
            print(
                f"bnlint: internal error: {type(error).__name__}: {error}. This is a bug in bnlint; please "
                "report it with the command you ran (set BNLINT_DEBUG=1 for the traceback).",
                file=sys.stderr,
            )
        return 2


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="bnlint", description="Find and fix batch-normalization misuse in PyTorch and Keras code.")
    parser.add_argument("--version", action="version", version=f"bnlint {__version__}")
    subcommands = parser.add_subparsers(metavar="COMMAND", required=True)

    check = subcommands.add_parser("check", help="lint files and directories (the default command)", add_help=False)
    check.set_defaults(handler=_check)
    options = _add_lint_arguments(check)
    options.add_argument("--fix", action="store_true", help="apply safe fixes in place (--unsafe-fixes adds the unsafe ones)")
    options.add_argument("--unsafe-fixes", action="store_true", help="apply unsafe fixes too (with --fix or --diff)")
    options.add_argument("--show-fixes", action="store_true",
                         help="list the findings fixed (with --fix) or that --fix would fix, per file")
    options.add_argument("--diff", action="store_true", help="print the fixes as diffs, change nothing")
    options.add_argument("--fix-only", action="store_true",
                         help="apply fixes, but report nothing else and exit 0 for findings left (implies --fix)")
    options.add_argument("--verify", action="store_true",
                         help="with --fix: apply only the fixes the runtime checker verified (runs your models)")
    options.add_argument("--add-noqa", action="store_true",
                         help="add `# noqa: CODE` to every line with a finding (adopt bnlint, fix over time)")
    _add_common_arguments(check, fixes=True)

    verify = subcommands.add_parser(
        "verify", help="check each finding on your real model (runs your code, in a separate process)", add_help=False)
    verify.set_defaults(handler=_verify)
    options = _add_lint_arguments(verify)
    options.add_argument("--report", type=Path, metavar="PATH", help="also write an HTML report with plots to PATH")
    _add_common_arguments(verify, fixes=False)

    rule = subcommands.add_parser("rule", help="show a rule's documentation")
    rule.set_defaults(handler=_rule)
    rule.add_argument("rule", metavar="CODE|NAME", help="a rule code (BN304) or name (redundant-bias)")

    server = subcommands.add_parser("server", help="a language server (LSP over stdio) for editors")
    server.set_defaults(handler=_server)

    listing = subcommands.add_parser("rules", help="list the rules")
    listing.set_defaults(handler=_rules)
    listing.add_argument("--format", choices=["table", "json"], default="table", help="output format (default: table)")
    return parser


def _add_lint_arguments(command: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """The path argument and the first group of options (ruff's order); returns the group."""
    command.add_argument("paths", nargs="*", default=["."], metavar="PATH", help="files or directories (default: .)")
    options = command.add_argument_group("Options")
    options.add_argument(
        "--format",
        choices=list(FORMATS),
        help="output format (default: full on a terminal, concise otherwise)",
    )
    options.add_argument("-o", "--output-file", type=Path, metavar="PATH", help="write the report to PATH instead of stdout")
    options.add_argument("--statistics", action="store_true", help="count findings per rule instead of listing them")
    options.add_argument("--report-unused-noqa", action="store_true",
                         help="report `# noqa` comments that suppress nothing (BN001)")
    options.add_argument("--show-files", action="store_true", help="list the files the run would check, and exit")
    options.add_argument("--show-settings", action="store_true",
                         help="show the resolved configuration and where each value comes from, and exit")
    return options


def _add_common_arguments(command: argparse.ArgumentParser, fixes: bool) -> None:
    rules = command.add_argument_group(
        "Rule selection", "comma-separated codes, prefixes such as BN3, rule names, or ALL")
    rules.add_argument("--select", type=_selectors, metavar="RULES", help="check only these rules")
    rules.add_argument("--extend-select", type=_selectors, metavar="RULES",
                       help="check these rules too (also those the configuration ignores)")
    rules.add_argument("--ignore", type=_selectors, metavar="RULES", help="do not check these rules")
    files = command.add_argument_group("File selection")
    files.add_argument("--exclude", type=_selectors, metavar="PATTERNS",
                       help="gitignore-style patterns to skip, replacing the configuration's exclude")
    files.add_argument("--extend-exclude", type=_selectors, metavar="PATTERNS",
                       help="patterns to skip on top of the configuration's exclude")
    misc = command.add_argument_group("Miscellaneous")
    misc.add_argument(
        "--fail-on",
        choices=[severity.value for severity in Severity],
        help="lowest severity that makes the exit status 1 (default: from the configuration, else warning)",
    )
    misc.add_argument("-e", "--exit-zero", action="store_true", help="exit 0 even with findings (2 still means an error)")
    if fixes:
        misc.add_argument("--exit-non-zero-on-fix", action="store_true",
                          help="exit 1 when fixes were applied, even if no finding is left")
    misc.add_argument("-n", "--no-cache", action="store_true", help="ignore and do not write the result cache")
    misc.add_argument("--cache-dir", type=Path, metavar="PATH", help="where to keep the result cache")
    misc.add_argument("--jobs", type=_positive_int, metavar="N", help="worker processes (default: CPU count)")
    misc.add_argument("--project-root", type=Path, metavar="PATH",
                      help="the project the files belong to (default: the nearest folder above them with a "
                           "pyproject.toml, setup.cfg, setup.py or .git)")
    misc.add_argument("--stdin-filename", type=Path, metavar="PATH",
                      help="with `-` as the path: lint stdin as if it were the file PATH in its project "
                           "(--fix writes the fixed source to stdout)")
    misc.add_argument("--no-progress", action="store_true", help="no progress bar (shown only on a terminal)")
    _add_runtime_arguments(command)
    common = command.add_argument_group("Global options")
    common.add_argument("--config", action="append", default=[], metavar="PATH|KEY=VALUE",
                        help="a TOML file ([tool.bnlint] or bnlint's keys at the top level), or a KEY=VALUE "
                             "override in TOML, such as fail-on=\"error\" (repeatable)")
    common.add_argument("--color", choices=["auto", "always", "never"], default="auto",
                        help="colour the output (default: auto, on a terminal unless NO_COLOR is set)")
    common.add_argument("--no-color", dest="color", action="store_const", const="never", help="same as --color never")
    common.add_argument("-h", "--help", action="help", help="show this help and exit")
    common.add_argument("--version", action="version", version=f"bnlint {__version__}")


def _add_runtime_arguments(command: argparse.ArgumentParser) -> None:
    runtime = command.add_argument_group("Runtime checks (bnlint verify, --fix --verify)")
    runtime.add_argument("--model", metavar="MODULE:FACTORY",
                         help="the model to check: a class or function taking no arguments, or a model object "
                              "(default: discovered in each file with findings)")
    runtime.add_argument("--input-shape", type=_input_spec, action="append", metavar="N,C,H,W",
                         help="the shape of the model's input; repeat for each positional argument, name=N,C,... "
                              "for a keyword argument, N,T:int for token ids (default: [tool.bnlint.verify], "
                              "example_inputs() beside the model, else inferred from the model)")
    runtime.add_argument("--framework", choices=["torch", "keras"], help="check only models of this framework")
    runtime.add_argument("--notebook-cells", action="store_true",
                         help="check notebooks' findings too, running their code cells up to the model's definition "
                              "(in the worker, under --timeout)")
    runtime.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where to run (default: cpu)")
    runtime.add_argument("--timeout", type=_positive_int, default=120, metavar="SECONDS",
                         help="time limit for loading and checking the models (default: 120)")
    runtime.add_argument("--memory-limit", type=_positive_int, default=16384, metavar="MIB",
                         help="address-space limit of the process that runs the models (default: 16384)")


def _input_spec(value: str) -> str:
    from bnlint.runtime.inputs import parse_spec

    try:
        parse_spec(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return value


def _selectors(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _positive_int(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, not {value!r}")
    return int(value)


def _prepare(args: argparse.Namespace) -> tuple[str, ReportOptions, Config]:
    """The output format, the report options and the configuration of a check or verify run."""
    out_is_terminal = args.output_file is None and sys.stdout.isatty()
    fmt = args.format or ("full" if out_is_terminal else "concise")
    report_options = ReportOptions(unsafe_fixes=getattr(args, "unsafe_fixes", False), statistics=args.statistics,
                                   color=args.color)
    check_options(fmt, report_options)
    extend_select = args.extend_select
    if args.report_unused_noqa:  # the flag names the opt-in rule
        extend_select = (*(extend_select or ()), UNUSED_NOQA)
    files = [value for value in args.config if not _is_override(value)]
    if len(files) > 1:
        raise UsageError(f"--config names two files ({files[0]}, {files[1]}); give one, plus KEY=VALUE overrides")
    overrides = [value for value in args.config if _is_override(value)]
    start = args.stdin_filename or Path(args.paths[0])
    config = load_config(start, Path(files[0]) if files else None, overrides).with_overrides(
        select=args.select, ignore=args.ignore, extend_select=extend_select, exclude=args.exclude,
        extend_exclude=args.extend_exclude, fail_on=args.fail_on,
    )
    return fmt, report_options, config


def _is_override(value: str) -> bool:
    """`--config` takes a file or a KEY=VALUE pair (ruff's rule: an existing file is a file)."""
    return "=" in value and not Path(value).is_file()


def _run_options(args: argparse.Namespace, fix_mode: FixMode) -> RunOptions:
    from bnlint.engine import RunOptions

    return RunOptions(
        jobs=args.jobs,
        use_cache=not args.no_cache,
        fix=fix_mode,
        diff=getattr(args, "diff", False),
        show_progress=sys.stderr.isatty() and not args.no_progress,
        project_root=args.project_root.absolute() if args.project_root is not None else None,
        **({"cache_dir": args.cache_dir} if args.cache_dir is not None else {}),
    )


def _check(args: argparse.Namespace) -> int:
    fmt, report_options, config = _prepare(args)
    if args.show_files or args.show_settings:
        return _show(args, config)
    # Imported here so that `bnlint rule` / `bnlint rules` and usage errors skip loading the analysis.
    from bnlint.engine import lint_paths
    from bnlint.fixes import FixMode

    if args.add_noqa:
        if args.fix or args.fix_only or args.diff:
            raise UsageError("--add-noqa does not combine with --fix, --fix-only or --diff")
        return _add_noqa(args, config)
    fix_mode = FixMode.NONE
    if args.fix or args.fix_only or args.diff:
        fix_mode = FixMode.UNSAFE if args.unsafe_fixes else FixMode.SAFE
    if args.verify:
        if not args.fix or args.diff:
            raise UsageError("--verify works with --fix (and not with --diff)")
        return _fix_verified(args, fmt, report_options, config, fix_mode)
    buffer = _stdin_buffer(args)
    run = lint_paths(args.paths, config, _run_options(args, fix_mode), buffer)
    if buffer is not None and args.fix:
        return _fixed_stdin(args, config, run, buffer[1])
    for problem in run.fix_problems:
        print(f"bnlint: {problem}", file=sys.stderr)
    if args.show_fixes and fix_mode is FixMode.NONE:
        _print_fixes("Would fix", {result.path: Counter(d.code for d in result.diagnostics
                                                        if report_options.would_fix(d)) for result in run.results})
    elif args.show_fixes:
        _print_fixes("Would fix" if args.diff else "Fixed", run.fixes)
    fixed_any = fix_mode is not FixMode.NONE and run.fixed_count > 0
    if args.diff:
        with _output_stream(args.output_file) as out:
            out.writelines(run.diffs)
        print(f"Would fix {plural(run.fixed_count, 'issue')}.", file=sys.stderr)
        return 0 if args.exit_zero or not run.diffs else 1
    if args.fix_only:
        print(f"Fixed {plural(run.fixed_count, 'issue')}.", file=sys.stderr)
        status = 2 if any(result.error for result in run.results) else 0
    else:
        status = _report(args, fmt, report_options, config, run.results, run.files_checked,
                         run.fixed_count if fix_mode is not FixMode.NONE else None)
    return 1 if args.exit_non_zero_on_fix and fixed_any and not args.exit_zero and status != 2 else status


def _print_fixes(verb: str, fixes: dict[str, Counter[str]]) -> None:
    """--show-fixes, on stderr (ruff's layout): the codes fixed, or that --fix would fix, per file."""
    fixes = {path: counts for path, counts in fixes.items() if counts}
    total = sum(sum(counts.values()) for counts in fixes.values())
    if not total:
        print(f"{verb} nothing.", file=sys.stderr)
        return
    rules = all_rules()
    print(f"{verb} {plural(total, 'issue')}:", file=sys.stderr)
    for path, counts in sorted(fixes.items()):
        print(f"- {path}:", file=sys.stderr)
        for code, count in sorted(counts.items()):
            name = rules[code].name if code in rules else code
            print(f"    {count} × {code} ({name})", file=sys.stderr)


def _show(args: argparse.Namespace, config: Config) -> int:
    """--show-files and --show-settings: what a run would check, and with which settings."""
    from bnlint.files import discover, display_path

    with _output_stream(args.output_file) as out:
        if args.show_settings:
            out.write(config.describe())
        if args.show_files:
            out.writelines(display_path(path) + "\n" for path in discover(args.paths, config))
    return 0


def _add_noqa(args: argparse.Namespace, config: Config) -> int:
    """--add-noqa: a `# noqa: CODE` on each line with findings, so that a codebase adopts
    bnlint today and fixes the findings over time. Syntax errors (BN000) and unused
    directives (BN001) get none: neither is fixed by suppressing it."""
    from bnlint.engine import lint_paths
    from bnlint.files import read_source
    from bnlint.fixes import FixMode, still_valid, write_in_place
    from bnlint.report.model import location
    from bnlint.suppression import add_noqa

    run = lint_paths(args.paths, config, _run_options(args, FixMode.NONE))
    added = 0
    for result in run.results:
        if result.error:
            print(f"bnlint: error: {result.error}", file=sys.stderr)
        findings = [d for d in result.diagnostics if d.code not in (SYNTAX_ERROR_CODE, UNUSED_NOQA)]
        if not findings:
            continue
        try:
            source = read_source(Path(result.path))
        except SourceError as error:  # changed since it was linted
            print(f"bnlint: error: {error}", file=sys.stderr)
            continue
        codes_by_line: dict[int, list[str]] = {}
        for diagnostic in findings:
            line = diagnostic.line if source.notebook is None else source.notebook.text_line(diagnostic.cell, diagnostic.line)
            codes_by_line.setdefault(line, []).append(diagnostic.code)
        text, count, skipped = add_noqa(source.text, codes_by_line)
        for line in skipped:
            shown_line, _, cell = source.locate(line, 1)
            print(f"bnlint: {location(result.path, shown_line, 1, cell)}: cannot hold a `# noqa` comment (the line "
                  "ends inside a string or with a backslash); suppress it another way", file=sys.stderr)
        if not count or not still_valid(text):
            continue
        problem = write_in_place(source.path, source.to_bytes(text), source.to_bytes(source.text))
        if problem is not None:
            print(f"bnlint: {result.path}: noqa comments not written: {problem}", file=sys.stderr)
            continue
        added += count
    print(f"Added {plural(added, 'noqa directive')}.", file=sys.stderr)
    return 2 if any(result.error for result in run.results) else 0


def _stdin_buffer(args: argparse.Namespace) -> tuple[Path, bytes] | None:
    """(the file stdin stands for, its bytes) for `bnlint check --stdin-filename PATH -`."""
    if args.paths != ["-"]:
        if args.stdin_filename is not None:
            raise UsageError("--stdin-filename needs `-` as the path")
        return None
    if args.stdin_filename is None:
        raise UsageError("`-` (stdin) needs --stdin-filename PATH")
    return args.stdin_filename, sys.stdin.buffer.read()


def _fixed_stdin(args: argparse.Namespace, config: Config, run: RunResult, original: bytes) -> int:
    """--fix on stdin: the fixed source (or the source unchanged) on stdout, like ruff; what
    remains, concisely, on stderr."""
    sys.stdout.buffer.write(run.fixed_buffer if run.fixed_buffer is not None else original)
    sys.stdout.flush()
    for problem in run.fix_problems:
        print(f"bnlint: {problem}", file=sys.stderr)
    remaining = [diagnostic for result in run.results for diagnostic in result.diagnostics]
    for diagnostic in remaining:
        print(f"{diagnostic.path}:{diagnostic.line}:{diagnostic.column}: {diagnostic.severity.value}: "
              f"{diagnostic.code} {diagnostic.message}", file=sys.stderr)
    if any(result.error for result in run.results):
        return 2
    failing = any(diagnostic.severity.rank >= config.fail_on.rank for diagnostic in remaining)
    return 0 if args.exit_zero or not failing else 1


def _report(args: argparse.Namespace, fmt: str, options: ReportOptions, config: Config, results: list[FileResult],
            files_checked: int, fixed_count: int | None) -> int:
    """Render the findings; the exit status for them."""
    report = Report(results, all_rules(), files_checked, fixed_count)
    with _output_stream(args.output_file) as out:
        render(fmt, report, options, out=out, err=sys.stderr)
    if any(result.error for result in results):
        return 2  # a file could not be checked: its findings are unknown, whatever --exit-zero says
    failing = any(diagnostic.severity.rank >= config.fail_on.rank for diagnostic in report.diagnostics())
    return 0 if args.exit_zero or not failing else 1


def _runtime_options(args: argparse.Namespace) -> VerifyOptions:
    from bnlint.runtime import VerifyOptions

    return VerifyOptions(args.model, tuple(args.input_shape or ()), args.framework, args.device, float(args.timeout),
                         notebook_cells=args.notebook_cells, memory_limit_mib=args.memory_limit)


def _verification(args: argparse.Namespace, config: Config) -> Verification:
    """Lint, then check the findings on the models (in the worker process)."""
    from bnlint.engine import lint_paths
    from bnlint.fixes import FixMode
    from bnlint.runtime import configured_inputs, model_file, require_extras, verify_results

    require_extras(html_report=getattr(args, "report", None) is not None)
    paths = list(args.paths)
    model_path = model_file(args.model, paths).absolute() if args.model else None
    if model_path is not None and not any(Path(p).absolute() in (model_path, *model_path.parents) for p in paths):
        paths.append(str(model_path))
    run = lint_paths(paths, config, _run_options(args, FixMode.NONE))
    verification = verify_results(run.results, _runtime_options(args), configured_inputs(Path(paths[0])),
                                  model_path)
    verification.files_checked = run.files_checked
    for model in verification.models:
        print(f"bnlint: checked {model['name']} from {model['path']} ({model['framework']}) on inputs "
              f"{model['inputs']}, {model['input_source']}", file=sys.stderr)
    return verification


def _verify(args: argparse.Namespace) -> int:
    fmt, report_options, config = _prepare(args)
    if args.show_files or args.show_settings:
        return _show(args, config)
    verification = _verification(args, config)
    if args.report is not None:
        from bnlint.runtime.report_html import write_report

        write_report(args.report, verification)
    results = verification.results
    if fmt != "json":  # the text formats show the verdict with the message
        from bnlint.runtime import with_verdict_in_message

        results = [replace(result, diagnostics=[with_verdict_in_message(d) for d in result.diagnostics])
                   for result in results]
    return _report(args, fmt, report_options, config, results, verification.files_checked, None)


def _fix_verified(args: argparse.Namespace, fmt: str, options: ReportOptions, config: Config,
                  fix_mode: FixMode) -> int:
    """--fix --verify: write only the fixes whose runtime verification passed, say why the
    others were held back, then report what remains."""
    from bnlint.engine import lint_paths
    from bnlint.files import read_source
    from bnlint.fixes import FixMode, FixRefused, applicable, apply_edits, write_in_place

    verification = _verification(args, config)
    fixed_count = 0
    for result in verification.results:
        fixable = applicable(result.diagnostics, fix_mode)
        verified = [d for d in fixable if d.runtime is not None and d.runtime["fix_verified"] is True]
        for diagnostic in fixable:
            if diagnostic not in verified:
                print(f"bnlint: held back the fix for {diagnostic.code} at {result.path}:{diagnostic.line}: "
                      f"{_held_back_reason(diagnostic)}", file=sys.stderr)
        if not verified:
            continue
        try:
            source = read_source(Path(result.path))
            text, count = apply_edits(source.text, verified)
            problem = write_in_place(source.path, source.to_bytes(text), source.to_bytes(source.text))
        except (BnlintError, FixRefused) as error:
            problem = str(error)
        if problem is None:
            fixed_count += count
        else:
            print(f"bnlint: {result.path}: fixes not written: {problem}", file=sys.stderr)
    run = lint_paths(args.paths, config, _run_options(args, FixMode.NONE))
    return _report(args, fmt, options, config, run.results, run.files_checked, fixed_count)


def _held_back_reason(diagnostic: Diagnostic) -> str:
    runtime = diagnostic.runtime
    if runtime is None:
        return "the runtime checker did not check it"
    if runtime["fix_verified"] is False:
        problem = runtime["numbers"].get("fix_problem")
        return f"its verification failed ({problem})" if problem else f"its verification failed: {runtime['evidence']}"
    return f"the runtime check was {runtime['verdict']}: {runtime['evidence']}"


@contextmanager
def _output_stream(path: Path | None) -> Iterator[TextIO]:
    """stdout, or the --output-file (UTF-8), closed afterwards."""
    if path is None:
        yield sys.stdout
        return
    try:
        stream = path.open("w", encoding="utf-8")
    except OSError as error:
        raise UsageError(f"cannot write {path}: {error.strerror or error}") from None
    with stream:
        yield stream


def _rule(args: argparse.Namespace) -> int:
    rule = find_rule(args.rule)
    if rule is None:
        known = [*all_rules(), *(info.name for info in all_rules().values())]
        close = difflib.get_close_matches(args.rule, known, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise UsageError(f"unknown rule '{args.rule}'{hint}; `bnlint rules` lists them")
    text = rule_markdown(rule)
    if sys.stdout.isatty():
        make_console(sys.stdout).print(Markdown(text))
    else:
        sys.stdout.write(text)
    return 0


def _server(args: argparse.Namespace) -> int:
    try:
        from bnlint.server import serve
    except ImportError as error:
        raise UsageError(f"`bnlint server` needs pygls: pip install 'bnlint[lsp]' ({error})") from None
    return serve()


def rule_markdown(rule: RuleInfo) -> str:
    """The rule's documentation with a metadata list under its title."""
    title, _, body = rule.documentation.partition("\n")
    if not title.startswith("# "):
        title, body = f"# {rule.name} ({rule.code})", rule.documentation
    metadata = "\n".join(
        [
            f"- Code: {rule.code}",
            f"- Severity: {rule.severity.value}",
            f"- Frameworks: {', '.join(rule.frameworks)}",
            f"- Fix: {_FIX_DESCRIPTIONS[rule.fix]}",
        ]
    )
    return f"{title}\n\n{metadata}\n\n{body.lstrip()}"


def _rules(args: argparse.Namespace) -> int:
    rules = all_rules().values()
    if args.format == "json":
        entries = [
            {
                "code": rule.code,
                "name": rule.name,
                "severity": rule.severity.value,
                "frameworks": list(rule.frameworks),
                "fix": rule.fix.value if rule.fix else None,
                "summary": rule.summary,
            }
            for rule in rules
        ]
        json.dump(entries, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    rows = [(rule.code, rule.name, Text(rule.severity.value, style=SEVERITY_STYLES[rule.severity]),
             ", ".join(rule.frameworks), rule.fix.value if rule.fix else "-") for rule in rules]
    print_table(make_console(sys.stdout), ("Code", "Name", "Severity", "Frameworks", "Fix"), rows)
    return 0
