//! The CA kongress keeps in its own namespace, and the admin-API server and
//! client certificates it issues from it.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;

use chrono::{DateTime, TimeDelta, Utc};
use rcgen::string::Ia5String;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType,
};
use x509_parser::certificate::X509Certificate;
use x509_parser::parse_x509_certificate;
use x509_parser::pem::parse_x509_pem;

use super::keys::{public_key_of_certificate, public_key_of_private_key_pem};
use super::{CERTIFICATE_LABEL, PkiError, from_asn1_time, to_offset_date_time, whole_seconds, x509_error_text};

/// Rotating the CA means re-distributing trust to every Kong pod, so it is
/// made to outlast any realistic cluster.
pub const CA_VALIDITY: TimeDelta = TimeDelta::days(3650);

/// Leaf certificates are cheap to replace (renewal is automatic), so they are
/// kept short-lived to bound the damage of a leaked key.
pub const LEAF_VALIDITY: TimeDelta = TimeDelta::days(90);

/// Kong pods may run a little behind kongress's clock; without the backdating
/// a brand-new certificate could be "not yet valid" to them for a moment.
const CLOCK_SKEW_ALLOWANCE: TimeDelta = TimeDelta::minutes(5);

/// ub-common-name from RFC 5280; strict verifiers reject longer CNs.
const MAX_COMMON_NAME_LEN: usize = 64;

/// The CN only helps people reading the certificate (verification uses the
/// SANs), so a fixed one is used when the first DNS name is too long for it.
const FALLBACK_SERVER_COMMON_NAME: &str = "kongress admin API";

const ORGANIZATION: &str = "kongress";

/// The operator's certificate authority: the certificate and key as stored in
/// the CA Secret, plus the signer rcgen needs.
pub struct CertificateAuthority {
    cert_pem: String,
    key_pem: String,
    cert_der: Vec<u8>,
    subject: String,
    not_after: DateTime<Utc>,
    issuer: Issuer<'static, KeyPair>,
}

/// A freshly issued leaf certificate and its private key, both PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedCertificate {
    pub cert_pem: String,
    pub key_pem: String,
    pub not_after: DateTime<Utc>,
}

impl fmt::Debug for IssuedCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedCertificate")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"[redacted]")
            .field("not_after", &self.not_after)
            .finish()
    }
}

