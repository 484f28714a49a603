"""How paths are shown to users (a module of its own: configuration errors and file
discovery both need it, and neither should import the other)."""

from __future__ import annotations

import os
from pathlib import Path


def display_path(path: Path | str) -> str:
    """`path` as users should see it: relative to the cwd when under it, else absolute; `/` separators."""
    absolute, cwd = os.path.abspath(path), os.getcwd()
    if absolute.startswith(cwd.rstrip(os.sep) + os.sep):
        absolute = os.path.relpath(absolute, cwd)
    return Path(absolute).as_posix()
