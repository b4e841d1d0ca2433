"""A real ssh server for git on 127.0.0.1: asyncssh (a maintained SSHv2 server library) that runs git's
own `git-upload-pack` for the repository a client asks for, with public-key auth and a fresh host key.
The client side is the operator's: OpenSSH's `ssh` started by git."""

from __future__ import annotations

import asyncio
import os
import shlex
import threading
from pathlib import Path
from typing import Any

import asyncssh

UPLOAD_PACK = "/usr/lib/git-core/git-upload-pack"


class _Server(asyncssh.SSHServer):
    def __init__(self, authorized: asyncssh.SSHKey) -> None:
        self._authorized = authorized

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return False

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        return bool(key.public_data == self._authorized.public_data)


class SshGitServer:
    """Serves the bare repositories under `root` as `ssh://git@127.0.0.1:<port>/<name>.git`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self.client_key = asyncssh.generate_private_key("ssh-ed25519")
        self.commands: list[str] = []
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        ready.wait(30)

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        self._acceptor = self._loop.run_until_complete(
            asyncssh.listen(
                "127.0.0.1",
                0,
                server_host_keys=[self.host_key],
                server_factory=lambda: _Server(self.client_key),
                process_factory=self._handle,
                encoding=None,
                allow_scp=False,
            )
        )
        self.port = self._acceptor.sockets[0].getsockname()[1]
        ready.set()
        self._loop.run_forever()

    async def _handle(self, process: Any) -> None:
        command = process.command or ""
        self.commands.append(command)
        words = shlex.split(command)
        if len(words) != 2 or words[0] != "git-upload-pack":
            process.stderr.write(b"only git-upload-pack is served\n")
            process.exit(1)
            return
        path = (self.root / words[1].lstrip("/")).resolve()
        if not path.is_relative_to(self.root.resolve()) or not path.is_dir():
            process.stderr.write(b"fatal: no such repository\n")
            process.exit(128)
            return
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.devnull,
            "GIT_CONFIG_NOSYSTEM": "1",
        }
        if process.env.get("GIT_PROTOCOL"):
            env["GIT_PROTOCOL"] = process.env["GIT_PROTOCOL"]
        local = await asyncio.create_subprocess_exec(
            UPLOAD_PACK,
            "--strict",
            str(path),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        await process.redirect(stdin=local.stdin, stdout=local.stdout, stderr=local.stderr)
        process.exit(await local.wait())
        await process.wait_closed()

    def url(self, name: str) -> str:
        return f"ssh://git@127.0.0.1:{self.port}/{name}.git"

    def known_hosts(self) -> str:
        return f"[127.0.0.1]:{self.port} {self.host_key.export_public_key().decode().strip()}\n"

    def identity(self) -> str:
        return str(self.client_key.export_private_key("openssh").decode())

    def close(self) -> None:
        async def stop() -> None:
            self._acceptor.close()
            await self._acceptor.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
