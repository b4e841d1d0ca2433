"""Does an app fit the cluster? Its catalog requirements against the nodes' free capacity (pure).

The free capacity of a node is what the scheduler would compute: its allocatable minus the requests
of the non-terminal pods bound to it, a pod's request being the sum of its containers' requests or
the largest init container's, whichever is more (sidecars, restartable init containers, count with
the containers), plus the pod's overhead. Only schedulable nodes count: Ready, not cordoned, and
without a NoSchedule or NoExecute taint (an app's tolerations are not known before its chart is
rendered, so a tainted node is taken as closed to it; docs/requirements.md).

"Fits" means one node has all the app needs free at once: a single-pod app cannot spread over
nodes, and that is what people expect from "needs 4 CPUs". Quantities are read with the kubernetes
client's `parse_quantity` (already a dependency, through kopf), bounded here against huge or odd
input, since catalog annotations are untrusted.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import semver
from kubernetes.utils.quantity import parse_quantity

from kubemart.domain.clip import one_line
from kubemart.domain.versions import InvalidConstraint, parse_constraint
from kubemart.models.marketapp import Requirements

INSUFFICIENT = "InsufficientResources"
KUBE_VERSION = "KubeVersionUnsupported"
MAX_QUANTITY_EXPONENT = 24
"""Quantities above 10**24 (a yottabyte, a thousand trillion cores) are refused: nobody means them,
and a Decimal like 1e999999 would otherwise become an int of a million digits."""
NODES_NAMED = 3
"""Nodes named in a message; the rest are counted."""
ARCH_LABEL = "kubernetes.io/arch"
CLOSED_EFFECTS = ("NoSchedule", "NoExecute")


class InvalidQuantity(ValueError):
    """Not a Kubernetes quantity we accept (unparseable, negative, not finite, or absurdly large)."""


def quantity(text: object) -> Decimal:
    """A Kubernetes quantity (100m, 1.5Gi, 2e3) as a Decimal; raises InvalidQuantity."""
    if not isinstance(text, str | int) or isinstance(text, bool) or len(str(text)) > 64:
        raise InvalidQuantity(f"{one_line(str(text), 40)!r} is not a quantity")
    try:
        value = Decimal(parse_quantity(str(text).strip()))  # type: ignore[no-untyped-call]
    except (ValueError, InvalidOperation, ArithmeticError):
        raise InvalidQuantity(f"{one_line(str(text), 40)!r} is not a quantity like 500m or 2Gi") from None
    if not value.is_finite() or value < 0 or value.adjusted() > MAX_QUANTITY_EXPONENT:
        raise InvalidQuantity(f"{one_line(str(text), 40)!r} is not a quantity we accept")
    return value


@dataclass(frozen=True, slots=True)
class Resources:
    """CPU in millicores, memory and disk (ephemeral-storage) in bytes."""

    cpu: int = 0
    memory: int = 0
    disk: int = 0

    def __add__(self, other: Resources) -> Resources:
        return Resources(self.cpu + other.cpu, self.memory + other.memory, self.disk + other.disk)

    def __sub__(self, other: Resources) -> Resources:
        return Resources(self.cpu - other.cpu, self.memory - other.memory, self.disk - other.disk)

    def most(self, other: Resources) -> Resources:
        """Each dimension's larger value."""
        return Resources(max(self.cpu, other.cpu), max(self.memory, other.memory), max(self.disk, other.disk))

    def beyond(self, other: Resources) -> Resources:
        """What this asks for beyond `other`, dimension by dimension (never negative)."""
        return Resources(
            max(0, self.cpu - other.cpu), max(0, self.memory - other.memory), max(0, self.disk - other.disk)
        )

    @property
    def empty(self) -> bool:
        return self.cpu <= 0 and self.memory <= 0 and self.disk <= 0

    def covers(self, need: Resources, *, disk: bool = True) -> bool:
        return self.cpu >= need.cpu and self.memory >= need.memory and (not disk or self.disk >= need.disk)


def resources(values: Mapping[str, Any] | None) -> Resources:
    """cpu, memory and ephemeral-storage of a requests (or allocatable) map; unreadable entries count 0
    (the API server validated them; a request we cannot read is not one we make up)."""
    values = values or {}

    def read(key: str, scale: int) -> int:
        raw = values.get(key)
        if raw is None:
            return 0
        try:
            return math.ceil(quantity(raw) * scale)
        except InvalidQuantity:
            return 0

    return Resources(read("cpu", 1000), read("memory", 1), read("ephemeral-storage", 1))


