//! Checking a Secret a Gateway listener names in `certificateRefs`.
//!
//! The messages end up in the listener's `ResolvedRefs` condition, where the
//! Secret's owner reads them, so each one names the Secret and the field and
//! says what was expected.

use k8s_openapi::api::core::v1::Secret;
use x509_parser::pem::Pem;

use super::keys::{PrivateKeyProblem, PublicKeyMaterial, public_key_of_certificate, public_key_of_private_key_pem};
use super::{CERTIFICATE_LABEL, x509_error_text};

const TLS_SECRET_TYPE: &str = "kubernetes.io/tls";
/// The API server defaults an absent type to this.
const DEFAULT_SECRET_TYPE: &str = "Opaque";
const CERT_FIELD: &str = "tls.crt";
const KEY_FIELD: &str = "tls.key";

/// Accepts a Secret Kong can serve as a listener certificate: type
/// `kubernetes.io/tls`, a parseable certificate chain in `tls.crt` and an
/// unencrypted private key in `tls.key` that belongs to the first certificate.
///
/// Expired certificates are accepted on purpose: Kong still serves them, and
/// replacing them is the owner's decision.
pub fn validate_tls_secret(secret: &Secret) -> Result<(), String> {
    let id = secret_id(secret);
    let secret_type = secret.type_.as_deref().unwrap_or(DEFAULT_SECRET_TYPE);
    if secret_type != TLS_SECRET_TYPE {
        return Err(format!(
            "Secret {id} has type {secret_type:?}; a listener certificate must be of type {TLS_SECRET_TYPE}"
        ));
    }
    let cert = field(secret, CERT_FIELD, &id)?;
    let key = field(secret, KEY_FIELD, &id)?;
    let certificate_key = leaf_public_key(cert, &id)?;
    let private_key = public_key_of_private_key_pem(key).map_err(|problem| private_key_message(problem, &id))?;
    // A key whose public half cannot be derived here (SEC1 without the
    // optional public key, exotic algorithms) is given the benefit of the
    // doubt; Kong reports a real mismatch when it loads the pair.
    if let Some(private_key) = private_key
        && !private_key.matches(&certificate_key)
    {
        return Err(format!(
            "the private key in {KEY_FIELD} does not match the certificate in {CERT_FIELD} of Secret {id}; \
             {CERT_FIELD} must start with the certificate issued for that key"
        ));
    }
    Ok(())
}

fn secret_id(secret: &Secret) -> String {
    let name = secret.metadata.name.as_deref().unwrap_or("<unnamed>");
    match secret.metadata.namespace.as_deref() {
        Some(namespace) => format!("{namespace}/{name}"),
        None => name.to_string(),
    }
}

/// Reads `data`, falling back to `stringData`, which only exists on objects
/// that have not been through the API server (fixtures, dry runs).
fn field<'a>(secret: &'a Secret, key: &str, id: &str) -> Result<&'a [u8], String> {
    let value = secret
        .data
        .as_ref()
        .and_then(|data| data.get(key))
        .map(|bytes| bytes.0.as_slice())
        .or_else(|| {
            secret
                .string_data
                .as_ref()
                .and_then(|data| data.get(key))
                .map(String::as_bytes)
        })
        .ok_or_else(|| format!("Secret {id} has no {key}"))?;
    if value.iter().all(u8::is_ascii_whitespace) {
        return Err(format!("Secret {id} has an empty {key}"));
    }
    Ok(value)
}

/// Parses every certificate of the chain (Kong rejects the whole Secret if
/// any is broken) and returns the public key of the first, the one the
/// private key must belong to.
fn leaf_public_key(pem_text: &[u8], id: &str) -> Result<PublicKeyMaterial, String> {
    let mut leaf = None;
    let mut position = 0;
    let mut other_labels = Vec::new();
    for block in Pem::iter_from_buffer(pem_text) {
        let block = block.map_err(|e| format!("{CERT_FIELD} of Secret {id} is not valid PEM: {e}"))?;
        if block.label != CERTIFICATE_LABEL {
            other_labels.push(block.label);
            continue;
        }
        position += 1;
        let cert = block.parse_x509().map_err(|e| {
            let which = if position == 1 {
                String::new()
            } else {
                format!(" (certificate {position} of the chain)")
            };
            format!(
                "{CERT_FIELD} of Secret {id} does not parse as X.509{which}: {}",
                x509_error_text(e)
            )
        })?;
        if leaf.is_none() {
            leaf = Some(public_key_of_certificate(cert.public_key()));
        }
    }
    leaf.ok_or_else(|| {
        let hint = if other_labels.iter().any(|label| label.contains("PRIVATE KEY")) {
            format!(" It holds a private key instead; are {CERT_FIELD} and {KEY_FIELD} swapped?")
        } else {
            String::new()
        };
        format!("{CERT_FIELD} of Secret {id} holds no PEM certificate (a -----BEGIN CERTIFICATE----- block).{hint}")
    })
}

