"""Signature verification of charts before install: helm provenance (PGP) and cosign (OCI).

A source with `spec.verify` installs only charts whose signature checks against the keys in the
Secret `spec.verify.secretRef` names; see docs/sources/verification.md.
"""

from kubemart.sources.verify.errors import VerificationError

__all__ = ["VerificationError"]
