//! `crds/` and the chart's copy must be what the Rust types generate, so the chart,
//! the manifests and the code never drift.

#[test]
fn crd_manifests_match_the_rust_types() {
    let generated = kongress::api::crd_manifests().expect("CRDs encode");
    for path in [
        concat!(env!("CARGO_MANIFEST_DIR"), "/crds/kongproxies.kongress.dev.yaml"),
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/charts/kongress/crds/kongproxies.kongress.dev.yaml"
        ),
    ] {
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            generated == committed,
            "{path} is out of date; run `make crds` and commit the result"
        );
    }
}
