//! HTTPRoute rules → Kong routes.
//!
//! Each match of each rule (no match list = one `PathPrefix /` match) becomes one Kong route
//! per *part*: the attachments of the route split by hostname class, so one Kong route never
//! mixes hostnames of different precedence ([`parts`]). A Kong route is bound to its part:
//! `(net.dst.port == 80 && (host…)) || (net.dst.port == 8080 && …)`, attachments that share a
//! hostname set grouped together, and its match conditions follow:
//! `binding && path && method && headers && queries`.
//!
//! Listener isolation: a hostname the route matches on a listener loses the hostnames more
//! specific listeners on that port claim (`Attachment::more_specific`): `(lower(http.host) =^
//! ".example.com" && !(lower(http.host) == "foo.example.com"))`, or no host at all but
//! `!(lower(http.host) == "foo.example.com")` on a listener without hostname; a hostname they
//! claim entirely is left out. Precedence is unchanged: it only orders routes that remain.
//!
//! Route settings Gateway API needs: `strip_path: false` (Kong strips the matched prefix by
//! default), `preserve_host: true` (Kong sends the upstream's host by default; a `URLRewrite`
//! hostname sets Host through request-transformer, which Kong keeps over retries).
//! `protocols` lists `http` and/or `https` after the listeners: Kong then adds
//! `net.protocol == …` for `["http", "https"]` or `["http"]`, and nothing for `["https"]`
//! alone (it keeps that case for its own HTTPS redirect, answering 426 when a trusted proxy's
//! `X-Forwarded-Proto` says `http`); the port binding already confines the route to its
//! listeners either way.
//!
//! Names: `httproute.<namespace>.<name>.<rule>.<match>.<part>` — unique (a namespace has no
//! `.`, and the three numbers are always there), stable, and of Kong's name characters.
//!
//! Timeouts: Kong has no deadline for a whole request, only per-service connect/read/write
//! timeouts (each a bound between two operations, not a total). `backendRequest` (else
//! `request`) sets all three on a variant of the rule's service; `0s` means Kong's largest
//! value. So `request` bounds each backend operation rather than the whole exchange.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use gateway_api::httproutes::{
    HttpRouteRules, HttpRouteRulesMatches, HttpRouteRulesMatchesHeadersType, HttpRouteRulesMatchesMethod,
    HttpRouteRulesMatchesPathType, HttpRouteRulesMatchesQueryParamsType, HttpRouteRulesTimeouts,
};

use super::RuleOutcome;
use super::attach::{Attachment, Hostnames};
use super::backends::{Backends, ServiceProtocol, ServiceTimeouts};
use super::expression::{self as expr, Term, ValueMatch};
use super::filters::{self, RedirectContext, RuleFilters};
use super::hostnames;
use super::kong;
use super::priority::{PathPrecedence, PendingRoute, Precedence, fact};
use super::routes::{BackendRef, HttpRoute, RouteView};
use super::validate::report_dropped;
use crate::plan::{ListenerProtocol, Verdict};

/// The attachments one Kong route per match is bound to.
#[derive(Clone, Debug)]
pub(super) struct Part {
    pub exact_host_len: u16,
    pub wildcard_host_len: u16,
    pub binding: Term,
    /// Whether plain-text and TLS listeners are among the attachments.
    pub plain: bool,
    pub tls: bool,
    /// The one non-wildcard hostname of the part, when that is all it matches.
    pub single_host: Option<String>,
    /// The listener port, when the part was split per listener.
    pub port: Option<u16>,
}

impl Part {
    /// Kong `protocols` for these listeners, given the names for plain text and TLS.
    pub fn protocols(&self, plain: &str, tls: &str) -> Vec<String> {
        let mut protocols = Vec::with_capacity(2);
        if self.plain {
            protocols.push(plain.to_string());
        }
        if self.tls {
            protocols.push(tls.to_string());
        }
        protocols
    }
}

/// Hostname class: (non-wildcard length, wildcard length); `(0, 0)` is any hostname.
type Class = (u16, u16);

/// A listener as far as a binding cares: (port, TLS?).
type Listener = (u16, bool);

