//! Attachment: which listeners each `parentRefs` entry of a route attaches to (Gateway API v1.5).
//!
//! A parentRef is ours when it names a Gateway of the class. For each one:
//! 1. the listeners it selects: all of the Gateway's, narrowed by `sectionName` (the listener
//!    name) and `port`; none left → `NoMatchingParent`;
//! 2. of those, the listeners whose `allowedRoutes` admit the route: its kind is among the
//!    listener's `supportedKinds` (which the planner derived from `allowedRoutes.kinds` and the
//!    listener protocol, so this is also the protocol-family check) and its namespace passes
//!    `allowedRoutes.namespaces` (`Same` by default, `All`, `Selector`); none → `NotAllowedByListeners`;
//! 3. of those, the listeners whose hostname intersects the route's hostnames; none →
//!    `NoMatchingListenerHostname`.
//!
//! What is left is attached, and the parentRef is `Accepted`. Attachment is independent of
//! listener conditions (the spec's `attachedRoutes` rule: a route attached to a rejected listener
//! still counts), but Kong serves only listeners the planner programmed, so only those become
//! [`Attachment`]s the kind translators bind routes to.
//!
//! Listener isolation (Gateway API v1.5 `Gateway.spec.listeners`: "requests SHOULD match at
//! most one Listener. For example, if Listeners are defined for "foo.example.com" and
//! "*.example.com", a request to "foo.example.com" SHOULD only be routed using routes attached
//! to the "foo.example.com" Listener"; exact before wildcard, narrower wildcard before wider,
//! wildcard before no hostname): a request belongs to the most specific served listener on
//! its port whose hostname matches it. Each attachment therefore carries the hostnames of the
//! more specific listeners on its port ([`Attachment::more_specific`]), computed once per
//! listener, and the kind translators exclude them from the route's binding. All Gateways of
//! a class share one Kong, so listeners of every Gateway of the class count; identical
//! listeners shared by several Gateways (`ListenerVerdict::shared_with`) carry the same
//! traffic and, having the same hostname, never exclude each other.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use gateway_api::gateways::{
    GatewayListenersAllowedRoutesNamespacesFrom as From, GatewayListenersAllowedRoutesNamespacesSelector as Selector,
};

use super::TranslateInput;
use super::hostnames;
use super::routes::{ParentRef, RouteView};
use crate::api::conditions::reasons;
use crate::api::{Gateway, GatewayListeners, ObjectKey};
use crate::plan::{GatewayPlan, ListenerKey, ListenerProtocol, ListenerVerdict, RouteKind, Transport, Verdict};

/// The label the API server puts on every Namespace (Kubernetes 1.22+), so selectors may use it
/// even when the snapshot lacks the Namespace object.
const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// Which namespaces a listener admits routes from.
enum AllowedNamespaces<'a> {
    Same,
    All,
    /// `None`: `from: Selector` without a selector, which selects nothing.
    Selector(Option<&'a Selector>),
}

/// A listener of the class, by its position in the [`Context`]: cheaper to collect and count
/// per route than its [`ListenerKey`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ListenerId(usize);

impl ListenerId {
    /// Its position in [`Context::listener_keys`].
    pub fn index(self) -> usize {
        self.0
    }
}

/// What attachment needs to know about one listener, read once per translation.
struct Listener<'a> {
    id: ListenerId,
    name: &'a str,
    port: i32,
    protocol: Option<ListenerProtocol>,
    /// Lower-case; `None` when the protocol ignores hostnames or none is set.
    hostname: Option<String>,
    namespaces: AllowedNamespaces<'a>,
    kinds: &'a [RouteKind],
    programmed: bool,
}

/// A Gateway of the class and its listeners.
struct GatewayFacts<'a> {
    key: ObjectKey,
    listeners: Vec<Listener<'a>>,
}

/// Lookups the attachment rules need, built once per translation.
pub struct Context<'a> {
    pub input: &'a TranslateInput<'a>,
    /// Gateways of the class by namespace, then name (looked up without allocating).
    gateways: HashMap<&'a str, HashMap<&'a str, GatewayFacts<'a>>>,
    /// Every listener of the class, indexed by [`ListenerId`].
    keys: Vec<ListenerKey>,
    /// Per [`ListenerId`]: the hostnames more specific served listeners claim on its port.
    more_specific: Vec<Arc<[String]>>,
}

