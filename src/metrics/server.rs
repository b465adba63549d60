//! The HTTP server of `/metrics`, `/healthz` and `/readyz` (HTTP/1.1, plain text).
//!
//! It runs as its own tasks, one per connection, and shares nothing with the controller but
//! atomics and the metrics' own short locks, so a slow or stuck scraper never holds up a
//! reconcile. Clients that do not send their request headers in time are dropped.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tracing::{debug, warn};

use super::Metrics;
use super::health::Health;

/// OpenMetrics text, as Prometheus negotiates it.
pub const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const TEXT_CONTENT_TYPE: &str = "text/plain; charset=utf-8";
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// What the server answers from.
pub struct Endpoints {
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
}

/// An answer: status, content type, body.
#[derive(Debug, PartialEq, Eq)]
pub struct Answer {
    pub status: StatusCode,
    pub content_type: &'static str,
    pub body: String,
}

fn text(status: StatusCode, body: impl Into<String>) -> Answer {
    Answer {
        status,
        content_type: TEXT_CONTENT_TYPE,
        body: body.into(),
    }
}

/// The answer to `method path`.
pub fn answer(endpoints: &Endpoints, method: &Method, path: &str) -> Answer {
    if method != Method::GET && method != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
    }
    match path {
        "/metrics" => match endpoints.metrics.encode() {
            Ok(body) => Answer {
                status: StatusCode::OK,
                content_type: OPENMETRICS_CONTENT_TYPE,
                body,
            },
            Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "could not encode the metrics\n"),
        },
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" => {
            let readiness = endpoints.health.readiness();
            let status = if readiness.is_ready() {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            text(status, readiness.message())
        }
        _ => text(StatusCode::NOT_FOUND, "not found: try /metrics, /healthz or /readyz\n"),
    }
}

fn respond(endpoints: &Endpoints, request: &Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let Answer {
        status,
        content_type,
        body,
    } = answer(endpoints, request.method(), request.uri().path());
    let body = if request.method() == Method::HEAD {
        Bytes::new()
    } else {
        Bytes::from(body)
    };
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, header::HeaderValue::from_static(content_type));
    response
}

/// Binds the listen address; fails at start-up rather than running without health checks.
pub async fn bind(address: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(address).await
}

/// Serves connections until the task is dropped.
pub async fn serve(listener: TcpListener, endpoints: Arc<Endpoints>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: wait a little rather than spin.
                warn!(%error, "metrics server could not accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let endpoints = endpoints.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let response = respond(&endpoints, &request);
                std::future::ready(Ok::<_, Infallible>(response))
            });
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(error) = connection.await {
                debug!(%error, %peer, "metrics connection ended with an error");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leader::Leadership;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn endpoints(leadership: Leadership) -> Endpoints {
        Endpoints {
            metrics: Arc::new(Metrics::with_trace_source(|| None)),
            health: Arc::new(Health::new(leadership, Duration::from_secs(15))),
        }
    }

    #[test]
    fn each_path_answers_its_question() {
        let endpoints = endpoints(Leadership::always());
        let metrics = answer(&endpoints, &Method::GET, "/metrics");
        assert_eq!(metrics.status, StatusCode::OK);
        assert_eq!(metrics.content_type, OPENMETRICS_CONTENT_TYPE);
        assert!(metrics.body.ends_with("# EOF\n"), "{}", metrics.body);
        assert_eq!(answer(&endpoints, &Method::GET, "/healthz").status, StatusCode::OK);
        let not_synced = answer(&endpoints, &Method::GET, "/readyz");
        assert_eq!(not_synced.status, StatusCode::SERVICE_UNAVAILABLE);
        endpoints.health.set_caches_synced();
        assert_eq!(answer(&endpoints, &Method::GET, "/readyz").status, StatusCode::OK);
        assert_eq!(answer(&endpoints, &Method::GET, "/other").status, StatusCode::NOT_FOUND);
        assert_eq!(
            answer(&endpoints, &Method::POST, "/metrics").status,
            StatusCode::METHOD_NOT_ALLOWED
        );
    }

    #[test]
    fn a_standby_that_never_reached_the_lease_is_not_ready() {
        let endpoints = endpoints(Leadership::standby());
        endpoints.health.set_caches_synced();
        let readyz = answer(&endpoints, &Method::GET, "/readyz");
        assert_eq!(readyz.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(readyz.body.contains("Lease"), "{}", readyz.body);
    }

    async fn get(address: SocketAddr, path: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(address).await.expect("connect");
        let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut response = String::new();
        stream.read_to_string(&mut response).await.expect("read");
        response
    }

    #[tokio::test]
    async fn the_server_answers_over_http_on_loopback() {
        let listener = bind("127.0.0.1:0".parse().expect("address")).await.expect("bind");
        let address = listener.local_addr().expect("address");
        let endpoints = Arc::new(endpoints(Leadership::always()));
        endpoints.health.set_caches_synced();
        let server = tokio::spawn(serve(listener, endpoints));
        let metrics = get(address, "/metrics").await;
        assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
        assert!(
            metrics.contains("content-type: application/openmetrics-text"),
            "{metrics}"
        );
        assert!(metrics.contains("# TYPE kongress_reconciles counter"), "{metrics}");
        let ready = get(address, "/readyz").await;
        assert!(
            ready.starts_with("HTTP/1.1 200") && ready.ends_with("ready: leader\n"),
            "{ready}"
        );
        server.abort();
    }

    #[tokio::test]
    async fn a_silent_client_does_not_stop_others_from_being_served() {
        let listener = bind("127.0.0.1:0".parse().expect("address")).await.expect("bind");
        let address = listener.local_addr().expect("address");
        let server = tokio::spawn(serve(listener, Arc::new(endpoints(Leadership::always()))));
        let _silent = tokio::net::TcpStream::connect(address).await.expect("connect");
        let healthz = tokio::time::timeout(Duration::from_secs(5), get(address, "/healthz"))
            .await
            .expect("answered while another client is silent");
        assert!(healthz.starts_with("HTTP/1.1 200"), "{healthz}");
        server.abort();
    }
}
