"""App definitions in the tomo format (`apps/<category>/<app>.yaml`), validated strictly (pure).

A definition is untrusted input that becomes a workload in someone's cluster: every field is typed and
bounded, the image must be an image reference, ports are in range, volume paths are absolute without
`..`. Host paths are never used: a volume becomes a PersistentVolumeClaim. What the definition may ask
for that weakens isolation (privileged, added capabilities) is checked against the source's
`spec.definitions` at sync: a definition that asks for more is left out of the catalog with a note.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from kubemart.domain.clip import one_line
from kubemart.models.marketsource import DefinitionPolicy

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
# A Docker image reference: [registry[:port]/]path[:tag][@sha256:digest], lowercase path components.
IMAGE = (
    r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9.-]{0,251}[a-zA-Z0-9])?(?::[0-9]{1,5})?/)?"
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*){0,8}"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$"
)
Short = Annotated[str, StringConstraints(max_length=128)]
Word = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[^\s,]+( [^\s,]+)*$")]
Capability = Annotated[str, StringConstraints(pattern=r"^(CAP_)?[A-Z][A-Z_]{1,31}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Port(_Strict):
    container: int = Field(ge=1, le=65535)
    host: int | None = Field(default=None, ge=1, le=65535)
    """Where Docker would publish it; here the Service's port."""
    protocol: Literal["tcp", "udp", "TCP", "UDP"] = "tcp"


class Volume(_Strict):
    container_path: str = Field(max_length=256, pattern=r"^/[^\x00]*$")
    host_path: str | None = Field(default=None, max_length=1024)
    """Ignored: a host path is never mounted, the volume is a PersistentVolumeClaim."""
    readonly: bool = False
    size: str | None = Field(default=None, pattern=r"^[0-9]{1,6}(Ki|Mi|Gi|Ti)$")

    @field_validator("container_path")
    @classmethod
    def _no_dotdot(cls, value: str) -> str:
        if ".." in value.split("/"):
            raise ValueError("container_path must not contain '..'")
        return value


