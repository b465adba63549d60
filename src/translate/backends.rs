//! Backends: backendRefs → Kong services, upstreams and targets.
//!
//! Each distinct outcome of a rule's backendRefs becomes one Kong service and one upstream of
//! the same name; rules (of any route) with the same outcome share them.
//!
//! **Resolution** of one backendRef (core `Service` is the default group/kind):
//! - another group or kind → `InvalidKind`;
//! - a Service in another namespace without a ReferenceGrant there → `RefNotPermitted`;
//! - a missing Service, a port the Service does not have, or an `ExternalName` Service →
//!   `BackendNotFound`. ExternalName is refused on purpose: Kong would resolve a name the route
//!   author chose, which may be `localhost` and reach the data plane's own internal ports;
//! - an `appProtocol` (or port protocol) the route cannot speak → `UnsupportedProtocol`.
//!
//! **Targets** are the ready endpoints (`conditions.ready` true or absent, not terminating) of
//! the Service's EndpointSlices of its primary IP family, at the slice port named like the
//! Service port (the Service's numeric `targetPort` for slices that list no ports).
//!
//! **Weights**: a backendRef's share is its weight over the rule's total; every target of a
//! backend gets `weight / endpoints` of it. Kong wants integers in 1..=65535, so the shares are
//! put on a common denominator (the LCM of the endpoint counts) and reduced by their GCD, which
//! is exact whenever the largest result fits; otherwise all are scaled so the largest is 65535,
//! rounding to nearest, and no share with weight above zero drops below 1. A target that two
//! backends share gets the sum of both. Weight 0 carries no traffic.
//!
//! **Shares that cannot be served** (an unresolved backendRef; a Service without ready
//! endpoints):
//! - HTTP and gRPC: the service carries a `pre-function` plugin (bundled with Kong OSS, runs
//!   first in the access phase, works in Kong's default `untrusted_lua = sandbox`) that answers
//!   500 (unresolved; 503 for GRPCRoutes, which Kong turns into the `UNAVAILABLE` the spec
//!   demands, where 500 would be `INTERNAL`) or 503 (no ready endpoints) for exactly that share
//!   of requests, drawing an integer in 1..=total per request. Kong's upstream then only
//!   balances the rest. When no backendRef resolves at all there is no service, and the rule
//!   itself answers (500 for HTTPRoutes, 503 for GRPCRoutes).
//! - TCP, TLS, UDP: the share goes to [`REJECTED_TARGET`], a loopback address nothing listens
//!   on, and the service gets `retries: 0`, so those connections are refused (datagrams
//!   dropped) in proportion instead of retried on a good backend. Streams have no 500.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::TranslateInput;
use super::kong;
use super::routes::{BackendRef, RouteView};
use super::tags;
use crate::api::conditions::reasons;
use crate::api::{GATEWAY_API_GROUP, ObjectKey};
use crate::plan::grants::{CrossNamespaceRef, reference_permitted};
use crate::plan::{RouteKind, Verdict};

/// Where stream connections of an unservable share go: IPv6 loopback, port 1. Kong binds its
/// listeners on `0.0.0.0` only and nothing in the pod serves `[::1]:1`, so the connection is
/// refused at once (or fails at once where the pod has no IPv6).
pub const REJECTED_TARGET: &str = "[::1]:1";

/// Largest target weight Kong accepts.
const MAX_TARGET_WEIGHT: u32 = 65535;

/// The protocol Kong speaks to the backend, as the route kind asks for it; a Service port's
/// `appProtocol` may refine it within the same family (HTTP/1 ↔ h2c ↔ TLS).
/// `Https`, `Grpcs` and `Tls` (Kong originates TLS) are for backend TLS, which no route kind
/// asks for yet.
#[allow(dead_code)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ServiceProtocol {
    Http,
    Https,
    Grpc,
    Grpcs,
    Tcp,
    Tls,
    Udp,
}

impl ServiceProtocol {
    /// The Kong `protocol` of a service when the Service port says nothing.
    fn kong_default(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
            Self::Grpc => "grpc",
            Self::Grpcs => "grpcs",
            Self::Tcp => "tcp",
            Self::Tls => "tls",
            Self::Udp => "udp",
        }
    }

    fn is_stream(self) -> bool {
        matches!(self, Self::Tcp | Self::Tls | Self::Udp)
    }
}

/// What [`Backends::resolve`] decided for one rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedBackends {
    /// Kong service to send matched requests to; None when no backendRef resolved (the rule
    /// then answers 500). Stream rules always get a service (it rejects what cannot be served).
    pub service: Option<String>,
    /// ResolvedRefs for these refs (BackendNotFound, InvalidKind, RefNotPermitted,
    /// UnsupportedProtocol) or ok.
    pub resolved_refs: Verdict,
}

/// Folds the `ResolvedRefs` of several rules into the route's: ok when all are; otherwise the
/// reason of the first failure and every failure's message.
pub fn combine_resolved_refs<'v>(verdicts: impl IntoIterator<Item = &'v Verdict>) -> Verdict {
    let failed: Vec<&Verdict> = verdicts.into_iter().filter(|v| !v.ok).collect();
    match failed.first() {
        None => resolved(),
        Some(first) => {
            let messages: Vec<&str> = failed.iter().map(|v| v.message.as_str()).collect();
            Verdict::fail(first.reason, messages.join("; "))
        }
    }
}

fn resolved() -> Verdict {
    Verdict::ok(reasons::RESOLVED_REFS, "All references are resolved")
}

/// The ready targets of one Service port, sorted, no duplicates.
type Targets = Arc<[String]>;

/// A backendRef that forwards to a Service port.
struct Serving {
    service: ObjectKey,
    port: i32,
    protocol: &'static str,
    targets: Targets,
}

