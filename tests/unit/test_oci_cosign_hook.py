"""OciSource's cosign hook without a registry: what it hands cosign, and what it does when cosign cannot run."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from kubemart.models.marketapp import AppVersion
from kubemart.models.marketsource import MarketSource
from kubemart.runtime.settings import Settings
from kubemart.sources.base import ChartFetchError
from kubemart.sources.cache import ChartCache
from kubemart.sources.oci import OciSource
from kubemart.sources.registry import source_for
from kubemart.sources.verify.cosign import CosignChecked
from kubemart.sources.verify.errors import VerificationError
from kubemart.sources.verify.keyring import cosign_key

DIGEST = "sha256:" + "cd" * 32


def version(url: str) -> AppVersion:
    return AppVersion(version="1.0.0", digest=DIGEST, urls=[url])


def test_the_oci_source_is_cosign_checked_with_the_configured_binary(tmp_path: Path) -> None:
    source = MarketSource.model_validate(
        {"metadata": {"name": "s"}, "spec": {"type": "oci", "url": "oci://registry.example.com/charts"}}
    )
    found = source_for(
        source, auth=None, settings=Settings(cosign_binary="/opt/cosign"), cache=ChartCache(tmp_path)
    )
    assert isinstance(found, CosignChecked)
    assert isinstance(found, OciSource)
    assert found._cosign == "/opt/cosign"


def test_a_missing_cosign_binary_is_a_retried_verification_error(tmp_path: Path) -> None:
    oci = OciSource(
        "oci://registry.example.com/charts",
        charts=[],
        auth=None,
        cache=ChartCache(tmp_path),
        cosign=str(tmp_path / "no-such-cosign"),
    )
    with pytest.raises(VerificationError) as err:
        asyncio.run(
            oci.verify_cosign(version(f"oci://registry.example.com/charts/hello@{DIGEST}"), public_key=b"k")
        )
    assert err.value.reason == "VerificationError"
    assert err.value.retryable
    assert "KUBEMART_COSIGN_BINARY" in err.value.message


def test_a_chart_url_on_another_registry_is_never_given_to_cosign(tmp_path: Path) -> None:
    oci = OciSource("oci://registry.example.com/charts", charts=[], auth=None, cache=ChartCache(tmp_path))
    with pytest.raises(ChartFetchError) as err:
        asyncio.run(
            oci.verify_cosign(version(f"oci://elsewhere.example/charts/hello@{DIGEST}"), public_key=b"k")
        )
    assert err.value.reason == "InvalidChartURL"
    assert not err.value.retryable


def test_a_host_cosign_cannot_be_given_safely_is_refused(tmp_path: Path) -> None:
    oci = OciSource("oci://[::1]:5000/charts", charts=[], auth=None, cache=ChartCache(tmp_path))
    with pytest.raises(VerificationError) as err:
        asyncio.run(oci.verify_cosign(version(f"oci://[::1]:5000/charts/hello@{DIGEST}"), public_key=b"k"))
    assert err.value.reason == "VerificationUnsupported"
    assert not err.value.retryable


PUBLIC = b"-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n"


def test_cosign_pub_is_one_pem_public_key() -> None:
    assert cosign_key(PUBLIC, "Secret ns/keys").data == PUBLIC


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        pytest.param(b"ssh-ed25519 AAAA", "is not a PEM public key", id="not PEM"),
        pytest.param(
            PUBLIC
            + b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nxx\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n",
            "holds a private key",
            id="cosign.key pasted along",
        ),
    ],
)
def test_cosign_pub_refusals_say_why_and_never_echo_the_key(raw: bytes, says: str) -> None:
    with pytest.raises(VerificationError) as err:
        cosign_key(raw, "Secret ns/keys")
    assert err.value.reason == "VerificationKeyInvalid"
    assert says in err.value.message
    assert "Secret ns/keys" in err.value.message
    assert "AAAA" not in err.value.message
    assert "xx" not in err.value.message
