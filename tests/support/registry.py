"""A real OCI registry on 127.0.0.1 (distribution's `registry`, built by hack/build.sh), with TLS from a
CA made here and htpasswd (bcrypt) basic auth; charts pushed with the real `helm push`.

It also holds content that `helm push` never makes (a tag that is not semver, an artifact that is
not a chart, a config that is not JSON or is too large), pushed through the distribution API itself.
Requests are counted from the registry's own access log.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import json
import re
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import bcrypt
import httpx
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .cluster import BIN
from .repo import TEMPLATES
from .token_server import ISSUER, SERVICE, TokenServer
from .wait import wait_for

USERNAME = "puller"
PASSWORD = "oci-s3cret-pass"
_REQUEST = re.compile(r'"(GET|HEAD|PUT|POST|PATCH|DELETE) (\S+) HTTP/[0-9.]+"')


def make_ca(common_name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _server_cert(ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Registry:
    """`registry serve` on 127.0.0.1 with TLS and basic auth (or, with `token=True`, the Bearer token
    flow through a TokenServer); `stop`/`start` keep its storage."""

    def __init__(self, root: Path, *, token: bool = False) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        ca_key, ca = make_ca("kubemart test registry CA")
        self.ca_pem = pem(ca)
        (root / "ca.pem").write_text(self.ca_pem)
        cert, key = _server_cert(ca_key, ca)
        (root / "cert.pem").write_bytes(cert)
        (root / "key.pem").write_bytes(key)
        hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=5)).decode()
        (root / "htpasswd").write_text(f"{USERNAME}:{hashed}\n")
        self.port = _free_port()
        self.host = f"127.0.0.1:{self.port}"
        config = {
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": False}},
            "storage": {"filesystem": {"rootdirectory": str(root / "data")}, "delete": {"enabled": True}},
            "http": {
                "addr": self.host,
                "secret": "kubemart-test-upload-secret",
                "tls": {"certificate": str(root / "cert.pem"), "key": str(root / "key.pem")},
            },
            "auth": {"htpasswd": {"realm": "kubemart-test", "path": str(root / "htpasswd")}},
        }
        self.token_server: TokenServer | None = None
        if token:
            self.token_server = TokenServer(
                root, ca_key, ca, users={USERNAME: PASSWORD}, cert_pem=cert, key_pem=key
            )
            config["auth"] = {
                "token": {
                    "realm": self.token_server.url,
                    "service": SERVICE,
                    "issuer": ISSUER,
                    "rootcertbundle": str(root / "ca.pem"),
                }
            }
        (root / "config.yml").write_text(yaml.safe_dump(config))
        self.log_path = root / "registry.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self.start()
        self.helm_config = root / "helm-registry.json"
        self.helm("registry", "login", self.host, "--username", USERNAME, "--password", PASSWORD)

    # --- process ---------------------------------------------------------------------------------

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                [str(BIN / "registry"), "serve", str(self.root / "config.yml")],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(self._answers, timeout=30, what="registry listening")

    def _answers(self) -> bool:
        try:
            return self.client().get("/v2/").status_code in (200, 401)
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=30)
            self._proc = None

    def close(self) -> None:
        self.stop()
        if self.token_server is not None:
            self.token_server.close()

    # --- what it served --------------------------------------------------------------------------

    def requests(self) -> list[tuple[str, str]]:
        """(method, path) of every request served so far, from the access log."""
        text = self.log_path.read_text(errors="replace")
        return [(m.group(1), m.group(2)) for m in _REQUEST.finditer(text)]

    # --- content ---------------------------------------------------------------------------------

    def helm(self, *args: str) -> str:
        cmd = [
            str(BIN / "helm"),
            *args,
            "--registry-config",
            str(self.helm_config),
            "--ca-file",
            str(self.root / "ca.pem"),
        ]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120)
        return out.stdout + out.stderr

    def url(self, path: str) -> str:
        return f"oci://{self.host}/{path}"

    def package(
        self,
        name: str,
        version: str,
        *,
        annotations: Mapping[str, str] | None = None,
        description: str = "A test app",
    ) -> Path:
        """A chart made like tests/support/repo.py's, packaged with `helm package`."""
        src = self.root / "src" / f"{name}-{version}" / name
        (src / "templates").mkdir(parents=True, exist_ok=True)
        meta: dict[str, Any] = {
            "apiVersion": "v2",
            "name": name,
            "version": version,
            "appVersion": version,
            "description": description,
            "keywords": ["test", name],
        }
        if annotations:
            meta["annotations"] = dict(annotations)
        (src / "Chart.yaml").write_text(yaml.safe_dump(meta))
        values = {"replicaCount": 1, "image": f"registry.invalid/{name}:{version}", "message": "hello"}
        (src / "values.yaml").write_text(yaml.safe_dump(values))
        for t in TEMPLATES.iterdir():
            shutil.copy(t, src / "templates" / t.name)
        out = self.root / "packages"
        out.mkdir(exist_ok=True)
        subprocess.run(
            [str(BIN / "helm"), "package", str(src), "-d", str(out)], check=True, capture_output=True
        )
        return out / f"{name}-{version}.tgz"

    def push(self, path: str, name: str, version: str, **chart: Any) -> None:
        """`helm push` of a new chart version to oci://host/path."""
        self.helm("push", str(self.package(name, version, **chart)), self.url(path))

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=f"https://{self.host}",
            verify=ssl.create_default_context(cafile=str(self.root / "ca.pem")),
            auth=(USERNAME, PASSWORD),
            timeout=30,
        )

    def put_blob(self, repository: str, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        with self.client() as c:
            started = c.post(f"/v2/{repository}/blobs/uploads/")
            started.raise_for_status()
            location = started.headers["Location"]
            sep = "&" if "?" in location else "?"
            done = c.put(
                f"{location}{sep}digest={digest}",
                content=data,
                headers={"Content-Type": "application/octet-stream"},
            )
            done.raise_for_status()
        return digest

    def put_manifest(self, repository: str, tag: str, manifest: Mapping[str, Any]) -> str:
        body = json.dumps(manifest).encode()
        with self.client() as c:
            resp = c.put(
                f"/v2/{repository}/manifests/{tag}",
                content=body,
                headers={
                    "Content-Type": str(
                        manifest.get("mediaType", "application/vnd.oci.image.manifest.v1+json")
                    )
                },
            )
            resp.raise_for_status()
        return "sha256:" + hashlib.sha256(body).hexdigest()

    def manifest(self, repository: str, reference: str) -> dict[str, Any]:
        with self.client() as c:
            resp = c.get(
                f"/v2/{repository}/manifests/{reference}",
                headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
            )
            resp.raise_for_status()
            return dict(resp.json())

    def delete_manifest(self, repository: str, digest: str) -> None:
        with self.client() as c:
            c.delete(f"/v2/{repository}/manifests/{digest}").raise_for_status()

    def tag(self, repository: str, existing: str, new: str) -> None:
        """Give the manifest tagged `existing` another tag (one `helm push` never writes)."""
        self.put_manifest(repository, new, self.manifest(repository, existing))

    def push_artifact(
        self,
        repository: str,
        tag: str,
        *,
        config: bytes,
        config_type: str,
        layer: bytes = b"x",
        layer_type: str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
    ) -> str:
        """An artifact with the given config (any media type, any bytes) and one chart-typed layer."""
        config_digest = self.put_blob(repository, config)
        layer_digest = self.put_blob(repository, layer)
        return self.put_manifest(
            repository,
            tag,
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": config_type, "digest": config_digest, "size": len(config)},
                "layers": [
                    {
                        "mediaType": layer_type,
                        "digest": layer_digest,
                        "size": len(layer),
                    }
                ],
            },
        )


def wait_gone(registry: Registry) -> None:
    """Wait until nothing listens on the registry's port any more."""

    def closed() -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", registry.port)) != 0

    wait_for(closed, timeout=10, what="registry stopped")
    time.sleep(0)
