//! TLSRoute, TCPRoute and UDPRoute rules → Kong stream routes.
//!
//! - TLSRoute on a Passthrough listener: protocol `tls_passthrough`, matched by SNI; Kong reads
//!   the ClientHello and forwards the encrypted stream untouched (service protocol `tcp`).
//! - TLSRoute on a Terminate listener: protocol `tls`, matched by SNI; Kong terminates TLS with
//!   the listener's certificate and forwards plain TCP.
//! - TCPRoute / UDPRoute: protocol `tcp` / `udp`, matched by the listener port only.
//!
//! Every Kong route is bound to the ports of the listeners the route attached to
//! (`net.dst.port`) and, for TLS, to the intersected hostnames (`tls.sni`; a wildcard
//! `*.example.com` becomes `tls.sni =^ ".example.com"`, any depth, never the apex). One Kong
//! route per (protocol, hostname), so precedence can rank exact names above wildcards and
//! longer above shorter. Listener isolation: SNI names more specific TLS listeners on the
//! port claim are excluded, `&& !(tls.sni == "a.example.com")` (a connection without SNI
//! fails the inner predicate, so only a listener without hostname takes it).
//!
//! Rules: TLSRoute allows one. TCPRoute and UDPRoute rules have no matches, so every rule
//! matches every connection and, as for every route kind, the first rule wins: only it is
//! bound; the backendRefs of all rules are still resolved and reported in `ResolvedRefs`.
//!
//! Unservable backends: streams have no status code; their share of connections is refused
//! (see [`super::backends`]), and a rule with no usable backend refuses every connection.

use std::collections::{BTreeMap, BTreeSet};

use super::RuleOutcome;
use super::attach::{Attachment, Hostnames};
use super::backends::{Backends, ServiceProtocol, combine_resolved_refs};
use super::hostnames;
use super::kong;
use super::priority::{PathPrecedence, PendingRoute, Precedence};
use super::routes::{BackendRef, RouteObject, RouteView};
use super::tags;
use crate::backend_ref_of;
use crate::plan::ListenerProtocol;

pub fn translate(view: &RouteView, attachments: &[&Attachment], backends: &mut Backends<'_>) -> RuleOutcome {
    let (rules, protocol): (Vec<Vec<BackendRef>>, ServiceProtocol) = match &view.object {
        RouteObject::Tls(route) => (
            route
                .spec
                .rules
                .iter()
                .map(|r| r.backend_refs.iter().map(|b| backend_ref_of!(b)).collect())
                .collect(),
            ServiceProtocol::Tcp,
        ),
        RouteObject::Tcp(route) => (
            route
                .spec
                .rules
                .iter()
                .map(|r| r.backend_refs.iter().map(|b| backend_ref_of!(b)).collect())
                .collect(),
            ServiceProtocol::Tcp,
        ),
        RouteObject::Udp(route) => (
            route
                .spec
                .rules
                .iter()
                .map(|r| r.backend_refs.iter().map(|b| backend_ref_of!(b)).collect())
                .collect(),
            ServiceProtocol::Udp,
        ),
        RouteObject::Http(_) | RouteObject::Grpc(_) => return RuleOutcome::default(),
    };
    let resolved: Vec<_> = rules
        .iter()
        .map(|refs| backends.resolve(view, refs, protocol))
        .collect();
    let routes = match resolved.first() {
        Some(first) => kong_routes(view, attachments, first.service.as_deref()),
        None => Vec::new(),
    };
    RuleOutcome {
        routes,
        resolved_refs: combine_resolved_refs(resolved.iter().map(|r| &r.resolved_refs)),
        ..RuleOutcome::default()
    }
}

/// Kong's route protocol for a stream listener; `None` for HTTP listeners (never attached).
fn kong_protocol(listener: ListenerProtocol) -> Option<&'static str> {
    match listener {
        ListenerProtocol::TlsPassthrough => Some("tls_passthrough"),
        ListenerProtocol::TlsTerminate => Some("tls"),
        ListenerProtocol::Tcp => Some("tcp"),
        ListenerProtocol::Udp => Some("udp"),
        ListenerProtocol::Http | ListenerProtocol::Https => None,
    }
}

