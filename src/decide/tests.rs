//! Decide tests: a snapshot from YAML in, the outcome's effects compared with a reviewed,
//! readable summary. Each case is a folder under `testdata/` named after the rule it
//! checks: `objects.yaml` (Kubernetes objects), optional `case.yaml` (what the caches
//! would add: live data plane, managed objects, a refusal), `outcome.golden.yaml`.
//! `UPDATE_GOLDEN=1 cargo test --lib decide::` rewrites the golden files.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus};
use k8s_openapi::api::core::v1::{Service, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::*;
use crate::objects::Objects;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CaseFacts {
    #[serde(default)]
    managed: Vec<CaseManaged>,
    /// The Kong Deployment has an available replica.
    #[serde(default)]
    deployment_available: bool,
    /// Cluster IP of the live proxy Service.
    #[serde(default)]
    proxy_cluster_ip: Option<String>,
    #[serde(default)]
    refused: Option<String>,
    #[serde(default)]
    bundle_version: Option<String>,
    /// Every Kong pod runs the config decided (the push reported it).
    #[serde(default)]
    pushed: bool,
    /// Objects whose Kong entities Kong rejected, with its message (implies `pushed`).
    #[serde(default)]
    rejected: Vec<CaseRejected>,
    /// Kong pods: `name: running current config?` (implies `pushed`).
    #[serde(default)]
    pods: BTreeMap<String, bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CaseRejected {
    kind: String,
    namespace: String,
    name: String,
    message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CaseManaged {
    kind: String,
    namespace: String,
    name: String,
    class_label: String,
}

#[derive(Serialize, PartialEq, Debug)]
struct Summary {
    finalizer: String,
    data_plane: Option<DataPlaneSummary>,
    prune: Vec<String>,
    class: StatusSummary,
    gateways: BTreeMap<String, GatewaySummary>,
    routes: BTreeMap<String, RouteSummary>,
}

#[derive(Serialize, PartialEq, Debug)]
struct RouteSummary {
    changed: bool,
    /// `controllerName parentRef-name: conditions`.
    parents: Vec<String>,
    events: Vec<String>,
}

#[derive(Serialize, PartialEq, Debug)]
struct DataPlaneSummary {
    namespace: String,
    deployment: String,
    admin_secret_written: bool,
    proxy_listen: String,
    stream_listen: String,
    proxy_service_ports: Vec<String>,
}

#[derive(Serialize, PartialEq, Debug)]
struct StatusSummary {
    changed: bool,
    conditions: Vec<String>,
}

#[derive(Serialize, PartialEq, Debug)]
struct GatewaySummary {
    changed: bool,
    conditions: Vec<String>,
    addresses: Vec<String>,
    listeners: BTreeMap<String, ListenerSummary>,
    events: Vec<String>,
}

#[derive(Serialize, PartialEq, Debug)]
struct ListenerSummary {
    attached_routes: i32,
    conditions: Vec<String>,
}

fn condition_line(c: &Condition) -> String {
    format!("{}={} {}: {}", c.type_, c.status, c.reason, c.message)
}

fn fixed_now() -> Time {
    Time(Timestamp::from_second(1_800_000_000).expect("valid timestamp"))
}

fn summarize(outcome: &Outcome) -> Summary {
    let finalizer = match &outcome.finalizer {
        None => "unchanged".to_string(),
        Some(FinalizerChange::Add(list)) => format!("add (finalizers become {list:?})"),
        Some(FinalizerChange::Remove(list)) => format!("remove (finalizers become {list:?})"),
    };
    let data_plane = outcome.data_plane.as_ref().map(|d| DataPlaneSummary {
        namespace: outcome.names.namespace.clone(),
        deployment: outcome.names.deployment.clone(),
        admin_secret_written: d.admin_secret.is_some(),
        proxy_listen: d.proxy_listen.clone(),
        stream_listen: d.stream_listen.clone(),
        proxy_service_ports: d
            .proxy_service
            .iter()
            .flat_map(|s| s.spec.iter().flat_map(|spec| spec.ports.iter().flatten()))
            .map(|p| {
                format!(
                    "{} {}/{}",
                    p.name.clone().unwrap_or_default(),
                    p.port,
                    p.protocol.clone().unwrap_or_default()
                )
            })
            .collect(),
    });
    let prune = outcome
        .prune
        .iter()
        .map(|m| format!("{:?} {}", m.kind, m.key))
        .collect();
    let class = StatusSummary {
        changed: outcome.class_status.changed,
        conditions: outcome.class_status.conditions.iter().map(condition_line).collect(),
    };
    let gateways = outcome
        .gateway_statuses
        .iter()
        .map(|w| {
            let status = &w.status;
            let listeners = status
                .listeners
                .iter()
                .flatten()
                .map(|l| {
                    (
                        l.name.clone(),
                        ListenerSummary {
                            attached_routes: l.attached_routes,
                            conditions: l.conditions.iter().map(condition_line).collect(),
                        },
                    )
                })
                .collect();
            (
                crate::api::ObjectKey::of(w.gateway.as_ref()).to_string(),
                GatewaySummary {
                    changed: w.changed,
                    conditions: status.conditions.iter().flatten().map(condition_line).collect(),
                    addresses: status.addresses.iter().flatten().map(|a| a.value.clone()).collect(),
                    listeners,
                    events: w
                        .events
                        .iter()
                        .map(|e| {
                            format!(
                                "{} {}: {}",
                                if e.warning { "Warning" } else { "Normal" },
                                e.reason,
                                e.note
                            )
                        })
                        .collect(),
                },
            )
        })
        .collect();
    let routes = outcome
        .route_statuses
        .iter()
        .map(|w| {
            let parents = w.status["parents"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| {
                    let conditions: Vec<String> = p["conditions"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|c| {
                            format!(
                                "{}={} {}: {}",
                                c["type"].as_str().unwrap_or(""),
                                c["status"].as_str().unwrap_or(""),
                                c["reason"].as_str().unwrap_or(""),
                                c["message"].as_str().unwrap_or("")
                            )
                        })
                        .collect();
                    format!(
                        "{} {}: {}",
                        p["controllerName"].as_str().unwrap_or(""),
                        p["parentRef"]["name"].as_str().unwrap_or(""),
                        conditions.join(" | ")
                    )
                })
                .collect();
            (
                w.route.route.to_string(),
                RouteSummary {
                    changed: w.changed,
                    parents,
                    events: w
                        .events
                        .iter()
                        .map(|e| {
                            format!(
                                "{} {}: {}",
                                if e.warning { "Warning" } else { "Normal" },
                                e.reason,
                                e.note
                            )
                        })
                        .collect(),
                },
            )
        })
        .collect();
    Summary {
        finalizer,
        data_plane,
        prune,
        class,
        gateways,
        routes,
    }
}

fn run_case(dir: &Path) -> Summary {
    let read = |name: &str| std::fs::read_to_string(dir.join(name));
    let mut objects = Objects::default();
    let text = read("objects.yaml").expect("objects.yaml");
    objects.add_yaml("objects.yaml", &text).expect("objects.yaml loads");
    let facts: CaseFacts = match read("case.yaml") {
        Ok(text) => serde_yaml_ng::from_str(&text).expect("case.yaml matches CaseFacts"),
        Err(_) => CaseFacts::default(),
    };
    let class = choose_class(&objects, None).expect("one kongress class");
    let class_name = class.metadata.name.clone().unwrap_or_default();
    let gateways: Vec<_> = objects
        .gateways
        .iter()
        .filter(|g| g.spec.gateway_class_name == class_name)
        .cloned()
        .collect();
    let proxies = |key: &ObjectKey| objects.proxies.get(key).cloned();
    let deployment = facts.deployment_available.then(|| {
        Arc::new(Deployment {
            status: Some(DeploymentStatus {
                available_replicas: Some(1),
                ..Default::default()
            }),
            ..Default::default()
        })
    });
    let proxy_service = facts.proxy_cluster_ip.as_ref().map(|ip| {
        Arc::new(Service {
            spec: Some(ServiceSpec {
                cluster_ip: Some(ip.clone()),
                ..Default::default()
            }),
            ..Default::default()
        })
    });
    let managed: Vec<ManagedObject> = facts
        .managed
        .iter()
        .map(|m| ManagedObject {
            kind: match m.kind.as_str() {
                "Deployment" => ManagedKind::Deployment,
                "Service" => ManagedKind::Service,
                "Secret" => ManagedKind::Secret,
                other => panic!("unknown managed kind {other}"),
            },
            key: ObjectKey::new(&m.namespace, &m.name),
            class_label: m.class_label.clone(),
            deleting: false,
        })
        .collect();
    let gateway_class_of = |key: &ObjectKey| {
        objects
            .gateways
            .iter()
            .find(|g| &ObjectKey::of(g.as_ref()) == key)
            .map(|g| g.spec.gateway_class_name.clone())
    };
    let snapshot = |push: Option<crate::kong::PushState>| ClassSnapshot {
        class: &class,
        operator_namespace: "kongress-system",
        proxies: &proxies,
        crds: vec![crate::status::InstalledCrd {
            name: "gateways.gateway.networking.k8s.io".into(),
            bundle_version: Some(
                facts
                    .bundle_version
                    .clone()
                    .unwrap_or_else(|| ASSUMED_BUNDLE_VERSION.into()),
            ),
        }],
        gateways: gateways.clone(),
        routes: &objects.routes,
        services: &objects.services,
        endpoint_slices: &objects.endpoint_slices,
        secrets: &objects,
        grants: &objects.grants,
        namespaces: &objects.namespaces,
        live: LiveDataPlane {
            deployment: deployment.clone(),
            proxy_service: proxy_service.clone(),
        },
        admin_tls: AdminTls {
            data: BTreeMap::new(),
            issued: true,
        },
        managed: managed.clone(),
        refused: facts.refused.clone(),
        push,
        gateway_class_of: &gateway_class_of,
        now: fixed_now(),
    };
    let mut outcome = decide(&snapshot(None));
    if facts.pushed || !facts.rejected.is_empty() || !facts.pods.is_empty() {
        // What the push loop reports for the decided config.
        let config = std::sync::Arc::new(outcome.translation.config.clone());
        outcome = decide(&snapshot(Some(crate::kong::PushState {
            desired: Some(config),
            desired_hash: Some("h".into()),
            serving: if facts.rejected.is_empty() {
                crate::kong::Serving::Desired
            } else {
                crate::kong::Serving::Fallback
            },
            target_hash: Some("h".into()),
            pods: facts
                .pods
                .iter()
                .map(|(pod, current)| crate::kong::PodPushState {
                    pod: pod.clone(),
                    ready: true,
                    running_hash: Some(if *current { "h" } else { "old" }.into()),
                    last_error: (!current).then(|| "connection refused".into()),
                })
                .collect(),
            rejected: facts
                .rejected
                .iter()
                .map(|r| crate::kong::RejectedObject {
                    source: crate::translate::tags::TaggedSource {
                        group: crate::api::GATEWAY_API_GROUP.into(),
                        kind: r.kind.clone(),
                        key: ObjectKey::new(&r.namespace, &r.name),
                    },
                    messages: vec![r.message.clone()],
                })
                .collect(),
            config_error: None,
        })));
    }
    summarize(&outcome)
}

#[test]
fn decide_cases_match_their_golden_outcomes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/decide/testdata");
    let mut cases: Vec<_> = std::fs::read_dir(&root)
        .expect("testdata exists")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no decide cases found");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut failures = Vec::new();
    for case in &cases {
        let actual = serde_yaml_ng::to_string(&run_case(case)).expect("summary encodes");
        let golden = case.join("outcome.golden.yaml");
        if update {
            std::fs::write(&golden, &actual).expect("golden written");
            continue;
        }
        let expected = std::fs::read_to_string(&golden).unwrap_or_default();
        if expected != actual {
            failures.push(format!(
                "{}:\n{}",
                case.display(),
                pretty_assertions::StrComparison::new(&expected, &actual)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "outcomes differ from golden files:\n{}",
        failures.join("\n")
    );
}

#[test]
fn decide_is_independent_of_input_order() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/decide/testdata/two-gateways-share-http-80");
    let forward = run_case(&root);
    // Same objects, documents reversed.
    let text = std::fs::read_to_string(root.join("objects.yaml")).expect("objects");
    let mut documents: Vec<&str> = text.split("\n---\n").collect();
    documents.reverse();
    let reversed_dir = std::env::temp_dir().join(format!("kongress-decide-order-{}", std::process::id()));
    std::fs::create_dir_all(&reversed_dir).expect("temp dir");
    std::fs::write(reversed_dir.join("objects.yaml"), documents.join("\n---\n")).expect("write");
    let backward = run_case(&reversed_dir);
    std::fs::remove_dir_all(&reversed_dir).ok();
    assert_eq!(forward, backward);
}

#[test]
fn class_status_lists_the_supported_features_and_is_rewritten_only_when_they_differ() {
    use gateway_api::gatewayclasses::{GatewayClassSpec, GatewayClassStatus, GatewayClassStatusSupportedFeatures};
    let verdict = ClassVerdict {
        invalid_parameters: None,
        versions: crd_versions(&[InstalledCrd {
            name: "gateways.gateway.networking.k8s.io".into(),
            bundle_version: Some("v1.5.1".into()),
        }]),
    };
    let mut class = GatewayClass::new(
        "kongress",
        GatewayClassSpec {
            controller_name: CONTROLLER_NAME.into(),
            description: None,
            parameters_ref: None,
        },
    );
    class.metadata.generation = Some(1);

    let first = class_status(&class, &verdict, &[], &fixed_now());
    assert!(first.changed);
    assert_eq!(first.supported_features, SUPPORTED_FEATURES);

    let listed = |names: &[&str]| {
        names
            .iter()
            .map(|name| GatewayClassStatusSupportedFeatures { name: (*name).into() })
            .collect::<Vec<_>>()
    };
    class.status = Some(GatewayClassStatus {
        conditions: Some(first.conditions.clone()),
        supported_features: Some(listed(&SUPPORTED_FEATURES[1..])),
    });
    assert!(
        class_status(&class, &verdict, &[], &fixed_now()).changed,
        "a class missing a feature is rewritten"
    );

    class.status = Some(GatewayClassStatus {
        conditions: Some(first.conditions.clone()),
        supported_features: Some(listed(SUPPORTED_FEATURES)),
    });
    assert!(!class_status(&class, &verdict, &[], &fixed_now()).changed);
}
