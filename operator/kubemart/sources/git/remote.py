"""What the git source asks of a remote and of its local cache repository, through the git CLI.

`resolve` is the unchanged check: one `git ls-remote` of the ref (with protocol v2 that is the
capability advertisement and one ls-refs request naming the ref, a few hundred bytes). `fetch` brings
one commit at depth 1 into a bare cache repository per source, killed past its deadline or when the
repository grows past its size limit. `list_tree` and `read_blobs` read that commit without a worktree:
no checkout, so nothing a repository holds (symlinks, hooks, .gitattributes filters) is ever acted on.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from kubemart.domain.clip import clip
from kubemart.models.marketsource import GitRef
from kubemart.sources.base import SourceError
from kubemart.sources.git.runner import GitEnv, GitFailed, dir_size, run_git, summary

_OID = re.compile(rb"^[0-9a-f]{40}([0-9a-f]{24})?$")


TREE = -1
"""The size of a directory's entry."""


@dataclass(frozen=True)
class TreeEntry:
    path: str
    mode: str
    oid: str
    size: int


def describe_ref(ref: GitRef | None) -> str:
    if ref is None:
        return "default branch (HEAD)"
    if ref.branch:
        return f"branch {ref.branch}"
    if ref.tag:
        return f"tag {ref.tag}"
    return f"commit {ref.commit}"


def classify(err: GitFailed, where: str, *, ref: GitRef | None = None) -> SourceError:
    """A SourceError with a reason a person can act on, from what git said (already scrubbed)."""
    text = err.stderr
    # Classified without URLs: a port such as :40129 must not read as HTTP 401.
    low = re.sub(r"\S+://\S+", "<url>", text).lower()
    detail = summary(text)
    if err.timed_out:
        return SourceError(
            "RepositoryTimeout", f"{where} did not answer in time ({detail}); will retry.", retryable=True
        )
    if err.too_big:
        return SourceError(
            "RepositoryTooLarge",
            f"{where} is too large to read ({detail}); point spec.path or spec.ref at a smaller tree, or "
            "raise KUBEMART_GIT_MAX_BYTES.",
            retryable=True,
        )
    if any(
        s in low
        for s in (
            "error: 401",
            "error: 403",
            "authentication failed",
            "could not read username",
            "permission denied",
            "access denied",
            "terminal prompts disabled",
        )
    ):
        return SourceError(
            "RepositoryAuthFailed",
            f"{where} refused the credentials ({detail}); check the username/password, token or ssh "
            "identity in the Secret named by spec.secretRef.",
            retryable=True,
        )
    if "host key verification failed" in low or "no matching host key" in low:
        return SourceError(
            "HostKeyUnknown",
            f"{where}: the ssh host key is not in the Secret's known_hosts ({detail}); add the server's key "
            "(ssh-keyscan) to known_hosts.",
            retryable=True,
        )
    if any(
        s in low
        for s in (
            "ssl certificate",
            "certificate verify",
            "server certificate",
            "tls",
            "ssl_connect",
            "self-signed",
            "self signed",
        )
    ):
        return SourceError(
            "TLSError",
            f"TLS with {where} failed ({detail}); give the server's CA as ca.crt in the Secret named by "
            "spec.secretRef.",
            retryable=True,
        )
    if any(
        s in low
        for s in (
            "couldn't find remote ref",
            "not our ref",
            "no such remote ref",
            "unadvertised object",
            "remote error: upload-pack",
        )
    ):
        return SourceError(
            "GitRefNotFound",
            f"{where} has no {describe_ref(ref)} ({detail}); fix spec.ref.",
            retryable=True,
        )
    if any(s in low for s in ("error: 404", "not found", "does not appear to be a git repository")):
        return SourceError(
            "RepositoryNotFound",
            f"{where} is not a git repository, or is not visible with these credentials ({detail}); check "
            "spec.url and spec.secretRef.",
            retryable=True,
        )
    if "transport" in low and "not allowed" in low:
        return SourceError(
            "InvalidRepositoryURL",
            f"{where} uses a transport that is not allowed ({detail}); use https or ssh.",
        )
    if any(
        s in low
        for s in (
            "could not resolve",
            "connection refused",
            "failed to connect",
            "couldn't connect",
            "network is unreachable",
            "connection timed out",
            "could not read from remote",
            "empty reply",
            "recv failure",
        )
    ):
        return SourceError(
            "RepositoryUnreachable", f"{where} cannot be reached ({detail}); will retry.", retryable=True
        )
    return SourceError("GitFailed", f"git failed on {where}: {detail}; will retry.", retryable=True)


