//! GRPCRoute rules → Kong routes.
//!
//! gRPC calls are HTTP/2 requests to `/<service>/<method>`, so a method match is a path match:
//! - `Exact` service and method: `http.path == "/svc/Method"`;
//! - `Exact` service only: `http.path ^= "/svc/"`;
//! - `Exact` method only: `http.path ~ "^(?:/[^/]+/Method)$"`;
//! - `RegularExpression`: `http.path ~ "^(?:/(?:svc)/(?:method))$"`, a missing side being
//!   `[^/]+`.
//!
//! Precedence (GRPCRoute `matches` doc): hostname as for HTTPRoute, then characters of the
//! service, then of the method (pattern lengths for regular expressions), then header matches.
//! Kong `protocols` are `grpc` (plain-text listeners, HTTP/2 without TLS) and/or `grpcs`; Kong
//! counts them as `http`/`https` for `net.protocol` and answers 415 to a non-gRPC request that
//! matches. Binding, parts, names (`grpcroute.<ns>.<name>.<rule>.<match>.<part>`), filters and
//! `strip_path: false` are as for HTTPRoute ([`super::http`]).

use std::sync::Arc;

use gateway_api::grpcroutes::{
    GrpcRouteRules, GrpcRouteRulesMatches, GrpcRouteRulesMatchesHeadersType, GrpcRouteRulesMatchesMethodType,
};

use super::RuleOutcome;
use super::attach::Attachment;
use super::backends::{Backends, ServiceProtocol};
use super::expression::{self as expr, ValueMatch, escape_regex};
use super::filters;
use super::http::{KongRouteInput, MatchTerms, Part, header_terms, kong_route, merge_resolved, parts};
use super::priority::{PathPrecedence, PendingRoute, fact};
use super::routes::{BackendRef, GrpcRoute, RouteView};
use super::validate::report_dropped;
use crate::plan::Verdict;

fn match_terms(m: &GrpcRouteRulesMatches) -> expr::Result<MatchTerms> {
    let mut terms = Vec::new();
    let mut path = PathPrecedence::Grpc { service: 0, method: 0 };
    if let Some(method) = &m.method {
        let service = method.service.as_deref().filter(|s| !s.is_empty());
        let name = method.method.as_deref().filter(|s| !s.is_empty());
        path = PathPrecedence::Grpc {
            service: fact(service.map_or(0, str::len)),
            method: fact(name.map_or(0, str::len)),
        };
        let regex = matches!(method.r#type, Some(GrpcRouteRulesMatchesMethodType::RegularExpression));
        let term = match (regex, service, name) {
            (_, None, None) => None,
            (false, Some(s), Some(n)) => Some(expr::path_exact(&format!("/{s}/{n}"))?),
            (false, Some(s), None) => Some(expr::path_starts_with(&format!("/{s}/"))?),
            (false, None, Some(n)) => Some(expr::path_regex(&format!("/[^/]+/{}", escape_regex(n)))?),
            (true, s, n) => Some(expr::path_regex(&format!(
                "/(?:{})/(?:{})",
                s.unwrap_or("[^/]+"),
                n.unwrap_or("[^/]+")
            ))?),
        };
        terms.extend(term);
    }
    let headers = header_terms(
        m.headers.iter().flatten().map(|h| {
            let value = match h.r#type {
                Some(GrpcRouteRulesMatchesHeadersType::RegularExpression) => ValueMatch::Regex(&h.value),
                _ => ValueMatch::Exact(&h.value),
            };
            (h.name.as_str(), value)
        }),
        &mut terms,
    )?;
    Ok(MatchTerms {
        terms,
        path,
        method: false,
        headers,
        queries: 0,
        prefix: None,
    })
}

pub fn translate(
    view: &RouteView,
    route: &Arc<GrpcRoute>,
    attachments: &[&Attachment],
    backends: &mut Backends<'_>,
) -> RuleOutcome {
    let tags = super::tags::of(&view.tag_source());
    let mut out = RuleOutcome::default();
    let rule_parts = match parts(attachments, false) {
        Ok(parts) => parts,
        Err(e) => {
            report_dropped(&mut out, &[e.0]);
            return out;
        }
    };
    let default_rules;
    let rules: &[GrpcRouteRules] = match route.spec.rules.as_deref() {
        Some(rules) => rules,
        None => {
            default_rules = [GrpcRouteRules::default()];
            &default_rules
        }
    };
    let mut problems = Vec::new();
    for (index, rule) in rules.iter().enumerate() {
        match translate_rule(view, index, rule, &rule_parts, &tags, backends, &mut out.resolved_refs) {
            Ok(routes) => out.routes.extend(routes),
            Err(problem) => problems.push(format!("Rule {index}: {problem}")),
        }
    }
    report_dropped(&mut out, &problems);
    out
}

