//! The operator-managed CA for the Kong admin API's mutual TLS, and the
//! checks applied to user-supplied TLS Secrets.
//!
//! Everything here is pure: callers pass the current time and the PEM text
//! they read from Secrets, and get PEM text or verdicts back. Reading and
//! writing the Secrets is the controller's job.

mod ca;
#[cfg(test)]
mod fixtures;
mod keys;
mod renewal;
mod tls_secret;

pub use ca::{CA_VALIDITY, CertificateAuthority, IssuedCertificate, LEAF_VALIDITY, generate_self_signed_pem};
pub use renewal::{RenewalReason, needs_renewal, needs_renewal_for_names, renewal_reason, renewal_reason_for_names};
pub use tls_secret::validate_tls_secret;

/// Short fingerprint of the `tls.crt` of a TLS Secret's data, put on the pod template so a
/// new certificate rolls the pods.
pub fn certificate_fingerprint(data: &std::collections::BTreeMap<String, k8s_openapi::ByteString>) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(data.get("tls.crt").map(|b| b.0.as_slice()).unwrap_or_default());
    hex::encode(&digest[..8])
}

use chrono::{DateTime, TimeDelta, Utc};
use time::OffsetDateTime;
use x509_parser::error::X509Error;
use x509_parser::pem::Pem;
use x509_parser::time::ASN1Time;

/// Failures of CA handling and certificate issuance.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("the CA certificate is unusable: {0}")]
    InvalidCaCertificate(String),
    #[error("the CA private key is unusable: {0}")]
    InvalidCaKey(String),
    #[error("the CA private key does not belong to the CA certificate")]
    CaKeyMismatch,
    #[error("the CA certificate lacks basicConstraints CA:TRUE, so it cannot issue certificates")]
    NotACertificateAuthority,
    #[error("the CA certificate expired at {0}; no certificate it issues would be trusted")]
    CaExpired(DateTime<Utc>),
    #[error("common name {0:?} must be between 1 and 64 characters long")]
    InvalidCommonName(String),
    #[error("DNS name {0:?} cannot go into a certificate: it is empty or not ASCII")]
    InvalidDnsName(String),
    #[error("a server certificate needs at least one DNS name or IP address")]
    NoSubjectAltNames,
    #[error("certificate validity must be positive, got {0}")]
    InvalidValidity(TimeDelta),
    #[error("{0} cannot be written into a certificate")]
    TimeOutOfRange(DateTime<Utc>),
    #[error("could not create the certificate: {0}")]
    Generation(#[from] rcgen::Error),
}

const CERTIFICATE_LABEL: &str = "CERTIFICATE";

/// X.509 stores whole seconds; truncating here keeps the times we report
/// equal to the ones a parser reads back from the certificate.
fn whole_seconds(t: DateTime<Utc>) -> Result<DateTime<Utc>, PkiError> {
    DateTime::from_timestamp(t.timestamp(), 0).ok_or(PkiError::TimeOutOfRange(t))
}

fn to_offset_date_time(t: DateTime<Utc>) -> Result<OffsetDateTime, PkiError> {
    OffsetDateTime::from_unix_timestamp(t.timestamp()).map_err(|_| PkiError::TimeOutOfRange(t))
}

fn from_asn1_time(t: &ASN1Time) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.timestamp(), 0)
}

/// nom's own Display prints the Debug form of the inner error, which reads
/// badly in a user-facing condition message.
fn x509_error_text(err: x509_parser::nom::Err<X509Error>) -> String {
    match err {
        x509_parser::nom::Err::Error(e) | x509_parser::nom::Err::Failure(e) => e.to_string(),
        x509_parser::nom::Err::Incomplete(_) => "the data is truncated".to_string(),
    }
}

/// The DER of the first CERTIFICATE block; other blocks (a key bundled in the
/// same file, say) are skipped rather than treated as errors.
fn first_certificate_der(pem_text: &[u8]) -> Result<Vec<u8>, String> {
    for block in Pem::iter_from_buffer(pem_text) {
        let block = block.map_err(|e| format!("not valid PEM: {e}"))?;
        if block.label == CERTIFICATE_LABEL {
            return Ok(block.contents);
        }
    }
    Err("no PEM certificate block".to_string())
}
