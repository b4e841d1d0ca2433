"""Catalog metadata the ecosystem puts in Chart.yaml, read with bounds (pure).

Public charts describe themselves with Chart.yaml fields (`maintainers`, `sources`, `deprecated`,
`keywords`) and Artifact Hub's annotations (https://artifacthub.io/docs/topics/annotations/helm/:
`artifacthub.io/category`, `license`, `links`, `maintainers`, `prerelease`, `displayName`); Bitnami's
charts add `licenses` and `category`. Ours (`kubemart.io/title`, `kubemart.io/categories`, ...) win
over theirs. Everything is untrusted: annotation values are strings of YAML read with
`domain.safe_yaml` under small limits, lists are capped and each string is cut or dropped.

When a chart declares no category, one is predicted from its keywords with a small fixed table onto
Artifact Hub's eight categories, as Artifact Hub itself predicts one from keywords (its
`skip-prediction` value turns this off).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from kubemart.domain import safe_yaml
from kubemart.domain.clip import clip
from kubemart.domain.versions import InvalidConstraint, parse_constraint
from kubemart.models import marketapp as bounds
from kubemart.models.marketapp import Dependency, Link, Maintainer

ARTIFACTHUB = "artifacthub.io/"
KUBEMART = "kubemart.io/"
MAX_ANNOTATION_YAML = 16 * 1024
"""Characters of an annotation read as YAML (links, maintainers); longer ones are ignored."""
_ANNOTATION_LIMITS = safe_yaml.Limits(max_depth=4, max_nodes=400, max_aliases=0, seconds=1.0)
SKIP_PREDICTION = "skip-prediction"

# Artifact Hub's categories, predicted from a keyword when the chart declares none; first match wins.
_KEYWORD_CATEGORY: dict[str, str] = {
    **dict.fromkeys(
        [
            "database",
            "sql",
            "nosql",
            "postgres",
            "postgresql",
            "mysql",
            "mariadb",
            "mongodb",
            "redis",
            "keyvalue",
            "key-value",
            "cassandra",
            "etcd",
            "elasticsearch",
            "clickhouse",
            "cache",
        ],
        "database",
    ),
    **dict.fromkeys(
        [
            "monitoring",
            "prometheus",
            "grafana",
            "logging",
            "logs",
            "metrics",
            "observability",
            "tracing",
            "alerting",
            "alertmanager",
            "loki",
            "opentelemetry",
            "kube-prometheus",
        ],
        "monitoring-logging",
    ),
    **dict.fromkeys(
        [
            "gitops",
            "ci",
            "cd",
            "ci-cd",
            "cicd",
            "argocd",
            "argo-cd",
            "flux",
            "jenkins",
            "tekton",
            "continuous-delivery",
            "continuous-integration",
            "deployment",
            "delivery",
        ],
        "integration-delivery",
    ),
    **dict.fromkeys(
        [
            "ingress",
            "ingress-controller",
            "nginx",
            "dns",
            "proxy",
            "reverse-proxy",
            "load-balancer",
            "loadbalancer",
            "gateway",
            "service-mesh",
            "istio",
            "envoy",
            "traefik",
            "haproxy",
            "cni",
            "vpn",
        ],
        "networking",
    ),
    **dict.fromkeys(
        [
            "security",
            "tls",
            "certificates",
            "cert-manager",
            "vault",
            "secrets",
            "oauth",
            "oidc",
            "sso",
            "authentication",
            "policy",
            "firewall",
            "scanner",
        ],
        "security",
    ),
    **dict.fromkeys(
        ["storage", "backup", "s3", "minio", "csi", "volume", "nfs", "ceph", "object-storage"], "storage"
    ),
    **dict.fromkeys(
        ["kafka", "messaging", "message-queue", "queue", "rabbitmq", "nats", "streaming", "mqtt", "pulsar"],
        "streaming-messaging",
    ),
    **dict.fromkeys(
        ["ai", "ml", "machine-learning", "llm", "tensorflow", "pytorch", "jupyter", "mlops", "inference"],
        "ai-machine-learning",
    ),
}


def text(value: Any, limit: int) -> str | None:
    """A scalar as text cut to `limit`; None for anything else."""
    if isinstance(value, str):
        return clip(value, limit)
    if isinstance(value, bool | int | float):
        return str(value)
    return None


def exact(value: Any, limit: int) -> str | None:
    """A scalar as text if it fits in `limit`, else None: for values a cut would make wrong (URLs)."""
    found = text(value, limit + 1)
    return found if found is not None and len(found) <= limit else None


def url(value: Any) -> str | None:
    found = exact(value, bounds.MAX_URL)
    return found if found and found.startswith(("https://", "http://")) else None


def flag(value: Any) -> bool | None:
    """True for `true` (a YAML boolean or an annotation's string), None otherwise (absent means no)."""
    if value is True or (isinstance(value, str) and value.strip().lower() == "true"):
        return True
    return None


def yaml_annotation(value: Any) -> Any:
    """An annotation holding YAML (Artifact Hub's links and maintainers), or None if unreadable."""
    if isinstance(value, list):
        return value  # an index written by a tool that kept it structured
    if not isinstance(value, str) or len(value) > MAX_ANNOTATION_YAML:
        return None
    try:
        return safe_yaml.load(value, limits=_ANNOTATION_LIMITS, source="annotation")
    except safe_yaml.UnsafeYAML:
        return None


def title(annotations: Mapping[str, Any]) -> str | None:
    for key in (f"{KUBEMART}title", f"{ARTIFACTHUB}displayName"):
        found = text(annotations.get(key), bounds.MAX_SHORT)
        if found and found.strip():
            return found.strip()
    return None


def license_of(annotations: Mapping[str, Any]) -> str | None:
    # Bitnami's charts say `licenses: Apache-2.0`.
    for key in (f"{KUBEMART}license", f"{ARTIFACTHUB}license", "licenses"):
        found = text(annotations.get(key), bounds.MAX_SHORT)
        if found and found.strip():
            return found.strip()
    return None


def declared_category(annotations: Mapping[str, Any]) -> str | None:
    """Artifact Hub's one category, or Bitnami's `category`; `skip-prediction` gives ''."""
    for key in (f"{ARTIFACTHUB}category", "category"):
        found = exact(annotations.get(key), bounds.MAX_WORD)
        if found and found.strip():
            return "" if found.strip() == SKIP_PREDICTION else found.strip()
    return None


def predicted_category(keywords: list[str]) -> str | None:
    for word in keywords:
        found = _KEYWORD_CATEGORY.get(word.strip().lower().replace(" ", "-"))
        if found:
            return found
    return None


def maintainers(head: Mapping[str, Any], annotations: Mapping[str, Any]) -> list[Maintainer]:
    """Chart.yaml's maintainers, else Artifact Hub's `maintainers` annotation (name, email, url)."""
    items = head.get("maintainers")
    if not isinstance(items, list) or not items:
        items = yaml_annotation(annotations.get(f"{ARTIFACTHUB}maintainers"))
    out: list[Maintainer] = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, Mapping):
            continue
        name = text(item.get("name"), bounds.MAX_SHORT)
        if not name or not name.strip():
            continue
        email = exact(item.get("email"), bounds.MAX_EMAIL)
        out.append(
            Maintainer(
                name=name.strip(), email=email if email and "@" in email else None, url=url(item.get("url"))
            )
        )
        if len(out) == bounds.MAX_MAINTAINERS:
            break
    return out


