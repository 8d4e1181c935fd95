# Touchpoint bot, webhook mode. Build: docker build -t touchpoint .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    TOUCHPOINT_LOCALES_DIR=/app/locales \
    TOUCHPOINT_LOG_FORMAT=json \
    TOUCHPOINT_WEBHOOK_HOST=0.0.0.0 \
    TOUCHPOINT_WEBHOOK_PORT=8080

WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
COPY bot ./bot
COPY locales ./locales
# A regular (non-editable) install: the wheel leaves the development sandbox out (.dockerignore too).
RUN pip install . && touchpoint i18n compile \
    && useradd --system --home /app touchpoint && chown -R touchpoint /app
USER touchpoint

EXPOSE 8080
# Live while the process answers; the load balancer should use /readyz instead.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"
# SIGTERM starts the graceful drain; give it more than TOUCHPOINT_SHUTDOWN_GRACE_S (stop_grace_period).
STOPSIGNAL SIGTERM
CMD ["touchpoint", "run", "--webhook"]
