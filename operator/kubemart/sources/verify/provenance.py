"""Helm provenance: a chart archive checked against its .prov file with helm's own `helm verify`.

The provenance file (`<chart URL>.prov`, made by `helm package --sign`) is a PGP clear-signed
document holding the sha256 of the archive under its file name. helm checks the signature against
the keyring and the archive's hash against the signed one; we run it on a temporary copy named as
the publisher named it, with the keyring in a 0600 file, and turn its one-line error into a reason.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from kubemart.adapters.helm_verify import HelmVerifyRun, helm_verify
from kubemart.domain.clip import one_line
from kubemart.models.marketsource import VerifyProvider
from kubemart.sources.verify.errors import VerificationError
from kubemart.sources.verify.keyring import Keyring
from kubemart.sources.verify.marks import Marks

MAX_PROVENANCE_BYTES = 256 * 1024
"""Largest .prov accepted (it holds the Chart.yaml and a signature: a few KiB)."""
DEFAULT_TIMEOUT = 30.0
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,200}\.tgz")


@dataclass(frozen=True)
class Provenance:
    """What a source serves for one chart version: the archive's file name and its .prov (None: not found)."""

    filename: str
    url: str
    data: bytes | None


@dataclass(frozen=True)
class Verified:
    signed_by: str
    key_fingerprint: str


def archive_name(url: str, chart: str, version: str) -> str:
    """Pure: the file name the .prov names the archive by: the URL's last segment, as helm pull keeps it."""
    last = url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    return last if _SAFE_NAME.fullmatch(last) else f"{chart}-{version}.tgz"


def why_failed(stderr: str) -> tuple[str, bool]:
    """Pure: helm verify's error as (why, is the keyring at fault). `why` completes "failed verification: ..."."""
    line = next(
        (
            ln.strip()[len("Error:") :].strip()
            for ln in reversed(stderr.splitlines())
            if ln.strip().startswith("Error:")
        ),
        one_line(stderr, 300) or "helm verify failed without a message",
    )
    text = line.lower()
    if "failed to load keyring" in text:
        return f"the keyring cannot be read by helm ({one_line(line, 200)})", True
    if "signature made by unknown entity" in text:
        return "it is signed by a key that is not in the keyring (unknown signer)", False
    if "sha256 sum does not match" in text:
        return (
            "the archive's sha256 is not the one its provenance file signs: the chart was changed after it "
            "was signed (tampered)",
            False,
        )
    if "invalid signature" in text:
        return "the signature of its provenance file is invalid: the file was changed after signing", False
    if "expired" in text:
        return f"the signature or the signing key has expired ({one_line(line, 200)})", False
    if "signature block not found" in text or "failed to decode signature" in text:
        return "its provenance file holds no PGP signature", False
    if "does not contain a sha for a file named" in text:
        return "its provenance file signs another file name than the chart's", False
    return f"helm verify refused it ({one_line(line, 300)})", False


class ProvenanceVerifier:
    """Runs and remembers helm provenance checks for the charts in one cache directory."""

    def __init__(self, marks: Marks, *, helm: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.marks = marks
        self._helm = helm
        self._timeout = timeout

    def verified(self, hexdigest: str, keyring: Keyring) -> bool:
        return self.marks.verified(hexdigest, VerifyProvider.PGP, keyring.fingerprint)

    async def verify(
        self, *, archive: Path, hexdigest: str, label: str, provenance: Provenance, keyring: Keyring
    ) -> Verified | None:
        """Check `archive` (sha256 `hexdigest`) against `provenance`; None if already verified.

        `label` names the chart in messages ("hello 0.1.0"). Raises VerificationError: VerificationFailed
        (not retryable) for a chart that is unsigned, tampered or signed by another key.
        """
        if self.verified(hexdigest, keyring):
            return None
        short = f"sha256:{hexdigest[:12]}"
        if provenance.data is None:
            raise VerificationError(
                "VerificationFailed",
                f"Chart {label} ({short}) is not signed: {provenance.url} does not exist, and this source "
                "requires signed charts (spec.verify), so it is not installed. Publish the chart signed "
                "(helm package --sign) with its .prov next to it, or remove spec.verify from the source.",
            )
        prov_digest = hashlib.sha256(provenance.data).hexdigest()
        key = (hexdigest, prov_digest, keyring.fingerprint)
        known = self.marks.failure(key)
        if known is not None:
            raise known
        try:
            run = await _run(self._helm, archive, provenance, keyring, self._timeout)
        except TimeoutError:
            raise VerificationError(
                "VerificationTimeout",
                f"helm verify of chart {label} did not finish within {self._timeout:g}s; it is tried again later.",
                retryable=True,
            ) from None
        except OSError as exc:
            raise VerificationError(
                "VerificationError",
                f"helm verify of chart {label} could not run ({exc.strerror or type(exc).__name__}); check "
                "the operator's helm binary and its cache directory.",
                retryable=True,
            ) from exc
        if run.returncode != 0:
            why, keyring_fault = why_failed(run.stderr)
            if keyring_fault:
                raise VerificationError(
                    "VerificationKeyInvalid",
                    f"Chart {label} cannot be verified: {why}; put binary or armored PGP public keys in the "
                    "Secret's `keyring`.",
                    retryable=True,
                )
            error = VerificationError(
                "VerificationFailed",
                f"Chart {label} ({short}) failed verification: {why}. It is not installed; publish a correctly "
                "signed chart (a new digest is checked again) or trust its key in the verify Secret.",
            )
            self.marks.fail(key, error)
            raise error
        verified = _parse_success(run.stdout)
        await asyncio.to_thread(
            self.marks.record,
            hexdigest,
            VerifyProvider.PGP,
            keyring.fingerprint,
            {"signedBy": verified.signed_by, "key": verified.key_fingerprint, "provenance": prov_digest},
        )
        return verified


def _parse_success(stdout: str) -> Verified:
    fields = dict(ln.split(":", 1) for ln in stdout.splitlines() if ":" in ln)
    return Verified(
        signed_by=one_line(fields.get("Signed by", "").strip(), 200),
        key_fingerprint=one_line(fields.get("Using Key With Fingerprint", "").strip(), 80),
    )


async def _run(
    helm: str, archive: Path, provenance: Provenance, keyring: Keyring, seconds: float
) -> HelmVerifyRun:
    # A private directory: the archive under the publisher's name (a hard link, or a copy across
    # filesystems), its .prov next to it as helm wants, and the keyring readable by us only.
    with tempfile.TemporaryDirectory(prefix="verify-", dir=archive.parent) as tmp:
        work = Path(tmp)
        chart = work / provenance.filename
        await asyncio.to_thread(
            _stage, archive, chart, provenance.data or b"", keyring.data, work / "keyring.gpg"
        )
        return await helm_verify(helm, chart, work / "keyring.gpg", seconds=seconds)


def _stage(archive: Path, chart: Path, prov: bytes, keyring: bytes, keyring_path: Path) -> None:
    try:
        os.link(archive, chart)
    except OSError:
        chart.write_bytes(archive.read_bytes())
    Path(f"{chart}.prov").write_bytes(prov)
    fd = os.open(keyring_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(keyring)
