//! Types kongress reads and writes: its own `KongProxy` CRD, the Gateway API
//! types it consumes, and the condition vocabulary of the Gateway API spec.

pub mod conditions;
pub mod kongproxy;
pub mod labels;

pub use gateway_api::gatewayclasses::{GatewayClass, GatewayClassParametersRef};
pub use gateway_api::gateways::{Gateway, GatewayListeners, GatewayListenersTlsMode};
pub use gateway_api::referencegrants::ReferenceGrant;
pub use kongproxy::{KongProxy, KongProxySpec, PortMode, ProxyServiceOptions, ServiceType};

/// The `controllerName` a GatewayClass must carry for kongress to own it.
pub const CONTROLLER_NAME: &str = "kongress.dev/gateway-controller";

/// API group of the Gateway API.
pub const GATEWAY_API_GROUP: &str = "gateway.networking.k8s.io";

/// Finalizer the spec asks implementations to put on a GatewayClass while Gateways use it.
pub const GATEWAY_CLASS_FINALIZER: &str = "gateway-exists-finalizer.gateway.networking.k8s.io";

/// Annotation on the Gateway API CRDs that names the bundle version installed.
pub const BUNDLE_VERSION_ANNOTATION: &str = "gateway.networking.k8s.io/bundle-version";

/// Gateway API bundle versions this build of kongress understands, by `major.minor`.
pub const SUPPORTED_BUNDLE_MINORS: &[&str] = &["v1.5"];
