//! Deriving the public key of a PEM private key, so it can be compared with
//! the public key of a certificate.
//!
//! Users bring keys written by many tools: PKCS#8, PKCS#1 ("RSA PRIVATE KEY")
//! and SEC1 ("EC PRIVATE KEY"), RSA of any size. rcgen (on ring) loads only
//! PKCS#8 and only some RSA sizes, so the public halves are read from the DER
//! structures directly; rcgen is the fallback for algorithms whose public key
//! must be computed (Ed25519). When the public key cannot be determined the
//! caller gets `None` and must not reject the key for it.

use rcgen::{KeyPair, PublicKeyData};
use x509_parser::asn1_rs::{Any, Class, FromDer, Tag};
use x509_parser::oid_registry::{OID_KEY_TYPE_EC_PUBLIC_KEY, OID_PKCS1_RSAENCRYPTION};
use x509_parser::pem::Pem;
use x509_parser::public_key::PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

const PKCS8_LABEL: &str = "PRIVATE KEY";
const PKCS1_LABEL: &str = "RSA PRIVATE KEY";
const SEC1_LABEL: &str = "EC PRIVATE KEY";
const ENCRYPTED_PKCS8_LABEL: &str = "ENCRYPTED PRIVATE KEY";
/// The header OpenSSL writes into legacy encrypted PKCS#1/SEC1 blocks.
const LEGACY_ENCRYPTION_HEADER: &str = "Proc-Type: 4,ENCRYPTED";

/// A public key reduced to what identifies it, so that keys and certificates
/// written by different tools compare equal when they belong together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PublicKeyMaterial {
    Rsa { modulus: Vec<u8>, exponent: Vec<u8> },
    EcPoint(Vec<u8>),
    Other(Vec<u8>),
}

impl PublicKeyMaterial {
    pub(crate) fn matches(&self, other: &PublicKeyMaterial) -> bool {
        match (self, other) {
            (
                Self::Rsa { modulus, exponent },
                Self::Rsa {
                    modulus: other_modulus,
                    exponent: other_exponent,
                },
            ) => modulus == other_modulus && exponent == other_exponent,
            (Self::EcPoint(a), Self::EcPoint(b)) => {
                a == b || compressed_point_matches(a, b) || compressed_point_matches(b, a)
            }
            (Self::Other(a), Self::Other(b)) => a == b,
            _ => false,
        }
    }
}

/// A certificate may carry its EC point compressed while the key file holds
/// it uncompressed (or the reverse); both name the same key when the x
/// coordinates agree and the prefix encodes the parity of y.
fn compressed_point_matches(uncompressed: &[u8], compressed: &[u8]) -> bool {
    let (Some((&0x04, xy)), Some((&prefix @ (0x02 | 0x03), x))) =
        (uncompressed.split_first(), compressed.split_first())
    else {
        return false;
    };
    let Some(&y_last) = xy.last() else {
        return false;
    };
    xy.len() == 2 * x.len() && &xy[..x.len()] == x && (y_last & 1) == (prefix & 1)
}

pub(crate) fn public_key_of_certificate(spki: &SubjectPublicKeyInfo<'_>) -> PublicKeyMaterial {
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => PublicKeyMaterial::Rsa {
            modulus: strip_leading_zeros(rsa.modulus).to_vec(),
            exponent: strip_leading_zeros(rsa.exponent).to_vec(),
        },
        Ok(PublicKey::EC(point)) => PublicKeyMaterial::EcPoint(point.data().to_vec()),
        _ => PublicKeyMaterial::Other(spki.subject_public_key.data.to_vec()),
    }
}

/// Why a PEM text yielded no usable private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PrivateKeyProblem {
    /// No private key block; `labels` lists the blocks that were there.
    Missing {
        labels: Vec<String>,
    },
    Encrypted,
    InvalidPem(String),
    /// A private key block whose content is not the structure its label names.
    Malformed {
        label: String,
        reason: String,
    },
}

impl std::fmt::Display for PrivateKeyProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Missing { .. } => f.write_str("no PEM private key block"),
            Self::Encrypted => f.write_str("the private key is encrypted"),
            Self::InvalidPem(reason) => write!(f, "not valid PEM: {reason}"),
            Self::Malformed { label, reason } => {
                write!(f, "the {label} block does not parse: {reason}")
            }
        }
    }
}