/// The outcome of a rule's backendRefs that decides its Kong service: which Service ports get
/// which weight, and which weight cannot be served. Weights are reduced by their GCD, so rules
/// splitting 1:1 and 50:50 share a service.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct BackendSet {
    protocol: &'static str,
    /// `(Service, port, weight)`, sorted, weight > 0, one entry per Service port.
    served: Vec<(ObjectKey, i32, u64)>,
    /// Weight of backendRefs that do not resolve.
    invalid: u64,
    /// Weight of Services without ready endpoints.
    unready: u64,
    /// The HTTP status answering the `invalid` share: 500, or 503 for gRPC routes (Kong's
    /// `kong.response.exit` maps 503 to gRPC `UNAVAILABLE`). Always 500 while `invalid` is 0,
    /// so sets that never answer it compare equal.
    unresolved_status: u16,
}

impl BackendSet {
    fn reduce(&mut self) {
        let divisor = self
            .served
            .iter()
            .map(|s| s.2)
            .chain([self.invalid, self.unready])
            .fold(0, gcd);
        if divisor > 1 {
            for entry in &mut self.served {
                entry.2 /= divisor;
            }
            self.invalid /= divisor;
            self.unready /= divisor;
        }
    }

    fn total(&self) -> u64 {
        self.served
            .iter()
            .map(|s| s.2)
            .fold(self.invalid.saturating_add(self.unready), u64::saturating_add)
    }

    /// A stable, readable name that is also a valid upstream host name: the first Service port
    /// (`namespace.name.port`, all DNS labels), the protocol unless it is `http`, and a digest
    /// of the whole set unless the set is just that one Service port.
    fn name(&self) -> String {
        let mut name = match self.served.first() {
            Some((service, port, _)) => format!("{}.{}.{port}", service.namespace, service.name),
            None => "unresolved".to_string(),
        };
        if self.protocol != "http" {
            name.push('.');
            name.push_str(self.protocol);
        }
        if self.served.len() != 1 || self.invalid > 0 || self.unready > 0 {
            // Explicit bytes, not `Hash` impls, whose output Rust does not promise to keep.
            let mut digest = Fx::default();
            digest.write(self.protocol.as_bytes());
            for (service, port, weight) in &self.served {
                digest.write(service.namespace.as_bytes());
                digest.write_u8(b'/');
                digest.write(service.name.as_bytes());
                digest.write_u64(u64::from(port.unsigned_abs()));
                digest.write_u64(*weight);
            }
            digest.write_u64(self.invalid);
            digest.write_u64(self.unready);
            // Only when it differs from 500, so names from before the field stay as they were.
            if self.unresolved_status != 500 {
                digest.write_u64(u64::from(self.unresolved_status));
            }
            name.push_str(&format!(".{:016x}", digest.finish()));
        }
        name
    }
}

/// A small multiply-rotate hash (the FxHash scheme) for the maps of this module: their keys
/// are the cluster's own objects, so SipHash's flood resistance buys nothing and its cost
/// shows when every rule is looked up. Bytes are fed as little-endian words, so the value
/// is the same on every platform and release, which [`BackendSet::name`] relies on.
#[derive(Clone, Copy, Default)]
pub(super) struct Fx(u64);

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl Fx {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(FX_SEED);
    }
}

impl Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0_u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0_u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, value: u8) {
        self.add(u64::from(value));
    }

    fn write_u32(&mut self, value: u32) {
        self.add(u64::from(value));
    }

    fn write_u64(&mut self, value: u64) {
        self.add(value);
    }

    fn write_usize(&mut self, value: usize) {
        self.add(value as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

pub(super) type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<Fx>>;

/// A rule's backendRefs as the route wrote them, with all their resolution depends on besides
/// the cluster objects: the route's namespace and kind (defaults and ReferenceGrants) and the
/// protocol the route speaks.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Request {
    namespace: String,
    kind: RouteKind,
    protocol: ServiceProtocol,
    refs: Vec<BackendRef>,
}

impl Request {
    fn matches(&self, namespace: &str, kind: RouteKind, protocol: ServiceProtocol, refs: &[BackendRef]) -> bool {
        self.namespace == namespace && self.kind == kind && self.protocol == protocol && self.refs == refs
    }
}

fn request_hash(namespace: &str, kind: RouteKind, protocol: ServiceProtocol, refs: &[BackendRef]) -> u64 {
    let mut hasher = Fx::default();
    (namespace, kind, protocol, refs).hash(&mut hasher);
    hasher.finish()
}

/// A resolution by its place in the [`BackendCache`]; stable while it is cached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ResolutionId(u32);

/// One request resolved against the cluster as last seen.
struct Resolution {
    request: Request,
    hash: u64,
    resolved: ResolvedBackends,
    /// The core Services the refs name, found or not: a change to one of them or to its
    /// EndpointSlices may change the answer.
    services: Vec<ObjectKey>,
    /// Whether a ReferenceGrant decides a ref (one to another namespace).
    grants: bool,
    /// Changes whenever the request, resolved again, answers differently.
    version: u64,
    /// Rules of cached routes that use it.
    users: u32,
}

/// The Kong service and upstream of one backend set.
struct SetEntities {
    set: BackendSet,
    service: kong::Service,
    upstream: Arc<kong::Upstream>,
    /// Tells entities made at different times apart (the targets may differ).
    made: u64,
    /// No Service port serves the set (every backendRef failed or has no endpoint): its
    /// entities carry the tags of a route, which depends on the routes that use it.
    route_owned: bool,
}

/// Everything backend resolution learnt, kept from one translation to the next. Answers
/// are pure functions of the request and of the Services, EndpointSlices and ReferenceGrants
/// it names; [`BackendCache::forget`] drops those a change may affect, and
/// [`BackendCache::refresh`] asks them again.
#[derive(Default)]
pub struct BackendCache {
    resolutions: Vec<Option<Resolution>>,
    free: Vec<u32>,
    /// Resolutions by the hash of their request.
    by_hash: FxMap<u64, Vec<u32>>,
    /// Resolutions by the Services they name.
    by_service: FxMap<ObjectKey, Vec<u32>>,
    /// Resolutions whose users dropped to zero (removed by [`BackendCache::sweep`] unless
    /// used again first).
    unused: Vec<u32>,
    /// Ready targets per Service port.
    targets: FxMap<(ObjectKey, i32), Targets>,
    /// Tags per Service, made once.
    service_tags: FxMap<ObjectKey, Vec<String>>,
    /// Backend sets already turned into a service, by the service name.
    registered: FxMap<BackendSet, String>,
    sets: FxMap<String, SetEntities>,
    /// Copies of a set's service with a rule's timeouts and/or a Gateway's client
    /// certificate: name → (set's service, what the copy changes).
    variants: FxMap<String, (String, ServiceVariant)>,
    next_version: u64,
    /// Resolutions were added, answered differently or removed since the last sweep.
    dirty: bool,
}

/// What a copy of a set's service changes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct ServiceVariant {
    timeouts: Option<ServiceTimeouts>,
    /// Kong certificate id presented to the backend (Kong allows it on `https` and `tls`
    /// services only).
    client_certificate: Option<Arc<str>>,
}