/// One hostname a route matches on a listener (`name: None`: any), minus the hostnames
/// more specific listeners on that port claim (listener isolation; see [`super::attach`]).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct HostMatch<'a> {
    name: Option<&'a str>,
    except: Vec<&'a str>,
}

impl HostMatch<'_> {
    /// Any hostname, nothing excluded: no host condition at all.
    fn is_any(&self) -> bool {
        self.name.is_none() && self.except.is_empty()
    }
}

/// Host matches per listener.
type HostsByListener<'a> = BTreeMap<Listener, BTreeSet<HostMatch<'a>>>;

fn class_of(hostname: &str) -> Class {
    if hostname.starts_with("*.") {
        (0, fact(hostname.len()))
    } else {
        (fact(hostname.len()), 0)
    }
}

/// Splits attachments into parts: one per hostname class, most specific first, and, with
/// `per_listener`, one per listener within a class (a redirect's Location depends on it).
/// Attachments to listeners that are not HTTP or HTTPS are not HTTP routing and are skipped,
/// and so are hostnames a more specific listener on the same port claims entirely.
pub(super) fn parts<'a>(attachments: &[&'a Attachment], per_listener: bool) -> expr::Result<Vec<Part>> {
    let mut classes: BTreeMap<std::cmp::Reverse<Class>, HostsByListener<'a>> = BTreeMap::new();
    for attachment in attachments {
        let tls = match attachment.protocol {
            ListenerProtocol::Http => false,
            ListenerProtocol::Https => true,
            _ => continue,
        };
        let listener = (attachment.port, tls);
        let mut add = |name: Option<&'a str>| {
            let Some(except) = hostnames::isolate(name, &attachment.more_specific) else {
                return;
            };
            classes
                .entry(std::cmp::Reverse(name.map_or((0, 0), class_of)))
                .or_default()
                .entry(listener)
                .or_default()
                .insert(HostMatch { name, except });
        };
        match &attachment.hostnames {
            Hostnames::Any => add(None),
            Hostnames::Only(hostnames) => hostnames.iter().for_each(|h| add(Some(h))),
        }
    }
    let mut parts = Vec::new();
    for (std::cmp::Reverse((exact_host_len, wildcard_host_len)), listeners) in classes {
        if per_listener {
            for (&(port, tls), hosts) in &listeners {
                let one = BTreeMap::from([((port, tls), hosts.clone())]);
                parts.push(part(exact_host_len, wildcard_host_len, &one, Some(port))?);
            }
        } else {
            parts.push(part(exact_host_len, wildcard_host_len, &listeners, None)?);
        }
    }
    Ok(parts)
}

fn part(
    exact_host_len: u16,
    wildcard_host_len: u16,
    listeners: &HostsByListener<'_>,
    port: Option<u16>,
) -> expr::Result<Part> {
    // Ports first (an HTTP and an HTTPS listener never share one, but two listeners with
    // different hostnames may), then ports grouped by identical host matches. A port that
    // takes any host takes nothing narrower.
    let mut by_port: BTreeMap<u16, BTreeSet<&HostMatch<'_>>> = BTreeMap::new();
    for (&(port, _), hosts) in listeners {
        by_port.entry(port).or_default().extend(hosts.iter());
    }
    let mut by_hosts: BTreeMap<Vec<&HostMatch<'_>>, Vec<u16>> = BTreeMap::new();
    for (port, hosts) in by_port {
        let hosts: Vec<&HostMatch<'_>> = match hosts.iter().find(|h| h.is_any()) {
            Some(any) => vec![*any],
            None => hosts.into_iter().collect(),
        };
        by_hosts.entry(hosts).or_default().push(port);
    }
    let mut groups = Vec::with_capacity(by_hosts.len());
    for (hosts, ports) in &by_hosts {
        let ports = expr::any(ports.iter().map(|&p| expr::port(p)).collect());
        let mut host_terms = Vec::with_capacity(hosts.len());
        for host in hosts {
            match expr::host_except(host.name, &host.except)? {
                Some(term) => host_terms.push(term),
                // Any host: no host condition for these ports.
                None => {
                    host_terms.clear();
                    break;
                }
            }
        }
        let hosts = expr::any(host_terms);
        groups.extend(expr::all(ports.into_iter().chain(hosts).collect()));
    }
    let binding = expr::any(groups).ok_or_else(|| expr::Unsupported("no listener to bind to".to_string()))?;
    let all_hosts: BTreeSet<&str> = listeners.values().flatten().filter_map(|h| h.name).collect();
    let single_host = match (exact_host_len, all_hosts.len()) {
        (1.., 1) => all_hosts.first().map(|h| h.to_string()),
        _ => None,
    };
    Ok(Part {
        exact_host_len,
        wildcard_host_len,
        binding,
        plain: listeners.keys().any(|&(_, tls)| !tls),
        tls: listeners.keys().any(|&(_, tls)| tls),
        single_host,
        port,
    })
}

