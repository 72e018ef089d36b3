# anomon worker image: slim, non-root, no compiler in the final stage, packages from the lock.
#   docker build -t anomon .        then: docker run anomon --help
# requirements.lock (deploy/lock.py) pins every package of a production install, with
# hashes: the runtime dependencies, aiokafka's lz4/snappy/zstd codecs and the RocksDB store
# (ANOMON_STORE=rocksdb://); the embedded demo broker and the dev tools are not in it.
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY requirements.lock ./
RUN pip install --prefix=/install --require-hashes -r requirements.lock
# the core compiled by mypyc (setup.py): a C compiler here, none in the final stage
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml setup.py README.md ./
COPY src ./src
RUN ANOMON_COMPILE=1 pip install --prefix=/install --no-deps .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN groupadd --gid 10001 anomon \
 && useradd --create-home --uid 10001 --gid 10001 anomon \
 && mkdir -p /app/var/worker \
 && chown -R anomon:anomon /app
COPY --from=build /install /usr/local
WORKDIR /app
COPY --chown=anomon:anomon models ./models
COPY --chown=anomon:anomon streams ./streams
USER 10001:10001
# the web server must listen beyond the container's loopback for Prometheus to scrape it;
# logs as JSON lines for the log collector (ANOMON_LOG_FORMAT=text for people)
ENV ANOMON_WEB_HOST=0.0.0.0 ANOMON_DATA_DIR=/app/var/worker ANOMON_MODELS_DIR=/app/models \
    ANOMON_LOG_FORMAT=json
EXPOSE 6066
# liveness: the process serves HTTP (readiness, /readyz, is for orchestrators that route
# to it; a worker recovering a large table is alive but not ready)
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=4 \
  CMD python -c "import urllib.request,os; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('ANOMON_WEB_PORT','6066') + '/livez', timeout=2)"
ENTRYPOINT ["anomon"]
CMD ["worker"]