impl fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("subject", &self.subject)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    /// A new self-signed CA with an ECDSA P-256 key, valid for [`CA_VALIDITY`].
    pub fn generate(common_name: &str, now: DateTime<Utc>) -> Result<Self, PkiError> {
        check_common_name(common_name)?;
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = distinguished_name(common_name);
        // Path length 0: this CA signs leaves only, never another CA.
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        set_validity(&mut params, now, now.checked_add_signed(CA_VALIDITY))?;
        let cert = params.self_signed(&key)?;
        // Loading through from_pem gives a generated CA and one read back from
        // its Secret the very same issuer state.
        Self::from_pem(&cert.pem(), &key.serialize_pem())
    }

    /// Loads the CA from its Secret. The certificate must be the first PEM
    /// block of `cert_pem`; the key must be PKCS#8 ("PRIVATE KEY").
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, PkiError> {
        let (_, block) = parse_x509_pem(cert_pem.as_bytes())
            .map_err(|e| PkiError::InvalidCaCertificate(format!("not valid PEM: {e}")))?;
        if block.label != CERTIFICATE_LABEL {
            return Err(PkiError::InvalidCaCertificate(format!(
                "the first PEM block is a {}, not a CERTIFICATE",
                block.label
            )));
        }
        let cert_der = block.contents;
        let (subject, not_after) = check_ca_certificate(&cert_der, key_pem)?;
        let key = KeyPair::from_pem(key_pem).map_err(|e| PkiError::InvalidCaKey(e.to_string()))?;
        let issuer =
            Issuer::from_ca_cert_pem(cert_pem, key).map_err(|e| PkiError::InvalidCaCertificate(e.to_string()))?;
        Ok(Self {
            cert_pem: cert_pem.to_string(),
            key_pem: key_pem.to_string(),
            cert_der,
            subject,
            not_after,
            issuer,
        })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    pub fn not_after(&self) -> DateTime<Utc> {
        self.not_after
    }

    /// An admin-API server certificate (serverAuth) for the given names.
    /// Duplicates are dropped; at least one name or address is required.
    pub fn issue_server(
        &self,
        dns_names: &[String],
        ip_addresses: &[IpAddr],
        now: DateTime<Utc>,
        validity: TimeDelta,
    ) -> Result<IssuedCertificate, PkiError> {
        let mut seen_names = BTreeSet::new();
        let mut subject_alt_names = Vec::new();
        for name in dns_names {
            if !seen_names.insert(name.to_ascii_lowercase()) {
                continue;
            }
            if name.is_empty() {
                return Err(PkiError::InvalidDnsName(name.clone()));
            }
            let ia5 = Ia5String::try_from(name.as_str()).map_err(|_| PkiError::InvalidDnsName(name.clone()))?;
            subject_alt_names.push(SanType::DnsName(ia5));
        }
        let mut seen_addresses = BTreeSet::new();
        for address in ip_addresses {
            if seen_addresses.insert(*address) {
                subject_alt_names.push(SanType::IpAddress(*address));
            }
        }
        if subject_alt_names.is_empty() {
            return Err(PkiError::NoSubjectAltNames);
        }
        let common_name = dns_names
            .first()
            .map(String::as_str)
            .filter(|name| name.len() <= MAX_COMMON_NAME_LEN)
            .unwrap_or(FALLBACK_SERVER_COMMON_NAME);
        let mut params = CertificateParams::default();
        params.subject_alt_names = subject_alt_names;
        self.issue_leaf(params, common_name, ExtendedKeyUsagePurpose::ServerAuth, now, validity)
    }

    /// kongress's client certificate (clientAuth), presented to Kong.
    pub fn issue_client(
        &self,
        common_name: &str,
        now: DateTime<Utc>,
        validity: TimeDelta,
    ) -> Result<IssuedCertificate, PkiError> {
        check_common_name(common_name)?;
        self.issue_leaf(
            CertificateParams::default(),
            common_name,
            ExtendedKeyUsagePurpose::ClientAuth,
            now,
            validity,
        )
    }

    fn issue_leaf(
        &self,
        mut params: CertificateParams,
        common_name: &str,
        usage: ExtendedKeyUsagePurpose,
        now: DateTime<Utc>,
        validity: TimeDelta,
    ) -> Result<IssuedCertificate, PkiError> {
        if validity <= TimeDelta::zero() {
            return Err(PkiError::InvalidValidity(validity));
        }
        if now >= self.not_after {
            return Err(PkiError::CaExpired(self.not_after));
        }
        // A leaf outliving its CA would fail verification after the CA's
        // end anyway; capping keeps not_after honest for renewal decisions.
        let not_after = now.checked_add_signed(validity).map(|end| end.min(self.not_after));
        params.distinguished_name = distinguished_name(common_name);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![usage];
        params.use_authority_key_identifier_extension = true;
        let not_after = set_validity(&mut params, now, not_after)?;
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(IssuedCertificate {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            not_after,
        })
    }

    /// Whether this CA signed `cert`. The signature is what counts: a
    /// re-generated CA may well carry the same name.
    pub(crate) fn signed(&self, cert: &X509Certificate<'_>) -> bool {
        let Ok((_, ca_cert)) = parse_x509_certificate(&self.cert_der) else {
            return false;
        };
        cert.issuer().to_string() == ca_cert.subject().to_string()
            && cert.verify_signature(Some(ca_cert.public_key())).is_ok()
    }
}