impl<'a> Context<'a> {
    pub fn new(input: &'a TranslateInput<'a>) -> Self {
        let mut gateways: HashMap<&'a str, HashMap<&'a str, GatewayFacts<'a>>> = HashMap::new();
        let mut keys = Vec::new();
        for gateway in input.gateways {
            let key = ObjectKey::of(gateway.as_ref());
            let plan = input.plan.gateway(&key);
            let facts = GatewayFacts {
                listeners: listeners_of(gateway, &key, plan, &mut keys),
                key,
            };
            let namespace = gateway.metadata.namespace.as_deref().unwrap_or_default();
            let name = gateway.metadata.name.as_deref().unwrap_or_default();
            gateways.entry(namespace).or_default().insert(name, facts);
        }
        let more_specific = more_specific_hostnames(&gateways, keys.len());
        Self {
            input,
            gateways,
            keys,
            more_specific,
        }
    }

    pub fn listener_key(&self, id: ListenerId) -> &ListenerKey {
        &self.keys[id.0]
    }

    /// Every listener of the class; a [`ListenerId`] is a position in it.
    pub fn listener_keys(&self) -> &[ListenerKey] {
        &self.keys
    }

    fn gateway(&self, namespace: &str, name: &str) -> Option<&GatewayFacts<'a>> {
        self.gateways.get(namespace)?.get(name)
    }
}

/// For every listener of the class, the hostnames of the served listeners on the same port
/// and transport (of any Gateway of the class: they share one Kong) that are strictly more
/// specific than its own hostname (all hostnames when it has none), keeping only the widest
/// of nested ones, sorted. Empty for listeners Kong does not serve or that ignore hostnames.
/// Listeners that share a port and transport also share their protocol (anything else is a
/// conflict the planner refuses), so `http.host` or `tls.sni` means the same for all of them.
fn more_specific_hostnames(
    gateways: &HashMap<&str, HashMap<&str, GatewayFacts<'_>>>,
    count: usize,
) -> Vec<Arc<[String]>> {
    let served = || {
        gateways
            .values()
            .flat_map(HashMap::values)
            .flat_map(|g| g.listeners.iter())
            .filter(|l| l.programmed && l.protocol.is_some_and(ListenerProtocol::uses_hostname))
    };
    let mut by_port: HashMap<(i32, Transport), Vec<&str>> = HashMap::new();
    for listener in served() {
        if let (Some(protocol), Some(hostname)) = (listener.protocol, listener.hostname.as_deref()) {
            by_port
                .entry((listener.port, protocol.transport()))
                .or_default()
                .push(hostname);
        }
    }
    let mut more_specific: Vec<Arc<[String]>> = vec![Arc::from([]); count];
    for listener in served() {
        let Some(protocol) = listener.protocol else {
            continue;
        };
        let Some(others) = by_port.get(&(listener.port, protocol.transport())) else {
            continue;
        };
        let own = listener.hostname.as_deref();
        let narrower = |name: &str| own.is_none_or(|own| hostnames::is_narrower(name, own));
        let mut claimed: Vec<&str> = others.iter().copied().filter(|&other| narrower(other)).collect();
        claimed.sort_unstable();
        claimed.dedup();
        // `*.a.example.com` adds nothing once `*.example.com` is excluded.
        let widest: Vec<String> = claimed
            .iter()
            .filter(|name| !claimed.iter().any(|wider| hostnames::is_narrower(name, wider)))
            .map(|name| name.to_string())
            .collect();
        if let Some(slot) = more_specific.get_mut(listener.id.0) {
            *slot = Arc::from(widest);
        }
    }
    more_specific
}

/// The listeners of one Gateway with the planner's verdicts; a listener the plan does not know
/// (it cannot happen for a plan of the same snapshot) admits nothing.
fn listeners_of<'a>(
    gateway: &'a Gateway,
    key: &ObjectKey,
    plan: Option<&'a GatewayPlan>,
    keys: &mut Vec<ListenerKey>,
) -> Vec<Listener<'a>> {
    gateway
        .spec
        .listeners
        .iter()
        .enumerate()
        .map(|(index, listener)| {
            let verdict: Option<&'a ListenerVerdict> = plan
                .and_then(|p| p.listeners.get(index))
                .filter(|v| v.name == listener.name);
            let tls_mode = listener.tls.as_ref().and_then(|t| t.mode.as_ref());
            let protocol = ListenerProtocol::parse(&listener.protocol, tls_mode);
            keys.push(ListenerKey {
                gateway: key.clone(),
                listener: listener.name.clone(),
            });
            Listener {
                id: ListenerId(keys.len() - 1),
                name: &listener.name,
                port: listener.port,
                protocol,
                hostname: listener
                    .hostname
                    .as_deref()
                    .filter(|_| protocol.is_some_and(ListenerProtocol::uses_hostname))
                    .map(str::to_ascii_lowercase),
                namespaces: allowed_namespaces(listener),
                kinds: verdict.map(|v| v.supported_kinds.as_slice()).unwrap_or_default(),
                programmed: verdict.is_some_and(|v| v.programmed),
            }
        })
        .collect()
}

