//! A Kong admin API stand-in, following the contract of Kong 3.9 DB-less closely enough
//! that kongress cannot tell it from Kong (see `kongress::kong` for the facts and their
//! sources in Kong's code):
//!
//! - the admin listener speaks TLS with the data plane's server certificate and requires
//!   a client certificate signed by the operator CA;
//! - `GET /status` reports `configuration_hash`: the md5 of the last loaded config text,
//!   32 zeros while the config has no entity (and at start);
//! - `POST /config` takes `{"config": "<text>"}` (JSON) or the text as the raw body
//!   (YAML content types), answers 304 when `check_hash=1` and the hash is unchanged,
//!   400 with `flattened_errors` for what Kong refuses (unparseable expressions checked
//!   with atc-router against Kong's schemas, bad fields, duplicate names, broken
//!   references; see [`validate`]), else 201 and the new hash;
//! - the status listener's `/status/ready` is 200 once a config with entities is loaded.
//!
//! Tests steer it ([`StandIn::set_fault`], [`StandIn::reject`], or a `control.json` in its
//! record folder) to refuse a chosen entity, answer 5xx, hang or close the connection,
//! and read every config it received ([`StandIn::received`], and one file per request
//! in the record folder).
//!
//! Not reproduced: the 201 body (Kong echoes the loaded entities; the stand-in answers
//! `{}`), load time, 429 while a load is running, plugin schemas, most field checks,
//! the hash of a config posted as a JSON table (Kong hashes its own re-encoding), and the
//! proxy itself (nothing is routed).

pub mod validate;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::CONTENT_TYPE;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use md5::{Digest, Md5};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

/// What Kong reports while its config has no entity.
pub const EMPTY_HASH: &str = "00000000000000000000000000000000";

/// A fault a test asks for; it applies to every admin request until cleared.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fault {
    #[default]
    None,
    /// Answer with this status and Kong's generic message.
    Status(u16),
    /// Never answer.
    Hang,
    /// Close the connection without an answer.
    Close,
}

/// The `control.json` a test may put in the record folder.
#[derive(Debug, Default, Deserialize)]
struct Control {
    #[serde(default)]
    fault: Fault,
    /// Entity name → message.
    #[serde(default)]
    reject: BTreeMap<String, String>,
}

/// One `POST /config` the stand-in received.
#[derive(Clone, Debug)]
pub struct Received {
    /// When the request's headers arrived (the config is on the wire).
    pub arrived: Instant,
    /// When the stand-in answered (for 201: the config is loaded).
    pub at: Instant,
    /// The answer's status (201, 304, 400, or the fault's).
    pub status: u16,
    /// md5 of the text, as Kong would store it.
    pub hash: String,
    pub text: String,
}

impl Received {
    /// The config, parsed.
    pub fn config(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }
}

#[derive(Default)]
struct State {
    hash: String,
    fault: Fault,
    reject: BTreeMap<String, String>,
    received: Vec<Received>,
    status_reads: usize,
}

/// Where a stand-in listens and with which certificates.
#[derive(Clone, Debug)]
pub struct StandInConfig {
    /// The pod IP and admin port; must be a loopback address.
    pub admin: SocketAddr,
    /// The pod IP and status port (plain HTTP), if wanted.
    pub status: Option<SocketAddr>,
    pub cert_pem: String,
    pub key_pem: String,
    /// The CA client certificates must be signed by.
    pub client_ca_pem: String,
    /// Writes `NNNN-<status>.json` per `POST /config` and reads `control.json` here.
    pub record_dir: Option<PathBuf>,
    /// The fault it starts with.
    pub fault: Fault,
    /// Entity name → message it refuses from the start.
    pub reject: BTreeMap<String, String>,
}

/// A running stand-in; stops when dropped.
#[derive(Clone)]
pub struct StandIn {
    state: Arc<Mutex<State>>,
    tasks: Arc<Vec<JoinHandle<()>>>,
    pub admin: SocketAddr,
}

impl Drop for StandIn {
    fn drop(&mut self) {
        if Arc::strong_count(&self.tasks) == 1 {
            self.tasks.iter().for_each(JoinHandle::abort);
        }
    }
}

struct Shared {
    state: Arc<Mutex<State>>,
    schemas: validate::Schemas,
    record_dir: Option<PathBuf>,
}

fn ring() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_config(config: &StandInConfig) -> Result<Arc<ServerConfig>> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(config.client_ca_pem.as_bytes()) {
        roots.add(cert.context("client CA PEM")?)?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), ring()).build()?;
    let chain = CertificateDer::pem_slice_iter(config.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .context("server certificate PEM")?;
    let key = PrivateKeyDer::from_pem_slice(config.key_pem.as_bytes()).context("server key PEM")?;
    let server = ServerConfig::builder_with_provider(ring())
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    Ok(Arc::new(server))
}