/// One match as expression terms with its precedence facts.
#[derive(Clone, Debug)]
pub(super) struct MatchTerms {
    /// Path, method, headers, queries, in that order (the binding goes first).
    pub terms: Vec<Term>,
    pub path: PathPrecedence,
    pub method: bool,
    pub headers: u16,
    pub queries: u16,
    /// The `PathPrefix` value (for prefix redirects).
    pub prefix: Option<String>,
}

/// Header matches: the first of equivalent (case-insensitive) names counts, later ones are
/// ignored, as the spec demands.
pub(super) fn header_terms<'a>(
    headers: impl Iterator<Item = (&'a str, ValueMatch<'a>)>,
    terms: &mut Vec<Term>,
) -> expr::Result<u16> {
    let mut seen: Vec<String> = Vec::new();
    for (name, value) in headers {
        let lower = name.to_ascii_lowercase();
        if seen.contains(&lower) {
            continue;
        }
        seen.push(lower);
        terms.push(expr::header(name, value)?);
    }
    Ok(fact(seen.len()))
}

fn method_name(method: &HttpRouteRulesMatchesMethod) -> &'static str {
    match method {
        HttpRouteRulesMatchesMethod::Get => "GET",
        HttpRouteRulesMatchesMethod::Head => "HEAD",
        HttpRouteRulesMatchesMethod::Post => "POST",
        HttpRouteRulesMatchesMethod::Put => "PUT",
        HttpRouteRulesMatchesMethod::Delete => "DELETE",
        HttpRouteRulesMatchesMethod::Connect => "CONNECT",
        HttpRouteRulesMatchesMethod::Options => "OPTIONS",
        HttpRouteRulesMatchesMethod::Trace => "TRACE",
        HttpRouteRulesMatchesMethod::Patch => "PATCH",
    }
}

fn match_terms(m: &HttpRouteRulesMatches, capture_prefix: bool) -> expr::Result<MatchTerms> {
    let mut terms = Vec::new();
    let (kind, value) = match &m.path {
        None => (HttpRouteRulesMatchesPathType::PathPrefix, "/"),
        Some(p) => (
            p.r#type.clone().unwrap_or(HttpRouteRulesMatchesPathType::PathPrefix),
            p.value.as_deref().unwrap_or("/"),
        ),
    };
    let mut prefix = None;
    let path = match kind {
        HttpRouteRulesMatchesPathType::Exact => {
            terms.push(expr::path_exact(value)?);
            PathPrecedence::Exact(fact(value.len()))
        }
        HttpRouteRulesMatchesPathType::PathPrefix => {
            prefix = Some(value.to_string());
            if capture_prefix {
                terms.push(expr::path_prefix_capturing(value)?);
            } else {
                terms.extend(expr::path_prefix(value)?);
            }
            match expr::normalized_prefix(value) {
                Some(p) => PathPrecedence::Prefix(fact(p.len())),
                None => PathPrecedence::None,
            }
        }
        HttpRouteRulesMatchesPathType::RegularExpression => {
            terms.push(expr::path_regex(value)?);
            PathPrecedence::Regex(fact(value.len()))
        }
    };
    let method = m.method.as_ref().map(method_name);
    if let Some(method) = method {
        terms.push(expr::method(method)?);
    }
    let headers = header_terms(
        m.headers.iter().flatten().map(|h| {
            let value = match h.r#type {
                Some(HttpRouteRulesMatchesHeadersType::RegularExpression) => ValueMatch::Regex(&h.value),
                _ => ValueMatch::Exact(&h.value),
            };
            (h.name.as_str(), value)
        }),
        &mut terms,
    )?;
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    for q in m.query_params.iter().flatten() {
        if !seen.insert(q.name.as_str()) {
            continue;
        }
        let value = match q.r#type {
            Some(HttpRouteRulesMatchesQueryParamsType::RegularExpression) => ValueMatch::Regex(&q.value),
            _ => ValueMatch::Exact(&q.value),
        };
        terms.push(expr::query(&q.name, value)?);
    }
    Ok(MatchTerms {
        terms,
        path,
        method: method.is_some(),
        headers,
        queries: fact(seen.len()),
        prefix,
    })
}

