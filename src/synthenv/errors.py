"""Errors that reach the user as one line (exit code 2 at the CLI)."""


class UsageError(ValueError):
    """Bad input from the user: unknown ids, invalid values, wrong or corrupt files."""
