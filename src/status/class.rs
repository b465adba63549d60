//! GatewayClass conditions.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use super::conditions::{DesiredCondition, merge_conditions};
use crate::api::SUPPORTED_BUNDLE_MINORS;
use crate::api::conditions::{reasons, types};

/// What kongress concluded about a GatewayClass it owns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassVerdict {
    /// `Some(message)` when the `parametersRef` is unusable.
    pub invalid_parameters: Option<String>,
    /// The `gateway.networking.k8s.io/bundle-version` of the installed CRDs, if it could be read.
    pub bundle_version: Option<String>,
}

impl ClassVerdict {
    /// Whether the installed Gateway API CRDs are a version this build understands.
    pub fn supported_version(&self) -> bool {
        self.bundle_version.as_deref().is_some_and(is_supported_bundle)
    }

    pub fn accepted(&self) -> bool {
        self.invalid_parameters.is_none() && self.supported_version()
    }
}

fn is_supported_bundle(version: &str) -> bool {
    let minor: String = version.split('.').take(2).collect::<Vec<_>>().join(".");
    SUPPORTED_BUNDLE_MINORS.contains(&minor.as_str())
}

/// The GatewayClass's `Accepted` and `SupportedVersion`, merged into its current conditions.
pub fn gateway_class_conditions(
    verdict: &ClassVerdict,
    existing: &[Condition],
    generation: i64,
    now: &Time,
) -> Vec<Condition> {
    let supported = SUPPORTED_BUNDLE_MINORS.join(", ");
    let version = match verdict.bundle_version.as_deref() {
        Some(v) if verdict.supported_version() => DesiredCondition::new(
            types::SUPPORTED_VERSION,
            true,
            reasons::SUPPORTED_VERSION,
            format!("Gateway API {v} is supported"),
        ),
        Some(v) => DesiredCondition::new(
            types::SUPPORTED_VERSION,
            false,
            reasons::UNSUPPORTED_VERSION,
            format!("Gateway API {v} is installed; kongress supports {supported}"),
        ),
        None => DesiredCondition::new(
            types::SUPPORTED_VERSION,
            false,
            reasons::UNSUPPORTED_VERSION,
            format!("The Gateway CRD carries no bundle-version annotation; kongress supports {supported}"),
        ),
    };
    let accepted = if !version.status {
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

    fn find<'a>(conditions: &'a [Condition], type_: &str) -> &'a Condition {
        conditions.iter().find(|c| c.type_ == type_).expect("condition present")
    }

    #[test]
    fn class_with_valid_parameters_and_supported_crds_is_accepted() {
        let verdict = ClassVerdict {
            invalid_parameters: None,
            bundle_version: Some("v1.5.1".into()),
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
            bundle_version: Some("v1.5.1".into()),
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
            bundle_version: Some("v1.2.0".into()),
        };
        let conditions = gateway_class_conditions(&verdict, &[], 1, &now());
        assert_eq!(find(&conditions, "SupportedVersion").status, "False");
        assert_eq!(find(&conditions, "Accepted").reason, "UnsupportedVersion");
    }

    #[test]
    fn patch_releases_of_a_supported_minor_are_supported() {
        assert!(is_supported_bundle("v1.5.0"));
        assert!(is_supported_bundle("v1.5.7"));
        assert!(!is_supported_bundle("v1.50.0"));
        assert!(!is_supported_bundle("v1.6.0"));
    }
}
