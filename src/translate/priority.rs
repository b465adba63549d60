//! Gateway API precedence as Kong route `priority`.
//!
//! STUB: to be written (encoding, bit budget, tests).

use k8s_openapi::jiff::Timestamp;

use super::kong;
use super::routes::RouteRef;

/// How a path match ranks (Gateway API: Exact beats the longest Prefix).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathPrecedence {
    /// No path condition (stream routes) or `PathPrefix /`.
    #[default]
    None,
    /// `RegularExpression`, ranked by pattern length.
    Regex(u16),
    /// `PathPrefix`, by characters.
    Prefix(u16),
    /// `Exact`, by characters.
    Exact(u16),
}

/// The facts Gateway API orders matches by, for one Kong route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Precedence {
    /// Characters of the non-wildcard hostname this Kong route matches (0 for wildcard or any).
    pub exact_host_len: u16,
    /// Characters of the wildcard hostname this Kong route matches (0 for exact or any).
    pub wildcard_host_len: u16,
    pub path: PathPrecedence,
    pub method: bool,
    pub headers: u16,
    pub queries: u16,
    /// Older routes win ties.
    pub created: Option<Timestamp>,
    /// Then `namespace/name` (and kind).
    pub route: RouteRef,
    /// Then the rule's index in the route, then the match's index in the rule.
    pub rule: u32,
    pub match_index: u32,
}

/// A Kong route before its priority is known, with the service it belongs to.
#[derive(Clone, Debug)]
pub struct PendingRoute {
    /// Name of the Kong service; `None` for routes that only run plugins.
    pub service: Option<String>,
    pub route: kong::Route,
    pub precedence: Precedence,
}

/// Sets `priority` on every route so that Kong picks what Gateway API's precedence demands.
pub fn assign(_routes: &mut [PendingRoute]) {}
