# Rosey on a slim Python base, as a non-root user (docs/operations.md).
#   docker build -t rosey .        docker compose up   (docker-compose.yml: NATS, Redis, Rosey)
# Mount your own functions/ and manifests/ over /app/functions and /app/manifests; configure with
# ROSEY_* variables (they override /app/rosey.yaml, which is docker/rosey.yaml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
RUN useradd --create-home --uid 10001 --user-group rosey

# What `pip install .` builds from (pyproject.toml names each; tests/test_container.py checks).
COPY pyproject.toml README.md build_hooks.py ./
COPY runtime ./runtime
COPY rosey ./rosey
RUN pip install . && rm -rf build ./*.egg-info

# The shipped functions; bind-mount your own over them (read-only is enough).
COPY functions ./functions
COPY manifests ./manifests
COPY docker/rosey.yaml ./rosey.yaml
RUN mkdir -p /app/.rosey && chown rosey:rosey /app/.rosey

USER rosey
VOLUME ["/app/.rosey"]
# /healthz, /readyz and /metrics (http.listen in docker/rosey.yaml).
EXPOSE 8080
# The slim image has no curl: Python asks /healthz, and any failure exits non-zero.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
ENTRYPOINT ["rosey"]
CMD ["run", "--config", "/app/rosey.yaml", "--no-console"]
