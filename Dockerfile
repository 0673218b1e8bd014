# kurashi app image: `docker compose up` runs it with PostgreSQL (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
RUN useradd --create-home --uid 10001 kurashi

# Dependencies first (cached while only the code changes).
COPY pyproject.toml README.md* ./
COPY bot/__init__.py bot/__init__.py
COPY intents/__init__.py intents/__init__.py
COPY knowledge/__init__.py knowledge/__init__.py
COPY scheduler/__init__.py scheduler/__init__.py
RUN pip install -e . && rm -rf /root/.cache

COPY bot bot
COPY intents intents
COPY knowledge knowledge
COPY scheduler scheduler
RUN mkdir -p var && chown -R kurashi:kurashi /app/var

USER kurashi
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD python -c "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"
# Migrations at start: `kurashi db upgrade`, then the server (the app also upgrades in its lifespan).
CMD ["sh", "-c", "kurashi db upgrade && exec kurashi serve --host 0.0.0.0 --port 8000"]
