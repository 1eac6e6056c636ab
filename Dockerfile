# parley: `docker build -t parley .` then `docker run -p 3000:3000 --env-file .env parley`
# (the `web` process; `parley worker` for the Discord gateway and Slack Socket Mode). See the
# README's "Container" section, and compose.yaml for web + worker + PostgreSQL.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin parley \
    && mkdir -p /data && chown parley:parley /data
WORKDIR /src

# Dependencies first, in their own layer: rebuilt only when pyproject.toml changes.
COPY scripts/container-install.sh /usr/local/bin/container-install
COPY pyproject.toml ./
RUN container-install deps /src /opt/venv

COPY . .
RUN container-install app /src /opt/venv

USER parley
WORKDIR /home/parley
ENV PORT=3000 \
    DATABASE_URL=sqlite:////data/bot.db \
    LOG_FORMAT=json
VOLUME ["/data"]
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '3000'), timeout=4)"]

# The Procfile's processes: `web` (default) or `worker`; any other subcommand works too.
ENTRYPOINT ["parley"]
CMD ["web"]
