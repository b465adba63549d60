//! Names of the data plane objects of one GatewayClass.
//!
//! A GatewayClass name is a DNS subdomain (dots allowed, up to 253 characters) but a
//! Service name must be a DNS-1035 label (no dots, at most 63 characters), so a class
//! name that does not fit is shortened and made unique again with a hash of the full name.

use sha2::{Digest, Sha256};

/// Every data plane name starts with this, which also guarantees a leading letter.
const NAME_PREFIX: &str = "kongress-";
/// The longest suffix [`data_plane_names`] appends to the base name.
const LONGEST_SUFFIX: &str = "-admin-tls";
/// Longest name Kubernetes accepts for a Service (a DNS-1035 label).
const MAX_NAME_LEN: usize = 63;
/// Hex characters of the class name's sha256 kept in a shortened name: 32 bits make an
/// accidental collision between two classes of one cluster practically impossible.
const HASH_LEN: usize = 8;

/// Namespace and names of the objects that make up one class's data plane.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataPlaneNames {
    pub namespace: String,
    /// The Kong Deployment; also the value of the instance label that selects its pods.
    pub deployment: String,
    pub proxy_service: String,
    pub admin_service: String,
    pub admin_tls_secret: String,
    /// Value of the `gateway.networking.k8s.io/gateway-class-name` label: the class name,
    /// shortened with a hash when it is longer than a label value may be (63 characters).
    pub class_label: String,
}

/// Deterministic names, each a valid DNS-1035 label of at most 63 characters, for the
/// data plane of the GatewayClass `class_name`, living in `namespace`.
pub fn data_plane_names(class_name: &str, namespace: &str) -> DataPlaneNames {
    let base = base_name(class_name);
    DataPlaneNames {
        namespace: namespace.to_string(),
        deployment: base.clone(),
        proxy_service: format!("{base}-proxy"),
        admin_service: format!("{base}-admin"),
        admin_tls_secret: format!("{base}{LONGEST_SUFFIX}"),
        class_label: class_label_value(class_name),
    }
}

/// A label value for the class: the name itself when it fits. Class names are DNS
/// subdomains, so they only need shortening, never other characters.
fn class_label_value(class_name: &str) -> String {
    if class_name.len() <= MAX_NAME_LEN {
        return class_name.to_string();
    }
    let hash = hex::encode(Sha256::digest(class_name.as_bytes()));
    let keep = MAX_NAME_LEN - 1 - HASH_LEN;
    let prefix = class_name[..keep].trim_end_matches(['-', '.']);
    format!("{prefix}-{}", &hash[..HASH_LEN])
}

fn base_name(class_name: &str) -> String {
    let plain = format!("{NAME_PREFIX}{class_name}");
    let fits = plain.len() + LONGEST_SUFFIX.len() <= MAX_NAME_LEN;
    let label_safe = !class_name.is_empty()
        && class_name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !class_name.ends_with('-');
    if fits && label_safe {
        return plain;
    }

    let hash = hex::encode(Sha256::digest(class_name.as_bytes()));
    let hash = &hash[..HASH_LEN];
    let room = MAX_NAME_LEN - NAME_PREFIX.len() - LONGEST_SUFFIX.len() - 1 - HASH_LEN;
    let readable = sanitised_prefix(class_name, room);
    if readable.is_empty() {
        format!("{NAME_PREFIX}{hash}")
    } else {
        format!("{NAME_PREFIX}{readable}-{hash}")
    }
}

/// The class name reduced to label characters and at most `max_len` long, kept only so
/// people can recognise the class in a shortened name; the hash does the disambiguation.
fn sanitised_prefix(class_name: &str, max_len: usize) -> String {
    let mut prefix = String::with_capacity(max_len);
    for c in class_name.chars() {
        let c = c.to_ascii_lowercase();
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() {
            c
        } else {
            '-'
        };
        // Runs of separators ("a..b") would only waste the little room there is.
        if c == '-' && (prefix.is_empty() || prefix.ends_with('-')) {
            continue;
        }
        if prefix.len() == max_len {
            break;
        }
        prefix.push(c);
    }
    // The hash follows after a '-', and a label may not end with one either.
    while prefix.ends_with('-') {
        prefix.pop();
    }
    prefix
}

