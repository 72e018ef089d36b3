# anomon worker image: slim, non-root.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 anomon
COPY --from=build /install /usr/local
WORKDIR /app
COPY --chown=anomon:anomon models ./models
COPY --chown=anomon:anomon streams ./streams
USER anomon
ENV ANOMON_WEB_HOST=0.0.0.0 ANOMON_DATA_DIR=/app/var/worker
EXPOSE 6066
HEALTHCHECK --interval=15s --timeout=3s --retries=4 \
  CMD python -c "import urllib.request,os; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('ANOMON_WEB_PORT','6066') + '/metrics', timeout=2)"
ENTRYPOINT ["anomon"]
CMD ["worker"]
