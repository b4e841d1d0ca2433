"""`kubemart gateway-check` against the tests' gateway (it conforms) and broken variants of it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from kubemart.cli import main
from support.gateway import Gateway


@pytest.fixture
def make_gateway() -> Iterator[type[Gateway]]:
    made: list[Gateway] = []

    class Made(Gateway):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            made.append(self)

    yield Made
    for gw in made:
        gw.close()


def check(gw: Gateway, *extra: str, hooks: bool = True) -> tuple[int, dict[str, str]]:
    args = ["gateway-check", "--url", gw.url, "--token", gw.token, "--public-key", gw.public_key, *extra]
    if gw.kid:
        args += ["--key-id", gw.kid]
    if hooks:
        args += ["--pay-url", f"{gw.url}/test/sessions/{{session}}/pay"]
        args += ["--refund-url", f"{gw.url}/test/sessions/{{session}}/refund"]
    result = CliRunner().invoke(main, args)
    outcomes = {}
    for line in result.output.splitlines():
        outcome, _, rest = line.partition("  ")
        if outcome in ("PASS", "FAIL", "SKIP"):
            outcomes[rest.split(":", 1)[0]] = outcome
    return result.exit_code, outcomes


@pytest.mark.parametrize("key_format", ["raw", "spki", "pem"])
def test_the_tests_gateway_conforms(make_gateway: type[Gateway], key_format: str) -> None:
    code, outcomes = check(make_gateway(key_format=key_format, kid="2026-11"))
    assert code == 0, outcomes
    assert set(outcomes.values()) == {"PASS"}
    assert {
        "auth",
        "create",
        "create.idempotent",
        "create.developer-null",
        "create.invalid",
        "view",
        "view.unknown",
        "cancel",
        "receipt.before-paid",
        "view.paid",
        "receipt",
        "receipt.claims",
        "view.refunded",
        "receipt.after-refund",
    } <= set(outcomes)


def test_without_a_pay_hook_the_receipt_is_skipped_not_failed(make_gateway: type[Gateway]) -> None:
    code, outcomes = check(make_gateway(), hooks=False)
    assert code == 0
    assert outcomes["receipt"] == "SKIP"


@pytest.mark.parametrize(
    ("flaws", "failed"),
    [
        pytest.param({"not_idempotent"}, {"create.idempotent"}, id="not idempotent"),
        pytest.param({"no_auth"}, {"auth"}, id="no authentication"),
        pytest.param({"cancel_ignored"}, {"cancel"}, id="cancel ignored"),
        pytest.param({"foreign_signature"}, {"receipt"}, id="receipt signed by another key"),
        pytest.param({"receipt_before_paid"}, {"receipt.before-paid"}, id="receipt before paid"),
        pytest.param({"wrong_types"}, {"create"}, id="wrong JSON types"),
    ],
)
def test_a_broken_gateway_fails_with_the_right_findings(
    make_gateway: type[Gateway], flaws: set[str], failed: set[str]
) -> None:
    code, outcomes = check(make_gateway(flaws=frozenset(flaws)))
    assert code == 1
    assert {name for name, outcome in outcomes.items() if outcome == "FAIL"} == failed


def test_a_public_key_that_cannot_be_read_is_the_first_finding(make_gateway: type[Gateway]) -> None:
    gw = make_gateway()
    result = CliRunner().invoke(
        main, ["gateway-check", "--url", gw.url, "--token", gw.token, "--public-key", "not-a-key"]
    )
    assert result.exit_code == 1
    assert "FAIL  public-key: the public key is not an Ed25519 public key" in result.output
    assert gw.requests == [], "nothing is sent with a key that could verify nothing"
