# Chancery's server image: built with the official Rust image, run on slim Debian as a non-root
# user. Build and run it with docker-compose.yml (a three-node NATS JetStream cluster and two
# Chancery servers), or alone:
#   docker build -t chancery .
#   docker run -p 8080:8080 -v chancery-data:/data -e CHANCERY_TOKENS=admin:<16+ chars> chancery --demo

# The same toolchain as the tests run with; both stages are Debian bookworm, so the binary finds
# the glibc it was linked against.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p chancery --bin chancery \
 && cp target/release/chancery /usr/local/bin/chancery

FROM debian:bookworm-slim
# curl serves the health check alone.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /data --no-create-home chancery \
 && mkdir /data \
 && chown chancery:chancery /data
COPY --from=build /usr/local/bin/chancery /usr/local/bin/chancery
USER chancery
# The data directory: the log (sled), or with --store nats://... this server's replica of the
# stream; and the projections' checkpoints.
VOLUME /data
ENV CHANCERY_DATA=/data \
    CHANCERY_LISTEN=0.0.0.0:8080
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/healthz >/dev/null || exit 1
ENTRYPOINT ["chancery", "serve"]
