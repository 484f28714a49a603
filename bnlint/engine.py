"""The per-file pipeline and the process pool (the result cache is bnlint.cache).

discover → read → (cache hit? done) → cheap text test → parse once → model → checks →
positions for what is reported → suppressions → FileResult. Files that cannot contain
batch norm (directly or through a project module they import) only get a syntax check.
"""

from __future__ import annotations

import gc
import hashlib
import multiprocessing
import os
import signal
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from bnlint import __version__, crossfile
from bnlint.cache import ResultCache
from bnlint.checks import Check, CheckContext, Finding, HelperUse, all_checks
from bnlint.compiling import compile_error, too_complex
from bnlint.config import Config, load_config
from bnlint.diagnostics import Diagnostic, Edit, FileResult, Fix, HelperEvidence, Severity
from bnlint.errors import SourceError
from bnlint.files import SourceFile, discover, read_bytes, read_source
from bnlint.fixes import FixMode, FixRefused, apply_edits, applicable, rendered_edit, unified_diff, write_in_place
from bnlint.lifetime import die_with_parent
from bnlint.paths import display_path
from bnlint.positions import CodeToText, split_lines
from bnlint.registry import rule_info
from bnlint.semantics.interp.facts import FileFacts
from bnlint.semantics.interp.interpreter import Interpreter
from bnlint.semantics.names import module_name_for
from bnlint.semantics.project.index import BN_TEXT, USAGE_TEXT, ProjectIndex
from bnlint.semantics.project.loading import ProjectModules, loaded_module, parse, recursion_budget
from bnlint.semantics.project.scope import Project, project_root
from bnlint.suppression import Suppressions

SYNTAX_ERROR = "BN000"
MAX_FIX_ROUNDS = 8
_GC_THRESHOLDS = (100_000, 50, 100)
_PARALLEL_THRESHOLD = 16  # fewer files than this are not worth starting processes for


@dataclass
class RunOptions:
    jobs: int | None = None
    use_cache: bool = True
    cache_dir: Path = Path(".bnlint_cache")
    fix: FixMode = FixMode.NONE
    diff: bool = False
    show_progress: bool = False
    project_root: Path | None = None  # default: found from each file (bnlint.semantics.project.scope)


@dataclass
class RunResult:
    results: list[FileResult]
    fixed_count: int = 0
    diffs: list[str] = field(default_factory=list)
    files_checked: int = 0
    # One line per file whose fixes were not written, and why.
    fix_problems: list[str] = field(default_factory=list)
    fixed_buffer: bytes | None = None  # the fixed text of a buffer given instead of its file (stdin)


# ----- one text ------------------------------------------------------------------------------