#[cfg(test)]
mod tests {
    #[test]
    fn class_label_is_the_class_name_or_a_hashed_63_character_value() {
        assert_eq!(super::class_label_value("kongress"), "kongress");
        let long = format!("{}.example.com", "a".repeat(240));
        let label = super::class_label_value(&long);
        assert!(label.len() <= 63, "{label}");
        assert!(label.ends_with(|c: char| c.is_ascii_alphanumeric()));
        let other = super::class_label_value(&format!("{}.example.org", "a".repeat(240)));
        assert_ne!(label, other, "long names sharing a prefix must get different labels");
    }

    use super::*;

    fn is_dns1035_label(name: &str) -> bool {
        let bytes = name.as_bytes();
        (1..=MAX_NAME_LEN).contains(&bytes.len())
            && bytes[0].is_ascii_lowercase()
            && bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
            && !name.ends_with('-')
    }

    fn all_names(names: &DataPlaneNames) -> [&str; 4] {
        [
            &names.deployment,
            &names.proxy_service,
            &names.admin_service,
            &names.admin_tls_secret,
        ]
    }

    fn assert_valid(names: &DataPlaneNames) {
        for name in all_names(names) {
            assert!(is_dns1035_label(name), "{name:?} is not a DNS-1035 label");
        }
    }

    #[test]
    fn short_class_name_is_used_as_is() {
        let names = data_plane_names("kong", "kongress-system");
        assert_eq!(
            names,
            DataPlaneNames {
                namespace: "kongress-system".to_string(),
                deployment: "kongress-kong".to_string(),
                proxy_service: "kongress-kong-proxy".to_string(),
                admin_service: "kongress-kong-admin".to_string(),
                admin_tls_secret: "kongress-kong-admin-tls".to_string(),
                class_label: "kong".to_string(),
            }
        );
    }

    #[test]
    fn dotted_class_name_is_sanitised_and_hash_suffixed() {
        let names = data_plane_names("kong.example.com", "ns");
        assert_valid(&names);
        assert!(
            names.deployment.starts_with("kongress-kong-example-com-"),
            "{}",
            names.deployment
        );
        assert_eq!(names.deployment.len(), "kongress-kong-example-com-".len() + HASH_LEN);
    }

    #[test]
    fn dotted_name_does_not_collide_with_its_dashed_twin() {
        let dotted = data_plane_names("a.b", "ns");
        let dashed = data_plane_names("a-b", "ns");
        assert_ne!(dotted.deployment, dashed.deployment);
    }

    #[test]
    fn longest_class_name_fits_in_63_characters() {
        let class = format!("{}.{}", "a".repeat(126), "b".repeat(126));
        assert_eq!(class.len(), 253);
        let names = data_plane_names(&class, "ns");
        assert_valid(&names);
        assert_eq!(names.admin_tls_secret.len(), MAX_NAME_LEN);
    }

    #[test]
    fn longest_plain_name_is_not_hashed() {
        let class = "c".repeat(MAX_NAME_LEN - NAME_PREFIX.len() - LONGEST_SUFFIX.len());
        let names = data_plane_names(&class, "ns");
        assert_eq!(names.deployment, format!("{NAME_PREFIX}{class}"));
        assert_eq!(names.admin_tls_secret.len(), MAX_NAME_LEN);

        let one_longer = format!("{class}c");
        let names = data_plane_names(&one_longer, "ns");
        assert_valid(&names);
        assert_ne!(names.deployment, format!("{NAME_PREFIX}{one_longer}"));
    }

    #[test]
    fn long_names_sharing_a_prefix_get_different_names() {
        let common = "x".repeat(100);
        let first = data_plane_names(&format!("{common}-first"), "ns");
        let second = data_plane_names(&format!("{common}-second"), "ns");
        assert_valid(&first);
        assert_valid(&second);
        for (a, b) in all_names(&first).into_iter().zip(all_names(&second)) {
            assert_ne!(a, b);
        }
    }

    #[test]
    fn names_are_deterministic() {
        let class = "gateways.example.com";
        assert_eq!(data_plane_names(class, "ns"), data_plane_names(class, "ns"));
    }

    #[test]
    fn names_without_readable_characters_still_are_labels() {
        assert_valid(&data_plane_names("...", "ns"));
        assert_valid(&data_plane_names("", "ns"));
        assert_valid(&data_plane_names("UPPER.Case", "ns"));
    }
}