class EnvVar(_Strict):
    name: str = Field(max_length=128, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    description: str | None = Field(default=None, max_length=512)
    required: bool = False
    default: str | int | float | bool | None = None

    @field_validator("default")
    @classmethod
    def _short(cls, value: Any) -> Any:
        if isinstance(value, str) and len(value) > 4096:
            raise ValueError("default is longer than 4096 characters")
        return value


class Docker(_Strict):
    image: str = Field(max_length=512, pattern=IMAGE)
    ports: list[Port] = Field(default_factory=list, max_length=32)
    volumes: list[Volume] = Field(default_factory=list, max_length=16)
    environment: list[EnvVar] = Field(default_factory=list, max_length=64)
    restart_policy: Literal["always", "unless-stopped", "on-failure", "no"] = "unless-stopped"
    network_mode: Literal["bridge"] | None = None
    """host networking is not offered: only the default (bridge-like) pod network."""
    privileged: bool = False
    capabilities: list[Capability] = Field(default_factory=list, max_length=32)
    command: list[Annotated[str, StringConstraints(max_length=1024)]] | None = Field(
        default=None, max_length=64
    )


class DefRequirements(_Strict):
    min_ram: int | None = Field(default=None, ge=0, le=16 * 1024 * 1024)
    """MiB."""
    min_storage: int | None = Field(default=None, ge=0, le=1024 * 1024 * 1024)
    """MiB."""
    architectures: list[Word] = Field(default_factory=list, max_length=8)


class Definition(BaseModel):
    """One app; unknown top-level keys (a catalog's own extras) are ignored, unknown docker keys are not."""

    model_config = ConfigDict(extra="ignore", frozen=True, str_strip_whitespace=True)

    id: str = Field(max_length=63, pattern=DNS_LABEL)
    name: Short
    description: str | None = Field(default=None, max_length=1024)
    version: str = Field(max_length=64, pattern=r"^v?[0-9]+(\.[0-9]+){0,2}([-+][0-9A-Za-z.+-]{1,60})?$")
    category: Word | None = None
    tags: list[Word] = Field(default_factory=list, max_length=20)
    author: Short | None = None
    license: Short | None = None
    repository: str | None = Field(default=None, max_length=2048, pattern=r"^https?://\S+$")
    icon: str | None = Field(default=None, max_length=2048, pattern=r"^https?://\S+$")
    docker: Docker
    requirements: DefRequirements | None = None

    @field_validator("version", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        # `version: 1.2` is a float in YAML
        return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


def refusal(definition: Definition, policy: DefinitionPolicy | None) -> str | None:
    """Why `policy` does not allow this definition, or None."""
    allowed = policy or DefinitionPolicy()
    if definition.docker.privileged and not allowed.allow_privileged:
        return "it asks for a privileged container, which spec.definitions.allowPrivileged does not allow"
    extra = sorted(
        {_cap(c) for c in definition.docker.capabilities} - {_cap(c) for c in allowed.allowed_capabilities}
    )
    if extra:
        return (
            f"it adds capabilities {', '.join(extra)}, which spec.definitions.allowedCapabilities does not "
            "list"
        )
    return None


def _cap(name: str) -> str:
    return name.upper().removeprefix("CAP_")


def semver_of(version: str) -> str:
    """`v1.2` -> `1.2.0`: helm charts need three numbers."""
    match = re.match(r"^([0-9.]+)(.*)$", version.removeprefix("v"))
    if match is None:
        return version
    numbers = match.group(1).strip(".").split(".")
    numbers += ["0"] * (3 - len(numbers))
    return ".".join(numbers) + match.group(2)


def chart_values(definition: Definition) -> dict[str, Any]:
    """The generic chart's values for this definition (what an AppInstall's values may override)."""
    d = definition.docker
    values: dict[str, Any] = {
        "image": d.image,
        "ports": [
            {
                "name": f"p{p.container}-{p.protocol.lower()}",
                "containerPort": p.container,
                "port": p.host or p.container,
                "protocol": p.protocol.upper(),
            }
            for p in d.ports
        ],
        "persistence": [
            {
                "name": f"data-{i}",
                "mountPath": v.container_path,
                "readOnly": v.readonly,
                "size": v.size or "1Gi",
            }
            for i, v in enumerate(d.volumes)
        ],
        "env": [
            {"name": e.name, "value": "" if e.default is None else _env_text(e.default)}
            for e in d.environment
        ],
        "command": d.command or [],
        "resources": {},
    }
    if definition.requirements and definition.requirements.min_ram:
        values["resources"] = {"requests": {"memory": f"{definition.requirements.min_ram}Mi"}}
    return values


def _env_text(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def security(definition: Definition) -> dict[str, Any]:
    return {
        "privileged": definition.docker.privileged,
        "capabilities": sorted({_cap(c) for c in definition.docker.capabilities}),
    }


def index_entry(definition: Definition) -> dict[str, Any]:
    """The definition as a Helm index entry (what `catalog.entries` reads), without digest and urls."""
    annotations: dict[str, str] = {"kubemart.io/title": definition.name}
    if definition.category:
        annotations["kubemart.io/categories"] = definition.category
    if definition.license:
        annotations["artifacthub.io/license"] = definition.license
    if definition.author:
        annotations["kubemart.io/developer"] = definition.author
    req = definition.requirements
    if req and (req.min_ram or req.min_storage or req.architectures):
        parts = []
        if req.min_ram:
            parts.append(f"memory: {req.min_ram}Mi")
        if req.min_storage:
            parts.append(f"disk: {req.min_storage}Mi")
        if req.architectures:
            parts.append(f"architectures: [{', '.join(req.architectures)}]")
        annotations["kubemart.io/requirements"] = "{" + ", ".join(parts) + "}"
    entry: dict[str, Any] = {
        "name": definition.id,
        "version": semver_of(definition.version),
        "appVersion": definition.version,
        "description": definition.description,
        "keywords": list(definition.tags),
        "annotations": annotations,
    }
    if definition.icon:
        entry["icon"] = definition.icon
    if definition.repository:
        entry["home"] = definition.repository
    return {k: v for k, v in entry.items() if v is not None}


def error_note(exc: Exception) -> str:
    """The first validation error, on one line, for a note about a definition left out."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return one_line(f"{where}: {first.get('msg', '')}" if where else str(first.get("msg", "")), 200)
    return one_line(str(exc), 200)
