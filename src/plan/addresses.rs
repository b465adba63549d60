//! `spec.addresses` of a Gateway: which requested addresses the proxy Service can carry.

use std::net::IpAddr;

use super::GatewayPlan;
use crate::api::Gateway;

const IP_ADDRESS_TYPE: &str = "IPAddress";

/// One usable address a Gateway asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressRequest {
    pub value: String,
}

/// The verdict on a Gateway's `spec.addresses`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddressVerdict {
    /// Addresses the Service will carry for this Gateway.
    pub requested: Vec<AddressRequest>,
    /// Set when an address is of a type kongress does not support (Accepted=False/UnsupportedAddress).
    pub unsupported: Option<String>,
    /// Set when an address has a supported type but cannot be used (Programmed=False/AddressNotUsable).
    pub unusable: Option<String>,
}

pub(super) fn check(gateway: &Gateway) -> AddressVerdict {
    let mut verdict = AddressVerdict::default();
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
                Ok(ip) => verdict.requested.push(AddressRequest { value: ip.to_string() }),
                Err(_) => {
                    verdict
                        .unusable
                        .get_or_insert_with(|| format!("Address {value:?} is not a valid IP address"));
                }
            },
        }
    }
    verdict
}

/// Addresses the shared proxy Service carries: those of accepted Gateways, deduplicated, in precedence order.
pub(super) fn requested(plans: &[GatewayPlan]) -> Vec<String> {
    let mut values: Vec<String> = Vec::new();
    for plan in plans
        .iter()
        .filter(|p| p.addresses.unsupported.is_none() && p.invalid_parameters.is_none())
    {
        for request in &plan.addresses.requested {
            if !values.contains(&request.value) {
                values.push(request.value.clone());
            }
        }
    }
    values
}
