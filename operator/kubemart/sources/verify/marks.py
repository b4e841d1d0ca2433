"""Verification results kept next to the archive, so a verified digest is not verified again.

A mark `<sha256>.verified-<provider>-<keyring>` in the chart cache says: the archive with that digest
passed `provider`'s verification against the keys with that fingerprint. It is written atomically
once the check passed, so a reader sees no mark or a whole one; a new keyring has another fingerprint
and finds no mark. Failures are kept in memory only (bounded), keyed by what was checked, so an
unchanged refused chart is not run through helm at every retry, and any change checks it again.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

from kubemart.models.marketsource import VerifyProvider
from kubemart.sources.verify.errors import VerificationError

MAX_FAILURES = 1000


class Marks:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._failures: OrderedDict[tuple[str, ...], VerificationError] = OrderedDict()

    def path(self, hexdigest: str, provider: VerifyProvider, keyring: str) -> Path:
        return self.root / f"{hexdigest}.verified-{provider.value}-{keyring[:32]}"

    def verified(self, hexdigest: str, provider: VerifyProvider, keyring: str) -> bool:
        """A stat: whether that digest passed `provider`'s check against that keyring."""
        return self.path(hexdigest, provider, keyring).is_file()

    def record(self, hexdigest: str, provider: VerifyProvider, keyring: str, detail: dict[str, Any]) -> None:
        """Blocking (a small write and a rename): run it in a thread."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".mark-", dir=self.root)
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(detail, fh)
            os.replace(name, self.path(hexdigest, provider, keyring))
        finally:
            with contextlib.suppress(OSError):
                os.unlink(name)

    def failure(self, key: tuple[str, ...]) -> VerificationError | None:
        return self._failures.get(key)

    def fail(self, key: tuple[str, ...], error: VerificationError) -> None:
        self._failures[key] = error
        self._failures.move_to_end(key)
        while len(self._failures) > MAX_FAILURES:
            self._failures.popitem(last=False)
