"""Running the worker (`bnlint.runtime.worker`) in a separate process under a time limit.
The static command never gets here: only `bnlint verify` and `--fix --verify` do."""

from __future__ import annotations

import json
import os
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


def run_worker(request: dict[str, Any], timeout: float) -> dict[str, Any]:
    """The worker's result; RuntimeCheckError when the user's code failed, or ran past `timeout`."""
    with tempfile.TemporaryDirectory(prefix="bnlint-verify-") as folder:
        request_file, result_file, progress_file = (Path(folder) / name for name in ("request", "result", "progress"))
        request_file.write_text(json.dumps({**request, "progress": str(progress_file)}), encoding="utf-8")
        environment = {**os.environ, "PYTHONHASHSEED": "0", "TF_CPP_MIN_LOG_LEVEL": "3"}
        command = [sys.executable, "-m", "bnlint.runtime.worker", str(request_file), str(result_file)]
        try:
            completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=environment,
                                       stdin=subprocess.DEVNULL, check=False)
        except subprocess.TimeoutExpired:
            stage = progress_file.read_text(encoding="utf-8") if progress_file.exists() else "starting"
            raise RuntimeCheckError(f"the runtime check timed out after {timeout:g} s while {stage} "
                                    "(raise the limit with --timeout)") from None
        if not result_file.exists():
            last = (completed.stderr.strip().splitlines() or [f"exit status {completed.returncode}"])[-1]
            raise RuntimeCheckError(f"the runtime worker stopped before it finished: {last}")
        result = json.loads(result_file.read_text(encoding="utf-8"))
    if result["error"] is not None:
        raise RuntimeCheckError(result["error"]["message"], result["error"]["frame"])
    return result
