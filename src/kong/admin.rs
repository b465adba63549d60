//! The Kong admin API client: one HTTP/1.1 connection per pod over mutual TLS.
//!
//! kongress dials the pod IP and verifies the server certificate against its own CA under
//! the admin Service's name (`{admin-svc}.{namespace}.svc`, one of the certificate's DNS
//! names), presenting a client certificate from the same CA. The connection is kept and
//! reused while it stays healthy; any failure drops it, and the next request dials again.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONTENT_TYPE, HOST, RETRY_AFTER};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;

use super::errors::{Rejection, parse_rejection};
use super::hash::PreparedConfig;

/// Largest answer kongress reads: a 201 echoes every loaded entity, so it is about as
/// large as the config itself.
const MAX_ANSWER_BYTES: usize = 256 * 1024 * 1024;
/// Longest piece of an unexpected answer kept in an error message.
const MAX_ERROR_TEXT: usize = 300;

/// Where a pod's admin API listens and the name its certificate is checked against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminTarget {
    pub address: SocketAddr,
    pub server_name: String,
}

/// Limits on each request.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// TCP connect and TLS handshake, each.
    pub connect: Duration,
    /// `GET /status`, from sending to the whole answer.
    pub status: Duration,
    /// `POST /config`, from sending to the whole answer; Kong answers once it has loaded
    /// the config, which takes seconds for a large one.
    pub config: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(3),
            status: Duration::from_secs(5),
            config: Duration::from_secs(60),
        }
    }
}

/// Why a request got no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("invalid admin server name {0:?}")]
    ServerName(String),
    #[error("connecting to {address}: {source}")]
    Connect {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("TLS handshake with {address}: {source}")]
    Tls {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("{what} to {address} timed out after {after:?}")]
    Timeout {
        what: &'static str,
        address: SocketAddr,
        after: Duration,
    },
    #[error("HTTP exchange with {address}: {source}")]
    Http { address: SocketAddr, source: hyper::Error },
    #[error("reading the answer of {address}: {reason}")]
    Body { address: SocketAddr, reason: String },
    #[error("{address} answered {status}: {text}")]
    Status {
        address: SocketAddr,
        status: StatusCode,
        text: String,
        retry_after: Option<Duration>,
    },
    #[error("{address} answered /status without a readable JSON object: {text}")]
    Garbage { address: SocketAddr, text: String },
}

impl AdminError {
    /// The delay Kong asked for (429 `Retry-After`).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// How Kong took a config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PostOutcome {
    /// 201: loaded.
    Accepted,
    /// 304: Kong already runs a config with this hash.
    Unchanged,
    /// 400: refused, with Kong's reasons.
    Rejected(Rejection),
}

/// Problems with the certificates the client is built from.
#[derive(Debug, thiserror::Error)]
pub enum ClientTlsError {
    #[error("reading PEM: {0}")]
    Pem(#[from] rustls::pki_types::pem::Error),
    #[error("TLS setup: {0}")]
    Tls(#[from] rustls::Error),
    #[error("the CA PEM holds no certificate")]
    NoCa,
}

/// The TLS settings of the admin client: trust only `ca_pem`, present `cert_pem`/`key_pem`.
pub struct ClientTls;

impl ClientTls {
    /// A rustls client config with the ring provider (the one kube uses too).
    pub fn config(ca_pem: &str, cert_pem: &str, key_pem: &str) -> Result<Arc<ClientConfig>, ClientTlsError> {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots.add(cert?)?;
        }
        if roots.is_empty() {
            return Err(ClientTlsError::NoCa);
        }
        let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes()).collect::<Result<Vec<_>, _>>()?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())?;
        let config = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)?;
        Ok(Arc::new(config))
    }
}

/// The admin API of one pod, with its kept connection.
pub struct PodAdmin {
    target: AdminTarget,
    tls: Arc<ClientConfig>,
    timeouts: Timeouts,
    connection: Option<SendRequest<Full<Bytes>>>,
}

impl PodAdmin {
    pub fn new(target: AdminTarget, tls: Arc<ClientConfig>, timeouts: Timeouts) -> Self {
        Self {
            target,
            tls,
            timeouts,
            connection: None,
        }
    }

    /// Uses `tls` from the next connection on (a renewed client certificate).
    pub fn set_tls(&mut self, tls: Arc<ClientConfig>) {
        if !Arc::ptr_eq(&self.tls, &tls) {
            self.tls = tls;
            self.connection = None;
        }
    }

