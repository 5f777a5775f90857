//! Every ingester logs the same way: structured lines on stderr (colours only on a terminal),
//! level from `RUST_LOG` (default info). Secrets never reach a log: they are not `Debug`.

use std::io::IsTerminal;

pub fn init() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
}