fn allowed_namespaces(listener: &GatewayListeners) -> AllowedNamespaces<'_> {
    let namespaces = listener.allowed_routes.as_ref().and_then(|a| a.namespaces.as_ref());
    match namespaces.and_then(|n| n.from.as_ref()) {
        None | Some(From::Same) => AllowedNamespaces::Same,
        Some(From::All) => AllowedNamespaces::All,
        Some(From::Selector) => AllowedNamespaces::Selector(namespaces.and_then(|n| n.selector.as_ref())),
    }
}

/// The hostnames a route may match on one listener: the intersection of the listener's
/// hostname and the route's hostnames (lower-case; wildcards as `*.example.com`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hostnames {
    /// No hostname restriction on either side.
    Any,
    /// Only these (never empty).
    Only(Vec<String>),
}

/// A route attached to one listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    pub listener: ListenerKey,
    /// The listener port, which Kong sees as `net.dst.port`.
    pub port: u16,
    pub protocol: ListenerProtocol,
    pub hostnames: Hostnames,
    /// Listener isolation: hostnames (lower-case, sorted, none inside another) claimed by
    /// more specific listeners Kong serves on the same port. Requests for them are theirs,
    /// never this listener's, whatever the route's own hostnames say.
    pub more_specific: Arc<[String]>,
}

/// One `parentRefs` entry that names a Gateway of this class.
#[derive(Clone, Debug)]
pub struct ParentAttachment {
    pub parent_ref: ParentRef,
    /// `Accepted` for this parent (before rule problems are considered).
    pub accepted: Verdict,
    /// Every listener the route attached to through this parentRef, programmed or not: what
    /// the listeners' `attachedRoutes` count ([`Context::listener_key`] names them).
    pub listeners: Vec<ListenerId>,
    /// The attached listeners Kong serves (programmed by the planner): where the route's Kong
    /// routes are bound. Empty when not accepted.
    pub attachments: Vec<Attachment>,
}

/// The parentRefs of `route` that name Gateways of this class, in spec order. A parentRef to
/// anything else (another kind, a Gateway of another class, a Gateway that does not exist) is
/// not ours and gets no entry: its status belongs to whoever owns it.
pub fn attach(context: &Context<'_>, route: &RouteView) -> Vec<ParentAttachment> {
    route
        .parent_refs
        .iter()
        .filter(|parent_ref| parent_ref.is_gateway())
        .filter_map(|parent_ref| {
            let namespace = parent_ref.namespace.as_deref().unwrap_or(route.namespace());
            let gateway = context.gateway(namespace, &parent_ref.name)?;
            Some(attach_to_gateway(context, route, parent_ref, gateway))
        })
        .collect()
}

/// Why one listener did not take the route, for the message.
enum Refusal {
    Kind,
    Namespace,
    Hostname,
}

fn attach_to_gateway(
    context: &Context<'_>,
    route: &RouteView,
    parent_ref: &ParentRef,
    gateway: &GatewayFacts<'_>,
) -> ParentAttachment {
    // The spec treats an empty sectionName and a zero port as unset.
    let section = parent_ref.section_name.as_deref().filter(|s| !s.is_empty());
    let port = parent_ref.port.filter(|p| *p != 0);
    let selected: Vec<&Listener<'_>> = gateway
        .listeners
        .iter()
        .filter(|l| section.is_none_or(|s| s == l.name) && port.is_none_or(|p| p == l.port))
        .collect();

    let mut refusals = Vec::new();
    let mut listeners = Vec::new();
    let mut attachments = Vec::new();
    for listener in &selected {
        if !listener.kinds.contains(&route.route.kind) {
            refusals.push((listener.name, Refusal::Kind));
            continue;
        }
        if !namespace_allowed(context, listener, &gateway.key, route.namespace()) {
            refusals.push((listener.name, Refusal::Namespace));
            continue;
        }
        let Some(hostnames) = hostnames::on_listener(listener.hostname.as_deref(), &route.hostnames) else {
            refusals.push((listener.name, Refusal::Hostname));
            continue;
        };
        listeners.push(listener.id);
        // A programmed listener has a valid port and protocol: the planner checked both.
        if listener.programmed
            && let (Some(protocol), Ok(port)) = (listener.protocol, u16::try_from(listener.port))
        {
            attachments.push(Attachment {
                listener: context.listener_key(listener.id).clone(),
                port,
                protocol,
                hostnames,
                more_specific: context.more_specific.get(listener.id.0).cloned().unwrap_or_default(),
            });
        }
    }

    let accepted = if selected.is_empty() {
        Verdict::fail(reasons::NO_MATCHING_PARENT, no_matching_parent(gateway, section, port))
    } else if listeners.is_empty() {
        refused(route, gateway, &refusals)
    } else if attachments.is_empty() {
        Verdict::ok(
            reasons::ACCEPTED,
            format!(
                "Route is attached to Gateway {} but to no listener Kong serves yet; see the listener conditions",
                gateway.key
            ),
        )
    } else {
        Verdict::ok(reasons::ACCEPTED, "Route is accepted")
    };
    ParentAttachment {
        parent_ref: parent_ref.clone(),
        accepted,
        listeners,
        attachments,
    }
}

