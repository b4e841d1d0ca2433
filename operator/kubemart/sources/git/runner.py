"""Running the git CLI on untrusted repositories: isolated, bounded in time and output, killable.

A repository and its server are untrusted input. git runs with no system or global config (HOME is a
fresh temporary directory), no hooks, no credential helpers, no submodules, no `file://` or `ext::`
transports, no prompts and no redirects. Credentials never reach a command line or a URL: HTTP
credentials become an `Authorization` header set through GIT_CONFIG_* environment variables of the
child alone, an ssh key and known_hosts are files in that temporary directory (mode 0600). Every run has
a deadline after which its whole process group (git, git-remote-https, ssh) is killed, and what git
says on stderr is cut and scrubbed of anything secret before it is put into a message.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import shutil
import signal
import ssl
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from kubemart.domain.clip import one_line
from kubemart.sources.credentials import RepoAuth

GIT = shutil.which("git") or "/usr/bin/git"
MAX_STDERR = 16 * 1024
MAX_MESSAGE = 300

# Config given with -c on every run: none of it is secret. Why each: a repository is untrusted.
SAFE_CONFIG: tuple[tuple[str, str], ...] = (
    ("core.hooksPath", "/dev/null"),  # no hook runs, whatever a repository or a template holds
    ("credential.helper", ""),  # no helper stores or offers credentials
    ("protocol.file.allow", "never"),
    ("protocol.ext.allow", "never"),
    ("submodule.recurse", "false"),
    ("fetch.recurseSubmodules", "false"),
    ("core.fsmonitor", "false"),
    ("http.followRedirects", "false"),  # the Authorization header never goes to another host
    ("protocol.version", "2"),  # ls-refs with a prefix: an unchanged check lists one ref, not all
    # No fetch.fsckObjects: its checks guard checkouts (none here) and refuse real repositories whose
    # old commits carry benign warnings (zero-padded modes, odd time zones).
    ("gc.auto", "0"),
    ("maintenance.auto", "false"),
    ("http.lowSpeedLimit", "1000"),
    ("http.lowSpeedTime", "20"),
    ("advice.detachedHead", "false"),
    ("init.defaultBranch", "main"),
)


class GitFailed(Exception):
    """git exited non-zero or ran out of time. `stderr` is already scrubbed; `timed_out` when killed."""

    def __init__(self, stderr: str, *, timed_out: bool = False, too_big: bool = False) -> None:
        super().__init__(stderr)
        self.stderr = stderr
        self.timed_out = timed_out
        self.too_big = too_big


@dataclass(frozen=True)
class GitEnv:
    """The environment of every git child process for one repository."""

    env: dict[str, str]
    secrets: tuple[str, ...]
    """Strings scrubbed from anything git says (credentials as given and as encoded)."""

    def scrub(self, text: str) -> str:
        return scrub(text, self.secrets)


def scrub(text: str, secrets: tuple[str, ...] = ()) -> str:
    """`text` without credentials: the given secrets and any `user:password@` in a URL."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return re.sub(r"(?<=://)[^/@\s]+@", "***@", text)


def _ca_bundle(ca_pem: str) -> str:
    """The default CAs and `ca_pem`: git's sslCAInfo replaces the default bundle instead of adding to it."""
    parts: list[str] = []
    paths = ssl.get_default_verify_paths()
    for candidate in (os.environ.get("SSL_CERT_FILE"), paths.cafile, paths.openssl_cafile):
        if candidate and os.path.isfile(candidate):
            with contextlib.suppress(OSError):
                parts.append(Path(candidate).read_text(errors="replace"))
                break
    else:
        with contextlib.suppress(ImportError, OSError):
            import certifi

            parts.append(Path(certifi.where()).read_text(errors="replace"))
    parts.append(ca_pem)
    return "\n".join(parts)


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text if text.endswith("\n") else text + "\n")


