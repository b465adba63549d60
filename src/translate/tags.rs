//! Tags that tie every Kong entity to the Kubernetes object it came from.
//!
//! Kong's own ingress controller uses this convention; decK shows the tags, and Kong's
//! flattened errors (`POST /config?flatten_errors=1`) return them with each rejected
//! entity, which is how a rejection is reported on the object that caused it.

use crate::api::ObjectKey;

pub const NAME: &str = "k8s-name:";
pub const NAMESPACE: &str = "k8s-namespace:";
pub const KIND: &str = "k8s-kind:";
pub const GROUP: &str = "k8s-group:";
pub const VERSION: &str = "k8s-version:";

/// The Kubernetes object an entity was made from.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Source<'a> {
    /// Empty for the core group (Service, Secret).
    pub group: &'a str,
    pub version: &'a str,
    pub kind: &'a str,
    pub key: &'a ObjectKey,
}

/// The five tags of a source, in a fixed order.
pub fn of(source: &Source<'_>) -> Vec<String> {
    let group = if source.group.is_empty() { "core" } else { source.group };
    vec![
        format!("{NAME}{}", source.key.name),
        format!("{NAMESPACE}{}", source.key.namespace),
        format!("{KIND}{}", source.kind),
        format!("{GROUP}{group}"),
        format!("{VERSION}{}", source.version),
    ]
}

/// The source named by a set of tags, as Kong hands them back in a flattened error.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaggedSource {
    pub group: String,
    pub kind: String,
    pub key: ObjectKey,
}

/// Reads the source back from an entity's tags; `None` when a tag is missing.
pub fn parse(tags: &[String]) -> Option<TaggedSource> {
    let find = |prefix: &str| tags.iter().find_map(|t| t.strip_prefix(prefix));
    let group = find(GROUP)?;
    Some(TaggedSource {
        group: if group == "core" {
            String::new()
        } else {
            group.to_string()
        },
        kind: find(KIND)?.to_string(),
        key: ObjectKey::new(find(NAMESPACE)?, find(NAME)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_name_the_source_object_and_read_back() {
        let key = ObjectKey::new("shop", "cart");
        let tags = of(&Source {
            group: "gateway.networking.k8s.io",
            version: "v1",
            kind: "HTTPRoute",
            key: &key,
        });
        assert_eq!(
            tags,
            [
                "k8s-name:cart",
                "k8s-namespace:shop",
                "k8s-kind:HTTPRoute",
                "k8s-group:gateway.networking.k8s.io",
                "k8s-version:v1"
            ]
        );
        let back = parse(&tags).expect("all tags present");
        assert_eq!(back.kind, "HTTPRoute");
        assert_eq!(back.key, key);
    }

    #[test]
    fn core_group_is_written_as_core_and_read_back_empty() {
        let key = ObjectKey::new("shop", "tls");
        let tags = of(&Source {
            group: "",
            version: "v1",
            kind: "Secret",
            key: &key,
        });
        assert!(tags.contains(&"k8s-group:core".to_string()));
        assert_eq!(parse(&tags).map(|s| s.group), Some(String::new()));
    }

    #[test]
    fn entities_without_all_tags_have_no_source() {
        assert_eq!(parse(&["k8s-name:x".to_string()]), None);
    }
}
