//! Whether two listeners can share one port on one Kong (design doc, section 4).

use super::protocol::ListenerProtocol;
use crate::api::conditions::reasons;

/// One side of a compatibility check.
#[derive(Clone, Copy, Debug)]
pub struct PortClaim<'a> {
    pub protocol: ListenerProtocol,
    /// Lowercased hostname; `None` matches every host.
    pub hostname: Option<&'a str>,
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

/// Checks two listeners on the same port number.
pub fn conflict_between(a: PortClaim<'_>, b: PortClaim<'_>) -> Option<Conflict> {
    // UDP and TCP-based listeners use different Service ports and sockets.
    if a.protocol.transport() != b.protocol.transport() {
        return None;
    }
    if a.protocol != b.protocol {
        return Some(Conflict::Protocol);
    }
    if !a.protocol.uses_hostname() {
        // Two TCP (or two UDP) listeners on one port cannot be told apart.
        return Some(Conflict::Protocol);
    }
    if a.hostname == b.hostname {
        return Some(Conflict::Hostname);
    }
    None
}
