"""Tenancy decisions: which account an app acts as, and where it may install."""

from __future__ import annotations

import pytest

from kubemart.adapters.helm import impersonation_flags
from kubemart.domain.tenancy import (
    Account,
    Policy,
    Refused,
    TargetCheck,
    choose_account,
    forbidden_message,
    missing_account,
    target_namespace_check,
    target_namespace_refusal,
)
from kubemart.runtime.settings import Settings

# --- choose_account ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("requested", "policy", "expected"),
    [
        pytest.param(None, Policy(), None, id="nothing named: the operator acts"),
        pytest.param("deployer", Policy(), "deployer", id="spec names an account"),
        pytest.param(None, Policy(default_service_account="tenant"), "tenant", id="the default"),
        pytest.param(
            "deployer", Policy(default_service_account="tenant"), "deployer", id="spec wins over default"
        ),
        pytest.param(
            None,
            Policy(default_service_account="tenant", require_service_account=True),
            "tenant",
            id="required, and the default fills it",
        ),
        pytest.param("deployer", Policy(require_service_account=True), "deployer", id="required and named"),
    ],
)
def test_choose_account(requested: str | None, policy: Policy, expected: str | None) -> None:
    account = choose_account(requested, namespace="team-a", policy=policy)
    assert (account.name if account else None) == expected
    if account:
        assert account.namespace == "team-a", "an app's account is always in its own namespace"


def test_a_required_account_that_nobody_names_is_refused() -> None:
    with pytest.raises(Refused) as refused:
        choose_account(None, namespace="team-a", policy=Policy(require_service_account=True))
    assert refused.value.reason == "ServiceAccountRequired"
    assert "spec.serviceAccountName" in refused.value.message
    assert "team-a" in refused.value.message


def test_account_identity_is_the_apiservers_name_and_groups() -> None:
    account = Account("team-a", "deployer")
    assert account.user == "system:serviceaccount:team-a:deployer"
    assert account.groups == ("system:serviceaccounts", "system:serviceaccounts:team-a")
    assert str(account) == "team-a/deployer"


def test_missing_account_says_what_to_create() -> None:
    refused = missing_account(Account("team-a", "deployer"))
    assert refused.reason == "ServiceAccountNotFound"
    assert "deployer" in refused.message
    assert "team-a" in refused.message


# --- target namespace -------------------------------------------------------------------------------

ACCOUNT = Account("team-a", "deployer")


@pytest.mark.parametrize(
    ("target", "account", "policy", "expected"),
    [
        pytest.param("team-a", None, Policy(), TargetCheck.ALLOWED, id="own namespace, operator"),
        pytest.param("team-a", ACCOUNT, Policy(), TargetCheck.ALLOWED, id="own namespace, account"),
        pytest.param("kube-system", None, Policy(), TargetCheck.REFUSED, id="elsewhere as the operator"),
        pytest.param("team-b", ACCOUNT, Policy(), TargetCheck.REVIEW, id="elsewhere: ask about the account"),
        pytest.param(
            "team-b", None, Policy(allow_cross_namespace=True), TargetCheck.ALLOWED, id="allowed by setting"
        ),
        pytest.param(
            "team-b",
            ACCOUNT,
            Policy(allow_cross_namespace=True),
            TargetCheck.ALLOWED,
            id="setting allows: no review",
        ),
    ],
)
def test_target_namespace_check(
    target: str, account: Account | None, policy: Policy, expected: TargetCheck
) -> None:
    got = target_namespace_check(
        app_namespace="team-a", target_namespace=target, account=account, policy=policy
    )
    assert got is expected


@pytest.mark.parametrize("account", [None, ACCOUNT], ids=["operator", "account"])
def test_target_namespace_refusal_names_both_namespaces_and_the_setting(account: Account | None) -> None:
    refused = target_namespace_refusal(app_namespace="team-a", target_namespace="team-b", account=account)
    assert refused.reason == "TargetNamespaceNotAllowed"
    for part in ("team-a", "team-b", "KUBEMART_ALLOW_CROSS_NAMESPACE"):
        assert part in refused.message
    if account is not None:
        assert "team-a/deployer" in refused.message


def test_forbidden_message_names_the_account_only_when_there_is_one() -> None:
    helm = 'Helm was not allowed to install: clusterroles "x" is forbidden.'
    assert forbidden_message(helm, None) == helm
    with_account = forbidden_message(helm, ACCOUNT)
    assert with_account.startswith('Helm was not allowed to install: clusterroles "x" is forbidden. ')
    assert "ServiceAccount team-a/deployer may not do this" in with_account


# --- helm flags and settings ------------------------------------------------------------------------


def test_helm_impersonation_flags_name_the_user_only() -> None:
    # The API server adds a ServiceAccount's groups itself; naming them would need `impersonate groups`.
    assert impersonation_flags(None) == []
    assert impersonation_flags(ACCOUNT) == ["--kube-as-user", "system:serviceaccount:team-a:deployer"]


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DEFAULT_SERVICE_ACCOUNT", "REQUIRE_SERVICE_ACCOUNT", "ALLOW_CROSS_NAMESPACE"):
        monkeypatch.delenv(f"KUBEMART_{name}", raising=False)
    assert (Settings().default_service_account, Settings().require_service_account) == (None, False)
    assert Settings().allow_cross_namespace is False
    monkeypatch.setenv("KUBEMART_DEFAULT_SERVICE_ACCOUNT", "tenant")
    monkeypatch.setenv("KUBEMART_REQUIRE_SERVICE_ACCOUNT", "true")
    monkeypatch.setenv("KUBEMART_ALLOW_CROSS_NAMESPACE", "true")
    s = Settings()
    assert (s.default_service_account, s.require_service_account, s.allow_cross_namespace) == (
        "tenant",
        True,
        True,
    )
