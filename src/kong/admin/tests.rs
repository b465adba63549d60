//! The admin client against a small mutual-TLS HTTP server on 127.0.0.1.

use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::Utc;
use http_body_util::BodyExt;
use hyper::Response;
use hyper::body::Incoming;
use hyper::service::service_fn;
use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::*;
use crate::pki::{CertificateAuthority, LEAF_VALIDITY};
use crate::translate::KongConfig;

const SERVER_NAME: &str = "kongress-test-admin.ns.svc";

/// What the test server answers.
#[derive(Clone, Copy)]
enum Answer {
    Kong,
    Status(u16),
    Hang,
    Garbage,
}

struct Server {
    address: SocketAddr,
    connections: Arc<AtomicUsize>,
    /// The `config` text of the last POST /config.
    received: Arc<std::sync::Mutex<Option<String>>>,
}

fn ring() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

async fn server(ca: &CertificateAuthority, answer: Answer) -> Server {
    let issued = ca
        .issue_server(&[SERVER_NAME.to_string()], &[], Utc::now(), LEAF_VALIDITY)
        .expect("server cert");
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca.cert_pem().as_bytes()) {
        roots.add(cert.expect("CA PEM")).expect("CA cert");
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), ring())
        .build()
        .expect("verifier");
    let chain = CertificateDer::pem_slice_iter(issued.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .expect("cert PEM");
    let key = PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes()).expect("key PEM");
    let config = ServerConfig::builder_with_provider(ring())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .expect("server config");
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let connections = Arc::new(AtomicUsize::new(0));
    let received = Arc::new(std::sync::Mutex::new(None));
    let (count, record) = (connections.clone(), received.clone());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            let acceptor = acceptor.clone();
            let record = record.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let service = service_fn(move |request: hyper::Request<Incoming>| {
                    let record = record.clone();
                    async move { Ok::<_, hyper::Error>(respond(answer, request, &record).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    Server {
        address,
        connections,
        received,
    }
}

async fn respond(
    answer: Answer,
    request: hyper::Request<Incoming>,
    record: &std::sync::Mutex<Option<String>>,
) -> Response<Full<Bytes>> {
    let reply = |status: u16, body: &str| {
        let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
        *response.status_mut() = StatusCode::from_u16(status).expect("status");
        response
    };
    let is_post = request.method() == Method::POST;
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    match answer {
        Answer::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            reply(200, "{}")
        }
        Answer::Garbage => reply(200, "<html>"),
        Answer::Status(429) => {
            let mut response = reply(429, r#"{"message":"Currently loading previous configuration"}"#);
            response.headers_mut().insert(RETRY_AFTER, "7".parse().expect("header"));
            response
        }
        Answer::Status(400) => reply(
            400,
            r#"{"message":"declarative config is invalid","flattened_errors":[{"entity_type":"route","entity_name":"r","errors":[{"type":"entity","message":"bad"}]}]}"#,
        ),
        Answer::Status(code) => reply(code, r#"{"message":"An unexpected error occurred"}"#),
        Answer::Kong if is_post => {
            let value: serde_json::Value = serde_json::from_slice(&body).expect("JSON body");
            let text = value["config"].as_str().expect("config string").to_string();
            *record.lock().expect("lock") = Some(text);
            reply(201, "{}")
        }
        Answer::Kong => reply(
            200,
            r#"{"configuration_hash":"00000000000000000000000000000000","memory":{}}"#,
        ),
    }
}

fn client_tls(ca: &CertificateAuthority) -> Arc<ClientConfig> {
    let client = ca
        .issue_client("kongress", Utc::now(), LEAF_VALIDITY)
        .expect("client cert");
    ClientTls::config(ca.cert_pem(), &client.cert_pem, &client.key_pem).expect("client TLS")
}

fn quick() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(2),
        status: Duration::from_millis(500),
        config: Duration::from_millis(500),
    }
}

fn admin(server: &Server, tls: Arc<ClientConfig>, name: &str) -> PodAdmin {
    PodAdmin::new(
        AdminTarget {
            address: server.address,
            server_name: name.into(),
        },
        tls,
        quick(),
    )
}

fn ca() -> CertificateAuthority {
    CertificateAuthority::generate("kongress test CA", Utc::now()).expect("CA")
}

fn prepared() -> PreparedConfig {
    PreparedConfig::new(1, Arc::new(KongConfig::empty()), vec![]).expect("serialises")
}

#[tokio::test]
async fn reads_the_hash_and_posts_the_config_text_over_one_mutual_tls_connection() {
    let ca = ca();
    let server = server(&ca, Answer::Kong).await;
    let mut admin = admin(&server, client_tls(&ca), SERVER_NAME);
    assert_eq!(
        admin.configuration_hash().await.expect("status"),
        Some("00000000000000000000000000000000".to_string())
    );
    let config = prepared();
    assert_eq!(admin.post_config(&config).await.expect("post"), PostOutcome::Accepted);
    let text = server.received.lock().expect("lock").clone().expect("received");
    assert_eq!(text, r#"{"_format_version":"3.0"}"#);
    assert_eq!(server.connections.load(Ordering::SeqCst), 1, "the connection is kept");
}

#[tokio::test]
async fn a_server_certificate_for_another_name_is_refused() {
    let ca = ca();
    let server = server(&ca, Answer::Kong).await;
    let mut admin = admin(&server, client_tls(&ca), "other-admin.ns.svc");
    let error = admin.configuration_hash().await.expect_err("wrong name");
    assert!(matches!(error, AdminError::Tls { .. }), "{error}");
}

#[tokio::test]
async fn a_server_of_another_ca_is_refused() {
    let ca = ca();
    let server = server(&ca, Answer::Kong).await;
    let mut admin = admin(&server, client_tls(&self::ca()), SERVER_NAME);
    assert!(admin.configuration_hash().await.is_err());
}

#[tokio::test]
async fn a_hung_pod_times_out_and_the_next_request_dials_again() {
    let ca = ca();
    let server = server(&ca, Answer::Hang).await;
    let mut admin = admin(&server, client_tls(&ca), SERVER_NAME);
    let error = admin.post_config(&prepared()).await.expect_err("hangs");
    assert!(matches!(error, AdminError::Timeout { .. }), "{error}");
    let _ = admin.configuration_hash().await;
    assert_eq!(server.connections.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn server_errors_are_failures_with_kongs_message() {
    let ca = ca();
    let server = server(&ca, Answer::Status(500)).await;
    let mut admin = admin(&server, client_tls(&ca), SERVER_NAME);
    let error = admin.post_config(&prepared()).await.expect_err("500");
    assert!(error.to_string().contains("An unexpected error occurred"), "{error}");
}

#[tokio::test]
async fn busy_kong_asks_for_a_delay() {
    let ca = ca();
    let server = server(&ca, Answer::Status(429)).await;
    let mut admin = admin(&server, client_tls(&ca), SERVER_NAME);
    let error = admin.post_config(&prepared()).await.expect_err("429");
    assert_eq!(error.retry_after(), Some(Duration::from_secs(7)));
}

#[tokio::test]
async fn bad_request_is_a_rejection_with_the_flattened_errors() {
    let ca = ca();
    let server = server(&ca, Answer::Status(400)).await;
    let mut admin = admin(&server, client_tls(&ca), SERVER_NAME);
    let PostOutcome::Rejected(rejection) = admin.post_config(&prepared()).await.expect("answer") else {
        panic!("not a rejection");
    };
    assert_eq!(rejection.entities.len(), 1);
    assert_eq!(rejection.entities[0].messages, ["bad"]);
}

#[tokio::test]
async fn a_status_answer_that_is_not_json_is_garbage() {
    let ca = ca();
    let server = server(&ca, Answer::Garbage).await;
    let mut admin = admin(&server, client_tls(&ca), SERVER_NAME);
    let error = admin.configuration_hash().await.expect_err("garbage");
    assert!(matches!(error, AdminError::Garbage { .. }), "{error}");
}

#[tokio::test]
async fn nothing_listening_is_a_connect_error() {
    let ca = ca();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    drop(listener);
    let mut admin = PodAdmin::new(
        AdminTarget {
            address,
            server_name: SERVER_NAME.into(),
        },
        client_tls(&ca),
        quick(),
    );
    let error = admin.configuration_hash().await.expect_err("refused");
    assert!(matches!(error, AdminError::Connect { .. }), "{error}");
}
