//! One view of the five route kinds, so attachment, backends and status are written once.
//!
//! The generated Gateway API types give every kind its own copy of `parentRefs` and
//! `backendRefs`; they share the same fields, which the macros below rely on.

use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use crate::api::{GATEWAY_API_GROUP, ObjectKey};
use crate::plan::RouteKind;

pub use gateway_api::experimental::tcproutes::TcpRoute;
pub use gateway_api::experimental::udproutes::UdpRoute;
pub use gateway_api::grpcroutes::GrpcRoute;
pub use gateway_api::httproutes::HttpRoute;
pub use gateway_api::tlsroutes::TlsRoute;

/// API version of each kind as kongress reads it.
pub fn api_version(kind: RouteKind) -> &'static str {
    match kind {
        RouteKind::HttpRoute | RouteKind::GrpcRoute | RouteKind::TlsRoute => "v1",
        RouteKind::TcpRoute | RouteKind::UdpRoute => "v1alpha2",
    }
}

/// A route named by kind and `namespace/name`; orders by kind, then key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RouteRef {
    pub kind: RouteKind,
    pub key: ObjectKey,
}

impl std::fmt::Display for RouteRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind.as_str(), self.key)
    }
}

/// A `parentRefs` entry, with the spec's defaults not yet applied (status echoes it as written).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ParentRef {
    pub group: Option<String>,
    pub kind: Option<String>,
    pub namespace: Option<String>,
    pub name: String,
    pub section_name: Option<String>,
    pub port: Option<i32>,
}

impl ParentRef {
    /// Whether it names a Gateway (the defaults are group gateway.networking.k8s.io, kind Gateway).
    pub fn is_gateway(&self) -> bool {
        self.group.as_deref().unwrap_or(GATEWAY_API_GROUP) == GATEWAY_API_GROUP
            && self.kind.as_deref().unwrap_or("Gateway") == "Gateway"
    }

    /// The Gateway it names, resolving the namespace default (the route's own).
    pub fn gateway_key(&self, route_namespace: &str) -> ObjectKey {
        ObjectKey::new(self.namespace.as_deref().unwrap_or(route_namespace), &self.name)
    }
}

/// A `backendRefs` entry of any kind, with the spec's defaults not yet applied.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BackendRef {
    pub group: Option<String>,
    pub kind: Option<String>,
    pub namespace: Option<String>,
    pub name: String,
    pub port: Option<i32>,
    /// Defaults to 1.
    pub weight: Option<i32>,
}

impl BackendRef {
    pub fn weight(&self) -> i32 {
        self.weight.unwrap_or(1)
    }
}

/// The typed object behind a [`RouteView`].
#[derive(Clone, Debug)]
pub enum RouteObject {
    Http(Arc<HttpRoute>),
    Grpc(Arc<GrpcRoute>),
    Tls(Arc<TlsRoute>),
    Tcp(Arc<TcpRoute>),
    Udp(Arc<UdpRoute>),
}

/// What every route kind has in common.
#[derive(Clone, Debug)]
pub struct RouteView {
    pub route: RouteRef,
    pub generation: i64,
    pub created: Option<Timestamp>,
    pub resource_version: Option<String>,
    pub parent_refs: Vec<ParentRef>,
    /// `spec.hostnames` as written (HTTP, GRPC, TLS); empty means any.
    pub hostnames: Vec<String>,
    pub object: RouteObject,
}

macro_rules! parent_refs {
    ($refs:expr) => {
        $refs
            .iter()
            .flatten()
            .map(|p| ParentRef {
                group: p.group.clone(),
                kind: p.kind.clone(),
                namespace: p.namespace.clone(),
                name: p.name.clone(),
                section_name: p.section_name.clone(),
                port: p.port,
            })
            .collect()
    };
}

/// Converts one generated backendRef type (they all share these fields).
#[macro_export]
#[doc(hidden)]
macro_rules! backend_ref_of {
    ($r:expr) => {
        $crate::translate::routes::BackendRef {
            group: $r.group.clone(),
            kind: $r.kind.clone(),
            namespace: $r.namespace.clone(),
            name: $r.name.clone(),
            port: $r.port,
            weight: $r.weight,
        }
    };
}

fn view<K: ResourceExt>(
    kind: RouteKind,
    object: &K,
    parent_refs: Vec<ParentRef>,
    hostnames: Vec<String>,
    typed: RouteObject,
) -> RouteView {
    RouteView {
        route: RouteRef {
            kind,
            key: ObjectKey::of(object),
        },
        generation: object.meta().generation.unwrap_or_default(),
        created: object.meta().creation_timestamp.as_ref().map(|t| t.0),
        resource_version: object.meta().resource_version.clone(),
        parent_refs,
        hostnames,
        object: typed,
    }
}