/// The public half of the first private key in `pem_text`; `Ok(None)` when
/// the key parses but its public half cannot be determined here.
pub(crate) fn public_key_of_private_key_pem(pem_text: &[u8]) -> Result<Option<PublicKeyMaterial>, PrivateKeyProblem> {
    // The legacy header makes the base64 decoder fail, so it is looked for
    // before decoding to give the more useful answer.
    if contains(pem_text, LEGACY_ENCRYPTION_HEADER.as_bytes()) {
        return Err(PrivateKeyProblem::Encrypted);
    }
    let mut labels = Vec::new();
    for block in Pem::iter_from_buffer(pem_text) {
        let block = block.map_err(|e| PrivateKeyProblem::InvalidPem(e.to_string()))?;
        let parsed = match block.label.as_str() {
            PKCS8_LABEL => pkcs8_public_key(&block.contents),
            PKCS1_LABEL => pkcs1_public_key(&block.contents).map(Some),
            SEC1_LABEL => sec1_public_key(&block.contents),
            ENCRYPTED_PKCS8_LABEL => return Err(PrivateKeyProblem::Encrypted),
            _ => {
                labels.push(block.label);
                continue;
            }
        };
        return parsed.map_err(|reason| PrivateKeyProblem::Malformed {
            label: block.label.clone(),
            reason,
        });
    }
    Err(PrivateKeyProblem::Missing { labels })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

/// PKCS#8 / RFC 5958: SEQUENCE { version, AlgorithmIdentifier, privateKey
/// OCTET STRING, [0] attributes OPTIONAL, [1] publicKey OPTIONAL }.
fn pkcs8_public_key(der: &[u8]) -> Result<Option<PublicKeyMaterial>, String> {
    let fields = sequence(der)?;
    let [_version, algorithm, private_key, optional @ ..] = fields.as_slice() else {
        return Err("the PKCS#8 structure has too few fields".to_string());
    };
    let algorithm_fields = sequence_of(algorithm)?;
    let oid = algorithm_fields
        .first()
        .filter(|field| field.tag() == Tag::Oid)
        .ok_or("the PKCS#8 algorithm identifier has no OID")?;
    if private_key.tag() != Tag::OctetString {
        return Err("the PKCS#8 private key is not an OCTET STRING".to_string());
    }
    if oid.data == OID_PKCS1_RSAENCRYPTION.as_bytes() {
        return pkcs1_public_key(private_key.data).map(Some);
    }
    if oid.data == OID_KEY_TYPE_EC_PUBLIC_KEY.as_bytes() {
        return sec1_public_key(private_key.data);
    }
    let embedded = optional
        .iter()
        .find(|field| field.class() == Class::ContextSpecific && field.tag() == Tag(1));
    if let Some(public_key) = embedded {
        // [1] is IMPLICIT here, so the content is the bit string's own content.
        return bit_string_content(public_key.data).map(|key| Some(PublicKeyMaterial::Other(key.to_vec())));
    }
    Ok(KeyPair::try_from(der)
        .ok()
        .map(|key| PublicKeyMaterial::Other(key.der_bytes().to_vec())))
}

/// PKCS#1: SEQUENCE { version, modulus, publicExponent, ... }.
fn pkcs1_public_key(der: &[u8]) -> Result<PublicKeyMaterial, String> {
    let fields = sequence(der)?;
    let [_version, modulus, exponent, ..] = fields.as_slice() else {
        return Err("the RSA key structure has too few fields".to_string());
    };
    if modulus.tag() != Tag::Integer || exponent.tag() != Tag::Integer {
        return Err("the RSA modulus or exponent is not an INTEGER".to_string());
    }
    Ok(PublicKeyMaterial::Rsa {
        modulus: strip_leading_zeros(modulus.data).to_vec(),
        exponent: strip_leading_zeros(exponent.data).to_vec(),
    })
}

/// SEC1 / RFC 5915: SEQUENCE { version, privateKey OCTET STRING,
/// [0] parameters OPTIONAL, [1] publicKey BIT STRING OPTIONAL }. Without the
/// optional public key it would take curve arithmetic to recover it.
fn sec1_public_key(der: &[u8]) -> Result<Option<PublicKeyMaterial>, String> {
    let fields = sequence(der)?;
    let [_version, private_key, optional @ ..] = fields.as_slice() else {
        return Err("the EC key structure has too few fields".to_string());
    };
    if private_key.tag() != Tag::OctetString {
        return Err("the EC private key is not an OCTET STRING".to_string());
    }
    let Some(public_key) = optional
        .iter()
        .find(|field| field.class() == Class::ContextSpecific && field.tag() == Tag(1))
    else {
        return Ok(None);
    };
    // [1] is EXPLICIT here: it wraps a complete BIT STRING.
    let (_, bit_string) = Any::from_der(public_key.data).map_err(|e| e.to_string())?;
    if bit_string.tag() != Tag::BitString {
        return Err("the EC public key is not a BIT STRING".to_string());
    }
    bit_string_content(bit_string.data).map(|point| Some(PublicKeyMaterial::EcPoint(point.to_vec())))
}

fn bit_string_content(data: &[u8]) -> Result<&[u8], String> {
    match data.split_first() {
        Some((0, content)) => Ok(content),
        _ => Err("the public key BIT STRING is empty or not byte-aligned".to_string()),
    }
}

fn sequence(der: &[u8]) -> Result<Vec<Any<'_>>, String> {
    let (_, outer) = Any::from_der(der).map_err(|e| e.to_string())?;
    sequence_of(&outer)
}

