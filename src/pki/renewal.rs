//! Deciding when a stored admin-API certificate must be replaced.

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use chrono::{DateTime, Utc};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::parse_x509_certificate;

use super::{CertificateAuthority, first_certificate_der, from_asn1_time, x509_error_text};

/// Why a certificate has to be issued afresh; meant for logs and Events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenewalReason {
    Unreadable(String),
    NotIssuedByCa,
    NotYetValid { not_before: DateTime<Utc> },
    ExpiringSoon { not_after: DateTime<Utc> },
    NamesChanged,
}

impl fmt::Display for RenewalReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unreadable(reason) => write!(f, "the certificate is unreadable: {reason}"),
            Self::NotIssuedByCa => f.write_str("the certificate was not issued by the current CA"),
            Self::NotYetValid { not_before } => {
                write!(f, "the certificate is not valid before {not_before}")
            }
            Self::ExpiringSoon { not_after } => write!(
                f,
                "less than a third of the certificate's lifetime is left (it expires at {not_after})"
            ),
            Self::NamesChanged => f.write_str("the certificate's DNS names or IP addresses are not the wanted ones"),
        }
    }
}

/// Why `cert_pem` must be replaced, or `None` while it can stay: it must
/// parse, be signed by `ca`, be valid already and have more than a third of
/// its lifetime left. Renewing at two thirds leaves a wide window for retries
/// when the API server or the Kong pods are unavailable for a while.
pub fn renewal_reason(cert_pem: &str, ca: &CertificateAuthority, now: DateTime<Utc>) -> Option<RenewalReason> {
    inspect(cert_pem, ca, now, None)
}

/// [`renewal_reason`], and additionally the certificate's SANs must be
/// exactly `dns_names` (case-insensitively) and `ip_addresses`, in any order,
/// so that a renamed admin Service gets a certificate for its new name.
pub fn renewal_reason_for_names(
    cert_pem: &str,
    ca: &CertificateAuthority,
    dns_names: &[String],
    ip_addresses: &[IpAddr],
    now: DateTime<Utc>,
) -> Option<RenewalReason> {
    inspect(cert_pem, ca, now, Some((dns_names, ip_addresses)))
}

pub fn needs_renewal(cert_pem: &str, ca: &CertificateAuthority, now: DateTime<Utc>) -> bool {
    renewal_reason(cert_pem, ca, now).is_some()
}

pub fn needs_renewal_for_names(
    cert_pem: &str,
    ca: &CertificateAuthority,
    dns_names: &[String],
    ip_addresses: &[IpAddr],
    now: DateTime<Utc>,
) -> bool {
    renewal_reason_for_names(cert_pem, ca, dns_names, ip_addresses, now).is_some()
}

fn inspect(
    cert_pem: &str,
    ca: &CertificateAuthority,
    now: DateTime<Utc>,
    wanted_names: Option<(&[String], &[IpAddr])>,
) -> Option<RenewalReason> {
    let der = match first_certificate_der(cert_pem.as_bytes()) {
        Ok(der) => der,
        Err(reason) => return Some(RenewalReason::Unreadable(reason)),
    };
    let cert = match parse_x509_certificate(&der) {
        Ok((_, cert)) => cert,
        Err(e) => {
            return Some(RenewalReason::Unreadable(format!(
                "does not parse as X.509: {}",
                x509_error_text(e)
            )));
        }
    };
    if !ca.signed(&cert) {
        return Some(RenewalReason::NotIssuedByCa);
    }
    let validity = cert.validity();
    let (Some(not_before), Some(not_after)) = (
        from_asn1_time(&validity.not_before),
        from_asn1_time(&validity.not_after),
    ) else {
        return Some(RenewalReason::Unreadable(
            "the validity period is out of range".to_string(),
        ));
    };
    if now < not_before {
        return Some(RenewalReason::NotYetValid { not_before });
    }
    if not_after - now <= (not_after - not_before) / 3 {
        return Some(RenewalReason::ExpiringSoon { not_after });
    }
    if let Some((dns_names, ip_addresses)) = wanted_names {
        let wanted_dns: BTreeSet<String> = dns_names.iter().map(|name| name.to_ascii_lowercase()).collect();
        let wanted_ips: BTreeSet<IpAddr> = ip_addresses.iter().copied().collect();
        if subject_alt_names(&cert) != Some((wanted_dns, wanted_ips)) {
            return Some(RenewalReason::NamesChanged);
        }
    }
    None
}

