#!/usr/bin/env python3
"""Time bnlint side by side with a bare LibCST parse, ruff and TorchFix on the corpus.

Usage (from the repository root, with the project venv):

    .venv/bin/python bench/run.py                       # full models tier
    .venv/bin/python bench/run.py --sample 300 --skip torchfix

Builds the corpus with ../shared/corpus/make_corpus.sh when it is missing, installs
the peer tools into their own venv (bench/requirements-peers.txt), runs every tool as
a subprocess, and prints wall times, finding counts and the ratios the targets are
stated in.  Stdlib only: libcst is imported only by the bare-parse subprocess.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
PEER_REQUIREMENTS = BENCH_DIR / "requirements-peers.txt"
TIERS = ("models", "training", "all")
TOOL_GROUPS = ("parse", "bnlint", "ruff", "torchfix")  # the names --skip accepts
DEFAULT_TIMEOUT_S = 3600.0
# Linters exit 1 when they report findings (TorchFix: when a file fails to transform).
LINTER_OK_EXIT_CODES = frozenset({0, 1})

# One diagnostic in concise output: "path:line:col: CODE message" (ruff, TorchFix) or
# "path:line:col: SEVERITY: CODE message" (bnlint).
FINDING_RE = re.compile(r":\d+:\d+: (?:(?:error|warning|info): )?(?P<code>[A-Z]+[0-9]+)\b")
TORCHFIX_CHECKED_RE = re.compile(r"Finished checking (\d+) files")
# One package of make_corpus.sh's tier arrays: "name==version|unzip pattern".
TIER_ARRAY_RE = re.compile(r"^(MODELS|TRAINING)=\((.*?)^\)", re.MULTILINE | re.DOTALL)
PACKAGE_SPEC_RE = re.compile(r'"([^"=|]+)==([^"|]+)\|[^"]*"')


class BenchError(Exception):
    """A user-facing problem: printed as one line, exit status 2."""


@dataclass
class ToolRun:
    """One timed tool invocation and what came out of it."""

    name: str
    group: str
    command: list[str]
    status: str = "skipped"  # ok | failed | timeout | missing | skipped
    wall_s: float | None = None
    exit_code: int | None = None
    files: int | None = None
    findings: int | None = None
    findings_by_code: dict[str, int] = field(default_factory=dict)
    note: str = ""


@dataclass(frozen=True)
class RatioSpec:
    """slower / faster wall time; bnlint meets the target when the ratio >= minimum."""

    label: str
    slower: str
    faster: str
    minimum: float
    meaning: str


RATIOS = (
    RatioSpec("torchfix / bnlint-cold", "torchfix", "bnlint-cold", 10.0,
              "full catalogue cold >= 10x faster than TorchFix"),
    RatioSpec("libcst-parse-1core / bnlint-cold-1core", "libcst-parse-1core",
              "bnlint-cold-1core", 1.0, "no slower than a bare LibCST parse on one core"),
    RatioSpec("ruff-all-rules / bnlint-cached", "ruff-all-rules", "bnlint-cached", 1.0,
              "cached re-run faster than ruff's cold run with every rule"),
)


# ---------------------------------------------------------------- arguments


def parse_skip(value: str) -> frozenset[str]:
    names = frozenset(name.strip() for name in value.split(",") if name.strip())
    unknown = sorted(names - set(TOOL_GROUPS))
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown tool {', '.join(unknown)} (choose from {', '.join(TOOL_GROUPS)})")
    return names


def positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def positive_float(value: str) -> float:
    number = float(value)
    if number <= 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench/run.py",
        description="Time bnlint (cold, cached, one core) against a bare LibCST parse, "
                    "ruff and TorchFix on the real-world corpus, and print the ratios.")
    parser.add_argument("--corpus", type=Path, default=REPO_ROOT.parent / "corpus-bench",
                        help="corpus folder, outside the repository; built there when it "
                             "lacks MANIFEST.tsv or the tier's packages (default: %(default)s)")
    parser.add_argument("--tier", choices=TIERS, default="models",
                        help="which corpus packages to lint (default: %(default)s)")
    parser.add_argument("--shared", type=Path, default=REPO_ROOT.parent / "shared",
                        help="shared folder holding corpus/make_corpus.sh (default: %(default)s)")
    parser.add_argument("--sample", type=positive_int, metavar="N",
                        help="lint N files spread evenly over the tier (deterministic) "
                             "instead of all of them")
    parser.add_argument("--peers-venv", type=Path, default=BENCH_DIR / ".venv-peers",
                        help="venv for ruff and TorchFix, created on demand from "
                             "bench/requirements-peers.txt (default: %(default)s)")
    parser.add_argument("--skip", type=parse_skip, default=frozenset(), metavar="TOOLS",
                        help=f"comma-separated tools not to run: {', '.join(TOOL_GROUPS)}")
    parser.add_argument("--timeout", type=positive_float, default=DEFAULT_TIMEOUT_S,
                        metavar="SECONDS", help="limit per tool run (default: %(default)s)")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the results as JSON")
    # Internal: the body of the bare-parse subprocess (reads a file list, one path a line).
    parser.add_argument("--parse-baseline", type=Path, help=argparse.SUPPRESS)
    return parser


# ---------------------------------------------------------------- corpus


def tier_packages(script_text: str, tier: str) -> list[str]:
    """The package folders ("name-version") make_corpus.sh builds for `tier`."""
    arrays = {name: PACKAGE_SPEC_RE.findall(body)
              for name, body in TIER_ARRAY_RE.findall(script_text)}
    if not arrays.get("MODELS") or not arrays.get("TRAINING"):
        raise BenchError("cannot read the MODELS/TRAINING package lists from make_corpus.sh")
    wanted = {"models": ["MODELS"], "training": ["TRAINING"], "all": ["MODELS", "TRAINING"]}
    return [f"{name}-{version}" for array in wanted[tier] for name, version in arrays[array]]


def ensure_corpus(corpus: Path, shared: Path, tier: str) -> list[Path]:
    """Build the tier into `corpus` if needed; return its package folders."""
    if corpus.is_relative_to(REPO_ROOT):
        raise BenchError(f"the corpus must live outside the repository, not in {corpus}")
    script = shared / "corpus" / "make_corpus.sh"
    if not script.is_file():
        raise BenchError(f"no corpus script at {script} (use --shared)")
    package_dirs = [corpus / name for name in tier_packages(script.read_text(), tier)]
    if not (corpus / "MANIFEST.tsv").is_file() or not all(d.is_dir() for d in package_dirs):
        print(f"building the {tier} corpus in {corpus} ...", file=sys.stderr, flush=True)
        built = subprocess.run(["bash", str(script), str(corpus)], check=False,
                               env={**os.environ, "TIER": tier}, stdout=sys.stderr)
        if built.returncode != 0:
            raise BenchError(f"make_corpus.sh failed (exit {built.returncode})")
    return package_dirs


def python_files(package_dirs: Sequence[Path]) -> list[Path]:
    return sorted(path for folder in package_dirs for path in folder.rglob("*.py")
                  if path.is_file())


def select_sample(files: Sequence[Path], size: int | None) -> list[Path]:
    """`size` files spread evenly over the sorted list; all of them when size is None."""
    if size is None or size >= len(files):
        return list(files)
    return [files[index * len(files) // size] for index in range(size)]


def copy_sample(files: Sequence[Path], corpus: Path, dest: Path) -> list[Path]:
    """Copy a sample keeping its package layout, so every tool gets one folder argument
    (no argv limits, no symlink policies) and sees the same tree shape as a full run."""
    copies = []
    for source in files:
        target = dest / source.relative_to(corpus)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        copies.append(target)
    return copies


def count_lines(files: Sequence[Path]) -> int:
    # Reading every file also warms the page cache, so the first timed tool pays no disk I/O.
    return sum(path.read_bytes().count(b"\n") for path in files)


# ---------------------------------------------------------------- peers venv


def ensure_peers_venv(venv: Path, requirements: Path = PEER_REQUIREMENTS) -> Path:
    """Create or update the peers venv when the requirements changed; return its bin dir."""
    bin_dir = venv / "bin"
    stamp = venv / ".requirements.sha256"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    if stamp.is_file() and stamp.read_text() == digest:
        return bin_dir
    print(f"installing peer tools into {venv} ...", file=sys.stderr, flush=True)
    steps = ([sys.executable, "-m", "venv", str(venv)],
             [str(bin_dir / "python"), "-m", "pip", "install", "--quiet",
              "--disable-pip-version-check", "-r", str(requirements)])
    for step in steps:
        if subprocess.run(step, check=False, stdout=sys.stderr).returncode != 0:
            raise BenchError(f"could not set up the peers venv: {shlex.join(step)} failed")
    stamp.write_text(digest)
    return bin_dir


def tool_version(executable: Path) -> str:
    try:
        done = subprocess.run([str(executable), "--version"], check=False,
                              capture_output=True, text=True)
    except OSError:
        return "missing"
    # "ruff 0.17.6" or "0.7.0": the version is the last word
    return (done.stdout.strip() or done.stderr.strip()).split()[-1]


# ---------------------------------------------------------------- running tools


def count_findings(output: str) -> Counter[str]:
    return Counter(match["code"] for match in map(FINDING_RE.search, output.splitlines()) if match)


def record_findings(run: ToolRun, stdout: str, stderr: str) -> None:
    by_code = count_findings(stdout)
    run.findings = sum(by_code.values())
    run.findings_by_code = dict(sorted(by_code.items()))


def record_torchfix(run: ToolRun, stdout: str, stderr: str) -> None:
    record_findings(run, stdout, stderr)
    checked = TORCHFIX_CHECKED_RE.search(stderr)
    if checked:
        run.note = f"parsed {checked[1]} (files containing 'torch')"


def record_parse_baseline(run: ToolRun, stdout: str, stderr: str) -> None:
    counts = json.loads(stdout)
    run.files = counts["files"]
    run.note = f"{counts['failures']} parse failures"


OutputReader = Callable[[ToolRun, str, str], None]


@dataclass(frozen=True)
class ToolSpec:
    name: str
    group: str
    command: list[str]
    read_output: OutputReader
    env: dict[str, str] | None = None


def execute(spec: ToolSpec, files: int, work: Path, timeout_s: float) -> ToolRun:
    """Run one tool in `work` (so no project config is picked up), timing its wall clock."""
    run = ToolRun(spec.name, spec.group, spec.command, files=files)
    print(f"running {spec.name} ...", file=sys.stderr, flush=True)
    stdout_path, stderr_path = work / f"{spec.name}.out", work / f"{spec.name}.err"
    with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
        started = time.perf_counter()
        try:
            # A session of its own, so a timeout also ends the tool's worker processes.
            process = subprocess.Popen(spec.command, cwd=work, env=spec.env, stdout=stdout,
                                       stderr=stderr, start_new_session=True)
        except OSError as error:
            run.status, run.note = "missing", str(error)
            return run
        try:
            run.exit_code = process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            run.status, run.note = "timeout", f"killed after {timeout_s:g} s"
            return run
        finally:
            run.wall_s = time.perf_counter() - started
    stdout_text = stdout_path.read_text(errors="replace")
    stderr_text = stderr_path.read_text(errors="replace")
    ok_codes = {0} if spec.group == "parse" else LINTER_OK_EXIT_CODES
    if run.exit_code not in ok_codes:
        run.status = "failed"
        run.note = " | ".join(stderr_text.strip().splitlines()[-3:])
        return run
    run.status = "ok"
    spec.read_output(run, stdout_text, stderr_text)
    return run


def tool_specs(targets: Sequence[Path], file_list: Path, cache_root: Path,
               peers_bin: Path | None) -> list[ToolSpec]:
    paths = [str(target) for target in targets]
    bnlint_env = {**os.environ,
                  "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT),
                                                              os.environ.get("PYTHONPATH")]))}

    def bnlint(cache: str, *extra: str) -> list[str]:
        return [sys.executable, "-m", "bnlint", "check", "--select", "ALL", "--no-progress",
                "--format", "concise", "--exit-zero", "--cache-dir", str(cache_root / cache),
                *extra, *paths]

    this_script = str(Path(__file__).resolve())
    specs = [
        ToolSpec("libcst-parse-1core", "parse",
                 [sys.executable, this_script, "--parse-baseline", str(file_list)],
                 record_parse_baseline),
        ToolSpec("bnlint-cold", "bnlint", bnlint("all-cores"), record_findings, bnlint_env),
        ToolSpec("bnlint-cached", "bnlint", bnlint("all-cores"), record_findings, bnlint_env),
        ToolSpec("bnlint-cold-1core", "bnlint", bnlint("one-core", "--jobs", "1"),
                 record_findings, bnlint_env),
    ]
    if peers_bin is not None:
        specs += [
            ToolSpec("ruff-all-rules", "ruff",
                     [str(peers_bin / "ruff"), "check", "--isolated", "--select", "ALL",
                      "--no-cache", "--exit-zero", "--quiet", "--output-format", "concise", *paths],
                     record_findings),
            ToolSpec("torchfix", "torchfix",
                     [str(peers_bin / "torchfix"), "--select", "ALL", *paths], record_torchfix),
        ]
    return specs


def parse_baseline(file_list: Path) -> int:
    """Parse every listed file with LibCST in this one process; print counts as JSON."""
    import libcst  # only this subprocess needs it

    files = file_list.read_text().splitlines()
    failures = 0
    for path in files:
        try:
            libcst.parse_module(Path(path).read_bytes())
        except (libcst.ParserSyntaxError, UnicodeDecodeError, RecursionError):
            failures += 1
    print(json.dumps({"files": len(files), "failures": failures}))
    return 0


# ---------------------------------------------------------------- report


def compute_ratios(runs: Sequence[ToolRun]) -> list[dict[str, object]]:
    wall = {run.name: run.wall_s for run in runs if run.status == "ok" and run.wall_s}
    ratios = []
    for spec in RATIOS:
        value = (wall[spec.slower] / wall[spec.faster]
                 if spec.slower in wall and spec.faster in wall else None)
        ratios.append({"label": spec.label, "value": value, "minimum": spec.minimum,
                       "met": None if value is None else value >= spec.minimum,
                       "meaning": spec.meaning})
    return ratios


def machine_info() -> dict[str, object]:
    cpu_model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        cpu_model = next((line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                          if line.startswith("model name")), "")
    return {"cpus": os.cpu_count(), "cpu_model": cpu_model, "python": platform.python_version(),
            "platform": platform.platform()}


def format_report(corpus: dict[str, object], machine: dict[str, object],
                  versions: dict[str, str], runs: Sequence[ToolRun],
                  ratios: Sequence[dict[str, object]]) -> str:
    sample = corpus["sample"]
    scope = (f"{corpus['files']} of {corpus['tier_files']} files (evenly spread sample)"
             if sample else f"{corpus['files']} files")
    lines = [
        f"corpus: {corpus['dir']}  tier {corpus['tier']}: {scope}, {corpus['lines']:,} lines",
        (f"machine: {machine['cpus']} CPUs ({machine['cpu_model'] or 'unknown model'}), "
         f"Python {machine['python']}, {machine['platform']}"),
        "versions: " + ", ".join(f"{name} {version}" for name, version in versions.items()),
        "",
        f"{'tool':<20} {'status':<8} {'wall s':>9} {'exit':>5} {'files':>6} {'findings':>9}  note",
    ]
    for run in runs:
        wall = "-" if run.wall_s is None else f"{run.wall_s:.2f}"
        exit_code = "-" if run.exit_code is None else str(run.exit_code)
        findings = "-" if run.findings is None else str(run.findings)
        files = "-" if run.files is None else str(run.files)
        lines.append(f"{run.name:<20} {run.status:<8} {wall:>9} {exit_code:>5} {files:>6} "
                     f"{findings:>9}  {run.note}".rstrip())
    for run in runs:
        if run.group == "bnlint" and run.findings_by_code:
            codes = ", ".join(f"{code} {count}" for code, count in run.findings_by_code.items())
            lines += ["", f"bnlint findings by code: {codes}"]
            break
    lines += ["", "ratios (wall time of the slower tool / bnlint's; targets are minimums):"]
    for ratio in ratios:
        value = "n/a" if ratio["value"] is None else f"{ratio['value']:.2f}x"
        verdict = {None: "", True: "met", False: "NOT met"}[ratio["met"]]
        lines.append(f"  {ratio['label']:<40} {value:>9}  target >= {ratio['minimum']:g}x  "
                     f"{verdict}".rstrip())
    lines += ["", "commands (run from a scratch folder):"]
    lines += [f"  {run.name}: {shlex.join(run.command)}" for run in runs if run.status != "skipped"]
    return "\n".join(lines)


def consistency_notes(runs: Sequence[ToolRun]) -> None:
    """A cached run that reports other findings than the cold one is a cache bug."""
    by_name = {run.name: run for run in runs if run.status == "ok"}
    cold, cached = by_name.get("bnlint-cold"), by_name.get("bnlint-cached")
    if cold and cached and cold.findings_by_code != cached.findings_by_code:
        cached.note = (cached.note + " findings differ from bnlint-cold!").strip()


# ---------------------------------------------------------------- main


def bench(args: argparse.Namespace) -> int:
    corpus_dir = args.corpus.resolve()
    package_dirs = ensure_corpus(corpus_dir, args.shared.resolve(), args.tier)
    tier_files = python_files(package_dirs)
    if not tier_files:
        raise BenchError(f"no .py files for tier {args.tier} in {corpus_dir}")
    chosen = select_sample(tier_files, args.sample)
    skip: frozenset[str] = args.skip
    peers_bin = (None if {"ruff", "torchfix"} <= skip
                 else ensure_peers_venv(args.peers_venv.resolve()))
    with tempfile.TemporaryDirectory(prefix="bnlint-bench-") as scratch:
        work = Path(scratch)
        if args.sample:
            files = copy_sample(chosen, corpus_dir, work / "sample")
            targets = [work / "sample"]
        else:
            files, targets = chosen, package_dirs
        file_list = work / "files.txt"
        file_list.write_text("".join(f"{path}\n" for path in files))
        corpus = {"dir": str(corpus_dir), "tier": args.tier, "sample": args.sample,
                  "files": len(files), "tier_files": len(tier_files), "lines": count_lines(files)}
        runs = []
        for spec in tool_specs(targets, file_list, work / "caches", peers_bin):
            if spec.group in skip:
                runs.append(ToolRun(spec.name, spec.group, spec.command))
            else:
                runs.append(execute(spec, len(files), work, args.timeout))
    consistency_notes(runs)
    versions = {"libcst": _installed_version("libcst")}
    if peers_bin is not None:
        versions |= {"ruff": tool_version(peers_bin / "ruff"),
                     "torchfix": tool_version(peers_bin / "torchfix")}
    machine, ratios = machine_info(), compute_ratios(runs)
    print(format_report(corpus, machine, versions, runs, ratios))
    if args.json:
        args.json.write_text(json.dumps(
            {"corpus": corpus, "machine": machine, "versions": versions,
             "results": [asdict(run) for run in runs], "ratios": ratios}, indent=2) + "\n")
    return 1 if any(run.status not in ("ok", "skipped") for run in runs) else 0


def _installed_version(distribution: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return "not installed"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.parse_baseline:
        return parse_baseline(args.parse_baseline)
    try:
        return bench(args)
    except BenchError as error:
        print(f"bench: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
