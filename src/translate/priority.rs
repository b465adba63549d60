//! Gateway API precedence as Kong route `priority`.
//!
//! Kong's expressions router tries routes by descending `priority` and takes the first whose
//! expression matches; routes of equal priority are ordered by id, which is effectively
//! arbitrary. So the priority must put every Kong route that can match a request above every
//! route of lower Gateway API precedence that can match it too.
//!
//! # Order
//! Each Kong route carries its [`Precedence`] facts. Routes are ordered by, best first:
//! 1. characters of the matching non-wildcard hostname (more wins);
//! 2. characters of the matching wildcard hostname (more wins; a route never mixes the two,
//!    nor hostnames of different lengths, so each route has one value of each);
//! 3. the path ([`PathPrecedence`]): `Exact` by length, then `PathPrefix` by length (of the
//!    prefix without its trailing `/`), then `RegularExpression` by pattern length, then
//!    `PathPrefix /` (every path). The spec leaves regular expressions implementation-specific:
//!    they rank below every real prefix so the spec's order among core matches is untouched,
//!    and above the catch-all so a regex route is not shadowed by `/`.
//!    gRPC: characters of the service, then of the method;
//! 4. a method match;
//! 5. number of header matches; 6. number of query parameter matches;
//! 7. the older route (creation timestamp; a route without one counts as the newest);
//! 8. `namespace/name` alphabetically (then the kind);
//! 9. rule index, then match index (first wins);
//! 10. the Kong route name, so the order is total even for the parts one match is split into.
//!
//! # Encoding and bit budget
//! The priority is the route's rank in that total order, counted from the bottom: with `N`
//! Kong routes the best gets `N`, the worst `1`. Every route gets its own priority, so two
//! routes that can match the same request never tie. A rank needs ⌈log₂(N+1)⌉ bits: 14 bits
//! for 10,000 Kong routes, 20 for a million; Kong's limit of 2^46 − 1 would take 7·10^13
//! routes to reach. No fact is packed into bit fields, so nothing is clamped or truncated: a
//! 253-character hostname or a 1,024-character path compares exactly (the facts are `u16`;
//! Gateway API caps hostnames at 253 and paths and patterns at 1,024 characters). Should the
//! count ever exceed the limit, the lowest routes share the value 1 rather than overflow.
//!
//! A rank renumbers the routes below a route that is added. That costs little: Kong DB-less
//! takes the whole config in one `POST /config` anyway, and the translator keeps the order
//! ([`Order`]) from one translation to the next, so a change places only the Kong routes it
//! touched (by binary search over precomputed [`SortKey`]s) and then renumbers in one pass.

use std::cmp::Ordering;
use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;

use super::kong;
use super::routes::RouteRef;

/// Kong's upper bound for `priority` with the expressions router.
pub const MAX_PRIORITY: u64 = (1 << 46) - 1;

/// How a path match ranks (see the module doc). Variants are in ascending precedence.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathPrecedence {
    /// No path condition (stream routes) or `PathPrefix /`.
    #[default]
    None,
    /// `RegularExpression`, ranked by pattern length.
    Regex(u16),
    /// `PathPrefix`, by characters (without a trailing `/`).
    Prefix(u16),
    /// `Exact`, by characters.
    Exact(u16),
    /// GRPCRoute: characters of the service, then of the method (pattern lengths for regular
    /// expressions). gRPC and HTTP routes never share a hostname on a listener, so where this
    /// variant sorts against the HTTP ones does not matter.
    Grpc { service: u16, method: u16 },
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

impl Precedence {
    /// Best first: `Less` means `self` takes precedence over `other` (the order [`sorted`]
    /// implements with precomputed keys).
    #[cfg(test)]
    pub fn precedes(&self, other: &Self) -> Ordering {
        specificity(other)
            .cmp(&specificity(self))
            .then_with(|| self.source_order(other))
            .then_with(|| self.rule.cmp(&other.rule))
            .then_with(|| self.match_index.cmp(&other.match_index))
    }

    /// Criteria 7–8: the older route, then `namespace/name`, then the kind.
    #[cfg(test)]
    fn source_order(&self, other: &Self) -> Ordering {
        let source = |p: &Self| Source {
            created: p.created,
            route: p.route.clone(),
        };
        source(self).order(&source(other))
    }
}

/// A u16 fact from a length or count, saturating (inputs the API admits stay far below).
pub fn fact(n: usize) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}