/// What a rule resolved to, for the translator to keep: the resolution and its version.
pub type Used = (ResolutionId, u64);

impl BackendCache {
    fn get(&self, id: u32) -> Option<&Resolution> {
        self.resolutions.get(id as usize).and_then(Option::as_ref)
    }

    fn get_mut(&mut self, id: u32) -> Option<&mut Resolution> {
        self.resolutions.get_mut(id as usize).and_then(Option::as_mut)
    }

    /// The version of a cached resolution; `None` once it is gone.
    pub fn version(&self, id: ResolutionId) -> Option<u64> {
        self.get(id.0).map(|r| r.version)
    }

    /// A rule of a cached route uses the resolution.
    pub fn acquire(&mut self, id: ResolutionId) {
        if let Some(resolution) = self.get_mut(id.0) {
            resolution.users = resolution.users.saturating_add(1);
        }
    }

    /// A rule of a cached route no longer uses the resolution.
    pub fn release(&mut self, id: ResolutionId) {
        if let Some(resolution) = self.get_mut(id.0) {
            resolution.users = resolution.users.saturating_sub(1);
            if resolution.users == 0 {
                self.unused.push(id.0);
            }
        }
    }

    fn find(&self, namespace: &str, kind: RouteKind, protocol: ServiceProtocol, refs: &[BackendRef]) -> Option<u32> {
        let hash = request_hash(namespace, kind, protocol, refs);
        self.by_hash.get(&hash)?.iter().copied().find(|&id| {
            self.get(id)
                .is_some_and(|r| r.request.matches(namespace, kind, protocol, refs))
        })
    }

