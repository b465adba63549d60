//! `OverlappingTLSConfig`: TLS-terminating listeners on one port whose hostnames both
//! match some host name. With HTTP connection coalescing a client may reuse a connection
//! made for one of them for requests to the other, so the spec asks implementations to
//! point this out (it MUST detect overlapping hostnames; overlapping certificates are a MAY
//! that kongress does not check).

use std::collections::{BTreeSet, HashMap};

use super::conflicts::key_of;
use super::listener::Candidate;
use super::{GatewayPlan, ListenerKey, ListenerProtocol};

/// Whether two different listener hostnames match a common host. `None` matches every
/// host; `*.example.com` matches any name ending in `.example.com`, at any depth.
pub(super) fn hostnames_overlap(a: Option<&str>, b: Option<&str>) -> bool {
    let (Some(a), Some(b)) = (a, b) else {
        return true;
    };
    if a == b {
        return true;
    }
    let under = |name: &str, suffix: &str| {
        name.len() > suffix.len() + 1
            && name.ends_with(suffix)
            && name.as_bytes()[name.len() - suffix.len() - 1] == b'.'
    };
    match (a.strip_prefix("*."), b.strip_prefix("*.")) {
        (Some(x), Some(y)) => x == y || under(x, y) || under(y, x),
        (Some(x), None) => under(b, x),
        (None, Some(y)) => under(a, y),
        (None, None) => false,
    }
}

/// Fills `overlapping_tls` of every served TLS-terminating listener with the other served
/// listeners on its port whose hostname overlaps its own. Listeners with the same hostname
/// are shared (same certificates), not overlapping.
pub(super) fn record_overlaps(plans: &mut [GatewayPlan], served: &[&Candidate]) {
    let mut by_port: HashMap<(u16, ListenerProtocol), Vec<&Candidate>> = HashMap::new();
    for candidate in served.iter().filter(|c| c.protocol.terminates_tls()) {
        by_port
            .entry((candidate.port, candidate.protocol))
            .or_default()
            .push(candidate);
    }
    let mut found: HashMap<(usize, usize), BTreeSet<ListenerKey>> = HashMap::new();
    for group in by_port.values().filter(|g| g.len() > 1) {
        // Two exact hostnames never overlap unless equal, so every overlapping pair has a
        // wildcard or an empty hostname on one side: start from those.
        for wide in group
            .iter()
            .filter(|c| c.hostname.as_deref().is_none_or(|h| h.starts_with("*.")))
        {
            for other in group {
                if other.hostname == wide.hostname
                    || !hostnames_overlap(wide.hostname.as_deref(), other.hostname.as_deref())
                {
                    continue;
                }
                let (wide_key, other_key) = (key_of(plans, wide), key_of(plans, other));
                found
                    .entry((wide.gateway, wide.listener))
                    .or_default()
                    .insert(other_key);
                found
                    .entry((other.gateway, other.listener))
                    .or_default()
                    .insert(wide_key);
            }
        }
    }
    for ((gateway, listener), keys) in found {
        plans[gateway].listeners[listener].overlapping_tls = keys.into_iter().collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_overlaps_the_names_under_it_at_any_depth_but_not_its_apex() {
        assert!(hostnames_overlap(Some("*.example.com"), Some("foo.example.com")));
        assert!(hostnames_overlap(Some("a.b.example.com"), Some("*.example.com")));
        assert!(!hostnames_overlap(Some("*.example.com"), Some("example.com")));
        assert!(!hostnames_overlap(Some("*.example.com"), Some("foo.example.org")));
        assert!(!hostnames_overlap(Some("*.example.com"), Some("fooexample.com")));
    }

    #[test]
    fn two_wildcards_overlap_when_one_suffix_lies_under_the_other() {
        assert!(hostnames_overlap(Some("*.a.example.com"), Some("*.example.com")));
        assert!(!hostnames_overlap(Some("*.a.example.com"), Some("*.b.example.com")));
        assert!(!hostnames_overlap(Some("*.example.com"), Some("*.xexample.com")));
    }

    #[test]
    fn distinct_exact_names_never_overlap_and_no_hostname_overlaps_everything() {
        assert!(!hostnames_overlap(Some("a.example.com"), Some("b.example.com")));
        assert!(hostnames_overlap(None, Some("a.example.com")));
        assert!(hostnames_overlap(Some("*.example.com"), None));
    }
}
