//! Condition types and reasons of the Gateway API (v1.5), as written in status.

pub mod types {
    pub const ACCEPTED: &str = "Accepted";
    pub const PROGRAMMED: &str = "Programmed";
    pub const RESOLVED_REFS: &str = "ResolvedRefs";
    pub const CONFLICTED: &str = "Conflicted";
    pub const OVERLAPPING_TLS_CONFIG: &str = "OverlappingTLSConfig";
    pub const SUPPORTED_VERSION: &str = "SupportedVersion";
    /// Routes: only ever True, when some rules were dropped.
    pub const PARTIALLY_INVALID: &str = "PartiallyInvalid";
    /// Gateway: whether every listener of the Gateway is its own, or some are shared with
    /// other Gateways of the class (gateway-api issue #4161 asks merging implementations to say so).
    pub const LISTENERS_ISOLATED: &str = "kongress.dev/ListenersIsolated";
}

pub mod reasons {
    // Shared by several objects.
    pub const ACCEPTED: &str = "Accepted";
    pub const PROGRAMMED: &str = "Programmed";
    pub const PENDING: &str = "Pending";
    pub const INVALID: &str = "Invalid";
    pub const INVALID_PARAMETERS: &str = "InvalidParameters";
    pub const RESOLVED_REFS: &str = "ResolvedRefs";

    // GatewayClass.
    pub const SUPPORTED_VERSION: &str = "SupportedVersion";
    pub const UNSUPPORTED_VERSION: &str = "UnsupportedVersion";

    // Gateway.
    pub const LISTENERS_NOT_VALID: &str = "ListenersNotValid";
    pub const NO_RESOURCES: &str = "NoResources";
    pub const ADDRESS_NOT_ASSIGNED: &str = "AddressNotAssigned";
    pub const ADDRESS_NOT_USABLE: &str = "AddressNotUsable";
    pub const UNSUPPORTED_ADDRESS: &str = "UnsupportedAddress";
    /// Gateway `ResolvedRefs=False`: `spec.tls.backend.clientCertificateRef` cannot be used.
    pub const INVALID_CLIENT_CERTIFICATE_REF: &str = "InvalidClientCertificateRef";
    /// Gateway `ResolvedRefs=False`: some listener's references do not resolve.
    pub const LISTENERS_NOT_RESOLVED: &str = "ListenersNotResolved";
    /// `kongress.dev/ListenersIsolated=True`.
    pub const ISOLATED: &str = "Isolated";
    /// `kongress.dev/ListenersIsolated=False`.
    pub const SHARED_LISTENERS: &str = "SharedListeners";

    // Listener.
    pub const PORT_UNAVAILABLE: &str = "PortUnavailable";
    pub const UNSUPPORTED_VALUE: &str = "UnsupportedValue";
    pub const UNSUPPORTED_PROTOCOL: &str = "UnsupportedProtocol";
    pub const HOSTNAME_CONFLICT: &str = "HostnameConflict";
    pub const PROTOCOL_CONFLICT: &str = "ProtocolConflict";
    pub const NO_CONFLICTS: &str = "NoConflicts";
    pub const INVALID_CERTIFICATE_REF: &str = "InvalidCertificateRef";
    pub const INVALID_ROUTE_KINDS: &str = "InvalidRouteKinds";
    pub const REF_NOT_PERMITTED: &str = "RefNotPermitted";
    pub const OVERLAPPING_HOSTNAMES: &str = "OverlappingHostnames";

    // Routes (`UnsupportedValue`, `UnsupportedProtocol` and `RefNotPermitted` are shared with listeners).
    pub const BACKEND_NOT_FOUND: &str = "BackendNotFound";
    pub const INVALID_KIND: &str = "InvalidKind";
    pub const NOT_ALLOWED_BY_LISTENERS: &str = "NotAllowedByListeners";
    pub const NO_MATCHING_LISTENER_HOSTNAME: &str = "NoMatchingListenerHostname";
    pub const NO_MATCHING_PARENT: &str = "NoMatchingParent";
}
