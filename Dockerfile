# seedance-bot: docker build -t seedance-bot . && docker run -e DISCORD_TOKEN -e RUNCOMFY_API_TOKEN -v seedance-data:/data seedance-bot
# Two stages: the first installs the locked wheels into a virtual environment, the second is a
# clean slim Python with that environment, no compiler and no build tools, run as a plain user.

FROM python:3.11-slim-bookworm AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/seedance/bin:$PATH

RUN python -m venv /opt/seedance
WORKDIR /src

# The dependencies, in a layer of their own that changes only with the lock: exact versions,
# every file checked against its hash, wheels only (nothing is compiled).
COPY requirements.lock ./
RUN pip install --no-cache-dir --require-hashes --only-binary=:all: -r requirements.lock

# The bot itself, on top, without resolving anything again.
COPY pyproject.toml setup.py README.md ./
COPY bot ./bot
COPY cogs ./cogs
RUN pip install --no-cache-dir --no-deps --no-build-isolation . \
    && seedance-bot --help > /dev/null


FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/seedance/bin:$PATH \
    SEEDANCE_BOT_CONFIG=/config/config.toml

# A dedicated user; the SQLite database lives on a volume it owns.
RUN useradd --create-home --uid 10001 --user-group seedance \
    && mkdir -p /data /config \
    && chown 10001:10001 /data

COPY --from=build /opt/seedance /opt/seedance
COPY docker/config.toml /config/config.toml

USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
# /metrics and /healthz ([metrics] port in /config/config.toml).
EXPOSE 9108
# The same command works outside a container: it asks the running bot's /healthz.
HEALTHCHECK --interval=30s --timeout=15s --start-period=60s --retries=3 \
    CMD ["seedance-bot", "health"]
ENTRYPOINT ["seedance-bot"]
CMD ["run"]
