//! Backends: backendRefs → Kong services, upstreams and targets.
//!
//! STUB: to be written.

use super::TranslateInput;
use super::kong;

/// Collects the services and upstreams the routes need, one per distinct backend set.
pub struct Backends<'a> {
    #[allow(dead_code)]
    input: &'a TranslateInput<'a>,
}

impl<'a> Backends<'a> {
    pub fn new(input: &'a TranslateInput<'a>) -> Self {
        Self { input }
    }

    /// The services and upstreams collected, sorted by name.
    pub fn finish(self) -> (Vec<kong::Service>, Vec<kong::Upstream>) {
        (Vec::new(), Vec::new())
    }
}

// ---------------------------------------------------------------------------------------------
// SHIM (branch translate-http only): the interface the backends engineer implements. Delete
// this block when merging main; the real `resolve` replaces it.
// ---------------------------------------------------------------------------------------------

/// The protocol Kong speaks to a backend (from appProtocol / route kind).
#[allow(dead_code)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServiceProtocol {
    Http,
    Https,
    Grpc,
    Grpcs,
    Tcp,
    Tls,
    Udp,
}

/// What `resolve` found for a rule's backendRefs.
#[derive(Clone, Debug)]
pub struct ResolvedBackends {
    /// Kong service to send matched requests to; None when no backendRef resolved (the rule then answers 500).
    pub service: Option<String>,
    /// ResolvedRefs for these refs (BackendNotFound, InvalidKind, RefNotPermitted, UnsupportedProtocol) or ok.
    pub resolved_refs: crate::plan::Verdict,
}

impl Backends<'_> {
    /// SHIM: names a service after the first ref; a ref named `missing*` does not resolve.
    pub fn resolve(
        &mut self,
        route: &super::routes::RouteView,
        refs: &[super::routes::BackendRef],
        _protocol: ServiceProtocol,
    ) -> ResolvedBackends {
        let ok = crate::plan::Verdict::ok(
            crate::api::conditions::reasons::RESOLVED_REFS,
            "All references are resolved",
        );
        match refs.first() {
            None => ResolvedBackends {
                service: None,
                resolved_refs: ok,
            },
            Some(r) if r.name.starts_with("missing") => ResolvedBackends {
                service: None,
                resolved_refs: crate::plan::Verdict::fail("BackendNotFound", format!("Service {} not found", r.name)),
            },
            Some(r) => ResolvedBackends {
                service: Some(format!(
                    "{}.{}.{}",
                    r.namespace.as_deref().unwrap_or(route.namespace()),
                    r.name,
                    r.port.unwrap_or_default()
                )),
                resolved_refs: ok,
            },
        }
    }

    /// SHIM: a variant of `service` with these timeouts; its name.
    pub fn with_timeouts(&mut self, service: &str, timeouts: ServiceTimeouts) -> String {
        format!(
            "{service}.timeouts-{}-{}-{}",
            timeouts.connect, timeouts.read, timeouts.write
        )
    }
}

/// Kong service timeouts in milliseconds (each 0..=2^31-2 per Kong's schema).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceTimeouts {
    pub connect: u64,
    pub read: u64,
    pub write: u64,
}