/// A self-signed serverAuth certificate and its key (both PEM) for
/// `dns_name` (an IP address becomes an IP SAN), valid for a year from now.
/// Meant for demo listeners and test fixtures, not for the admin API.
pub fn generate_self_signed_pem(dns_name: &str) -> Result<(String, String), PkiError> {
    if dns_name.is_empty() {
        return Err(PkiError::InvalidDnsName(dns_name.to_string()));
    }
    let now = Utc::now();
    let mut params = CertificateParams::new(vec![dns_name.to_string()])?;
    let common_name = if dns_name.len() <= MAX_COMMON_NAME_LEN {
        dns_name
    } else {
        FALLBACK_SERVER_COMMON_NAME
    };
    params.distinguished_name = distinguished_name(common_name);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    set_validity(&mut params, now, now.checked_add_signed(TimeDelta::days(365)))?;
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// The CA certificate's subject and notAfter, once it is known to be a CA
/// whose key is `key_pem`.
fn check_ca_certificate(cert_der: &[u8], key_pem: &str) -> Result<(String, DateTime<Utc>), PkiError> {
    let (_, cert) = parse_x509_certificate(cert_der)
        .map_err(|e| PkiError::InvalidCaCertificate(format!("does not parse as X.509: {}", x509_error_text(e))))?;
    if !cert.is_ca() {
        return Err(PkiError::NotACertificateAuthority);
    }
    let not_after = from_asn1_time(&cert.validity().not_after)
        .ok_or_else(|| PkiError::InvalidCaCertificate("notAfter is out of range".to_string()))?;
    let key_material = public_key_of_private_key_pem(key_pem.as_bytes())
        .map_err(|problem| PkiError::InvalidCaKey(problem.to_string()))?;
    if let Some(material) = key_material
        && !material.matches(&public_key_of_certificate(cert.public_key()))
    {
        return Err(PkiError::CaKeyMismatch);
    }
    Ok((cert.subject().to_string(), not_after))
}

fn check_common_name(common_name: &str) -> Result<(), PkiError> {
    if common_name.is_empty() || common_name.len() > MAX_COMMON_NAME_LEN {
        return Err(PkiError::InvalidCommonName(common_name.to_string()));
    }
    Ok(())
}

fn distinguished_name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, ORGANIZATION);
    name.push(DnType::CommonName, common_name);
    name
}

