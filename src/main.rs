//! The `kongress` binary: the operator, and a generator for its CRD manifests.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use kongress::controller::{self, Settings};
use tracing::{error, info};

#[derive(Parser, Debug)]
#[command(
    name = "kongress",
    version,
    about = "Kubernetes operator that turns Gateway API objects into running Kong gateways",
    long_about = "kongress owns one Kong data plane (Deployment, proxy Service, admin Service and listen \
configuration) for every GatewayClass whose controllerName is kongress.dev/gateway-controller, derives it from \
the listeners of all Gateways of that class, translates its routes into Kong declarative config, and writes \
GatewayClass, Gateway, listener and route status back."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the operator against the cluster of the current kubeconfig (or the in-cluster service account).
    Run(RunArgs),
    /// Print the CustomResourceDefinitions kongress installs (KongProxy), as YAML.
    Crds,
    /// Print, from objects in files, the Kong config kongress would push for a class (or the
    /// statuses it would write). Runs the operator's own decide step; needs no cluster.
    Translate(TranslateArgs),
}

#[derive(clap::Args, Debug)]
struct TranslateArgs {
    /// A YAML/JSON file of Kubernetes objects (multi-document, or a List), or a directory
    /// read recursively (*.yaml, *.yml, *.json). Repeatable. `-` reads standard input.
    #[arg(short = 'f', long = "filename", required = true)]
    files: Vec<PathBuf>,

    /// The GatewayClass to translate; needed only when the input holds several kongress classes.
    #[arg(long)]
    gateway_class: Option<String>,

    /// What to print: the Kong declarative config, or the statuses kongress would write.
    #[arg(short, long, value_enum, default_value_t = TranslateOutput::Config)]
    output: TranslateOutput,

    /// Encoding of the output. `json` is byte for byte what the operator sends to Kong.
    #[arg(long, value_enum, default_value_t = Format::Yaml)]
    format: Format,