    /// Resolves and caches a request never seen (or forgotten).
    fn create(&mut self, input: &TranslateInput<'_>, request: Request, registrant: Option<&RouteView>) -> u32 {
        let hash = request_hash(&request.namespace, request.kind, request.protocol, &request.refs);
        let (resolved, services, grants) = self.resolve_request(input, &request, registrant);
        let version = self.next_version;
        self.next_version = self.next_version.wrapping_add(1);
        let resolution = Resolution {
            request,
            hash,
            resolved,
            services,
            grants,
            version,
            users: 0,
        };
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                self.resolutions.push(None);
                u32::try_from(self.resolutions.len() - 1).unwrap_or(u32::MAX)
            }
        };
        self.by_hash.entry(hash).or_default().push(id);
        for service in &resolution.services {
            self.by_service.entry(service.clone()).or_default().push(id);
        }
        if let Some(slot) = self.resolutions.get_mut(id as usize) {
            *slot = Some(resolution);
        }
        // Not used until the translator acquires it; swept if it never does.
        self.unused.push(id);
        self.dirty = true;
        id
    }

    /// Forgets what changed Services (or their EndpointSlices), and with `grants` every
    /// resolution a ReferenceGrant decided, may have changed. Returns the resolutions to
    /// [`refresh`](Self::refresh).
    pub fn forget(&mut self, services: &[ObjectKey], grants: bool) -> Vec<u32> {
        let mut stale: Vec<u32> = Vec::new();
        if !services.is_empty() {
            let changed: std::collections::HashSet<&ObjectKey> = services.iter().collect();
            self.targets.retain(|(key, _), _| !changed.contains(key));
            // A set's upstream holds the targets of its Service ports: made again on next use.
            let gone: Vec<String> = self
                .sets
                .iter()
                .filter(|(_, e)| e.set.served.iter().any(|(key, _, _)| changed.contains(key)))
                .map(|(name, _)| name.clone())
                .collect();
            for name in &gone {
                if let Some(entities) = self.sets.remove(name) {
                    self.registered.remove(&entities.set);
                }
            }
            for key in services {
                stale.extend(self.by_service.get(key).into_iter().flatten().copied());
            }
        }
        if grants {
            stale.extend(
                self.resolutions
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| r.as_ref().is_some_and(|r| r.grants))
                    .filter_map(|(i, _)| u32::try_from(i).ok()),
            );
        }
        stale.sort_unstable();
        stale.dedup();
        stale
    }

    /// Resolves `stale` resolutions again; one whose answer changes gets a new version, so
    /// the routes that used it are translated again. Returns whether any answer changed.
    pub fn refresh(&mut self, input: &TranslateInput<'_>, stale: &[u32]) -> bool {
        let mut changed = false;
        for &id in stale {
            let Some(request) = self.get(id).map(|r| r.request.clone()) else {
                continue;
            };
            let (resolved, _, _) = self.resolve_request(input, &request, None);
            let next_version = self.next_version;
            let Some(resolution) = self.get_mut(id) else {
                continue;
            };
            if resolution.resolved == resolved {
                continue;
            }
            resolution.resolved = resolved;
            resolution.version = next_version;
            self.next_version = self.next_version.wrapping_add(1);
            self.dirty = true;
            changed = true;
        }
        changed
    }

    /// Removes resolutions no cached route uses, and the sets, targets and tags nothing
    /// needs any more.
    pub fn sweep(&mut self) {
        let unused = std::mem::take(&mut self.unused);
        for id in unused {
            if self.get(id).is_none_or(|r| r.users > 0) {
                continue;
            }
            let Some(resolution) = self.resolutions.get_mut(id as usize).and_then(Option::take) else {
                continue;
            };
            self.free.push(id);
            self.dirty = true;
            if let Some(ids) = self.by_hash.get_mut(&resolution.hash) {
                ids.retain(|&i| i != id);
                if ids.is_empty() {
                    self.by_hash.remove(&resolution.hash);
                }
            }
            for service in &resolution.services {
                if let Some(ids) = self.by_service.get_mut(service) {
                    ids.retain(|&i| i != id);
                    if ids.is_empty() {
                        self.by_service.remove(service);
                        self.targets.retain(|(key, _), _| key != service);
                        self.service_tags.remove(service);
                    }
                }
            }
        }
        if !std::mem::take(&mut self.dirty) {
            return;
        }
        // Sets (and timeout copies) no resolution answers with any more.
        let live: std::collections::HashSet<&str> = self
            .resolutions
            .iter()
            .flatten()
            .filter_map(|r| r.resolved.service.as_deref())
            .collect();
        if live.len() < self.sets.len() {
            self.sets.retain(|name, _| live.contains(name.as_str()));
            let sets = &self.sets;
            self.registered.retain(|_, name| sets.contains_key(name));
        }
        let sets = &self.sets;
        self.variants.retain(|_, (base, _)| sets.contains_key(base));
    }

    /// The Kong service named `name` (a set's or a timeout copy of one), with the tags
    /// `owner` gives when no Service port owns it; and the name of its set's service.
    pub fn service(&self, name: &str, owner: impl FnOnce() -> Vec<String>) -> Option<kong::Service> {
        if let Some(entities) = self.sets.get(name) {
            let mut service = entities.service.clone();
            if entities.route_owned {
                retag_service(&mut service, owner());
            }
            return Some(service);
        }
        let (base, variant) = self.variants.get(name)?;
        let mut service = self.service(base, owner)?;
        service.name = name.to_string();
        if let Some(timeouts) = variant.timeouts {
            service.connect_timeout = Some(timeouts.connect);
            service.read_timeout = Some(timeouts.read);
            service.write_timeout = Some(timeouts.write);
        }
        if let Some(id) = &variant.client_certificate {
            service.client_certificate = Some(id.to_string());
        }
        Some(service)
    }

    /// The set's service a service name stands for (itself, or the one a timeout copy copies).
    pub fn base_of<'n>(&'n self, name: &'n str) -> &'n str {
        self.variants.get(name).map_or(name, |(base, _)| base.as_str())
    }

    /// Whether the set's entities carry a route's tags (see [`SetEntities::route_owned`]).
    pub fn route_owned(&self, base: &str) -> bool {
        self.sets.get(base).is_some_and(|e| e.route_owned)
    }

    /// When the entities of the set whose service is `base` were made; `None` for no set.
    pub fn made(&self, base: &str) -> Option<u64> {
        self.sets.get(base).map(|e| e.made)
    }

    /// The upstream of the set whose service is `base`.
    pub fn upstream(&self, base: &str, owner: impl FnOnce() -> Vec<String>) -> Option<Arc<kong::Upstream>> {
        let entities = self.sets.get(base)?;
        if !entities.route_owned {
            return Some(entities.upstream.clone());
        }
        let mut upstream = kong::Upstream::clone(&entities.upstream);
        let tags = owner();
        for target in &mut upstream.targets {
            target.tags.clone_from(&tags);
        }
        upstream.tags = tags;
        Some(Arc::new(upstream))
    }

    fn resolve_request(
        &mut self,
        input: &TranslateInput<'_>,
        request: &Request,
        registrant: Option<&RouteView>,
    ) -> (ResolvedBackends, Vec<ObjectKey>, bool) {
        let mut services: Vec<ObjectKey> = Vec::new();
        let mut grants = false;
        for backend in &request.refs {
            let core = backend.group.as_deref().unwrap_or("").is_empty()
                && backend.kind.as_deref().unwrap_or("Service") == "Service";
            if !core {
                continue;
            }
            let namespace = backend.namespace.as_deref().unwrap_or(&request.namespace);
            grants |= namespace != request.namespace;
            services.push(ObjectKey::new(namespace, &backend.name));
        }
        services.sort();
        services.dedup();
        let resolved = self.resolve_uncached(input, request, registrant);
        (resolved, services, grants)
    }

    fn resolve_uncached(
        &mut self,
        input: &TranslateInput<'_>,
        request: &Request,
        registrant: Option<&RouteView>,
    ) -> ResolvedBackends {
        let protocol = request.protocol;
        let mut problems: Vec<Verdict> = Vec::new();
        let mut serving: Vec<(Serving, u64)> = Vec::new();
        let mut set = BackendSet {
            protocol: protocol.kong_default(),
            served: Vec::new(),
            invalid: 0,
            unready: 0,
            unresolved_status: 500,
        };
        let mut set_protocol: Option<&'static str> = None;
        for (index, backend) in request.refs.iter().enumerate() {
            let weight = u64::try_from(backend.weight()).unwrap_or(0);
            let outcome = self.classify(input, request, backend).and_then(|s| {
                // One Kong service speaks one protocol: the first backend that serves sets it.
                if s.targets.is_empty() {
                    return Ok(s);
                }
                let wanted = *set_protocol.get_or_insert(s.protocol);
                if wanted == s.protocol {
                    Ok(s)
                } else {
                    Err(Verdict::fail(
                        reasons::UNSUPPORTED_PROTOCOL,
                        format!(
                            "its protocol {} differs from {wanted}, which an earlier backendRef of the rule uses; one rule forwards with one protocol",
                            s.protocol
                        ),
                    ))
                }
            });
            match outcome {
                Ok(s) if s.targets.is_empty() => set.unready = set.unready.saturating_add(weight),
                Ok(s) if weight > 0 => serving.push((s, weight)),
                Ok(_) => {}
                Err(mut problem) => {
                    problem.message = format!(
                        "backendRef {index} ({}): {}",
                        describe(&request.namespace, backend),
                        problem.message
                    );
                    problems.push(problem);
                    set.invalid = set.invalid.saturating_add(weight);
                }
            }
        }
        if let Some(p) = set_protocol {
            set.protocol = p;
        }
        for (s, weight) in &serving {
            match set.served.iter_mut().find(|e| e.0 == s.service && e.1 == s.port) {
                Some(entry) => entry.2 = entry.2.saturating_add(*weight),
                None => set.served.push((s.service.clone(), s.port, *weight)),
            }
        }
        set.served.sort();
        set.reduce();
        if set.invalid > 0 && matches!(protocol, ServiceProtocol::Grpc | ServiceProtocol::Grpcs) {
            set.unresolved_status = 503;
        }

        let resolved_refs = combine_resolved_refs(&problems);
        let service = if protocol.is_stream() {
            if set.total() == 0 {
                // Every weight is zero: no connection may reach a backend.
                set.invalid = 1;
            }
            Some(self.register(registrant, set, &serving))
        } else if set.served.is_empty() && set.unready == 0 {
            None
        } else {
            Some(self.register(registrant, set, &serving))
        };
        ResolvedBackends { service, resolved_refs }
    }

    /// Resolves one backendRef to a Service port and its ready targets.
    fn classify(
        &mut self,
        input: &TranslateInput<'_>,
        request: &Request,
        backend: &BackendRef,
    ) -> Result<Serving, Verdict> {
        let group = backend.group.as_deref().unwrap_or("");
        let kind = backend.kind.as_deref().unwrap_or("Service");
        if !group.is_empty() || kind != "Service" {
            return Err(Verdict::fail(
                reasons::INVALID_KIND,
                format!("kind {kind} of group {group:?} is not supported; kongress forwards to core Services"),
            ));
        }
        let route_namespace = request.namespace.as_str();
        let namespace = backend.namespace.as_deref().unwrap_or(route_namespace);
        let permitted = reference_permitted(
            &CrossNamespaceRef {
                from_group: GATEWAY_API_GROUP,
                from_kind: request.kind.as_str(),
                from_namespace: route_namespace,
                to_group: "",
                to_kind: "Service",
                to_namespace: namespace,
                to_name: &backend.name,
            },
            input.grants,
        );
        if !permitted {
            return Err(Verdict::fail(
                reasons::REF_NOT_PERMITTED,
                format!(
                    "no ReferenceGrant in namespace {namespace} allows {}s from {route_namespace} to use Service {}",
                    request.kind.as_str(),
                    backend.name
                ),
            ));
        }
        let key = ObjectKey::new(namespace, &backend.name);
        let Some(service) = input.services.get(&key) else {
            return Err(Verdict::fail(
                reasons::BACKEND_NOT_FOUND,
                format!("Service {key} does not exist"),
            ));
        };
        let spec = service.spec.as_ref();
        if spec.and_then(|s| s.type_.as_deref()) == Some("ExternalName") {
            return Err(Verdict::fail(
                reasons::BACKEND_NOT_FOUND,
                format!("Service {key} is of type ExternalName, which kongress does not forward to"),
            ));
        }
        let Some(port) = backend.port else {
            return Err(Verdict::fail(
                reasons::BACKEND_NOT_FOUND,
                "a port is required for a Service backend",
            ));
        };
        let Some(service_port) = spec
            .and_then(|s| s.ports.as_ref())
            .and_then(|ports| ports.iter().find(|p| p.port == port))
        else {
            return Err(Verdict::fail(
                reasons::BACKEND_NOT_FOUND,
                format!("Service {key} has no port {port}"),
            ));
        };
        let kong_protocol = kong_protocol(request.protocol, service_port).map_err(|why| {
            Verdict::fail(
                reasons::UNSUPPORTED_PROTOCOL,
                format!("port {port} of Service {key}: {why}"),
            )
        })?;
        let targets = self.targets_of(input, &key, service, service_port);
        Ok(Serving {
            service: key,
            port,
            protocol: kong_protocol,
            targets,
        })
    }

    fn targets_of(
        &mut self,
        input: &TranslateInput<'_>,
        key: &ObjectKey,
        service: &Service,
        port: &ServicePort,
    ) -> Targets {
        let cache_key = (key.clone(), port.port);
        if let Some(targets) = self.targets.get(&cache_key) {
            return targets.clone();
        }
        let slices = input.endpoint_slices.get(key).map(Vec::as_slice).unwrap_or_default();
        let targets: Targets = ready_targets(service, port, slices).into();
        self.targets.insert(cache_key, targets.clone());
        targets
    }

    /// The service for a backend set, creating it (with its upstream) the first time. A set
    /// no Service port serves is tagged with `registrant` for now: the translator tags it
    /// with the route that owns it once all routes are known.
    fn register(&mut self, registrant: Option<&RouteView>, set: BackendSet, serving: &[(Serving, u64)]) -> String {
        if let Some(name) = self.registered.get(&set) {
            return name.clone();
        }
        let name = set.name();
        let owner_tags = match set.served.first() {
            Some((service, _, _)) => self.tags_of(service),
            None => registrant.map(|r| tags::of(&r.tag_source())).unwrap_or_default(),
        };
        let stream = matches!(set.protocol, "tcp" | "tls" | "udp");
        let mut shares: Vec<(u64, &[String], &ObjectKey)> = Vec::new();
        for (service, port, weight) in &set.served {
            if let Some((s, _)) = serving.iter().find(|(s, _)| &s.service == service && s.port == *port) {
                shares.push((*weight, &s.targets, &s.service));
            }
        }
        let rejected = [REJECTED_TARGET.to_string()];
        let failing = set.invalid.saturating_add(set.unready);
        let weights = target_weights(
            shares
                .iter()
                .map(|(w, t, _)| (*w, *t))
                .chain((stream && failing > 0).then_some((failing, rejected.as_slice()))),
        );
        let targets: Vec<kong::Target> = weights
            .into_iter()
            .map(|(target, weight)| {
                let owner = shares
                    .iter()
                    .find(|(_, t, _)| t.binary_search(&target).is_ok())
                    .map(|s| s.2);
                let tags = match owner {
                    Some(owner) => self.tags_of(owner),
                    None => owner_tags.clone(),
                };
                kong::Target { target, weight, tags }
            })
            .collect();
        let port = set
            .served
            .first()
            .and_then(|(_, p, _)| u16::try_from(*p).ok())
            .unwrap_or(if matches!(set.protocol, "https" | "grpcs" | "tls") {
                443
            } else {
                80
            });
        let plugins = if stream || failing == 0 {
            Vec::new()
        } else {
            vec![failure_plugin(&set, owner_tags.clone())]
        };
        let service = kong::Service {
            name: name.clone(),
            protocol: set.protocol.to_string(),
            host: name.clone(),
            port,
            retries: (stream && failing > 0).then_some(0),
            tags: owner_tags.clone(),
            plugins,
            ..kong::Service::default()
        };
        let upstream = kong::Upstream {
            name: name.clone(),
            algorithm: None,
            tags: owner_tags,
            targets,
        };
        self.registered.insert(set.clone(), name.clone());
        let made = self.next_version;
        self.next_version = self.next_version.wrapping_add(1);
        self.sets.insert(
            name.clone(),
            SetEntities {
                route_owned: set.served.is_empty(),
                set,
                service,
                upstream: Arc::new(upstream),
                made,
            },
        );
        name
    }

    fn tags_of(&mut self, service: &ObjectKey) -> Vec<String> {
        if let Some(tags) = self.service_tags.get(service) {
            return tags.clone();
        }
        let tags = service_tags(service);
        self.service_tags.insert(service.clone(), tags.clone());
        tags
    }
}

