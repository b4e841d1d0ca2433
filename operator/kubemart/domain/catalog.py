"""MarketApp names and ownership: which object is which source's app (pure).

MarketApps are named `<source>.<app>` and a source's name is one DNS label, so everything before the
first dot is the source and two sources can never produce the same name. A name alone is still not
proof: `entry_belongs` is how a reader (an AppInstall, a Payment) checks that the MarketApp it found is
really the catalog entry of that source and app. The catalog itself is built in `kubemart.catalog`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_NAME_BAD = re.compile(r"[^a-z0-9.-]+")

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


def controlled_by(body: Mapping[str, Any], source_uid: str) -> bool:
    """Whether the MarketSource with uid `source_uid` is the controller of this MarketApp."""
    refs = (body.get("metadata") or {}).get("ownerReferences") or []
    return any(
        r.get("kind") == "MarketSource" and r.get("uid") == source_uid and r.get("controller") for r in refs
    )


def entry_belongs(body: Mapping[str, Any], *, source: str, source_uid: str, app: str) -> bool:
    """Whether a MarketApp is really the catalog entry of `app` in `source` (pure).

    A MarketApp is looked up by name; this checks that what was found says it is that source's
    app and is controlled by that very MarketSource (its uid), so nothing another source or a
    person wrote under that name can stand in for it (a free app posing as a paid one).
    """
    spec = body.get("spec") or {}
    if spec.get("source") != source or spec.get("app") != app:
        return False
    return controlled_by(body, source_uid)