fn private_key_message(problem: PrivateKeyProblem, id: &str) -> String {
    match problem {
        PrivateKeyProblem::Missing { labels } => {
            let hint = if labels.iter().any(|label| label == CERTIFICATE_LABEL) {
                format!(" It holds a certificate instead; are {CERT_FIELD} and {KEY_FIELD} swapped?")
            } else {
                String::new()
            };
            format!(
                "{KEY_FIELD} of Secret {id} holds no PEM private key (a PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block).{hint}"
            )
        }
        PrivateKeyProblem::Encrypted => format!(
            "{KEY_FIELD} of Secret {id} holds an encrypted private key; Kong needs it unencrypted \
             (decrypt it, e.g. with `openssl pkey -in encrypted.key -out tls.key`)"
        ),
        PrivateKeyProblem::InvalidPem(reason) => {
            format!("{KEY_FIELD} of Secret {id} is not valid PEM: {reason}")
        }
        PrivateKeyProblem::Malformed { label, reason } => {
            format!("the {label} block in {KEY_FIELD} of Secret {id} does not parse: {reason}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::fixtures::*;
    use crate::pki::generate_self_signed_pem;
    use k8s_openapi::ByteString;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use rcgen::{CertificateParams, KeyPair, date_time_ymd};

    fn secret(type_: Option<&str>, fields: &[(&str, &str)]) -> Secret {
        Secret {
            metadata: ObjectMeta {
                namespace: Some("shop".to_string()),
                name: Some("www-cert".to_string()),
                ..ObjectMeta::default()
            },
            type_: type_.map(str::to_string),
            data: Some(
                fields
                    .iter()
                    .map(|(key, value)| (key.to_string(), ByteString(value.as_bytes().to_vec())))
                    .collect(),
            ),
            ..Secret::default()
        }
    }

    fn tls(cert: &str, key: &str) -> Secret {
        secret(Some("kubernetes.io/tls"), &[("tls.crt", cert), ("tls.key", key)])
    }

    fn pair() -> (String, String) {
        generate_self_signed_pem("www.example.com").expect("pair generates")
    }

    fn rejection(secret: &Secret) -> String {
        validate_tls_secret(secret).expect_err("the Secret must be rejected")
    }

    #[test]
    fn valid_tls_secret_is_accepted() {
        let (cert, key) = pair();
        assert_eq!(validate_tls_secret(&tls(&cert, &key)), Ok(()));
    }

    #[test]
    fn tls_secret_given_as_string_data_is_accepted() {
        let (cert, key) = pair();
        let secret = Secret {
            type_: Some("kubernetes.io/tls".to_string()),
            string_data: Some([("tls.crt".to_string(), cert), ("tls.key".to_string(), key)].into()),
            ..Secret::default()
        };
        assert_eq!(validate_tls_secret(&secret), Ok(()));
    }

    #[test]
    fn keys_written_by_openssl_in_every_unencrypted_format_are_accepted() {
        for (cert, key) in [
            (RSA_CERT, RSA_PKCS1_KEY),
            (RSA_CERT, RSA_PKCS8_KEY),
            (EC_CERT, EC_SEC1_KEY),
        ] {
            assert_eq!(validate_tls_secret(&tls(cert, key)), Ok(()), "{key}");
        }
    }

    #[test]
    fn certificate_chain_is_accepted_when_the_key_matches_the_first_certificate() {
        let (cert, key) = pair();
        let chain = format!("{cert}{RSA_CERT}");
        assert_eq!(validate_tls_secret(&tls(&chain, &key)), Ok(()));
        let reversed = format!("{RSA_CERT}{cert}");
        assert!(validate_tls_secret(&tls(&reversed, &key)).is_err());
    }

    #[test]
    fn expired_certificate_is_accepted() {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(vec!["old.example.com".to_string()]).expect("params");
        params.not_before = date_time_ymd(2020, 1, 1);
        params.not_after = date_time_ymd(2020, 2, 1);
        let cert = params.self_signed(&key).expect("self-signed");
        assert_eq!(validate_tls_secret(&tls(&cert.pem(), &key.serialize_pem())), Ok(()));
    }

    #[test]
    fn secret_of_type_opaque_is_rejected_as_listener_certificate() {
        let (cert, key) = pair();
        let opaque = secret(Some("Opaque"), &[("tls.crt", &cert), ("tls.key", &key)]);
        assert_eq!(
            rejection(&opaque),
            "Secret shop/www-cert has type \"Opaque\"; a listener certificate must be of type kubernetes.io/tls"
        );
    }

    #[test]
    fn secret_without_type_is_rejected_as_opaque() {
        let (cert, key) = pair();
        let untyped = secret(None, &[("tls.crt", &cert), ("tls.key", &key)]);
        assert!(rejection(&untyped).contains("has type \"Opaque\""));
    }

    #[test]
    fn secret_without_tls_crt_is_rejected() {
        let (_, key) = pair();
        let secret = secret(Some("kubernetes.io/tls"), &[("tls.key", &key)]);
        assert_eq!(rejection(&secret), "Secret shop/www-cert has no tls.crt");
    }

    #[test]
    fn secret_without_tls_key_is_rejected() {
        let (cert, _) = pair();
        let secret = secret(Some("kubernetes.io/tls"), &[("tls.crt", &cert)]);
        assert_eq!(rejection(&secret), "Secret shop/www-cert has no tls.key");
    }

    #[test]
    fn secret_with_empty_tls_crt_is_rejected() {
        let (_, key) = pair();
        assert_eq!(rejection(&tls("\n", &key)), "Secret shop/www-cert has an empty tls.crt");
    }

    #[test]
    fn garbage_pem_is_rejected() {
        let (_, key) = pair();
        assert_eq!(
            rejection(&tls("this is not a certificate", &key)),
            "tls.crt of Secret shop/www-cert holds no PEM certificate (a -----BEGIN CERTIFICATE----- block)."
        );
    }

    #[test]
    fn broken_base64_in_tls_crt_is_rejected() {
        let (_, key) = pair();
        let broken = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        assert_eq!(
            rejection(&tls(broken, &key)),
            "tls.crt of Secret shop/www-cert is not valid PEM: base64 decode error"
        );
    }

    #[test]
    fn certificate_block_that_is_not_x509_is_rejected() {
        let (_, key) = pair();
        let not_x509 = "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n";
        let message = rejection(&tls(not_x509, &key));
        assert!(
            message.starts_with("tls.crt of Secret shop/www-cert does not parse as X.509: "),
            "{message}"
        );
    }

    #[test]
    fn broken_second_certificate_of_a_chain_is_rejected_with_its_position() {
        let (cert, key) = pair();
        let chain = format!("{cert}-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n");
        let message = rejection(&tls(&chain, &key));
        assert!(
            message.contains("does not parse as X.509 (certificate 2 of the chain)"),
            "{message}"
        );
    }

    #[test]
    fn swapped_certificate_and_key_are_rejected_with_a_hint() {
        let (cert, key) = pair();
        let message = rejection(&tls(&key, &cert));
        assert!(message.starts_with("tls.crt of Secret shop/www-cert holds no PEM certificate"));
        assert!(message.ends_with("are tls.crt and tls.key swapped?"), "{message}");
    }

    #[test]
    fn tls_key_without_a_private_key_is_rejected() {
        let (cert, _) = pair();
        assert_eq!(
            rejection(&tls(&cert, "nothing to see")),
            "tls.key of Secret shop/www-cert holds no PEM private key (a PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block)."
        );
    }

    #[test]
    fn encrypted_private_key_is_rejected() {
        let message = rejection(&tls(EC_CERT, EC_ENCRYPTED_KEY));
        assert!(
            message.starts_with(
                "tls.key of Secret shop/www-cert holds an encrypted private key; Kong needs it unencrypted"
            ),
            "{message}"
        );
    }

    #[test]
    fn private_key_block_that_does_not_parse_is_rejected() {
        let (cert, _) = pair();
        let junk = "-----BEGIN EC PRIVATE KEY-----\naGVsbG8gd29ybGQ=\n-----END EC PRIVATE KEY-----\n";
        let message = rejection(&tls(&cert, junk));
        assert!(
            message.starts_with("the EC PRIVATE KEY block in tls.key of Secret shop/www-cert does not parse: "),
            "{message}"
        );
    }

    #[test]
    fn private_key_of_another_certificate_is_rejected() {
        let (cert, _) = pair();
        let (_, other_key) = pair();
        let expected = "the private key in tls.key does not match the certificate in tls.crt of Secret shop/www-cert; \
                        tls.crt must start with the certificate issued for that key";
        assert_eq!(rejection(&tls(&cert, &other_key)), expected);
        assert_eq!(rejection(&tls(RSA_CERT, OTHER_RSA_PKCS1_KEY)), expected);
        assert_eq!(rejection(&tls(EC_CERT, RSA_PKCS8_KEY)), expected);
    }
}
