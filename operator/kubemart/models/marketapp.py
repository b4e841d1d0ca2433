"""MarketApp: one app of a catalog, cluster-scoped, written only by the operator.

Everything in a MarketApp's spec came from a catalog server we do not trust, so every string and
list has a bound, here and in the CRD; `catalog.entries` cuts what it reads to these bounds (or leaves
the chart out with a note) before anything is written.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from kubemart.models.resource import Condition, KindInfo, Model, PrinterColumn, Resource, conditions_field

MAX_NAME = 253
"""A chart name, and so a MarketApp name (a DNS subdomain)."""
MAX_SHORT = 128
"""Versions, titles, a developer's name, quantities."""
MAX_URL = 2048
MAX_DESCRIPTION = 1024
MAX_KEY = 512
"""A developer's public key (base64 of raw bytes, or PEM)."""
MAX_WORD = 64
"""One category, keyword or architecture."""
MAX_VERSIONS = 20
MAX_URLS = 5
MAX_CATEGORIES = 10
MAX_KEYWORDS = 20
MAX_ARCHITECTURES = 10
MAX_MAINTAINERS = 10
MAX_LINKS = 10
MAX_ENTRANCES = 10
"""Olares apps have 1 to 4 entrances (beclab/apps: 313 in 257 manifests)."""
MAX_DEPENDENCIES = 20
MAX_EMAIL = 254

Word = Annotated[str, StringConstraints(max_length=MAX_WORD)]
Url = Annotated[str, StringConstraints(max_length=MAX_URL)]


class Developer(Model):
    """Who publishes the app."""

    name: str = Field(description="Who publishes the app.", max_length=MAX_SHORT)
    public_key: str | None = Field(
        default=None, description="The developer's public key (Ed25519, base64).", max_length=MAX_KEY
    )


class AppVersion(Model):
    """One published version of the chart."""

    version: str = Field(description="The chart version (semver).", max_length=MAX_SHORT)
    app_version: str | None = Field(
        default=None, description="The version of the app the chart installs.", max_length=MAX_SHORT
    )
    created: str | None = Field(
        default=None, description="When the chart version was published.", max_length=MAX_WORD
    )
    digest: str | None = Field(
        default=None, description="sha256 of the chart archive, from the index.", max_length=MAX_SHORT
    )
    urls: list[Url] = Field(
        default_factory=list,
        description="Where the chart archive can be downloaded.",
        max_length=MAX_URLS,
    )
    kube_version: str | None = Field(
        default=None,
        description="The Kubernetes versions the chart is made for (its Chart.yaml kubeVersion), from the index.",
        max_length=MAX_SHORT,
    )


class Price(Model):
    """What the app costs."""

    amount: str = Field(
        description="The price as a decimal string, e.g. 4.99.",
        pattern=r"^[0-9]+(\.[0-9]{1,8})?$",
        max_length=32,
    )
    currency: str = Field(
        description="ISO 4217 currency code, e.g. USD.", pattern=r"^[A-Z]{3}$", max_length=3
    )


class Maintainer(Model):
    """Who maintains the chart (Chart.yaml `maintainers`)."""

    name: str = Field(description="The maintainer's name.", max_length=MAX_SHORT)
    email: str | None = Field(default=None, description="The maintainer's e-mail.", max_length=MAX_EMAIL)
    url: str | None = Field(default=None, description="The maintainer's page.", max_length=MAX_URL)


class Link(Model):
    """A named link about the app (source code, docs, ...)."""

    name: str = Field(description="What the link is, e.g. Source or Documentation.", max_length=MAX_SHORT)
    url: str = Field(description="Where it points.", max_length=MAX_URL)


class CatalogEntrance(Model):
    """A way into the app once installed, as the catalog declares it (an Olares manifest's entrances)."""

    name: str = Field(description="The entrance's name.", max_length=MAX_WORD)
    title: str | None = Field(default=None, description="What a person sees.", max_length=MAX_SHORT)
    host: str | None = Field(default=None, description="The Service it reaches.", max_length=MAX_NAME)
    port: int | None = Field(default=None, description="The Service port.", ge=1, le=65535)
    icon: str | None = Field(default=None, description="URL of the entrance's icon.", max_length=MAX_URL)
    auth_level: str | None = Field(
        default=None, description="Who may open it (Olares: public, private, internal).", max_length=MAX_WORD
    )
    invisible: bool | None = Field(default=None, description="Not shown to people (a backend entrance).")


class Dependency(Model):
    """Something the app needs installed first (an Olares manifest's options.dependencies)."""

    app: str = Field(
        description="The app (or, for type system, the platform) it depends on.", max_length=MAX_NAME
    )
    version: str | None = Field(
        default=None, description="A semver range, e.g. >=1.12.0-0.", max_length=MAX_SHORT
    )
    type: str | None = Field(
        default=None,
        description="application (another app of the catalog), system (the platform), middleware.",
        max_length=MAX_WORD,
    )
    mandatory: bool | None = Field(default=None, description="The app cannot install without it.")