    /// The operator's namespace (where a class without a KongProxy keeps its data plane).
    #[arg(long, env = "KONGRESS_NAMESPACE", default_value = "kongress-system")]
    namespace: String,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum TranslateOutput {
    Config,
    Status,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum Format {
    Yaml,
    Json,
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// Namespace kongress runs in. Its CA Secret lives here, and so does the data plane of
    /// any GatewayClass without a KongProxy parametersRef.
    #[arg(long, env = "KONGRESS_NAMESPACE", default_value = "kongress-system")]
    namespace: String,

    /// How many GatewayClasses may be reconciled at the same time.
    #[arg(long, env = "KONGRESS_CONCURRENCY", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    concurrency: u16,

    /// Name of this kongress instance in Events (defaults to the pod name from POD_NAME).
    #[arg(long, env = "POD_NAME")]
    instance: Option<String>,

    /// Seconds a Kong pod may take to answer `POST /config` (Kong answers once it has
    /// loaded the config); `GET /status` gets at most 5 seconds.
    #[arg(long, env = "KONGRESS_KONG_TIMEOUT_SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    kong_timeout_seconds: u64,

    /// How many `POST /config` requests may be in flight at once, over all Kong pods.
    #[arg(long, env = "KONGRESS_PUSH_CONCURRENCY", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..))]
    push_concurrency: u16,

    /// Address of the HTTP server of `/metrics` (Prometheus), `/healthz` and `/readyz`.
    #[arg(long, env = "KONGRESS_METRICS_ADDRESS", default_value = "0.0.0.0:8080")]
    metrics_address: std::net::SocketAddr,

    /// Run for leadership over the Lease `kongress` in the operator namespace: only the
    /// leader writes and pushes, the others stand by with warm caches. Needed with more
    /// than one replica.
    #[arg(long, env = "KONGRESS_LEADER_ELECT")]
    leader_elect: bool,

    /// Seconds a leader's Lease stays valid without renewal.
    #[arg(long, env = "KONGRESS_LEASE_DURATION_SECONDS", default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..))]
    lease_duration_seconds: u64,

    /// Seconds the leader may go without renewing before it stops writing (less than the
    /// lease duration).
    #[arg(long, env = "KONGRESS_RENEW_DEADLINE_SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    renew_deadline_seconds: u64,

    /// Seconds between renewals, and between tries of a standby.
    #[arg(long, env = "KONGRESS_RETRY_PERIOD_SECONDS", default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..))]
    retry_period_seconds: u64,

    /// Log format: human-readable text or one JSON object per line.
    #[arg(long, env = "KONGRESS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,

    /// Log filter in tracing's EnvFilter syntax, for example `info,kongress=debug`.
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    log_filter: String,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum LogFormat {
    Text,
    Json,
}

impl From<LogFormat> for kongress::telemetry::LogFormat {
    fn from(format: LogFormat) -> Self {
        match format {
            LogFormat::Text => Self::Text,
            LogFormat::Json => Self::Json,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Crds => match kongress::api::crd_manifests() {
            Ok(yaml) => {
                print!("{yaml}");
                ExitCode::SUCCESS
            }
            Err(message) => {
                eprintln!("kongress: {message}");
                ExitCode::FAILURE
            }
        },
        Command::Run(args) => run(args),
        Command::Translate(args) => match translate(&args) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(message) => {
                eprintln!("kongress translate: {message}");
                ExitCode::FAILURE
            }
        },
    }
}

/// Files to read for one `-f`: the file itself, or a directory's YAML/JSON files in name order.
fn input_files(path: &Path) -> Result<Vec<PathBuf>, String> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    let entries = std::fs::read_dir(path).map_err(|e| format!("cannot read directory {}: {e}", path.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot read directory {}: {e}", path.display()))?;
        let child = entry.path();
        if child.is_dir() {
            files.extend(input_files(&child)?);
        } else if matches!(
            child.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        ) {
            files.push(child);
        }
    }
    files.sort();
    Ok(files)
}

fn translate(args: &TranslateArgs) -> Result<String, String> {
    let mut objects = kongress::objects::Objects::default();
    for path in &args.files {
        for file in input_files(path)? {
            let (name, text) = if file.as_os_str() == "-" {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .map_err(|e| format!("cannot read standard input: {e}"))?;
                ("<stdin>".to_string(), text)
            } else {
                let text =
                    std::fs::read_to_string(&file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
                (file.display().to_string(), text)
            };
            objects.add_yaml(&name, &text).map_err(|e| e.to_string())?;
        }
    }
    let class = kongress::decide::choose_class(&objects, args.gateway_class.as_deref())?;
    let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now());
    let outcome = kongress::decide::decide_offline(&objects, &class, &args.namespace, now);
    let encode_error = |e: &dyn std::fmt::Display| format!("cannot encode the output: {e}");
    match (args.output, args.format) {
        (TranslateOutput::Config, Format::Json) => serde_json::to_string(&outcome.translation.config)
            .map(|json| json + "\n")
            .map_err(|e| encode_error(&e)),
        (TranslateOutput::Config, Format::Yaml) => {
            serde_yaml_ng::to_string(&outcome.translation.config).map_err(|e| encode_error(&e))
        }
        (TranslateOutput::Status, format) => {
            let documents = kongress::decide::status_documents(&class, &outcome);
            let mut text = String::new();
            for document in documents {
                match format {
                    Format::Json => {
                        text += &serde_json::to_string(&document).map_err(|e| encode_error(&e))?;
                        text.push('\n');
                    }
                    Format::Yaml => {
                        text += "---\n";
                        text += &serde_yaml_ng::to_string(&document).map_err(|e| encode_error(&e))?;
                    }
                }
            }
            Ok(text)
        }
    }
}

fn run(args: RunArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("kongress: could not start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    // Logs, and traces when an OTLP endpoint is configured (OTEL_* variables only).
    let telemetry = match kongress::telemetry::init(args.log_format.into(), &args.log_filter, runtime.handle()) {
        Ok(telemetry) => telemetry,
        Err(err) => {
            eprintln!("kongress: {err}");
            return ExitCode::FAILURE;
        }
    };
    match telemetry.traces() {
        Some(traces) => info!(endpoint = %traces.endpoint, protocol = %traces.protocol, "exporting traces over OTLP"),
        None => info!("no OTLP endpoint configured: traces are off"),
    }
    let code = run_operator(args, &runtime);
    // Flushes the spans still queued, while the runtime that exports them still runs.
    telemetry.shutdown();
    code
}

fn run_operator(args: RunArgs, runtime: &tokio::runtime::Runtime) -> ExitCode {
    // The name on the Lease and in Events: POD_NAME, else hostname and pid.
    let identity = kongress::leader::identity(args.instance.as_deref());
    let timing = kongress::leader::Timing {
        lease_duration: std::time::Duration::from_secs(args.lease_duration_seconds),
        renew_deadline: std::time::Duration::from_secs(args.renew_deadline_seconds),
        retry_period: std::time::Duration::from_secs(args.retry_period_seconds),
    };
    if let Err(message) = timing.validate() {
        error!(%message, "invalid leader election timing");
        return ExitCode::FAILURE;
    }
    let election = args.leader_elect.then(|| kongress::leader::ElectionSettings {
        namespace: args.namespace.clone(),
        identity: identity.clone(),
        timing,
    });
    let settings = Settings {
        metrics_address: args.metrics_address,
        election,
        namespace: args.namespace,
        concurrency: args.concurrency,
        instance: Some(identity),
        push: controller::PushOptions::with_timeout(
            std::time::Duration::from_secs(args.kong_timeout_seconds),
            usize::from(args.push_concurrency),
        ),
    };
    runtime.block_on(async {
        let client = match kube::Client::try_default().await {
            Ok(client) => client,
            Err(err) => {
                error!(%err, "could not build a Kubernetes client from the kubeconfig or service account");
                return ExitCode::FAILURE;
            }
        };
        match controller::run(client, settings).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                error!(%err, "kongress stopped");
                ExitCode::FAILURE
            }
        }
    })
}
