//! When to stop: Ctrl-C in a terminal, SIGTERM from systemd, Docker or Kubernetes. Either begins a
//! graceful shutdown that flushes the sink.
//!
//! The signal streams are made once and live as long as the process. Tokio replaces the default
//! action of a signal the first time anybody listens for it, and a signal that arrives while no
//! stream exists is dropped: a listener made afresh on each loop turn loses every TERM that lands
//! between two turns (during a poll cycle), and the process then never stops.

use std::sync::OnceLock;
use tokio::sync::watch;

static REQUESTED: OnceLock<watch::Receiver<bool>> = OnceLock::new();

/// Starts listening for SIGINT and SIGTERM for the rest of the process's life. Call it first
/// thing inside the runtime, before any work that a signal should interrupt; later calls (and
/// `requested`) reuse the same listener.
pub fn listen() {
    receiver();
}

fn receiver() -> watch::Receiver<bool> {
    REQUESTED
        .get_or_init(|| {
            use tokio::signal::unix::{signal, SignalKind};
            let (tx, rx) = watch::channel(false);
            // Made here, synchronously, so that a signal arriving before the task first runs is
            // already queued on the streams.
            let term = signal(SignalKind::terminate());
            let interrupt = signal(SignalKind::interrupt());
            tokio::spawn(async move {
                match (term, interrupt) {
                    (Ok(mut term), Ok(mut interrupt)) => {
                        tokio::select! {
                            _ = term.recv() => {}
                            _ = interrupt.recv() => {}
                        }
                    }
                    (Err(e), _) | (_, Err(e)) => {
                        tracing::warn!(error = %e, "cannot listen for signals; only Ctrl-C stops gracefully");
                        let _ = tokio::signal::ctrl_c().await;
                    }
                }
                tracing::info!("shutdown requested; flushing");
                let _ = tx.send(true);
                // The sender stays: receivers made later still see the request, and a second
                // signal is absorbed while the flush finishes.
                std::future::pending::<()>().await;
            });
            rx
        })
        .clone()
}

/// Whether a stop was requested (for loops that check between steps).
pub fn is_requested() -> bool {
    *receiver().borrow()
}

/// Resolves once SIGINT or SIGTERM has arrived, at any time since `listen` (or this call, when
/// `listen` was not called first).
pub async fn requested() {
    let mut rx = receiver();
    let _ = rx.wait_for(|&stop| stop).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_term_that_arrives_while_nobody_waits_is_still_seen() {
        listen();
        assert!(!is_requested());
        // Nobody awaits `requested` while the signal arrives, as during a poll cycle.
        let pid = std::process::id().to_string();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(status.success());
        tokio::time::timeout(std::time::Duration::from_secs(30), requested())
            .await
            .expect("the TERM sent before anybody waited is seen");
        assert!(is_requested());
    }
}
