# syntax=docker/dockerfile:1
#
# Image of the Línea Aquí IVR service (`ivr serve`): FastAGI on 4573, and /metrics,
# /healthz and /readyz on 9108.
#
# Two stages. "build" installs the package and its dependencies into a virtual
# environment; "runtime" copies only that environment onto a clean slim image: no
# compiler, no pip cache, no source tree, an unprivileged user.
#
# Mount points (deploy/README.md has the whole stack):
#   /app/config    the menu (menu.yaml): bind-mount a directory to edit it live; the
#                  service reloads it within 2 s. The image carries config/ as a default.
#   /app/prompts   the prompt sources, for the `ivr` commands that read them. Callers
#                  hear the audio from Asterisk's sounds directory, not from here.
#   /var/lib/ivr   a volume: the records spool, the generated caller-hash key and, only
#                  when IVR_DATABASE_URL is unset, the embedded PostgreSQL (pgdata/).
# /app/config and /app/prompts are not VOLUMEs on purpose: an anonymous volume would
# freeze the menu of the first run and hide the one in a newer image.
#
# `docker build` has not been run where this file was written (no Docker engine there):
# tests/test_deploy.py lints it with hadolint and checks its structure and healthcheck.

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY ivr ./ivr
# Every dependency ships a wheel for CPython 3.11 on Linux (pgserver carries its own
# PostgreSQL binaries), so nothing is compiled; pip byte-compiles the packages here,
# where the venv is still writable.
RUN /opt/venv/bin/pip install . \
    && /opt/venv/bin/ivr --help > /dev/null

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="linea-aqui-ivr" \
      org.opencontainers.image.description="FastAGI IVR engine of the Centro de Llamadas Aquí (Querétaro)" \
      org.opencontainers.image.licenses="MIT"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    TZ=America/Mexico_City \
    IVR_CONFIG=/app/config \
    IVR_DATA_DIR=/var/lib/ivr \
    IVR_LOG_FORMAT=json \
    IVR_AGI_HOST=0.0.0.0 \
    IVR_AGI_PORT=4573 \
    IVR_METRICS_HOST=0.0.0.0 \
    IVR_METRICS_PORT=9108

# System time zone data for the logs and the shell (the service itself reads the tzdata
# wheel). Debian package versions are not pinned: a pin breaks the build as soon as the
# security archive moves on, and the base image tag already fixes the release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends tzdata \
    && rm -rf /var/lib/apt/lists/*

# A fixed numeric uid/gid, so that volume ownership and Kubernetes' runAsNonRoot work.
RUN groupadd --system --gid 10001 ivr \
    && useradd --system --uid 10001 --gid ivr --home-dir /var/lib/ivr --no-create-home \
       --shell /usr/sbin/nologin ivr \
    && install -d -o ivr -g ivr -m 0700 /var/lib/ivr

COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY config ./config
COPY prompts ./prompts
COPY dialplan ./dialplan

USER 10001:10001

# FastAGI (Asterisk's AGI(agi://…:4573/…)) and the HTTP endpoint of metrics and probes.
# IVR_AGI_HOST and IVR_METRICS_HOST are 0.0.0.0 inside the container; who may open a
# FastAGI session is IVR_AGI_ALLOWED_PEERS (loopback only by default: set it to the
# Asterisk host or network, e.g. IVR_AGI_ALLOWED_PEERS=10.20.0.5).
EXPOSE 4573 9108
VOLUME ["/var/lib/ivr"]

# Liveness: /healthz answers 200 while the event loop runs. The slim image has no curl;
# Python's urllib fails (exit 1) on a refused connection, a timeout or any non-2xx.
# It follows IVR_METRICS_PORT when the port is changed at run time.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + (os.environ.get('IVR_METRICS_PORT') or '9108') + '/healthz', timeout=4).close()"]

# SIGTERM: stop accepting calls, let calls in progress finish for IVR_SHUTDOWN_GRACE
# seconds (30), flush the records. Give the container longer than that to stop
# (docker stop -t 45; compose: stop_grace_period).
STOPSIGNAL SIGTERM
ENTRYPOINT ["ivr"]
CMD ["serve"]
