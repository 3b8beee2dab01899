# One image for every platform: compose.yaml picks the platform with
# CUSTOMS_SERVER__PLATFORMS.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release -p gd-customs

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 customs
COPY --from=build /src/target/release/gd-customs /usr/local/bin/gd-customs
USER customs
ENV CUSTOMS_SERVER__LISTEN=0.0.0.0:50051
EXPOSE 50051
ENTRYPOINT ["/usr/local/bin/gd-customs"]
