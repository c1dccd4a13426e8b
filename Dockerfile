# syntax=docker/dockerfile:1
# responder: the daemon image. Build from the repository root:
#   docker build -t responder:0.1.0 --build-arg VERSION=0.1.0 .
# Stage 1 builds wheels (responder and every dependency); stage 2 installs them offline into
# a clean slim base, so no compiler, build tool or pip cache reaches the runtime image.

FROM python:3.11-slim-bookworm AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# Only what the wheel is built from (see .dockerignore): metadata, the package, its data.
COPY pyproject.toml README.md ./
COPY responder ./responder
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
 && pip wheel --no-cache-dir --wheel-dir /wheels /wheels/responder-*.whl

FROM python:3.11-slim-bookworm
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="responder" \
      org.opencontainers.image.description="Alert-driven automated responder: Alertmanager/Grafana/Sentry webhooks in, audited diagnostics and containment out." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11-slim-bookworm"

# Nothing is written outside the two volumes: /var/lib/responder (the SQLite store of the
# embedded default, and HOME) and /tmp. Bytecode was compiled at install time, so the root
# filesystem can be mounted read-only. The daemon listens on all interfaces in a container.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/var/lib/responder \
    TMPDIR=/tmp \
    RESPONDER_LISTEN=0.0.0.0:8080 \
    RESPONDER_DATA_DIR=/var/lib/responder \
    RESPONDER_RULES_DIR=/etc/responder/rules \
    RESPONDER_LOG_FORMAT=json

# The wheels come from the builder stage through a bind mount: they are not kept in a layer.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-cache-dir --disable-pip-version-check --no-index \
        --find-links=/wheels /wheels/responder-*.whl \
 && groupadd --system --gid 10001 responder \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /var/lib/responder --shell /usr/sbin/nologin responder \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/responder \
 && install -d -o root -g root -m 0755 /etc/responder/rules

# The shipped rules, read-only for the daemon; a Kubernetes ConfigMap mounts over them.
COPY --chown=root:root rules/ /etc/responder/rules/

USER 10001:10001
WORKDIR /var/lib/responder
VOLUME ["/var/lib/responder", "/tmp"]
EXPOSE 8080

# Liveness against /healthz with the interpreter already in the image (slim has no curl);
# the port follows RESPONDER_LISTEN.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; port = os.environ.get('RESPONDER_LISTEN', ':8080').rpartition(':')[2]; urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=4)"]

# `responder serve` by default; the same image runs `migrate`, `rules check`, `audit prune`.
ENTRYPOINT ["responder"]
CMD ["serve"]
