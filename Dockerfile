# Rosey on a slim Python base, as a non-root user. Mount your own functions/ and manifests/
# over /app/functions and /app/manifests, and configure NATS/Redis with ROSEY_* variables.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY pyproject.toml README.md ./
COPY runtime ./runtime
RUN pip install . && useradd --create-home --uid 10001 rosey

COPY functions ./functions
COPY manifests ./manifests
COPY rosey.yaml ./rosey.yaml
RUN mkdir -p /app/.rosey && chown -R rosey:rosey /app/.rosey

USER rosey
VOLUME ["/app/.rosey"]
ENTRYPOINT ["rosey"]
CMD ["run", "--config", "/app/rosey.yaml", "--no-console"]