/// A Kong route before its priority is known, with the service it belongs to.
#[derive(Clone, Debug)]
pub struct PendingRoute {
    /// Name of the Kong service; `None` for routes that only run plugins.
    pub service: Option<String>,
    pub route: kong::Route,
    pub precedence: Precedence,
}

/// Criteria 1–6 as one integer, larger = more specific (an in-memory sort key, not the
/// priority: each fact keeps its full width).
fn specificity(p: &Precedence) -> u128 {
    let (kind, first, second) = match p.path {
        PathPrecedence::None => (0u128, 0u16, 0u16),
        PathPrecedence::Regex(n) => (1, n, 0),
        PathPrecedence::Prefix(n) => (2, n, 0),
        PathPrecedence::Exact(n) => (3, n, 0),
        PathPrecedence::Grpc { service, method } => (4, service, method),
    };
    (u128::from(p.exact_host_len) << 112)
        | (u128::from(p.wildcard_host_len) << 96)
        | (kind << 88)
        | (u128::from(first) << 72)
        | (u128::from(second) << 56)
        | (u128::from(p.method) << 48)
        | (u128::from(p.headers) << 32)
        | (u128::from(p.queries) << 16)
}

/// Criteria 7–8 of one Kubernetes route, shared by all its Kong routes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub created: Option<Timestamp>,
    pub route: RouteRef,
}

impl Source {
    fn order(&self, other: &Self) -> Ordering {
        match (&self.created, &other.created) {
            (Some(a), Some(b)) => a.cmp(b),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        }
        .then_with(|| self.route.key.cmp(&other.route.key))
        .then_with(|| self.route.kind.cmp(&other.route.kind))
    }
}

/// A Kong route's place in the order, precomputed once when the route is made: comparing two
/// keys costs an integer comparison unless both routes are equally specific.
#[derive(Clone, Debug)]
pub struct SortKey {
    specificity: u128,
    source: Arc<Source>,
    rule: u32,
    match_index: u32,
    /// Criterion 10 (the Kong route's name).
    route: Arc<kong::Route>,
}

impl SortKey {
    /// The key of a Kong route of the Kubernetes route `source` with these facts (only the
    /// specificity, rule and match of `precedence` are read: the rest is `source`'s).
    pub fn new(precedence: &Precedence, source: Arc<Source>, route: Arc<kong::Route>) -> Self {
        Self {
            specificity: specificity(precedence),
            source,
            rule: precedence.rule,
            match_index: precedence.match_index,
            route,
        }
    }

    /// A key for no route (sorts after every route of an empty name).
    pub fn placeholder() -> Self {
        Self {
            specificity: 0,
            source: Arc::new(Source {
                created: None,
                route: RouteRef {
                    kind: crate::plan::RouteKind::UdpRoute,
                    key: crate::api::ObjectKey::default(),
                },
            }),
            rule: u32::MAX,
            match_index: u32::MAX,
            route: Arc::new(kong::Route::default()),
        }
    }

    /// The Kubernetes route of the Kong route.
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// Best first.
    pub fn cmp(&self, other: &Self) -> Ordering {
        other
            .specificity
            .cmp(&self.specificity)
            .then_with(|| {
                if Arc::ptr_eq(&self.source, &other.source) {
                    Ordering::Equal
                } else {
                    self.source.order(&other.source)
                }
            })
            .then(self.rule.cmp(&other.rule))
            .then(self.match_index.cmp(&other.match_index))
            .then_with(|| self.route.name.cmp(&other.route.name))
    }
}

