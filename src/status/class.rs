//! GatewayClass conditions.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use super::conditions::{DesiredCondition, merge_conditions};
use crate::api::SUPPORTED_BUNDLE_MINORS;
use crate::api::conditions::{reasons, types};

/// What kongress concluded about a GatewayClass it owns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassVerdict {
    /// `Some(message)` when the `parametersRef` is unusable.
    pub invalid_parameters: Option<String>,
    /// Whether the installed Gateway API CRDs are versions this build understands.
    pub versions: VersionVerdict,
}

impl ClassVerdict {
    /// Whether the installed Gateway API CRDs are a version this build understands.
    pub fn supported_version(&self) -> bool {
        self.versions.supported
    }

    pub fn accepted(&self) -> bool {
        self.invalid_parameters.is_none() && self.supported_version()
    }
}

/// A CustomResourceDefinition in the cluster: its name (`plural.group`) and its
/// `gateway.networking.k8s.io/bundle-version` annotation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstalledCrd {
    pub name: String,
    pub bundle_version: Option<String>,
}

/// The API groups of the Gateway API: the standard channel and the experimental `X`
/// kinds. Only these count; other `*.x-k8s.io` groups (Cluster API, the inference
/// extension) are different projects with versions of their own.
const GATEWAY_API_GROUPS: &[&str] = &["gateway.networking.k8s.io", "gateway.networking.x-k8s.io"];

/// The `SupportedVersion` verdict over every installed Gateway API CRD.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionVerdict {
    pub supported: bool,
    /// Lists the versions found (and the CRDs that are not supported) and the supported ones.
    pub message: String,
}

/// Decides `SupportedVersion` from the installed CRDs: the spec asks for False when any
/// Gateway API CRD lacks the bundle-version annotation or carries a version this build
/// does not support. CRDs of other groups are ignored.
pub fn crd_versions(crds: &[InstalledCrd]) -> VersionVerdict {
    let supported_list = SUPPORTED_BUNDLE_MINORS.join(", ");
    let mut by_version: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut unannotated: Vec<&str> = Vec::new();
    for crd in crds.iter().filter(|c| is_gateway_api_crd(&c.name)) {
        match crd.bundle_version.as_deref() {
            Some(version) => by_version.entry(version).or_default().push(&crd.name),
            None => unannotated.push(&crd.name),
        }
    }
    if by_version.is_empty() && unannotated.is_empty() {
        return VersionVerdict {
            supported: false,
            message: format!("No Gateway API CRD is installed; kongress supports {supported_list}"),
        };
    }
    let unsupported: Vec<(&str, &Vec<&str>)> = by_version
        .iter()
        .filter(|(version, _)| !is_supported_bundle(version))
        .map(|(version, names)| (*version, names))
        .collect();
    let found: Vec<String> = by_version
        .iter()
        .map(|(version, names)| format!("{version} ({} CRDs)", names.len()))
        .collect();
    if unsupported.is_empty() && unannotated.is_empty() {
        return VersionVerdict {
            supported: true,
            message: format!(
                "Gateway API {} is installed; kongress supports {supported_list}",
                found.join(", ")
            ),
        };
    }
    let mut problems: Vec<String> = unsupported
        .iter()
        .map(|(version, names)| format!("{version}: {}", names.join(", ")))
        .collect();
    if !unannotated.is_empty() {
        unannotated.sort_unstable();
        problems.push(format!("no bundle-version annotation: {}", unannotated.join(", ")));
    }
    let found = if found.is_empty() {
        "no annotated CRDs".to_string()
    } else {
        found.join(", ")
    };
    VersionVerdict {
        supported: false,
        message: format!(
            "Installed Gateway API CRDs: {found}; not supported: {}; kongress supports {supported_list}",
            problems.join("; ")
        ),
    }
}

/// Whether a CRD (by name, `plural.group`) belongs to the Gateway API.
pub fn is_gateway_api_crd(name: &str) -> bool {
    name.split_once('.')
        .is_some_and(|(_, group)| GATEWAY_API_GROUPS.contains(&group))
}

fn is_supported_bundle(version: &str) -> bool {
    let minor: String = version.split('.').take(2).collect::<Vec<_>>().join(".");
    SUPPORTED_BUNDLE_MINORS.contains(&minor.as_str())
}

