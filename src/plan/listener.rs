//! One listener on its own: its protocol, port, route kinds and TLS configuration,
//! before it meets the other listeners of the class.

use std::collections::BTreeSet;

use super::compat::PortClaim;
use super::protocol::{ListenerProtocol, RouteKind};
use super::{ListenerVerdict, PlanInput, Verdict, certificates, listen};
use crate::api::conditions::reasons;
use crate::api::{GATEWAY_API_GROUP, Gateway, GatewayListeners, ObjectKey};

/// An accepted listener: it takes part in the distinctness checks, whether or not Kong
/// can serve it. Deciding distinctness before servability keeps a listener that is
/// merely waiting for its Secret from losing its port to a newer one, only to take
/// it back (and knock that one out) when the Secret appears.
pub(super) struct Candidate {
    pub gateway: usize,
    pub listener: usize,
    pub port: u16,
    pub protocol: ListenerProtocol,
    /// Lowercased.
    pub hostname: Option<String>,
    /// The certificate Secrets it names, when it terminates TLS.
    pub certificates: BTreeSet<ObjectKey>,
    /// Whether Kong can serve it if it keeps its port: it has a usable certificate (when
    /// it terminates TLS) and at least one route kind.
    pub servable: bool,
}

impl Candidate {
    pub fn claim(&self) -> PortClaim<'_> {
        PortClaim {
            protocol: self.protocol,
            hostname: self.hostname.as_deref(),
            certificates: &self.certificates,
        }
    }
}

/// What [`check`] found out about an accepted listener.
pub(super) struct Accepted {
    pub protocol: ListenerProtocol,
    pub port: u16,
    pub certificates: BTreeSet<ObjectKey>,
    pub servable: bool,
}

/// Checks one listener on its own. Returns its verdict and, when it is accepted, what it
/// claims. Reasons for `Accepted=False` rank: protocol, port, TLS configuration.
pub(super) fn check(
    gateway: &Gateway,
    listener: &GatewayListeners,
    input: &PlanInput<'_>,
) -> (ListenerVerdict, Option<Accepted>) {
    let tls_mode = listener.tls.as_ref().and_then(|t| t.mode.as_ref());
    let mut verdict = ListenerVerdict {
        name: listener.name.clone(),
        port: listener.port,
        protocol: listener.protocol.clone(),
        accepted: Verdict::ok(reasons::ACCEPTED, "Listener is accepted"),
        conflicted: None,
        resolved_refs: Verdict::ok(reasons::RESOLVED_REFS, "All references are resolved"),
        supported_kinds: Vec::new(),
        programmed: false,
        shared_with: Vec::new(),
        overlapping_tls: Vec::new(),
        conflicts_with_sibling: false,
    };

    let Some(protocol) = ListenerProtocol::parse(&listener.protocol, tls_mode) else {
        verdict.accepted = Verdict::fail(
            reasons::UNSUPPORTED_PROTOCOL,
            format!(
                "Protocol {:?} is not supported; kongress serves HTTP, HTTPS, TLS, TCP and UDP",
                listener.protocol
            ),
        );
        return (verdict, None);
    };

    let (kinds, kinds_problem) = supported_kinds(listener, protocol);
    verdict.supported_kinds = kinds;
    if let Some(problem) = kinds_problem {
        verdict.resolved_refs = Verdict::fail(reasons::INVALID_ROUTE_KINDS, problem);
    }

    let port = match usable_port(listener.port, input) {
        Ok(port) => Some(port),
        Err(problem) => {
            verdict.accepted = problem;
            None
        }
    };

    let mut certificates = BTreeSet::new();
    let mut has_certificate = true;
    if protocol.terminates_tls() {
        let gateway_namespace = gateway.metadata.namespace.as_deref().unwrap_or_default();
        let refs = listener
            .tls
            .as_ref()
            .and_then(|t| t.certificate_refs.as_deref())
            .unwrap_or_default();
        if refs.is_empty() {
            // Nothing to resolve, so ResolvedRefs stays True; the listener itself is
            // incomplete. The spec's reason for an invalid specification is Invalid, and it
            // names "unspecified TLS configuration" as the example.
            has_certificate = false;
            if verdict.accepted.ok {
                verdict.accepted = Verdict::fail(
                    reasons::INVALID,
                    format!(
                        "A {} listener that terminates TLS needs tls.certificateRefs; kongress has no other source of certificates",
                        listener.protocol
                    ),
                );
            }
        } else {
            certificates = certificates::referenced_secrets(gateway_namespace, refs);
            let outcome = certificates::resolve(gateway_namespace, refs, input.secrets, input.grants);
            // InvalidRouteKinds is reported first; a certificate problem is added to its message.
            if let Some(problem) = outcome.problem {
                if verdict.resolved_refs.ok {
                    verdict.resolved_refs = problem;
                } else {
                    verdict.resolved_refs.message = format!("{}; {}", verdict.resolved_refs.message, problem.message);
                }
            }
            // Without a certificate Kong would answer with its own default one.
            has_certificate = outcome.usable > 0;
        }
    }

    if protocol == ListenerProtocol::Https
        && verdict.accepted.ok
        && let Some(port) = port
        && asks_client_certificates(gateway, port)
    {
        verdict.accepted = Verdict::fail(
            reasons::UNSUPPORTED_VALUE,
            format!(
                "spec.tls.frontend asks for client certificate validation on port {port}; kongress serves every Gateway of a class from one Kong proxy, which cannot validate client certificates for some listeners only, so this listener is not served rather than served without the validation"
            ),
        );
    }

    let accepted = match port {
        Some(port) if verdict.accepted.ok => Some(Accepted {
            protocol,
            port,
            certificates,
            servable: has_certificate && !verdict.supported_kinds.is_empty(),
        }),
        _ => None,
    };
    (verdict, accepted)
}