/// Sets notBefore (backdated by the clock-skew allowance) and notAfter, and
/// returns notAfter as it will read back from the certificate. `None` for
/// `not_after` means the addition that produced it overflowed.
fn set_validity(
    params: &mut CertificateParams,
    now: DateTime<Utc>,
    not_after: Option<DateTime<Utc>>,
) -> Result<DateTime<Utc>, PkiError> {
    let not_before = now
        .checked_sub_signed(CLOCK_SKEW_ALLOWANCE)
        .ok_or(PkiError::TimeOutOfRange(now))?;
    let not_after = whole_seconds(not_after.ok_or(PkiError::TimeOutOfRange(now))?)?;
    params.not_before = to_offset_date_time(not_before)?;
    params.not_after = to_offset_date_time(not_after)?;
    Ok(not_after)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::fixtures::*;
    use crate::pki::validate_tls_secret;
    use k8s_openapi::ByteString;
    use k8s_openapi::api::core::v1::Secret;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use std::net::{Ipv4Addr, Ipv6Addr};
    use x509_parser::extensions::GeneralName;

    fn der(pem: &str) -> Vec<u8> {
        let (_, block) = parse_x509_pem(pem.as_bytes()).expect("PEM");
        assert_eq!(block.label, "CERTIFICATE");
        block.contents
    }

    fn parse(der: &[u8]) -> X509Certificate<'_> {
        parse_x509_certificate(der).expect("X.509").1
    }

    fn admin_names() -> Vec<String> {
        [
            "kong-admin",
            "kong-admin.kongress-system",
            "kong-admin.kongress-system.svc",
            "*.kong-admin.kongress-system.svc",
            "localhost",
        ]
        .map(String::from)
        .to_vec()
    }

    fn server(ca: &CertificateAuthority) -> IssuedCertificate {
        ca.issue_server(
            &admin_names(),
            &[IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7))],
            now(),
            LEAF_VALIDITY,
        )
        .expect("server certificate issues")
    }

    fn signed_by(cert_pem: &str, ca: &CertificateAuthority) -> bool {
        let leaf_der = der(cert_pem);
        let ca_der = der(ca.cert_pem());
        parse(&leaf_der)
            .verify_signature(Some(parse(&ca_der).public_key()))
            .is_ok()
    }

    fn extended_key_usage(cert_pem: &str) -> (bool, bool) {
        let leaf_der = der(cert_pem);
        let cert = parse(&leaf_der);
        let eku = cert.extended_key_usage().expect("EKU parses").expect("EKU present");
        (eku.value.server_auth, eku.value.client_auth)
    }

    fn tls_secret(cert_pem: &str, key_pem: &str) -> Secret {
        Secret {
            metadata: ObjectMeta {
                namespace: Some("default".to_string()),
                name: Some("pair".to_string()),
                ..ObjectMeta::default()
            },
            type_: Some("kubernetes.io/tls".to_string()),
            data: Some(
                [
                    ("tls.crt".to_string(), ByteString(cert_pem.as_bytes().to_vec())),
                    ("tls.key".to_string(), ByteString(key_pem.as_bytes().to_vec())),
                ]
                .into(),
            ),
            ..Secret::default()
        }
    }

    #[test]
    fn generated_ca_is_a_path_length_zero_ca_that_may_sign_certificates() {
        let ca = ca();
        let ca_der = der(ca.cert_pem());
        let cert = parse(&ca_der);
        let constraints = cert.basic_constraints().expect("parses").expect("present");
        assert!(constraints.value.ca);
        assert_eq!(constraints.value.path_len_constraint, Some(0));
        let usage = cert.key_usage().expect("parses").expect("present");
        assert!(usage.value.key_cert_sign());
        assert!(cert.verify_signature(None).is_ok(), "CA is self-signed");
        assert!(cert.subject().to_string().contains("CN=kongress test CA"));
    }

    #[test]
    fn generated_ca_uses_an_ecdsa_p256_key_valid_for_ten_years() {
        let ca = ca();
        let ca_der = der(ca.cert_pem());
        let cert = parse(&ca_der);
        assert_eq!(
            cert.public_key().algorithm.algorithm,
            x509_parser::oid_registry::OID_KEY_TYPE_EC_PUBLIC_KEY
        );
        assert_eq!(cert.public_key().parsed().expect("key").key_size(), 256);
        assert_eq!(ca.not_after(), now() + CA_VALIDITY);
    }

    #[test]
    fn ca_round_trips_through_pem() {
        let original = ca();
        let loaded =
            CertificateAuthority::from_pem(original.cert_pem(), original.key_pem()).expect("CA loads from its own PEM");
        assert_eq!(loaded.cert_pem(), original.cert_pem());
        assert_eq!(loaded.key_pem(), original.key_pem());
        assert_eq!(loaded.not_after(), original.not_after());
        let issued = server(&loaded);
        assert!(signed_by(&issued.cert_pem, &original));
        let leaf_der = der(&issued.cert_pem);
        assert!(original.signed(&parse(&leaf_der)));
    }

    #[test]
    fn ca_with_a_key_of_another_ca_is_refused() {
        let first = ca();
        let second = ca();
        let result = CertificateAuthority::from_pem(first.cert_pem(), second.key_pem());
        assert!(matches!(result, Err(PkiError::CaKeyMismatch)), "{result:?}");
    }

    #[test]
    fn leaf_certificate_is_refused_as_ca() {
        let issued = server(&ca());
        let result = CertificateAuthority::from_pem(&issued.cert_pem, &issued.key_pem);
        assert!(matches!(result, Err(PkiError::NotACertificateAuthority)), "{result:?}");
    }

    #[test]
    fn garbage_ca_pem_is_refused() {
        let ca = ca();
        let result = CertificateAuthority::from_pem("not a certificate", ca.key_pem());
        assert!(matches!(result, Err(PkiError::InvalidCaCertificate(_))), "{result:?}");
        let result = CertificateAuthority::from_pem(ca.cert_pem(), "not a key");
        assert!(matches!(result, Err(PkiError::InvalidCaKey(_))), "{result:?}");
    }

    #[test]
    fn ca_common_name_must_fit_x509_limits() {
        assert!(matches!(
            CertificateAuthority::generate("", now()),
            Err(PkiError::InvalidCommonName(_))
        ));
        assert!(matches!(
            CertificateAuthority::generate(&"x".repeat(65), now()),
            Err(PkiError::InvalidCommonName(_))
        ));
    }

    #[test]
    fn ca_debug_output_hides_the_private_key() {
        let ca = ca();
        let issued = server(&ca);
        assert!(!format!("{ca:?}").contains("PRIVATE KEY"));
        assert!(!format!("{issued:?}").contains("PRIVATE KEY"));
    }

    #[test]
    fn issued_server_certificate_chains_to_the_ca() {
        let ca = ca();
        let issued = server(&ca);
        assert!(signed_by(&issued.cert_pem, &ca));
        assert!(!signed_by(&issued.cert_pem, &self::ca()), "another CA");
        let leaf_der = der(&issued.cert_pem);
        let ca_der = der(ca.cert_pem());
        let leaf = parse(&leaf_der);
        let ca_cert = parse(&ca_der);
        assert_eq!(leaf.issuer().to_string(), ca_cert.subject().to_string());
        let authority_key_id = leaf
            .iter_extensions()
            .find_map(|ext| match ext.parsed_extension() {
                x509_parser::extensions::ParsedExtension::AuthorityKeyIdentifier(aki) => {
                    aki.key_identifier.as_ref().map(|id| id.0.to_vec())
                }
                _ => None,
            })
            .expect("leaf names its authority key");
        let subject_key_id = ca_cert
            .iter_extensions()
            .find_map(|ext| match ext.parsed_extension() {
                x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(ski) => Some(ski.0.to_vec()),
                _ => None,
            })
            .expect("CA has a subject key id");
        assert_eq!(authority_key_id, subject_key_id);
    }

    #[test]
    fn server_certificate_has_server_auth_usage() {
        assert_eq!(extended_key_usage(&server(&ca()).cert_pem), (true, false));
    }

    #[test]
    fn client_certificate_has_client_auth_usage() {
        let issued = ca()
            .issue_client("kongress", now(), LEAF_VALIDITY)
            .expect("client certificate issues");
        assert_eq!(extended_key_usage(&issued.cert_pem), (false, true));
    }

    #[test]
    fn client_certificate_chains_to_the_ca_and_carries_the_common_name() {
        let ca = ca();
        let issued = ca
            .issue_client("kongress", now(), LEAF_VALIDITY)
            .expect("client certificate issues");
        assert!(signed_by(&issued.cert_pem, &ca));
        let leaf_der = der(&issued.cert_pem);
        assert!(parse(&leaf_der).subject().to_string().contains("CN=kongress"));
    }

    #[test]
    fn issued_certificates_are_not_cas() {
        let ca = ca();
        let client = ca
            .issue_client("kongress", now(), LEAF_VALIDITY)
            .expect("client certificate issues");
        for pem in [server(&ca).cert_pem, client.cert_pem] {
            let leaf_der = der(&pem);
            let cert = parse(&leaf_der);
            let constraints = cert.basic_constraints().expect("parses").expect("explicitly present");
            assert!(!constraints.value.ca);
        }
    }

    #[test]
    fn server_certificate_carries_the_requested_dns_names_and_addresses() {
        let ca = ca();
        let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
        let mut names = admin_names();
        names.push("KONG-ADMIN".to_string());
        let issued = ca
            .issue_server(
                &names,
                &[IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7)), v6, v6],
                now(),
                LEAF_VALIDITY,
            )
            .expect("issues");
        let leaf_der = der(&issued.cert_pem);
        let cert = parse(&leaf_der);
        let san = cert.subject_alternative_name().expect("parses").expect("present");
        let dns: Vec<&str> = san
            .value
            .general_names
            .iter()
            .filter_map(|name| match name {
                GeneralName::DNSName(dns) => Some(*dns),
                _ => None,
            })
            .collect();
        let ips: Vec<&[u8]> = san
            .value
            .general_names
            .iter()
            .filter_map(|name| match name {
                GeneralName::IPAddress(ip) => Some(*ip),
                _ => None,
            })
            .collect();
        assert_eq!(dns, admin_names(), "case-insensitive duplicates dropped");
        assert_eq!(ips, vec![&[10, 0, 0, 7][..], &Ipv6Addr::LOCALHOST.octets()[..]]);
        assert!(cert.subject().to_string().contains("CN=kong-admin"));
    }

    #[test]
    fn server_certificate_with_a_long_first_name_gets_a_short_common_name() {
        let long = format!("{}.kongress-system.svc", "a".repeat(60));
        let issued = ca().issue_server(&[long], &[], now(), LEAF_VALIDITY).expect("issues");
        let leaf_der = der(&issued.cert_pem);
        assert!(parse(&leaf_der).subject().to_string().contains("CN=kongress admin API"));
    }

    #[test]
    fn server_certificate_without_names_is_refused() {
        let result = ca().issue_server(&[], &[], now(), LEAF_VALIDITY);
        assert!(matches!(result, Err(PkiError::NoSubjectAltNames)), "{result:?}");
    }

    #[test]
    fn empty_or_non_ascii_dns_name_is_refused() {
        let ca = ca();
        for name in ["", "kông-admin"] {
            let result = ca.issue_server(&[name.to_string()], &[], now(), LEAF_VALIDITY);
            assert!(matches!(result, Err(PkiError::InvalidDnsName(_))), "{result:?}");
        }
    }

    #[test]
    fn non_positive_validity_is_refused() {
        let ca = ca();
        for validity in [TimeDelta::zero(), TimeDelta::days(-1)] {
            let result = ca.issue_client("kongress", now(), validity);
            assert!(matches!(result, Err(PkiError::InvalidValidity(_))), "{result:?}");
        }
    }

    #[test]
    fn leaf_validity_is_backdated_for_clock_skew_and_ends_after_the_requested_span() {
        let issued = server(&ca());
        let leaf_der = der(&issued.cert_pem);
        let cert = parse(&leaf_der);
        let not_before = from_asn1_time(&cert.validity().not_before).expect("in range");
        let not_after = from_asn1_time(&cert.validity().not_after).expect("in range");
        assert_eq!(not_before, now() - CLOCK_SKEW_ALLOWANCE);
        assert_eq!(not_after, now() + LEAF_VALIDITY);
        assert_eq!(issued.not_after, not_after);
    }

    #[test]
    fn leaf_never_outlives_its_ca() {
        let ca = ca();
        let late = ca.not_after() - TimeDelta::days(10);
        let issued = ca.issue_client("kongress", late, LEAF_VALIDITY).expect("issues");
        assert_eq!(issued.not_after, ca.not_after());
    }

    #[test]
    fn expired_ca_issues_nothing() {
        let ca = ca();
        let result = ca.issue_client("kongress", ca.not_after(), LEAF_VALIDITY);
        assert!(matches!(result, Err(PkiError::CaExpired(_))), "{result:?}");
    }

    #[test]
    fn issued_key_belongs_to_issued_certificate_and_every_issue_has_a_fresh_key() {
        let ca = ca();
        let first = server(&ca);
        let second = server(&ca);
        assert_ne!(first.key_pem, second.key_pem);
        assert_ne!(first.cert_pem, second.cert_pem);
        assert_eq!(
            validate_tls_secret(&tls_secret(&first.cert_pem, &first.key_pem)),
            Ok(())
        );
        assert!(
            validate_tls_secret(&tls_secret(&first.cert_pem, &second.key_pem)).is_err(),
            "the check above must be able to fail"
        );
    }

    #[test]
    fn self_signed_pair_is_a_valid_listener_certificate_for_its_name() {
        let (cert_pem, key_pem) = generate_self_signed_pem("demo.example.com").expect("self-signed pair generates");
        assert_eq!(validate_tls_secret(&tls_secret(&cert_pem, &key_pem)), Ok(()));
        let leaf_der = der(&cert_pem);
        let cert = parse(&leaf_der);
        assert!(cert.verify_signature(None).is_ok());
        let san = cert.subject_alternative_name().expect("parses").expect("present");
        assert_eq!(san.value.general_names, vec![GeneralName::DNSName("demo.example.com")]);
        assert_eq!(extended_key_usage(&cert_pem), (true, false));
    }
}
