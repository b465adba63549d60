//! Jaeger, built by the e2e tooling (`e2e/.bin/jaeger`), as a test's trace backend: started
//! with `e2e/jaeger/config.yaml` on loopback ports of its own (OTLP gRPC and HTTP in, the
//! query API out, spans in memory) and read through its query API (`/api/traces`).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use serde_json::Value;
use tokio::process::{Child, Command};

use crate::{eventually, workspace_dir};

/// A running Jaeger; killed when dropped.
pub struct Jaeger {
    _child: Child,
    pub otlp_grpc: u16,
    pub otlp_http: u16,
    pub query: u16,
    pub log: PathBuf,
}

/// The Jaeger binary built by the e2e tooling.
pub fn jaeger_binary() -> Result<PathBuf> {
    let path = workspace_dir().join("e2e/.bin/jaeger");
    if !path.exists() {
        bail!("{} not found: run `make tools`", path.display());
    }
    Ok(path)
}

/// Loopback ports nothing listens on right now (held until all are picked, so distinct).
pub fn free_ports<const N: usize>() -> Result<[u16; N]> {
    let listeners = (0..N)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .collect::<std::io::Result<Vec<_>>>()?;
    let ports: Vec<u16> = listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<std::io::Result<_>>()?;
    ports
        .try_into()
        .map_err(|_| anyhow::anyhow!("could not pick {N} ports"))
}

impl Jaeger {
    /// Starts Jaeger with its log in `target/e2e-logs/<name>-jaeger.log` and waits until its
    /// receivers and query API answer.
    pub async fn start(name: &str) -> Result<Self> {
        let [otlp_grpc, otlp_http, query, query_grpc] = free_ports::<4>()?;
        let logs = workspace_dir().join("target/e2e-logs");
        std::fs::create_dir_all(&logs)?;
        let log = logs.join(format!("{name}-jaeger.log"));
        let file = std::fs::File::create(&log)?;
        let child = Command::new(jaeger_binary()?)
            .arg("--config")
            .arg(workspace_dir().join("e2e/jaeger/config.yaml"))
            .env("JAEGER_OTLP_GRPC_PORT", otlp_grpc.to_string())
            .env("JAEGER_OTLP_HTTP_PORT", otlp_http.to_string())
            .env("JAEGER_QUERY_PORT", query.to_string())
            .env("JAEGER_QUERY_GRPC_PORT", query_grpc.to_string())
            .stdout(Stdio::from(file.try_clone()?))
            .stderr(Stdio::from(file))
            .kill_on_drop(true)
            .spawn()
            .context("starting jaeger")?;
        let jaeger = Self {
            _child: child,
            otlp_grpc,
            otlp_http,
            query,
            log,
        };
        eventually("jaeger to answer", Duration::from_secs(30), || async {
            for port in [otlp_grpc, otlp_http] {
                tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port))
                    .await
                    .map_err(|e| format!("OTLP port {port}: {e}"))?;
            }
            jaeger.get("/api/services").await.map(Some).map_err(|e| e.to_string())
        })
        .await?;
        Ok(jaeger)
    }

    /// The OTLP/gRPC endpoint, as `OTEL_EXPORTER_OTLP_ENDPOINT` takes it.
    pub fn grpc_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.otlp_grpc)
    }

    /// The OTLP/HTTP endpoint (the exporter appends `/v1/traces`).
    pub fn http_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.otlp_http)
    }

    /// `GET` on the query API; the JSON answer.
    pub async fn get(&self, path_and_query: &str) -> Result<Value> {
        let (status, body) = http_get(SocketAddr::from((Ipv4Addr::LOCALHOST, self.query)), path_and_query).await?;
        if status != 200 {
            bail!("GET {path_and_query}: {status} {}", String::from_utf8_lossy(&body));
        }
        serde_json::from_slice(&body).with_context(|| format!("GET {path_and_query}: not JSON"))
    }

    /// One trace by id, once Jaeger has it (`None` while it does not).
    pub async fn trace(&self, trace_id: &str) -> Result<Option<Trace>> {
        let (status, body) = http_get(
            SocketAddr::from((Ipv4Addr::LOCALHOST, self.query)),
            &format!("/api/traces/{trace_id}"),
        )
        .await?;
        match status {
            404 => Ok(None),
            200 => Ok(Trace::all(&serde_json::from_slice(&body)?).into_iter().next()),
            _ => bail!("GET trace {trace_id}: {status} {}", String::from_utf8_lossy(&body)),
        }
    }

    /// Traces of `service` with a span named `operation` carrying every tag of `tags`.
    pub async fn search(&self, service: &str, operation: &str, tags: &[(&str, &str)]) -> Result<Vec<Trace>> {
        let mut query = format!(
            "/api/traces?service={}&operation={}&limit=1000",
            encode(service),
            encode(operation)
        );
        for (key, value) in tags {
            query += &format!("&tag={}", encode(&format!("{key}:{value}")));
        }
        Ok(Trace::all(&self.get(&query).await?))
    }

    /// Like [`Jaeger::search`], but the matching spans themselves.
    pub async fn spans(&self, service: &str, operation: &str, tags: &[(&str, &str)]) -> Result<Vec<Span>> {
        Ok(self
            .search(service, operation, tags)
            .await?
            .into_iter()
            .flat_map(|trace| trace.spans)
            .filter(|span| span.operation == operation && tags.iter().all(|(k, v)| span.tag(k) == Some(v)))
            .collect())
    }
}

