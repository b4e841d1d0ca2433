"""`kubectl market install`'s dependency handling, the pure parts (plugin/dependencies.py)."""

from __future__ import annotations

import pytest

from kubemart.plugin.api import PluginError
from kubemart.plugin.dependencies import depends_on_refs, missing, needs

WEB = {
    "spec": {
        "source": "s",
        "app": "web",
        "dependencies": [
            {"app": "postgresql", "version": ">=15", "type": "application", "mandatory": True},
            {"app": "redis", "type": "application", "mandatory": True},
            {"app": "olares", "version": ">=1.12", "type": "system", "mandatory": True},
            {"app": "cache", "type": "application"},
        ],
    }
}


def test_only_mandatory_applications_are_needed() -> None:
    assert [d["app"] for d in needs(WEB)] == ["postgresql", "redis"]
    assert needs({"spec": {"dependencies": "garbage"}}) == []


def test_missing_looks_at_the_apps_installed_in_the_namespace() -> None:
    installs = [{"spec": {"app": "redis"}}, {"spec": {"app": "web"}}]
    assert [d["app"] for d in missing(WEB, installs)] == ["postgresql"]
    assert missing(WEB, [*installs, {"spec": {"app": "postgresql"}}]) == []


def test_depends_on_values() -> None:
    assert depends_on_refs(["db", "data/pg"]) == [{"name": "db"}, {"namespace": "data", "name": "pg"}]


@pytest.mark.parametrize("bad", ["Bad", "a/b/c", "", "-x"])
def test_bad_depends_on_values_are_refused(bad: str) -> None:
    with pytest.raises(PluginError, match="--depends-on"):
        depends_on_refs([bad])


def test_too_many_depends_on_are_refused() -> None:
    with pytest.raises(PluginError, match="at most 32"):
        depends_on_refs([f"a{i}" for i in range(33)])