def pod_requests(spec: Mapping[str, Any]) -> Resources:
    """What a pod holds on its node, computed as the scheduler does (see the module docstring)."""

    def requests(container: Mapping[str, Any]) -> Resources:
        return resources(((container.get("resources") or {}).get("requests")) or {})

    running = Resources()
    for c in spec.get("containers") or ():
        running += requests(c)
    sidecars, init = Resources(), Resources()
    for c in spec.get("initContainers") or ():
        if c.get("restartPolicy") == "Always":
            sidecars += requests(c)
            init = init.most(sidecars)
        else:
            init = init.most(requests(c) + sidecars)
    return (running + sidecars).most(init) + resources(spec.get("overhead"))


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """What of a Node matters for fitting apps."""

    name: str
    arch: str
    allocatable: Resources
    reports_disk: bool
    """The node reports ephemeral-storage (kwok nodes, and some virtual kubelets, do not: disk is then
    not judged on them)."""
    closed: str | None = None
    """Why no new pod lands there (cordoned, not Ready, tainted); None: schedulable."""


def node_info(node: Mapping[str, Any]) -> NodeInfo:
    """A Node object (as the API serves it) read for fitting."""
    meta, spec, status = node.get("metadata") or {}, node.get("spec") or {}, node.get("status") or {}
    allocatable = status.get("allocatable") or {}
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or ()
    )
    taints = [t for t in spec.get("taints") or () if t.get("effect") in CLOSED_EFFECTS and t.get("key")]
    closed = (
        "cordoned"
        if spec.get("unschedulable")
        else "not Ready"
        if not ready
        else f"tainted {one_line(str(taints[0]['key']), 60)}:{taints[0]['effect']}"
        if taints
        else None
    )
    arch = (meta.get("labels") or {}).get(ARCH_LABEL) or (status.get("nodeInfo") or {}).get("architecture")
    return NodeInfo(
        name=str(meta.get("name") or ""),
        arch=str(arch or ""),
        allocatable=resources(allocatable),
        reports_disk="ephemeral-storage" in allocatable,
        closed=closed,
    )


@dataclass(frozen=True, slots=True)
class NodeFree:
    name: str
    arch: str
    free: Resources
    reports_disk: bool


@dataclass(frozen=True)
class Capacity:
    """The cluster's free capacity at one moment: the schedulable nodes, and how many others there are."""

    nodes: tuple[NodeFree, ...] = ()
    closed: int = 0


def capacity(nodes: Iterable[NodeInfo], requested: Mapping[str, Resources]) -> Capacity:
    """Free capacity from the nodes and the requests summed per node name."""
    open_, closed = [], 0
    for n in nodes:
        if n.closed is not None:
            closed += 1
            continue
        open_.append(
            NodeFree(n.name, n.arch, n.allocatable - requested.get(n.name, Resources()), n.reports_disk)
        )
    return Capacity(tuple(sorted(open_, key=lambda f: f.name)), closed)


@dataclass(frozen=True)
class Need:
    resources: Resources = Resources()
    architectures: tuple[str, ...] = ()


def need_of(req: Requirements | None) -> Need:
    """What a catalog entry's requirements ask for; a quantity we cannot read is not judged."""
    if req is None:
        return Need()
    found = resources({"cpu": req.cpu, "memory": req.memory, "ephemeral-storage": req.disk})
    return Need(found, tuple(a.strip().lower() for a in req.architectures if a.strip()))


@dataclass(frozen=True)
class FitInputs:
    """What observe() read for the check: the catalog's requirements now and when last installed,
    the cluster's capacity and version, and the chart's kubeVersion constraint."""

    requirements: Requirements | None = None
    installed_with: Requirements | None = None
    """status.requirements: what the installed version asked for when it was checked; None when
    it was installed without the check (then an upgrade is not checked: a running app is never
    blocked by this)."""
    capacity: Capacity | None = None
    """None: not known (the watch has not listed the cluster, or may not): not judged."""
    cluster_version: str | None = None
    kube_version: str | None = None
    """The chart's Chart.yaml kubeVersion."""


@dataclass(frozen=True)
class Verdict:
    reason: str
    message: str
    stalled: bool = False


