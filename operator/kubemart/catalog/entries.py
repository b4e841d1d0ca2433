"""From chart versions (as a source lists them) to MarketApp specs, cut to the MarketApp's bounds (pure).

What a catalog server sends is untrusted: every string is cut to its bound (`models.marketapp`) or
dropped when a cut one would be wrong (a URL, a key, a quantity), lists are capped, annotations are
read only when they are strings, and a chart that cannot be read is left out with a short note that
says why. Nothing here does I/O; the sync calls it in a thread.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubemart.catalog import metadata
from kubemart.catalog.olares import MANIFEST_KEY, OlaresFields, olares_fields
from kubemart.domain import safe_yaml
from kubemart.domain.catalog import object_name
from kubemart.domain.clip import clip, one_line
from kubemart.domain.versions import sort_versions_desc
from kubemart.models import marketapp as bounds
from kubemart.models.marketapp import AppVersion, Developer, MarketAppSpec, Price, Requirements

ANNOTATION_PREFIX = "kubemart.io/"
CONTENT_HASH_ANNOTATION = "kubemart.io/content-hash"
MAX_VERSIONS = bounds.MAX_VERSIONS
MAX_APP_NAME = 189
"""253 (a DNS subdomain) minus a 63-character source name and the dot: names up to this never collide."""
MAX_NOTE = 240
"""Characters of one note about a chart left out."""
_MAX_ANNOTATION = 1024
_PRICE = re.compile(r"^\s*(?P<amount>[0-9]{1,20}(\.[0-9]{1,8})?)\s+(?P<currency>[A-Za-z]{3})\s*$")
_REQUIREMENTS = safe_yaml.Limits(max_depth=4, max_nodes=200, max_aliases=0, seconds=1.0)


class CatalogTooLarge(ValueError):
    """The source lists more charts than one MarketSource may hold."""


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
    """Charts left out, each with why (a person reads these in Events), cut to MAX_NOTE."""
    ignored: list[str] = field(default_factory=list)
    """Parts of charts' metadata ignored (a bad kubemart.io/dependencies entry), each with why."""


def _text(value: Any, limit: int) -> str | None:
    """A scalar as text cut to `limit`; None for anything else (a mapping where a string belongs)."""
    if isinstance(value, str):
        return clip(value, limit)
    if isinstance(value, bool | int | float):
        return str(value)
    return None


def _exact(value: Any, limit: int) -> str | None:
    """A scalar as text if it fits in `limit`, else None: for values a cut would make wrong (URLs, keys)."""
    text = _text(value, limit + 1)
    return text if text is not None and len(text) <= limit else None


def _words(value: Any, *, most: int) -> list[str]:
    """A list, or a comma-separated string, of short words; longer ones are left out."""
    items = value if isinstance(value, list) else value.split(",") if isinstance(value, str) else []
    out: list[str] = []
    for item in items:
        word = _exact(item, bounds.MAX_WORD)
        if word is not None and word.strip():
            out.append(word.strip())
            if len(out) == most:
                break
    return out


def _is_stable(version: str) -> bool:
    return "-" not in version.split("+", 1)[0]


def parse_price(text: str) -> Price:
    """`4.99 USD` -> Price; raises ValueError with what is wrong."""
    m = _PRICE.match(text)
    if not m:
        raise ValueError(f"price {clip(text, 40)!r} is not '<amount> <currency>', e.g. '4.99 USD'")
    amount = m.group("amount")
    if float(amount) == 0:
        raise ValueError(f"price {text!r} is zero; leave the annotation out for a free app")
    return Price(amount=amount, currency=m.group("currency").upper())


def parse_requirements(text: str) -> Requirements:
    """A YAML/JSON mapping: {cpu: 100m, memory: 256Mi, disk: 1Gi, architectures: [amd64]}."""
    if len(text) > _MAX_ANNOTATION:
        raise ValueError(f"requirements are longer than {_MAX_ANNOTATION} characters")
    try:
        doc = safe_yaml.load(text, limits=_REQUIREMENTS, source="requirements")
    except safe_yaml.UnsafeYAML as exc:
        raise ValueError(one_line(str(exc).replace("requirements is", "requirements are", 1), 160)) from None
    if not isinstance(doc, dict):
        raise ValueError("requirements must be a mapping like {cpu: 100m, memory: 256Mi}")

    def quantity(key: str) -> str | None:
        value = doc.get(key)
        if value is None:
            return None
        found = _exact(value, bounds.MAX_WORD)
        if found is None:
            raise ValueError(f"requirements.{key} is not a quantity like 100m or 256Mi")
        return found

    return Requirements(
        cpu=quantity("cpu"),
        memory=quantity("memory"),
        disk=quantity("disk"),
        architectures=_words(doc.get("architectures", doc.get("arch", [])), most=bounds.MAX_ARCHITECTURES),
    )