def build_env(home: Path, url: str, auth: RepoAuth | None, *, ssh_timeout: int = 20) -> GitEnv:
    """The child environment for `url`, with its files written under `home` (a fresh private directory)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "/bin/false",  # never ask: a missing credential is an error, not a prompt
        "SSH_ASKPASS": "/bin/false",
        "GIT_PROTOCOL_FROM_USER": "0",
        "GIT_ALLOW_PROTOCOL": "https:ssh" if not url.startswith("http://") else "http:https:ssh",
        "GIT_NO_REPLACE_OBJECTS": "1",
        "GIT_OPTIONAL_LOCKS": "0",
        "LC_ALL": "C",  # messages are classified by their English text
    }
    config: list[tuple[str, str]] = []
    secrets: list[str] = []
    if auth is not None:
        if auth.token is not None:
            config.append(("http.extraHeader", f"Authorization: Bearer {auth.token}"))
            secrets.append(auth.token)
        elif auth.username is not None:
            pair = f"{auth.username}:{auth.password or ''}"
            encoded = base64.b64encode(pair.encode()).decode()
            config.append(("http.extraHeader", f"Authorization: Basic {encoded}"))
            secrets += [encoded, auth.password or ""]
        if auth.ca_pem:
            bundle = home / "ca.pem"
            bundle.write_text(_ca_bundle(auth.ca_pem))
            config.append(("http.sslCAInfo", str(bundle)))
    env["GIT_SSH_COMMAND"] = _ssh_command(home, auth, ssh_timeout)
    # Secret config through the environment of the child: never in argv, which `ps` shows to anyone.
    env["GIT_CONFIG_COUNT"] = str(len(config))
    for i, (setting, value) in enumerate(config):
        env[f"GIT_CONFIG_KEY_{i}"] = setting
        env[f"GIT_CONFIG_VALUE_{i}"] = value
    return GitEnv(env=env, secrets=tuple(s for s in secrets if s))


def _ssh_command(home: Path, auth: RepoAuth | None, timeout: int) -> str:
    """ssh for git: no config file, no prompts, host keys only from the Secret's known_hosts."""
    known = home / "known_hosts"
    _write_private(known, (auth.known_hosts if auth else None) or "")
    ssh = f"ssh -F /dev/null -o BatchMode=yes -o ConnectTimeout={timeout} -o StrictHostKeyChecking=yes "
    ssh += f"-o UserKnownHostsFile={known} -o GlobalKnownHostsFile=/dev/null"
    if auth is not None and auth.identity:
        key = home / "identity"
        _write_private(key, auth.identity)
        ssh += f" -o IdentitiesOnly=yes -i {key}"
    return ssh


@contextlib.asynccontextmanager
async def git_env(url: str, auth: RepoAuth | None) -> AsyncIterator[GitEnv]:
    """A GitEnv with a private temporary HOME, removed afterwards (it may hold a key)."""
    home = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="kubemart-git-"))
    try:
        yield await asyncio.to_thread(build_env, home, url, auth)
    finally:
        await asyncio.to_thread(shutil.rmtree, home, True)


def git_args(*args: str, git_dir: Path | None = None) -> list[str]:
    cmd = [GIT]
    for key, value in SAFE_CONFIG:
        cmd += ["-c", f"{key}={value}"]
    if git_dir is not None:
        cmd += ["--git-dir", str(git_dir)]
    return [*cmd, *args]


def _kill(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


async def run_git(
    genv: GitEnv,
    *args: str,
    git_dir: Path | None = None,
    deadline: float,
    max_stdout: int = 1024 * 1024,
    stdin: bytes | None = None,
    watch: Path | None = None,
    max_bytes: int | None = None,
) -> bytes:
    """git's stdout; GitFailed on a non-zero exit, the deadline, more output than `max_stdout`, or
    (with `watch`) that directory growing past `max_bytes` while git runs."""
    proc = await asyncio.create_subprocess_exec(
        *git_args(*args, git_dir=git_dir),
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=genv.env,
        start_new_session=True,  # its own process group: a kill reaches its helpers too
    )
    too_big = False

    async def guard() -> None:
        nonlocal too_big
        while watch is not None and max_bytes is not None:
            await asyncio.sleep(0.2)
            if await asyncio.to_thread(dir_size, watch) > max_bytes:
                too_big = True
                _kill(proc)
                return

    async def read_out() -> bytes:
        assert proc.stdout is not None
        out = bytearray()
        while chunk := await proc.stdout.read(65536):
            out += chunk
            if len(out) > max_stdout:
                _kill(proc)
                raise GitFailed(f"git printed more than {max_stdout} bytes", too_big=True)
        return bytes(out)

    async def read_err() -> bytes:
        assert proc.stderr is not None
        err = bytearray()
        while chunk := await proc.stderr.read(8192):
            if len(err) < MAX_STDERR:
                err += chunk[: MAX_STDERR - len(err)]
        return bytes(err)

    async def feed() -> None:
        if stdin is not None and proc.stdin is not None:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                proc.stdin.write(stdin)
                await proc.stdin.drain()
                proc.stdin.close()

    watcher = asyncio.create_task(guard())
    try:
        async with asyncio.timeout(deadline):
            out, err, _ = await asyncio.gather(read_out(), read_err(), feed())
            code = await proc.wait()
    except TimeoutError:
        _kill(proc)
        await proc.wait()
        raise GitFailed(f"git took longer than {deadline:g} s and was stopped", timed_out=True) from None
    except BaseException:
        _kill(proc)
        with contextlib.suppress(Exception):
            await asyncio.shield(proc.wait())
        raise
    finally:
        watcher.cancel()
    if watch is not None and max_bytes is not None and not too_big:
        # A fetch faster than the guard's period is measured once more at the end.
        too_big = await asyncio.to_thread(dir_size, watch) > max_bytes
    if too_big:
        raise GitFailed(f"the repository grew past {max_bytes} bytes while fetching", too_big=True)
    if code != 0:
        text = genv.scrub(err.decode("utf-8", "replace"))
        raise GitFailed(text or f"git exited with code {code}")
    return out


def dir_size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def summary(stderr: str) -> str:
    """The most telling line of git's stderr (a `fatal:` one when there is one), on one line, cut."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    fatal = [line for line in lines if line.startswith(("fatal:", "error:"))]
    chosen = (fatal or lines or ["no message"])[-1]
    return one_line(chosen, MAX_MESSAGE)