fn sequence_of<'a>(any: &Any<'a>) -> Result<Vec<Any<'a>>, String> {
    if any.tag() != Tag::Sequence {
        return Err(format!("expected a SEQUENCE, found {}", any.tag()));
    }
    let mut rest = any.data;
    let mut fields = Vec::new();
    while !rest.is_empty() {
        let (remaining, field) = Any::from_der(rest).map_err(|e| e.to_string())?;
        fields.push(field);
        rest = remaining;
    }
    Ok(fields)
}

/// DER INTEGERs carry a leading zero when the top bit is set; other encoders
/// (and x509-parser's RSA view) may or may not keep it.
fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::fixtures::*;
    use x509_parser::pem::parse_x509_pem;

    fn certificate_key(pem: &str) -> PublicKeyMaterial {
        let (_, block) = parse_x509_pem(pem.as_bytes()).expect("fixture is PEM");
        let cert = block.parse_x509().expect("fixture is X.509");
        public_key_of_certificate(cert.public_key())
    }

    fn private_key(pem: &str) -> PublicKeyMaterial {
        public_key_of_private_key_pem(pem.as_bytes())
            .expect("fixture key parses")
            .expect("fixture key has a derivable public key")
    }

    #[test]
    fn pkcs1_rsa_key_matches_its_certificate() {
        assert!(private_key(RSA_PKCS1_KEY).matches(&certificate_key(RSA_CERT)));
    }

    #[test]
    fn pkcs8_rsa_key_matches_its_certificate() {
        assert!(private_key(RSA_PKCS8_KEY).matches(&certificate_key(RSA_CERT)));
    }

    #[test]
    fn sec1_ec_key_matches_its_certificate() {
        assert!(private_key(EC_SEC1_KEY).matches(&certificate_key(EC_CERT)));
    }

    #[test]
    fn ed25519_key_matches_its_certificate() {
        assert!(private_key(ED25519_KEY).matches(&certificate_key(ED25519_CERT)));
    }

    #[test]
    fn rsa_key_of_another_pair_does_not_match() {
        assert!(!private_key(OTHER_RSA_PKCS1_KEY).matches(&certificate_key(RSA_CERT)));
    }

    #[test]
    fn key_of_another_algorithm_does_not_match() {
        assert!(!private_key(RSA_PKCS1_KEY).matches(&certificate_key(EC_CERT)));
        assert!(!private_key(EC_SEC1_KEY).matches(&certificate_key(ED25519_CERT)));
    }

    #[test]
    fn compressed_and_uncompressed_forms_of_one_point_match() {
        let uncompressed = PublicKeyMaterial::EcPoint(vec![0x04, 1, 2, 3, 4, 5, 7]);
        let compressed_odd = PublicKeyMaterial::EcPoint(vec![0x03, 1, 2, 3]);
        let compressed_even = PublicKeyMaterial::EcPoint(vec![0x02, 1, 2, 3]);
        assert!(uncompressed.matches(&compressed_odd));
        assert!(compressed_odd.matches(&uncompressed));
        assert!(!uncompressed.matches(&compressed_even));
    }

    #[test]
    fn encrypted_pkcs8_key_is_reported_as_encrypted() {
        assert_eq!(
            public_key_of_private_key_pem(EC_ENCRYPTED_KEY.as_bytes()),
            Err(PrivateKeyProblem::Encrypted)
        );
    }

    #[test]
    fn legacy_encrypted_pem_key_is_reported_as_encrypted() {
        let legacy = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF\n\nAAAA\n-----END RSA PRIVATE KEY-----\n";
        assert_eq!(
            public_key_of_private_key_pem(legacy.as_bytes()),
            Err(PrivateKeyProblem::Encrypted)
        );
    }

    #[test]
    fn pem_without_a_key_block_lists_what_it_found() {
        assert_eq!(
            public_key_of_private_key_pem(RSA_CERT.as_bytes()),
            Err(PrivateKeyProblem::Missing {
                labels: vec!["CERTIFICATE".to_string()]
            })
        );
    }

    #[test]
    fn key_block_with_junk_content_is_malformed() {
        let junk = "-----BEGIN PRIVATE KEY-----\naGVsbG8gd29ybGQ=\n-----END PRIVATE KEY-----\n";
        let result = public_key_of_private_key_pem(junk.as_bytes());
        assert!(
            matches!(&result, Err(PrivateKeyProblem::Malformed { label, .. }) if label == "PRIVATE KEY"),
            "{result:?}"
        );
    }
}