class Linter:
    """Lints texts under one configuration, with the project index for cross-file facts."""

    def __init__(self, config: Config, project: ProjectIndex | None = None) -> None:
        self.config = config
        self.project = project
        self.modules = ProjectModules(project) if project is not None else None
        self.checks: list[Check] = [check() for check in all_checks() if check.code in config.enabled_codes]
        # Each rule's options, configured or default (`[tool.bnlint.rule-options.BN203]`).
        self.options = {check.code: {name: config.option(check.code, name) for name in check.options}
                        for check in self.checks if check.options}

    def analyse(self, text: str, path: str, file_path: Path | None = None) -> _TextFindings:
        """Findings for a text, in the text's own coordinates, before suppressions, and what
        it saw of shared helpers (see bnlint.crossfile)."""
        syntax_errors = self._syntax_check(text, path)  # CPython first: what it rejects never reaches LibCST
        if syntax_errors is not None:
            return _TextFindings(syntax_errors)
        if not self._may_matter(text, file_path):
            return _TextFindings()
        reason = too_complex(text)
        if reason is not None:
            raise SourceError(f"{path}: not analysed: {reason}")
        try:
            module = parse(file_path, text) if file_path is not None else cst.parse_module(text)
        except (cst.ParserSyntaxError, RecursionError):
            module = None
        if module is None:  # CPython compiles it, LibCST cannot parse it: nothing to say about it
            return _TextFindings()
        module_name, is_package = module_name_for(file_path) if file_path else (Path(path).stem, False)
        facts = FileFacts(str(file_path) if file_path else path, module, text, module_name, is_package)
        try:
            with recursion_budget():
                Interpreter(facts, self.modules).analyse()
        except RecursionError:  # pathologically nested code: no facts, no findings
            return _TextFindings()
        context = CheckContext(facts, self.options, project=self.project)
        findings = []
        reported: set[tuple[str, int]] = set()  # a rule reports a node once
        for check in self.checks:
            for finding in check.check(context):
                key = (finding.code, id(finding.node))
                if key in reported or not self.config.is_enabled(finding.code, file_path):
                    continue
                reported.add(key)
                placed = _placed(finding, facts, context.helper_uses)
                if placed is not None:
                    findings.append(placed)
        diagnostics = _to_diagnostics(findings, module, path, text) if findings else []
        evidence = [self._evidence(use, facts, path) for use in context.helper_uses]
        return _TextFindings(diagnostics, [item for item in evidence if item is not None])

    def _evidence(self, use: HelperUse, facts: FileFacts, path: str) -> HelperEvidence | None:
        index = crossfile.call_index(use.helper, use.node)
        if index is None:
            return None
        own = use.path == facts.path
        shown = path if own else display_path(Path(use.path))
        diagnostic = None
        module = facts.module if own else loaded_module(use.path)
        if use.finding is not None:
            if module is None:
                return None  # the helper's file is no longer at hand: nothing can be placed
            diagnostic = next(iter(_to_diagnostics([use.finding], module, shown)), None)
        return HelperEvidence(shown, use.helper.name.value, index, diagnostic, use.sufficient)

    def _may_matter(self, text: str, file_path: Path | None) -> bool:
        """The cheap text test: BN is named here, a model is used here (trained, evaluated,
        built by a model zoo), or a project name imported here involves BN."""
        if BN_TEXT.search(text) or USAGE_TEXT.search(text):
            return True
        return self.project is not None and self.project.imports_batch_norm(text, file_path)

    def _syntax_check(self, text: str, path: str) -> list[Diagnostic] | None:
        """BN000 (or nothing, when it is off) for a text CPython cannot compile; None when it compiles."""
        error = compile_error(text, path)
        if error is None:
            return None
        if SYNTAX_ERROR not in self.config.enabled_codes:
            return []
        return [_diagnostic(SYNTAX_ERROR, error.message, path, error.line, error.column, error.end_line,
                            error.end_column)]

    def lint_file(self, source: SourceFile) -> tuple[FileResult, list[Diagnostic]]:
        """The reported result (user coordinates, suppressions applied) and the kept
        findings in text coordinates (what fixes apply to)."""
        suppressions = Suppressions.from_text(source.text)
        result = FileResult(source.display_path)
        if suppressions.skip_file:
            return result, []
        analysis = self.analyse(source.text, source.display_path, source.path)
        result.helper_evidence = analysis.helper_evidence
        raw = analysis.diagnostics
        kept, unused = suppressions.apply(
            raw, source.display_path, lambda code: self.config.is_enabled(code, source.path)
        )
        lines = split_lines(source.text)
        for diagnostic in kept:
            shown = _relocate(diagnostic, source)
            result.diagnostics.append(shown)
            if diagnostic.line <= len(lines):
                result.source_lines[(shown.cell or 0, shown.line)] = lines[diagnostic.line - 1]
        for directive in unused:
            line, column, cell = source.locate(directive.line, directive.column)
            result.unused_suppressions.append(type(directive)(directive.path, line, column, directive.codes, cell))
        result.diagnostics.sort(key=lambda d: d.sort_key)
        return result, kept

    def fix_text(self, text: str, path: str, mode: FixMode, file_path: Path | None = None,
                 reported: Sequence[Diagnostic] = ()) -> tuple[str, int]:
        """Apply fixes round after round until none is left. FixRefused when a round's
        edits fail a check (then none of them is to be written). `reported` are the findings the run made for this text, which the first round
        applies too: those established across files are not found by this file alone."""
        total = 0
        current = text
        for round_number in range(MAX_FIX_ROUNDS):
            suppressions = Suppressions.from_text(current)
            if suppressions.skip_file:
                break
            kept, _ = suppressions.apply(self.analyse(current, path, file_path).diagnostics, path)
            if round_number == 0:
                kept = [*kept, *reported]  # a duplicate's edits overlap its twin's and are skipped
            fixable = applicable(kept, mode)
            if not fixable:
                break
            candidate, count = apply_edits(current, fixable)
            if count == 0 or candidate == current:
                break
            current, total = candidate, total + count
        return current, total


@dataclass
class _TextFindings:
    diagnostics: list[Diagnostic] = field(default_factory=list)
    helper_evidence: list[HelperEvidence] = field(default_factory=list)


