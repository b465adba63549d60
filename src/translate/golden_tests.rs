//! Golden tests of the translation: `testdata/<case>.yaml` holds Kubernetes objects,
//! `testdata/<case>.golden.yaml` what kongress makes of them: `attachedRoutes` per listener,
//! the `status.parents` it writes per route, and the Kong config. Certificates show which
//! Secret field they carry instead of generated key material.
//!
//! Each case is also translated with every object list reversed, which must not change a byte.
//! `UPDATE_GOLDEN=1 cargo test --lib translate::golden_tests` rewrites the golden files;
//! review the diff like code.

use std::path::{Path, PathBuf};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use super::testing::{self, Snapshot};
use super::{Translation, tags};
use crate::objects::Objects;
use crate::status::route_parents;

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/translate/testdata")
}

fn condition_line(condition: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition) -> String {
    format!(
        "{}={} {}: {}",
        condition.type_, condition.status, condition.reason, condition.message
    )
}

/// The golden document of one translation.
fn render(snapshot: &Snapshot, translation: &Translation) -> String {
    let mut attached = serde_json::Map::new();
    for gateway in &snapshot.plan.gateways {
        for listener in &gateway.listeners {
            let key = crate::plan::ListenerKey {
                gateway: gateway.key.clone(),
                listener: listener.name.clone(),
            };
            attached.insert(
                format!("{} {}", gateway.key, listener.name),
                json!(translation.attached_routes(&key)),
            );
        }
    }
    let now = Time(Timestamp::from_second(1_700_000_000).expect("time"));
    let mut routes = serde_json::Map::new();
    for (route, verdict) in translation.routes.iter() {
        let parents: Vec<Value> = route_parents(Some(verdict), &[], &|_| true, &now)
            .into_iter()
            .map(|p| {
                let r = &p.parent_ref;
                json!({
                    "parentRef": {
                        "group": r.group, "kind": r.kind, "namespace": r.namespace,
                        "name": r.name, "sectionName": r.section_name, "port": r.port,
                    },
                    "controllerName": p.controller_name,
                    "observedGeneration": verdict.generation,
                    "conditions": p.conditions.iter().map(condition_line).collect::<Vec<_>>(),
                })
            })
            .collect();
        routes.insert(route.to_string(), json!(parents));
    }
    let mut config = translation.config.clone();
    for certificate in &mut config.certificates {
        let secret = tags::parse(&certificate.tags)
            .map(|s| s.key.to_string())
            .unwrap_or_default();
        certificate.cert = format!("<tls.crt of Secret {secret}>");
        certificate.key = format!("<tls.key of Secret {secret}>");
    }
    let mut document = json!({
        "attachedRoutes": attached,
        "routes": routes,
        "config": config,
    });
    strip_nulls(&mut document);
    serde_yaml_ng::to_string(&document).expect("golden document serialises")
}

/// Drops null fields (unset optional parentRef fields) so the golden reads like the status.
fn strip_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

fn run_case(input: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(input).map_err(|e| format!("{}: {e}", input.display()))?;
    let mut objects = Objects::default();
    objects
        .add_yaml(&input.display().to_string(), &text)
        .map_err(|e| e.to_string())?;
    let snapshot = Snapshot::from_objects(objects.clone());
    let got = render(&snapshot, &snapshot.translate());

    let reversed = Snapshot::from_objects(testing::reversed(&objects));
    let got_reversed = render(&reversed, &reversed.translate());
    if got != got_reversed {
        return Err(format!("{}: output depends on input order", input.display()));
    }

    let golden = input.with_extension("golden.yaml");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &got).map_err(|e| format!("{}: {e}", golden.display()))?;
        return Ok(());
    }
    let want = std::fs::read_to_string(&golden)
        .map_err(|e| format!("{}: {e} (run with UPDATE_GOLDEN=1 to create it)", golden.display()))?;
    if got == want {
        Ok(())
    } else {
        Err(format!(
            "{} differs from its golden file:\n{}",
            input.display(),
            pretty_assertions::StrComparison::new(&want, &got)
        ))
    }
}

#[test]
fn translation_matches_the_golden_files() {
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(testdata())
        .expect("testdata directory")
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.extension().is_some_and(|e| e == "yaml") && !path.to_string_lossy().ends_with(".golden.yaml")
        })
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "no golden cases found");
    let failures: Vec<String> = inputs.iter().filter_map(|input| run_case(input).err()).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