fn no_matching_parent(gateway: &GatewayFacts<'_>, section: Option<&str>, port: Option<i32>) -> String {
    match (section, port) {
        (Some(s), Some(p)) => format!("Gateway {} has no listener named {s:?} on port {p}", gateway.key),
        (Some(s), None) => format!("Gateway {} has no listener named {s:?}", gateway.key),
        (None, Some(p)) => format!("Gateway {} has no listener on port {p}", gateway.key),
        (None, None) => format!("Gateway {} has no listeners", gateway.key),
    }
}

/// The verdict when listeners were selected but none took the route: a hostname mismatch is
/// reported when it is what stopped the closest listener, otherwise the allowedRoutes refusal.
fn refused(route: &RouteView, gateway: &GatewayFacts<'_>, refusals: &[(&str, Refusal)]) -> Verdict {
    let names = |wanted: fn(&Refusal) -> bool| -> String {
        let names: Vec<String> = refusals
            .iter()
            .filter(|(_, r)| wanted(r))
            .map(|(n, _)| format!("{n:?}"))
            .collect();
        names.join(", ")
    };
    if refusals.iter().any(|(_, r)| matches!(r, Refusal::Hostname)) {
        return Verdict::fail(
            reasons::NO_MATCHING_LISTENER_HOSTNAME,
            format!(
                "No hostname of the route matches listener(s) {} of Gateway {}",
                names(|r| matches!(r, Refusal::Hostname)),
                gateway.key
            ),
        );
    }
    let mut parts = Vec::new();
    let by_kind = names(|r| matches!(r, Refusal::Kind));
    if !by_kind.is_empty() {
        parts.push(format!(
            "listener(s) {by_kind} do not allow {}",
            route.route.kind.as_str()
        ));
    }
    let by_namespace = names(|r| matches!(r, Refusal::Namespace));
    if !by_namespace.is_empty() {
        parts.push(format!(
            "listener(s) {by_namespace} do not allow routes from namespace {}",
            route.namespace()
        ));
    }
    Verdict::fail(
        reasons::NOT_ALLOWED_BY_LISTENERS,
        format!("Gateway {}: {}", gateway.key, parts.join("; ")),
    )
}

fn namespace_allowed(context: &Context<'_>, listener: &Listener<'_>, gateway: &ObjectKey, namespace: &str) -> bool {
    match listener.namespaces {
        AllowedNamespaces::Same => gateway.namespace == namespace,
        AllowedNamespaces::All => true,
        AllowedNamespaces::Selector(None) => false,
        AllowedNamespaces::Selector(Some(selector)) => {
            let labels = context.input.namespaces.get(namespace);
            selector_matches(selector, namespace, labels)
        }
    }
}

/// A label selector (Kubernetes semantics: every `matchLabels` pair and every
/// `matchExpressions` entry must hold; an empty selector matches everything; an unknown
/// operator matches nothing).
fn selector_matches(selector: &Selector, namespace: &str, labels: Option<&BTreeMap<String, String>>) -> bool {
    let label = |key: &str| -> Option<&str> {
        labels
            .and_then(|l| l.get(key))
            .map(String::as_str)
            .or_else(|| (key == NAMESPACE_NAME_LABEL).then_some(namespace))
    };
    let labels_hold = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(key, value)| label(key) == Some(value.as_str()));
    let expressions_hold = selector.match_expressions.iter().flatten().all(|expression| {
        let values = expression.values.as_deref().unwrap_or_default();
        let value = label(&expression.key);
        match expression.operator.as_str() {
            "In" => value.is_some_and(|v| values.iter().any(|w| w == v)),
            "NotIn" => value.is_none_or(|v| !values.iter().any(|w| w == v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
    });
    labels_hold && expressions_hold
}

#[cfg(test)]
mod tests;
