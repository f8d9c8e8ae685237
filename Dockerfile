# One image, every role: the command picks it (api | worker | scheduler | db upgrade | ...).
#   docker build -t rag-indexer .
#   docker run --env-file .env rag-indexer worker
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN /opt/venv/bin/pip install .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 rag && mkdir /data && chown rag /data
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    RAG_DATA_DIR=/data \
    RAG_API_HOST=0.0.0.0
USER rag
WORKDIR /home/rag
EXPOSE 8000
# The api role answers /healthz; compose gives worker and scheduler checks of their own.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"
ENTRYPOINT ["rag-indexer"]
CMD ["api"]
