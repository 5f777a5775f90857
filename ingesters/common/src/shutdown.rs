//! When to stop: Ctrl-C in a terminal, SIGTERM from systemd, Docker or Kubernetes. Either begins a
//! graceful shutdown that flushes the sink.

/// Resolves at the first SIGINT or SIGTERM.
pub async fn requested() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops gracefully");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    tracing::info!("shutdown requested; flushing");
}
