"""The git source's pure parts: layout, .helmignore, definitions and the generic chart, packaging, real
Olares charts, git's environment and error classes."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml

from kubemart.models.marketsource import DefinitionPolicy
from kubemart.sources.credentials import RepoAuth
from kubemart.sources.git.build import BuildLimits, build, definition_entry, untemplate
from kubemart.sources.git.definitions import Definition, refusal, semver_of
from kubemart.sources.git.layout import find_layout, ignored, parse_helmignore
from kubemart.sources.git.package import build_archive
from kubemart.sources.git.remote import TreeEntry, classify
from kubemart.sources.git.runner import GitFailed, build_env, git_args, scrub

# asyncssh leaves a cleanup coroutine behind when a client drops a session it refused (found at gc).
pytestmark = pytest.mark.filterwarnings("ignore:coroutine 'Queue.join' was never awaited:RuntimeWarning")
ROOT = Path(__file__).resolve().parents[2]
OLARES = ROOT / "tests" / "fixtures" / "olares"
HELM = ROOT / "bin" / "helm"

DEFINITION = {
    "id": "jellyfin",
    "name": "Jellyfin",
    "version": "10.9",
    "category": "media",
    "docker": {
        "image": "jellyfin/jellyfin:latest",
        "ports": [{"container": 8096, "host": 8096}],
        "volumes": [{"host_path": "/var/jellyfin", "container_path": "/config"}],
        "environment": [{"name": "TZ", "default": "UTC"}],
    },
    "requirements": {"min_ram": 2048, "architectures": ["amd64"]},
}


def entry(path: str, size: int = 10, oid: str | None = None) -> TreeEntry:
    return TreeEntry(path=path, mode="100644", oid=oid or f"{abs(hash(path)):040x}"[:40], size=size)


# --- layout -------------------------------------------------------------------------------------


def test_layout_finds_top_chart_dirs_suspended_ones_and_definitions() -> None:
    layout = find_layout(
        [
            entry("olares/app/Chart.yaml"),
            entry("olares/app/charts/dep/Chart.yaml"),  # a dependency, not an app
            entry("olares/app/templates/x.yaml"),
            entry("olares/off/Chart.yaml"),
            entry("olares/off/.suspend"),
            entry("apps/media/jellyfin.yaml"),
            entry("apps/media/notes.txt"),
            entry("olares/app/apps/x/y.yaml"),  # inside a chart: not a definition
            entry("docs/apps.yaml"),
        ]
    )
    assert sorted(layout.charts) == ["olares/app"]
    assert len(layout.charts["olares/app"]) == 4
    assert layout.suspended == ["olares/off"]
    assert [e.path for e in layout.definitions] == ["apps/media/jellyfin.yaml"]


def test_root_chart_dir_owns_the_whole_tree() -> None:
    layout = find_layout([entry("Chart.yaml"), entry("templates/a.yaml"), entry("apps/x/y.yaml")])
    assert list(layout.charts) == [""]
    assert not layout.definitions


def test_helmignore_as_helm_reads_it() -> None:
    rules = parse_helmignore("# comment\n.git/\n*.tmp\n!keep.tmp\n/docs\nci/*.yaml\n")
    assert ignored(rules, ".git/config")
    assert ignored(rules, "a/b/c.tmp")
    assert not ignored(rules, "keep.tmp")
    assert ignored(rules, "docs/readme.md")
    assert ignored(rules, "ci/values.yaml")
    assert ignored(rules, "templates/.hidden")
    assert not ignored(rules, "templates/deployment.yaml")
    assert not ignored(rules, "charts/dep/Chart.yaml")


def test_untemplate_keeps_the_first_branch_and_drops_actions() -> None:
    text = (
        "a: 1\n{{- if .Values.x }}\nb: 2\n{{- else if .Values.y }}\nb: 3\n{{- else }}\nb: 4\n{{- end }}\n"
        "c: {{ .Values.z }}\n{{- range .Values.l }}\nd: 5\n{{- end }}\n"
    )
    assert yaml.safe_load(untemplate(text)) == {"a": 1, "b": 2, "c": None, "d": 5}


# --- definitions --------------------------------------------------------------------------------


def test_definition_is_validated_strictly() -> None:
    Definition.model_validate(DEFINITION)
    bad = [
        {"id": "Not_DNS"},
        {"docker": {**DEFINITION["docker"], "image": "UPPER/Case:1"}},
        {"docker": {**DEFINITION["docker"], "ports": [{"container": 70000}]}},
        {"docker": {**DEFINITION["docker"], "volumes": [{"container_path": "/a/../etc"}]}},
        {"docker": {**DEFINITION["docker"], "volumes": [{"container_path": "relative"}]}},
        {"docker": {**DEFINITION["docker"], "network_mode": "host"}},
        {"docker": {**DEFINITION["docker"], "devices": ["/dev/kmsg"]}},
        {"docker": {**DEFINITION["docker"], "environment": [{"name": "A B"}]}},
        {"description": "x" * 5000},
        {"version": "latest"},
    ]
    for change in bad:
        with pytest.raises(ValueError):  # noqa: PT011 - pydantic's ValidationError is a ValueError
            Definition.model_validate({**DEFINITION, **change})


def test_privileged_and_capabilities_need_the_source_policy() -> None:
    asks = Definition.model_validate(
        {
            **DEFINITION,
            "docker": {**DEFINITION["docker"], "privileged": True, "capabilities": ["CAP_NET_ADMIN"]},
        }
    )
    assert "privileged" in (refusal(asks, None) or "")
    assert "NET_ADMIN" in (refusal(asks, DefinitionPolicy(allow_privileged=True)) or "")
    assert refusal(asks, DefinitionPolicy(allow_privileged=True, allowed_capabilities=["NET_ADMIN"])) is None
    assert refusal(Definition.model_validate(DEFINITION), None) is None


def test_semver_of_tomo_versions() -> None:
    assert semver_of("10.9") == "10.9.0"
    assert semver_of("v2") == "2.0.0"
    assert semver_of("1.2.3-rc.1") == "1.2.3-rc.1"


def test_definition_renders_through_the_generic_chart(tmp_path: Path) -> None:
    name, index, archive = definition_entry(yaml.safe_dump(DEFINITION).encode(), None, BuildLimits())
    assert (name, index["version"], index["annotations"]["kubemart.io/categories"]) == (
        "jellyfin",
        "10.9.0",
        "media",
    )
    chart = tmp_path / "c.tgz"
    chart.write_bytes(archive)
    out = subprocess.run(
        [str(HELM), "template", "rel", str(chart), "--set", "image=x/evil:1"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    docs = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(out) if d}
    assert set(docs) == {("StatefulSet", "rel"), ("Service", "rel"), ("PersistentVolumeClaim", "rel-data-0")}
    pod = docs[("StatefulSet", "rel")]["spec"]["template"]["spec"]
    assert pod["containers"][0]["securityContext"] == {"allowPrivilegeEscalation": False}
    assert pod["volumes"][0]["persistentVolumeClaim"]["claimName"] == "rel-data-0"
    assert "hostPath" not in out
    # Values cannot turn privileged on: it is a file in the chart, not a value.
    forced = subprocess.run(
        [
            str(HELM),
            "template",
            "rel",
            str(chart),
            "--set",
            "privileged=true",
            "--set",
            "security.privileged=true",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert "privileged: true" not in forced


# --- packaging ----------------------------------------------------------------------------------


def test_archives_are_deterministic_and_keep_what_helm_keeps() -> None:
    files = {"Chart.yaml": (b"name: a\nversion: 1.0.0\n", False), "templates/x.yaml": (b"kind: X\n", False)}
    one = build_archive("a", files, max_bytes=1 << 20)
    two = build_archive("a", dict(reversed(list(files.items()))), max_bytes=1 << 20)
    assert one == two
    with tarfile.open(fileobj=io.BytesIO(one)) as tar:
        assert [m.name for m in tar] == ["a/Chart.yaml", "a/templates", "a/templates/x.yaml"]
        assert all(m.mtime == 0 and m.uid == 0 for m in tar)
    with pytest.raises(ValueError, match="more than"):
        build_archive("a", files, max_bytes=10)


def _olares_tree() -> tuple[list[TreeEntry], dict[str, bytes]]:
    entries, blobs = [], {}
    # The chart directories the git source's tests use (the others there serve other tests).
    chosen = ("adguardhome", "bazarr", "calendar", "openedaispeechv2")
    for path in sorted(p for app in chosen for p in (OLARES / app).rglob("*")):
        if path.is_file():
            rel = path.relative_to(OLARES).as_posix()
            oid = f"{len(blobs):040x}"
            blobs[oid] = path.read_bytes()
            entries.append(TreeEntry(path=f"olares/{rel}", mode="100644", oid=oid, size=len(blobs[oid])))
    return entries, blobs


def test_real_olares_charts_carry_their_manifest_and_suspended_ones_are_hidden() -> None:
    entries, blobs = _olares_tree()
    layout = find_layout(entries)
    assert layout.suspended == ["olares/calendar"]
    built = build(layout.charts, layout.definitions, blobs, None, BuildLimits())
    assert sorted(built.charts) == ["adguardhome", "bazarr", "openedaispeechv2"]
    templated = built.charts["openedaispeechv2"][0]["olaresManifest"]
    assert templated["metadata"]["title"] == "OpenedAI Speech For Cluster", "a templated manifest is read too"
    assert "{{" not in str(templated)
    ag = built.charts["adguardhome"][0]
    assert ag["version"] == "1.0.12"
    assert ag["olaresManifest"]["metadata"]["title"] == "AdGuard Home"
    assert ag["urls"] == ["olares/adguardhome"]
    again = build(layout.charts, layout.definitions, blobs, None, BuildLimits())
    assert again.charts["adguardhome"][0]["digest"] == ag["digest"], "same content, same digest"
    with tarfile.open(fileobj=io.BytesIO(built.archives[ag["digest"][7:]])) as tar:
        names = tar.getnames()
    assert "adguardhome/OlaresManifest.yaml" in names
    assert "adguardhome/owners" in names


# --- git's environment --------------------------------------------------------------------------


def test_credentials_never_reach_argv_and_are_scrubbed(tmp_path: Path) -> None:
    auth = RepoAuth(username="alice", password="hunter2", ca_pem="-----BEGIN CERTIFICATE-----\n")
    genv = build_env(tmp_path, "https://git.example/x.git", auth)
    argv = " ".join(git_args("ls-remote", "--", "https://git.example/x.git"))
    assert "hunter2" not in argv
    assert "core.hooksPath=/dev/null" in argv
    assert "protocol.file.allow=never" in argv
    assert genv.env["GIT_CONFIG_NOSYSTEM"] == "1"
    assert genv.env["HOME"] == str(tmp_path)
    assert genv.env["GIT_ALLOW_PROTOCOL"] == "https:ssh"
    header = genv.env["GIT_CONFIG_VALUE_0"]
    assert header.startswith("Authorization: Basic ")
    assert genv.scrub(f"fatal: {header} hunter2 https://alice:hunter2@h/x") == (
        "fatal: Authorization: Basic *** *** https://***@h/x"
    )
    assert scrub("https://tok@h/") == "https://***@h/"


def test_ssh_key_and_known_hosts_are_private_files(tmp_path: Path) -> None:
    genv = build_env(tmp_path, "git@host:x.git", RepoAuth(identity="KEY", known_hosts="host ssh-ed25519 AAA"))
    assert "StrictHostKeyChecking=yes" in genv.env["GIT_SSH_COMMAND"]
    assert "-F /dev/null" in genv.env["GIT_SSH_COMMAND"]
    assert oct(os.stat(tmp_path / "identity").st_mode & 0o777) == "0o600"
    assert "KEY" not in genv.env["GIT_SSH_COMMAND"]


@pytest.mark.parametrize(
    ("stderr", "reason"),
    [
        ("fatal: Authentication failed for 'https://h/'", "RepositoryAuthFailed"),
        (
            "fatal: unable to access 'https://h/': SSL certificate problem: self-signed certificate",
            "TLSError",
        ),
        ("fatal: couldn't find remote ref refs/heads/x", "GitRefNotFound"),
        ("fatal: unable to access 'https://h/': Could not resolve host: h", "RepositoryUnreachable"),
        ("Host key verification failed.\nfatal: Could not read from remote repository.", "HostKeyUnknown"),
        ("fatal: repository 'https://h/x/' not found", "RepositoryNotFound"),
        (
            "fatal: unable to access 'https://127.0.0.1:40129/x/': The requested URL returned error: 403",
            "RepositoryAuthFailed",
        ),
        (
            "fatal: unable to access 'https://127.0.0.1:40129/x/': server certificate verification failed. "
            "CAfile: none CRLfile: none",
            "TLSError",
        ),
    ],
)
def test_git_errors_are_classified(stderr: str, reason: str) -> None:
    assert classify(GitFailed(stderr), "https://h/x").reason == reason


def test_an_allowed_privileged_definition_renders_privileged(tmp_path: Path) -> None:
    asks = {
        **DEFINITION,
        "docker": {**DEFINITION["docker"], "privileged": True, "capabilities": ["NET_ADMIN"]},
    }
    policy = DefinitionPolicy(allow_privileged=True, allowed_capabilities=["NET_ADMIN"])
    _, _, archive = definition_entry(yaml.safe_dump(asks).encode(), policy, BuildLimits())
    assert archive is not None
    chart = tmp_path / "c.tgz"
    chart.write_bytes(archive)
    out = subprocess.run(
        [str(HELM), "template", "rel", str(chart)], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    workload = next(d for d in yaml.safe_load_all(out) if d and d["kind"] == "StatefulSet")
    sc = workload["spec"]["template"]["spec"]["containers"][0]["securityContext"]
    assert sc == {"privileged": True, "capabilities": {"add": ["NET_ADMIN"]}}