impl StandIn {
    /// Binds the admin (and status) listener and serves until dropped.
    pub async fn start(config: StandInConfig) -> Result<Self> {
        for address in std::iter::once(config.admin).chain(config.status) {
            if !address.ip().is_loopback() {
                bail!("refusing to listen on {address}: tests use loopback addresses only");
            }
        }
        if let Some(dir) = &config.record_dir {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let acceptor = TlsAcceptor::from(tls_config(&config)?);
        let state = Arc::new(Mutex::new(State {
            hash: EMPTY_HASH.to_string(),
            fault: config.fault,
            reject: config.reject.clone(),
            ..State::default()
        }));
        let shared = Arc::new(Shared {
            state: state.clone(),
            schemas: validate::Schemas::default(),
            record_dir: config.record_dir.clone(),
        });
        let admin_listener = TcpListener::bind(config.admin)
            .await
            .with_context(|| format!("binding the admin listener {}", config.admin))?;
        let mut tasks = vec![tokio::spawn(serve_admin(admin_listener, acceptor, shared.clone()))];
        if let Some(status) = config.status {
            let listener = TcpListener::bind(status)
                .await
                .with_context(|| format!("binding the status listener {status}"))?;
            tasks.push(tokio::spawn(serve_status(listener, shared)));
        }
        Ok(Self {
            state,
            tasks: Arc::new(tasks),
            admin: config.admin,
        })
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut state)
    }

    pub fn set_fault(&self, fault: Fault) {
        self.with_state(|s| s.fault = fault);
    }

    /// Refuses every entity named `name` with `message` (an entity-check error).
    pub fn reject(&self, name: &str, message: &str) {
        self.with_state(|s| s.reject.insert(name.to_string(), message.to_string()));
    }

    pub fn clear_rejections(&self) {
        self.with_state(|s| s.reject.clear());
    }

    /// The hash `/status` reports.
    pub fn hash(&self) -> String {
        self.with_state(|s| s.hash.clone())
    }

    /// Every `POST /config` so far, oldest first.
    pub fn received(&self) -> Vec<Received> {
        self.with_state(|s| s.received.clone())
    }

    /// The last config loaded (answered 201).
    pub fn loaded(&self) -> Option<Received> {
        self.with_state(|s| s.received.iter().rev().find(|r| r.status == 201).cloned())
    }

    pub fn status_reads(&self) -> usize {
        self.with_state(|s| s.status_reads)
    }
}