/// A route-owned service with its owner's tags (on its plugins too).
fn retag_service(service: &mut kong::Service, tags: Vec<String>) {
    for plugin in &mut service.plugins {
        plugin.tags.clone_from(&tags);
    }
    service.tags = tags;
}

/// The cache a [`Backends`] works with: the translator's, or its own.
enum CacheRef<'a> {
    Borrowed(&'a mut BackendCache),
    #[cfg(test)]
    Owned(Box<BackendCache>),
}

impl std::ops::Deref for CacheRef<'_> {
    type Target = BackendCache;

    fn deref(&self) -> &BackendCache {
        match self {
            Self::Borrowed(cache) => cache,
            #[cfg(test)]
            Self::Owned(cache) => cache,
        }
    }
}

impl std::ops::DerefMut for CacheRef<'_> {
    fn deref_mut(&mut self) -> &mut BackendCache {
        match self {
            Self::Borrowed(cache) => cache,
            #[cfg(test)]
            Self::Owned(cache) => cache,
        }
    }
}

/// Resolves the backendRefs of one translation's rules into Kong services and upstreams, one
/// per distinct backend set, remembering which resolutions each route used.
pub struct Backends<'a> {
    input: &'a TranslateInput<'a>,
    cache: CacheRef<'a>,
    used: Vec<Used>,
}