def judge(inputs: FitInputs, *, app: str, installed: bool) -> Verdict | None:
    """Pure: why the app (to install, or to upgrade when `installed`) cannot go on now; None: it can."""
    version = kube_version_verdict(inputs.kube_version, inputs.cluster_version, app=app)
    if version is not None:
        return version
    if inputs.capacity is None:
        return None
    need = need_of(inputs.requirements)
    if installed:
        if inputs.installed_with is None:
            return None
        before = need_of(inputs.installed_with)
        # Its own pods hold what it asked for before: only the growth has to find room.
        need = Need(
            need.resources.beyond(before.resources),
            need.architectures if set(need.architectures) != set(before.architectures) else (),
        )
    return fit(need, inputs.capacity, app=app)


def fit(need: Need, cap: Capacity, *, app: str) -> Verdict | None:
    """Pure: None when one schedulable node of a wanted architecture has all of `need` free."""
    if need.resources.empty and not need.architectures:
        return None
    arches = set(need.architectures)
    matching = [n for n in cap.nodes if not arches or n.arch in arches]
    closed = f" ({cap.closed} more not schedulable)" if cap.closed else ""
    hint = "add or free a node with that much, or ask an admin to turn the check off (KUBEMART_CHECK_REQUIREMENTS=false)"
    if not matching:
        have = sorted({n.arch or "unknown" for n in cap.nodes})
        message = (
            f"{app} runs on {', '.join(sorted(arches))} only, and no schedulable node has that architecture "
            f"(nodes have: {', '.join(have) or 'none'}{closed}); add a node of that architecture"
        )
        return Verdict(INSUFFICIENT, one_line(message, 900) + ".")
    if any(n.free.covers(need.resources, disk=n.reports_disk) for n in matching):
        return None
    # The nodes that come closest first: most free CPU, then memory.
    best = sorted(matching, key=lambda n: (-n.free.cpu, -n.free.memory, n.name))
    named = "; ".join(f"{n.name} {describe(n.free, disk=n.reports_disk)}" for n in best[:NODES_NAMED])
    more = f"; {len(best) - NODES_NAMED} more nodes with less" if len(best) > NODES_NAMED else ""
    where = f" of architecture {', '.join(sorted(arches))}" if arches else ""
    message = (
        f"{app} needs {describe(need.resources, need=True)} free on one node{where}, and no schedulable node has it "
        f"(free: {named}{more}{closed}); {hint}"
    )
    return Verdict(INSUFFICIENT, one_line(message, 900) + ".")


def kube_version_verdict(constraint: str | None, version: str | None, *, app: str) -> Verdict | None:
    """Stalled when the chart's kubeVersion excludes the cluster's version, as helm would refuse it.

    Read as helm reads it (Masterminds semver: `>=1.19` excludes a `v1.28.3-eks-1` prerelease, so
    charts write `>=1.19.0-0`). A constraint or version that cannot be read is left for helm to judge.
    """
    if not constraint or not version:
        return None
    try:
        allowed = parse_constraint(constraint)
        found = semver.Version.parse(version.removeprefix("v"))
    except (InvalidConstraint, ValueError, TypeError):
        return None
    if allowed.allows(found):
        return None
    message = (
        f"The chart of {app} requires Kubernetes {one_line(constraint, 80)} (its kubeVersion) and the cluster "
        f"runs {one_line(version, 40)}; choose a version of the app made for this cluster (spec.version), "
        "or upgrade the cluster"
    )
    return Verdict(KUBE_VERSION, message + ".", stalled=True)


def describe(r: Resources, *, disk: bool = True, need: bool = False) -> str:
    """`cpu 2, memory 4Gi, disk 10Gi`, leaving out what a need does not ask for, or a node does not report."""
    parts = [
        (r.cpu, f"cpu {_cpu(r.cpu)}"),
        (r.memory, f"memory {_bytes(r.memory)}"),
        (r.disk if disk else 0, f"disk {_bytes(r.disk)}"),
    ]
    if need:
        return ", ".join(text for amount, text in parts if amount > 0) or "nothing"
    return ", ".join(text for i, (_, text) in enumerate(parts) if i < 2 or disk)


def _cpu(milli: int) -> str:
    if milli % 1000 == 0:
        return str(milli // 1000)
    return f"{milli}m"


def _bytes(n: int) -> str:
    for unit, size in (("Ti", 1 << 40), ("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)):
        if abs(n) >= size:
            value = n / size
            return f"{value:.1f}".rstrip("0").rstrip(".") + unit
    return str(n)
