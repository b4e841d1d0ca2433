"""Whose permissions an app uses: the account it acts as, checked against the operator's policy.

The decisions are domain.tenancy's; this module asks the apiserver what they need (does the
ServiceAccount exist, may it write Helm's storage in the target namespace) and turns a refusal
into a Problem, which the reconcile reports as Stalled or Ready=False with an Event.
"""

from __future__ import annotations

from lightkube.resources.core_v1 import ServiceAccount

from kubemart.adapters.kube import Kube, KubeError
from kubemart.domain.tenancy import (
    RELEASE_STORAGE_RESOURCE,
    RELEASE_STORAGE_VERB,
    Account,
    Policy,
    Refused,
    TargetCheck,
    choose_account,
    missing_account,
    target_namespace_check,
    target_namespace_refusal,
)
from kubemart.models.appinstall import Phase
from kubemart.runtime.settings import Settings
from kubemart.services.problems import Problem


def policy_of(settings: Settings) -> Policy:
    return Policy(
        default_service_account=settings.default_service_account or None,
        require_service_account=settings.require_service_account,
        allow_cross_namespace=settings.allow_cross_namespace,
    )


async def tenant_account(
    kube: Kube,
    settings: Settings,
    *,
    requested: str | None,
    app_namespace: str,
    target_namespace: str,
    check_exists: bool = True,
) -> Account | None:
    """The account the app acts as (None: the operator), or a Problem saying why it may not act."""
    policy = policy_of(settings)
    try:
        account = choose_account(requested, namespace=app_namespace, policy=policy)
        if account is not None and check_exists and not await _exists(kube, account):
            # Not stalled: creating the account fixes it, and nothing would wake the app then.
            raise missing_account(account)
        check = target_namespace_check(
            app_namespace=app_namespace, target_namespace=target_namespace, account=account, policy=policy
        )
        if check is TargetCheck.REVIEW and account is not None:
            allowed = await _may_write_release_storage(kube, account, target_namespace)
            check = TargetCheck.ALLOWED if allowed else TargetCheck.REFUSED
        if check is TargetCheck.REFUSED:
            raise target_namespace_refusal(
                app_namespace=app_namespace, target_namespace=target_namespace, account=account
            )
    except Refused as refused:
        stalled = refused.reason != "ServiceAccountNotFound"
        raise Problem(
            refused.reason,
            refused.message,
            stalled=stalled,
            phase=Phase.FAILED if stalled else Phase.PENDING,
        ) from None
    return account


async def _exists(kube: Kube, account: Account) -> bool:
    try:
        return await kube.get(ServiceAccount, account.name, account.namespace) is not None
    except KubeError as err:
        raise Problem("ApiUnavailable", f"Reading ServiceAccount {account} failed: {err.message}") from err


async def _may_write_release_storage(kube: Kube, account: Account, namespace: str) -> bool:
    try:
        return await kube.may(
            account, verb=RELEASE_STORAGE_VERB, resource=RELEASE_STORAGE_RESOURCE, namespace=namespace
        )
    except KubeError as err:
        raise Problem(
            "ApiUnavailable",
            f"Asking whether ServiceAccount {account} may write in namespace {namespace} failed: {err.message}",
        ) from err
