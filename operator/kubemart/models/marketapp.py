"""MarketApp: one app of a catalog, cluster-scoped, written only by the operator."""

from __future__ import annotations

from pydantic import Field

from kubemart.models.resource import Condition, KindInfo, Model, PrinterColumn, Resource, conditions_field


class Developer(Model):
    """Who publishes the app."""

    name: str = Field(description="Who publishes the app.")
    public_key: str | None = Field(default=None, description="The developer's public key (Ed25519, base64).")


class AppVersion(Model):
    """One published version of the chart."""

    version: str = Field(description="The chart version (semver).")
    app_version: str | None = Field(default=None, description="The version of the app the chart installs.")
    created: str | None = Field(default=None, description="When the chart version was published.")
    digest: str | None = Field(default=None, description="sha256 of the chart archive, from the index.")
    urls: list[str] = Field(default_factory=list, description="Where the chart archive can be downloaded.")


class Price(Model):
    """What the app costs."""

    amount: str = Field(
        description="The price as a decimal string, e.g. 4.99.", pattern=r"^[0-9]+(\.[0-9]{1,8})?$"
    )
    currency: str = Field(description="ISO 4217 currency code, e.g. USD.", pattern=r"^[A-Z]{3}$")


class Requirements(Model):
    """What the app needs to run."""

    cpu: str | None = Field(default=None, description="CPU the app needs, as a quantity.")
    memory: str | None = Field(default=None, description="Memory the app needs, as a quantity.")
    disk: str | None = Field(default=None, description="Disk the app needs, as a quantity.")
    architectures: list[str] = Field(default_factory=list, description="CPU architectures the app runs on.")


class MarketAppSpec(Model):
    """The app's catalog entry, read from the chart repository's index."""

    source: str = Field(description="The MarketSource this app comes from.")
    app: str = Field(description="The chart name.")
    title: str | None = Field(default=None, description="Display name.")
    description: str | None = Field(default=None, description="What the app does.")
    icon: str | None = Field(default=None, description="URL of the app's icon.")
    home: str | None = Field(default=None, description="The app's home page.")
    categories: list[str] = Field(default_factory=list, description="Catalog categories.")
    keywords: list[str] = Field(default_factory=list, description="Search keywords.")
    developer: Developer | None = Field(default=None, description="Who publishes the app.")
    latest_version: str | None = Field(default=None, description="The newest stable version.")
    versions: list[AppVersion] = Field(default_factory=list, description="Versions, newest first (capped).")
    price: Price | None = Field(default=None, description="Price of the app; absent means free.")
    requirements: Requirements | None = Field(default=None, description="What the app needs to run.")


class MarketAppStatus(Model):
    """Written by the operator."""

    observed_generation: int | None = Field(default=None, description="The generation last reconciled.")
    conditions: list[Condition] = conditions_field()


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
        ),
    )
    spec: MarketAppSpec
    status: MarketAppStatus = Field(default_factory=MarketAppStatus)
