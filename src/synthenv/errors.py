"""Errors that reach the user as one line (exit code 2 at the CLI)."""


class UsageError(ValueError):
    """Bad input from the user: unknown ids, invalid values, wrong or corrupt files."""


def require_counts(config, names, label: str = "") -> None:
    """A ``UsageError`` for the first of ``config``'s fields ``names`` that is not an integer >= 1
    (``label`` prefixes the field's name in the message, e.g. ``"RN "``)."""
    for name in names:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UsageError(f"{label}{name} must be an integer >= 1, got {value!r}")
