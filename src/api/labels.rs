//! Labels and annotations kongress puts on the objects it manages.

/// Names the GatewayClass a data plane object belongs to.
pub const GATEWAY_CLASS_LABEL: &str = "gateway.networking.k8s.io/gateway-class-name";
/// Marks every object kongress manages.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Value of [`MANAGED_BY_LABEL`].
pub const MANAGED_BY_VALUE: &str = "kongress";
/// Identifies the component inside one data plane (`kong`, `proxy`, `admin`).
pub const COMPONENT_LABEL: &str = "app.kubernetes.io/component";
/// Selects the Kong pods of one data plane; its value is the data plane name.
pub const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";
/// Hash of the desired state last applied; an equal hash means there is nothing to write.
pub const APPLIED_HASH_ANNOTATION: &str = "kongress.dev/applied-hash";
/// Hash of the listen configuration, on the pod template, so a listener change rolls the pods.
pub const LISTEN_HASH_ANNOTATION: &str = "kongress.dev/listen-hash";
/// The field manager of every server-side apply kongress makes.
pub const FIELD_MANAGER: &str = "kongress";