/// Everything a Kong route of one (rule, match, part) is made of.
pub(super) struct KongRouteInput<'a> {
    pub view: &'a RouteView,
    /// `httproute` or `grpcroute`.
    pub kind: &'a str,
    pub rule: usize,
    pub match_index: usize,
    pub part_index: usize,
    pub part: &'a Part,
    pub protocols: Vec<String>,
    pub terms: &'a MatchTerms,
    pub plugins: Vec<kong::Plugin>,
    pub service: Option<String>,
    pub tags: &'a [String],
}

pub(super) fn kong_route(input: KongRouteInput<'_>) -> PendingRoute {
    let KongRouteInput {
        view,
        kind,
        rule,
        match_index,
        part_index,
        part,
        protocols,
        terms,
        mut plugins,
        service,
        tags,
    } = input;
    plugins.sort_by(|a, b| a.name.cmp(&b.name));
    let key = &view.route.key;
    PendingRoute {
        service,
        route: kong::Route {
            name: format!(
                "{kind}.{}.{}.{rule}.{match_index}.{part_index}",
                key.namespace, key.name
            ),
            protocols,
            expression: expr::expression(std::iter::once(&part.binding).chain(&terms.terms)),
            strip_path: Some(false),
            preserve_host: Some(true),
            https_redirect_status_code: None,
            tags: tags.to_vec(),
            plugins,
        },
        precedence: Precedence {
            exact_host_len: part.exact_host_len,
            wildcard_host_len: part.wildcard_host_len,
            path: terms.path,
            method: terms.method,
            headers: terms.headers,
            queries: terms.queries,
            created: view.created,
            route: view.route.clone(),
            rule: u32::try_from(rule).unwrap_or(u32::MAX),
            match_index: u32::try_from(match_index).unwrap_or(u32::MAX),
        },
    }
}

/// `ResolvedRefs` over all rules: the first failure's reason, every failure's message.
pub(super) fn merge_resolved(into: &mut Verdict, verdict: Verdict) {
    if verdict.ok {
        return;
    }
    if into.ok {
        *into = verdict;
    } else {
        into.message.push_str("; ");
        into.message.push_str(&verdict.message);
    }
}

/// Kong's largest timeout (`typedefs.timeout`: 0 to 2^31 − 2 ms).
const MAX_TIMEOUT_MS: u64 = (1 << 31) - 2;

fn timeouts(timeouts: Option<&HttpRouteRulesTimeouts>) -> Result<Option<ServiceTimeouts>, String> {
    let Some(t) = timeouts else {
        return Ok(None);
    };
    let Some(value) = t.backend_request.as_deref().or(t.request.as_deref()) else {
        return Ok(None);
    };
    let duration: gateway_api::Duration = value.parse().map_err(|e| format!("timeout {value:?}: {e}"))?;
    let ms = match duration.as_millis() {
        0 => MAX_TIMEOUT_MS,
        ms => u64::try_from(ms).unwrap_or(u64::MAX).min(MAX_TIMEOUT_MS),
    };
    Ok(Some(ServiceTimeouts {
        connect: ms,
        read: ms,
        write: ms,
    }))
}

/// The part a redirect plugin is written for.
fn redirect_context<'a>(part: &'a Part, terms: &'a MatchTerms) -> RedirectContext<'a> {
    RedirectContext {
        listener_scheme: if part.tls { "https" } else { "http" },
        listener_port: part.port.unwrap_or(if part.tls { 443 } else { 80 }),
        host: part.single_host.as_deref(),
        prefix: terms.prefix.as_deref(),
    }
}

