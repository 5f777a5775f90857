//! Where generated rows go.
//!
//! Generation is a stream: rows are handed to a [`Sink`] one at a time and never collected by
//! the generator, so memory stays flat however many rows a run makes. A sink also says which
//! tables it wants; the generator skips the work for the others (see `rng.rs` for why that
//! does not change the rows of the tables that are produced).

use std::collections::BTreeMap;
use std::io;

use crate::copy;
use crate::rows::*;
use crate::voice::VoiceSession;

/// A consumer of generated rows.
pub trait Sink {
    /// Whether rows of `table` are wanted. Defaults to every table.
    fn wants(&self, table: Table) -> bool {
        let _ = table;
        true
    }

    /// Receives one row of a wanted table.
    fn row(&mut self, row: Row<'_>) -> io::Result<()>;

    /// Whether the ground-truth voice sessions are wanted (see [`VoiceSession`]).
    fn wants_truth(&self) -> bool {
        false
    }

    /// Receives one ground-truth voice session (one stint of one user in one channel).
    fn truth(&mut self, session: &VoiceSession) -> io::Result<()> {
        let _ = session;
        Ok(())
    }
}

/// Counts rows per table and writes nothing (for summaries, estimates and tests).
#[derive(Clone, Debug, Default)]
pub struct CountingSink {
    counts: BTreeMap<Table, u64>,
    only: Option<Vec<Table>>,
}

impl CountingSink {
    /// Counts every table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts only `tables` (and skips generating the rest).
    pub fn only(tables: &[Table]) -> Self {
        CountingSink {
            counts: BTreeMap::new(),
            only: Some(tables.to_vec()),
        }
    }

    /// Rows seen for `table`.
    pub fn count(&self, table: Table) -> u64 {
        self.counts.get(&table).copied().unwrap_or(0)
    }

    /// All counts, by table.
    pub fn counts(&self) -> &BTreeMap<Table, u64> {
        &self.counts
    }
}

impl Sink for CountingSink {
    fn wants(&self, table: Table) -> bool {
        self.only.as_ref().is_none_or(|t| t.contains(&table))
    }

    fn row(&mut self, row: Row<'_>) -> io::Result<()> {
        *self.counts.entry(row.table()).or_insert(0) += 1;
        Ok(())
    }
}

/// Keeps every row as COPY text in memory, per table. Meant for tests and small configs:
/// two runs are byte-identical exactly when their `MemorySink`s are equal.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemorySink {
    tables: BTreeMap<Table, Vec<u8>>,
}

impl MemorySink {
    pub fn new() -> Self {
        Self::default()
    }

    /// The COPY text of `table` (empty if it got no rows).
    pub fn copy_text(&self, table: Table) -> &[u8] {
        self.tables.get(&table).map_or(&[], Vec::as_slice)
    }
}

impl Sink for MemorySink {
    fn row(&mut self, row: Row<'_>) -> io::Result<()> {
        copy::write_row(self.tables.entry(row.table()).or_default(), row);
        Ok(())
    }
}

/// Every row as an owned value, by table, plus the ground truth. For tests on small configs.
#[derive(Clone, Debug, Default)]
pub struct CollectSink {
    pub guilds: Vec<GuildRow>,
    pub channels: Vec<ChannelRow>,
    pub member_events: Vec<MemberEventRow>,
    pub scheduled_events: Vec<ScheduledEventRow>,
    pub voice_events: Vec<VoiceEventRow>,
    pub voice_snapshots: Vec<VoiceSnapshotRow>,
    pub heartbeats: Vec<HeartbeatRow>,
    pub messages: Vec<MessageRow>,
    pub point_transactions: Vec<PointTxRow>,
    pub server_polls: Vec<ServerPollRow>,
    pub server_players: Vec<ServerPlayerRow>,
    pub truth: Vec<VoiceSession>,
}

impl CollectSink {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Sink for CollectSink {
    fn row(&mut self, row: Row<'_>) -> io::Result<()> {
        match row {
            Row::Guild(r) => self.guilds.push(r.clone()),
            Row::Channel(r) => self.channels.push(r.clone()),
            Row::MemberEvent(r) => self.member_events.push(r.clone()),
            Row::ScheduledEvent(r) => self.scheduled_events.push(r.clone()),
            Row::VoiceEvent(r) => self.voice_events.push(*r),
            Row::VoiceSnapshot(r) => self.voice_snapshots.push(r.clone()),
            Row::Heartbeat(r) => self.heartbeats.push(*r),
            Row::Message(r) => self.messages.push(*r),
            Row::PointTransaction(r) => self.point_transactions.push(r.clone()),
            Row::ServerPoll(r) => self.server_polls.push(r.clone()),
            Row::ServerPlayer(r) => self.server_players.push(r.clone()),
        }
        Ok(())
    }

    fn wants_truth(&self) -> bool {
        true
    }

    fn truth(&mut self, session: &VoiceSession) -> io::Result<()> {
        self.truth.push(*session);
        Ok(())
    }
}
