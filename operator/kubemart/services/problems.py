"""Why an object cannot reach its desired state now, as its Ready condition will say it."""

from __future__ import annotations


class Problem(Exception):
    """A known, expected failure: `reason` is CamelCase, `message` says what is wrong and what to do.

    `stalled` means retrying cannot help until the spec, a referenced object or the catalog changes.
    """

    def __init__(self, reason: str, message: str, *, stalled: bool = False, phase: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.stalled = stalled
        self.phase = phase
