# Image of the IVR service: FastAGI engine, call records, menu reload. Prompt audio and
# a healthcheck come with the prompts and metrics work.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TZ=America/Mexico_City \
    IVR_CONFIG=/app/config \
    IVR_DATA_DIR=/var/lib/ivr \
    IVR_LOG_FORMAT=json

# System time zone data, in addition to the tzdata wheel the package depends on.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tzdata \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system ivr && useradd --system --gid ivr --home-dir /app --shell /usr/sbin/nologin ivr

WORKDIR /app
COPY pyproject.toml README.md LICENSE ./
COPY ivr ./ivr
RUN pip install .
COPY config ./config
COPY prompts ./prompts
COPY dialplan ./dialplan

# /var/lib/ivr holds the records spool and, when IVR_DATABASE_URL is unset, the embedded
# PostgreSQL (pgdata/): fine for a trial; in production point IVR_DATABASE_URL at a
# managed server and keep the volume for the spool.
RUN mkdir -p /var/lib/ivr && chown ivr:ivr /var/lib/ivr
USER ivr

# FastAGI and Prometheus metrics; bind to all interfaces inside the container.
# Only loopback may open FastAGI sessions by default: set IVR_AGI_ALLOWED_PEERS to the
# Asterisk host(s) or network, e.g. -e IVR_AGI_ALLOWED_PEERS=10.20.0.0/24.
ENV IVR_AGI_HOST=0.0.0.0 IVR_METRICS_HOST=0.0.0.0
EXPOSE 4573 9108
VOLUME ["/var/lib/ivr"]

ENTRYPOINT ["ivr"]
CMD ["serve"]
