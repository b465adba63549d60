//! Hostname matching and intersection (listener × route), as Gateway API v1.5 defines them.
//!
//! A hostname is either exact (`foo.example.com`) or a wildcard (`*.example.com`). A wildcard
//! matches any name that ends in its suffix with at least one more label before it, at any
//! depth (`a.example.com`, `a.b.example.com`), and never the bare suffix (`example.com`).
//! That is the listener rule (`Listener.hostname`) and the route rule (`HTTPRoute.hostnames`,
//! `TLSRoute.hostnames`) alike.

use std::borrow::Cow;

use super::attach::Hostnames;

/// Lower case, without copying what already is (the API server only admits lower-case
/// hostnames; files read by `kongress translate` did not meet it).
fn lower(hostname: &str) -> Cow<'_, str> {
    if hostname.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(hostname.to_ascii_lowercase())
    } else {
        Cow::Borrowed(hostname)
    }
}

/// The suffix of a wildcard (`*.example.com` → `example.com`); `None` for an exact name.
fn wildcard_suffix(hostname: &str) -> Option<&str> {
    hostname.strip_prefix("*.")
}

/// Whether `name` (exact or the suffix of another wildcard) lies strictly below `suffix`:
/// it ends in `.suffix` with a non-empty label in front.
fn is_below(name: &str, suffix: &str) -> bool {
    name.len() > suffix.len() + 1
        && name.ends_with(suffix)
        && name.as_bytes().get(name.len() - suffix.len() - 1) == Some(&b'.')
}

/// The names both patterns match, as one pattern; `None` when they share no name.
/// Inputs are lower-case.
///
/// - exact × exact: equal names;
/// - exact × wildcard: the exact name when the wildcard covers it;
/// - wildcard × wildcard: the narrower wildcard when one covers the other.
pub fn intersect<'h>(listener: &'h str, route: &'h str) -> Option<&'h str> {
    match (wildcard_suffix(listener), wildcard_suffix(route)) {
        (None, None) => (listener == route).then_some(listener),
        (None, Some(route_suffix)) => is_below(listener, route_suffix).then_some(listener),
        (Some(listener_suffix), None) => is_below(route, listener_suffix).then_some(route),
        (Some(listener_suffix), Some(route_suffix)) => {
            if listener_suffix == route_suffix || is_below(listener_suffix, route_suffix) {
                Some(listener)
            } else if is_below(route_suffix, listener_suffix) {
                Some(route)
            } else {
                None
            }
        }
    }
}

/// Whether `name` is strictly narrower than `pattern`: every name it matches, `pattern`
/// matches too, and they differ (`a.example.com` and `*.a.example.com` are narrower than
/// `*.example.com`; nothing is narrower than an exact name). Inputs are lower-case.
pub fn is_narrower(name: &str, pattern: &str) -> bool {
    name != pattern && intersect(pattern, name) == Some(name)
}

/// Listener isolation for one hostname a route matches on a listener (`None`: any).
/// `more_specific` holds the hostnames of more specific listeners on the same port (see
/// [`super::attach::Attachment::more_specific`]); requests for them belong to those listeners.
///
/// `None` when one of them covers the whole hostname (the route gets no traffic for it on
/// this listener); else the ones that carve a part out of it, which the route must refuse.
pub fn isolate<'m>(hostname: Option<&str>, more_specific: &'m [String]) -> Option<Vec<&'m str>> {
    let Some(hostname) = hostname else {
        return Some(more_specific.iter().map(String::as_str).collect());
    };
    let mut carved = Vec::new();
    for claimed in more_specific {
        if claimed == hostname || is_narrower(hostname, claimed) {
            return None;
        }
        if is_narrower(claimed, hostname) {
            carved.push(claimed.as_str());
        }
    }
    Some(carved)
}

/// The hostnames a route may match on a listener; `None` when listener and route both name
/// hostnames and none intersect (the route does not attach to that listener).
///
/// A listener without hostname accepts every route hostname; a route without hostnames takes
/// the listener's. The result is lower-case, sorted and free of duplicates.
pub fn on_listener(listener: Option<&str>, route: &[String]) -> Option<Hostnames> {
    let names: Vec<String> = match listener {
        None if route.is_empty() => return Some(Hostnames::Any),
        None => sorted_unique(route.iter().map(|r| lower(r))),
        Some(listener) => {
            let listener = lower(listener);
            if route.is_empty() {
                vec![listener.into_owned()]
            } else {
                let lowered: Vec<Cow<'_, str>> = route.iter().map(|r| lower(r)).collect();
                sorted_unique(
                    lowered
                        .iter()
                        .filter_map(|r| intersect(&listener, r))
                        .map(Cow::Borrowed),
                )
            }
        }
    };
    (!names.is_empty()).then_some(Hostnames::Only(names))
}

