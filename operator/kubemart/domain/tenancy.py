"""Tenancy: whose permissions an app's helm commands use, and where an app may install (pure).

The operator may create anything anywhere; a tenant who may create AppInstalls must not borrow that.
So an app runs helm as a ServiceAccount of its own namespace (the apiserver's impersonation), and an
app may reach another namespace only when the operator's settings allow it or that account could
write Helm's release storage (Secrets) there itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

SERVICE_ACCOUNTS_GROUP = "system:serviceaccounts"

# Helm keeps its release records as Secrets in the target namespace: an account that may not create
# them there cannot install there, whatever else it may do.
RELEASE_STORAGE_VERB = "create"
RELEASE_STORAGE_RESOURCE = "secrets"


class Refused(Exception):
    """A tenancy rule refuses the app: `reason` is CamelCase, `message` says what to do."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Policy:
    """The operator's tenancy settings."""

    default_service_account: str | None = None
    require_service_account: bool = False
    allow_cross_namespace: bool = False


@dataclass(frozen=True)
class Account:
    """A ServiceAccount, as the apiserver names it when it is impersonated."""

    namespace: str
    name: str

    @property
    def user(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.name}"

    @property
    def groups(self) -> tuple[str, ...]:
        # What the apiserver gives a real token of this account, so RBAC bound to groups still applies.
        return (SERVICE_ACCOUNTS_GROUP, f"{SERVICE_ACCOUNTS_GROUP}:{self.namespace}")

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


def choose_account(requested: str | None, *, namespace: str, policy: Policy) -> Account | None:
    """Pure: the account an app acts as; None means the operator's own identity.

    Raises Refused when the policy requires an account and neither spec nor default names one.
    """
    name = requested or policy.default_service_account
    if name:
        return Account(namespace, name)
    if policy.require_service_account:
        raise Refused(
            "ServiceAccountRequired",
            "This operator requires every AppInstall to name a ServiceAccount (KUBEMART_REQUIRE_SERVICE_ACCOUNT): "
            f"set spec.serviceAccountName to a ServiceAccount in namespace {namespace} that may create the "
            "app's objects.",
        )
    return None


def missing_account(account: Account) -> Refused:
    return Refused(
        "ServiceAccountNotFound",
        f"ServiceAccount {account.name} does not exist in namespace {account.namespace}; create it (with a "
        "RoleBinding allowing what the app creates) or fix spec.serviceAccountName.",
    )


class TargetCheck(StrEnum):
    ALLOWED = "Allowed"
    REVIEW = "Review"
    """Ask the apiserver (a SubjectAccessReview) whether the account may write release storage there."""
    REFUSED = "Refused"


def target_namespace_check(
    *, app_namespace: str, target_namespace: str, account: Account | None, policy: Policy
) -> TargetCheck:
    """Pure: may an app in `app_namespace` install into `target_namespace`?"""
    if target_namespace == app_namespace or policy.allow_cross_namespace:
        return TargetCheck.ALLOWED
    # Without an account helm would act as the operator, which may write anywhere: no.
    return TargetCheck.REVIEW if account is not None else TargetCheck.REFUSED


def target_namespace_refusal(
    *, app_namespace: str, target_namespace: str, account: Account | None
) -> Refused:
    if account is None:
        remedy = (
            "set spec.serviceAccountName to an account allowed to create Secrets there, or have an admin set "
            "KUBEMART_ALLOW_CROSS_NAMESPACE=true"
        )
    else:
        remedy = (
            f"grant ServiceAccount {account} the right to {RELEASE_STORAGE_VERB} {RELEASE_STORAGE_RESOURCE} "
            "(and the app's objects) there, then set the annotation kubemart.io/reconcile-requested-at, or "
            "have an admin set KUBEMART_ALLOW_CROSS_NAMESPACE=true"
        )
    who = f"ServiceAccount {account}" if account is not None else "the AppInstall"
    return Refused(
        "TargetNamespaceNotAllowed",
        f"AppInstall in namespace {app_namespace} may not install into namespace {target_namespace}: "
        f"{who} may not write there and KUBEMART_ALLOW_CROSS_NAMESPACE is false; {remedy}.",
    )


def forbidden_message(helm_message: str, account: Account | None) -> str:
    """Helm's refusal, with who was refused and what to do about it."""
    if account is None:
        return helm_message
    return (
        f"{helm_message.rstrip('.')}. ServiceAccount {account} may not do this: grant it the permission (a "
        "Role or ClusterRole, and a binding) or change the values so the chart does not create that object, "
        "then set the annotation kubemart.io/reconcile-requested-at."
    )
