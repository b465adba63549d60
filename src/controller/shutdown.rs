//! One shutdown signal for every part of the operator: SIGTERM or Ctrl-C.

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use tracing::{info, warn};

/// Completes once SIGTERM or SIGINT arrived; clones all complete together.
pub type Shutdown = Shared<BoxFuture<'static, ()>>;

/// Starts listening for the signals now (a signal before the first poll is not lost).
pub fn on_signals() -> Shutdown {
    #[cfg(unix)]
    let terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    async move {
        #[cfg(unix)]
        let terminated = async {
            match terminate {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(error) => {
                    warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops kongress");
                    std::future::pending::<()>().await;
                }
            }
        };
        #[cfg(not(unix))]
        let terminated = std::future::pending::<()>();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => info!("interrupted: shutting down"),
            () = terminated => info!("SIGTERM: shutting down"),
        }
    }
    .boxed()
    .shared()
}
