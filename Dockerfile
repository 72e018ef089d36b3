# anomon worker image: slim, non-root, no compiler in the final stage.
#   docker build -t anomon .        then: docker run anomon --help
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --prefix=/install .

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
# the web server must listen beyond the container's loopback for Prometheus to scrape it
ENV ANOMON_WEB_HOST=0.0.0.0 ANOMON_DATA_DIR=/app/var/worker ANOMON_MODELS_DIR=/app/models
EXPOSE 6066
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=4 \
  CMD python -c "import urllib.request,os; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('ANOMON_WEB_PORT','6066') + '/metrics', timeout=2)"
ENTRYPOINT ["anomon"]
CMD ["worker"]
