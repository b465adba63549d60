# The kongress operator image: a statically linked binary on distroless/static, non-root.
#   docker build -t kongress:dev .      (or podman / buildah bud)
# CI has no container engine; it assembles the same image from the same static build
# with umoci instead (hack/image.sh, `make image`).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock rustfmt.toml ./
COPY src ./src
COPY benches ./benches
COPY e2e ./e2e
COPY tests ./tests
COPY crds ./crds
# crt-static links glibc statically; --target keeps the flag off build scripts.
RUN RUSTFLAGS='-C target-feature=+crt-static' \
    cargo build --release --locked --bin kongress --target x86_64-unknown-linux-gnu \
 && strip -o /kongress target/x86_64-unknown-linux-gnu/release/kongress

# No shell, no package manager, no libc: CA certificates, /etc/passwd and tzdata only.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /kongress /usr/local/bin/kongress
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/kongress"]
CMD ["run"]
