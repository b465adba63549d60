//! `crds/` must be what the Rust types generate, so the chart and the code never drift.

#[test]
fn crds_directory_matches_the_rust_types() {
    let generated = kongress::api::crd_manifests().expect("CRDs encode");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/crds/kongproxies.kongress.dev.yaml");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        generated == committed,
        "{path} is out of date; run `make crds` (cargo run -- crds > {path}) and commit the result"
    );
}
