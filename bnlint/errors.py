"""User-facing errors: each carries one clear line; the CLI prints it and exits 2."""


class BnlintError(Exception):
    """Base of every error bnlint reports without a traceback."""


class UsageError(BnlintError):
    """Bad command line: a missing path, an unknown rule, conflicting flags."""


class ConfigError(UsageError):
    """A `[tool.bnlint]` table bnlint cannot accept."""


class SourceError(BnlintError):
    """A file that cannot be read or decoded (reported for that file; the run goes on)."""