def _urls(value: Any) -> list[str]:
    items = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    out = [u for u in (_exact(item, bounds.MAX_URL) for item in items) if u]
    return out[: bounds.MAX_URLS]


def _developer(annotations: Mapping[str, Any]) -> Developer | None:
    name = _text(annotations.get(f"{ANNOTATION_PREFIX}developer"), bounds.MAX_SHORT)
    if not name:
        return None
    key = _exact(annotations.get(f"{ANNOTATION_PREFIX}developer-public-key"), bounds.MAX_KEY)
    return Developer(name=name, public_key=key or None)


def _version_of(entry: Mapping[str, Any]) -> str | None:
    # Helm reads versions as text; YAML may have made `1.2` a float.
    return _exact(entry.get("version"), bounds.MAX_SHORT)


def app_spec(source: str, app: str, entries: list[dict[str, Any]]) -> MarketAppSpec:
    """The catalog entry for one chart; metadata from its newest stable version. Raises ValueError."""
    if len(app) > MAX_APP_NAME:
        raise ValueError(f"its name is longer than {MAX_APP_NAME} characters")
    if not app.isprintable():
        raise ValueError("its name has control characters")
    by_version: dict[str, dict[str, Any]] = {}
    for e in entries:
        version = _version_of(e)
        if version is not None:
            by_version[version] = e
    ordered = sort_versions_desc(by_version)
    if not ordered:
        raise ValueError("no version is valid semver")
    stable = [v for v in ordered if _is_stable(v)]
    latest = stable[0] if stable else ordered[0]
    head = by_version[latest]
    annotations = head.get("annotations")
    if not isinstance(annotations, dict):
        annotations = {}
    price_text = _text(annotations.get(f"{ANNOTATION_PREFIX}price"), _MAX_ANNOTATION)
    req_text = _text(annotations.get(f"{ANNOTATION_PREFIX}requirements"), _MAX_ANNOTATION + 1)
    keywords = _words(head.get("keywords"), most=bounds.MAX_KEYWORDS)
    manifest = head.get(MANIFEST_KEY)
    olares = olares_fields(manifest) if isinstance(manifest, dict) else None
    spec = MarketAppSpec(
        source=source,
        app=app,
        title=metadata.title(annotations) or clip(app, bounds.MAX_SHORT),
        description=_text(head.get("description"), bounds.MAX_DESCRIPTION),
        icon=_exact(head.get("icon"), bounds.MAX_URL),
        home=_exact(head.get("home"), bounds.MAX_URL),
        categories=_categories(annotations, keywords),
        keywords=keywords,
        developer=_developer(annotations),
        latest_version=latest,
        versions=[
            AppVersion(
                version=v,
                app_version=_text(by_version[v].get("appVersion"), bounds.MAX_SHORT),
                created=_exact(by_version[v].get("created"), bounds.MAX_WORD),
                # An invalid digest stays invalid when cut, and a chart fetch refuses it.
                digest=_text(by_version[v].get("digest"), bounds.MAX_SHORT),
                urls=_urls(by_version[v].get("urls")),
                # A longer constraint is left for the chart's own Chart.yaml (release.fit).
                kube_version=_exact(by_version[v].get("kubeVersion"), bounds.MAX_SHORT),
            )
            for v in ordered[:MAX_VERSIONS]
        ],
        price=parse_price(price_text) if price_text else None,
        requirements=parse_requirements(req_text) if req_text else None,
        license=metadata.license_of(annotations),
        maintainers=metadata.maintainers(head, annotations),
        links=metadata.links(head, annotations),
        deprecated=metadata.flag(head.get("deprecated")),
        prerelease=metadata.flag(annotations.get(f"{metadata.ARTIFACTHUB}prerelease")),
    )
    spec = _with_olares(spec, olares, annotations) if olares is not None else spec
    declared, _ = metadata.dependencies(annotations)
    # Ours win over an Olares manifest's, like every kubemart.io annotation.
    return spec.model_copy(update={"dependencies": declared}) if declared else spec


