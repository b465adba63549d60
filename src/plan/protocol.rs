//! What a listener's protocol means for Kong: which listen directive serves it,
//! which transport it needs and which route kinds may attach to it.

use crate::api::GatewayListenersTlsMode;

/// A listener protocol kongress can serve, with the TLS mode folded in
/// because Terminate and Passthrough need different Kong listen entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ListenerProtocol {
    Http,
    Https,
    TlsTerminate,
    TlsPassthrough,
    Tcp,
    Udp,
}

/// The transport a Service port and a Kong listen entry use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Transport {
    Tcp,
    Udp,
}

impl Transport {
    pub fn service_protocol(self) -> &'static str {
        match self {
            Transport::Tcp => "TCP",
            Transport::Udp => "UDP",
        }
    }
}

/// A route kind of the Gateway API group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RouteKind {
    HttpRoute,
    GrpcRoute,
    TlsRoute,
    TcpRoute,
    UdpRoute,
}

impl RouteKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RouteKind::HttpRoute => "HTTPRoute",
            RouteKind::GrpcRoute => "GRPCRoute",
            RouteKind::TlsRoute => "TLSRoute",
            RouteKind::TcpRoute => "TCPRoute",
            RouteKind::UdpRoute => "UDPRoute",
        }
    }

    pub fn parse(kind: &str) -> Option<Self> {
        [
            RouteKind::HttpRoute,
            RouteKind::GrpcRoute,
            RouteKind::TlsRoute,
            RouteKind::TcpRoute,
            RouteKind::UdpRoute,
        ]
        .into_iter()
        .find(|k| k.as_str() == kind)
    }
}

impl ListenerProtocol {
    /// Reads a listener's `protocol` and TLS mode. `None` means kongress does not
    /// serve that protocol (the spec allows implementation-specific protocols).
    pub fn parse(protocol: &str, tls_mode: Option<&GatewayListenersTlsMode>) -> Option<Self> {
        let passthrough = matches!(tls_mode, Some(GatewayListenersTlsMode::Passthrough));
        match protocol {
            "HTTP" => Some(Self::Http),
            "HTTPS" => Some(Self::Https),
            "TLS" if passthrough => Some(Self::TlsPassthrough),
            "TLS" => Some(Self::TlsTerminate),
            "TCP" => Some(Self::Tcp),
            "UDP" => Some(Self::Udp),
            _ => None,
        }
    }

    pub fn transport(self) -> Transport {
        match self {
            Self::Udp => Transport::Udp,
            _ => Transport::Tcp,
        }
    }

    /// Whether the listener's `hostname` distinguishes it from others on its port
    /// (through the Host header or SNI).
    pub fn uses_hostname(self) -> bool {
        matches!(
            self,
            Self::Http | Self::Https | Self::TlsTerminate | Self::TlsPassthrough
        )
    }

    /// Whether kongress terminates TLS for this listener and so needs certificates.
    pub fn terminates_tls(self) -> bool {
        matches!(self, Self::Https | Self::TlsTerminate)
    }

    /// Route kinds that may attach to a listener of this protocol, in the order
    /// they are reported in `supportedKinds`.
    pub fn route_kinds(self) -> &'static [RouteKind] {
        match self {
            Self::Http | Self::Https => &[RouteKind::HttpRoute, RouteKind::GrpcRoute],
            Self::TlsTerminate | Self::TlsPassthrough => &[RouteKind::TlsRoute],
            Self::Tcp => &[RouteKind::TcpRoute],
            Self::Udp => &[RouteKind::UdpRoute],
        }
    }

    /// Short lowercase name, used in generated Service port names.
    pub fn short_name(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
            Self::TlsTerminate | Self::TlsPassthrough => "tls",
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_protocol_defaults_to_terminate_mode() {
        assert_eq!(
            ListenerProtocol::parse("TLS", None),
            Some(ListenerProtocol::TlsTerminate)
        );
    }

    #[test]
    fn protocol_names_are_case_sensitive_as_in_the_spec() {
        assert_eq!(ListenerProtocol::parse("http", None), None);
    }

    #[test]
    fn route_kind_names_round_trip() {
        for kind in ["HTTPRoute", "GRPCRoute", "TLSRoute", "TCPRoute", "UDPRoute"] {
            assert_eq!(RouteKind::parse(kind).map(RouteKind::as_str), Some(kind));
        }
        assert_eq!(RouteKind::parse("Ingress"), None);
    }
}
