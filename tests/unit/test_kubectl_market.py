"""kubectl market, the parts without a cluster: helm's --set syntax, kubectl-like tables and ages,
search and app resolution, the AppInstall an install makes, when a wait is over, kubeconfig loading."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubemart.domain.values import InvalidValues
from kubemart.models.resource import API_VERSION as MODELS_API_VERSION
from kubemart.plugin.api import PluginError, load_config
from kubemart.plugin.search import search_table, sort_apps
from kubemart.plugin.setvalues import InvalidSet, apply_sets, parse_set, typed_value, values_from_flags
from kubemart.plugin.table import as_document, human_age, render_table
from kubemart.plugin.views import (
    API_VERSION,
    app_info,
    appinstall_body,
    choose_app,
    history_table,
    install_state,
    installs_table,
    matches,
)

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def test_the_plugin_speaks_the_api_version_of_the_models() -> None:
    assert API_VERSION == MODELS_API_VERSION


# --- helm's --set ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("true", True, id="true"),
        pytest.param("FALSE", False, id="false in any case"),
        pytest.param("null", None, id="null"),
        pytest.param("0", 0, id="zero"),
        pytest.param("42", 42, id="integer"),
        pytest.param("-7", -7, id="negative integer"),
        pytest.param("007", "007", id="leading zero stays a string"),
        pytest.param("1.5", "1.5", id="float stays a string"),
        pytest.param("1e3", "1e3", id="exponent stays a string"),
        pytest.param("1_000", "1_000", id="underscores stay a string"),
        pytest.param("9223372036854775808", "9223372036854775808", id="beyond int64 stays a string"),
        pytest.param("", "", id="empty"),
        pytest.param("nginx", "nginx", id="text"),
    ],
)
def test_set_values_are_typed_like_helm(text: str, expected: Any) -> None:
    assert typed_value(text) == expected
    assert type(typed_value(text)) is type(expected)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param("a=b", {"a": "b"}, id="one key"),
        pytest.param("a.b.c=1", {"a": {"b": {"c": 1}}}, id="nested keys"),
        pytest.param("a=1,b=two", {"a": 1, "b": "two"}, id="commas separate assignments"),
        pytest.param("a.x=1,a.y=2", {"a": {"x": 1, "y": 2}}, id="siblings share their map"),
        pytest.param("list={a,1,true}", {"list": ["a", 1, True]}, id="list literal"),
        pytest.param("list={a,b},c=d", {"list": ["a", "b"], "c": "d"}, id="list then more"),
        pytest.param("a[1]=x", {"a": [None, "x"]}, id="index pads with null"),
        pytest.param("a[0].name=x,a[0].port=80", {"a": [{"name": "x", "port": 80}]}, id="map in list"),
        pytest.param("a[0][1]=x", {"a": [[None, "x"]]}, id="list in list"),
        pytest.param(r"a\.b=c", {"a.b": "c"}, id="escaped dot"),
        pytest.param(r"a=x\,y", {"a": "x,y"}, id="escaped comma"),
        pytest.param("a=", {"a": ""}, id="empty value"),
        pytest.param("a=b=c", {"a": "b=c"}, id="equals in value"),
        pytest.param("gone=null", {"gone": None}, id="null deletes a chart default"),
    ],
)
def test_set_lines_parse_like_helm(line: str, expected: dict[str, Any]) -> None:
    assert parse_set(line) == expected


def test_set_string_keeps_strings() -> None:
    assert parse_set("a=true,b=1,c={2,null}", as_string=True) == {"a": "true", "b": "1", "c": ["2", "null"]}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        pytest.param("a", "key 'a' has no value; write a=VALUE", id="no equals"),
        pytest.param("a,b=1", "key 'a' has no value (cannot end with ,)", id="comma before value"),
        pytest.param("a.b", "key 'b' has no value", id="nested without value"),
        pytest.param("a={x,y", "list must terminate with '}'", id="unclosed list"),
        pytest.param("a[x]=1", "list index 'x' is not a number", id="index not a number"),
        pytest.param("a[-1]=1", "negative index -1 is not allowed", id="negative index"),
        pytest.param("a[70000]=1", "greater than the maximum of 65536", id="huge index"),
        pytest.param("a[0]x=1", "unexpected 'x' after the list index [0]", id="junk after index"),
        pytest.param(".".join("k" * 32) + "=1", "nest more than 30 levels", id="too deep"),
    ],
)
def test_bad_set_lines_say_what_is_wrong(line: str, message: str) -> None:
    with pytest.raises(InvalidSet, match=re.escape(message)):
        parse_set(line)


def test_sets_go_into_the_values_from_files_as_helm_does() -> None:
    from_files = {"image": {"repository": "nginx", "tag": "1"}, "ports": [80, 443], "extra": None}
    out = apply_sets(from_files, ["image.tag=2", "ports[1]=8443", "extra.a=1", "replicaCount=3"])
    assert out == {
        "image": {"repository": "nginx", "tag": 2},
        "ports": [80, 8443],
        "extra": {"a": 1},
        "replicaCount": 3,
    }
    assert from_files["ports"] == [80, 443], "the input is not changed"


def test_a_set_that_contradicts_the_values_names_the_flag() -> None:
    with pytest.raises(InvalidSet, match=r"^--set 'image\.tag=2': image is the string 'nginx'"):
        apply_sets({"image": "nginx"}, ["image.tag=2"])


def test_values_are_built_from_flags_in_helms_order() -> None:
    files = [
        ("base.yaml", "image: {repository: nginx, tag: '1'}\nports: [80, 443]\nreplicaCount: 1\n"),
        ("prod.yaml", "image: {tag: '2'}\nports: [8080]\n"),
        ("empty.yaml", ""),
    ]
    values = values_from_flags(files, ["replicaCount=3", "image.tag=3"], ["image.tag=4"])
    assert values == {"image": {"repository": "nginx", "tag": "4"}, "ports": [8080], "replicaCount": 3}
    assert values_from_flags([]) == {}


def test_a_bad_values_file_is_named() -> None:
    with pytest.raises(InvalidValues, match=r"^the values file list\.yaml must be a YAML mapping"):
        values_from_flags([("list.yaml", "- a\n- b\n")])
    with pytest.raises(
        InvalidValues, match=r"^the values file bad\.yaml is not valid YAML: .*\(line 2, column 1\)"
    ):
        values_from_flags([("bad.yaml", "a: [1\n")])


# --- tables and ages ---------------------------------------------------------------------------------


def test_tables_align_columns_under_upper_case_headers() -> None:
    out = render_table(["name", "phase", "message"], [["web", "Running", "ok"], ["database", "Failed", ""]])
    assert out.splitlines() == [
        "NAME       PHASE     MESSAGE",
        "web        Running   ok",
        "database   Failed",
    ]


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (-5, "<invalid>"),
        (-1, "0s"),
        (0, "0s"),
        (119, "119s"),
        (120, "2m"),
        (150, "2m30s"),
        (600, "10m"),
        (179 * 60, "179m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 5 * 60, "3h5m"),
        (30 * 3600, "30h"),
        (3 * 86400 + 4 * 3600, "3d4h"),
        (30 * 86400, "30d"),
        (3 * 365 * 86400 + 86400, "3y1d"),
        (10 * 365 * 86400, "10y"),
    ],
)
def test_ages_read_like_kubectl(seconds: int, expected: str) -> None:
    assert human_age(NOW - timedelta(seconds=seconds), NOW) == expected


def test_several_objects_print_as_a_list() -> None:
    doc = yaml.safe_load(as_document([{"kind": "AppInstall"}], "yaml"))
    assert doc == {"apiVersion": "v1", "kind": "List", "items": [{"kind": "AppInstall"}]}
    assert yaml.safe_load(as_document({"kind": "AppInstall"}, "json")) == {"kind": "AppInstall"}


def test_managed_fields_are_hidden_as_kubectl_hides_them() -> None:
    obj = {"kind": "AppInstall", "metadata": {"name": "w", "managedFields": [{"manager": "kubemart"}]}}
    assert yaml.safe_load(as_document(obj, "yaml")) == {"kind": "AppInstall", "metadata": {"name": "w"}}
    assert yaml.safe_load(as_document([obj], "json"))["items"][0]["metadata"] == {"name": "w"}
    assert obj["metadata"]["managedFields"], "the object itself is not changed"


# --- the catalog ---------------------------------------------------------------------------------------


def market_app(source: str, app: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "MarketApp",
        "metadata": {"name": f"{source}.{app}"},
        "spec": {"source": source, "app": app, **spec},
    }


WIKI = market_app(
    "demo",
    "wiki",
    title="Team Wiki",
    description="A wiki for teams, with search and history",
    keywords=["docs", "knowledge"],
    categories=["Productivity"],
    latestVersion="0.9.1",
    versions=[{"version": "0.9.1", "appVersion": "2.1"}, {"version": "0.9.0"}],
    price={"amount": "4.99", "currency": "USD"},
    developer={"name": "Acme Apps"},
    requirements={"cpu": "500m", "memory": "256Mi", "architectures": ["amd64", "arm64"]},
)


@pytest.mark.parametrize(
    ("text", "category", "found"),
    [
        (None, None, True),
        ("WIKI", None, True),
        ("team wiki", None, True),
        ("history", None, True),
        ("knowledge", None, True),
        ("blog", None, False),
        (None, "productivity", True),
        ("wiki", "games", False),
    ],
)
def test_search_matches_name_title_description_keywords_and_category(
    text: str | None, category: str | None, found: bool
) -> None:
    assert matches(WIKI, text=text, category=category) is found


def test_search_table_shows_source_latest_category_price_and_description() -> None:
    blog = market_app("demo", "blog", description="x" * 80, latestVersion="1.0.0")
    lines = search_table([WIKI, blog]).splitlines()
    assert lines[0].split() == ["NAME", "SOURCE", "LATEST", "CATEGORY", "PRICE", "INSTALLS", "DESCRIPTION"]
    assert lines[1].split()[:7] == ["blog", "demo", "1.0.0", "<none>", "free", "0", "x" * 57 + "..."]
    assert lines[2].startswith("wiki ")
    assert "4.99 USD" in lines[2]
    assert "Productivity" in lines[2]


def counted(app: str, total: int | None, running: int = 0, source: str = "demo") -> dict[str, Any]:
    body = market_app(source, app)
    if total is not None:
        body["status"] = {"installs": {"total": total, "running": running}}
    return body


def test_search_sorts_by_installs_most_first_then_by_name() -> None:
    apps = [counted("zeta", 5, 5), counted("alpha", None), counted("beta", 40, 1), counted("gamma", 5, 0)]
    assert [a["spec"]["app"] for a in sort_apps(apps)] == ["alpha", "beta", "gamma", "zeta"]
    assert [a["spec"]["app"] for a in sort_apps(apps, "installs")] == ["beta", "gamma", "zeta", "alpha"]
    assert [a["spec"]["app"] for a in sort_apps(apps, "running")] == ["zeta", "beta", "alpha", "gamma"]
    lines = search_table(apps, sort="installs").splitlines()
    assert [line.split()[0] for line in lines[1:]] == ["beta", "gamma", "zeta", "alpha"]
    assert [line.split()[5] for line in lines[1:]] == ["40", "5", "5", "0"], "none shown: nobody installed it"


def test_malformed_install_counts_show_as_not_counted() -> None:
    bad = counted("wiki", 3)
    bad["status"]["installs"]["total"] = "3; rm -rf /"
    assert search_table([bad]).splitlines()[1].split()[5] == "-"


def test_one_app_of_that_name_is_chosen() -> None:
    assert choose_app("wiki", [WIKI], source=None).app == WIKI


def test_an_unknown_app_suggests_search() -> None:
    choice = choose_app("nope", [WIKI], source=None)
    assert choice.app is None
    assert choice.error == "app 'nope' not found; run 'kubectl market search' to see the apps on offer"


def test_an_app_in_several_sources_asks_for_source() -> None:
    other = market_app("acme", "wiki")
    choice = choose_app("wiki", [WIKI, other], source=None, priorities={"demo": 0, "acme": 0})
    assert choice.app is None
    assert choice.error == (
        "app 'wiki' is offered by several sources (acme, demo); choose one with --source, e.g. --source acme"
    )
    assert choose_app("wiki", [WIKI, other], source="acme").app == other


def test_the_source_with_the_highest_priority_is_the_default() -> None:
    other = market_app("acme", "wiki")
    assert choose_app("wiki", [WIKI, other], source=None, priorities={"acme": 10}).app == other
    assert choose_app("wiki", [WIKI, other], source=None, priorities=None).app is None


def test_a_source_without_the_app_names_the_sources_that_have_it() -> None:
    choice = choose_app("wiki", [WIKI], source="acme")
    assert choice.error == "app 'wiki' not found in source 'acme' (it is offered by demo)"


def test_info_describes_the_app() -> None:
    install = {"metadata": {"name": "wiki", "namespace": "team-a"}}
    text = app_info(WIKI, installs=[install])
    assert "Title:        Team Wiki" in text
    assert "Developer:    Acme Apps" in text
    assert "Price:        4.99 USD" in text
    assert "Requirements: cpu 500m, memory 256Mi, architectures amd64,arm64" in text
    assert "  VERSION   APP VERSION   CREATED" in text
    assert "  0.9.0     <none>        <none>" in text
    assert "Installed:    team-a/wiki" in text
    assert "Install:      kubectl market install wiki --source demo" in text


# --- installs ------------------------------------------------------------------------------------------


def test_an_install_names_source_app_and_only_what_was_asked() -> None:
    body = appinstall_body(name="docs", namespace="team-a", app=WIKI, version=None, values={})
    assert body == {
        "apiVersion": "kubemart.io/v1alpha1",
        "kind": "AppInstall",
        "metadata": {"name": "docs", "namespace": "team-a"},
        "spec": {"source": "demo", "app": "wiki"},
    }
    body = appinstall_body(name="docs", namespace="team-a", app=WIKI, version="^0.9", values={"a": 1})
    assert body["spec"] == {"source": "demo", "app": "wiki", "version": "^0.9", "values": {"a": 1}}


def appinstall(name: str, namespace: str = "team-a", *, generation: int = 1, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "generation": generation,
            "creationTimestamp": (NOW - timedelta(minutes=5)).isoformat().replace("+00:00", "Z"),
        },
        "spec": {"source": "demo", "app": "wiki", "version": "^0.9"},
        "status": status,
    }


def ready(status: str, reason: str = "Succeeded", message: str = "", generation: int = 1) -> dict[str, Any]:
    return {
        "type": "Ready",
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
    }


def test_status_table_is_like_kubectl_get_with_the_message_last() -> None:
    running = appinstall(
        "wiki",
        observedGeneration=1,
        phase="Running",
        installedVersion="0.9.1",
        conditions=[ready("True", message="wiki 0.9.1 is installed and ready.")],
    )
    fresh = appinstall("blog", namespace="team-b")
    lines = installs_table([running, fresh], now=NOW, with_namespace=True).splitlines()
    assert lines[0].split() == ["NAMESPACE", "NAME", "APP", "VERSION", "PHASE", "READY", "AGE", "MESSAGE"]
    assert lines[1].split()[:7] == ["team-a", "wiki", "wiki", "0.9.1", "Running", "True", "5m"]
    assert lines[1].endswith("wiki 0.9.1 is installed and ready.")
    assert lines[2].split() == ["team-b", "blog", "wiki", "^0.9", "<none>", "<none>", "5m"]


def test_history_table_shows_operations_newest_first() -> None:
    obj = appinstall(
        "wiki",
        history=[
            {
                "operation": "upgrade",
                "fromVersion": "0.9.0",
                "toVersion": "0.9.1",
                "revision": 2,
                "result": "Succeeded",
                "startedAt": "2026-01-01T11:50:00Z",
                "finishedAt": "2026-01-01T11:50:42Z",
                "message": "upgraded",
            },
            {"operation": "install", "toVersion": "0.9.0", "revision": 1, "result": "Succeeded"},
        ],
    )
    lines = history_table(obj, now=NOW).splitlines()
    assert lines[0].split() == ["REVISION", "OPERATION", "FROM", "TO", "RESULT", "STARTED", "TOOK", "MESSAGE"]
    assert lines[1].split() == ["2", "upgrade", "0.9.0", "0.9.1", "Succeeded", "10m", "42s", "upgraded"]
    assert lines[2].split() == ["1", "install", "<none>", "0.9.0", "Succeeded", "<none>", "<none>"]


@pytest.mark.parametrize(
    ("obj", "done", "failed", "summary"),
    [
        pytest.param(appinstall("w"), False, False, "Pending: waiting for the operator", id="not seen yet"),
        pytest.param(
            appinstall(
                "w",
                generation=2,
                observedGeneration=1,
                phase="Running",
                conditions=[ready("True")],
            ),
            False,
            False,
            "Running: waiting for the operator",
            id="old generation is not done",
        ),
        pytest.param(
            appinstall(
                "w",
                observedGeneration=1,
                phase="Installing",
                conditions=[ready("Unknown", "Installing", "Installing wiki 0.9.1.")],
            ),
            False,
            False,
            "Installing (Installing): Installing wiki 0.9.1.",
            id="in progress",
        ),
        pytest.param(
            appinstall(
                "w", observedGeneration=1, phase="Running", conditions=[ready("True", message="ready.")]
            ),
            True,
            False,
            "Running: ready.",
            id="running and ready",
        ),
        pytest.param(
            appinstall(
                "w",
                observedGeneration=1,
                phase="Failed",
                conditions=[
                    ready("False", "InvalidVersion", "no version matches"),
                    {"type": "Stalled", "status": "True", "reason": "InvalidVersion", "message": "no match"},
                ],
            ),
            False,
            True,
            "Failed (InvalidVersion): no match",
            id="stalled fails",
        ),
        pytest.param(None, False, True, "it was deleted", id="deleted"),
    ],
)
def test_waiting_ends_when_ready_in_the_phase_or_stalled(
    obj: dict[str, Any] | None, done: bool, failed: bool, summary: str
) -> None:
    state = install_state(obj, want_phase="Running")
    assert (state.done, state.failed) == (done, failed)
    assert state.summary.startswith(summary)


def test_waiting_for_stopped_is_not_done_while_running() -> None:
    obj = appinstall("w", observedGeneration=1, phase="Running", conditions=[ready("True")])
    assert not install_state(obj, want_phase="Stopped").done


# --- kubeconfig ------------------------------------------------------------------------------------------


def kubeconfig(path: Path, contexts: dict[str, str | None], current: str | None) -> Path:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [
            {"name": name, "context": {"cluster": "c", "user": "u", **({"namespace": ns} if ns else {})}}
            for name, ns in contexts.items()
        ],
    }
    if current:
        doc["current-context"] = current
    path.write_text(yaml.safe_dump(doc))
    return path


def test_kubeconfig_files_in_KUBECONFIG_are_merged_first_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = kubeconfig(tmp_path / "a", {"dev": "team-a"}, "dev")
    second = kubeconfig(tmp_path / "b", {"dev": "ignored", "prod": None}, "prod")
    monkeypatch.setenv("KUBECONFIG", f"{first}:{tmp_path / 'missing'}:{second}")
    assert load_config(None, None).namespace == "team-a"
    prod = load_config(None, "prod")
    assert (prod.context_name, prod.namespace) == ("prod", "default")


def test_a_missing_context_lists_the_known_ones(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "a", {"dev": None, "prod": None}, "dev")
    with pytest.raises(
        PluginError, match=r"Context 'staging' not found.*\(contexts: dev, prod\); fix --context"
    ):
        load_config(str(path), "staging")


def test_a_missing_kubeconfig_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(PluginError, match=r"the kubeconfig file .*/nope does not exist"):
        load_config(str(tmp_path / "nope"), None)
