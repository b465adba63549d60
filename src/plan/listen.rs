//! The Kong listen plan: which sockets Kong opens and how the proxy Service exposes them.

use std::collections::BTreeSet;

use super::protocol::ListenerProtocol;
use crate::api::{ObjectKey, PortMode};

/// Ports below this are shifted in [`PortMode::Shifted`].
const PRIVILEGED_PORT_LIMIT: u16 = 1024;
/// Container port names of Kong's internal ports; a listener may not take them.
const RESERVED_PORT_NAMES: &[&str] = &["status", "admin"];
/// What [`PortMode::Shifted`] adds to a privileged port.
const SHIFT: u16 = 10000;
/// The socket options Kong puts on its own default listeners (`kong_defaults.lua` of Kong
/// 3.9): one accept queue per worker, and a backlog deep enough for connection bursts.
/// Kong writes flags in this order when it normalises a listen entry.
const TCP_SOCKET_FLAGS: &str = "reuseport backlog=16384";
/// nginx refuses `backlog` on a `udp` listen ("incompatible with udp"); `reuseport` is fine.
const UDP_SOCKET_FLAGS: &str = "reuseport";

/// A listener named by its Gateway and its name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ListenerKey {
    pub gateway: ObjectKey,
    pub listener: String,
}

/// One socket Kong opens, and the Service port in front of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenEntry {
    /// The listener port, which is also the Service port.
    pub port: u16,
    /// The port Kong binds inside the pod.
    pub container_port: u16,
    pub protocol: ListenerProtocol,
    /// Name of the Service and container port (an IANA service name, at most 15 characters).
    pub port_name: String,
    /// The programmed listeners this entry serves, in precedence order.
    pub listeners: Vec<ListenerKey>,
}

/// All sockets of one data plane, ordered by port then transport.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListenPlan {
    pub entries: Vec<ListenEntry>,
    pub port_mode: PortMode,
}

/// The container port a listener port maps to.
pub fn container_port(port: u16, mode: PortMode) -> u16 {
    match mode {
        PortMode::ListenerPort => port,
        PortMode::Shifted if port < PRIVILEGED_PORT_LIMIT => port + SHIFT,
        PortMode::Shifted => port,
    }
}

impl ListenPlan {
    /// Value of `KONG_PROXY_LISTEN` (`off` when no HTTP(S) listener is programmed).
    pub fn proxy_listen(&self) -> String {
        let entries: Vec<String> = self
            .entries
            .iter()
            .filter_map(|e| match e.protocol {
                ListenerProtocol::Http => Some(format!("0.0.0.0:{} {TCP_SOCKET_FLAGS}", e.container_port)),
                ListenerProtocol::Https => Some(format!("0.0.0.0:{} ssl http2 {TCP_SOCKET_FLAGS}", e.container_port)),
                _ => None,
            })
            .collect();
        join_or_off(&entries)
    }

    /// Value of `KONG_STREAM_LISTEN` (`off` when no TCP, UDP or TLS listener is programmed).
    pub fn stream_listen(&self) -> String {
        let entries: Vec<String> = self
            .entries
            .iter()
            .filter_map(|e| match e.protocol {
                ListenerProtocol::Tcp => Some(format!("0.0.0.0:{} {TCP_SOCKET_FLAGS}", e.container_port)),
                // Kong needs `ssl` on passthrough sockets too: it reads the SNI there and
                // skips termination for routes with protocol `tls_passthrough`.
                ListenerProtocol::TlsTerminate | ListenerProtocol::TlsPassthrough => {
                    Some(format!("0.0.0.0:{} ssl {TCP_SOCKET_FLAGS}", e.container_port))
                }
                ListenerProtocol::Udp => Some(format!("0.0.0.0:{} udp {UDP_SOCKET_FLAGS}", e.container_port)),
                ListenerProtocol::Http | ListenerProtocol::Https => None,
            })
            .collect();
        join_or_off(&entries)
    }

    /// Value of `KONG_PORT_MAPS` in shifted mode (`listenerPort:containerPort`), so Kong
    /// knows the port clients used; `None` when ports are used as is.
    pub fn port_maps(&self) -> Option<String> {
        if self.port_mode != PortMode::Shifted || self.entries.is_empty() {
            return None;
        }
        // Entries are sorted by port, so a TCP and a UDP entry of one port are neighbours.
        let mut pairs: Vec<(u16, u16)> = self.entries.iter().map(|e| (e.port, e.container_port)).collect();
        pairs.dedup();
        let maps: Vec<String> = pairs
            .iter()
            .map(|(port, container)| format!("{port}:{container}"))
            .collect();
        Some(maps.join(", "))
    }
}