/// SNI hostnames (`None`: any) minus those more specific listeners on the port claim.
type SniMatch<'a> = (Option<&'a str>, Vec<&'a str>);

/// One Kong route per (protocol, hostname) of the first rule, bound to the ports it came in on.
fn kong_routes<'a>(view: &RouteView, attachments: &[&'a Attachment], service: Option<&str>) -> Vec<PendingRoute> {
    let mut groups: BTreeMap<(&'static str, SniMatch<'a>), BTreeSet<u16>> = BTreeMap::new();
    for attachment in attachments {
        let Some(protocol) = kong_protocol(attachment.protocol) else {
            continue;
        };
        // Listener isolation (see `super::attach`): TCP and UDP listeners have no hostname and
        // no more specific neighbours, so only TLS listeners ever exclude anything.
        let mut add = |name: Option<&'a str>| {
            if let Some(except) = hostnames::isolate(name, &attachment.more_specific) {
                groups
                    .entry((protocol, (name, except)))
                    .or_default()
                    .insert(attachment.port);
            }
        };
        match &attachment.hostnames {
            Hostnames::Any => add(None),
            Hostnames::Only(names) => names.iter().for_each(|name| add(Some(name))),
        }
    }
    let kind = view.route.kind.as_str().to_ascii_lowercase();
    let tags = tags::of(&view.tag_source());
    groups
        .into_iter()
        .enumerate()
        .map(|(index, ((protocol, (hostname, except)), ports))| {
            let mut expression = ports_clause(&ports);
            if let Some(hostname) = hostname {
                expression = format!("{expression} && {}", sni_clause(hostname));
            }
            for claimed in except {
                expression = format!("{expression} && !({})", sni_clause(claimed));
            }
            let (exact_host_len, wildcard_host_len) = match hostname {
                Some(h) if h.starts_with("*.") => (0, length(h)),
                Some(h) => (length(h), 0),
                None => (0, 0),
            };
            PendingRoute {
                service: service.map(str::to_string),
                route: kong::Route {
                    name: format!("{kind}.{}.{}.0.{index}", view.route.key.namespace, view.route.key.name),
                    protocols: vec![protocol.to_string()],
                    expression,
                    tags: tags.clone(),
                    ..kong::Route::default()
                },
                precedence: Precedence {
                    exact_host_len,
                    wildcard_host_len,
                    path: PathPrecedence::None,
                    method: false,
                    headers: 0,
                    queries: 0,
                    created: view.created,
                    route: view.route.clone(),
                    rule: 0,
                    match_index: u32::try_from(index).unwrap_or(u32::MAX),
                },
            }
        })
        .collect()
}

fn length(hostname: &str) -> u16 {
    u16::try_from(hostname.len()).unwrap_or(u16::MAX)
}

/// `net.dst.port == 443`, or a parenthesised disjunction for several ports.
fn ports_clause(ports: &BTreeSet<u16>) -> String {
    let clauses: Vec<String> = ports.iter().map(|p| format!("net.dst.port == {p}")).collect();
    if clauses.len() == 1 {
        clauses.concat()
    } else {
        format!("({})", clauses.join(" || "))
    }
}

/// `tls.sni == "a.example.com"`, or `tls.sni =^ ".example.com"` for `*.example.com`.
fn sni_clause(hostname: &str) -> String {
    match hostname.strip_prefix('*') {
        Some(suffix) => format!("tls.sni =^ {}", string_literal(suffix)),
        None => format!("tls.sni == {}", string_literal(hostname)),
    }
}

/// A string literal of the atc-router grammar: `"`, `\` and the control characters it names
/// are escaped, everything else is literal.
fn string_literal(value: &str) -> String {
    let mut literal = String::with_capacity(value.len() + 2);
    literal.push('"');
    for c in value.chars() {
        match c {
            '"' => literal.push_str("\\\""),
            '\\' => literal.push_str("\\\\"),
            '\n' => literal.push_str("\\n"),
            '\r' => literal.push_str("\\r"),
            '\t' => literal.push_str("\\t"),
            other => literal.push(other),
        }
    }
    literal.push('"');
    literal
}

#[cfg(test)]
mod tests;