/// Indexes of `keys` best first. The Kubernetes routes are ranked once (age, then
/// namespace/name, then kind) rather than compared again for each of their Kong routes, so
/// the big sort compares integers unless two Kong routes tie on everything but the name.
pub fn sorted(keys: &[&SortKey]) -> Vec<usize> {
    // The Kong routes of one Kubernetes route share its source: order each source once.
    let mut sources: Vec<&Arc<Source>> = keys.iter().map(|k| &k.source).collect();
    sources.sort_unstable_by_key(|s| Arc::as_ptr(s));
    sources.dedup_by(|a, b| Arc::ptr_eq(a, b));
    sources.sort_by(|a, b| a.order(b));
    // Rank by address: equal sources (the same route) share a rank, distinct ones follow order.
    let mut rank_of: Vec<(*const Source, u32)> = Vec::with_capacity(sources.len());
    let mut rank = 0u32;
    for (i, source) in sources.iter().enumerate() {
        if i > 0 && sources[i - 1].order(source) != Ordering::Equal {
            rank = rank.saturating_add(1);
        }
        rank_of.push((Arc::as_ptr(source), rank));
    }
    rank_of.sort_unstable_by_key(|(address, _)| *address);
    let source_rank = |source: &Arc<Source>| -> u32 {
        let address = Arc::as_ptr(source);
        rank_of
            .binary_search_by_key(&address, |(a, _)| *a)
            .ok()
            .and_then(|i| rank_of.get(i))
            .map_or(u32::MAX, |(_, r)| *r)
    };
    let mut order: Vec<(std::cmp::Reverse<u128>, u32, u32, u32, usize)> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            (
                std::cmp::Reverse(k.specificity),
                source_rank(&k.source),
                k.rule,
                k.match_index,
                i,
            )
        })
        .collect();
    order.sort_unstable_by(|a, b| {
        a.0.cmp(&b.0)
            .then(a.1.cmp(&b.1))
            .then(a.2.cmp(&b.2))
            .then(a.3.cmp(&b.3))
            .then_with(|| keys[a.4].route.name.cmp(&keys[b.4].route.name))
    });
    order.into_iter().map(|k| k.4).collect()
}

/// Kong's priority for the route at `position` (0 = best) of `count`.
pub fn priority_at(position: usize, count: usize) -> u64 {
    let count = u64::try_from(count).unwrap_or(u64::MAX);
    let position = u64::try_from(position).unwrap_or(u64::MAX);
    count.saturating_sub(position).clamp(1, MAX_PRIORITY)
}

/// The priority of every route, in the order given: what Gateway API's precedence demands.
#[cfg(test)]
pub fn priorities(routes: &[PendingRoute]) -> Vec<u64> {
    let keys: Vec<SortKey> = routes
        .iter()
        .map(|r| {
            let p = &r.precedence;
            let source = Arc::new(Source {
                created: p.created,
                route: p.route.clone(),
            });
            SortKey::new(p, source, Arc::new(r.route.clone()))
        })
        .collect();
    let refs: Vec<&SortKey> = keys.iter().collect();
    let mut priorities = vec![0; routes.len()];
    for (position, index) in sorted(&refs).into_iter().enumerate() {
        priorities[index] = priority_at(position, routes.len());
    }
    priorities
}

/// Kong routes (by the translator's ids) best first, kept from one translation to the next:
/// a change places the routes it touched by binary search instead of sorting them all again.
#[derive(Clone, Debug, Default)]
pub struct Order {
    ids: Vec<u32>,
    /// The buffer the next merge writes to (kept, like the order, from call to call).
    spare: Vec<u32>,
}

