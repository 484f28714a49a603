"""Running the worker (`bnlint.runtime.worker`) in a separate process under a time limit.
The static command never gets here: only `bnlint verify` and `--fix --verify` do."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bnlint.errors import BnlintError


class RuntimeCheckError(BnlintError):
    """The user's model could not be loaded or run: one message, the user's frame, exit 2."""

    def __init__(self, message: str, frame: str | None = None) -> None:
        super().__init__(message if frame is None else f"{message}\n  at {frame}")
        self.frame = frame


def run_worker(request: dict[str, Any], timeout: float, memory_limit_mib: int | None = None) -> dict[str, Any]:
    """The worker's result; RuntimeCheckError when the user's code failed, ran past `timeout`
    or needed more than `memory_limit_mib` of address space.

    The worker leads a process group of its own, which is killed as a whole when it ends:
    a model that starts a process or forks leaves nothing running. Its output goes to
    files, not pipes, so a child that keeps them open cannot make bnlint wait."""
    with tempfile.TemporaryDirectory(prefix="bnlint-verify-") as folder:
        request_file, result_file, progress_file, output_file = (
            Path(folder) / name for name in ("request", "result", "progress", "output"))
        request_file.write_text(json.dumps({**request, "progress": str(progress_file),
                                            "memory_limit_mib": memory_limit_mib}), encoding="utf-8")
        environment = {**os.environ, "PYTHONHASHSEED": "0", "TF_CPP_MIN_LOG_LEVEL": "3"}
        command = [sys.executable, "-m", "bnlint.runtime.worker", str(request_file), str(result_file)]
        with output_file.open("wb") as output:
            worker = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=output, stderr=output, env=environment,
                                      start_new_session=True)
            try:
                returncode = worker.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _end_group(worker)
                stage = progress_file.read_text(encoding="utf-8") if progress_file.exists() else "starting"
                raise RuntimeCheckError(f"the runtime check timed out after {timeout:g} s while {stage} "
                                        "(raise the limit with --timeout)") from None
            except BaseException:  # Ctrl-C, SIGTERM: the user's code must not outlive bnlint
                _end_group(worker)
                raise
            _end_group(worker)
        if not result_file.exists():
            lines = output_file.read_text(encoding="utf-8", errors="replace").strip().splitlines()
            last = (lines or [f"exit status {returncode}"])[-1]
            if memory_limit_mib is not None and ("MemoryError" in last or "memory" in last.lower()):
                last += f" (the worker may use {memory_limit_mib} MiB; raise it with --memory-limit)"
            raise RuntimeCheckError(f"the runtime worker stopped before it finished: {last}")
        result = json.loads(result_file.read_text(encoding="utf-8"))
    if result["error"] is not None:
        raise RuntimeCheckError(result["error"]["message"], result["error"]["frame"])
    return result


def _end_group(worker: subprocess.Popen[bytes]) -> None:
    """Kill the worker's process group (it and whatever it started), then reap the worker."""
    try:
        os.killpg(worker.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass  # the group is gone already
    worker.wait()


def limit_memory(limit_mib: int | None) -> None:
    """Cap the calling process's address space (the worker calls this before user code runs)."""
    if limit_mib is None:
        return
    import resource

    limit = limit_mib * 1024 * 1024
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