def _placed(finding: Finding, facts: FileFacts, helper_uses: list[HelperUse]) -> Finding | None:
    """A finding seen while following a call: kept when its site is in this file; in
    another file's module-level helper it becomes evidence that stands on its own
    (bnlint.crossfile places it there); elsewhere it cannot be placed."""
    site = finding.site
    if site is None or site.path == facts.path:
        return finding
    if site.helper is not None:
        helper_uses.append(HelperUse(site.path, site.helper, site.node, finding, sufficient=True))
    return None


def _diagnostic(code: str, message: str, path: str, line: int, column: int, end_line: int, end_column: int,
                fix: Fix | None = None) -> Diagnostic:
    info = rule_info(code)
    return Diagnostic(path, line, column, end_line, end_column, code, info.name, info.severity, message, fix)


def _to_diagnostics(findings: list[Finding], module: cst.Module, path: str, text: str | None = None) -> list[Diagnostic]:
    """Positions are computed only here, for files that have findings, in the coordinates
    of `text` (the module's source, by default the code LibCST generates for it)."""
    positions = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    code = module.code
    mapping = CodeToText(code, code if text is None else text)
    diagnostics: dict[tuple[str, int, int], Diagnostic] = {}
    for finding in findings:
        where = positions.get(finding.node)
        if where is None:
            continue
        fix = None
        if finding.fix is not None and mapping.exact:
            edit = rendered_edit(module, code, mapping.code, finding.fix.replacements, positions)
            if edit is not None:
                fix = Fix(finding.fix.applicability, finding.fix.message, (_edit_in_text(edit, mapping),))
        line, column = mapping.position(where.start.line, where.start.column + 1)
        end_line, end_column = mapping.position(where.end.line, where.end.column + 1)
        diagnostic = _diagnostic(finding.code, finding.message, path, line, column, end_line, end_column, fix)
        diagnostics.setdefault((finding.code, diagnostic.line, diagnostic.column), diagnostic)
    return list(diagnostics.values())


def _edit_in_text(edit: Edit, mapping: CodeToText) -> Edit:
    if not mapping.dropped:
        return edit
    line, column = mapping.position(edit.line, edit.column)
    end_line, end_column = mapping.position(edit.end_line, edit.end_column)
    start, end = mapping.text.offset(line, column), mapping.text.offset(end_line, end_column)
    assert edit.anchor is not None
    lead, trail = len(edit.anchor[0]), len(edit.anchor[2])  # the same context, read in the text
    text = mapping.text.text
    anchor = (text[max(0, start - lead): start], text[start:end], text[end: end + trail])
    return Edit(line, column, end_line, end_column, edit.content, anchor)


def _relocate(diagnostic: Diagnostic, source: SourceFile) -> Diagnostic:
    """Text coordinates → what the user sees (notebook cells); identity for .py files."""
    if source.notebook is None:
        return diagnostic
    from dataclasses import replace

    line, column, cell = source.locate(diagnostic.line, diagnostic.column)
    end_line, end_column, _ = source.locate(diagnostic.end_line, diagnostic.end_column)
    fix = diagnostic.fix
    if fix is not None:
        edits = []
        for edit in fix.edits:
            start = source.locate(edit.line, edit.column)
            end = source.locate(edit.end_line, edit.end_column)
            edits.append(Edit(start[0], start[1], end[0], end[1], edit.content))
        fix = replace(fix, edits=tuple(edits))
    return replace(diagnostic, line=line, column=column, end_line=end_line, end_column=end_column, cell=cell, fix=fix)


# ----- many files ----------------------------------------------------------------------------


@dataclass
class _Job:
    path: Path
    data: bytes
    digest: str


_worker_linter: Linter | None = None


def _init_worker(config: Config, project: ProjectIndex, parent: int) -> None:
    global _worker_linter
    die_with_parent(parent)
    # The parent handles Ctrl-C and SIGTERM and then ends its workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    gc.set_threshold(*_GC_THRESHOLDS)
    _worker_linter = Linter(config, project)


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """Cached syntax trees are millions of long-lived objects that every full collection
    walks again; linting allocates fast, so default thresholds spend a third of the run
    there. Few cycles are created, so collecting rarely is enough."""
    previous = gc.get_threshold()
    gc.set_threshold(*_GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*previous)


def _lint_job(job: _Job) -> tuple[FileResult, list[str]]:
    assert _worker_linter is not None
    return _lint_one(_worker_linter, job)


