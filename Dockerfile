# syntax=docker/dockerfile:1
# The Kubemart operator image: `docker build -t kubemart:0.1.0 .` (see README, "The image").
# tests/unit/test_dockerfile.py keeps these versions equal to hack/go.mod, hack/cosign/go.mod, hack/build.sh
# and pyproject.toml.

# --- helm, built from the Go module proxy at the version hack/go.mod pins ------------------------------
FROM golang:1.26.0-bookworm AS helm
ARG HELM_VERSION=v3.21.4
ARG KUBE_VERSION=v1.36.3
ENV CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=readonly
WORKDIR /src/hack
# Only the pins: go.sum verifies every module; hack/build.sh builds the same helm for the tests.
COPY hack/go.mod hack/go.sum ./
RUN --mount=type=cache,target=/root/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    set -eu; \
    test "$(go list -m -f '{{.Version}}' helm.sh/helm/v3)" = "$HELM_VERSION"; \
    major=${KUBE_VERSION#v}; major=${major%%.*}; \
    minor=${KUBE_VERSION#v*.}; minor=${minor%%.*}; \
    go build -trimpath -o /out/helm -ldflags "-s -w \
      -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION \
      -X helm.sh/helm/v3/internal/version.gitTreeState=clean \
      -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=$major \
      -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor \
      -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=$major \
      -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor" \
      helm.sh/helm/v3/cmd/helm; \
    /out/helm version --short | grep -qx "$HELM_VERSION"

# --- cosign (spec.verify.provider cosign), from its own module hack/cosign/go.mod, as hack/build.sh --
FROM golang:1.26.0-bookworm AS cosign
ARG COSIGN_VERSION=v2.6.5
ENV CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=readonly
WORKDIR /src/hack/cosign
COPY hack/cosign/go.mod hack/cosign/go.sum ./
RUN --mount=type=cache,target=/root/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    set -eu; \
    test "$(go list -m -f '{{.Version}}' github.com/sigstore/cosign/v2)" = "$COSIGN_VERSION"; \
    go build -trimpath -o /out/cosign -ldflags "-s -w \
      -X sigs.k8s.io/release-utils/version.gitVersion=$COSIGN_VERSION \
      -X sigs.k8s.io/release-utils/version.gitTreeState=clean" \
      github.com/sigstore/cosign/v2/cmd/cosign; \
    /out/cosign version 2>&1 | grep -q "$COSIGN_VERSION"

# --- the operator and its dependencies as wheels (anything that compiles, compiles here) ---------------
FROM python:3.11-slim-bookworm AS wheels
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN pip wheel --wheel-dir /wheels .

# --- the image: Python 3.11 slim, the wheels, helm, cosign; no compilers, no root ------------------------------
FROM python:3.11-slim-bookworm
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    KUBEMART_HELM_BINARY=/usr/local/bin/helm \
    KUBEMART_COSIGN_BINARY=/usr/local/bin/cosign
# git (and ssh for ssh:// URLs) from Debian, for sources of type git: the operator runs the git CLI
# (docs/sources/git.md says why the CLI and not a Python git library); Debian ships its security fixes.
RUN apt-get update \
    && apt-get install -y --no-install-recommends git openssh-client ca-certificates \
    && rm -rf /var/lib/apt/lists/*
RUN --mount=type=bind,from=wheels,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels kubemart \
    && groupadd --gid 10001 kubemart \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin kubemart
COPY --from=helm /out/helm /usr/local/bin/helm
COPY --from=cosign /out/cosign /usr/local/bin/cosign
# Health (kopf), metrics and /runtime/*, payment webhooks.
EXPOSE 8080 8081 8082
USER 10001:10001
ENTRYPOINT ["kubemart", "run"]
