"""The git source against real servers on 127.0.0.1 (no cluster): git's http-backend for the bounds
(size, file count, deadline with the process group killed), refs, refetch and incremental packaging;
an asyncssh server running git-upload-pack for ssh with OpenSSH as the client."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from kubemart.models.marketapp import AppVersion
from kubemart.models.marketsource import GitRef
from kubemart.sources.base import ChartFetchError, Snapshot, SourceError, Unchanged
from kubemart.sources.cache import ChartCache
from kubemart.sources.credentials import RepoAuth
from kubemart.sources.git import GitLimits, GitSource, GitSpec
from support.gitserver import GitServer

# asyncssh leaves a cleanup coroutine behind when a client drops a session it refused (found at gc).
pytestmark = pytest.mark.filterwarnings("ignore:coroutine 'Queue.join' was never awaited:RuntimeWarning")
OLARES = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "olares"
DEFINITION = {
    "id": "jellyfin",
    "name": "Jellyfin",
    "version": "10.9",
    "docker": {"image": "jellyfin/jellyfin:latest", "ports": [{"container": 8096}]},
}


# --- bounds, against a real git server ----------------------------------------------------------


@pytest.fixture
def server(tmp_path: Path) -> Iterator[GitServer]:
    (tmp_path / "srv").mkdir()
    s = GitServer(tmp_path / "srv")
    yield s
    s.close()


def _source(server: GitServer, tmp_path: Path, **limits: object) -> GitSource:
    return GitSource(
        GitSpec(url=server.url("r")),
        revision=None,
        auth=None,
        cache=ChartCache(tmp_path / "cache"),
        limits=GitLimits(**limits),  # type: ignore[arg-type]
    )


def test_an_oversized_repository_and_too_many_files_are_refused(server: GitServer, tmp_path: Path) -> None:
    repo = server.repo("r")
    repo.write("blob.bin", os.urandom(3 * 1024 * 1024))
    for i in range(30):
        repo.write(f"f/{i}.txt", str(i))
    repo.commit()
    with pytest.raises(SourceError) as err:
        asyncio.run(_source(server, tmp_path, max_bytes=2 * 1024 * 1024).snapshot(None))
    assert err.value.reason == "RepositoryTooLarge"
    with pytest.raises(SourceError) as err:
        asyncio.run(_source(server, tmp_path, max_files=10).snapshot(None))
    assert err.value.reason == "RepositoryTooLarge"


def test_pinned_commit_tag_and_refetch_after_a_cache_miss(server: GitServer, tmp_path: Path) -> None:
    repo = server.repo("r")
    repo.write("apps/media/jellyfin.yaml", yaml.safe_dump(DEFINITION))
    first = repo.commit("one")
    repo.tag("v1")
    repo.write("apps/media/jellyfin.yaml", yaml.safe_dump({**DEFINITION, "version": "11.0"}))
    repo.commit("two")
    cache = ChartCache(tmp_path / "cache")

    async def run() -> None:
        tagged = GitSource(
            GitSpec(url=server.url("r"), ref=GitRef(tag="v1")), revision=None, auth=None, cache=cache
        )
        snap = await tagged.snapshot(None)
        assert isinstance(snap, Snapshot)
        assert snap.revision == first, "an annotated tag is peeled to its commit"
        assert snap.charts["jellyfin"][0]["version"] == "10.9.0"
        assert len(snap.charts["jellyfin"]) == 1
        assert snap.skipped == (), "a definition is read once"
        seen = server.requests.count()
        pinned = GitSource(
            GitSpec(url=server.url("r"), ref=GitRef(commit=first)), revision=None, auth=None, cache=cache
        )
        assert isinstance(await pinned.snapshot(snap.cursor), Unchanged)
        assert server.requests.count() == seen, "a pinned commit is its own answer: no request"
        version = snap.charts["jellyfin"][0]
        av = AppVersion(version=version["version"], digest=version["digest"], urls=version["urls"])
        path = cache.lookup(version["digest"][7:])
        assert path is not None
        path.unlink()
        again = GitSource(
            GitSpec(url=server.url("r")), revision=first, auth=None, cache=ChartCache(tmp_path / "c2")
        )
        assert (await again.fetch(av)).read_bytes() == snap_archive(snap, version["digest"], tmp_path)
        wrong = AppVersion(version="10.9.0", digest="sha256:" + "0" * 64, urls=version["urls"])
        with pytest.raises(ChartFetchError) as err:
            await again.fetch(wrong)
        assert err.value.reason == "ChartDigestMismatch"

    asyncio.run(run())


def snap_archive(snap: Snapshot, digest: str, tmp_path: Path) -> bytes:
    # The refetched archive is byte-identical to the one the sync packaged (same commit, same digest).
    return (tmp_path / "c2" / f"{digest[7:]}.tgz").read_bytes()


def test_a_stalled_server_is_cut_off_at_the_deadline_and_git_is_killed(
    server: GitServer, tmp_path: Path
) -> None:
    repo = server.repo("r")
    repo.write("README.md", "x")
    repo.commit()
    server.stall(30)
    started = asyncio.run(_timed(_source(server, tmp_path, deadline=1.0)))
    assert started < 5, "killed at the deadline, not after the server's 30 s"
    assert _processes_for(server.url("r")) == 0, "no git or git-remote-http process is left behind"


async def _timed(source: GitSource) -> float:
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    with pytest.raises(SourceError) as err:
        await source.snapshot(None)
    assert err.value.reason == "RepositoryTimeout"
    return loop.time() - t0


def _processes_for(url: str) -> int:
    """Processes (git ls-remote, git-remote-http) whose command line names `url`."""
    count = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            count += url.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
    return count


def test_ssh_with_identity_and_known_hosts_and_refusals(tmp_path: Path) -> None:
    from support.gitserver import GitRepo
    from support.sshgit import SshGitServer

    (tmp_path / "srv").mkdir()
    repo = GitRepo(tmp_path / "srv" / "r.git", tmp_path / "srv" / "r.work")
    repo.write("apps/media/jellyfin.yaml", yaml.safe_dump(DEFINITION))
    commit = repo.commit()
    ssh = SshGitServer(tmp_path / "srv")
    try:
        good = RepoAuth(identity=ssh.identity(), known_hosts=ssh.known_hosts())

        def source(auth: RepoAuth | None) -> GitSource:
            return GitSource(
                GitSpec(url=ssh.url("r")), revision=None, auth=auth, cache=ChartCache(tmp_path / "c")
            )

        snap = asyncio.run(source(good).snapshot(None))
        assert isinstance(snap, Snapshot)
        assert snap.revision == commit
        assert list(snap.charts) == ["jellyfin"]
        assert any(c.startswith("git-upload-pack") for c in ssh.commands)

        unknown_host = RepoAuth(identity=ssh.identity(), known_hosts="")
        with pytest.raises(SourceError) as err:
            asyncio.run(source(unknown_host).snapshot(None))
        assert err.value.reason == "HostKeyUnknown"
        other_key = SshGitServer(tmp_path / "none")
        try:
            wrong_key = RepoAuth(identity=other_key.identity(), known_hosts=ssh.known_hosts())
        finally:
            other_key.close()
        with pytest.raises(SourceError) as err:
            asyncio.run(source(wrong_key).snapshot(None))
        assert err.value.reason == "RepositoryAuthFailed"
        assert "OPENSSH PRIVATE KEY" not in err.value.message
    finally:
        ssh.close()


def test_a_new_commit_packages_only_the_apps_that_changed(server: GitServer, tmp_path: Path) -> None:
    repo = server.repo("r")
    for app in ("adguardhome", "bazarr", "calendar", "openedaispeechv2"):
        repo.copy_tree(OLARES / app, f"olares/{app}")
    repo.write("apps/media/jellyfin.yaml", yaml.safe_dump(DEFINITION))
    repo.commit("one")
    source = _source(server, tmp_path)
    first = asyncio.run(source.snapshot(None))
    assert isinstance(first, Snapshot)
    assert source.packaged == 4
    chart = (OLARES / "bazarr" / "Chart.yaml").read_text().replace("version: 1.0.15", "version: 1.0.16")
    repo.write("olares/bazarr/Chart.yaml", chart)
    repo.commit("two")
    second = asyncio.run(source.snapshot(first.cursor))
    assert isinstance(second, Snapshot)
    assert source.packaged == 1, "only bazarr changed"
    assert second.charts["bazarr"][0]["version"] == "1.0.16"
    for app in ("adguardhome", "openedaispeechv2", "jellyfin"):
        assert second.charts[app] == first.charts[app], app


def test_a_path_that_is_not_in_the_tree_is_an_error(server: GitServer, tmp_path: Path) -> None:
    repo = server.repo("r")
    repo.write("apps/media/jellyfin.yaml", yaml.safe_dump(DEFINITION))
    repo.commit()
    source = GitSource(
        GitSpec(url=server.url("r"), path="nowhere"), revision=None, auth=None, cache=ChartCache(tmp_path)
    )
    with pytest.raises(SourceError) as err:
        asyncio.run(source.snapshot(None))
    assert err.value.reason == "GitPathNotFound"
    assert "nowhere" in err.value.message


def test_the_test_server_takes_chunked_and_gzip_request_bodies(server: GitServer, tmp_path: Path) -> None:
    """git sends a large push in chunks and a long negotiation gzipped: the CGI host must pass both on."""
    from support.gitserver import git

    server.require_basic_auth("u", "p")
    server.repo("r").commit("root")
    url = server.url("r").replace("://", "://u:p@")
    local = tmp_path / "local"
    git("init", "--quiet", "--initial-branch=main", str(local))
    (local / "big.bin").write_bytes(os.urandom(300_000))
    git("-C", str(local), "add", "-A")
    git("-C", str(local), "commit", "--quiet", "-m", "big")
    for i in range(60):  # many local refs: the fetch below sends a "have" for each
        git("-C", str(local), "commit", "--quiet", "--allow-empty", "-m", f"c{i}")
        git("-C", str(local), "branch", f"b{i}")
    git(
        "-C",
        str(local),
        "-c",
        "http.postBuffer=65536",
        "push",
        "--quiet",
        "--force",
        url,
        "b0:refs/heads/pushed",
    )
    git("-C", str(local), "fetch", "--quiet", url, "main")
    assert any(e.startswith("chunked/") for e in server.requests.encodings), server.requests.encodings
    assert any(e.endswith("/gzip") for e in server.requests.encodings), server.requests.encodings
    assert git("--git-dir", str(server.repo("r").bare), "rev-parse", "pushed") == git(
        "-C", str(local), "rev-parse", "b0"
    )