async fn serve_admin(listener: TcpListener, acceptor: TlsAcceptor, shared: Arc<Shared>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let acceptor = acceptor.clone();
        let shared = shared.clone();
        tokio::spawn(async move {
            // A client without a certificate from the CA fails here, as with Kong's
            // `ssl_verify_client on`.
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let service = service_fn(move |request| {
                let shared = shared.clone();
                async move { admin(request, &shared).await }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}

async fn serve_status(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let shared = shared.clone();
                async move {
                    let hash = lock(&shared).hash.clone();
                    Ok::<_, hyper::Error>(match request.uri().path() {
                        "/status/ready" if hash != EMPTY_HASH => reply(200, json!({"message": "ready"})),
                        "/status/ready" => reply(
                            503,
                            json!({"message": "no configuration available (empty configuration present)"}),
                        ),
                        "/status" => reply(200, status_body(&hash)),
                        _ => reply(404, json!({"message": "Not found"})),
                    })
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        });
    }
}

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, State> {
    shared.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn reply(status: u16, body: Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

fn status_body(hash: &str) -> Value {
    json!({
        "configuration_hash": hash,
        "memory": {"workers_lua_vms": [], "lua_shared_dicts": {}},
        "server": {"connections_accepted": 0, "connections_active": 0, "total_requests": 0},
    })
}

/// Reads `control.json` from the record folder, if there is one, over the in-process settings.
fn apply_control_file(shared: &Shared) {
    let Some(dir) = &shared.record_dir else { return };
    let Ok(text) = std::fs::read_to_string(dir.join("control.json")) else {
        return;
    };
    if let Ok(control) = serde_json::from_str::<Control>(&text) {
        let mut state = lock(shared);
        state.fault = control.fault;
        state.reject = control.reject;
    }
}

/// Why a request is answered with nothing: the connection closes.
#[derive(Debug)]
struct Closed;

impl std::fmt::Display for Closed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("closed by the test")
    }
}

impl std::error::Error for Closed {}

async fn admin(request: Request<Incoming>, shared: &Shared) -> Result<Response<Full<Bytes>>, Closed> {
    let arrived = Instant::now();
    apply_control_file(shared);
    let fault = lock(shared).fault;
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or_default().to_string();
    let content_type = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    match fault {
        Fault::Hang => std::future::pending::<()>().await,
        Fault::Close => return Err(Closed),
        Fault::Status(code) => {
            if method == Method::POST && path == "/config" {
                record(
                    shared,
                    arrived,
                    code,
                    &body_text(&body, &content_type).unwrap_or_default(),
                );
            }
            return Ok(reply(code, json!({"message": "An unexpected error occurred"})));
        }
        Fault::None => {}
    }
    Ok(match (method, path.as_str()) {
        (Method::GET, "/status") => {
            let mut state = lock(shared);
            state.status_reads += 1;
            reply(200, status_body(&state.hash))
        }
        (Method::POST, "/config") => post_config(shared, arrived, &query, &content_type, &body),
        _ => reply(404, json!({"message": "Not found"})),
    })
}

/// The config text of a `POST /config`, as Kong picks it: the `config` parameter of a
/// JSON body, else the raw body. `None` for a body Kong could not read.
fn body_text(body: &[u8], content_type: &str) -> Option<String> {
    if content_type.starts_with("application/json") {
        let value: Value = serde_json::from_slice(body).ok()?;
        if let Some(text) = value.get("config").and_then(Value::as_str) {
            return Some(text.to_string());
        }
        // A config posted as a table: Kong hashes its own re-encoding of it.
        return value.get("_format_version").map(|_| value.to_string());
    }
    String::from_utf8(body.to_vec()).ok()
}

fn post_config(
    shared: &Shared,
    arrived: Instant,
    query: &str,
    content_type: &str,
    body: &[u8],
) -> Response<Full<Bytes>> {
    let accepted = [
        "application/json",
        "application/yaml",
        "text/yaml",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ];
    if !content_type.is_empty() && !accepted.iter().any(|t| content_type.starts_with(t)) {
        return reply(415, json!({"message": "Unsupported Media Type"}));
    }
    let params: BTreeMap<&str, &str> = query.split('&').filter_map(|p| p.split_once('=')).collect();
    let check_hash = params.get("check_hash") == Some(&"1");
    let Some(text) = body_text(body, content_type).filter(|t| !t.is_empty()) else {
        return reply(400, json!({"message": "expected a declarative configuration"}));
    };
    let hash = hex(&Md5::digest(text.as_bytes()));
    if check_hash && lock(shared).hash == hash {
        record(shared, arrived, 304, &text);
        return Response::builder()
            .status(StatusCode::NOT_MODIFIED)
            .body(Full::new(Bytes::new()))
            .unwrap_or_else(|_| reply(304, json!({})));
    }
    let parsed = match serde_json::from_str::<Value>(&text) {
        Ok(value) => value,
        Err(error) => {
            let message = format!("failed parsing declarative configuration: {error}");
            record(shared, arrived, 400, &text);
            return reply(
                400,
                json!({"code": 14, "name": "invalid declarative configuration",
                                      "message": message, "fields": {"error": message}}),
            );
        }
    };
    let forced = lock(shared).reject.clone();
    if let Err(answer) = validate::validate(&parsed, &shared.schemas, &forced) {
        record(shared, arrived, 400, &text);
        return reply(400, answer);
    }
    let stored = if has_entities(&parsed) {
        hash
    } else {
        EMPTY_HASH.to_string()
    };
    lock(shared).hash = stored;
    record(shared, arrived, 201, &text);
    reply(201, json!({}))
}

fn has_entities(config: &Value) -> bool {
    config.as_object().is_some_and(|top| {
        top.iter()
            .any(|(key, value)| !key.starts_with('_') && value.as_array().is_some_and(|a| !a.is_empty()))
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn record(shared: &Shared, arrived: Instant, status: u16, text: &str) {
    let received = Received {
        arrived,
        at: Instant::now(),
        status,
        hash: hex(&Md5::digest(text.as_bytes())),
        text: text.to_string(),
    };
    let number = {
        let mut state = lock(shared);
        state.received.push(received);
        state.received.len()
    };
    if let Some(dir) = &shared.record_dir {
        let path = dir.join(format!("{number:04}-{status}.json"));
        if let Err(error) = std::fs::write(&path, text) {
            tracing::warn!(%error, path = %path.display(), "could not record a config");
        }
    }
}