def _ref_patterns(ref: GitRef | None) -> list[str]:
    if ref is None:
        return ["HEAD"]
    if ref.branch:
        return [f"refs/heads/{ref.branch}"]
    return [f"refs/tags/{ref.tag}", f"refs/tags/{ref.tag}^{{}}"]


async def resolve(genv: GitEnv, url: str, ref: GitRef | None, *, deadline: float) -> str:
    """The commit `ref` names at `url` now (a pinned commit is its own answer: no request). Raises SourceError."""
    if ref is not None and ref.commit:
        return ref.commit
    where = clip(genv.scrub(url), 200)
    try:
        out = await run_git(
            genv, "ls-remote", "--", url, *_ref_patterns(ref), deadline=deadline, max_stdout=65536
        )
    except GitFailed as err:
        raise classify(err, where, ref=ref) from err
    found: dict[str, str] = {}
    for line in out.splitlines():
        oid, _, name = line.partition(b"\t")
        if _OID.match(oid):
            found[name.decode("utf-8", "replace")] = oid.decode()
    if ref is not None and ref.tag:
        commit = found.get(f"refs/tags/{ref.tag}^{{}}") or found.get(f"refs/tags/{ref.tag}")
    elif ref is not None and ref.branch:
        commit = found.get(f"refs/heads/{ref.branch}")
    else:
        commit = found.get("HEAD")
    if commit is None:
        raise SourceError(
            "GitRefNotFound",
            f"{where} has no {describe_ref(ref)}; fix spec.ref (or push it).",
            retryable=True,
        )
    return commit


async def ensure_repo(genv: GitEnv, repo: Path, *, deadline: float) -> None:
    if (repo / "HEAD").is_file():
        return
    await asyncio.to_thread(repo.mkdir, parents=True, exist_ok=True)
    await run_git(genv, "init", "--bare", "--quiet", str(repo), deadline=deadline)


async def has_commit(genv: GitEnv, repo: Path, commit: str, *, deadline: float) -> bool:
    try:
        await run_git(genv, "cat-file", "-e", f"{commit}^{{commit}}", git_dir=repo, deadline=deadline)
    except GitFailed:
        return False
    return True


async def fetch(
    genv: GitEnv,
    repo: Path,
    url: str,
    commit: str,
    ref: GitRef | None,
    *,
    deadline: float,
    max_bytes: int,
) -> None:
    """`commit` into `repo` at depth 1, unless it is there already. Raises SourceError.

    The commit is asked for by id (servers with protocol v2 or allowReachableSHA1InWant serve it);
    when a server refuses, the ref is fetched instead and must still point at that commit.
    """
    where = clip(genv.scrub(url), 200)
    try:
        await ensure_repo(genv, repo, deadline=deadline)
    except GitFailed as err:
        raise SourceError(
            "ChartCacheError", f"The git cache cannot be created: {summary(err.stderr)}"
        ) from err
    if await has_commit(genv, repo, commit, deadline=deadline):
        return
    if await asyncio.to_thread(dir_size, repo) > max_bytes // 2:
        # Shallow fetches of many commits pile up: start again rather than grow without bound.
        await asyncio.to_thread(shutil.rmtree, repo, True)
        await ensure_repo(genv, repo, deadline=deadline)
    base = [
        "fetch",
        "--quiet",
        "--no-tags",
        "--no-write-fetch-head",
        "--depth",
        "1",
        "--no-recurse-submodules",
    ]
    try:
        await run_git(
            genv, *base, "--", url, commit, git_dir=repo, deadline=deadline, watch=repo, max_bytes=max_bytes
        )
    except GitFailed as first:
        if first.too_big:
            await asyncio.to_thread(shutil.rmtree, repo, True)  # what was fetched is over the limit: drop it
        if first.timed_out or first.too_big or (ref is not None and ref.commit):
            raise classify(first, where, ref=ref) from first
        try:
            await run_git(
                genv,
                *base,
                "--",
                url,
                *_ref_patterns(ref)[:1],
                git_dir=repo,
                deadline=deadline,
                watch=repo,
                max_bytes=max_bytes,
            )
        except GitFailed as err:
            if err.too_big:
                await asyncio.to_thread(shutil.rmtree, repo, True)
            raise classify(err, where, ref=ref) from err
    if not await has_commit(genv, repo, commit, deadline=deadline):
        raise SourceError(
            "GitRefNotFound",
            f"{where} did not send commit {commit[:12]} ({describe_ref(ref)} moved meanwhile); will retry.",
            retryable=True,
        )