def head_version(entries: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The version entry a chart's catalog metadata is read from: its newest stable (else newest) one."""
    by_version = {v: e for e in entries if (v := _version_of(e)) is not None}
    ordered = sort_versions_desc(by_version)
    if not ordered:
        return None
    stable = [v for v in ordered if _is_stable(v)]
    return by_version[stable[0] if stable else ordered[0]]


def _categories(annotations: Mapping[str, Any], keywords: list[str]) -> list[str]:
    """Ours, else the one Artifact Hub's (or Bitnami's) annotation declares, else one predicted."""
    ours = _words(annotations.get(f"{ANNOTATION_PREFIX}categories"), most=bounds.MAX_CATEGORIES)
    if ours:
        return ours
    declared = metadata.declared_category(annotations)
    if declared is not None:
        return [declared] if declared else []
    predicted = metadata.predicted_category(keywords)
    return [predicted] if predicted else []


def _with_olares(spec: MarketAppSpec, olares: OlaresFields, annotations: Mapping[str, Any]) -> MarketAppSpec:
    """The manifest's metadata over Chart.yaml's; our own kubemart.io annotations still win."""

    def ours(key: str) -> bool:
        return annotations.get(f"{ANNOTATION_PREFIX}{key}") is not None

    update: dict[str, Any] = {
        "manifest": "olares",
        "entrances": olares.entrances,
        "dependencies": olares.dependencies,
    }
    for name in ("description", "icon", "home", "license"):
        if getattr(olares, name):
            update[name] = getattr(olares, name)
    if olares.title and not ours("title"):
        update["title"] = olares.title
    if olares.categories and not ours("categories"):
        update["categories"] = olares.categories
    if olares.developer and not ours("developer"):
        update["developer"] = olares.developer
    if olares.requirements and not ours("requirements"):
        update["requirements"] = olares.requirements
    if olares.links:
        update["links"] = (olares.links + spec.links)[: bounds.MAX_LINKS]
    return spec.model_copy(update=update)


def content_hash(spec: MarketAppSpec | Mapping[str, Any]) -> str:
    """A digest of a MarketApp spec (a model, or the wire form a listed object has)."""
    wire = spec.wire() if isinstance(spec, MarketAppSpec) else spec
    encoded = json.dumps(wire, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()[:32]


def label_value(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", value)[:63].strip("-_.")


def catalog_from_charts(
    source: str, charts: Mapping[str, list[dict[str, Any]]], *, max_apps: int | None = None
) -> Catalog:
    """The MarketApps a source's charts make. Raises CatalogTooLarge past `max_apps` charts."""
    if max_apps is not None and len(charts) > max_apps:
        raise CatalogTooLarge(
            f"The catalog lists {len(charts)} charts, more than the {max_apps} one source may hold"
        )
    catalog = Catalog()
    for app in sorted(charts):
        try:
            spec = app_spec(source, app, charts[app])
        except (ValueError, KeyError, TypeError) as exc:
            catalog.skipped.append(_note(app, str(exc)))
            continue
        head = head_version(charts[app]) or {}
        annotations = head.get("annotations")
        _, ignored = metadata.dependencies(annotations if isinstance(annotations, dict) else {})
        catalog.ignored.extend(_note(app, why) for why in ignored)
        name = object_name(source, app)
        if name in catalog.entries:
            catalog.skipped.append(_note(app, f"its object name {name} is taken by another chart"))
            continue
        labels = {"kubemart.io/source": label_value(source), "kubemart.io/app": label_value(app)}
        if spec.categories:
            labels["kubemart.io/category"] = label_value(spec.categories[0])
        catalog.entries[name] = CatalogEntry(
            name=name, spec=spec, content_hash=content_hash(spec), labels=labels
        )
    return catalog


def _note(app: str, why: str) -> str:
    return one_line(f"{clip(app, 64)}: {why}", MAX_NOTE)