impl<'a> Backends<'a> {
    /// With a cache of its own (one translation).
    #[cfg(test)]
    pub fn new(input: &'a TranslateInput<'a>) -> Self {
        Self {
            input,
            cache: CacheRef::Owned(Box::default()),
            used: Vec::new(),
        }
    }

    /// With the translator's cache.
    pub fn with_cache(input: &'a TranslateInput<'a>, cache: &'a mut BackendCache) -> Self {
        Self {
            input,
            cache: CacheRef::Borrowed(cache),
            used: Vec::new(),
        }
    }

    /// Resolves a rule's backendRefs; registers the Kong service (+ upstream) they need.
    pub fn resolve(&mut self, route: &RouteView, refs: &[BackendRef], protocol: ServiceProtocol) -> ResolvedBackends {
        let namespace = route.namespace();
        let kind = route.route.kind;
        let id = match self.cache.find(namespace, kind, protocol, refs) {
            Some(id) => id,
            None => {
                let request = Request {
                    namespace: namespace.to_string(),
                    kind,
                    protocol,
                    refs: refs.to_vec(),
                };
                self.cache.create(self.input, request, Some(route))
            }
        };
        match self.cache.get(id) {
            Some(resolution) => {
                self.used.push((ResolutionId(id), resolution.version));
                resolution.resolved.clone()
            }
            None => ResolvedBackends {
                service: None,
                resolved_refs: resolved(),
            },
        }
    }

    /// The resolutions asked for since the last call, with their versions.
    pub fn take_used(&mut self) -> Vec<Used> {
        std::mem::take(&mut self.used)
    }

