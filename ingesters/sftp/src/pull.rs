//! The pull loop, on its own thread (ssh2 blocks): list, let new files settle, fetch them,
//! hand each to the sink (durable once `send` returns), remember its name. Network trouble
//! means reconnect with backoff; a host key or key problem stops the puller.

use crate::name_filter::NameFilter;
use crate::remote::{Remote, RemoteConfig, RemoteError};
use crate::settling::Settling;
use crate::stats_file::stats_file_row;
use crate::stop::Stop;
use guildstats_ingest::backoff::Backoff;
use guildstats_ingest::sink::SinkHandle;
use guildstats_ingest::Row;
use std::collections::HashSet;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct PullSettings {
    pub remote: RemoteConfig,
    pub source: String,
    pub filter: NameFilter,
    pub poll: Duration,
    pub settle: Duration,
    pub max_file_bytes: u64,
}

/// Queues rows from a blocking thread, giving up (rows stay in the spool) when a stop comes
/// while the sink is full and waiting for the database.
pub fn send_blocking(
    runtime: &tokio::runtime::Handle,
    sink: &SinkHandle,
    rows: Vec<Row>,
    stop: &Stop,
) -> Result<bool, String> {
    runtime.block_on(async {
        tokio::select! {
            sent = sink.send_all(rows) => sent.map(|()| true).map_err(|e| format!("cannot queue rows: {e}")),
            () = stop.wait() => Ok(false),
        }
    })
}

pub struct Puller {
    settings: PullSettings,
    stored: HashSet<String>,
    sink: SinkHandle,
    runtime: tokio::runtime::Handle,
    stop: Stop,
    settling: Settling,
    too_big: HashSet<String>,
}

impl Puller {
    pub fn new(
        settings: PullSettings,
        stored: HashSet<String>,
        sink: SinkHandle,
        runtime: tokio::runtime::Handle,
        stop: Stop,
    ) -> Puller {
        Puller {
            settings,
            stored,
            sink,
            runtime,
            stop,
            settling: Settling::default(),
            too_big: HashSet::new(),
        }
    }

    /// Runs until a stop (Ok) or a fatal error.
    pub fn run(mut self) -> Result<(), String> {
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        let mut remote: Option<Remote> = None;
        tracing::info!(
            remote = %self.settings.remote.describe(),
            port = self.settings.remote.port,
            source = %self.settings.source,
            stored = self.stored.len(),
            "pulling"
        );
        while !self.stop.requested() {
            let connected = match remote.take() {
                Some(r) => Ok(r),
                None => Remote::connect(&self.settings.remote).inspect(|r| {
                    tracing::info!(host_key = %r.host_key_note, "connected");
                }),
            };
            let outcome = connected.and_then(|r| {
                let cycle = self.cycle(&r);
                remote = Some(r);
                cycle
            });
            let pause = match outcome {
                Ok(()) => {
                    backoff.reset();
                    if self.settling.unsettled() > 0 {
                        self.settings.settle.min(self.settings.poll)
                    } else {
                        self.settings.poll
                    }
                }
                Err(RemoteError::Fatal(why)) => return Err(why),
                Err(RemoteError::Transient(why)) => {
                    if let Some(r) = remote.take() {
                        r.close();
                    }
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %why, ?delay, "SFTP trouble; reconnecting");
                    delay
                }
            };
            self.stop.sleep(pause);
        }
        if let Some(r) = remote {
            r.close();
        }
        Ok(())
    }

    fn cycle(&mut self, remote: &Remote) -> Result<(), RemoteError> {
        let candidates: Vec<_> = remote
            .list()?
            .into_iter()
            .filter(|f| !self.stored.contains(&f.name) && self.settings.filter.matches(&f.name))
            .collect();
        for file in self.settling.observe(candidates) {
            if self.stop.requested() {
                break;
            }
            if file.size > self.settings.max_file_bytes {
                if self.too_big.insert(file.name.clone()) {
                    tracing::error!(
                        file = %file.name,
                        bytes = file.size,
                        limit = self.settings.max_file_bytes,
                        "not taken: larger than --max-file-bytes, so not a stats file"
                    );
                }
                continue;
            }
            let content = remote.fetch(&file.name, self.settings.max_file_bytes)?;
            if content.len() as u64 != file.size {
                tracing::info!(file = %file.name, listed = file.size, read = content.len(), "changed while read; waiting for it to settle");
                self.settling.forget(&file.name);
                continue;
            }
            let row = stats_file_row(
                &file.name,
                &self.settings.source,
                &content,
                &guildstats_ingest::time::now(),
            );
            let queued = send_blocking(&self.runtime, &self.sink, vec![row], &self.stop)
                .map_err(RemoteError::Fatal)?;
            if !queued {
                break;
            }
            tracing::info!(file = %file.name, bytes = content.len(), "fetched");
            self.stored.insert(file.name);
        }
        Ok(())
    }
}
