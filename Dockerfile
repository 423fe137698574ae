# migrate-bot: a slim, non-root image. Build: docker build -t migrate-bot .
# Run:   docker run --env-file .env -p 3000:3000 -p 9464:9464 -v migrate-bot-data:/var/lib/migrate-bot \
#          migrate-bot run --http            (Socket Mode: drop --http and the 3000 port)
ARG PYTHON_VERSION=3.12

FROM python:${PYTHON_VERSION}-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
COPY bench ./bench
RUN python -m venv /opt/migrate-bot \
    && /opt/migrate-bot/bin/pip install .

FROM python:${PYTHON_VERSION}-slim
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/migrate-bot --create-home migrate-bot
COPY --from=build /opt/migrate-bot /opt/migrate-bot
ENV PATH=/opt/migrate-bot/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    MIGRATE_BOT_DATA_DIR=/var/lib/migrate-bot \
    METRICS_PORT=9464 \
    LOG_FORMAT=json
USER migrate-bot
WORKDIR /var/lib/migrate-bot
VOLUME ["/var/lib/migrate-bot"]
EXPOSE 3000 9464
# /healthz on METRICS_PORT answers in both transports (Socket Mode has no other HTTP port).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('METRICS_PORT', '9464'), timeout=4)"]
ENTRYPOINT ["migrate-bot"]
CMD ["run"]
