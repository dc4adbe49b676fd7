# index-proxy: `index-proxy serve` by default; the same image runs `index-proxy worker`.
#   docker build -t index-proxy .
# The build stage compiles the resolver's Cython core into a wheel; the runtime stage installs the
# wheels without a compiler.
FROM python:3.11-slim AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY index_proxy index_proxy
COPY analyzers analyzers
COPY resolver resolver
COPY prescriptions prescriptions
# postgres (asyncpg) and s3 (aioboto3): what a replicated deployment stores its state in.
RUN pip wheel --no-cache-dir --wheel-dir /wheels '.[postgres,s3]'

FROM python:3.11-slim
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels 'index-proxy[postgres,s3]' \
    && rm -rf /wheels \
    && useradd --system --home-dir /var/lib/index-proxy --create-home index-proxy
USER index-proxy
WORKDIR /var/lib/index-proxy
EXPOSE 8000
ENTRYPOINT ["index-proxy"]
CMD ["serve", "--config", "/etc/index-proxy/config.yaml"]
