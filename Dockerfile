# syntax=docker/dockerfile:1
# outbox-relay container: multi-stage build on Debian 12, the runtime stage holds only the binary,
# the SQL migrations and the shared libraries it links. Runs as a non-root user; every setting comes
# from OUTBOX_RELAY_* environment variables (or a config file mounted and named by OUTBOX_RELAY_CONFIG).
#   docker build -t outbox-relay .
#   docker run --rm -e OUTBOX_RELAY_DB_URL=... -e OUTBOX_RELAY_KAFKA_BROKERS=... -p 9187:9187 outbox-relay

FROM debian:12-slim AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake ninja-build pkg-config \
      libpqxx-dev libpq-dev librdkafka-dev libspdlog-dev libfmt-dev libcli11-dev doctest-dev \
      libcpp-httplib-dev nlohmann-json3-dev libsystemd-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The whole tree (see .dockerignore): the top-level CMakeLists.txt configures tests/ and examples/ too.
COPY . .
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DOUTBOX_RELAY_WERROR=OFF \
 && cmake --build /build --target outbox-relay \
 && strip /build/outbox-relay

FROM debian:12-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libpqxx-6.4 librdkafka1 libspdlog1.10 libfmt9 libcpp-httplib0.11 libsystemd0 ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 outbox-relay \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin outbox-relay
COPY --from=build /build/outbox-relay /usr/bin/outbox-relay
COPY sql/ /usr/share/outbox-relay/sql/
USER 10001:10001
# Inside a container the endpoint must listen beyond loopback for probes and scrapers.
ENV OUTBOX_RELAY_HTTP_ADDR=0.0.0.0:9187 \
    OUTBOX_RELAY_LOG_FORMAT=json
EXPOSE 9187
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:9187/healthz"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/outbox-relay"]
