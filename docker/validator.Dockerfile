# syntax=docker/dockerfile:1
# `validator`: a validator (dashboard and /metrics on 8080).
# Build from the repository root:  docker build -f docker/validator.Dockerfile -t subnet-validator .
# Stages (cargo-chef): planner writes a dependency recipe, builder compiles the dependencies
# from it (cached until a Cargo.toml/Cargo.lock changes) and then our code, runtime is a slim
# Debian with just the binary.

ARG RUST_VERSION=1.95
ARG DEBIAN=bookworm

FROM rust:${RUST_VERSION}-slim-${DEBIAN} AS chef
RUN cargo install cargo-chef --locked --version ^0.1
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json --package subnet-validator --bin validator
COPY . .
RUN cargo build --release --locked --package subnet-validator --bin validator \
    && cp target/release/validator /usr/local/bin/validator

FROM debian:${DEBIAN}-slim AS runtime
# ca-certificates for TLS peers, curl for the compose health checks.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --create-home --home-dir /data subnet
COPY --from=builder /usr/local/bin/validator /usr/local/bin/validator
USER subnet
WORKDIR /data
ENTRYPOINT ["/usr/local/bin/validator"]
CMD ["--help"]