class ResourceLimits(Model):
    """The most the app may use."""

    cpu: str | None = Field(default=None, description="CPU limit, as a quantity.", max_length=MAX_WORD)
    memory: str | None = Field(default=None, description="Memory limit, as a quantity.", max_length=MAX_WORD)
    disk: str | None = Field(default=None, description="Disk limit, as a quantity.", max_length=MAX_WORD)
    gpu: str | None = Field(default=None, description="GPU memory limit, as a quantity.", max_length=MAX_WORD)


class Requirements(Model):
    """What the app needs to run."""

    cpu: str | None = Field(
        default=None, description="CPU the app needs, as a quantity.", max_length=MAX_WORD
    )
    memory: str | None = Field(
        default=None, description="Memory the app needs, as a quantity.", max_length=MAX_WORD
    )
    disk: str | None = Field(
        default=None, description="Disk the app needs, as a quantity.", max_length=MAX_WORD
    )
    gpu: str | None = Field(
        default=None, description="GPU memory the app needs, as a quantity.", max_length=MAX_WORD
    )
    architectures: list[Word] = Field(
        default_factory=list,
        description="CPU architectures the app runs on.",
        max_length=MAX_ARCHITECTURES,
    )
    limits: ResourceLimits | None = Field(default=None, description="The most the app may use.")


class MarketAppSpec(Model):
    """The app's catalog entry, read from the chart repository's index."""

    source: str = Field(description="The MarketSource this app comes from.", max_length=63)
    app: str = Field(description="The chart name.", max_length=MAX_NAME)
    title: str | None = Field(default=None, description="Display name.", max_length=MAX_SHORT)
    description: str | None = Field(
        default=None, description="What the app does.", max_length=MAX_DESCRIPTION
    )
    icon: str | None = Field(default=None, description="URL of the app's icon.", max_length=MAX_URL)
    home: str | None = Field(default=None, description="The app's home page.", max_length=MAX_URL)
    categories: list[Word] = Field(
        default_factory=list,
        description="Catalog categories.",
        max_length=MAX_CATEGORIES,
    )
    keywords: list[Word] = Field(
        default_factory=list,
        description="Search keywords.",
        max_length=MAX_KEYWORDS,
    )
    developer: Developer | None = Field(default=None, description="Who publishes the app.")
    latest_version: str | None = Field(
        default=None, description="The newest stable version.", max_length=MAX_SHORT
    )
    versions: list[AppVersion] = Field(
        default_factory=list, description="Versions, newest first (capped).", max_length=MAX_VERSIONS
    )
    price: Price | None = Field(default=None, description="Price of the app; absent means free.")
    requirements: Requirements | None = Field(default=None, description="What the app needs to run.")
    license: str | None = Field(
        default=None, description="The app's licence (an SPDX identifier where given).", max_length=MAX_SHORT
    )
    maintainers: list[Maintainer] = Field(
        default_factory=list, description="Who maintains the chart.", max_length=MAX_MAINTAINERS
    )
    links: list[Link] = Field(
        default_factory=list, description="Links about the app (source, docs).", max_length=MAX_LINKS
    )
    deprecated: bool | None = Field(default=None, description="The chart says it is deprecated.")
    prerelease: bool | None = Field(
        default=None, description="The newest version is marked as a pre-release (Artifact Hub)."
    )
    entrances: list[CatalogEntrance] = Field(
        default_factory=list,
        description="The app's declared entrances (Olares apps).",
        max_length=MAX_ENTRANCES,
    )
    dependencies: list[Dependency] = Field(
        default_factory=list,
        description="What the app needs installed first (Olares apps).",
        max_length=MAX_DEPENDENCIES,
    )
    manifest: str | None = Field(
        default=None,
        description="Where the metadata came from when not only the chart: olares (OlaresManifest.yaml).",
        max_length=MAX_WORD,
    )


class Installs(Model):
    """How many AppInstalls name this app, across the namespaces the operator watches."""

    total: int = Field(default=0, ge=0, description="AppInstalls of this app, whatever their phase.")
    running: int = Field(default=0, ge=0, description="Those of them in phase Running.")


class MarketAppStatus(Model):
    """Written by the operator."""

    observed_generation: int | None = Field(default=None, description="The generation last reconciled.")
    conditions: list[Condition] = conditions_field()
    installs: Installs | None = Field(
        default=None,
        description="Install counts, written at most once per app per KUBEMART_INSTALL_COUNTS_INTERVAL.",
    )


class MarketApp(Resource):
    """One app of a catalog."""

    info = KindInfo(
        kind="MarketApp",
        plural="marketapps",
        singular="marketapp",
        short_names=("mapp",),
        scope="Cluster",
        printer_columns=(
            PrinterColumn("Source", ".spec.source"),
            PrinterColumn("App", ".spec.app"),
            PrinterColumn("Latest", ".spec.latestVersion"),
            PrinterColumn("Category", ".spec.categories[0]"),
            PrinterColumn("Price", ".spec.price.amount"),
            PrinterColumn("Installs", ".status.installs.total", type="integer"),
            PrinterColumn("Running", ".status.installs.running", type="integer", priority=1),
        ),
    )
    spec: MarketAppSpec
    status: MarketAppStatus = Field(default_factory=MarketAppStatus)
