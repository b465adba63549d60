//! Test fixtures shared by the pki tests: PEM files made with the openssl CLI, a fixed
//! clock and a CA.

use chrono::{DateTime, Utc};

use super::CertificateAuthority;

pub const RSA_CERT: &str = include_str!("testdata/rsa.crt");
pub const RSA_PKCS1_KEY: &str = include_str!("testdata/rsa-pkcs1.key");
pub const RSA_PKCS8_KEY: &str = include_str!("testdata/rsa-pkcs8.key");
pub const OTHER_RSA_PKCS1_KEY: &str = include_str!("testdata/other-rsa-pkcs1.key");
pub const EC_CERT: &str = include_str!("testdata/ec.crt");
pub const EC_SEC1_KEY: &str = include_str!("testdata/ec-sec1.key");
pub const EC_ENCRYPTED_KEY: &str = include_str!("testdata/ec-encrypted.key");
pub const ED25519_CERT: &str = include_str!("testdata/ed25519.crt");
pub const ED25519_KEY: &str = include_str!("testdata/ed25519.key");

pub fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .expect("test time is RFC 3339")
        .with_timezone(&Utc)
}

/// The moment the tests' CA and certificates are made.
pub fn now() -> DateTime<Utc> {
    at("2026-01-15T10:00:00Z")
}

pub fn ca() -> CertificateAuthority {
    CertificateAuthority::generate("kongress test CA", now()).expect("CA generates")
}