def _lint_one(linter: Linter, job: _Job) -> tuple[FileResult, list[str]]:
    try:
        source = read_source(job.path, job.data)
    except SourceError as error:
        return FileResult(display_path(job.path), error=str(error)), []
    if linter.project is not None:
        linter.project.loaded_files.clear()
    try:
        result, _ = linter.lint_file(source)
    except SourceError as error:
        return FileResult(source.display_path, error=str(error)), []
    except Exception as error:  # one file's bug must not end the whole run
        message = f"{source.display_path}: internal error ({type(error).__name__}: {error}); please report it"
        return FileResult(source.display_path, error=message), []
    dependencies = sorted(str(path) for path in linter.project.loaded_files) if linter.project else []
    return result, dependencies


def _code_fingerprint() -> str:
    """bnlint's version plus the size and mtime of its own files: an edited checkout (an
    editable install) never reads results an older bnlint produced."""
    docs = Path(str(resources.files("bnlint.ruledocs")))
    state = [__version__]
    for path in sorted([*Path(__file__).parent.rglob("*.py"), *docs.glob("*.md")]):
        stat = path.stat()
        state.append(f"{path}:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.sha256("\n".join(state).encode()).hexdigest()


def lint_paths(paths: Sequence[str], config: Config, options: RunOptions,
               buffer: tuple[Path, bytes] | None = None) -> RunResult:
    """Findings for the files under `paths`, each computed from its whole project (see
    bnlint.semantics.project.scope). `buffer`: (path, text) of a file whose text is given
    (stdin), linted as if it were that file; `paths` are then ignored."""
    problems: list[tuple[str, str]] = []
    files = [buffer[0].absolute()] if buffer is not None else discover(paths, config, problems)
    results = [FileResult(display_path(path), error=f"{display_path(path)}: {why}") for path, why in problems]
    read: dict[Path, bytes] = {buffer[0].absolute(): buffer[1]} if buffer is not None else {}
    for path in files:
        if path in read:
            continue
        try:
            read[path] = read_bytes(path)
        except SourceError as error:
            results.append(FileResult(display_path(path), error=str(error)))
    groups: dict[Path, list[Path]] = {}
    for path in read:
        groups.setdefault(options.project_root or project_root(path), []).append(path)
    projects: list[Project] = []
    for root, requested in sorted(groups.items()):
        project = Project.scan(root, source_roots(root, config), {path: read[path] for path in requested},
                               buffer[0].absolute() if buffer is not None else None)
        projects.append(project)
        cache = project_cache(project, config, options.cache_dir, options.use_cache and buffer is None)
        cache.refuse_sources_inside(requested)
        results += lint_in_project(project, requested, cache, config, options)
        cache.save()
    run = RunResult(sorted(results, key=lambda r: r.path), files_checked=len(files))
    if options.fix is not FixMode.NONE:
        for project in projects:
            jobs = [_Job(path, project.files[path].data, project.files[path].digest) for path in groups[project.root]]
            _fix_files(run, jobs, config, project.index, options, buffer[0].absolute() if buffer is not None else None)
    return run


def project_cache(project: Project, config: Config, directory: Path, enabled: bool) -> ResultCache:
    """The result cache of one project: for this bnlint, this configuration and this set of files."""
    key = f"{_code_fingerprint()}\0{config.fingerprint()}\0{project.fingerprint}"
    return ResultCache(directory, hashlib.sha256(key.encode()).hexdigest()[:20], enabled)


def lint_in_project(project: Project, requested: Sequence[Path], cache: ResultCache, config: Config,
                    options: RunOptions) -> list[FileResult]:
    """The results of the requested files of a project, computed with every file that
    imports one of them (whose calls may establish a finding in it)."""
    jobs = [_Job(path, project.files[path].data, project.files[path].digest)
            for path in project.analysed_with(requested) if path in project.files]
    shown = {display_path(path) for path in requested}
    return [result for result in _lint_project(jobs, project, cache, config, options) if result.path in shown]


def source_roots(root: Path, config: Config) -> list[Path]:
    """Where the project's modules are: `src = [...]` of a configuration at this root, else the root."""
    if config.src and config.root.absolute() == root:
        return [root / folder for folder in config.src]
    return [root]


def _lint_project(jobs: list[_Job], project: Project, cache: ResultCache, config: Config,
                  options: RunOptions) -> list[FileResult]:
    """The results of the analysed files (from the cache where every file each depends on
    is unchanged), merged across files."""
    digests = {str(path): file.digest for path, file in project.files.items()}
    results: list[FileResult] = []
    pending: list[_Job] = []
    for job in jobs:
        cached = cache.get(job.path, job.digest, digests)
        if cached is not None:
            results.append(cached)
        else:
            pending.append(job)
    with _fewer_collections():
        for job, (result, loaded) in _run_jobs(pending, config, project.index, options):
            dependencies = project.dependencies(job.path)
            dependencies.update((path, digests.get(path, "")) for path in loaded)
            cache.put(job.path, job.digest, result, dependencies)
            results.append(result)
    return crossfile.merge(results, config, project.index, [(job.path, job.data) for job in jobs])


def _run_jobs(jobs: list[_Job], config: Config, project: ProjectIndex,
              options: RunOptions) -> Iterator[tuple[_Job, tuple[FileResult, list[str]]]]:
    jobs = sorted(jobs, key=lambda job: len(job.data), reverse=True)  # big files first balance the pool
    processors = os.cpu_count() or 1
    workers = max(1, min(options.jobs or processors, processors, len(jobs)))
    progress = _progress(len(jobs)) if options.show_progress and jobs else None
    try:
        if workers == 1 or len(jobs) < _PARALLEL_THRESHOLD:
            linter = Linter(config, project)
            outcomes: Iterable[tuple[FileResult, list[str]]] = (_lint_one(linter, job) for job in jobs)
            for job, outcome in zip(jobs, outcomes, strict=True):
                _advance(progress)
                yield job, outcome
            return
        pool = multiprocessing.Pool(workers, initializer=_init_worker, initargs=(config, project, os.getpid()))
        try:
            for job, outcome in zip(jobs, pool.imap(_lint_job, jobs, chunksize=4), strict=True):
                _advance(progress)
                yield job, outcome
            pool.close()
        finally:
            pool.terminate()  # at once when interrupted (SIGTERM, Ctrl-C): workers do not finish their files
            pool.join()
    finally:
        if progress is not None:
            progress.stop()


def _progress(total: int):  # type: ignore[no-untyped-def]
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    progress = Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=Console(stderr=True), transient=True)
    progress.add_task("Linting", total=total)
    progress.start()
    return progress


