//! `--check`: what every ingester verifies before it is left to run unattended. It reports in
//! plain lines, and fails with an error that says what to fix.

use crate::raw_tables::RawTable;
use crate::sink::{connect, error_text, SinkOptions};

/// Connects as the sink would and checks that the extension is there and that every raw table the
/// ingester writes accepts INSERTs from this login. The DSN and password never appear in the text.
pub async fn database(options: &SinkOptions, tables: &[&RawTable]) -> Result<Vec<String>, String> {
    let client = connect(options)
        .await
        .map_err(|e| format!("database: cannot connect: {e}"))?;
    let who = client
        .query_one(
            "SELECT current_user::text, current_database()::text, \
             (SELECT extversion FROM pg_extension WHERE extname = 'guildstats')",
            &[],
        )
        .await
        .map_err(|e| format!("database: connected, but cannot query: {}", error_text(&e)))?;
    let (user, db, version): (String, String, Option<String>) =
        (who.get(0), who.get(1), who.get(2));
    let version = version.ok_or_else(|| {
        format!("database {db}: the guildstats extension is not installed (CREATE EXTENSION guildstats)")
    })?;
    let mut lines = vec![
        format!("database: connected to {db} as {user}; guildstats {version}"),
        format!("database: {}", tls(&client, options).await?),
    ];
    for table in tables {
        let qualified = format!("guildstats.{}", table.name);
        let allowed: bool = client
            .query_one(
                "SELECT has_any_column_privilege($1::text, 'INSERT')",
                &[&qualified],
            )
            .await
            .map_err(|e| format!("database: cannot check {qualified}: {}", error_text(&e)))?
            .get(0);
        if !allowed {
            return Err(format!(
                "database: {user} may not INSERT into {qualified}; grant it the guildstats_ingest role (sql/ops/roles.sql)"
            ));
        }
        lines.push(format!("database: may insert into {qualified}"));
    }
    Ok(lines)
}

/// How this connection travels, as the server sees it, and what the settings guarantee.
pub async fn tls(client: &tokio_postgres::Client, options: &SinkOptions) -> Result<String, String> {
    let row = client
        .query_one(
            "SELECT inet_client_addr() IS NULL, coalesce(s.ssl, false), s.version, s.cipher
               FROM (SELECT 1) AS one
               LEFT JOIN pg_stat_ssl AS s ON s.pid = pg_backend_pid()",
            &[],
        )
        .await
        .map_err(|e| format!("database: cannot read the TLS state: {}", error_text(&e)))?;
    let (local, encrypted, version, cipher): (bool, bool, Option<String>, Option<String>) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    let settings = options.tls.describe();
    Ok(if encrypted {
        format!(
            "TLS on ({} {}); {settings}",
            version.unwrap_or_default(),
            cipher.unwrap_or_default()
        )
    } else if local {
        format!("TLS off: a local Unix socket, which never uses TLS ({settings})")
    } else {
        format!("TLS OFF: the password and every row cross the network in clear ({settings}; use --sslmode verify-full)")
    })
}

/// The spool's state: where it is and how many rows wait in it.
pub fn spool(options: &SinkOptions) -> Result<String, String> {
    let dir = &options.spool_path;
    let waiting = crate::spool::pending_rows(dir)
        .map_err(|e| format!("spool {}: cannot read it: {e}", dir.display()))?;
    Ok(format!(
        "spool: {} ({waiting} rows waiting for the database)",
        dir.display()
    ))
}
