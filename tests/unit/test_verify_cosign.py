"""The cosign verifier's pure parts: references, the docker config, the command line, cosign's answers."""

from __future__ import annotations

import asyncio
import base64
import time
from pathlib import Path

import pytest

from kubemart.sources.credentials import RepoAuth
from kubemart.sources.verify.cosign import (
    CosignResult,
    CosignStatus,
    classify,
    cosign_command,
    docker_config,
    reference,
    refusal,
    verify_cosign,
)
from support.cluster import BIN

DIGEST = "sha256:" + "ab" * 32


def test_reference_is_by_digest() -> None:
    assert reference("127.0.0.1:5000", "charts/hello", DIGEST) == f"127.0.0.1:5000/charts/hello@{DIGEST}"


@pytest.mark.parametrize(
    ("registry", "repository", "digest"),
    [
        pytest.param("-registry", "x", DIGEST, id="flag-like"),
        pytest.param("host", "charts/hello:1.0", DIGEST, id="a tag"),
        pytest.param("host", "charts hello", DIGEST, id="space"),
        pytest.param("host", "hello", "sha256:abc", id="short digest"),
        pytest.param("host", "hello", "latest", id="no digest"),
    ],
)
def test_bad_references_are_refused(registry: str, repository: str, digest: str) -> None:
    with pytest.raises(ValueError, match="not"):
        reference(registry, repository, digest)


def test_docker_config_holds_credentials_for_that_registry_only() -> None:
    basic = docker_config("reg:5000", RepoAuth(username="u", password="p:w"))
    assert basic == {"auths": {"reg:5000": {"auth": base64.b64encode(b"u:p:w").decode()}}}
    assert docker_config("reg:5000", RepoAuth(token="t0k")) == {
        "auths": {"reg:5000": {"registrytoken": "t0k"}}
    }
    assert docker_config("reg:5000", None) == {"auths": {}}
    assert docker_config("reg:5000", RepoAuth(ca_pem="PEM")) == {"auths": {}}


def test_command_line_holds_no_secret_and_verifies_tls(tmp_path: Path) -> None:
    run = cosign_command(
        cosign="/bin/cosign",
        ref=f"reg:5000/hello@{DIGEST}",
        key=tmp_path / "cosign.pub",
        workdir=tmp_path,
        ca=tmp_path / "ca-bundle.pem",
        plain_http=False,
    )
    assert run.args == [
        "/bin/cosign",
        "verify",
        "--key",
        str(tmp_path / "cosign.pub"),
        "--insecure-ignore-tlog=true",
        "--output",
        "json",
        f"reg:5000/hello@{DIGEST}",
    ]
    assert "--allow-insecure-registry" not in run.args
    assert run.env["DOCKER_CONFIG"] == str(tmp_path / "docker")
    assert run.env["SSL_CERT_FILE"] == str(tmp_path / "ca-bundle.pem")
    assert run.env["SIGSTORE_REKOR_PUBLIC_KEY"]  # no TUF fetch for a key-based check
    assert not any(k.endswith("_PROXY") or k.startswith("AWS_") for k in run.env)


def test_plain_http_only_when_asked(tmp_path: Path) -> None:
    run = cosign_command(
        cosign="cosign", ref="r/x@" + DIGEST, key=tmp_path / "k", workdir=tmp_path, ca=None, plain_http=True
    )
    assert "--allow-http-registry" in run.args
    assert "SSL_CERT_FILE" not in run.env


@pytest.mark.parametrize(
    ("code", "stderr", "status", "says"),
    [
        (0, "Verification for r/x@sha256:.. --\n", CosignStatus.VERIFIED, "verified"),
        (
            10,
            "Error: no signatures found\nmain.go:74: error during command execution: no signatures found",
            CosignStatus.UNSIGNED,
            "no cosign signature",
        ),
        (
            12,
            "Error: no matching signatures: invalid signature when validating ASN.1 encoded signature",
            CosignStatus.BAD_SIGNATURE,
            "signed by another key, or the signature was altered",
        ),
        (
            12,
            "Error: no matching signatures: invalid or missing digest in claim: sha256:0122",
            CosignStatus.BAD_SIGNATURE,
            "the signature is of another digest",
        ),
        (
            12,
            "Error: no matching signatures: failed to verify signature",
            CosignStatus.BAD_SIGNATURE,
            "not signed by the trusted key",
        ),
        (
            1,
            "Error: GET https://r/v2/x/manifests/sha256:..: UNAUTHORIZED: authentication required",
            CosignStatus.ERROR,
            "refused",
        ),
        (
            1,
            'Error: Get "https://r/v2/": tls: failed to verify certificate: x509: certificate signed by unknown authority',
            CosignStatus.ERROR,
            "x509",
        ),
        (
            1,
            "Error: dial tcp 127.0.0.1:1: connect: connection refused",
            CosignStatus.UNREACHABLE,
            "could not be read",
        ),
        (2, "panic: something", CosignStatus.ERROR, "cosign failed: panic: something"),
    ],
)
def test_cosign_answers(code: int, stderr: str, status: CosignStatus, says: str) -> None:
    result = classify(code, stderr)
    assert result.status is status
    assert says in result.detail
    assert result.ok is (status is CosignStatus.VERIFIED)
    assert result.retryable is (status in (CosignStatus.UNREACHABLE, CosignStatus.ERROR))


@pytest.mark.skipif(not (BIN / "cosign").exists(), reason="bin/cosign is built by hack/build.sh (make tools)")
def test_real_cosign_fails_fast_without_the_internet(tmp_path: Path) -> None:
    """The real binary: a closed port is Unreachable at once (no sigstore TUF fetch first), nothing left behind."""
    started = time.monotonic()
    result = asyncio.run(
        verify_cosign(
            cosign=str(BIN / "cosign"),
            registry="127.0.0.1:1",
            repository="charts/hello",
            digest=DIGEST,
            public_key=b"-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n",
            auth=RepoAuth(username="u", password="s3cret"),
        )
    )
    assert time.monotonic() - started < 20
    assert result.status in (CosignStatus.UNREACHABLE, CosignStatus.ERROR), result
    assert "s3cret" not in result.detail


@pytest.mark.parametrize(
    ("status", "reason", "retryable"),
    [
        (CosignStatus.VERIFIED, None, None),
        (CosignStatus.UNSIGNED, "VerificationFailed", False),
        (CosignStatus.BAD_SIGNATURE, "VerificationFailed", False),
        (CosignStatus.UNREACHABLE, "VerificationError", True),
        (CosignStatus.ERROR, "VerificationError", True),
    ],
)
def test_how_a_cosign_result_stops_an_install(
    status: CosignStatus, reason: str | None, retryable: bool | None
) -> None:
    error = refusal("hello 1.0.0", CosignResult(status, "it has no cosign signature"))
    if reason is None:
        assert error is None
        return
    assert error is not None
    assert (error.reason, error.retryable) == (reason, retryable)
    assert "hello 1.0.0" in error.message
    assert "it has no cosign signature" in error.message