async def list_tree(
    genv: GitEnv, repo: Path, commit: str, path: str | None, *, deadline: float, max_files: int
) -> list[TreeEntry]:
    """Every file of `commit` under `path` with its size, and every directory (size TREE: its oid names
    its whole content). Raises SourceError past `max_files` entries."""
    args = ["ls-tree", "-r", "-t", "-l", "-z", "--full-tree", commit]
    if path:
        args += ["--", path.strip("/")]
    try:
        # ~100 bytes an entry: the output bound is the file bound.
        out = await run_git(genv, *args, git_dir=repo, deadline=deadline, max_stdout=max_files * 400)
    except GitFailed as err:
        if err.too_big:
            raise SourceError(
                "RepositoryTooLarge",
                f"The tree has more than {max_files} files; point spec.path at a smaller directory.",
            ) from err
        raise SourceError(
            "GitFailed", f"Reading the tree failed: {summary(err.stderr)}", retryable=True
        ) from err
    entries: list[TreeEntry] = []
    for record in out.split(b"\0"):
        if not record:
            continue
        meta, _, name = record.partition(b"\t")
        fields = meta.split()
        if len(fields) != 4 or fields[1] not in (b"blob", b"tree"):
            continue  # submodules (commit entries) are never followed
        entries.append(
            TreeEntry(
                path=name.decode("utf-8", "replace"),
                mode=fields[0].decode(),
                oid=fields[2].decode(),
                size=int(fields[3]) if fields[1] == b"blob" else TREE,
            )
        )
        if len(entries) > max_files:
            raise SourceError(
                "RepositoryTooLarge",
                f"The tree has more than {max_files} files; point spec.path at a smaller directory.",
            )
    return entries


async def read_blobs(
    genv: GitEnv, repo: Path, oids: list[str], *, deadline: float, max_total: int
) -> dict[str, bytes]:
    """The contents of these blobs (one `git cat-file --batch`), at most `max_total` bytes in all."""
    unique = sorted(set(oids))
    if not unique:
        return {}
    try:
        out = await run_git(
            genv,
            "cat-file",
            "--batch",
            git_dir=repo,
            deadline=deadline,
            stdin="".join(f"{oid}\n" for oid in unique).encode(),
            max_stdout=max_total + 100 * len(unique),
        )
    except GitFailed as err:
        raise SourceError(
            "GitFailed", f"Reading files failed: {summary(err.stderr)}", retryable=True
        ) from err
    blobs: dict[str, bytes] = {}
    pos = 0
    while pos < len(out):
        end = out.index(b"\n", pos)
        header = out[pos:end].split()
        pos = end + 1
        if len(header) != 3:
            continue  # "<oid> missing"
        size = int(header[2])
        blobs[header[0].decode()] = out[pos : pos + size]
        pos += size + 1
    return blobs
