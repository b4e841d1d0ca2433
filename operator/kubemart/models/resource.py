"""Base classes shared by every kind: camelCase fields, kind metadata, conditions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

GROUP = "kubemart.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
CATEGORY = "kubemart"

DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"


class Model(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are ignored on read."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        use_enum_values=False,
        extra="ignore",
    )

    def wire(self) -> dict[str, Any]:
        """The object as the API server stores it: camelCase, no unset optionals."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


@dataclass(frozen=True)
class PrinterColumn:
    name: str
    json_path: str
    type: Literal["string", "integer", "number", "boolean", "date"] = "string"
    description: str = ""
    priority: int = 0


@dataclass(frozen=True)
class KindInfo:
    kind: str
    plural: str
    singular: str
    short_names: tuple[str, ...]
    scope: Literal["Namespaced", "Cluster"]
    printer_columns: tuple[PrinterColumn, ...] = field(default_factory=tuple)


class Resource(Model):
    """A kind of kubemart.io: `info` names it; `spec` and `status` are typed by subclasses."""

    info: ClassVar[KindInfo]

    @classmethod
    def crd_name(cls) -> str:
        return f"{cls.info.plural}.{GROUP}"


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(Model):
    """One observation of the object's state, in Kubernetes API conventions."""

    type: str = Field(description="Type of condition: Ready, Reconciling or Stalled.")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(
        description="One CamelCase word a program can match on.",
        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
    )
    message: str = Field(default="", description="A human sentence: what is wrong and what to do.")
    last_transition_time: datetime = Field(description="When the status last changed.")
    observed_generation: int | None = Field(
        default=None, description="The .metadata.generation this condition was set for."
    )


class SecretReference(Model):
    """A Secret in a named namespace."""

    name: str = Field(description="Name of the Secret.", min_length=1, max_length=253)
    namespace: str = Field(description="Namespace of the Secret.", min_length=1, max_length=63)


def conditions_field() -> Any:
    return Field(
        default_factory=list,
        description="Ready, Reconciling and Stalled, following kstatus.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )


class ReconciledStatus(Model):
    """What every kind's status has: the generation reconciled, the kstatus conditions, the last retry handled."""

    observed_generation: int | None = Field(default=None, description="The generation last reconciled.")
    conditions: list[Condition] = conditions_field()
    last_handled_reconcile_at: str | None = Field(
        default=None, description="The last kubemart.io/reconcile-requested-at value acted on."
    )