def links(head: Mapping[str, Any], annotations: Mapping[str, Any]) -> list[Link]:
    """Artifact Hub's `links` annotation, then Chart.yaml's `sources` (as "source")."""
    out: list[Link] = []
    seen: set[str] = set()

    def add(name: Any, target: Any) -> None:
        found_url, found_name = url(target), text(name, bounds.MAX_SHORT)
        if found_url and found_name and found_name.strip() and found_url not in seen:
            seen.add(found_url)
            out.append(Link(name=found_name.strip(), url=found_url))

    declared = yaml_annotation(annotations.get(f"{ARTIFACTHUB}links"))
    for item in declared if isinstance(declared, list) else []:
        if isinstance(item, Mapping):
            add(item.get("name"), item.get("url"))
    sources = head.get("sources")
    for item in sources if isinstance(sources, list) else []:
        add("source", item)
    return out[: bounds.MAX_LINKS]


DEPENDENCIES = f"{KUBEMART}dependencies"
MAX_DEPENDENCIES_TEXT = 2048
_DEPENDENCY = re.compile(r"^(?P<app>[a-z0-9](?:[-a-z0-9._]{0,187}[a-z0-9])?)\s*(?P<range>[^a-z\s].*)?$")


def dependencies(annotations: Mapping[str, Any]) -> tuple[list[Dependency], list[str]]:
    """`kubemart.io/dependencies: "postgresql>=15, redis"`: apps this one needs installed first.

    Comma-separated app names, each with an optional semver range (spaces join comparators:
    `postgresql>=15 <17`). Returns the dependencies read (type application, mandatory) and what was
    ignored, each with why, for a catalog warning; nothing here raises.
    """
    value = annotations.get(DEPENDENCIES)
    if value is None:
        return [], []
    if not isinstance(value, str) or len(value) > MAX_DEPENDENCIES_TEXT:
        return [], [f"{DEPENDENCIES} must be text of at most {MAX_DEPENDENCIES_TEXT} characters"]
    out: list[Dependency] = []
    ignored: list[str] = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        found = _DEPENDENCY.match(item)
        if found is None:
            ignored.append(f"{item[:64]!r} is not an app name with an optional version range")
            continue
        app, wanted = found["app"], (found["range"] or "").strip() or None
        if wanted is not None:
            try:
                parse_constraint(wanted)
            except InvalidConstraint as exc:
                ignored.append(f"{item[:64]!r}: {str(exc)[:120]}")
                continue
        if len(out) == bounds.MAX_DEPENDENCIES:
            ignored.append(f"more than {bounds.MAX_DEPENDENCIES} dependencies: the rest are ignored")
            break
        if wanted is not None and len(wanted) > bounds.MAX_SHORT:
            ignored.append(f"{app}: its range is longer than {bounds.MAX_SHORT} characters")
            continue
        out.append(Dependency(app=app, version=wanted, type="application", mandatory=True))
    return out, ignored