fn translate_rule(
    view: &RouteView,
    index: usize,
    rule: &GrpcRouteRules,
    rule_parts: &[Part],
    tags: &[String],
    backends: &mut Backends<'_>,
    resolved: &mut Verdict,
) -> Result<Vec<PendingRoute>, String> {
    let filters = filters::grpc_rule(rule.filters.as_deref().unwrap_or_default(), tags)?;
    let refs = rule.backend_refs.as_deref().unwrap_or_default();
    if refs.iter().any(|r| r.filters.as_ref().is_some_and(|f| !f.is_empty())) {
        return Err("filters on a backendRef are not supported; put them on the rule".to_string());
    }
    let default_match = [GrpcRouteRulesMatches::default()];
    let matches = rule
        .matches
        .as_deref()
        .filter(|m| !m.is_empty())
        .unwrap_or(&default_match);
    let matches: Vec<MatchTerms> = matches
        .iter()
        .map(match_terms)
        .collect::<expr::Result<_>>()
        .map_err(|e| e.0)?;
    let refs: Vec<BackendRef> = refs.iter().map(|r| crate::backend_ref_of!(r)).collect();
    let resolved_backends = backends.resolve(view, &refs, ServiceProtocol::Grpc);
    merge_resolved(resolved, resolved_backends.resolved_refs);
    let service = resolved_backends.service;
    let mut routes = Vec::with_capacity(matches.len() * rule_parts.len());
    for (match_index, terms) in matches.iter().enumerate() {
        for (part_index, part) in rule_parts.iter().enumerate() {
            let mut plugins = filters.plugins.clone();
            if service.is_none() {
                plugins.push(filters::no_backend(503, tags));
            }
            routes.push(kong_route(KongRouteInput {
                view,
                kind: "grpcroute",
                rule: index,
                match_index,
                part_index,
                part,
                protocols: part.protocols("grpc", "grpcs"),
                terms,
                plugins,
                service: service.clone(),
                tags,
            }));
        }
    }
    Ok(routes)
}

#[cfg(test)]
mod tests {
    use super::super::router_tests::{listener, translate_grpc};
    use crate::plan::ListenerProtocol;

    #[test]
    fn grpc_routes_are_named_by_kind_and_answer_unavailable_without_a_backend() {
        let outcome = translate_grpc(
            r#"
metadata: {name: svc, namespace: default}
spec:
  rules:
  - matches: [{method: {service: pkg.Svc, method: Get}, headers: [{name: x-a, value: "1"}]}]
    backendRefs: [{name: missing, port: 80}]
"#,
            &[listener("grpcs", 443, ListenerProtocol::Https, &[])],
        );
        let route = &outcome.routes[0];
        assert_eq!(route.route.name, "grpcroute.default.svc.0.0.0");
        assert_eq!(route.route.protocols, ["grpcs"]);
        assert_eq!(
            route.route.expression,
            r#"net.dst.port == 443 && http.path == "/pkg.Svc/Get" && http.headers.x_a == "1""#
        );
        assert_eq!(route.route.plugins[0].name, "request-termination");
        assert_eq!(route.route.plugins[0].config["status_code"], 503);
        assert_eq!(route.precedence.headers, 1);
    }

    #[test]
    fn a_grpc_rule_without_matches_matches_every_call() {
        let outcome = translate_grpc(
            "metadata: {name: all, namespace: default}\nspec:\n  rules:\n  - backendRefs: [{name: echo, port: 80}]",
            &[listener("h2c", 80, ListenerProtocol::Http, &[])],
        );
        assert_eq!(outcome.routes[0].route.expression, "net.dst.port == 80");
        assert_eq!(outcome.routes[0].route.protocols, ["grpc"]);
    }

    #[test]
    fn grpc_request_mirror_is_reported() {
        let outcome = translate_grpc(
            r#"
metadata: {name: m, namespace: default}
spec:
  rules:
  - filters: [{type: RequestMirror, requestMirror: {backendRef: {name: echo, port: 80}}}]
    backendRefs: [{name: echo, port: 80}]
"#,
            &[listener("h2c", 80, ListenerProtocol::Http, &[])],
        );
        assert!(
            outcome
                .accepted_problem
                .expect("refused")
                .message
                .contains("RequestMirror")
        );
    }
}
