"""PGP keys made by the test, with Debian's gpg in a throw-away GNUPGHOME, in the formats helm reads.

helm signs with a secret keyring in the old binary format (`gpg --export-secret-keys`) and verifies
with a binary public keyring; people mostly hand out armored public keys, which Kubemart also takes.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

GPG = "/usr/bin/gpg"


@dataclass(frozen=True)
class SigningKey:
    name: str
    """The user id helm's --key looks for."""
    secring: Path
    public: bytes
    """Binary public keyring (gpg --export)."""
    public_armored: bytes


def make_key(home: Path, name: str) -> SigningKey:
    """A new ed25519 signing key `name <...@kubemart.test>` without passphrase, in its own GNUPGHOME."""
    gnupg = home / f"gnupg-{name}"
    gnupg.mkdir(mode=0o700, parents=True)
    env = {**os.environ, "GNUPGHOME": str(gnupg)}

    def gpg(*args: str) -> bytes:
        return subprocess.run(
            [GPG, "--batch", "--pinentry-mode", "loopback", "--passphrase", "", *args],
            check=True,
            capture_output=True,
            env=env,
            timeout=60,
        ).stdout

    uid = f"{name} <{name.lower()}@kubemart.test>"
    gpg("--quick-gen-key", uid, "ed25519", "sign", "never")
    secring = home / f"{name}-secring.gpg"
    secring.write_bytes(gpg("--export-secret-keys"))
    public, armored = gpg("--export"), gpg("--armor", "--export")
    # The agent gpg started for this home would outlive the test.
    subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=env, check=False, capture_output=True)
    return SigningKey(name=name, secring=secring, public=public, public_armored=armored)
