//! The fallback configuration: the decided config without the Kubernetes objects Kong
//! rejected, so every healthy route keeps serving while a broken one is reported.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::translate::KongConfig;
use crate::translate::kong::{Plugin, Route, RouteEntry, Service, Upstream};
use crate::translate::tags::{self, TaggedSource};

/// `config` without every entity tagged with one of `broken`, and without what would
/// dangle once they are gone: routes and plugins nested in a dropped service, targets in
/// a dropped upstream, SNIs of a dropped certificate, services whose upstream (`host`) or
/// client certificate was dropped.
pub fn without_sources(config: &KongConfig, broken: &BTreeSet<TaggedSource>) -> KongConfig {
    let is_broken = |entity_tags: &[String]| tags::parse(entity_tags).is_some_and(|source| broken.contains(&source));
    let keep_plugins =
        |plugins: &[Plugin]| -> Vec<Plugin> { plugins.iter().filter(|p| !is_broken(&p.tags)).cloned().collect() };
    let keep_routes = |routes: &[RouteEntry]| -> Vec<RouteEntry> {
        routes
            .iter()
            .filter(|r| !is_broken(&r.tags))
            .map(|r| {
                if r.plugins.iter().any(|p| is_broken(&p.tags)) {
                    let route = Route {
                        plugins: keep_plugins(&r.plugins),
                        ..Route::clone(r)
                    };
                    RouteEntry::new(route, r.priority)
                } else {
                    r.clone()
                }
            })
            .collect()
    };

    let mut dropped_certificates = BTreeSet::new();
    let certificates = config
        .certificates
        .iter()
        .filter(|c| {
            let drop = is_broken(&c.tags);
            if drop {
                dropped_certificates.insert(c.id.as_str());
            }
            !drop
        })
        .map(|c| {
            let mut c = c.clone();
            c.snis.retain(|sni| !is_broken(&sni.tags));
            c
        })
        .collect();
    let mut dropped_upstreams = BTreeSet::new();
    let upstreams = config
        .upstreams
        .iter()
        .filter(|u| {
            let drop = is_broken(&u.tags);
            if drop {
                dropped_upstreams.insert(u.name.as_str());
            }
            !drop
        })
        .map(|u| {
            if !u.targets.iter().any(|t| is_broken(&t.tags)) {
                return u.clone();
            }
            let mut u = Upstream::clone(u);
            u.targets.retain(|t| !is_broken(&t.tags));
            Arc::new(u)
        })
        .collect();
    let services = config
        .services
        .iter()
        .filter(|s| {
            !is_broken(&s.tags)
                && !dropped_upstreams.contains(s.host.as_str())
                && !s
                    .client_certificate
                    .as_ref()
                    .is_some_and(|c| dropped_certificates.contains(c.as_str()))
        })
        .map(|s| {
            Arc::new(Service {
                routes: keep_routes(&s.routes),
                plugins: keep_plugins(&s.plugins),
                ..Service::clone(s)
            })
        })
        .collect();
    KongConfig {
        format_version: config.format_version.clone(),
        services,
        routes: keep_routes(&config.routes),
        upstreams,
        certificates,
        ca_certificates: config
            .ca_certificates
            .iter()
            .filter(|c| !is_broken(&c.tags))
            .cloned()
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ObjectKey;
    use crate::translate::kong::{Certificate, Sni, Target};
    use crate::translate::tags::Source;

    fn tagged(kind: &str, name: &str) -> Vec<String> {
        let group = if kind == "Service" || kind == "Secret" {
            ""
        } else {
            "gateway.networking.k8s.io"
        };
        tags::of(&Source {
            group,
            version: "v1",
            kind,
            key: &ObjectKey::new("shop", name),
        })
    }

    fn source(kind: &str, name: &str) -> TaggedSource {
        tags::parse(&tagged(kind, name)).expect("complete tags")
    }

    fn route(name: &str, owner: &str) -> RouteEntry {
        let route = Route {
            name: name.into(),
            tags: tagged("HTTPRoute", owner),
            ..Route::default()
        };
        RouteEntry::new(route, 1)
    }

    fn config() -> KongConfig {
        KongConfig {
            services: [
                Service {
                    name: "cart".into(),
                    host: "cart.upstream".into(),
                    tags: tagged("HTTPRoute", "cart"),
                    routes: vec![route("cart.0", "cart")],
                    ..Service::default()
                },
                Service {
                    name: "shared".into(),
                    host: "shared.upstream".into(),
                    tags: tagged("Service", "shared"),
                    routes: vec![route("a.0", "a"), route("b.0", "b")],
                    plugins: vec![Plugin {
                        name: "request-transformer".into(),
                        tags: tagged("HTTPRoute", "b"),
                        ..Plugin::default()
                    }],
                    ..Service::default()
                },
                Service {
                    name: "mtls".into(),
                    host: "mtls.upstream".into(),
                    tags: tagged("HTTPRoute", "m"),
                    client_certificate: Some("cert-1".into()),
                    routes: vec![route("m.0", "m")],
                    ..Service::default()
                },
            ]
            .map(Arc::new)
            .into(),
            routes: vec![route("redirect.0", "redirect")],
            upstreams: [
                Upstream {
                    name: "cart.upstream".into(),
                    tags: tagged("Service", "cart"),
                    targets: vec![Target {
                        target: "10.0.0.1:80".into(),
                        weight: 1,
                        tags: tagged("Service", "cart"),
                    }],
                    ..Upstream::default()
                },
                Upstream {
                    name: "shared.upstream".into(),
                    tags: tagged("Service", "shared"),
                    ..Upstream::default()
                },
            ]
            .map(Arc::new)
            .into(),
            certificates: vec![Certificate {
                id: "cert-1".into(),
                tags: tagged("Secret", "client"),
                snis: vec![Sni {
                    name: "a.example.com".into(),
                    tags: tagged("Secret", "client"),
                }],
                ..Certificate::default()
            }],
            ..KongConfig::empty()
        }
    }

    fn route_names(config: &KongConfig) -> Vec<String> {
        let nested = config.services.iter().flat_map(|s| s.routes.iter());
        nested.chain(config.routes.iter()).map(|r| r.name.clone()).collect()
    }

    #[test]
    fn no_broken_source_keeps_the_config_unchanged() {
        assert_eq!(without_sources(&config(), &BTreeSet::new()), config());
    }

    #[test]
    fn broken_route_loses_its_routes_and_plugins_only() {
        let fallback = without_sources(&config(), &BTreeSet::from([source("HTTPRoute", "b")]));
        assert_eq!(route_names(&fallback), ["cart.0", "a.0", "m.0", "redirect.0"]);
        assert!(fallback.services[1].plugins.is_empty());
        assert_eq!(fallback.services.len(), 3);
    }

    #[test]
    fn broken_service_takes_its_nested_routes_with_it() {
        let fallback = without_sources(&config(), &BTreeSet::from([source("HTTPRoute", "cart")]));
        assert_eq!(route_names(&fallback), ["a.0", "b.0", "m.0", "redirect.0"]);
    }

    #[test]
    fn dropped_upstream_drops_the_services_that_send_to_it() {
        let fallback = without_sources(&config(), &BTreeSet::from([source("Service", "cart")]));
        assert_eq!(fallback.upstreams.len(), 1);
        assert!(fallback.services.iter().all(|s| s.name != "cart"));
    }

    #[test]
    fn dropped_certificate_drops_the_services_presenting_it() {
        let fallback = without_sources(&config(), &BTreeSet::from([source("Secret", "client")]));
        assert!(fallback.certificates.is_empty());
        assert!(fallback.services.iter().all(|s| s.name != "mtls"));
    }

    #[test]
    fn serviceless_routes_are_filtered_too() {
        let fallback = without_sources(&config(), &BTreeSet::from([source("HTTPRoute", "redirect")]));
        assert!(fallback.routes.is_empty());
    }
}