def _advance(progress) -> None:  # type: ignore[no-untyped-def]
    if progress is not None:
        progress.advance(progress.task_ids[0])


def _fix_files(run: RunResult, jobs: list[_Job], config: Config, project: ProjectIndex, options: RunOptions,
               buffer: Path | None = None) -> None:
    """Fix the files that have applicable fixes, then report what remains in them. The
    `buffer`'s fixed text is kept in the run (stdin's goes to stdout), never written."""
    by_path = {display_path(job.path): job for job in jobs}
    linter = Linter(config, project)
    for index, result in enumerate(run.results):
        job = by_path.get(result.path)
        if job is None or not applicable(result.diagnostics, options.fix):
            continue
        try:
            source = read_source(job.path, job.data)
        except SourceError:
            continue
        reported = result.diagnostics if source.notebook is None else []
        try:
            fixed_text, count = linter.fix_text(source.text, source.display_path, options.fix, job.path, reported)
            fixed_data = source.to_bytes(fixed_text) if count else job.data
        except (FixRefused, SourceError) as refusal:
            run.fix_problems.append(f"{source.display_path}: fixes not applied: {refusal}")
            continue
        if count == 0:
            continue
        if options.diff:
            run.diffs.append(unified_diff(source.display_path, source.render(source.text), source.render(fixed_text)))
            run.fixed_count += count
            continue
        problem = None
        if job.path == buffer:
            run.fixed_buffer = fixed_data
        else:
            problem = write_in_place(job.path, fixed_data, job.data)
        if problem is not None:
            run.fix_problems.append(f"{source.display_path}: fixes not written: {problem}")
            continue
        run.fixed_count += count
        updated = SourceFile(source.path, source.display_path, fixed_text, source.notebook, source.encoding)
        run.results[index], _ = linter.lint_file(updated)


# ----- conveniences (tests, rule docs, the runtime checker) ------------------------------------


def _default_config() -> Config:
    return load_config(Path.cwd()).with_overrides(select=["ALL"])


def lint_source(source: str, path: str = "example.py", config: Config | None = None) -> list[Diagnostic]:
    """Lint a string as if it were a file at `path` (no project context)."""
    linter = Linter(config or _default_config())
    result, _ = linter.lint_file(SourceFile(Path(path), path, source))
    return result.diagnostics


def fix_source(source: str, unsafe: bool = False, config: Config | None = None) -> str:
    """The source with every (safe, or also unsafe) fix applied until none is left."""
    linter = Linter(config or _default_config())
    try:
        fixed, _ = linter.fix_text(source, "example.py", FixMode.UNSAFE if unsafe else FixMode.SAFE)
    except FixRefused:
        return source
    return fixed


__all__ = ["Linter", "RunOptions", "RunResult", "Severity", "fix_source", "lint_paths", "lint_source"]