    /// The name of a copy of `service` carrying these timeouts, created on first use. Gateway
    /// API sets timeouts per rule while Kong keeps them on the service, so rules with
    /// different timeouts over the same backends need services of their own.
    pub fn with_timeouts(&mut self, service: &str, timeouts: ServiceTimeouts) -> String {
        let name = format!(
            "{service}.timeouts-{}-{}-{}",
            timeouts.connect, timeouts.read, timeouts.write
        );
        if !self.cache.variants.contains_key(&name) && self.cache.sets.contains_key(service) {
            let variant = ServiceVariant {
                timeouts: Some(timeouts),
                client_certificate: None,
            };
            self.cache.variants.insert(name.clone(), (service.to_string(), variant));
        }
        name
    }

    /// The name of a copy of `service` (a set's service or a timeout copy) that presents the
    /// Kong certificate `certificate` to its backends, created on first use; `service` itself
    /// when Kong does not open TLS to them (Kong 3.9 accepts a client certificate on `https`
    /// and `tls` services only). A Gateway sets its client certificate for all its backends
    /// while rules share services across Gateways, so each certificate needs its copy.
    pub fn with_client_certificate(&mut self, service: &str, certificate: &Arc<str>) -> String {
        let base = self.cache.base_of(service).to_string();
        let opens_tls = self
            .cache
            .sets
            .get(&base)
            .is_some_and(|e| matches!(e.service.protocol.as_str(), "https" | "tls"));
        if !opens_tls {
            return service.to_string();
        }
        let name = format!("{service}.client-{certificate}");
        if !self.cache.variants.contains_key(&name) {
            let mut variant = self
                .cache
                .variants
                .get(service)
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            variant.client_certificate = Some(certificate.clone());
            self.cache.variants.insert(name.clone(), (base, variant));
        }
        name
    }

    /// Every service and upstream registered, sorted by name (services tagged as registered).
    #[cfg(test)]
    pub fn finish(self) -> (Vec<kong::Service>, Vec<kong::Upstream>) {
        let cache = &*self.cache;
        let mut names: Vec<&String> = cache.sets.keys().chain(cache.variants.keys()).collect();
        names.sort();
        let services = names
            .iter()
            .filter_map(|name| {
                let entities = cache.sets.get(*name);
                let keep = entities.map(|e| e.service.tags.clone()).unwrap_or_else(|| {
                    let base = cache.base_of(name);
                    cache.sets.get(base).map(|e| e.service.tags.clone()).unwrap_or_default()
                });
                cache.service(name, || keep)
            })
            .collect();
        let mut upstreams: Vec<kong::Upstream> = cache
            .sets
            .values()
            .map(|e| kong::Upstream::clone(&e.upstream))
            .collect();
        upstreams.sort_by(|a, b| a.name.cmp(&b.name));
        (services, upstreams)
    }
}

/// Kong service timeouts in milliseconds, from a rule's `timeouts`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServiceTimeouts {
    pub connect: u64,
    pub read: u64,
    pub write: u64,
}

/// `Service ns/name:port` as the user wrote the ref, for messages.
fn describe(route_namespace: &str, backend: &BackendRef) -> String {
    let kind = backend.kind.as_deref().unwrap_or("Service");
    let namespace = backend.namespace.as_deref().unwrap_or(route_namespace);
    match backend.port {
        Some(port) => format!("{kind} {namespace}/{}:{port}", backend.name),
        None => format!("{kind} {namespace}/{}", backend.name),
    }
}

fn service_tags(key: &ObjectKey) -> Vec<String> {
    tags::of(&tags::Source {
        group: "",
        version: "v1",
        kind: "Service",
        key,
    })
}

/// The Kong protocol for one Service port, or why the route cannot speak to it.
fn kong_protocol(requested: ServiceProtocol, port: &ServicePort) -> Result<&'static str, String> {
    let transport = port.protocol.as_deref().unwrap_or("TCP");
    let wanted_transport = if requested == ServiceProtocol::Udp {
        "UDP"
    } else {
        "TCP"
    };
    if transport != wanted_transport {
        return Err(format!("the port is {transport}, the route needs {wanted_transport}"));
    }
    if requested.is_stream() {
        // Streams forward bytes; the application protocol does not matter to Kong.
        return Ok(requested.kong_default());
    }
    let Some(app_protocol) = port.app_protocol.as_deref() else {
        return Ok(requested.kong_default());
    };
    let grpc = matches!(requested, ServiceProtocol::Grpc | ServiceProtocol::Grpcs);
    // Kong reaches HTTP/2 cleartext backends only through its gRPC proxy path (nginx
    // grpc_pass), which forwards any HTTP/2 request, so h2c maps to `grpc`.
    match (app_protocol.to_ascii_lowercase().as_str(), grpc) {
        ("http" | "kubernetes.io/ws", false) => Ok("http"),
        ("https" | "kubernetes.io/wss", false) => Ok("https"),
        ("kubernetes.io/h2c" | "h2c" | "grpc", _) => Ok("grpc"),
        ("https" | "grpcs", true) => Ok("grpcs"),
        ("http" | "kubernetes.io/ws" | "kubernetes.io/wss", true) => {
            Err(format!("appProtocol {app_protocol} is HTTP/1, gRPC needs HTTP/2"))
        }
        _ => Err(format!("appProtocol {app_protocol} is not supported")),
    }
}

