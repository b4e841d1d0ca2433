"""Helm provenance verification without a cluster: keyrings, helm verify's errors, marks.

The end-to-end cases sign a chart with a key gpg makes here and run the real `helm verify`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from kubemart.models.marketsource import VerifyProvider
from kubemart.sources.helm_http.provenance import provenance_url
from kubemart.sources.verify import VerificationError
from kubemart.sources.verify.keyring import KeyringError, crc24, pgp_keyring
from kubemart.sources.verify.marks import Marks
from kubemart.sources.verify.provenance import (
    Provenance,
    ProvenanceVerifier,
    archive_name,
    why_failed,
)
from support.cluster import BIN
from support.signing import SigningKey, make_key


def armor(data: bytes, *, headers: str = "", crc: int | None = None) -> bytes:
    body = base64.b64encode(data).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    check = base64.b64encode((crc24(data) if crc is None else crc).to_bytes(3, "big")).decode()
    text = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n" + headers + "\n" + "\n".join(lines)
    return (text + f"\n={check}\n-----END PGP PUBLIC KEY BLOCK-----\n").encode()


PACKET = bytes([0x99, 0x00, 0x03, 1, 2, 3])  # an old-format public-key packet header and 3 bytes


def test_crc24_matches_rfc4880_initial_value() -> None:
    assert crc24(b"") == 0xB704CE


@pytest.mark.parametrize(
    ("raw", "want", "armored"),
    [
        pytest.param(PACKET, PACKET, False, id="binary as is"),
        pytest.param(armor(PACKET), PACKET, True, id="armored"),
        pytest.param(
            armor(PACKET, headers="Version: GnuPG\nComment: test\n"), PACKET, True, id="armor headers"
        ),
        pytest.param(
            armor(PACKET) + armor(PACKET[::-1]), PACKET + PACKET[::-1], True, id="two blocks joined"
        ),
    ],
)
def test_keyrings_become_binary(raw: bytes, want: bytes, armored: bool) -> None:
    keyring = pgp_keyring(raw)
    assert keyring.data == want
    assert keyring.armored is armored
    assert keyring.fingerprint == hashlib.sha256(want).hexdigest()
    assert str(len(want)) in repr(keyring)
    assert "AQID" not in repr(keyring)  # never the bytes


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        pytest.param(b"  \n", "empty", id="empty"),
        pytest.param(b"hello", "neither", id="text"),
        pytest.param(armor(PACKET, crc=0x123456), "CRC-24", id="bad checksum"),
        pytest.param(armor(PACKET).replace(b"PUBLIC KEY", b"PRIVATE KEY"), "PRIVATE", id="private key"),
        pytest.param(
            b"-----BEGIN PGP MESSAGE-----\n\nAAAA\n-----END PGP MESSAGE-----\n", "armored but", id="message"
        ),
    ],
)
def test_bad_keyrings_are_refused_with_a_reason(raw: bytes, says: str) -> None:
    with pytest.raises(KeyringError, match=says):
        pgp_keyring(raw)


@pytest.mark.parametrize(
    ("stderr", "says", "keyring_fault"),
    [
        ("Error: openpgp: signature made by unknown entity", "not in the keyring", False),
        ('Error: sha256 sum does not match for a.tgz: "sha256:1" != "sha256:2"', "tampered", False),
        (
            "Error: openpgp: invalid signature: EdDSA verification failure",
            "signature of its provenance",
            False,
        ),
        ("Error: failed to decode signature: signature block not found", "no PGP signature", False),
        ('Error: provenance does not contain a SHA for a file named "x.tgz"', "another file name", False),
        ("Error: openpgp: key expired", "expired", False),
        ("Error: failed to load keyring: openpgp: invalid data: tag byte", "keyring cannot be read", True),
        ("Error: something new\x1b[31m", "something new", False),
        ("", "without a message", False),
    ],
)
def test_helm_verify_errors_say_why(stderr: str, says: str, keyring_fault: bool) -> None:
    why, fault = why_failed(stderr)
    assert says in why
    assert fault is keyring_fault
    assert "\x1b" not in why


@pytest.mark.parametrize(
    ("url", "want"),
    [
        ("http://h/charts/hello-0.1.0.tgz", "hello-0.1.0.tgz"),
        ("http://h/charts/hello-0.1.0.tgz?token=x", "hello-0.1.0.tgz"),
        ("http://h/download?id=3", "hello-0.1.0.tgz"),
        ("http://h/charts/..%2f.tgz", "hello-0.1.0.tgz"),
    ],
)
def test_archive_name_is_the_published_one_or_safe(url: str, want: str) -> None:
    assert archive_name(url, "hello", "0.1.0") == want


def test_provenance_url_keeps_the_query_after_the_suffix() -> None:
    assert provenance_url("https://h/a-1.tgz") == "https://h/a-1.tgz.prov"
    assert provenance_url("https://h/a-1.tgz?sig=x") == "https://h/a-1.tgz.prov?sig=x"


# --- the real helm verify --------------------------------------------------------------------


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SigningKey, SigningKey]:
    home = tmp_path_factory.mktemp("sign")
    trusted, other = make_key(home, "Publisher"), make_key(home, "Stranger")
    subprocess.run([str(BIN / "helm"), "create", str(home / "demo")], check=True, capture_output=True)
    subprocess.run(
        [
            str(BIN / "helm"),
            "package",
            str(home / "demo"),
            "-d",
            str(home),
            "--sign",
            "--key",
            trusted.name,
            "--keyring",
            str(trusted.secring),
        ],
        check=True,
        capture_output=True,
    )
    return home / "demo-0.1.0.tgz", trusted, other


def cached(archive: Path, cache: Path) -> tuple[Path, str]:
    hexdigest = hashlib.sha256(archive.read_bytes()).hexdigest()
    cache.mkdir(exist_ok=True)
    path = cache / f"{hexdigest}.tgz"
    shutil.copy(archive, path)
    return path, hexdigest


def run_verify(
    verifier: ProvenanceVerifier, archive: Path, hexdigest: str, prov: bytes | None, keyring: bytes
) -> object:
    provenance = Provenance(filename="demo-0.1.0.tgz", url="http://h/demo-0.1.0.tgz.prov", data=prov)
    return asyncio.run(
        verifier.verify(
            archive=archive,
            hexdigest=hexdigest,
            label="demo 0.1.0",
            provenance=provenance,
            keyring=pgp_keyring(keyring),
        )
    )


def test_a_signed_chart_verifies_once(signed: tuple[Path, SigningKey, SigningKey], tmp_path: Path) -> None:
    archive, trusted, _ = signed
    path, hexdigest = cached(archive, tmp_path / "cache")
    verifier = ProvenanceVerifier(Marks(path.parent), helm=str(BIN / "helm"))
    prov = Path(f"{archive}.prov").read_bytes()
    result = run_verify(verifier, path, hexdigest, prov, trusted.public_armored)
    assert result is not None
    assert "Publisher" in result.signed_by  # type: ignore[attr-defined]
    assert verifier.verified(hexdigest, pgp_keyring(trusted.public))
    assert Marks(path.parent).verified(hexdigest, VerifyProvider.PGP, pgp_keyring(trusted.public).fingerprint)
    # Marked: no helm at all the second time (a helm that does not exist would fail).
    again = ProvenanceVerifier(Marks(path.parent), helm="/nonexistent/helm")
    assert run_verify(again, path, hexdigest, None, trusted.public) is None
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(("verify-", ".mark-"))] == []


def test_refusals(signed: tuple[Path, SigningKey, SigningKey], tmp_path: Path) -> None:
    archive, trusted, other = signed
    path, hexdigest = cached(archive, tmp_path / "cache")
    verifier = ProvenanceVerifier(Marks(path.parent), helm=str(BIN / "helm"))
    prov = Path(f"{archive}.prov").read_bytes()
    with pytest.raises(VerificationError, match="not in the keyring") as foreign:
        run_verify(verifier, path, hexdigest, prov, other.public)
    assert foreign.value.reason == "VerificationFailed"
    assert not foreign.value.retryable
    with pytest.raises(VerificationError, match="is not signed"):
        run_verify(verifier, path, hexdigest, None, trusted.public)
    with pytest.raises(VerificationError, match="PGP signature"):
        run_verify(verifier, path, hexdigest, b"not a signature", trusted.public)
    # A refusal is remembered for exactly what was checked: no helm the second time.
    verifier._helm = "/nonexistent/helm"
    with pytest.raises(VerificationError, match="not in the keyring"):
        run_verify(verifier, path, hexdigest, prov, other.public)
    assert not verifier.verified(hexdigest, pgp_keyring(other.public))


def test_a_tampered_archive_is_caught(signed: tuple[Path, SigningKey, SigningKey], tmp_path: Path) -> None:
    archive, trusted, _ = signed
    tampered = tmp_path / "demo-0.1.0.tgz"
    tampered.write_bytes(archive.read_bytes() + b"\0" * 512)  # still a valid gzip stream for tar readers
    path, hexdigest = cached(tampered, tmp_path / "cache")
    verifier = ProvenanceVerifier(Marks(path.parent), helm=str(BIN / "helm"))
    with pytest.raises(VerificationError, match="tampered"):
        run_verify(verifier, path, hexdigest, Path(f"{archive}.prov").read_bytes(), trusted.public)