/// Owned, sorted and without duplicates; names are compared before any is copied.
fn sorted_unique<'h>(names: impl Iterator<Item = Cow<'h, str>>) -> Vec<String> {
    let mut names: Vec<Cow<'h, str>> = names.collect();
    if names.len() > 1 {
        names.sort();
        names.dedup();
    }
    names.into_iter().map(Cow::into_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn only(names: &[&str]) -> Option<Hostnames> {
        Some(Hostnames::Only(names.iter().map(|n| n.to_string()).collect()))
    }

    fn strings(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn exact_names_intersect_only_when_equal() {
        assert_eq!(intersect("a.example.com", "a.example.com"), Some("a.example.com"));
        assert_eq!(intersect("a.example.com", "b.example.com"), None);
    }

    #[test]
    fn a_wildcard_matches_names_at_any_depth_below_its_suffix() {
        assert_eq!(intersect("*.example.com", "test.example.com"), Some("test.example.com"));
        assert_eq!(
            intersect("*.example.com", "foo.test.example.com"),
            Some("foo.test.example.com")
        );
        assert_eq!(intersect("test.example.com", "*.example.com"), Some("test.example.com"));
    }

    #[test]
    fn a_wildcard_never_matches_its_bare_suffix() {
        assert_eq!(intersect("*.example.com", "example.com"), None);
        assert_eq!(intersect("example.com", "*.example.com"), None);
    }

    #[test]
    fn a_wildcard_suffix_matches_whole_labels_only() {
        assert_eq!(intersect("*.example.com", "badexample.com"), None);
        assert_eq!(intersect("*.example.com", "test.example.net"), None);
    }

    #[test]
    fn wildcard_against_wildcard_gives_the_narrower_one() {
        assert_eq!(intersect("*.example.com", "*.example.com"), Some("*.example.com"));
        assert_eq!(
            intersect("*.example.com", "*.foo.example.com"),
            Some("*.foo.example.com")
        );
        assert_eq!(
            intersect("*.foo.example.com", "*.example.com"),
            Some("*.foo.example.com")
        );
        assert_eq!(intersect("*.example.com", "*.example.net"), None);
        assert_eq!(intersect("*.example.com", "*.badexample.com"), None);
    }

    #[test]
    fn no_hostname_on_either_side_matches_any_host() {
        assert_eq!(on_listener(None, &[]), Some(Hostnames::Any));
    }

    #[test]
    fn a_listener_without_hostname_takes_the_route_hostnames() {
        assert_eq!(
            on_listener(None, &strings(&["b.example.com", "*.example.com", "b.example.com"])),
            only(&["*.example.com", "b.example.com"])
        );
    }

    #[test]
    fn a_route_without_hostnames_takes_the_listener_hostname() {
        assert_eq!(on_listener(Some("*.example.com"), &[]), only(&["*.example.com"]));
    }

    #[test]
    fn route_hostnames_outside_the_listener_hostname_are_ignored() {
        assert_eq!(
            on_listener(
                Some("*.example.com"),
                &strings(&["test.example.com", "test.example.net"])
            ),
            only(&["test.example.com"])
        );
    }

    #[test]
    fn no_intersection_means_no_attachment() {
        assert_eq!(on_listener(Some("a.example.com"), &strings(&["b.example.com"])), None);
    }

    #[test]
    fn narrower_means_strictly_inside() {
        assert!(is_narrower("a.example.com", "*.example.com"));
        assert!(is_narrower("*.a.example.com", "*.example.com"));
        assert!(!is_narrower("*.example.com", "*.example.com"));
        assert!(!is_narrower("example.com", "*.example.com"));
        assert!(!is_narrower("*.example.com", "a.example.com"));
    }

    #[test]
    fn isolation_drops_hostnames_a_more_specific_listener_claims_and_carves_out_the_rest() {
        let claimed = strings(&["*.foo.example.com", "bar.example.com"]);
        assert_eq!(isolate(Some("bar.example.com"), &claimed), None);
        assert_eq!(isolate(Some("x.foo.example.com"), &claimed), None);
        assert_eq!(isolate(Some("*.a.foo.example.com"), &claimed), None);
        assert_eq!(
            isolate(Some("*.example.com"), &claimed),
            Some(vec!["*.foo.example.com", "bar.example.com"])
        );
        assert_eq!(isolate(Some("other.com"), &claimed), Some(vec![]));
        assert_eq!(
            isolate(None, &claimed),
            Some(vec!["*.foo.example.com", "bar.example.com"])
        );
    }

    #[test]
    fn hostnames_are_lower_cased() {
        assert_eq!(
            on_listener(Some("A.Example.com"), &strings(&["*.EXAMPLE.com"])),
            only(&["a.example.com"])
        );
    }
}
