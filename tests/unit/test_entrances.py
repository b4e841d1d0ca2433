"""domain.entrances: what a person opens (issue #10 point 8), from hand-built objects and from the
real charts of ../shared/realcharts rendered by `helm template`."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubemart.domain import safe_yaml
from kubemart.domain.entrances import MAX_ENTRANCES, entrances_from
from kubemart.models.appinstall import Entrance
from support.cluster import BIN
from support.realcharts import RealChart, real_charts

HELM = BIN / "helm"


# --- built by hand --------------------------------------------------------------------------------


def service(name: str, *ports: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": {"ports": list(ports)}}


def ingress(
    name: str, rules: list[dict[str, Any]], tls: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    spec: dict[str, Any] = {"rules": rules}
    if tls is not None:
        spec["tls"] = tls
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": name}, "spec": spec}


def rule(host: str | None, *paths: str | None) -> dict[str, Any]:
    r: dict[str, Any] = {}
    if host is not None:
        r["host"] = host
    if paths:
        r["http"] = {"paths": [{"path": p, "pathType": "Prefix"} if p is not None else {} for p in paths]}
    return r


@pytest.mark.parametrize(
    ("objects", "expected"),
    [
        pytest.param([], [], id="nothing"),
        pytest.param(
            [service("web", {"name": "http", "port": 80})],
            [("web:http", "http://web.apps.svc:80")],
            id="service http port",
        ),
        pytest.param(
            [service("web", {"name": "https", "port": 8443})],
            [("web:https", "https://web.apps.svc:8443")],
            id="service port named https",
        ),
        pytest.param(
            [service("web", {"name": "https-admin", "port": 9443})],
            [("web:https-admin", "https://web.apps.svc:9443")],
            id="service port name starting with https",
        ),
        pytest.param(
            [service("web", {"port": 443})],
            [("web:443", "https://web.apps.svc:443")],
            id="unnamed port 443 is https",
        ),
        pytest.param(
            [service("web", {"port": 8080})],
            [("web:8080", "http://web.apps.svc:8080")],
            id="unnamed port labelled by number",
        ),
        pytest.param(
            [service("web", {"name": "http", "port": 80}, {"name": "https", "port": 443}, {"name": "x"})],
            [("web:http", "http://web.apps.svc:80"), ("web:https", "https://web.apps.svc:443")],
            id="several ports, one without a number skipped",
        ),
        pytest.param(
            [service("web", {"name": "http", "port": 80}, namespace="kube-system")],
            [],
            id="a Service outside the release namespace",
        ),
        pytest.param(
            [service("web", {"name": "http", "port": 80}, namespace="apps")],
            [("web:http", "http://web.apps.svc:80")],
            id="a Service naming the release namespace",
        ),
        pytest.param([service("headless")], [], id="service without ports"),
        pytest.param([{"kind": "Service", "metadata": {"name": "bare"}}], [], id="service without spec"),
        pytest.param(
            [ingress("site", [rule("shop.example.com", "/")])],
            [("site:shop.example.com", "http://shop.example.com/")],
            id="ingress host without tls",
        ),
        pytest.param(
            [
                ingress(
                    "site",
                    [rule("shop.example.com", "/")],
                    tls=[{"hosts": ["shop.example.com"], "secretName": "tls"}],
                )
            ],
            [("site:shop.example.com", "https://shop.example.com/")],
            id="ingress host with tls",
        ),
        pytest.param(
            [
                ingress(
                    "site",
                    [rule("a.example.com", "/"), rule("b.example.com", "/")],
                    tls=[{"hosts": ["b.example.com"]}],
                )
            ],
            [
                ("site:a.example.com", "http://a.example.com/"),
                ("site:b.example.com", "https://b.example.com/"),
            ],
            id="tls only for the hosts it lists",
        ),
        pytest.param(
            [ingress("site", [rule("x.example.com", "/api", "/ui")])],
            [
                ("site:x.example.com", "http://x.example.com/api"),
                ("site:x.example.com", "http://x.example.com/ui"),
            ],
            id="one entrance per path",
        ),
        pytest.param(
            [ingress("site", [rule("x.example.com")])],
            [("site:x.example.com", "http://x.example.com/")],
            id="rule without http paths is root",
        ),
        pytest.param(
            [ingress("site", [rule("x.example.com", None)])],
            [("site:x.example.com", "http://x.example.com/")],
            id="path without path field is root",
        ),
        pytest.param(
            [ingress("site", [rule(None, "/"), rule("", "/")])], [], id="rules without host skipped"
        ),
        pytest.param(
            [ingress("site", [rule("x.example.com", "/")], tls=[{"secretName": "no-hosts"}])],
            [("site:x.example.com", "http://x.example.com/")],
            id="tls without hosts",
        ),
        pytest.param(
            [
                {"kind": "Deployment", "metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}},
                {"kind": "ConfigMap", "metadata": {"name": "cfg"}},
                {"kind": "Route", "metadata": {"name": "r"}, "spec": {"rules": [{"host": "x"}]}},
                {"metadata": {"name": "no-kind"}},
            ],
            [],
            id="other kinds ignored",
        ),
        pytest.param(
            [
                {"kind": "ConfigMap", "metadata": {"name": "cfg"}},
                service("web", {"name": "http", "port": 80}),
                ingress("site", [rule("x.example.com", "/")]),
            ],
            [("web:http", "http://web.apps.svc:80"), ("site:x.example.com", "http://x.example.com/")],
            id="mixed manifest keeps object order",
        ),
    ],
)
def test_entrances_from(objects: list[dict[str, Any]], expected: list[tuple[str, str]]) -> None:
    assert entrances_from(objects, "apps") == [Entrance(name=n, url=u) for n, u in expected]


def marked(*ports: dict[str, Any], mark: str, name: str = "web", **spec: Any) -> dict[str, Any]:
    svc = service(name, *ports)
    svc["metadata"]["annotations"] = {"kubemart.io/entrance": mark}
    svc["spec"].update(spec)
    return svc


@pytest.mark.parametrize(
    ("objects", "expected"),
    [
        pytest.param(
            [
                service("cache", {"name": "tcp-redis", "port": 6379}),
                service("db", {"name": "tcp-postgresql", "port": 5432}),
            ],
            [],
            id="redis and postgres ports are not web",
        ),
        pytest.param([service("ssh", {"port": 22})], [], id="ssh"),
        pytest.param(
            [
                {
                    **service("web-hl", {"name": "http", "port": 80}),
                    "spec": {"clusterIP": "None", "ports": [{"name": "http", "port": 80}]},
                }
            ],
            [],
            id="headless",
        ),
        pytest.param(
            [
                {
                    **service("ext", {"name": "http", "port": 80}),
                    "spec": {"type": "ExternalName", "ports": [{"name": "http", "port": 80}]},
                }
            ],
            [],
            id="ExternalName",
        ),
        pytest.param(
            [
                service("app-metrics", {"name": "http", "port": 8080}),
                service("app-admission", {"name": "https", "port": 443}),
                service("app-operator", {"name": "https", "port": 443}),
                service(
                    "app", {"name": "http-metrics", "port": 9100}, {"name": "https-webhook", "port": 8443}
                ),
            ],
            [],
            id="metrics, webhooks, admission, operators",
        ),
        pytest.param(
            [
                service(
                    "app",
                    {"name": "http-web", "port": 9090},
                    {"name": "reloader-web", "port": 8080, "appProtocol": "http"},
                )
            ],
            [("app:http-web", "http://app.apps.svc:9090")],
            id="http first in the name; a sidecar's port is not",
        ),
        pytest.param(
            [
                service(
                    "app",
                    {"name": "ui", "port": 3000},
                    {"name": "web", "port": 3001},
                    {"name": "grpc", "port": 9999},
                )
            ],
            [("app:ui", "http://app.apps.svc:3000"), ("app:web", "http://app.apps.svc:3001")],
            id="ui and web",
        ),
        pytest.param(
            [service("app", {"name": "5230", "port": 5230}, {"port": 8443})],
            [("app:8443", "https://app.apps.svc:8443")],
            id="numbers: only the web ones",
        ),
        pytest.param(
            [
                service(
                    "app",
                    {"name": "tls", "port": 9443, "appProtocol": "https"},
                    {"name": "http", "port": 9444, "appProtocol": "https"},
                )
            ],
            [("app:http", "https://app.apps.svc:9444")],
            id="appProtocol https gives the scheme, not the choice",
        ),
        pytest.param(
            [
                service("app", {"name": "http", "port": 80}),
                marked({"name": "db", "port": 5432}, mark="true", name="db"),
            ],
            [("db:db", "http://db.apps.svc:5432")],
            id="a marked Service: only what the chart marks",
        ),
        pytest.param(
            [
                marked(
                    {"name": "http", "port": 80},
                    {"name": "admin", "port": 9000},
                    {"port": 7000},
                    mark="admin, 7000",
                )
            ],
            [("web:admin", "http://web.apps.svc:9000"), ("web:7000", "http://web.apps.svc:7000")],
            id="marked ports by name and number",
        ),
        pytest.param(
            [
                marked({"name": "http", "port": 80}, mark="false"),
                service("other", {"name": "http", "port": 80}),
            ],
            [("other:http", "http://other.apps.svc:80")],
            id="false hides one Service and marks nothing",
        ),
        pytest.param(
            [marked({"name": "http", "port": 80}, mark="true", clusterIP="None")],
            [],
            id="a marked headless Service is still not reachable",
        ),
        pytest.param(
            [
                {
                    **ingress("site", [rule("x.example.com", "/")]),
                    "metadata": {"name": "site", "annotations": {"kubemart.io/entrance": "false"}},
                }
            ],
            [],
            id="an Ingress marked false",
        ),
        pytest.param(
            [ingress("a", [rule("x.example.com", "/")]), ingress("b", [rule("x.example.com", "/")])],
            [("a:x.example.com", "http://x.example.com/")],
            id="one entrance per URL",
        ),
    ],
)
def test_what_a_person_opens(objects: list[dict[str, Any]], expected: list[tuple[str, str]]) -> None:
    assert entrances_from(objects, "apps") == [Entrance(name=n, url=u) for n, u in expected]


OLARES = {
    "entrances": [
        {"name": "memos", "host": "memos", "port": 5230, "title": "memos"},
        {"name": "admin", "host": "memos-admin", "port": 443, "invisible": False},
        {"name": "hidden", "host": "memos", "port": 5231, "invisible": True},
        {"name": "bad-host", "host": "evil.example.com", "port": 80},
        {"name": "bad-port", "host": "memos", "port": "80"},
        {"name": "bool-port", "host": "memos", "port": True},
        "junk",
    ]
}


def test_olares_entrances_are_what_the_chart_marks() -> None:
    objects = [service("memos", {"name": "5230", "port": 5230}), service("web", {"name": "http", "port": 80})]
    assert entrances_from(objects, "apps", olares=OLARES) == [
        Entrance(name="memos", url="http://memos.apps.svc:5230"),
        Entrance(name="admin", url="https://memos-admin.apps.svc:443"),
    ]
    assert entrances_from(objects, "apps", olares={"entrances": "nonsense"}) == [
        Entrance(name="web:http", url="http://web.apps.svc:80")
    ], "a manifest with no usable entrances marks nothing"


def test_entrances_are_bounded() -> None:
    objects = [ingress("site", [rule(f"h{i}.example.com", "/") for i in range(100)])]
    assert len(entrances_from(objects, "apps")) == MAX_ENTRANCES


# --- the real charts ---------------------------------------------------------------------------------


def _render(chart: RealChart, values_dir: Path) -> list[dict[str, Any]]:
    values = values_dir / f"{chart.app}.yaml"
    values.write_text(yaml.safe_dump(chart.values))
    out = subprocess.run(
        [str(HELM), "template", chart.release, str(chart.archive), "-n", "apps", "-f", str(values)],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    return [d for d in safe_yaml.load_all(out) if isinstance(d, dict) and d.get("kind")]


REAL = {
    "podinfo": [("podinfo:http", "http://podinfo.apps.svc:9898")],
    "redis": [],
    "postgresql": [],
    "argo-cd": [
        ("argocd-dex-server:http", "http://argocd-dex-server.apps.svc:5556"),
        ("argocd-server:http", "http://argocd-server.apps.svc:80"),
        ("argocd-server:https", "https://argocd-server.apps.svc:443"),
    ],
    "ingress-nginx": [
        ("ingress-ingress-nginx-controller:http", "http://ingress-ingress-nginx-controller.apps.svc:80"),
        ("ingress-ingress-nginx-controller:https", "https://ingress-ingress-nginx-controller.apps.svc:443"),
    ],
    "kube-prometheus-stack": [
        ("kps-grafana:http-web", "http://kps-grafana.apps.svc:80"),
        (
            "kps-kube-prometheus-stack-alertmanager:http-web",
            "http://kps-kube-prometheus-stack-alertmanager.apps.svc:9093",
        ),
        (
            "kps-kube-prometheus-stack-prometheus:http-web",
            "http://kps-kube-prometheus-stack-prometheus.apps.svc:9090",
        ),
    ],
    "excalidraw": [("excalidraw:http", "http://excalidraw.apps.svc:5000")],
    "memos": [],
}
OLARES_REAL = {
    "excalidraw": [("excalidraw", "http://excalidraw.apps.svc:5000")],
    "memos": [("memos", "http://memos.apps.svc:5230")],
}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    if not real_charts():
        pytest.skip("the real-chart corpus (shared/realcharts) is not on this machine")
    if not HELM.exists():
        pytest.skip("bin/helm is not built (make tools)")
    tmp = tmp_path_factory.mktemp("values")
    return {c.app: _render(c, tmp) for c in real_charts()}


@pytest.mark.parametrize("app", sorted(REAL))
def test_real_chart_entrances(rendered: dict[str, list[dict[str, Any]]], app: str) -> None:
    got = sorted((e.name, e.url) for e in entrances_from(rendered[app], "apps"))
    assert got == sorted(REAL[app])
    assert not [e for e in got if "kube-system" in e[1]]


def test_kube_prometheus_stack_had_thirteen_and_now_has_a_handful(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    services = [o for o in rendered["kube-prometheus-stack"] if o["kind"] == "Service"]
    every_port = sum(len(s["spec"].get("ports") or []) for s in services)
    assert every_port >= 13, "what the old rule listed"
    assert len(entrances_from(rendered["kube-prometheus-stack"], "apps")) == 3


@pytest.mark.parametrize("app", sorted(OLARES_REAL))
def test_olares_charts_use_their_manifest(rendered: dict[str, list[dict[str, Any]]], app: str) -> None:
    chart = next(c for c in real_charts() if c.app == app)
    got = entrances_from(rendered[app], "apps", olares=chart.olares_manifest())
    assert [(e.name, e.url) for e in got] == OLARES_REAL[app]
