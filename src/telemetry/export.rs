//! The OTLP pipeline: exporter (gRPC or HTTP/protobuf), batch processor, tracer provider,
//! and the `tracing` layer that feeds it.
//!
//! Spans go to a bounded queue the moment they end (`OTEL_BSP_MAX_QUEUE_SIZE`, 2048 by
//! default; when it is full, spans are dropped and the SDK logs it once). A background
//! thread of the SDK exports them in batches; each request runs on the async runtime (both
//! transports need it) and gives up after the export timeout. A reconcile therefore never
//! waits for the collector, reachable or not.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _, WithTonicConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracerProvider, SpanData, SpanExporter};
use tokio::runtime::Handle;
use tracing::Subscriber;
use tracing_subscriber::Layer;
use tracing_subscriber::registry::LookupSpan;

use super::settings::{Protocol, TraceSettings};

/// `service.name` when the environment names none.
const DEFAULT_SERVICE_NAME: &str = "kongress";

/// Builds the tracer provider that exports to the configured endpoint.
pub(super) fn provider(settings: &TraceSettings, runtime: &Handle) -> Result<SdkTracerProvider, String> {
    // The gRPC channel starts its connection worker on the runtime when it is built.
    let _runtime = runtime.enter();
    let mut exporter = match settings.protocol {
        Protocol::Grpc => {
            let mut builder = opentelemetry_otlp::SpanExporter::builder().with_tonic();
            if settings.tls {
                use opentelemetry_otlp::tonic_types::transport::ClientTlsConfig;
                builder = builder.with_tls_config(ClientTlsConfig::new().with_native_roots());
            }
            builder.build()
        }
        Protocol::HttpProtobuf => opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_shared_http_client(http_client(settings)?)
            .build(),
    }
    .map_err(|error| error.to_string())?;

    // The detectors read OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
    let mut resource = Resource::builder().with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")));
    if settings.default_service_name {
        resource = resource.with_service_name(DEFAULT_SERVICE_NAME);
    }
    let resource = resource.build();
    exporter.set_resource(&resource);
    let exporter = OnRuntime {
        exporter: Arc::new(exporter),
        runtime: runtime.clone(),
    };
    // Queue size, batch size, delay and export timeout come from OTEL_BSP_*.
    let processor = BatchSpanProcessor::builder(exporter).build();
    Ok(SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_sampler(settings.sampler.sampler())
        .with_resource(resource)
        .build())
}

/// The layer that turns kongress's spans into OpenTelemetry spans. It sees only
/// kongress's own spans (at `DEBUG` and above) and its log lines at `INFO` and above, which
/// become span events: the spans of the libraries below, the exporter's own included,
/// never reach it.
pub(super) fn layer<S>(provider: &SdkTracerProvider) -> impl Layer<S>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    let tracer = provider.tracer("kongress");
    tracing_opentelemetry::layer()
        .with_tracer(tracer)
        // Source locations, threads and busy/idle times are noise to a person reading a
        // reconcile, and each costs an attribute on every span.
        .with_location(false)
        .with_threads(false)
        .with_target(false)
        .with_tracked_inactivity(false)
        .with_filter(tracing_subscriber::filter::filter_fn(|metadata| {
            let kongress = metadata.target() == "kongress" || metadata.target().starts_with("kongress::");
            let level = if metadata.is_span() {
                tracing::Level::DEBUG
            } else {
                tracing::Level::INFO
            };
            kongress && *metadata.level() <= level
        }))
}

/// The HTTP client of the HTTP/protobuf exporter: hyper, with rustls and the system's
/// root certificates for `https` endpoints.
fn http_client(settings: &TraceSettings) -> Result<Arc<dyn opentelemetry_http::HttpClient>, String> {
    use opentelemetry_http::hyper::HyperClient;
    if !settings.tls {
        return Ok(Arc::new(HyperClient::with_default_connector(settings.timeout, None)));
    }
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    let (added, _ignored) = roots.add_parsable_certificates(native.certs);
    if added == 0 {
        return Err(format!(
            "no usable root certificate on this system to verify {}",
            settings.endpoint
        ));
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|error| error.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .build();
    Ok(Arc::new(HyperClient::new(connector, settings.timeout, None)))
}

/// Runs each export on the async runtime. The SDK's batch processor exports from a thread
/// of its own, where neither tonic nor hyper could make progress.
#[derive(Debug)]
struct OnRuntime {
    exporter: Arc<opentelemetry_otlp::SpanExporter>,
    runtime: Handle,
}

impl SpanExporter for OnRuntime {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let exporter = self.exporter.clone();
        match self.runtime.spawn(async move { exporter.export(batch).await }).await {
            Ok(result) => result,
            Err(error) => Err(OTelSdkError::InternalFailure(format!("the export task ended: {error}"))),
        }
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.exporter.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.exporter.force_flush()
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        // Set before wrapping too; here only for a resource that changes later.
        if let Some(exporter) = Arc::get_mut(&mut self.exporter) {
            exporter.set_resource(resource);
        }
    }
}