/// Parts, computed once per route and kind of split.
struct Parts<'a> {
    attachments: &'a [&'a Attachment],
    shared: Option<expr::Result<Vec<Part>>>,
    per_listener: Option<expr::Result<Vec<Part>>>,
}

impl<'a> Parts<'a> {
    fn get(&mut self, per_listener: bool) -> Result<&[Part], String> {
        let slot = if per_listener {
            &mut self.per_listener
        } else {
            &mut self.shared
        };
        slot.get_or_insert_with(|| parts(self.attachments, per_listener))
            .as_deref()
            .map_err(|e| e.0.clone())
    }
}

pub fn translate(
    view: &RouteView,
    route: &Arc<HttpRoute>,
    attachments: &[&Attachment],
    backends: &mut Backends<'_>,
) -> RuleOutcome {
    let tags = super::tags::of(&view.tag_source());
    let mut out = RuleOutcome::default();
    let mut problems = Vec::new();
    let mut parts = Parts {
        attachments,
        shared: None,
        per_listener: None,
    };
    let default_rules;
    let rules: &[HttpRouteRules] = match route.spec.rules.as_deref() {
        Some(rules) => rules,
        None => {
            default_rules = [HttpRouteRules::default()];
            &default_rules
        }
    };
    for (index, rule) in rules.iter().enumerate() {
        match translate_rule(view, index, rule, &mut parts, &tags, backends, &mut out.resolved_refs) {
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
    rule: &HttpRouteRules,
    parts: &mut Parts<'_>,
    tags: &[String],
    backends: &mut Backends<'_>,
    resolved: &mut Verdict,
) -> Result<Vec<PendingRoute>, String> {
    let filters: RuleFilters = filters::http_rule(rule.filters.as_deref().unwrap_or_default(), tags)?;
    let refs = rule.backend_refs.as_deref().unwrap_or_default();
    if refs.iter().any(|r| r.filters.as_ref().is_some_and(|f| !f.is_empty())) {
        return Err("filters on a backendRef are not supported; put them on the rule".to_string());
    }
    let default_match = [HttpRouteRulesMatches::default()];
    let matches = rule
        .matches
        .as_deref()
        .filter(|m| !m.is_empty())
        .unwrap_or(&default_match);
    let capture = filters.captures_prefix;
    let matches: Vec<MatchTerms> = matches
        .iter()
        .map(|m| match_terms(m, capture))
        .collect::<expr::Result<_>>()
        .map_err(|e| e.0)?;
    if filters.replaces_prefix() && !(matches.len() == 1 && matches[0].prefix.is_some()) {
        return Err("ReplacePrefixMatch needs exactly one PathPrefix match in the rule".to_string());
    }
    let timeouts = timeouts(rule.timeouts.as_ref())?;
    let redirect = filters.redirect.as_ref();
    let rule_parts = parts.get(redirect.is_some())?;
    let service = if redirect.is_some() {
        None
    } else {
        let refs: Vec<BackendRef> = refs.iter().map(|r| crate::backend_ref_of!(r)).collect();
        let resolved_backends = backends.resolve(view, &refs, ServiceProtocol::Http);
        merge_resolved(resolved, resolved_backends.resolved_refs);
        match (resolved_backends.service, timeouts) {
            (Some(service), Some(t)) => Some(backends.with_timeouts(&service, t)),
            (service, _) => service,
        }
    };
    let mut routes = Vec::with_capacity(matches.len() * rule_parts.len());
    for (match_index, terms) in matches.iter().enumerate() {
        for (part_index, part) in rule_parts.iter().enumerate() {
            let mut plugins = filters.plugins.clone();
            match redirect {
                Some(r) => plugins.push(filters::redirect_plugin(r, redirect_context(part, terms), tags)),
                None if service.is_none() => plugins.push(filters::no_backend(500, tags)),
                None => {}
            }
            routes.push(kong_route(KongRouteInput {
                view,
                kind: "httproute",
                rule: index,
                match_index,
                part_index,
                part,
                protocols: part.protocols("http", "https"),
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
    use super::super::router_tests::{http80, listener, translate_http};
    use super::*;
    use crate::api::conditions::reasons;

    fn names(outcome: &RuleOutcome) -> Vec<&str> {
        outcome.routes.iter().map(|r| r.route.name.as_str()).collect()
    }

    fn plugin_names(route: &PendingRoute) -> Vec<&str> {
        route.route.plugins.iter().map(|p| p.name.as_str()).collect()
    }

    #[test]
    fn kong_routes_keep_the_client_path_and_host_and_carry_the_route_tags() {
        let outcome = translate_http(
            r#"
metadata: {name: shop, namespace: default}
spec:
  rules:
  - matches: [{path: {value: /cart}}, {path: {type: Exact, value: /}}]
    backendRefs: [{name: echo, port: 80}]
"#,
            &[http80()],
        );
        assert_eq!(
            names(&outcome),
            ["httproute.default.shop.0.0.0", "httproute.default.shop.0.1.0"]
        );
        for pending in &outcome.routes {
            let route = &pending.route;
            assert_eq!(route.strip_path, Some(false));
            assert_eq!(route.preserve_host, Some(true));
            assert_eq!(route.protocols, ["http"]);
            assert_eq!(
                route.tags,
                [
                    "k8s-name:shop",
                    "k8s-namespace:default",
                    "k8s-kind:HTTPRoute",
                    "k8s-group:gateway.networking.k8s.io",
                    "k8s-version:v1"
                ]
            );
            assert!(pending.service.is_some());
            assert!(route.plugins.is_empty());
        }
        assert_eq!(
            outcome.routes[0].route.expression,
            r#"net.dst.port == 80 && (http.path == "/cart" || http.path ^= "/cart/")"#
        );
        assert!(outcome.resolved_refs.ok);
    }

    #[test]
    fn a_route_without_rules_is_one_catch_all_rule_without_backends_answering_500() {
        let outcome = translate_http("metadata: {name: bare, namespace: default}\nspec: {}", &[http80()]);
        assert_eq!(names(&outcome), ["httproute.default.bare.0.0.0"]);
        let route = &outcome.routes[0];
        assert_eq!(route.service, None);
        assert_eq!(route.route.expression, "net.dst.port == 80");
        assert_eq!(plugin_names(route), ["request-termination"]);
        assert_eq!(route.route.plugins[0].config["status_code"], 500);
    }

    #[test]
    fn a_rule_whose_backends_do_not_resolve_answers_500_and_reports_resolved_refs() {
        let outcome = translate_http(
            r#"
metadata: {name: r, namespace: default}
spec:
  rules:
  - backendRefs: [{name: missing, port: 80}]
  - matches: [{path: {value: /ok}}]
    backendRefs: [{name: echo, port: 80}]
"#,
            &[http80()],
        );
        assert!(!outcome.resolved_refs.ok);
        assert_eq!(outcome.resolved_refs.reason, "BackendNotFound");
        assert_eq!(plugin_names(&outcome.routes[0]), ["request-termination"]);
        assert!(outcome.routes[1].service.is_some());
        assert!(outcome.routes[1].route.plugins.is_empty());
    }

    #[test]
    fn an_unsupported_filter_drops_only_its_rule_and_marks_the_route_partially_invalid() {
        let outcome = translate_http(
            r#"
metadata: {name: r, namespace: default}
spec:
  rules:
  - matches: [{path: {value: /kept}}]
    backendRefs: [{name: echo, port: 80}]
  - matches: [{path: {value: /mirrored}}]
    filters: [{type: RequestMirror, requestMirror: {backendRef: {name: other, port: 8080}}}]
    backendRefs: [{name: echo, port: 80}]
"#,
            &[http80()],
        );
        assert_eq!(names(&outcome), ["httproute.default.r.0.0.0"]);
        let message = outcome.partially_invalid.as_deref().expect("partially invalid");
        assert!(
            message.contains("Rule 1") && message.contains("RequestMirror"),
            "{message}"
        );
        assert!(outcome.accepted_problem.is_none());
    }

    #[test]
    fn partially_invalid_starts_with_dropped_rule_once_for_rules_dropped_by_translation_and_validation() {
        let outcome = translate_http(
            r#"
metadata: {name: r, namespace: default}
spec:
  rules:
  - matches: [{path: {value: /kept}}]
    backendRefs: [{name: echo, port: 80}]
  - filters: [{type: RequestMirror, requestMirror: {backendRef: {name: other, port: 8080}}}]
    backendRefs: [{name: echo, port: 80}]
  - matches: [{path: {type: RegularExpression, value: "/(unclosed"}}]
    backendRefs: [{name: echo, port: 80}]
"#,
            &[http80()],
        );
        assert_eq!(names(&outcome), ["httproute.default.r.0.0.0"]);
        let message = outcome.partially_invalid.as_deref().expect("partially invalid");
        assert!(message.starts_with("Dropped Rule 1: RequestMirror"), "{message}");
        assert!(message.contains("; Rule 2: Kong's router refuses it"), "{message}");
        assert_eq!(message.matches("Dropped").count(), 1, "{message}");
    }

    #[test]
    fn a_route_none_of_whose_rules_can_be_served_is_not_accepted() {
        let outcome = translate_http(
            r#"
metadata: {name: r, namespace: default}
spec:
  rules:
  - matches: [{headers: [{name: "x.odd", value: a}]}]
    backendRefs: [{name: echo, port: 80}]
  - matches: [{path: {type: RegularExpression, value: "/(unclosed"}}]
    backendRefs: [{name: echo, port: 80}]
"#,
            &[http80()],
        );
        assert!(outcome.routes.is_empty());
        assert!(outcome.partially_invalid.is_none());
        let problem = outcome.accepted_problem.expect("not accepted");
        assert!(!problem.ok);
        assert_eq!(problem.reason, reasons::UNSUPPORTED_VALUE);
        assert!(
            problem.message.contains("Rule 0") && problem.message.contains("x.odd"),
            "{}",
            problem.message
        );
        assert!(
            problem.message.contains("Rule 1") && problem.message.contains("regex"),
            "{}",
            problem.message
        );
    }

    #[test]
    fn filters_become_plugins_on_every_kong_route_of_their_rule() {
        let outcome = translate_http(
            r#"
metadata: {name: r, namespace: default}
spec:
  hostnames: [a.example.com, "*.example.com"]
  rules:
  - matches: [{path: {value: /a}}, {path: {value: /b}}]
    filters:
    - {type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: x-a, value: "1"}]}}
    - {type: ResponseHeaderModifier, responseHeaderModifier: {remove: [server]}}
    - {type: CORS, cors: {allowOrigins: ["*"]}}
    backendRefs: [{name: echo, port: 80}]
"#,
            &[listener(
                "http",
                80,
                ListenerProtocol::Http,
                &["a.example.com", "*.example.com"],
            )],
        );
        assert_eq!(outcome.routes.len(), 4, "2 matches × 2 hostname classes");
        for route in &outcome.routes {
            assert_eq!(
                plugin_names(route),
                ["cors", "request-transformer", "response-transformer"]
            );
            assert!(route.route.plugins.iter().all(|p| p.tags == route.route.tags));
        }
    }

    #[test]
    fn a_redirect_rule_has_no_service_and_one_kong_route_per_listener() {
        let outcome = translate_http(
            r#"
metadata: {name: r, namespace: default}
spec:
  rules:
  - filters: [{type: RequestRedirect, requestRedirect: {hostname: www.example.com, statusCode: 301}}]
"#,
            &[http80(), listener("alt", 8080, ListenerProtocol::Http, &[])],
        );
        assert_eq!(outcome.routes.len(), 2);
        let locations: Vec<&serde_json::Value> = outcome
            .routes
            .iter()
            .map(|r| {
                assert_eq!(r.service, None);
                assert_eq!(plugin_names(r), ["redirect"]);
                &r.route.plugins[0].config["location"]
            })
            .collect();
        assert_eq!(locations, ["http://www.example.com/", "http://www.example.com:8080/"]);
        assert_eq!(outcome.routes[0].route.expression, "net.dst.port == 80");
        assert_eq!(outcome.routes[1].route.expression, "net.dst.port == 8080");
    }

    #[test]
    fn the_usual_http_to_https_redirect_takes_the_host_from_the_request() {
        let outcome = translate_http(
            r#"
metadata: {name: to-https, namespace: default}
spec:
  rules:
  - filters: [{type: RequestRedirect, requestRedirect: {scheme: https, statusCode: 301}}]
"#,
            &[http80()],
        );
        let route = &outcome.routes[0];
        assert_eq!(plugin_names(route), ["pre-function"]);
        let lua = route.route.plugins[0].config["access"][0].as_str().expect("lua");
        assert_eq!(
            lua,
            concat!(
                "return function()\n",
                "  local path = kong.request.get_path()\n",
                "  local location = \"https://\" .. kong.request.get_host() .. \"\" .. path\n",
                "  local query = kong.request.get_raw_query()\n",
                "  if query ~= \"\" then location = location .. \"?\" .. query end\n",
                "  return kong.response.exit(301, nil, { [\"Location\"] = location })\n",
                "end\n"
            )
        );
    }

    #[test]
    fn replace_prefix_match_needs_a_path_prefix_match() {
        let outcome = translate_http(
            r#"
metadata: {name: r, namespace: default}
spec:
  rules:
  - matches: [{path: {type: Exact, value: /a}}]
    filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /b}}}]
    backendRefs: [{name: echo, port: 80}]
"#,
            &[http80()],
        );
        assert!(
            outcome
                .accepted_problem
                .expect("refused")
                .message
                .contains("PathPrefix")
        );
    }

    #[test]
    fn a_prefix_rewrite_matches_through_a_capturing_regex() {
        let outcome = translate_http(
            r#"
metadata: {name: r, namespace: default}
spec:
  rules:
  - matches: [{path: {value: /api/v1}}]
    filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /}}}]
    backendRefs: [{name: echo, port: 80}]
