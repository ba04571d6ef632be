# seedance-bot: docker build -t seedance-bot . && docker run -e DISCORD_TOKEN -e RUNCOMFY_API_TOKEN -v seedance-data:/data seedance-bot
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SEEDANCE_BOT_CONFIG=/config/config.toml

# A dedicated user; the database lives on a volume it owns.
RUN useradd --create-home --uid 10001 seedance \
    && mkdir -p /data /config \
    && chown seedance:seedance /data /config

WORKDIR /app
COPY pyproject.toml setup.py README.md ./
COPY bot ./bot
COPY cogs ./cogs
RUN pip install .

# Defaults for the container: the database on the volume. Mount your own config over it.
RUN printf '[database]\npath = "/data/seedance-bot.sqlite3"\n' > /config/config.toml \
    && chown seedance:seedance /config/config.toml

USER seedance
VOLUME ["/data"]
ENTRYPOINT ["seedance-bot"]
CMD ["run"]
