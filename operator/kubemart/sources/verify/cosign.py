"""cosign key-based verification of an OCI artifact (a chart pushed with `helm push`), by digest.

For the OCI source: it implements `CosignChecked.verify_cosign` by calling `verify_cosign` with the
registry, repository and manifest digest of the version it fetched, and its credentials; `Charts`
calls that after `fetch` for a source with `verify.provider: cosign`, with the key from the Secret.

How cosign runs here, and why:
- `cosign verify --key <file> --insecure-ignore-tlog=true <registry>/<repository>@sha256:<digest>`:
  keys from the Secret, no Rekor transparency log (an operator in a private network cannot reach the
  public one; the key alone is the trust root, as with helm provenance), and by digest, so what is
  verified is exactly what is pulled.
- TLS is always verified. A private CA (the source's `ca.crt`) is trusted in addition to the public
  ones (certifi's bundle, as httpx has them), through SSL_CERT_FILE, which Go reads; cosign's own
  `--registry-cacert` would trust that CA alone, and break registries that redirect blobs to a
  public CDN. `--allow-insecure-registry` (no certificate check) is never used, and
  `--allow-http-registry` only for a source that says plain HTTP (a registry on loopback in tests).
- Registry credentials never go on the command line (where `ps` shows them): they are written to a
  `config.json` in a private temporary directory named by DOCKER_CONFIG, as `docker login` would.
- cosign's other network: the sigstore TUF root. With SIGSTORE_REKOR_PUBLIC_KEY pointing at a file
  cosign does not fetch it (it is for keyless and tlog checks, which are off here), so verification
  needs no access beyond the registry and does not wait on a blocked internet.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol, runtime_checkable

import certifi

from kubemart.domain.clip import one_line
from kubemart.models.marketapp import AppVersion
from kubemart.sources.credentials import RepoAuth
from kubemart.sources.verify.errors import VerificationError

DEFAULT_TIMEOUT = 60.0
MAX_OUTPUT = 64 * 1024
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_REFERENCE = re.compile(r"[a-z0-9.-]+(:[0-9]{1,5})?(/[a-z0-9._-]+)+")

# cosign's exit codes (cmd/cosign/errors/exit_codes.go).
EXIT_NO_SIGNATURE = 10
EXIT_NO_TAG = 11
EXIT_NO_MATCHING_SIGNATURE = 12


class CosignStatus(StrEnum):
    VERIFIED = "Verified"
    UNSIGNED = "Unsigned"
    """No signature at all: refused where verification is required."""
    BAD_SIGNATURE = "BadSignature"
    """Signatures, but none by the key (another key, or the artifact changed after signing)."""
    UNREACHABLE = "Unreachable"
    """The registry or the artifact could not be read: may pass later."""
    ERROR = "Error"


@dataclass(frozen=True)
class CosignResult:
    status: CosignStatus
    detail: str
    """One line, from cosign's output, for a message (no credential: cosign never prints them)."""

    @property
    def ok(self) -> bool:
        return self.status is CosignStatus.VERIFIED

    @property
    def retryable(self) -> bool:
        return self.status in (CosignStatus.UNREACHABLE, CosignStatus.ERROR)


@dataclass(frozen=True)
class CosignRun:
    args: list[str]
    env: dict[str, str]


def reference(registry: str, repository: str, digest: str) -> str:
    """Pure: `registry/repository@digest`; ValueError for anything that could be read as a flag or a tag."""
    ref = f"{registry}/{repository}".lower()
    if not _REFERENCE.fullmatch(ref) or ref.startswith("-"):
        raise ValueError(f"{one_line(ref, 200)!r} is not a registry/repository reference")
    if not _DIGEST.fullmatch(digest):
        raise ValueError("the digest is not sha256:<64 hex>")
    return f"{ref}@{digest}"


def docker_config(registry: str, auth: RepoAuth | None) -> dict[str, object]:
    """Pure: a docker config.json that gives `auth` for `registry` only (basic, or a bearer token)."""
    if auth is None or not auth.has_credentials:
        return {"auths": {}}
    if auth.token is not None:
        entry: dict[str, str] = {"registrytoken": auth.token}
    else:
        pair = f"{auth.username}:{auth.password or ''}".encode()
        entry = {"auth": base64.b64encode(pair).decode()}
    return {"auths": {registry: entry}}


def cosign_command(
    *, cosign: str, ref: str, key: Path, workdir: Path, ca: Path | None, plain_http: bool
) -> CosignRun:
    """Pure: the argument list and the environment for one verification; secrets only in files of `workdir`.

    `ca` is a CA bundle file (public CAs and the source's own), or None for the system's.
    """
    args = [cosign, "verify", "--key", str(key), "--insecure-ignore-tlog=true", "--output", "json"]
    if plain_http:
        args.append("--allow-http-registry")
    args.append(ref)
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(workdir),
        "DOCKER_CONFIG": str(workdir / "docker"),
        "TUF_ROOT": str(workdir / "tuf"),
        "SIGSTORE_REKOR_PUBLIC_KEY": str(key),
        # Nothing from the operator's environment: no proxy credentials, no ambient cloud keychains.
    }
    if ca is not None:
        env["SSL_CERT_FILE"] = str(ca)
    return CosignRun(args=args, env=env)


