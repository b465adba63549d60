//! The `kongress` binary: the operator, and a generator for its CRD manifests.

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use kongress::controller::{self, Settings};
use tracing::error;
use tracing_subscriber::EnvFilter;

#[derive(Parser, Debug)]
#[command(
    name = "kongress",
    version,
    about = "Kubernetes operator that turns Gateway API objects into running Kong gateways",
    long_about = "kongress owns one Kong data plane (Deployment, proxy Service, admin Service and listen \
configuration) for every GatewayClass whose controllerName is kongress.dev/gateway-controller, derives it from \
the listeners of all Gateways of that class, and writes GatewayClass, Gateway and listener status back."
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

fn init_logging(format: LogFormat, filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only for a terminal: redirected logs stay greppable.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
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
    }
}

fn run(args: RunArgs) -> ExitCode {
    init_logging(args.log_format, &args.log_filter);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            error!(%err, "could not start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    let settings = Settings {
        namespace: args.namespace,
        concurrency: args.concurrency,
        instance: args.instance,
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
