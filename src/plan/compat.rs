//! Whether two listeners on one port can live on one Kong (design doc, section 4).

use std::collections::BTreeSet;

use super::protocol::ListenerProtocol;
use crate::api::ObjectKey;
use crate::api::conditions::reasons;

/// One side of a compatibility check.
#[derive(Clone, Copy, Debug)]
pub struct PortClaim<'a> {
    pub protocol: ListenerProtocol,
    /// Lowercased hostname; `None` matches every host.
    pub hostname: Option<&'a str>,
    /// The certificate Secrets a TLS-terminating listener names (empty otherwise).
    pub certificates: &'a BTreeSet<ObjectKey>,
}

/// Why two listeners cannot share a port: the Conflicted reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conflict {
    Hostname,
    Protocol,
}

impl Conflict {
    pub fn reason(self) -> &'static str {
        match self {
            Conflict::Hostname => reasons::HOSTNAME_CONFLICT,
            Conflict::Protocol => reasons::PROTOCOL_CONFLICT,
        }
    }
}

/// How two listeners on the same port number relate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Relation {
    /// Kong tells their traffic apart (Host header, SNI, or transport).
    Distinct,
    /// Kong cannot tell their traffic apart, but it would treat it the same way: same
    /// protocol, hostname and certificates. Gateways of one class may share such a listener.
    Identical,
    /// Kong cannot tell their traffic apart and would treat it differently.
    Conflict(Conflict),
}

/// Compares two listeners on the same port number.
pub fn relation(a: PortClaim<'_>, b: PortClaim<'_>) -> Relation {
    // UDP and TCP-based listeners use different Service ports and sockets.
    if a.protocol.transport() != b.protocol.transport() {
        return Relation::Distinct;
    }
    if a.protocol != b.protocol {
        return Relation::Conflict(Conflict::Protocol);
    }
    if !a.protocol.uses_hostname() {
        // Two TCP (or two UDP) listeners on one port cannot be told apart, and a TCP or UDP
        // socket has no request to route by: a second one would steal connections.
        return Relation::Conflict(Conflict::Protocol);
    }
    if a.hostname != b.hostname {
        return Relation::Distinct;
    }
    if a.certificates == b.certificates {
        Relation::Identical
    } else {
        // One SNI, two certificates: Kong can present only one of them.
        Relation::Conflict(Conflict::Hostname)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim<'a>(
        protocol: ListenerProtocol,
        hostname: Option<&'a str>,
        certificates: &'a BTreeSet<ObjectKey>,
    ) -> PortClaim<'a> {
        PortClaim {
            protocol,
            hostname,
            certificates,
        }
    }

    #[test]
    fn https_listeners_with_one_hostname_are_identical_only_with_the_same_certificate_set() {
        let ab = BTreeSet::from([ObjectKey::new("ns", "a"), ObjectKey::new("ns", "b")]);
        let ba = BTreeSet::from([ObjectKey::new("ns", "b"), ObjectKey::new("ns", "a")]);
        let a = BTreeSet::from([ObjectKey::new("ns", "a")]);
        let host = Some("x.example.com");
        assert_eq!(
            relation(
                claim(ListenerProtocol::Https, host, &ab),
                claim(ListenerProtocol::Https, host, &ba)
            ),
            Relation::Identical
        );
        assert_eq!(
            relation(
                claim(ListenerProtocol::Https, host, &ab),
                claim(ListenerProtocol::Https, host, &a)
            ),
            Relation::Conflict(Conflict::Hostname)
        );
    }

    #[test]
    fn tcp_and_udp_listeners_on_one_port_are_never_identical() {
        let none = BTreeSet::new();
        for protocol in [ListenerProtocol::Tcp, ListenerProtocol::Udp] {
            assert_eq!(
                relation(claim(protocol, None, &none), claim(protocol, None, &none)),
                Relation::Conflict(Conflict::Protocol)
            );
        }
    }
}