impl RouteObject {
    pub fn kind(&self) -> RouteKind {
        match self {
            Self::Http(_) => RouteKind::HttpRoute,
            Self::Grpc(_) => RouteKind::GrpcRoute,
            Self::Tls(_) => RouteKind::TlsRoute,
            Self::Tcp(_) => RouteKind::TcpRoute,
            Self::Udp(_) => RouteKind::UdpRoute,
        }
    }

    fn meta(&self) -> &kube::api::ObjectMeta {
        match self {
            Self::Http(r) => &r.metadata,
            Self::Grpc(r) => &r.metadata,
            Self::Tls(r) => &r.metadata,
            Self::Tcp(r) => &r.metadata,
            Self::Udp(r) => &r.metadata,
        }
    }

    pub fn namespace(&self) -> &str {
        self.meta().namespace.as_deref().unwrap_or_default()
    }

    /// The name, or the `generateName` of an object that has none yet (as [`ObjectKey::of`]).
    pub fn name(&self) -> &str {
        let meta = self.meta();
        meta.name
            .as_deref()
            .or(meta.generate_name.as_deref())
            .unwrap_or_default()
    }

    pub fn route_ref(&self) -> RouteRef {
        RouteRef {
            kind: self.kind(),
            key: ObjectKey::new(self.namespace(), self.name()),
        }
    }

    /// The address of the object, which identifies it while this handle holds it.
    pub fn address(&self) -> usize {
        match self {
            Self::Http(r) => Arc::as_ptr(r) as usize,
            Self::Grpc(r) => Arc::as_ptr(r) as usize,
            Self::Tls(r) => Arc::as_ptr(r) as usize,
            Self::Tcp(r) => Arc::as_ptr(r) as usize,
            Self::Udp(r) => Arc::as_ptr(r) as usize,
        }
    }

    /// Whether translation would read the same from both: the same object, or the same kind,
    /// `namespace/name`, generation, creation time and spec. Status, labels, annotations and
    /// `resourceVersion` are not read, so a status write does not count as a change.
    pub fn translates_like(&self, other: &Self) -> bool {
        if self.address() == other.address() && self.kind() == other.kind() {
            return true;
        }
        let (a, b) = (self.meta(), other.meta());
        let same_meta = a.name == b.name
            && a.generate_name == b.generate_name
            && a.namespace == b.namespace
            && a.generation == b.generation
            && a.creation_timestamp == b.creation_timestamp;
        same_meta
            && match (self, other) {
                (Self::Http(a), Self::Http(b)) => a.spec == b.spec,
                (Self::Grpc(a), Self::Grpc(b)) => a.spec == b.spec,
                (Self::Tls(a), Self::Tls(b)) => a.spec == b.spec,
                (Self::Tcp(a), Self::Tcp(b)) => a.spec == b.spec,
                (Self::Udp(a), Self::Udp(b)) => a.spec == b.spec,
                _ => false,
            }
    }
}

impl RouteView {
    /// The view of any route object.
    pub fn of(object: &RouteObject) -> Self {
        match object {
            RouteObject::Http(r) => Self::http(r),
            RouteObject::Grpc(r) => Self::grpc(r),
            RouteObject::Tls(r) => Self::tls(r),
            RouteObject::Tcp(r) => Self::tcp(r),
            RouteObject::Udp(r) => Self::udp(r),
        }
    }

    pub fn http(route: &Arc<HttpRoute>) -> Self {
        view(
            RouteKind::HttpRoute,
            route.as_ref(),
            parent_refs!(route.spec.parent_refs),
            route.spec.hostnames.clone().unwrap_or_default(),
            RouteObject::Http(route.clone()),
        )
    }

    pub fn grpc(route: &Arc<GrpcRoute>) -> Self {
        view(
            RouteKind::GrpcRoute,
            route.as_ref(),
            parent_refs!(route.spec.parent_refs),
            route.spec.hostnames.clone().unwrap_or_default(),
            RouteObject::Grpc(route.clone()),
        )
    }

    pub fn tls(route: &Arc<TlsRoute>) -> Self {
        view(
            RouteKind::TlsRoute,
            route.as_ref(),
            parent_refs!(route.spec.parent_refs),
            route.spec.hostnames.clone(),
            RouteObject::Tls(route.clone()),
        )
    }

    pub fn tcp(route: &Arc<TcpRoute>) -> Self {
        view(
            RouteKind::TcpRoute,
            route.as_ref(),
            parent_refs!(route.spec.parent_refs),
            Vec::new(),
            RouteObject::Tcp(route.clone()),
        )
    }