/// The listener's port, unless it is not a port or Kong uses it internally.
fn usable_port(port: i32, input: &PlanInput<'_>) -> Result<u16, Verdict> {
    let Some(port) = u16::try_from(port).ok().filter(|p| *p > 0) else {
        return Err(Verdict::fail(
            reasons::PORT_UNAVAILABLE,
            format!("Port {port} is not a valid port"),
        ));
    };
    let settings = input.settings;
    let container = listen::container_port(port, settings.port_mode);
    for (internal, what) in [
        (settings.status_port, "Kong status API"),
        (settings.admin_port, "Kong admin API"),
    ] {
        if port == internal || container == internal {
            return Err(Verdict::fail(
                reasons::PORT_UNAVAILABLE,
                format!(
                    "Port {port} is reserved for the {what} of this data plane; choose another port or change it in the KongProxy"
                ),
            ));
        }
    }
    Ok(port)
}

/// Whether the Gateway's `spec.tls.frontend` asks for client certificate validation on
/// HTTPS listeners of `port`: a per-port entry overrides the default.
fn asks_client_certificates(gateway: &Gateway, port: u16) -> bool {
    let Some(frontend) = gateway.spec.tls.as_ref().and_then(|t| t.frontend.as_ref()) else {
        return false;
    };
    match frontend.per_port.iter().flatten().find(|p| p.port == i32::from(port)) {
        Some(per_port) => per_port.tls.validation.is_some(),
        None => frontend.default.validation.is_some(),
    }
}

/// The listener's `supportedKinds`, and a message when it asked for kinds we cannot serve.
fn supported_kinds(listener: &GatewayListeners, protocol: ListenerProtocol) -> (Vec<RouteKind>, Option<String>) {
    let allowed = protocol.route_kinds();
    // The spec: "When unspecified or empty, the kinds of Routes selected are determined
    // using the Listener protocol."
    let Some(requested) = listener
        .allowed_routes
        .as_ref()
        .and_then(|a| a.kinds.as_ref())
        .filter(|kinds| !kinds.is_empty())
    else {
        return (allowed.to_vec(), None);
    };
    let mut kinds = Vec::new();
    let mut invalid = Vec::new();
    for kind in requested {
        let group = kind.group.as_deref().unwrap_or(GATEWAY_API_GROUP);
        match RouteKind::parse(&kind.kind).filter(|k| group == GATEWAY_API_GROUP && allowed.contains(k)) {
            Some(k) if !kinds.contains(&k) => kinds.push(k),
            Some(_) => {}
            None => invalid.push(if group.is_empty() {
                kind.kind.clone()
            } else {
                format!("{group}/{}", kind.kind)
            }),
        }
    }
    let problem = (!invalid.is_empty()).then(|| {
        let names: Vec<&str> = allowed.iter().map(|k| k.as_str()).collect();
        format!(
            "Route kinds {} are not supported on a {} listener; supported kinds: {}",
            invalid.join(", "),
            listener.protocol,
            names.join(", ")
        )
    });
    (kinds, problem)
}
