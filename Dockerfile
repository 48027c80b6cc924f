# Builds the taskmaster server and its web app into a small runtime image.
#
# Rolling deploys: pass the image now running as PREVIOUS_IMAGE
#   docker build --build-arg PREVIOUS_IMAGE=registry.example.com/taskmaster:0.1.0 .
# and the new image also serves the web builds of the last releases
# (scripts/carry-assets.sh), so pages loaded before the deploy keep loading
# their modules from new instances.
ARG PREVIOUS_IMAGE=no-previous-release

# An empty stand-in for the first release.
FROM debian:bookworm-slim AS no-previous-release
RUN mkdir -p /usr/share/taskmaster/web/assets

FROM ${PREVIOUS_IMAGE} AS previous-release

# The web app: wasm32 build, wasm-bindgen, wasm-opt, hashed and precompressed
# assets (scripts/build-web.sh; rustup can add the target here).
FROM rust:1-bookworm AS web
RUN apt-get update \
 && apt-get install -y --no-install-recommends nodejs npm brotli \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add wasm32-unknown-unknown
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY protocol protocol
COPY client client
COPY server server
COPY loadtest/generator loadtest/generator
COPY loadtest/fanout-baseline loadtest/fanout-baseline
COPY loadtest/faultproxy loadtest/faultproxy
COPY vendor vendor
COPY scripts scripts
COPY web web
RUN bash scripts/build-web.sh
COPY --from=previous-release /usr/share/taskmaster/web /previous-web
RUN bash scripts/carry-assets.sh web/dist /previous-web 3

FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY protocol protocol
COPY server server
COPY migrations migrations
# Workspace members; copied so the workspace resolves (they are not built here).
COPY loadtest/generator loadtest/generator
COPY loadtest/fanout-baseline loadtest/fanout-baseline
# The patched engineioxide ([patch.crates-io] in Cargo.toml).
COPY vendor vendor
RUN cargo build --release --locked -p taskmaster-server

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home /var/lib/taskmaster taskmaster
COPY --from=build /src/target/release/taskmaster /usr/local/bin/taskmaster
COPY --from=web /src/web/dist /usr/share/taskmaster/web
USER taskmaster
ENV BIND=0.0.0.0:8080 LOG_FORMAT=json WEB_DIR=/usr/share/taskmaster/web
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["taskmaster"]
CMD ["serve"]
