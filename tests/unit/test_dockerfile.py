"""The image cannot be built on this machine, so its Dockerfile is held to the pins it must agree with:
helm and Go from hack/go.mod and hack/build.sh, cosign from hack/cosign/go.mod, Python from pyproject.toml; a non-root final stage."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
GO_MOD = (ROOT / "hack" / "go.mod").read_text()
COSIGN_GO_MOD = (ROOT / "hack" / "cosign" / "go.mod").read_text()
BUILD_SH = (ROOT / "hack" / "build.sh").read_text()
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def stages() -> list[tuple[str, str, list[str]]]:
    """(image, stage name, instruction lines) for each FROM, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE)
    out: list[tuple[str, str, list[str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if m := re.match(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?", line, re.I):
            out.append((m.group(1), m.group(2) or "", []))
        elif out:
            out[-1][2].append(line)
    return out


def arg(name: str) -> str:
    m = re.search(rf"^ARG {name}=(\S+)$", DOCKERFILE, re.M)
    assert m, f"Dockerfile has no ARG {name}=..."
    return m.group(1)


def shell_var(name: str) -> str:
    m = re.search(rf"^{name}=(\S+)(?:\s+#.*)?$", BUILD_SH, re.M)
    assert m, f"hack/build.sh sets no {name}"
    return m.group(1)


def test_helm_is_the_version_hack_pins() -> None:
    pinned = re.search(r"^\s*helm\.sh/helm/v3 (v\S+)", GO_MOD, re.M)
    assert pinned
    assert arg("HELM_VERSION") == pinned.group(1) == shell_var("HELM_VERSION")
    assert arg("KUBE_VERSION") == shell_var("KUBE_VERSION")
    assert "COPY hack/go.mod hack/go.sum" in DOCKERFILE  # built against go.sum, not a floating version


def test_helm_gets_the_same_ldflags_as_hack_build() -> None:
    helm_flags = set(re.findall(r"-X (helm\.sh/\S+?)=", BUILD_SH))
    assert helm_flags, "hack/build.sh sets no helm ldflags?"
    in_dockerfile = set(re.findall(r"-X (helm\.sh/\S+?)=", DOCKERFILE))
    assert helm_flags == in_dockerfile
    assert "-trimpath" in DOCKERFILE
    assert "-s -w" in DOCKERFILE


def go_version(go_mod: str) -> str:
    toolchain = re.search(r"^toolchain go(\S+)$", go_mod, re.M)
    go_line = re.search(r"^go (\S+)$", go_mod, re.M)
    assert go_line
    return toolchain.group(1) if toolchain else go_line.group(1)


def test_go_image_is_the_go_version_of_hack_go_mod() -> None:
    want = go_version(GO_MOD)
    assert go_version(COSIGN_GO_MOD) == want
    images = {name: image for image, name, _ in stages() if image.startswith("golang:")}
    assert set(images) == {"helm", "cosign"}  # one builder per Go module
    for image in images.values():
        assert image.split(":")[1].split("-")[0] == want


def test_cosign_is_the_version_hack_cosign_pins() -> None:
    pinned = re.search(r"^\s*github\.com/sigstore/cosign/v2 (v\S+)", COSIGN_GO_MOD, re.M)
    assert pinned
    assert arg("COSIGN_VERSION") == pinned.group(1) == shell_var("COSIGN_VERSION")
    assert "COPY hack/cosign/go.mod hack/cosign/go.sum" in DOCKERFILE
    build_flags = set(re.findall(r"-X (sigs\.k8s\.io/release-utils/\S+?)=", BUILD_SH))
    assert build_flags
    assert build_flags == set(re.findall(r"-X (sigs\.k8s\.io/release-utils/\S+?)=", DOCKERFILE))
    final = "\n".join(stages()[-1][2])
    assert "COPY --from=cosign /out/cosign /usr/local/bin/cosign" in final
    assert "KUBEMART_COSIGN_BINARY=/usr/local/bin/cosign" in final


def test_python_images_are_the_python_of_pyproject() -> None:
    minimum = re.match(r">=\s*(\d+\.\d+)", PYPROJECT["project"]["requires-python"])
    assert minimum
    assert PYPROJECT["tool"]["mypy"]["python_version"] == minimum.group(1)
    pythons = [image for image, _, _ in stages() if image.startswith("python:")]
    assert len(pythons) == 2  # the wheel build and the final stage
    for image in pythons:
        assert image.split(":")[1].startswith(f"{minimum.group(1)}-slim"), image


def test_final_stage_is_slim_non_root_without_compilers_and_runs_the_operator() -> None:
    image, _name, lines = stages()[-1]
    assert image.startswith("python:")
    assert "slim" in image
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users, "the final stage sets no USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit(), "a numeric USER, so that runAsNonRoot can verify it"
    assert int(uid) != 0
    assert lines[-1] == 'ENTRYPOINT ["kubemart", "run"]'
    body = "\n".join(lines)
    for tool in ("gcc", "build-essential", "g++", "clang", "make"):
        assert tool not in body, f"the final stage installs {tool}"
    # Only git, ssh and CAs for git sources come from apt, nothing that compiles.
    installs = [line for line in lines if "apt-get install" in line]
    assert len(installs) <= 1
    for line in installs:
        packages = line.split("apt-get install", 1)[1].split("&&")[0].split()
        assert {p for p in packages if not p.startswith("-")} == {"git", "openssh-client", "ca-certificates"}
    assert "COPY --from=helm /out/helm /usr/local/bin/helm" in body


def test_chart_pod_runs_as_the_image_user() -> None:
    import yaml

    values = yaml.safe_load((ROOT / "charts" / "kubemart" / "values.yaml").read_text())
    uid = next(line.split()[1] for line in stages()[-1][2] if line.startswith("USER ")).split(":")[0]
    assert values["podSecurityContext"]["runAsUser"] == int(uid)


@pytest.mark.parametrize("kept_out", [".venv", "bin", ".cluster", ".git", "tests"])
def test_dockerignore_keeps_the_context_small(kept_out: str) -> None:
    lines = [ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines()]
    # An allow-list: everything is ignored, then the few inputs are let back in.
    assert "*" in lines
    assert f"!{kept_out}" not in lines
    assert not [ln for ln in lines if ln.startswith(f"!{kept_out}/")]


def test_default_chart_image_tag_is_the_package_version() -> None:
    import yaml

    chart = yaml.safe_load((ROOT / "charts" / "kubemart" / "Chart.yaml").read_text())
    values = yaml.safe_load((ROOT / "charts" / "kubemart" / "values.yaml").read_text())
    assert chart["appVersion"] == PYPROJECT["project"]["version"] == chart["version"]
    assert values["image"]["tag"] == ""  # empty means appVersion (templates/_helpers.tpl)
    from kubemart import __version__

    assert __version__ == PYPROJECT["project"]["version"]