def classify(returncode: int, stderr: str) -> CosignResult:
    """Pure: cosign's exit code and stderr as a result."""
    line = _last_error(stderr)
    text = stderr.lower()
    if returncode == 0:
        return CosignResult(CosignStatus.VERIFIED, "verified against the key")
    if returncode == EXIT_NO_SIGNATURE or "no signatures found" in text:
        return CosignResult(CosignStatus.UNSIGNED, "it has no cosign signature")
    if returncode == EXIT_NO_MATCHING_SIGNATURE or "no matching signatures" in text:
        return CosignResult(
            CosignStatus.BAD_SIGNATURE,
            f"its signatures do not verify with the trusted key ({_mismatch(text)})",
        )
    if any(s in text for s in ("unauthorized", "denied", "x509:", "tls:")):
        return CosignResult(CosignStatus.ERROR, f"the registry refused cosign: {line}")
    if returncode == EXIT_NO_TAG or any(s in text for s in ("connection refused", "no such host", "timeout")):
        return CosignResult(CosignStatus.UNREACHABLE, f"the registry could not be read: {line}")
    return CosignResult(CosignStatus.ERROR, f"cosign failed: {line}")


def _mismatch(text: str) -> str:
    """Why no signature matched, in words, from what cosign 2.x says (checked against the real CLI)."""
    if "invalid signature" in text:
        # ECDSA cannot tell a signature by another key from signature bytes that were altered.
        return "signed by another key, or the signature was altered: invalid signature"
    if "digest in claim" in text:
        return (
            "the signature is of another digest: copied from another artifact, or the chart changed after "
            "signing"
        )
    return "not signed by the trusted key"


def _last_error(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.lower().startswith("error")]
    return one_line((errors or lines or ["no message"])[-1], 300)


async def verify_cosign(
    *,
    cosign: str,
    registry: str,
    repository: str,
    digest: str,
    public_key: bytes,
    auth: RepoAuth | None,
    plain_http: bool = False,
    seconds: float = DEFAULT_TIMEOUT,
) -> CosignResult:
    """Verify `registry/repository@digest` against `public_key` (PEM) with the cosign CLI.

    Never raises for what cosign says; ValueError for a reference that is not one. TimeoutError is
    turned into an Unreachable result.
    """
    ref = reference(registry, repository, digest)
    with tempfile.TemporaryDirectory(prefix="cosign-") as tmp:
        work = Path(tmp)
        key, ca = await asyncio.to_thread(_stage, work, registry, public_key, auth)
        run = cosign_command(cosign=cosign, ref=ref, key=key, workdir=work, ca=ca, plain_http=plain_http)
        proc = await asyncio.create_subprocess_exec(
            *run.args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=run.env,
        )
        try:
            async with asyncio.timeout(seconds):
                _, stderr = await proc.communicate()
        except TimeoutError:
            return CosignResult(CosignStatus.UNREACHABLE, f"cosign did not finish within {seconds:g}s")
        finally:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        return classify(proc.returncode or 0, stderr[:MAX_OUTPUT].decode(errors="replace"))


def _stage(work: Path, registry: str, public_key: bytes, auth: RepoAuth | None) -> tuple[Path, Path | None]:
    (work / "docker").mkdir(mode=0o700)
    _private(work / "docker" / "config.json", json.dumps(docker_config(registry, auth)).encode())
    key = work / "cosign.pub"
    _private(key, public_key)
    ca = None
    if auth is not None and auth.ca_pem:
        ca = work / "ca-bundle.pem"
        public = Path(certifi.where()).read_bytes()
        _private(ca, public + b"\n" + auth.ca_pem.encode())
    return key, ca


def _private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


@runtime_checkable
class CosignChecked(Protocol):
    """A source whose charts cosign can check (the OCI source): `Charts` calls this after `fetch`.

    The source knows the registry, repository and manifest digest of `version` and its credentials,
    and calls `verify_cosign` with them; `Charts` reads the key, keeps the marks and reports refusals.
    """

    async def verify_cosign(self, version: AppVersion, *, public_key: bytes) -> CosignResult: ...


def refusal(label: str, result: CosignResult) -> VerificationError | None:
    """Pure: how a cosign result stops an install (None when verified)."""
    if result.ok:
        return None
    if result.retryable:
        return VerificationError(
            "VerificationError",
            f"Chart {label} could not be verified with cosign: {result.detail}; it is tried again later.",
            retryable=True,
        )
    return VerificationError(
        "VerificationFailed",
        f"Chart {label} failed verification: {result.detail}. It is not installed; push a chart signed with "
        "the trusted key (cosign sign --key), or trust its key in the verify Secret's cosign.pub.",
    )
