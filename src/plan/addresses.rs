//! `spec.addresses` of a Gateway: which requested addresses the proxy Service can carry.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::GatewayPlan;
use crate::api::Gateway;

const IP_ADDRESS_TYPE: &str = "IPAddress";

/// One usable address a Gateway asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressRequest {
    /// As the user wrote it: `status.addresses` echoes this.
    pub value: String,
    /// The address itself; the Service carries its canonical text.
    pub ip: IpAddr,
}

/// The verdict on a Gateway's `spec.addresses`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddressVerdict {
    /// Addresses the Service will carry for this Gateway.
    pub requested: Vec<AddressRequest>,
    /// Set when an address is of a type kongress does not support (Accepted=False/UnsupportedAddress).
    pub unsupported: Option<String>,
    /// Set when some address has a supported type but cannot be used
    /// (Programmed=False/AddressNotUsable); the message names every such address.
    pub unusable: Option<String>,
}

pub(super) fn check(gateway: &Gateway) -> AddressVerdict {
    let mut verdict = AddressVerdict::default();
    let mut unusable = Vec::new();
    for address in gateway.spec.addresses.iter().flatten() {
        let kind = address.r#type.as_deref().unwrap_or(IP_ADDRESS_TYPE);
        if kind != IP_ADDRESS_TYPE {
            verdict
                .unsupported
                .get_or_insert_with(|| format!("Address type {kind:?} is not supported; kongress supports IPAddress"));
            continue;
        }
        match address.value.as_deref() {
            None | Some("") => {
                // An empty value asks the implementation to pick; the Service's own address does that.
            }
            Some(value) => match value.parse::<IpAddr>() {
                Ok(ip) => match refused_by_kubernetes(ip) {
                    // Putting it on the shared Service would make the API server refuse the
                    // Service, and with it the data plane of every Gateway of the class.
                    Some(range) => unusable.push(format!(
                        "{value} is in the {range} range, which Kubernetes does not allow as a Service external IP"
                    )),
                    None => verdict.requested.push(AddressRequest {
                        value: value.to_string(),
                        ip,
                    }),
                },
                Err(_) => unusable.push(format!("{value:?} is not a valid IP address")),
            },
        }
    }
    if !unusable.is_empty() {
        verdict.unusable = Some(format!(
            "Requested addresses cannot be used: {}; remove them from spec.addresses",
            unusable.join("; ")
        ));
    }
    verdict
}

/// The special range an address is in when the API server refuses it as a Service
/// external IP (unspecified, loopback, link-local, link-local multicast).
fn refused_by_kubernetes(ip: IpAddr) -> Option<&'static str> {
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    match ip {
        IpAddr::V4(v4) if v4.is_link_local() => Some("link-local"),
        IpAddr::V4(v4) if is_v4_link_local_multicast(v4) => Some("link-local multicast"),
        IpAddr::V6(v6) if v6.is_unicast_link_local() => Some("link-local"),
        IpAddr::V6(v6) if is_v6_link_local_multicast(v6) => Some("link-local multicast"),
        _ => None,
    }
}

/// 224.0.0.0/24.
fn is_v4_link_local_multicast(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    a == 224 && b == 0 && c == 0
}

/// Multicast with link-local scope (ff02::/16 and the other ffX2 prefixes).
fn is_v6_link_local_multicast(ip: Ipv6Addr) -> bool {
    let [first, second, ..] = ip.octets();
    first == 0xff && second & 0x0f == 0x02
}

/// Addresses the shared proxy Service carries: those of accepted Gateways, deduplicated, in precedence order.
pub(super) fn requested(plans: &[GatewayPlan]) -> Vec<String> {
    let mut values: Vec<String> = Vec::new();
    for plan in plans
        .iter()
        .filter(|p| p.addresses.unsupported.is_none() && p.invalid_parameters.is_none())
    {
        for request in &plan.addresses.requested {
            // The API server wants canonical text (and the same address written two ways is one).
            let canonical = request.ip.to_string();
            if !values.contains(&canonical) {
                values.push(canonical);
            }
        }
    }
    values
}
