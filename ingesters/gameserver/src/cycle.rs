//! One poll cycle's results into the sink. Polls are independent of each other: an invalid row or
//! a poll task that panics costs that row or that poll (logged and counted), never the poller.
//! Only a spool that cannot take rows stops it, since every later poll would be lost as well.

use crate::servers::Server;
use guildstats_ingest::sink::{SendError, SinkHandle};
use guildstats_ingest::Row;
use tokio::task::JoinSet;

/// What a poll task hands back: the server, when it was polled, and its rows.
pub type Polled = (Server, String, Vec<Row>);

/// Running totals for the process's life, reported in every log line that raises one.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub stored: u64,
    pub invalid_rows: u64,
    pub failed_tasks: u64,
}

/// Waits for every poll of the cycle and queues its valid rows. Returns an error only when the
/// spool refuses rows.
pub async fn store(
    polls: &mut JoinSet<Polled>,
    sink: &SinkHandle,
    tally: &mut Tally,
) -> Result<(), String> {
    while let Some(done) = polls.join_next().await {
        let (server, polled_at, rows) = match done {
            Ok(polled) => polled,
            Err(e) => {
                tally.failed_tasks += 1;
                tracing::error!(
                    error = %e,
                    failed_tasks = tally.failed_tasks,
                    "a poll task failed; its poll is lost, the other polls go on"
                );
                continue;
            }
        };
        let mut valid = Vec::with_capacity(rows.len());
        for row in rows {
            match row.validate() {
                Ok(_) => valid.push(row),
                Err(why) => {
                    tally.invalid_rows += 1;
                    tracing::error!(
                        server = %server,
                        table = %row.table,
                        error = %why,
                        invalid_rows = tally.invalid_rows,
                        "row not recorded; the rest of the poll goes on"
                    );
                }
            }
        }
        if valid.is_empty() {
            continue;
        }
        match sink.send_all(valid).await {
            Ok(()) => {
                tally.stored += 1;
                // Logged once the rows are durable in the spool: from here on they reach the
                // database exactly once, whatever happens to this process or the database.
                tracing::info!(server = %server, %polled_at, "poll stored");
            }
            Err(e @ SendError::Invalid(_)) => {
                tally.invalid_rows += 1;
                tracing::error!(server = %server, error = %e, "poll not recorded");
            }
            Err(e) => return Err(format!("cannot queue rows: {e}")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::servers::Server;
    use guildstats_ingest::raw_tables::RAW_SERVER_POLLS;
    use guildstats_ingest::{Sink, SinkOptions};

    fn poll_row(server: &str) -> Row {
        Row::new(&RAW_SERVER_POLLS)
            .set("server", server)
            .set("polled_at", "2026-03-01T20:00:00Z")
            .set("ok", true)
    }

    #[tokio::test]
    async fn a_panicking_poll_and_an_invalid_row_cost_only_themselves() {
        let dir = tempfile::tempdir().unwrap();
        // No database: the rows only have to reach the spool.
        let sink = Sink::start(SinkOptions::new("host=/nonexistent", dir.path())).unwrap();
        let server = |a: &str| -> Server { format!("a2s {a}").parse().unwrap() };
        let mut polls = JoinSet::new();
        let (good, bad, broken) = (
            server("127.0.0.1:1"),
            server("127.0.0.1:2"),
            server("127.0.0.1:3"),
        );
        polls.spawn(async move { (good, "t1".to_string(), vec![poll_row("127.0.0.1:1")]) });
        polls.spawn(async move {
            let mut invalid = poll_row("127.0.0.1:2");
            invalid.table = "not_a_raw_table".into();
            (
                bad,
                "t2".to_string(),
                vec![invalid, poll_row("127.0.0.1:2")],
            )
        });
        polls.spawn(async move {
            if broken.address.ends_with(":3") {
                panic!("a parser bug");
            }
            (broken, String::new(), Vec::new())
        });
        let mut tally = Tally::default();
        store(&mut polls, &sink.handle(), &mut tally).await.unwrap();
        assert_eq!(
            tally,
            Tally {
                stored: 2,
                invalid_rows: 1,
                failed_tasks: 1
            }
        );
        assert_eq!(
            guildstats_ingest::spool::pending_rows(dir.path()).unwrap(),
            2
        );
        // The next cycle works as before.
        let again = server("127.0.0.1:1");
        polls.spawn(async move { (again, "t4".to_string(), vec![poll_row("127.0.0.1:1")]) });
        store(&mut polls, &sink.handle(), &mut tally).await.unwrap();
        assert_eq!(tally.stored, 3);
        sink.abort().await;
    }
}
