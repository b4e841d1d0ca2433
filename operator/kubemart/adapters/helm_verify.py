"""`helm verify`: helm's own check of a chart archive against its provenance file and a keyring.

The one helm subprocess that needs no cluster: it reads two files and a keyring, so it runs outside
the helm gate, bounded by a timeout (SIGKILL then), and its stderr is returned for the caller to read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("kubemart.helm")

MAX_OUTPUT = 64 * 1024


@dataclass(frozen=True)
class HelmVerifyRun:
    returncode: int
    stdout: str
    stderr: str


async def helm_verify(executable: str, chart: Path, keyring: Path, *, seconds: float) -> HelmVerifyRun:
    """Run `helm verify --keyring <keyring> <chart>` (the .prov next to the chart). TimeoutError past `seconds`.

    The command line holds two file paths and no key material.
    """
    args = [executable, "verify", "--keyring", str(keyring), str(chart)]
    log.info("running command: %s verify %s", executable, chart.name)
    proc = await asyncio.create_subprocess_exec(
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={"HOME": str(chart.parent), "PATH": "/usr/bin:/bin"},
    )
    try:
        async with asyncio.timeout(seconds):
            stdout, stderr = await proc.communicate()
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise
    return HelmVerifyRun(
        proc.returncode or 0,
        stdout[:MAX_OUTPUT].decode(errors="replace"),
        stderr[:MAX_OUTPUT].decode(errors="replace"),
    )
