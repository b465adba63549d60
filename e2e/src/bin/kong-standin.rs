//! The Kong admin stand-in as a program (see `kongress_e2e::standin`).
//!
//! `kong-standin fleet [--namespace NS] [--record-dir DIR]` watches the cluster of
//! `KUBECONFIG` and runs a stand-in for every Kong pod kongress manages, on the pod's
//! loopback IP; `kong-standin serve ...` runs one with explicit addresses and files. Each
//! stand-in records every config it receives in `DIR/<namespace>/<pod>/NNNN-<status>.json`
//! and obeys a `control.json` there, for example `{"fault": "hang"}`,
//! `{"fault": {"status": 500}}`, `{"fault": "close"}` or
//! `{"reject": {"<entity name>": "<message>"}}`.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};
use kongress_e2e::fleet::Fleet;
use kongress_e2e::standin::{StandIn, StandInConfig};

#[derive(Parser)]
#[command(about = "Kong admin API stand-in for kongress's e2e tests")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// A stand-in for every Kong pod of the cluster (KUBECONFIG).
    Fleet {
        /// Only pods of this namespace.
        #[arg(long)]
        namespace: Option<String>,
        #[arg(long, default_value = "target/kong-standin")]
        record_dir: PathBuf,
    },
    /// One stand-in.
    Serve {
        /// Admin listener (TLS, client certificates required); a loopback address.
        #[arg(long)]
        admin: SocketAddr,
        /// Status listener (plain HTTP).
        #[arg(long)]
        status: Option<SocketAddr>,
        #[arg(long)]
        cert: PathBuf,
        #[arg(long)]
        key: PathBuf,
        /// CA that signs client certificates.
        #[arg(long)]
        client_ca: PathBuf,
        #[arg(long, default_value = "target/kong-standin")]
        record_dir: PathBuf,
    },
}

fn read(path: &PathBuf) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    match args.command {
        Command::Fleet { namespace, record_dir } => {
            let client = kube::Client::try_default().await.context("KUBECONFIG")?;
            let _fleet = Fleet::start(client, namespace.as_deref(), record_dir.clone());
            eprintln!(
                "kong-standin: serving every Kong pod; records in {}",
                record_dir.display()
            );
            tokio::signal::ctrl_c().await?;
        }
        Command::Serve {
            admin,
            status,
            cert,
            key,
            client_ca,
            record_dir,
        } => {
            let _standin = StandIn::start(StandInConfig {
                admin,
                status,
                cert_pem: read(&cert)?,
                key_pem: read(&key)?,
                client_ca_pem: read(&client_ca)?,
                record_dir: Some(record_dir),
                fault: Default::default(),
                reject: Default::default(),
            })
            .await?;
            eprintln!("kong-standin: admin on {admin}");
            tokio::signal::ctrl_c().await?;
        }
    }
    Ok(())
}