/// The Gateway API features kongress implements, for the class's `status.supportedFeatures`
/// (which the spec wants sorted by name; a test keeps them so). Traffic behaviour behind
/// them is checked against Kong's router engine, not a running Kong (see the README).
///
/// Left out on purpose: `HTTPRouteRequestTimeout` (Kong has no deadline for a whole
/// request), `HTTPRouteRequestMirror` and its variants, `HTTPRouteBackendRequestHeaderModification`
/// (filters on a backendRef), `HTTPRouteBackendProtocolH2C` (Kong 3.9 OSS speaks h2c to
/// gRPC services only), `GatewayFrontendClientCertificateValidation` (refused, one Kong
/// serves every Gateway of the class), `TLSRouteModeMixed`, `BackendTLSPolicy`,
/// `ListenerSet`, `GatewayInfrastructurePropagation` and `Mesh`.
pub const SUPPORTED_FEATURES: &[&str] = &[
    "GRPCRoute",
    "GRPCRouteNamedRouteRule",
    "Gateway",
    "GatewayAddressEmpty",
    "GatewayHTTPListenerIsolation",
    "GatewayPort8080",
    "GatewayStaticAddresses",
    "HTTPRoute",
    "HTTPRoute303RedirectStatusCode",
    "HTTPRoute307RedirectStatusCode",
    "HTTPRoute308RedirectStatusCode",
    "HTTPRouteBackendProtocolWebSocket",
    "HTTPRouteBackendTimeout",
    "HTTPRouteCORS",
    "HTTPRouteDestinationPortMatching",
    "HTTPRouteHostRewrite",
    "HTTPRouteMethodMatching",
    "HTTPRouteNamedRouteRule",
    "HTTPRouteParentRefPort",
    "HTTPRoutePathRedirect",
    "HTTPRoutePathRewrite",
    "HTTPRoutePortRedirect",
    "HTTPRouteQueryParamMatching",
    "HTTPRouteResponseHeaderModification",
    "HTTPRouteSchemeRedirect",
    "ReferenceGrant",
    "TLSRoute",
    "TLSRouteModeTerminate",
    "UDPRoute",
];

