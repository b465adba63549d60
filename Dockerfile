# kongress operator image. Not built by CI: this machine has no container engine.
# Build with: docker build -t kongress:dev .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock rustfmt.toml ./
COPY src ./src
COPY e2e ./e2e
COPY tests ./tests
COPY crds ./crds
RUN cargo build --release --locked --bin kongress

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/kongress /usr/local/bin/kongress
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/kongress"]
CMD ["run"]