/// The ready endpoints of a Service port as Kong targets (`ip:port`, IPv6 in brackets).
fn ready_targets(
    service: &Service,
    port: &ServicePort,
    slices: &[Arc<k8s_openapi::api::discovery::v1::EndpointSlice>],
) -> Vec<String> {
    let spec = service.spec.as_ref();
    // Dual-stack Services have a slice per family listing the same pods; use the primary one.
    let family = spec
        .and_then(|s| s.ip_families.as_ref())
        .and_then(|f| f.first())
        .map(String::as_str)
        .unwrap_or_else(|| {
            if slices.iter().any(|s| s.address_type == "IPv4") {
                "IPv4"
            } else {
                "IPv6"
            }
        });
    let port_name = port.name.as_deref().unwrap_or("");
    let transport = port.protocol.as_deref().unwrap_or("TCP");
    let fallback = match &port.target_port {
        None => Some(port.port),
        Some(IntOrString::Int(number)) => Some(*number),
        Some(IntOrString::String(_)) => None,
    };
    let mut targets = Vec::new();
    for slice in slices.iter().filter(|s| s.address_type == family) {
        let slice_ports = slice.ports.as_deref().unwrap_or_default();
        let target_port = if slice_ports.is_empty() {
            fallback
        } else {
            slice_ports
                .iter()
                .find(|p| {
                    p.name.as_deref().unwrap_or("") == port_name && p.protocol.as_deref().unwrap_or("TCP") == transport
                })
                .and_then(|p| p.port)
        };
        let Some(target_port) = target_port.filter(|p| (1..=65535).contains(p)) else {
            continue;
        };
        for endpoint in slice.endpoints.iter().flatten() {
            let conditions = endpoint.conditions.as_ref();
            let ready = conditions.and_then(|c| c.ready) != Some(false);
            let terminating = conditions.and_then(|c| c.terminating) == Some(true);
            if !ready || terminating {
                continue;
            }
            // The addresses of one endpoint are fungible; consumers may use the first. The API
            // server admits canonical IPs only, so the text is kept as written once it parses.
            let Some(text) = endpoint.addresses.first() else {
                continue;
            };
            let Ok(address) = text.parse::<IpAddr>() else {
                continue;
            };
            let mut target = String::with_capacity(text.len() + 8);
            if address.is_ipv6() {
                target.push('[');
                target.push_str(text);
                target.push(']');
            } else {
                target.push_str(text);
            }
            // Writing to a String cannot fail.
            let _ = write!(target, ":{target_port}");
            targets.push(target);
        }
    }
    targets.sort();
    targets.dedup();
    targets
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

fn gcd128(a: u128, b: u128) -> u128 {
    if b == 0 { a } else { gcd128(b, a % b) }
}

/// Kong weights per target from shares `(weight, targets)`: each target of a share gets
/// `weight / targets.len()`, targets in several shares the sum. Exact integers when they fit
/// in 1..=65535, else scaled so the largest is 65535 (see the module documentation).
fn target_weights<'t>(shares: impl Iterator<Item = (u64, &'t [String])>) -> BTreeMap<String, u32> {
    let shares: Vec<(u64, &[String])> = shares.filter(|(w, t)| *w > 0 && !t.is_empty()).collect();
    if let [(_, targets)] = shares.as_slice() {
        // One backend: its targets share equally (they are distinct).
        return targets.iter().map(|t| (t.clone(), 1)).collect();
    }
    exact_weights(&shares).unwrap_or_else(|| approximate_weights(&shares))
}

/// The exact integer weights, `None` when an intermediate value overflows.
fn exact_weights(shares: &[(u64, &[String])]) -> Option<BTreeMap<String, u32>> {
    let mut denominator: u128 = 1;
    for (_, targets) in shares {
        let count = u128::try_from(targets.len()).ok()?;
        denominator = denominator.checked_mul(count / gcd128(denominator, count))?;
    }
    let mut values: BTreeMap<&str, u128> = BTreeMap::new();
    for (weight, targets) in shares {
        let per_target = u128::from(*weight).checked_mul(denominator / u128::try_from(targets.len()).ok()?)?;
        for target in targets.iter() {
            let value = values.entry(target).or_default();
            *value = value.checked_add(per_target)?;
        }
    }
    let divisor = values.values().fold(0, |g, v| gcd128(g, *v)).max(1);
    let max = values.values().max().copied().unwrap_or(1) / divisor;
    let limit = u128::from(MAX_TARGET_WEIGHT);
    values
        .into_iter()
        .map(|(target, value)| {
            let value = value / divisor;
            let scaled = if max <= limit {
                value
            } else {
                (value.checked_mul(limit)?.checked_add(max / 2)? / max).max(1)
            };
            Some((target.to_string(), u32::try_from(scaled).ok()?))
        })
        .collect()
}

/// Floating-point weights for inputs whose exact denominators do not fit in 128 bits.
fn approximate_weights(shares: &[(u64, &[String])]) -> BTreeMap<String, u32> {
    let mut values: BTreeMap<&str, f64> = BTreeMap::new();
    for (weight, targets) in shares {
        let per_target = *weight as f64 / targets.len() as f64;
        for target in targets.iter() {
            *values.entry(target).or_default() += per_target;
        }
    }
    let max = values.values().copied().fold(0.0_f64, f64::max);
    values
        .into_iter()
        .map(|(target, value)| {
            let scaled = (value / max * f64::from(MAX_TARGET_WEIGHT))
                .round()
                .clamp(1.0, f64::from(MAX_TARGET_WEIGHT));
            // In range by the clamp; the cast cannot truncate.
            (target.to_string(), scaled as u32)
        })
        .collect()
}

/// The service plugin that answers 500 (gRPC: 503) for the unresolved share of requests and
/// 503 for the share of Services without ready endpoints (only HTTP and gRPC services get one).
fn failure_plugin(set: &BackendSet, tags: Vec<String>) -> kong::Plugin {
    let total = set.total();
    let mut code = format!("local n = math.random({total})");
    if set.invalid > 0 {
        code.push_str(&format!(
            " if n <= {} then return kong.response.exit({}, {{ message = \"Backend not resolved\" }}) end",
            set.invalid, set.unresolved_status
        ));
    }
    if set.unready > 0 {
        code.push_str(&format!(
            " if n <= {} then return kong.response.exit(503, {{ message = \"No ready endpoints\" }}) end",
            set.invalid.saturating_add(set.unready)
        ));
    }
    kong::Plugin {
        name: "pre-function".to_string(),
        config: kong::plugin_config([("access", serde_json::json!([code]))]),
        tags,
    }
}

#[cfg(test)]
mod tests;