/// The GatewayClass's `Accepted` and `SupportedVersion`, merged into its current conditions.
pub fn gateway_class_conditions(
    verdict: &ClassVerdict,
    existing: &[Condition],
    generation: i64,
    now: &Time,
) -> Vec<Condition> {
    let version = if verdict.versions.supported {
        DesiredCondition::new(
            types::SUPPORTED_VERSION,
            true,
            reasons::SUPPORTED_VERSION,
            verdict.versions.message.clone(),
        )
    } else {
        DesiredCondition::new(
            types::SUPPORTED_VERSION,
            false,
            reasons::UNSUPPORTED_VERSION,
            verdict.versions.message.clone(),
        )
    };
    let accepted = if !version.is_true() {
        // The spec asks for Accepted=False when the CRD version is unsupported.
        DesiredCondition::new(
            types::ACCEPTED,
            false,
            reasons::UNSUPPORTED_VERSION,
            version.message.clone(),
        )
    } else if let Some(problem) = &verdict.invalid_parameters {
        DesiredCondition::new(types::ACCEPTED, false, reasons::INVALID_PARAMETERS, problem.clone())
    } else {
        DesiredCondition::new(
            types::ACCEPTED,
            true,
            reasons::ACCEPTED,
            "kongress manages the Kong data plane of this class",
        )
    };
    merge_conditions(existing, &[accepted, version], generation, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn now() -> Time {
        Time(Timestamp::from_second(1_000).expect("time"))
    }

    fn versions_of(crds: &[(&str, Option<&str>)]) -> VersionVerdict {
        let crds: Vec<InstalledCrd> = crds
            .iter()
            .map(|(name, version)| InstalledCrd {
                name: (*name).into(),
                bundle_version: version.map(str::to_string),
            })
            .collect();
        crd_versions(&crds)
    }

    fn find<'a>(conditions: &'a [Condition], type_: &str) -> &'a Condition {
        conditions.iter().find(|c| c.type_ == type_).expect("condition present")
    }

    #[test]
    fn class_with_valid_parameters_and_supported_crds_is_accepted() {
        let verdict = ClassVerdict {
            invalid_parameters: None,
            versions: versions_of(&[("gateways.gateway.networking.k8s.io", Some("v1.5.1"))]),
        };
        let conditions = gateway_class_conditions(&verdict, &[], 3, &now());
        assert_eq!(find(&conditions, "Accepted").status, "True");
        assert_eq!(find(&conditions, "Accepted").observed_generation, Some(3));
        assert_eq!(find(&conditions, "SupportedVersion").reason, "SupportedVersion");
    }

    #[test]
    fn class_with_invalid_parameters_is_not_accepted_with_invalid_parameters() {
        let verdict = ClassVerdict {
            invalid_parameters: Some("KongProxy x/y does not exist".into()),
            versions: versions_of(&[("gateways.gateway.networking.k8s.io", Some("v1.5.1"))]),
        };
        let conditions = gateway_class_conditions(&verdict, &[], 1, &now());
        let accepted = find(&conditions, "Accepted");
        assert_eq!(
            (accepted.status.as_str(), accepted.reason.as_str()),
            ("False", "InvalidParameters")
        );
        assert!(accepted.message.contains("x/y"));
    }

    #[test]
    fn unsupported_crd_version_makes_the_class_not_accepted() {
        let verdict = ClassVerdict {
            invalid_parameters: None,
            versions: versions_of(&[("gateways.gateway.networking.k8s.io", Some("v1.2.0"))]),
        };
        let conditions = gateway_class_conditions(&verdict, &[], 1, &now());
        assert_eq!(find(&conditions, "SupportedVersion").status, "False");
        assert_eq!(find(&conditions, "Accepted").reason, "UnsupportedVersion");
    }

    #[test]
    fn supported_features_are_sorted_by_name_and_unique() {
        let mut sorted = SUPPORTED_FEATURES.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted, SUPPORTED_FEATURES);
    }

    #[test]
    fn patch_releases_of_a_supported_minor_are_supported() {
        assert!(is_supported_bundle("v1.5.0"));
        assert!(is_supported_bundle("v1.5.7"));
        assert!(!is_supported_bundle("v1.50.0"));
        assert!(!is_supported_bundle("v1.6.0"));
    }

    #[test]
    fn every_installed_gateway_api_crd_counts_for_supported_version() {
        let verdict = versions_of(&[
            ("gateways.gateway.networking.k8s.io", Some("v1.5.1")),
            ("httproutes.gateway.networking.k8s.io", Some("v1.5.1")),
            ("tcproutes.gateway.networking.k8s.io", Some("v1.6.0")),
        ]);
        assert!(!verdict.supported);
        assert!(
            verdict.message.contains("v1.5.1 (2 CRDs)")
                && verdict.message.contains("v1.6.0: tcproutes.gateway.networking.k8s.io"),
            "{}",
            verdict.message
        );
    }

    #[test]
    fn experimental_gateway_api_crds_count_too() {
        let verdict = versions_of(&[
            ("gateways.gateway.networking.k8s.io", Some("v1.5.1")),
            ("xlistenersets.gateway.networking.x-k8s.io", Some("v1.4.0")),
        ]);
        assert!(!verdict.supported);
        assert!(verdict.message.contains("xlistenersets"), "{}", verdict.message);
    }

    #[test]
    fn a_gateway_api_crd_without_bundle_version_is_not_supported() {
        let verdict = versions_of(&[
            ("gateways.gateway.networking.k8s.io", Some("v1.5.1")),
            ("grpcroutes.gateway.networking.k8s.io", None),
        ]);
        assert!(!verdict.supported);
        assert!(
            verdict.message.contains("no bundle-version annotation: grpcroutes"),
            "{}",
            verdict.message
        );
    }

    #[test]
    fn crds_of_other_groups_are_ignored() {
        let verdict = versions_of(&[
            ("gateways.gateway.networking.k8s.io", Some("v1.5.1")),
            ("clusters.cluster.x-k8s.io", None),
            ("inferencepools.inference.networking.x-k8s.io", Some("v1.0.0")),
            ("kongproxies.kongress.dev", None),
        ]);
        assert!(verdict.supported, "{}", verdict.message);
        assert_eq!(
            verdict.message,
            "Gateway API v1.5.1 (1 CRDs) is installed; kongress supports v1.5"
        );
    }

    #[test]
    fn no_gateway_api_crd_at_all_is_not_supported() {
        assert!(!versions_of(&[]).supported);
    }

    #[test]
    fn class_acceptance_follows_supported_version() {
        let verdict = ClassVerdict {
            invalid_parameters: None,
            versions: versions_of(&[
                ("gateways.gateway.networking.k8s.io", Some("v1.5.1")),
                ("udproutes.gateway.networking.k8s.io", None),
            ]),
        };
        assert!(!verdict.accepted());
        let conditions = gateway_class_conditions(&verdict, &[], 1, &now());
        assert_eq!(find(&conditions, "Accepted").status, "False");
        assert_eq!(find(&conditions, "Accepted").reason, "UnsupportedVersion");
        assert_eq!(find(&conditions, "SupportedVersion").status, "False");
    }
}
