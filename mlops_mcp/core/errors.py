"""Typed domain errors. Each carries a message a person can act on: what was wrong, what is accepted,
and (where it helps) what exists. The MCP layer turns them into tool errors in one place.

Each also subclasses the builtin a Python caller would reach for (as scikit-learn's errors do), so a
library user can write ``except ValueError`` or ``except LookupError`` without importing ours:
InvalidInput is a ValueError, NotFound a LookupError, Forbidden a PermissionError, Conflict a
RuntimeError.
"""

from collections.abc import Iterable


class MLOpsError(Exception):
    """Base of every error the engine raises on purpose."""

    kind = "error"

    def __init__(self, message: str, *, argument: str | None = None) -> None:
        self.argument = argument
        self.reason = message
        prefix = f"{argument}: " if argument else ""
        super().__init__(prefix + message)

    def __str__(self) -> str:  # builtins such as KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class InvalidInput(MLOpsError, ValueError):
    """The caller's input cannot be used as given."""

    kind = "invalid_input"


class NotFound(MLOpsError, LookupError):
    """A named thing (model, version, alias, dataset, prediction) does not exist."""

    kind = "not_found"


class Conflict(MLOpsError, RuntimeError):
    """The request clashes with the current state (a test already running, concluded twice, ...)."""

    kind = "conflict"


class Forbidden(MLOpsError, PermissionError):
    """Refused by policy: outside the data roots, untrusted format, read-only mode."""

    kind = "forbidden"


class Unavailable(MLOpsError, RuntimeError):
    """A service the call needs is missing or down (an optional extra not installed, Ray not starting)."""

    kind = "unavailable"


class Cancelled(MLOpsError):
    """The caller cancelled the work (e.g. the MCP request); it was stopped and nothing was kept."""

    kind = "cancelled"


def listing(items: Iterable[object], limit: int = 20) -> str:
    """Render what exists for an error message: 'a, b, c' with a count when it is long."""
    items = [str(i) for i in items]
    if not items:
        return "(none)"
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items)} in all)" if len(items) > limit else "")