    /// `GET /status`: the running configuration hash, `None` when the answer has none.
    pub async fn configuration_hash(&mut self) -> Result<Option<String>, AdminError> {
        let address = self.target.address;
        let request = self.request(Method::GET, "/status", Bytes::new());
        let (status, _, body) = self.exchange(request, "GET /status", self.timeouts.status).await?;
        if status != StatusCode::OK {
            return Err(status_error(address, status, &body, None));
        }
        let value: serde_json::Value = serde_json::from_slice(&body).map_err(|_| AdminError::Garbage {
            address,
            text: excerpt(&body),
        })?;
        if !value.is_object() {
            return Err(AdminError::Garbage {
                address,
                text: excerpt(&body),
            });
        }
        Ok(value
            .get("configuration_hash")
            .and_then(serde_json::Value::as_str)
            .map(str::to_string))
    }

    /// `POST /config?check_hash=1&flatten_errors=1` with the prepared body.
    pub async fn post_config(&mut self, config: &PreparedConfig) -> Result<PostOutcome, AdminError> {
        let address = self.target.address;
        let request = self.request(
            Method::POST,
            "/config?check_hash=1&flatten_errors=1",
            config.body.clone(),
        );
        let (status, retry_after, body) = self.exchange(request, "POST /config", self.timeouts.config).await?;
        match status {
            StatusCode::CREATED | StatusCode::OK => Ok(PostOutcome::Accepted),
            StatusCode::NOT_MODIFIED => Ok(PostOutcome::Unchanged),
            StatusCode::BAD_REQUEST => Ok(PostOutcome::Rejected(parse_rejection(&body))),
            other => Err(status_error(address, other, &body, retry_after)),
        }
    }

    fn request(&self, method: Method, path: &str, body: Bytes) -> Result<Request<Full<Bytes>>, AdminError> {
        let mut builder = Request::builder().method(method).uri(path).header(
            HOST,
            format!("{}:{}", self.target.server_name, self.target.address.port()),
        );
        if !body.is_empty() {
            builder = builder.header(CONTENT_TYPE, "application/json");
        }
        builder.body(Full::new(body)).map_err(|error| AdminError::Body {
            address: self.target.address,
            reason: format!("building the request: {error}"),
        })
    }

    /// Sends one request on the kept connection (dialling when there is none) and reads
    /// the whole answer, all within `limit`. Any failure drops the connection.
    async fn exchange(
        &mut self,
        request: Result<Request<Full<Bytes>>, AdminError>,
        what: &'static str,
        limit: Duration,
    ) -> Result<(StatusCode, Option<Duration>, Bytes), AdminError> {
        let request = request?;
        let address = self.target.address;
        let connection = self.connection.take();
        let exchange = async {
            let mut sender = match connection {
                Some(sender) if !sender.is_closed() => sender,
                _ => self.connect().await?,
            };
            sender
                .ready()
                .await
                .map_err(|source| AdminError::Http { address, source })?;
            let response = sender
                .send_request(request)
                .await
                .map_err(|source| AdminError::Http { address, source })?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|error| AdminError::Body {
                    address,
                    reason: error.to_string(),
                })?
                .to_bytes();
            let retry_after = parts
                .headers
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            Ok::<_, AdminError>((sender, parts.status, retry_after, body))
        };
        let (sender, status, retry_after, body) =
            timeout(limit, exchange).await.map_err(|_| AdminError::Timeout {
                what,
                address,
                after: limit,
            })??;
        self.connection = Some(sender);
        Ok((status, retry_after, body))
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, AdminError> {
        let address = self.target.address;
        let limit = self.timeouts.connect;
        let name = ServerName::try_from(self.target.server_name.clone())
            .map_err(|_| AdminError::ServerName(self.target.server_name.clone()))?;
        let tcp = timeout(limit, TcpStream::connect(address))
            .await
            .map_err(|_| AdminError::Timeout {
                what: "TCP connect",
                address,
                after: limit,
            })?
            .map_err(|source| AdminError::Connect { address, source })?;
        // Requests are written whole; Nagle would only delay the last segment.
        let _ = tcp.set_nodelay(true);
        let tls = timeout(limit, TlsConnector::from(self.tls.clone()).connect(name, tcp))
            .await
            .map_err(|_| AdminError::Timeout {
                what: "TLS handshake",
                address,
                after: limit,
            })?
            .map_err(|source| AdminError::Tls { address, source })?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|source| AdminError::Http { address, source })?;
        // Drives the connection until the sender is dropped or the peer closes it.
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, %address, "admin connection ended");
            }
        });
        Ok(sender)
    }
}

fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut end = text.len().min(MAX_ERROR_TEXT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].trim().to_string()
}

fn status_error(address: SocketAddr, status: StatusCode, body: &[u8], retry_after: Option<Duration>) -> AdminError {
    let text = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(serde_json::Value::as_str).map(str::to_string))
        .unwrap_or_else(|| excerpt(body));
    AdminError::Status {
        address,
        status,
        text,
        retry_after,
    }
}

#[cfg(test)]
mod tests;
