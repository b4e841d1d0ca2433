"""The install-count tally (domain.install_counts): which MarketApps need a status write, and with what."""

from __future__ import annotations

from typing import Any

from kubemart.domain.install_counts import Installs, InstallTally, counted_as, generation_key


def install(name: str, app: str = "wiki", *, phase: str | None = None, ns: str = "team-a") -> dict[str, Any]:
    body: dict[str, Any] = {
        "metadata": {"name": name, "namespace": ns},
        "spec": {"source": "demo", "app": app},
    }
    if phase:
        body["status"] = {"phase": phase}
    return body


def marketapp(name: str, installs: dict[str, Any] | None = None, rv: int = 1, **meta: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"metadata": {"name": name, "resourceVersion": str(rv), **meta}}
    if installs is not None:
        body["status"] = {"installs": installs}
    return body


def put(tally: InstallTally, body: dict[str, Any]) -> bool:
    return tally.put((body["metadata"]["namespace"], body["metadata"]["name"]), body)


def test_an_install_counts_for_the_marketapp_its_source_and_app_name() -> None:
    assert counted_as(install("a")) == ("demo.wiki", False)
    assert counted_as(install("a", "Wiki", phase="Running")) == ("demo.wiki", True)
    assert counted_as({"metadata": {"name": "x"}, "spec": {"source": "demo"}}) is None
    assert counted_as({"metadata": {"name": "x"}, "spec": {"source": 3, "app": "wiki"}}) is None


def test_totals_and_running_follow_the_phases() -> None:
    tally = InstallTally()
    put(tally, install("a", phase="Running"))
    put(tally, install("b", phase="Suspended"))
    put(tally, install("c", phase="Running", ns="team-b"))
    put(tally, install("d", "blog"))
    assert tally.counts("demo.wiki") == Installs(3, 2)
    assert tally.counts("demo.blog") == Installs(1, 0)
    put(tally, install("a", phase="Degraded"))
    assert tally.counts("demo.wiki") == Installs(3, 1)
    assert tally.drop(("team-a", "b"))
    assert not tally.drop(("team-a", "b")), "dropped once"
    assert tally.counts("demo.wiki") == Installs(2, 1)


def test_an_install_moved_to_another_app_counts_there_only() -> None:
    tally = InstallTally()
    put(tally, install("a", phase="Running"))
    put(tally, install("a", "blog", phase="Running"))
    assert tally.counts("demo.wiki") == Installs(0, 0)
    assert tally.counts("demo.blog") == Installs(1, 1)


def test_an_event_that_changes_no_count_is_not_a_change() -> None:
    tally = InstallTally()
    assert put(tally, install("a", phase="Installing"))
    assert not put(tally, install("a", phase="Installing"))
    assert put(tally, install("a", phase="Running"))
    assert not put(tally, install("a", phase="Running"))


def test_only_marketapps_that_exist_and_show_other_numbers_are_due() -> None:
    tally = InstallTally()
    for i in range(100):
        put(tally, install(f"a{i}", phase="Running" if i < 3 else "Suspended"))
    assert tally.due() == {}, "no MarketApp seen yet: nothing to write"
    tally.app_seen(marketapp("demo.wiki"))
    assert tally.due() == {"demo.wiki": Installs(100, 3)}, "written once it appears"
    assert tally.due() == {}, "due once until something changes"
    # The answer to our write: it shows the numbers, so nothing more is due.
    tally.app_seen(marketapp("demo.wiki", {"total": 100, "running": 3}, rv=5))
    assert tally.due() == {}
    for i in range(100):
        tally.drop(("team-a", f"a{i}"))
    assert tally.due() == {"demo.wiki": Installs(0, 0)}, "a hundred events, one write"


def test_many_events_between_two_rounds_make_one_write_per_app() -> None:
    tally = InstallTally()
    tally.app_seen(marketapp("demo.wiki", {"total": 0, "running": 0}))
    tally.app_seen(marketapp("demo.blog", {"total": 0, "running": 0}))
    assert tally.due() == {}
    for i in range(50):
        put(tally, install(f"w{i}", phase="Installing"))
        put(tally, install(f"w{i}", phase="Running"))
        put(tally, install(f"b{i}", "blog"))
    assert tally.due() == {"demo.wiki": Installs(50, 50), "demo.blog": Installs(50, 0)}