/// A trace as the query API returns it.
#[derive(Clone, Debug)]
pub struct Trace {
    pub id: String,
    pub spans: Vec<Span>,
}

/// One span: its ids, its parent, the spans it links to, its tags and its service.
#[derive(Clone, Debug)]
pub struct Span {
    pub trace_id: String,
    pub span_id: String,
    pub operation: String,
    /// `(trace id, span id)` of the parent.
    pub parent: Option<(String, String)>,
    /// `(trace id, span id)` of each linked span.
    pub links: Vec<(String, String)>,
    pub tags: BTreeMap<String, String>,
    pub service: String,
    /// Tags of the process (the OpenTelemetry resource).
    pub process: BTreeMap<String, String>,
}

impl Span {
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.get(key).map(String::as_str)
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn tags(value: &Value) -> BTreeMap<String, String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|tag| Some((tag["key"].as_str()?.to_string(), text(&tag["value"]))))
        .collect()
}

impl Trace {
    /// Every trace of a query API answer (`{"data": [...]}`).
    pub fn all(answer: &Value) -> Vec<Trace> {
        answer["data"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|trace| {
                let processes = &trace["processes"];
                let spans = trace["spans"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|span| {
                        let process = &processes[span["processID"].as_str().unwrap_or_default()];
                        let references = span["references"].as_array().cloned().unwrap_or_default();
                        let reference = |r: &Value| (text(&r["traceID"]), text(&r["spanID"]));
                        Span {
                            trace_id: text(&span["traceID"]),
                            span_id: text(&span["spanID"]),
                            operation: text(&span["operationName"]),
                            parent: references.iter().find(|r| r["refType"] == "CHILD_OF").map(reference),
                            links: references
                                .iter()
                                .filter(|r| r["refType"] == "FOLLOWS_FROM")
                                .map(reference)
                                .collect(),
                            tags: tags(&span["tags"]),
                            service: text(&process["serviceName"]),
                            process: tags(&process["tags"]),
                        }
                    })
                    .collect();
                Trace {
                    id: text(&trace["traceID"]),
                    spans,
                }
            })
            .collect()
    }

    pub fn span(&self, span_id: &str) -> Option<&Span> {
        self.spans.iter().find(|s| s.span_id == span_id)
    }

    pub fn named<'a>(&'a self, operation: &'a str) -> impl Iterator<Item = &'a Span> + 'a {
        self.spans.iter().filter(move |s| s.operation == operation)
    }

    /// The span without a parent in this trace.
    pub fn root(&self) -> Option<&Span> {
        self.spans.iter().find(|s| s.parent.is_none())
    }
}

/// Percent-encodes a query parameter value.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A plain HTTP/1.1 `GET`; the status and body.
async fn http_get(address: SocketAddr, path_and_query: &str) -> Result<(u16, Bytes)> {
    let stream = tokio::net::TcpStream::connect(address).await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let request = hyper::Request::get(path_and_query)
        .header(hyper::header::HOST, address.to_string())
        .body(Empty::<Bytes>::new())?;
    let response = tokio::time::timeout(Duration::from_secs(10), sender.send_request(request))
        .await
        .context("query API timed out")??;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, body))
}