"#,
            &[http80()],
        );
        let route = &outcome.routes[0];
        assert_eq!(
            route.route.expression,
            r#"net.dst.port == 80 && http.path ~ "^/api/v1(?P<kongress_rest>(?:/.*)?)$""#
        );
        assert_eq!(route.precedence.path, PathPrecedence::Prefix(7));
    }

    #[test]
    fn timeouts_move_the_rule_to_a_service_with_those_timeouts() {
        let outcome = translate_http(
            r#"
metadata: {name: r, namespace: default}
spec:
  rules:
  - matches: [{path: {value: /slow}}]
    timeouts: {request: 30s, backendRequest: 10s}
    backendRefs: [{name: echo, port: 80}]
  - matches: [{path: {value: /fast}}]
    backendRefs: [{name: echo, port: 80}]
"#,
            &[http80()],
        );
        assert_ne!(outcome.routes[0].service, outcome.routes[1].service);
        assert_eq!(
            timeouts(Some(&HttpRouteRulesTimeouts {
                request: Some("1m".into()),
                backend_request: None
            })),
            Ok(Some(ServiceTimeouts {
                connect: 60_000,
                read: 60_000,
                write: 60_000
            }))
        );
        let unlimited = timeouts(Some(&HttpRouteRulesTimeouts {
            request: Some("0s".into()),
            backend_request: None,
        }));
        assert_eq!(unlimited.map(|t| t.map(|t| t.read)), Ok(Some(MAX_TIMEOUT_MS)));
    }

    #[test]
    fn duplicate_header_and_query_names_count_once_first_wins() {
        let outcome = translate_http(
            r#"
metadata: {name: r, namespace: default}
spec:
  rules:
  - matches:
    - headers: [{name: X-A, value: "1"}, {name: x-a, value: "2"}]
      queryParams: [{name: q, value: "1"}, {name: q, value: "2"}]
    backendRefs: [{name: echo, port: 80}]
"#,
            &[http80()],
        );
        let route = &outcome.routes[0];
        assert_eq!((route.precedence.headers, route.precedence.queries), (1, 1));
        assert_eq!(
            route.route.expression,
            r#"net.dst.port == 80 && http.headers.x_a == "1" && any(http.queries.q) == "1""#
        );
    }
}