def test_churn_that_ends_where_it_began_writes_nothing() -> None:
    tally = InstallTally()
    tally.app_seen(marketapp("demo.wiki", {"total": 1, "running": 0}))
    put(tally, install("a"))
    assert tally.due() == {}
    put(tally, install("b"))
    tally.drop(("team-a", "b"))
    assert tally.due() == {}


def test_a_restart_that_finds_the_status_right_writes_nothing() -> None:
    tally = InstallTally()
    tally.app_seen(marketapp("demo.wiki", {"total": 2, "running": 1}))
    tally.begin_listing()
    tally.listed([install("a", phase="Running"), install("b")])
    assert tally.due() == {}


def test_the_startup_list_does_not_bring_back_what_the_watch_deleted() -> None:
    tally = InstallTally()
    tally.begin_listing()
    put(tally, install("new", phase="Running"))  # the watch, while the list is read
    tally.drop(("team-a", "gone"))
    tally.listed([install("gone"), install("new"), install("old")])
    assert tally.counts("demo.wiki") == Installs(2, 1), "new (as the watch said) and old"
    tally.drop(("team-a", "later"))
    tally.listed([install("later")])
    assert tally.counts("demo.wiki") == Installs(3, 1), "deletions are only remembered while listing"


def test_a_status_someone_else_changed_is_written_back() -> None:
    tally = InstallTally()
    put(tally, install("a"))
    tally.app_seen(marketapp("demo.wiki", {"total": 1, "running": 0}, rv=3))
    assert tally.due() == {}
    tally.app_seen(marketapp("demo.wiki", {"total": 9000, "running": 0}, rv=4))
    assert tally.due() == {"demo.wiki": Installs(1, 0)}
    tally.app_seen(marketapp("demo.wiki", {"total": "many"}, rv=5))
    assert tally.due() == {"demo.wiki": Installs(1, 0)}, "malformed counts are rewritten"


def test_an_older_event_than_our_write_is_ignored() -> None:
    tally = InstallTally()
    put(tally, install("a"))
    tally.app_seen(marketapp("demo.wiki", {"total": 1, "running": 0}, rv=10))
    tally.app_seen(marketapp("demo.wiki", None, rv=9))
    assert tally.due() == {}


def test_a_deleted_marketapp_is_not_written_and_a_new_one_is() -> None:
    tally = InstallTally()
    put(tally, install("a"))
    tally.app_seen(marketapp("demo.wiki", {"total": 1, "running": 0}, rv=10))
    tally.app_gone("demo.wiki")
    put(tally, install("b"))
    assert tally.due() == {}
    tally.app_seen(marketapp("demo.wiki", rv=20))  # created again by its source: an empty status
    assert tally.due() == {"demo.wiki": Installs(2, 0)}


def test_a_new_marketapp_nobody_installed_is_not_written() -> None:
    tally = InstallTally()
    for i in range(1000):
        tally.app_seen(marketapp(f"demo.app-{i}"))
    assert tally.due() == {}
    put(tally, install("a", "app-7"))
    tally.drop(("team-a", "a"))
    assert tally.due() == {}


def test_a_failed_write_is_due_again() -> None:
    tally = InstallTally()
    put(tally, install("a"))
    tally.app_seen(marketapp("demo.wiki"))
    assert tally.due() == {"demo.wiki": Installs(1, 0)}
    tally.retry("demo.wiki")
    assert tally.due() == {"demo.wiki": Installs(1, 0)}


def test_a_status_write_alone_does_not_change_what_installs_read() -> None:
    base = marketapp("demo.wiki", uid="u1", generation=3, ownerReferences=[{"uid": "s1", "controller": True}])
    counted = {**base, "status": {"installs": {"total": 5, "running": 1}}}
    assert generation_key(base) == generation_key(counted)
    assert generation_key(base) != generation_key({**base, "metadata": {**base["metadata"], "generation": 4}})
    assert generation_key(base) != generation_key({**base, "metadata": {**base["metadata"], "uid": "u2"}})
    other_owner = {**base["metadata"], "ownerReferences": [{"uid": "s2", "controller": True}]}
    assert generation_key(base) != generation_key({**base, "metadata": other_owner})
