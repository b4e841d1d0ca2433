"""From a Helm repository index to MarketApp specs, and from old to new catalog to the writes needed.

Pure: no I/O. The sync service fetches the index, calls `catalog_from_index`, lists what exists,
and asks `plan_sync` which MarketApps to write and delete, so an unchanged chart costs no write.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from kubemart.domain.versions import sort_versions_desc
from kubemart.models.marketapp import AppVersion, Developer, MarketAppSpec, Price, Requirements

MAX_VERSIONS = 20
ANNOTATION_PREFIX = "kubemart.io/"
CONTENT_HASH_ANNOTATION = "kubemart.io/content-hash"
_PRICE = re.compile(r"^\s*(?P<amount>[0-9]+(\.[0-9]{1,8})?)\s+(?P<currency>[A-Za-z]{3})\s*$")
_NAME_BAD = re.compile(r"[^a-z0-9.-]+")


class InvalidIndex(ValueError):
    """The repository's index.yaml cannot be read as a Helm index."""


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    """The MarketApp's object name: `<source>.<app>`, made DNS-safe."""
    spec: MarketAppSpec
    content_hash: str
    labels: dict[str, str]


@dataclass
class Catalog:
    entries: dict[str, CatalogEntry] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    """Charts left out, each with why (a person reads these in the source's status)."""


@dataclass(frozen=True)
class SyncPlan:
    write: list[CatalogEntry]
    delete: list[str]
    unchanged: int


def parse_index(body: bytes) -> dict[str, list[dict[str, Any]]]:
    """The `entries` of a Helm repository index."""
    try:
        # libyaml's safe loader when present: a 5,000-chart index is tens of megabytes.
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        doc = yaml.load(body, Loader=loader)
    except yaml.YAMLError as exc:
        raise InvalidIndex(f"index.yaml is not valid YAML: {_first_line(exc)}") from exc
    if not isinstance(doc, dict):
        raise InvalidIndex("index.yaml is not a mapping; is the URL a Helm chart repository?")
    entries = doc.get("entries")
    if entries is None:
        entries = {}
    if not isinstance(entries, dict):
        raise InvalidIndex("index.yaml has no `entries` mapping; is the URL a Helm chart repository?")
    return {str(k): [e for e in v if isinstance(e, dict)] for k, v in entries.items() if isinstance(v, list)}


SOURCE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
"""A MarketSource's name is one DNS label (no dots), so that `<source>.<app>` names never collide."""


def valid_source_name(name: str) -> bool:
    return len(name) <= 63 and SOURCE_NAME.fullmatch(name) is not None


def object_name(source: str, app: str) -> str:
    """The MarketApp of `app` in `source`: `<source>.<app>`, a DNS subdomain of at most 253 characters.

    The source is one DNS label (`valid_source_name`), so everything before the first dot is the
    source: two sources can never produce the same name, whatever their apps are called.
    """
    labels = [_NAME_BAD.sub("-", part.lower()).strip("-.") for part in f"{source}.{app}".split(".")]
    name = ".".join(label for label in labels if label)[:253]
    return name.rstrip("-.") or "app"


def entry_belongs(body: Mapping[str, Any], *, source: str, source_uid: str, app: str) -> bool:
    """Whether a MarketApp is really the catalog entry of `app` in `source` (pure).

    A MarketApp is looked up by name; this checks that what was found says it is that source's
    app and is controlled by that very MarketSource (its uid), so nothing another source or a
    person wrote under that name can stand in for it (a free app posing as a paid one).
    """
    spec = body.get("spec") or {}
    if spec.get("source") != source or spec.get("app") != app:
        return False
    refs = (body.get("metadata") or {}).get("ownerReferences") or []
    return any(
        r.get("kind") == "MarketSource" and r.get("uid") == source_uid and r.get("controller") for r in refs
    )


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _is_stable(version: str) -> bool:
    return "-" not in version.split("+", 1)[0]


