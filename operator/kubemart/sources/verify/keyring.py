"""The keys a source trusts, read from the Secret `spec.verify.secretRef` names.

helm's verification (ProtonMail go-crypto's `ReadKeyRing`) reads only binary OpenPGP keyrings, while
people usually export armored ones (`gpg --export --armor`); the Secret's `keyring` may hold either and
an armored one is de-armored here (RFC 4880 section 6: base64 with a CRC-24), so helm gets binary.
The bytes are never logged or put in a message: messages name the Secret and the key only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from lightkube.resources.core_v1 import Secret

from kubemart.adapters.kube import Kube, KubeError
from kubemart.models.marketsource import Verify, VerifyProvider
from kubemart.sources.verify.errors import VerificationError

MAX_KEYRING_BYTES = 256 * 1024
"""Largest keyring read (a keyring of a few public keys is a few KiB)."""
KEY_FOR = {VerifyProvider.PGP: "keyring", VerifyProvider.COSIGN: "cosign.pub"}

_ARMOR = re.compile(
    rb"-----BEGIN PGP (?P<kind>PUBLIC KEY BLOCK|PRIVATE KEY BLOCK)-----\r?\n"
    rb"(?P<body>.*?)"
    rb"-----END PGP (?P=kind)-----",
    re.DOTALL,
)


class KeyringError(ValueError):
    """The keyring bytes are not a keyring; the message says why, without the bytes."""


@dataclass(frozen=True)
class Keyring:
    """Binary OpenPGP keys (helm) or a PEM public key (cosign), with a fingerprint of the bytes.

    `fingerprint` (sha256 of the bytes) names the keys in cached verification results, so a changed
    keyring verifies every chart again.
    """

    data: bytes
    armored: bool = False

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def __repr__(self) -> str:
        return f"Keyring(<{len(self.data)} bytes>, fingerprint={self.fingerprint[:16]})"


def crc24(data: bytes) -> int:
    """Pure: OpenPGP's CRC-24 (RFC 4880 section 6.1)."""
    crc = 0xB704CE
    for byte in data:
        crc ^= byte << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1864CFB
    return crc & 0xFFFFFF


def pgp_keyring(raw: bytes) -> Keyring:
    """Pure: binary OpenPGP keys from `raw`, binary or one or more armored blocks. Raises KeyringError."""
    if not raw.strip():
        raise KeyringError("it is empty")
    blocks = list(_ARMOR.finditer(raw))
    if not blocks:
        if raw.lstrip().startswith(b"-----BEGIN"):
            raise KeyringError("it is armored but not a PGP PUBLIC KEY BLOCK")
        # A binary packet's first byte has its top bit set (RFC 4880 section 4.2).
        if not raw[0] & 0x80:
            raise KeyringError("it is neither a binary OpenPGP keyring nor an armored one")
        return Keyring(raw)
    out = bytearray()
    for block in blocks:
        if block.group("kind") != b"PUBLIC KEY BLOCK":
            raise KeyringError("it holds a PRIVATE key block; put only public keys in it (gpg --export)")
        out += _dearmor(block.group("body"))
    return Keyring(bytes(out), armored=True)


def _dearmor(body: bytes) -> bytes:
    lines = [ln.strip() for ln in body.splitlines()]
    # Armor headers (Version: ..., Comment: ...) end at a blank line; base64 never holds a colon.
    if b"" in lines and all(b":" in ln for ln in lines[: lines.index(b"")]):
        lines = lines[lines.index(b"") + 1 :]
    lines = [ln for ln in lines if ln]
    checksum = None
    if lines and lines[-1].startswith(b"="):
        checksum = lines.pop()[1:]
    try:
        data = base64.b64decode(b"".join(lines), validate=True)
        want = base64.b64decode(checksum, validate=True) if checksum else None
    except (binascii.Error, ValueError) as exc:
        raise KeyringError("its armored block is not valid base64") from exc
    if want is not None and int.from_bytes(want, "big") != crc24(data):
        raise KeyringError("its armored block fails its CRC-24 checksum (it was cut or changed)")
    if not data:
        raise KeyringError("its armored block is empty")
    return data


async def read_keyring(kube: Kube, verify: Verify) -> Keyring:
    """The keys `verify.secretRef` holds under `keyring` (helm) or `cosign.pub` (cosign).

    Raises VerificationError: retryable while the Secret or the key is missing or unreadable (creating
    or fixing it is all it takes), so that the next retry picks it up.
    """
    ref = verify.secret_ref
    key = KEY_FOR[verify.provider]
    where = f"Secret {ref.namespace}/{ref.name}"
    try:
        body = await kube.get(Secret, ref.name, ref.namespace)
    except KubeError as err:
        raise VerificationError(
            "VerificationSecretUnreadable",
            f"{where} (spec.verify.secretRef) cannot be read: {err.message}",
            retryable=True,
        ) from err
    if body is None:
        raise VerificationError(
            "VerificationSecretNotFound",
            f"{where} named in spec.verify.secretRef does not exist, so no chart of this source can be "
            f"verified and none is installed; create it with the trusted keys under `{key}`.",
            retryable=True,
        )
    encoded = (body.get("data") or {}).get(key)
    if not encoded:
        raise VerificationError(
            "VerificationKeyMissing",
            f"{where} has no `{key}` key, so no chart of this source can be verified and none is installed; "
            f"put the trusted {'PGP public keys' if key == 'keyring' else 'cosign public key'} under `{key}`.",
            retryable=True,
        )
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) > MAX_KEYRING_BYTES:
        raise VerificationError(
            "VerificationKeyInvalid",
            f"`{key}` in {where} is larger than {MAX_KEYRING_BYTES // 1024} KiB; keep only the trusted public keys.",
            retryable=True,
        )
    if verify.provider is VerifyProvider.COSIGN:
        return cosign_key(raw, where)
    try:
        return pgp_keyring(raw)
    except KeyringError as exc:
        raise VerificationError(
            "VerificationKeyInvalid",
            f"`{key}` in {where} cannot be used: {exc}; put the trusted PGP public keys there, binary "
            "(gpg --export) or armored (gpg --export --armor).",
            retryable=True,
        ) from exc


def cosign_key(raw: bytes, where: str) -> Keyring:
    """Pure: `cosign.pub` as a Keyring; VerificationKeyInvalid unless a PEM public key and nothing private."""
    if b"-----BEGIN PUBLIC KEY-----" not in raw:
        raise VerificationError(
            "VerificationKeyInvalid",
            f"`cosign.pub` in {where} is not a PEM public key (cosign.pub from `cosign generate-key-pair`); fix it.",
            retryable=True,
        )
    if b"PRIVATE KEY-----" in raw:  # cosign.key pasted along: the operator must never hold it
        raise VerificationError(
            "VerificationKeyInvalid",
            f"`cosign.pub` in {where} holds a private key; put only cosign.pub there and keep cosign.key "
            "with the publisher.",
            retryable=True,
        )
    return Keyring(raw)