impl Order {
    /// Ids best first.
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }

    /// Drops the ids `gone` says are gone (keys need not be available any more).
    pub fn remove(&mut self, gone: impl Fn(u32) -> bool) {
        self.ids.retain(|&id| !gone(id));
    }

    /// Adds `added` (left in any order); `key` answers for every id already in the order and
    /// every added one.
    pub fn insert<'k>(&mut self, added: &mut [u32], key: impl Fn(u32) -> &'k SortKey) {
        if added.is_empty() {
            return;
        }
        let mut merged = std::mem::take(&mut self.spare);
        merged.clear();
        // Many new routes (a first translation, a change of Gateway): one sort of everything
        // is cheaper than placing each, and ranks the Kubernetes routes only once.
        if added.len().saturating_mul(8) > self.ids.len() {
            self.ids.extend_from_slice(added);
            let keys: Vec<&SortKey> = self.ids.iter().map(|&id| key(id)).collect();
            merged.extend(sorted(&keys).into_iter().filter_map(|i| self.ids.get(i).copied()));
            self.spare = std::mem::replace(&mut self.ids, merged);
            return;
        }
        added.sort_unstable_by(|&a, &b| key(a).cmp(key(b)));
        merged.reserve(self.ids.len() + added.len());
        let mut from = 0;
        for &id in added.iter() {
            let new = key(id);
            let rest = self.ids.get(from..).unwrap_or_default();
            let at = from + rest.partition_point(|&old| key(old).cmp(new) == Ordering::Less);
            merged.extend_from_slice(self.ids.get(from..at).unwrap_or_default());
            merged.push(id);
            from = at;
        }
        merged.extend_from_slice(self.ids.get(from..).unwrap_or_default());
        self.spare = std::mem::replace(&mut self.ids, merged);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ObjectKey;
    use crate::plan::RouteKind;

    fn route(name: &str, precedence: Precedence) -> PendingRoute {
        PendingRoute {
            service: None,
            route: kong::Route {
                name: name.to_string(),
                ..kong::Route::default()
            },
            precedence,
        }
    }

    fn facts(ns_name: &str) -> Precedence {
        let (ns, name) = ns_name.split_once('/').unwrap_or(("default", ns_name));
        Precedence {
            exact_host_len: 0,
            wildcard_host_len: 0,
            path: PathPrecedence::None,
            method: false,
            headers: 0,
            queries: 0,
            created: None,
            route: RouteRef {
                kind: RouteKind::HttpRoute,
                key: ObjectKey::new(ns, name),
            },
            rule: 0,
            match_index: 0,
        }
    }

    fn ts(s: &str) -> Option<Timestamp> {
        Some(s.parse().expect("timestamp"))
    }

    /// Assigns priorities and returns the names best first.
    fn ranked(routes: Vec<PendingRoute>) -> Vec<String> {
        let priorities = priorities(&routes);
        let mut routes: Vec<(u64, PendingRoute)> = priorities.into_iter().zip(routes).collect();
        routes.sort_by_key(|(priority, _)| std::cmp::Reverse(*priority));
        routes.into_iter().map(|(_, r)| r.route.name).collect()
    }

    #[test]
    fn each_criterion_outranks_everything_after_it() {
        // Listed best first; each one wins on exactly the criterion its name says.
        let steps: Vec<(&str, Precedence)> = vec![
            (
                "exact-host",
                Precedence {
                    exact_host_len: 5,
                    ..facts("z/z")
                },
            ),
            (
                "longer-wildcard",
                Precedence {
                    wildcard_host_len: 9,
                    path: PathPrecedence::Exact(900),
                    ..facts("z/z")
                },
            ),
            (
                "wildcard",
                Precedence {
                    wildcard_host_len: 7,
                    path: PathPrecedence::Exact(900),
                    ..facts("z/z")
                },
            ),
            (
                "exact-path",
                Precedence {
                    path: PathPrecedence::Exact(1),
                    headers: 0,
                    ..facts("z/z")
                },
            ),
            (
                "longer-prefix",
                Precedence {
                    path: PathPrecedence::Prefix(5),
                    ..facts("z/z")
                },
            ),
            (
                "prefix",
                Precedence {
                    path: PathPrecedence::Prefix(2),
                    method: true,
                    headers: 16,
                    ..facts("z/z")
                },
            ),
            (
                "regex",
                Precedence {
                    path: PathPrecedence::Regex(900),
                    method: true,
                    ..facts("z/z")
                },
            ),
            (
                "method",
                Precedence {
                    method: true,
                    ..facts("z/z")
                },
            ),
            (
                "headers",
                Precedence {
                    headers: 2,
                    ..facts("z/z")
                },
            ),
            (
                "header",
                Precedence {
                    headers: 1,
                    queries: 16,
                    ..facts("z/z")
                },
            ),
            (
                "queries",
                Precedence {
                    queries: 1,
                    created: ts("2030-01-01T00:00:00Z"),
                    ..facts("z/z")
                },
            ),
            (
                "older",
                Precedence {
                    created: ts("2020-01-01T00:00:00Z"),
                    ..facts("z/z")
                },
            ),
            (
                "newer",
                Precedence {
                    created: ts("2021-01-01T00:00:00Z"),
                    ..facts("z/z")
                },
            ),
            ("no-timestamp-a/b", facts("a/b")),
            ("no-timestamp-a/c", facts("a/c")),
            (
                "rule-0-match-1",
                Precedence {
                    rule: 0,
                    match_index: 1,
                    ..facts("b/a")
                },
            ),
            (
                "rule-1-match-0",
                Precedence {
                    rule: 1,
                    match_index: 0,
                    ..facts("b/a")
                },
            ),
        ];
        let expected: Vec<String> = steps.iter().map(|(n, _)| n.to_string()).collect();
        let mut shuffled: Vec<PendingRoute> = steps.into_iter().map(|(n, p)| route(n, p)).collect();
        shuffled.reverse();
        assert_eq!(ranked(shuffled), expected);
    }

    #[test]
    fn grpc_ranks_service_characters_before_method_characters() {
        let longer_service = Precedence {
            path: PathPrecedence::Grpc { service: 7, method: 0 },
            ..facts("a/a")
        };
        let longer_method = Precedence {
            path: PathPrecedence::Grpc { service: 5, method: 3 },
            ..facts("a/b")
        };
        assert_eq!(
            ranked(vec![route("method", longer_method), route("service", longer_service)]),
            ["service", "method"]
        );
    }

    #[test]
    fn namespace_and_name_break_ties_before_the_kind() {
        let grpc = Precedence {
            route: RouteRef {
                kind: RouteKind::GrpcRoute,
                key: ObjectKey::new("a", "a"),
            },
            ..facts("a/a")
        };
        assert_eq!(
            ranked(vec![
                route("http-b", facts("a/b")),
                route("grpc-a", grpc),
                route("http-a", facts("a/a"))
            ]),
            ["http-a", "grpc-a", "http-b"]
        );
    }

    #[test]
    fn every_route_gets_its_own_priority_even_with_identical_facts() {
        let routes = vec![route("b", facts("x/y")), route("a", facts("x/y"))];
        let priorities = priorities(&routes);
        assert_ne!(priorities[0], priorities[1]);
        assert_eq!(ranked(routes), ["a", "b"]);
    }

    #[test]
    fn ten_thousand_routes_with_extreme_lengths_stay_unique_and_within_kongs_limit() {
        let routes: Vec<PendingRoute> = (0..10_000u32)
            .map(|i| {
                let precedence = Precedence {
                    exact_host_len: if i % 3 == 0 { 253 } else { 0 },
                    wildcard_host_len: if i % 3 == 1 { 253 } else { 0 },
                    path: match i % 4 {
                        0 => PathPrecedence::Exact(1024),
                        1 => PathPrecedence::Prefix(1024),
                        2 => PathPrecedence::Regex(1024),
                        _ => PathPrecedence::None,
                    },
                    method: i % 2 == 0,
                    headers: 16,
                    queries: 16,
                    rule: i % 16,
                    match_index: i % 64,
                    ..facts(&format!("ns-{}/route-{i}", i % 100))
                };
                route(&format!("r{i}"), precedence)
            })
            .collect();
        let assigned = priorities(&routes);
        let mut priorities = assigned.clone();
        priorities.sort_unstable();
        priorities.dedup();
        assert_eq!(priorities.len(), 10_000);
        assert_eq!(priorities.first(), Some(&1));
        assert_eq!(priorities.last(), Some(&10_000));
        assert!(priorities.iter().all(|&p| p <= MAX_PRIORITY));
        // The best route is an exact 253-character host with an exact 1,024-character path.
        let best = routes
            .iter()
            .zip(&assigned)
            .max_by_key(|(_, p)| **p)
            .map(|(r, _)| r)
            .expect("routes");
        assert_eq!(best.precedence.exact_host_len, 253);
        assert_eq!(best.precedence.path, PathPrecedence::Exact(1024));
    }

    #[test]
    fn the_packed_sort_key_orders_like_the_criteria_one_by_one() {
        let variants = [
            Precedence {
                exact_host_len: 1,
                ..facts("a/a")
            },
            Precedence {
                wildcard_host_len: u16::MAX,
                path: PathPrecedence::Grpc {
                    service: u16::MAX,
                    method: u16::MAX,
                },
                ..facts("a/a")
            },
            Precedence {
                path: PathPrecedence::Exact(0),
                ..facts("a/a")
            },
            Precedence {
                path: PathPrecedence::Prefix(u16::MAX),
                method: true,
                headers: u16::MAX,
                queries: u16::MAX,
                ..facts("a/a")
            },
            Precedence {
                path: PathPrecedence::Regex(3),
                ..facts("a/a")
            },
            Precedence {
                method: true,
                ..facts("a/a")
            },
            Precedence {
                headers: 1,
                queries: u16::MAX,
                ..facts("a/a")
            },
            Precedence {
                queries: 1,
                ..facts("a/a")
            },
            facts("a/a"),
        ];
        for (i, a) in variants.iter().enumerate() {
            for (j, b) in variants.iter().enumerate() {
                assert_eq!(
                    specificity(b).cmp(&specificity(a)),
                    a.precedes(b).then(Ordering::Equal),
                    "{i} vs {j}"
                );
                assert_eq!(specificity(a) > specificity(b), i < j, "{i} vs {j}");
            }
        }
    }

    #[test]
    fn facts_saturate_instead_of_wrapping() {
        assert_eq!(fact(1024), 1024);
        assert_eq!(fact(usize::MAX), u16::MAX);
    }
}