fn join_or_off(entries: &[String]) -> String {
    if entries.is_empty() {
        "off".to_string()
    } else {
        entries.join(", ")
    }
}

/// A valid, unique Service port name for an entry: the first listener's name when it
/// is a valid IANA service name, else `<protocol>-<port>`.
pub(super) fn port_name(
    listener_name: &str,
    protocol: ListenerProtocol,
    port: u16,
    taken: &BTreeSet<String>,
) -> String {
    let candidate = listener_name.to_ascii_lowercase();
    let reserved = RESERVED_PORT_NAMES.contains(&candidate.as_str());
    if is_iana_service_name(&candidate) && !reserved && !taken.contains(&candidate) {
        return candidate;
    }
    let fallback = format!("{}-{}", protocol.short_name(), port);
    if !taken.contains(&fallback) {
        return fallback;
    }
    // Two entries on one port differ in transport, and UDP is the only one with its own name.
    format!("{}-{}-u", protocol.short_name(), port)
}

/// RFC 6335 service name, as Kubernetes checks port names.
fn is_iana_service_name(name: &str) -> bool {
    (1..=15).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && name.bytes().any(|b| b.is_ascii_lowercase())
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifted_mode_moves_only_privileged_ports() {
        assert_eq!(container_port(80, PortMode::Shifted), 10080);
        assert_eq!(container_port(1023, PortMode::Shifted), 11023);
        assert_eq!(container_port(1024, PortMode::Shifted), 1024);
        assert_eq!(container_port(80, PortMode::ListenerPort), 80);
    }

    fn plan_of(protocols: &[(u16, ListenerProtocol)]) -> ListenPlan {
        ListenPlan {
            entries: protocols
                .iter()
                .map(|&(port, protocol)| ListenEntry {
                    port,
                    container_port: port,
                    protocol,
                    port_name: format!("p{port}"),
                    listeners: vec![],
                })
                .collect(),
            port_mode: PortMode::ListenerPort,
        }
    }

    #[test]
    fn listen_entries_carry_kongs_default_socket_flags() {
        let plan = plan_of(&[
            (80, ListenerProtocol::Http),
            (443, ListenerProtocol::Https),
            (9901, ListenerProtocol::Tcp),
            (9903, ListenerProtocol::TlsPassthrough),
        ]);
        assert_eq!(
            plan.proxy_listen(),
            "0.0.0.0:80 reuseport backlog=16384, 0.0.0.0:443 ssl http2 reuseport backlog=16384"
        );
        assert_eq!(
            plan.stream_listen(),
            "0.0.0.0:9901 reuseport backlog=16384, 0.0.0.0:9903 ssl reuseport backlog=16384"
        );
    }

    #[test]
    fn udp_entries_never_carry_backlog_which_nginx_refuses_on_udp() {
        let plan = plan_of(&[(9902, ListenerProtocol::Udp)]);
        assert_eq!(plan.stream_listen(), "0.0.0.0:9902 udp reuseport");
    }

    #[test]
    fn port_names_follow_rfc_6335() {
        assert!(is_iana_service_name("http"));
        assert!(is_iana_service_name("tcp-9901"));
        assert!(!is_iana_service_name("a-very-long-listener-name"));
        assert!(!is_iana_service_name("has.dot"));
        assert!(!is_iana_service_name("9901"));
        assert!(!is_iana_service_name("a--b"));
    }

    #[test]
    fn invalid_or_taken_listener_names_fall_back_to_protocol_and_port() {
        assert_eq!(port_name("web", ListenerProtocol::Http, 80, &BTreeSet::new()), "web");
        assert_eq!(
            port_name("Web.Public", ListenerProtocol::Http, 80, &BTreeSet::new()),
            "http-80"
        );
        assert_eq!(
            port_name(
                "web",
                ListenerProtocol::Http,
                8080,
                &BTreeSet::from(["web".to_string()])
            ),
            "http-8080"
        );
    }

    #[test]
    fn listener_names_of_internal_ports_are_not_used_as_port_names() {
        assert_eq!(
            port_name("admin", ListenerProtocol::Http, 80, &BTreeSet::new()),
            "http-80"
        );
        assert_eq!(
            port_name("status", ListenerProtocol::Tcp, 9000, &BTreeSet::new()),
            "tcp-9000"
        );
    }
}