    pub fn udp(route: &Arc<UdpRoute>) -> Self {
        view(
            RouteKind::UdpRoute,
            route.as_ref(),
            parent_refs!(route.spec.parent_refs),
            Vec::new(),
            RouteObject::Udp(route.clone()),
        )
    }

    /// Every backendRef of every rule, in spec order (for indexes; translation reads rules itself).
    pub fn backend_refs(&self) -> Vec<BackendRef> {
        fn collect<'r, R: 'r>(
            rules: impl IntoIterator<Item = &'r R>,
            refs: impl Fn(&'r R) -> Vec<BackendRef>,
        ) -> Vec<BackendRef> {
            rules.into_iter().flat_map(refs).collect()
        }
        match &self.object {
            RouteObject::Http(r) => collect(r.spec.rules.iter().flatten(), |rule| {
                rule.backend_refs.iter().flatten().map(|b| backend_ref_of!(b)).collect()
            }),
            RouteObject::Grpc(r) => collect(r.spec.rules.iter().flatten(), |rule| {
                rule.backend_refs.iter().flatten().map(|b| backend_ref_of!(b)).collect()
            }),
            RouteObject::Tls(r) => collect(&r.spec.rules, |rule| {
                rule.backend_refs.iter().map(|b| backend_ref_of!(b)).collect()
            }),
            RouteObject::Tcp(r) => collect(&r.spec.rules, |rule| {
                rule.backend_refs.iter().map(|b| backend_ref_of!(b)).collect()
            }),
            RouteObject::Udp(r) => collect(&r.spec.rules, |rule| {
                rule.backend_refs.iter().map(|b| backend_ref_of!(b)).collect()
            }),
        }
    }

    /// The Services the route's backendRefs name (core group, kind Service), deduplicated.
    pub fn backend_services(&self) -> Vec<ObjectKey> {
        let mut services: Vec<ObjectKey> = self
            .backend_refs()
            .into_iter()
            .filter(|b| {
                b.group.as_deref().unwrap_or("").is_empty() && b.kind.as_deref().unwrap_or("Service") == "Service"
            })
            .map(|b| ObjectKey::new(b.namespace.unwrap_or_else(|| self.namespace().to_string()), b.name))
            .collect();
        services.sort();
        services.dedup();
        services
    }

    pub fn namespace(&self) -> &str {
        &self.route.key.namespace
    }

    /// The tag source of every Kong entity made from this route.
    pub fn tag_source(&self) -> super::tags::Source<'_> {
        tag_source(&self.route)
    }
}

/// The tag source of every Kong entity made from `route`.
pub fn tag_source(route: &RouteRef) -> super::tags::Source<'_> {
    super::tags::Source {
        group: GATEWAY_API_GROUP,
        version: api_version(route.kind),
        kind: route.kind.as_str(),
        key: &route.key,
    }
}

/// The routes of a snapshot, by kind.
#[derive(Clone, Debug, Default)]
pub struct RouteSet {
    pub http: Vec<Arc<HttpRoute>>,
    pub grpc: Vec<Arc<GrpcRoute>>,
    pub tls: Vec<Arc<TlsRoute>>,
    pub tcp: Vec<Arc<TcpRoute>>,
    pub udp: Vec<Arc<UdpRoute>>,
}

impl RouteSet {
    /// Every route object, in input order (kind by kind).
    pub fn objects(&self) -> impl Iterator<Item = RouteObject> + '_ {
        self.http
            .iter()
            .map(|r| RouteObject::Http(r.clone()))
            .chain(self.grpc.iter().map(|r| RouteObject::Grpc(r.clone())))
            .chain(self.tls.iter().map(|r| RouteObject::Tls(r.clone())))
            .chain(self.tcp.iter().map(|r| RouteObject::Tcp(r.clone())))
            .chain(self.udp.iter().map(|r| RouteObject::Udp(r.clone())))
    }

    /// Every route as a view, sorted by kind then `namespace/name` (input order never matters).
    /// The objects are sorted before their views are made, so no view is moved or compared.
    pub fn views(&self) -> Vec<RouteView> {
        let mut objects: Vec<RouteObject> = self.objects().collect();
        // Stable: of two objects with one name, the later in the input stays later.
        objects.sort_by(|a, b| {
            a.kind()
                .cmp(&b.kind())
                .then_with(|| a.namespace().cmp(b.namespace()))
                .then_with(|| a.name().cmp(b.name()))
        });
        objects.iter().map(RouteView::of).collect()
    }

    pub fn len(&self) -> usize {
        self.http.len() + self.grpc.len() + self.tls.len() + self.tcp.len() + self.udp.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