/// `None` when the SAN extension is malformed or holds an address of
/// impossible length; such a certificate never has the wanted names.
fn subject_alt_names(cert: &X509Certificate<'_>) -> Option<(BTreeSet<String>, BTreeSet<IpAddr>)> {
    let mut dns = BTreeSet::new();
    let mut ips = BTreeSet::new();
    let Some(extension) = cert.subject_alternative_name().ok()? else {
        return Some((dns, ips));
    };
    for name in &extension.value.general_names {
        match name {
            GeneralName::DNSName(name) => {
                dns.insert(name.to_ascii_lowercase());
            }
            GeneralName::IPAddress(bytes) => {
                let address = if let Ok(v4) = <[u8; 4]>::try_from(*bytes) {
                    IpAddr::V4(Ipv4Addr::from(v4))
                } else {
                    IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(*bytes).ok()?))
                };
                ips.insert(address);
            }
            _ => {}
        }
    }
    Some((dns, ips))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::fixtures::*;
    use crate::pki::{IssuedCertificate, LEAF_VALIDITY};
    use chrono::TimeDelta;
    use rcgen::{CertificateParams, KeyPair};

    fn names() -> Vec<String> {
        vec!["kong-admin".to_string(), "kong-admin.kongress-system.svc".to_string()]
    }

    fn address() -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7))
    }

    fn server(ca: &CertificateAuthority) -> IssuedCertificate {
        ca.issue_server(&names(), &[address()], now(), LEAF_VALIDITY)
            .expect("issues")
    }

    /// The issued certificate's lifetime includes the clock-skew backdating,
    /// so the renewal point is computed from the certificate's own dates.
    fn renewal_point(issued: &IssuedCertificate) -> DateTime<Utc> {
        let not_before = now() - TimeDelta::minutes(5);
        issued.not_after - (issued.not_after - not_before) / 3
    }

    #[test]
    fn fresh_certificate_is_kept() {
        let ca = ca();
        let issued = server(&ca);
        assert_eq!(renewal_reason(&issued.cert_pem, &ca, now()), None);
        assert!(!needs_renewal(&issued.cert_pem, &ca, now()));
    }

    #[test]
    fn certificate_with_more_than_a_third_of_lifetime_left_is_kept() {
        let ca = ca();
        let issued = server(&ca);
        let just_before = renewal_point(&issued) - TimeDelta::seconds(1);
        assert!(!needs_renewal(&issued.cert_pem, &ca, just_before));
    }

    #[test]
    fn certificate_with_a_third_of_lifetime_left_is_renewed() {
        let ca = ca();
        let issued = server(&ca);
        assert_eq!(
            renewal_reason(&issued.cert_pem, &ca, renewal_point(&issued)),
            Some(RenewalReason::ExpiringSoon {
                not_after: issued.not_after
            })
        );
        // Sixty-one of ninety days gone: a plain reading of the rule.
        assert!(needs_renewal(&issued.cert_pem, &ca, now() + TimeDelta::days(61)));
        assert!(!needs_renewal(&issued.cert_pem, &ca, now() + TimeDelta::days(59)));
    }

    #[test]
    fn expired_certificate_is_renewed() {
        let ca = ca();
        let issued = server(&ca);
        assert!(needs_renewal(
            &issued.cert_pem,
            &ca,
            issued.not_after + TimeDelta::days(1)
        ));
    }

    #[test]
    fn certificate_not_yet_valid_is_renewed() {
        let ca = ca();
        let issued = server(&ca);
        let earlier = now() - TimeDelta::hours(1);
        assert!(matches!(
            renewal_reason(&issued.cert_pem, &ca, earlier),
            Some(RenewalReason::NotYetValid { .. })
        ));
    }

    #[test]
    fn certificate_signed_by_another_ca_is_renewed() {
        // Same name on purpose: only the signature tells the two CAs apart.
        let old_ca = ca();
        let new_ca = ca();
        let issued = server(&old_ca);
        assert!(!needs_renewal(&issued.cert_pem, &old_ca, now()));
        assert_eq!(
            renewal_reason(&issued.cert_pem, &new_ca, now()),
            Some(RenewalReason::NotIssuedByCa)
        );
    }

    #[test]
    fn self_signed_certificate_is_renewed() {
        let ca = ca();
        let key = KeyPair::generate().expect("key");
        let cert = CertificateParams::new(names())
            .expect("params")
            .self_signed(&key)
            .expect("self-signed");
        assert_eq!(
            renewal_reason(&cert.pem(), &ca, now()),
            Some(RenewalReason::NotIssuedByCa)
        );
    }

    #[test]
    fn unparseable_certificate_is_renewed() {
        let ca = ca();
        for pem in [
            "",
            "garbage",
            "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n",
        ] {
            assert!(
                matches!(renewal_reason(pem, &ca, now()), Some(RenewalReason::Unreadable(_))),
                "{pem:?}"
            );
        }
    }

    #[test]
    fn server_certificate_for_the_wanted_names_in_any_order_and_case_is_kept() {
        let ca = ca();
        let issued = server(&ca);
        let mut reordered: Vec<String> = names().iter().rev().map(|n| n.to_uppercase()).collect();
        reordered.push("kong-admin".to_string());
        assert!(!needs_renewal_for_names(
            &issued.cert_pem,
            &ca,
            &reordered,
            &[address(), address()],
            now()
        ));
    }

    #[test]
    fn server_certificate_for_a_renamed_service_is_renewed() {
        let ca = ca();
        let issued = server(&ca);
        let renamed = vec![
            "kong-admin-2".to_string(),
            "kong-admin-2.kongress-system.svc".to_string(),
        ];
        assert_eq!(
            renewal_reason_for_names(&issued.cert_pem, &ca, &renamed, &[address()], now()),
            Some(RenewalReason::NamesChanged)
        );
    }

    #[test]
    fn server_certificate_missing_a_wanted_name_is_renewed() {
        let ca = ca();
        let issued = server(&ca);
        let mut more = names();
        more.push("localhost".to_string());
        assert!(needs_renewal_for_names(
            &issued.cert_pem,
            &ca,
            &more,
            &[address()],
            now()
        ));
    }

    #[test]
    fn server_certificate_with_a_changed_address_is_renewed() {
        let ca = ca();
        let issued = server(&ca);
        assert!(needs_renewal_for_names(
            &issued.cert_pem,
            &ca,
            &names(),
            &[IpAddr::V4(Ipv4Addr::new(10, 0, 0, 8))],
            now()
        ));
        assert!(needs_renewal_for_names(&issued.cert_pem, &ca, &names(), &[], now()));
    }
}
