# syntax=docker/dockerfile:1
# The Shipway operator image: Debian 12's Python 3.11 and a virtualenv at /opt/shipway with the
# operator and its pinned dependencies (docker/requirements.txt), run as uid 65532.
#
#   docker build -t ghcr.io/shipway-dev/shipway:0.1.0 .
#
# The local cluster builds this very file with its BuildKit (hack/localkube/addons/buildkit/build.py,
# `make operator-image`): the base and the `# syntax=` frontend come from its docker.io mirror.
#
# The base is pinned by exact tag; pin it by digest too (debian:12.11-slim@sha256:...) in a
# release pipeline that can resolve it.
ARG DEBIAN_IMAGE=debian:12.11-slim

# --- builder: wheels are downloaded/built and installed here, with pip and setuptools ------------
FROM ${DEBIAN_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.11 python3.11-venv \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY docker/requirements.txt docker/prune_venv.py docker/
COPY pyproject.toml README.md ./
COPY operator ./operator
# Behind a TLS-intercepting proxy, lend pip your CA bundle as a build secret (never stored in a
# layer): --secret id=ca-bundle,src=/etc/ssl/certs/ca-certificates.crt
RUN --mount=type=secret,id=ca-bundle,required=false \
    if [ -s /run/secrets/ca-bundle ]; then export PIP_CERT=/run/secrets/ca-bundle; fi \
 && python3.11 -m venv /opt/shipway \
 && /opt/shipway/bin/pip install --no-cache-dir --only-binary=:all: -r docker/requirements.txt \
 && /opt/shipway/bin/pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
 && /opt/shipway/bin/pip install --no-cache-dir --no-deps --no-index /wheels/shipway-*.whl \
 && /opt/shipway/bin/python docker/prune_venv.py /opt/shipway

# --- runtime: the interpreter and the venv; no pip, no compiler, no shell use ---------------------
FROM ${DEBIAN_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.11-minimal libpython3.11-stdlib \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 65532 nonroot \
 && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin nonroot
COPY --from=build /opt/shipway /opt/shipway
ENV PATH=/opt/shipway/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 65532:65532
WORKDIR /opt/shipway
LABEL org.opencontainers.image.title="shipway" \
      org.opencontainers.image.description="Codeship Pro pipelines run natively on Kubernetes" \
      org.opencontainers.image.source="https://github.com/shipway-dev/shipway" \
      org.opencontainers.image.licenses="Apache-2.0"
ENTRYPOINT ["/opt/shipway/bin/python", "-m", "shipway"]
CMD ["--help"]