def _csv(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return []


def parse_price(text: str) -> Price:
    """`4.99 USD` -> Price; raises ValueError with what is wrong."""
    m = _PRICE.match(text)
    if not m:
        raise ValueError(f"price {text!r} is not '<amount> <currency>', e.g. '4.99 USD'")
    amount = m.group("amount")
    if float(amount) == 0:
        raise ValueError(f"price {text!r} is zero; leave the annotation out for a free app")
    return Price(amount=amount, currency=m.group("currency").upper())


def parse_requirements(text: str) -> Requirements:
    """A YAML/JSON mapping: {cpu: 100m, memory: 256Mi, disk: 1Gi, architectures: [amd64]}."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"requirements are not YAML: {_first_line(exc)}") from exc
    if not isinstance(doc, dict):
        raise ValueError("requirements must be a mapping like {cpu: 100m, memory: 256Mi}")
    archs = doc.get("architectures", doc.get("arch", []))
    return Requirements(
        cpu=_opt_str(doc.get("cpu")),
        memory=_opt_str(doc.get("memory")),
        disk=_opt_str(doc.get("disk")),
        architectures=_csv(archs),
    )


def _urls(value: Any) -> list[str]:
    if isinstance(value, str):  # one URL written without a list
        return [value]
    return [str(u) for u in value or []]


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _developer(annotations: Mapping[str, Any]) -> Developer | None:
    name = annotations.get(f"{ANNOTATION_PREFIX}developer")
    if not name:
        return None
    key = annotations.get(f"{ANNOTATION_PREFIX}developer-public-key")
    return Developer(name=str(name), public_key=str(key) if key else None)


def app_spec(source: str, app: str, entries: list[dict[str, Any]]) -> MarketAppSpec:
    """The catalog entry for one chart; metadata from its newest stable version. Raises ValueError."""
    by_version = {str(e["version"]): e for e in entries if e.get("version") is not None}
    ordered = sort_versions_desc(by_version)
    if not ordered:
        raise ValueError("no version is valid semver")
    stable = [v for v in ordered if _is_stable(v)]
    latest = stable[0] if stable else ordered[0]
    head = by_version[latest]
    annotations = head.get("annotations") or {}
    if not isinstance(annotations, dict):
        annotations = {}
    price_text = annotations.get(f"{ANNOTATION_PREFIX}price")
    req_text = annotations.get(f"{ANNOTATION_PREFIX}requirements")
    return MarketAppSpec(
        source=source,
        app=app,
        title=str(annotations.get(f"{ANNOTATION_PREFIX}title") or app),
        description=_opt_str(head.get("description")),
        icon=_opt_str(head.get("icon")),
        home=_opt_str(head.get("home")),
        categories=_csv(annotations.get(f"{ANNOTATION_PREFIX}categories")),
        keywords=_csv(head.get("keywords")),
        developer=_developer(annotations),
        latest_version=latest,
        versions=[
            AppVersion(
                version=v,
                app_version=_opt_str(by_version[v].get("appVersion")),
                created=_opt_str(by_version[v].get("created")),
                digest=_opt_str(by_version[v].get("digest")),
                urls=_urls(by_version[v].get("urls")),
            )
            for v in ordered[:MAX_VERSIONS]
        ],
        price=parse_price(str(price_text)) if price_text else None,
        requirements=parse_requirements(str(req_text)) if req_text else None,
    )


def content_hash(spec: MarketAppSpec) -> str:
    encoded = json.dumps(spec.wire(), sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()[:32]


def _label_value(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", value)[:63].strip("-_.")


def catalog_from_index(source: str, entries: Mapping[str, list[dict[str, Any]]]) -> Catalog:
    catalog = Catalog()
    for app in sorted(entries):
        try:
            spec = app_spec(source, app, entries[app])
        except (ValueError, KeyError, TypeError) as exc:
            catalog.skipped.append(f"{app}: {exc}")
            continue
        name = object_name(source, app)
        if name in catalog.entries:
            catalog.skipped.append(f"{app}: its object name {name} is taken by another chart")
            continue
        labels = {"kubemart.io/source": _label_value(source), "kubemart.io/app": _label_value(app)}
        if spec.categories:
            labels["kubemart.io/category"] = _label_value(spec.categories[0])
        catalog.entries[name] = CatalogEntry(
            name=name, spec=spec, content_hash=content_hash(spec), labels=labels
        )
    return catalog


def plan_sync(catalog: Catalog, existing: Mapping[str, str | None]) -> SyncPlan:
    """Which MarketApps to write and delete; `existing` maps object name to its content hash."""
    write = [e for name, e in catalog.entries.items() if existing.get(name) != e.content_hash]
    delete = sorted(name for name in existing if name not in catalog.entries)
    return SyncPlan(write=write, delete=delete, unchanged=len(catalog.entries) - len(write))
