//! Voice sessions in SQL: the sessionizer of `guildstats_engine::voice` over the raw tables.
//!
//! The builder itself (`build_voice_sessions()`, in `sql/extension/voice_sessions.sql`) decides
//! what to rebuild and writes the rows; this module is the one step it cannot do in SQL: read
//! one guild's observations, walk them with the engine and return the sessions as rows.

use guildstats_engine::voice::{
    outages, sessionize_users, snapshot_entries, GuildTimeline, ObservationKind, RawVoiceEvent,
    Session, SnapshotState, UserObservation, VoiceConfig, VoiceSnapshot,
};
use pgrx::pgrx_sql_entity_graph::metadata::{
    ArgumentError, ReturnsError, ReturnsRef, SqlMappingRef, SqlTranslatable, TypeOrigin,
};
use pgrx::prelude::*;
use pgrx::spi::SpiResult;
use std::marker::PhantomData;

/// Microseconds from the Unix epoch to PostgreSQL's epoch (2000-01-01 00:00 UTC).
const POSTGRES_EPOCH_US: i64 = 946_684_800_000_000;

fn to_unix_us(ts: TimestampWithTimeZone) -> i64 {
    ts.into_inner().saturating_add(POSTGRES_EPOCH_US)
}

fn from_unix_us(us: i64) -> TimestampWithTimeZone {
    TimestampWithTimeZone::try_from(us.saturating_sub(POSTGRES_EPOCH_US)).unwrap_or_else(|_| {
        if us < 0 {
            TimestampWithTimeZone::negative_infinity()
        } else {
            TimestampWithTimeZone::positive_infinity()
        }
    })
}

/// An interval as microseconds, counting a day as 24 hours and a month as 30 days (the
/// settings are hours and minutes in practice; this only makes `'1 day'` mean something).
fn interval_us(interval: Interval) -> i64 {
    let days = i64::from(interval.months()) * 30 + i64::from(interval.days());
    days.saturating_mul(86_400_000_000)
        .saturating_add(interval.micros())
}

/// The rows `_voice_sessionize` returns (the `name!` list of its signature, in order).
type SessionRow = (
    i64,
    i64,
    TimestampWithTimeZone,
    Option<TimestampWithTimeZone>,
    &'static str,
    Option<&'static str>,
    bool,
    bool,
    f64,
    f64,
);

/// Per-user restart times of an incremental build, sorted by user.
struct Restarts {
    users: Vec<i64>,
    from: Vec<i64>,
}

impl Restarts {
    /// `None`: the user is not part of this build.
    fn restart_of(&self, user: i64) -> Option<i64> {
        self.users.binary_search(&user).ok().map(|i| self.from[i])
    }

    fn earliest(&self) -> Option<i64> {
        self.from.iter().copied().min()
    }
}

/// Internal: sessionizes one guild. With `users` NULL, the whole guild from the start (a full
/// build); otherwise each listed user from their `restart_at` on (the caller has deleted their
/// sessions from that instant). The guild's snapshots and heartbeats are read from the earlier
/// of `marks_from` and the first of the listed users' events that enters a channel (without
/// `marks_from`, from the earliest restart): the caller passes the earliest instant at which a
/// listed user may be in a channel other than through those events. Guild-wide marks only act
/// on users in a channel, so earlier ones change nothing.
#[pg_extern(volatile, parallel_unsafe, name = "_voice_sessionize")]
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
pub(crate) fn voice_sessionize(
    guild_id: i64,
    horizon: TimestampWithTimeZone,
    afk_channel_id: Option<i64>,
    ignored_channel_ids: Option<Vec<Option<i64>>>,
    session_cap: Interval,
    outage_after: Interval,
    users: default!(Option<Vec<Option<i64>>>, "NULL"),
    restart_at: default!(Option<Vec<Option<TimestampWithTimeZone>>>, "NULL"),
    marks_from: default!(Option<TimestampWithTimeZone>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(user_id, i64),
        name!(channel_id, i64),
        name!(started_at, TimestampWithTimeZone),
        name!(ended_at, Option<TimestampWithTimeZone>),
        name!(start_reason, &'static str),
        name!(end_reason, Option<&'static str>),
        name!(is_afk, bool),
        name!(capped, bool),
        name!(self_mute_seconds, f64),
        name!(self_deaf_seconds, f64),
    ),
> {
    let config = voice_config(
        afk_channel_id,
        ignored_channel_ids,
        session_cap,
        outage_after,
    );
    let restarts = match (users, restart_at) {
        (None, _) => None,
        (Some(users), restart_at) => {
            let restart_at = restart_at.unwrap_or_default();
            if restart_at.len() != users.len() {
                crate::error::raise(
                    PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                    format!(
                        "guildstats: _voice_sessionize: users has {} elements but restart_at has {}",
                        users.len(),
                        restart_at.len()
                    ),
                );
            }
            let mut pairs: Vec<(i64, i64)> = users
                .into_iter()
                .zip(restart_at)
                .filter_map(|(u, t)| Some((u?, to_unix_us(t?))))
                .collect();
            pairs.sort_unstable();
            pairs.dedup_by_key(|(u, _)| *u);
            Some(Restarts {
                users: pairs.iter().map(|p| p.0).collect(),
                from: pairs.iter().map(|p| p.1).collect(),
            })
        }
    };
    if restarts.as_ref().is_some_and(|r| r.users.is_empty()) {
        return TableIterator::new(Vec::new());
    }
    let (sessions, _) = guild_sessions(guild_id, horizon, &config, restarts.as_ref(), marks_from);
    TableIterator::new(sessions.into_iter().map(session_row))
}

/// The columns of [`voice_sessionize_arrays`]: the distinct users, the raw events read, then
/// one array per column
/// of `voice_sessions` (the guild aside), element `i` of each making session `i`.
type SessionArrays = (
    i64,
    i64,
    BuiltArray<i64>,
    BuiltArray<i64>,
    BuiltArray<TimestampWithTimeZone>,
    BuiltArray<TimestampWithTimeZone>,
    BuiltArray<&'static str>,
    BuiltArray<&'static str>,
    BuiltArray<bool>,
    BuiltArray<bool>,
    BuiltArray<f64>,
    BuiltArray<f64>,
);

/// An array value built in one piece by [`BuiltArray::build`] and returned as it is. pgrx's
/// conversion of a `Vec<T>` appends an element at a time (accumArrayResult) and copies the
/// lot again at the end; for the ten columns of half a million sessions that cost more than
/// the walk. SQL sees the same type as `Vec<T>` (`T[]`).
pub(crate) struct BuiltArray<T>(pg_sys::Datum, PhantomData<T>);

impl<T: IntoDatum> BuiltArray<T> {
    /// One element per `elements` (NULL where `nulls` says so), into a one-dimensional array of
    /// `T`'s type, with its storage (`len`, `byval`, `align` as in pg_type).
    fn build(
        elements: &mut [pg_sys::Datum],
        nulls: Option<&mut [bool]>,
        len: i32,
        byval: bool,
        align: u8,
    ) -> Self {
        let mut dims = [elements.len() as i32];
        let mut lower_bounds = [1];
        // SAFETY: `elements` and `nulls` (when given) have `dims[0]` entries; each element is a
        // value of T's type (by value, or a pointer to a varlena that lives until this call
        // returns: construct_md_array copies it).
        let array = unsafe {
            pg_sys::construct_md_array(
                elements.as_mut_ptr(),
                nulls.map_or(std::ptr::null_mut(), |n| n.as_mut_ptr()),
                1,
                dims.as_mut_ptr(),
                lower_bounds.as_mut_ptr(),
                T::type_oid(),
                len,
                byval,
                align as std::os::raw::c_char,
            )
        };
        BuiltArray(pg_sys::Datum::from(array), PhantomData)
    }
}

impl<T: IntoDatum> IntoDatum for BuiltArray<T> {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        Some(self.0)
    }

    fn type_oid() -> pg_sys::Oid {
        Vec::<T>::type_oid()
    }
}

// SAFETY: returns the array datum `build` made, as `Vec<T>`'s does its own.
unsafe impl<T: IntoDatum> pgrx::callconv::BoxRet for BuiltArray<T> {
    unsafe fn box_into<'fcx>(
        self,
        fcinfo: &mut pgrx::callconv::FcInfo<'fcx>,
    ) -> pgrx::datum::Datum<'fcx> {
        // SAFETY: the caller returns the datum to PostgreSQL, as the trait requires.
        unsafe { fcinfo.return_raw_datum(self.0) }
    }
}

// SAFETY: the same SQL type as `Vec<T>`, which is what `into_datum` gives.
unsafe impl<T: SqlTranslatable> SqlTranslatable for BuiltArray<T> {
    const TYPE_IDENT: &'static str = <Vec<T> as SqlTranslatable>::TYPE_IDENT;
    const TYPE_ORIGIN: TypeOrigin = <Vec<T> as SqlTranslatable>::TYPE_ORIGIN;
    const ARGUMENT_SQL: Result<SqlMappingRef, ArgumentError> =
        <Vec<T> as SqlTranslatable>::ARGUMENT_SQL;
    const RETURN_SQL: Result<ReturnsRef, ReturnsError> = <Vec<T> as SqlTranslatable>::RETURN_SQL;
}

/// Internal: the sessions of a whole guild as `_voice_sessionize` gives them with `users`
/// NULL, as one row of column arrays. A full rebuild unnests them into its insert: a row per
/// session through the set-returning protocol costs more than writing it.
#[pg_extern(volatile, parallel_unsafe, name = "_voice_sessionize_arrays")]
#[allow(clippy::type_complexity)]
pub(crate) fn voice_sessionize_arrays(
    guild_id: i64,
    horizon: TimestampWithTimeZone,
    afk_channel_id: Option<i64>,
    ignored_channel_ids: Option<Vec<Option<i64>>>,
    session_cap: Interval,
    outage_after: Interval,
) -> TableIterator<
    'static,
    (
        name!(users, i64),
        name!(events_read, i64),
        name!(user_id, BuiltArray<i64>),
        name!(channel_id, BuiltArray<i64>),
        name!(started_at, BuiltArray<TimestampWithTimeZone>),
        name!(ended_at, BuiltArray<TimestampWithTimeZone>),
        name!(start_reason, BuiltArray<&'static str>),
        name!(end_reason, BuiltArray<&'static str>),
        name!(is_afk, BuiltArray<bool>),
        name!(capped, BuiltArray<bool>),
        name!(self_mute_seconds, BuiltArray<f64>),
        name!(self_deaf_seconds, BuiltArray<f64>),
    ),
> {
    let config = voice_config(
        afk_channel_id,
        ignored_channel_ids,
        session_cap,
        outage_after,
    );
    let (sessions, events_read) = guild_sessions(guild_id, horizon, &config, None, None);
    TableIterator::once(session_arrays(sessions, events_read))
}

/// Internal: computes the sessions of a whole guild, as `_voice_sessionize_arrays` does, and
/// writes them into `voice_sessions` itself through COPY's bulk write (see
/// [`crate::bulk_copy`]): handed to SQL as arrays and inserted from there, each row was
/// converted twice and written alone, which cost as much as the walk. The caller has emptied
/// the guild's sessions. A table under row-level security for the current user is refused
/// (COPY would write past the policies): the caller inserts the arrays instead.
#[pg_extern(volatile, parallel_unsafe, name = "_voice_write_guild_sessions")]
pub(crate) fn voice_write_guild_sessions(
    guild_id: i64,
    horizon: TimestampWithTimeZone,
    afk_channel_id: Option<i64>,
    ignored_channel_ids: Option<Vec<Option<i64>>>,
    session_cap: Interval,
    outage_after: Interval,
) -> TableIterator<
    'static,
    (
        name!(users, i64),
        name!(events_read, i64),
        name!(sessions_written, i64),
    ),
> {
    let relid = voice_sessions_relid();
    // Before the walk, so that a refused write costs nothing.
    if crate::bulk_copy::row_security_applies(relid) {
        crate::error::raise(
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            "guildstats: _voice_write_guild_sessions: row-level security applies to voice_sessions for this user; \
             the build writes through INSERT instead",
        );
    }
    let config = voice_config(
        afk_channel_id,
        ignored_channel_ids,
        session_cap,
        outage_after,
    );
    let (sessions, events_read) = guild_sessions(guild_id, horizon, &config, None, None);
    let users = distinct_users(&sessions);
    let written =
        crate::bulk_copy::copy_rows(relid, &SESSION_COLUMNS, sessions.iter(), |s, row| {
            row.int8(guild_id);
            row.int8(s.user_id);
            row.int8(s.channel_id);
            row.timestamptz(from_unix_us(s.started_at).into_inner());
            match s.ended_at {
                Some(t) => row.timestamptz(from_unix_us(t).into_inner()),
                None => row.null(),
            }
            match s.end_reason {
                Some(r) => row.text(r.as_str()),
                None => row.null(),
            }
            row.bool(s.is_afk);
            row.text(s.start_reason.as_str());
            row.bool(s.capped);
            row.float8(s.self_mute_us as f64 / 1e6);
            row.float8(s.self_deaf_us as f64 / 1e6);
        });
    TableIterator::once((users as i64, events_read as i64, written as i64))
}

/// The columns [`voice_write_guild_sessions`] fills, in the order it writes each row's fields.
const SESSION_COLUMNS: [&str; 11] = [
    "guild_id",
    "user_id",
    "channel_id",
    "started_at",
    "ended_at",
    "end_reason",
    "is_afk",
    "start_reason",
    "capped",
    "self_mute_seconds",
    "self_deaf_seconds",
];

/// The extension's `voice_sessions` table.
fn voice_sessions_relid() -> pg_sys::Oid {
    // SAFETY: catalog lookups by name; the schema lookup raises its own error if missing.
    let relid = unsafe {
        let schema = pg_sys::get_namespace_oid(c"guildstats".as_ptr(), false);
        pg_sys::get_relname_relid(c"voice_sessions".as_ptr(), schema)
    };
    if relid == pg_sys::InvalidOid {
        crate::error::raise(
            PgSqlErrorCode::ERRCODE_UNDEFINED_TABLE,
            "guildstats: voice sessions: table guildstats.voice_sessions does not exist",
        );
    }
    relid
}

/// The walk gives each user's sessions together (users in turn): count the changes of user
/// rather than sorting half a million ids.
fn distinct_users(sessions: &[Session]) -> usize {
    sessions
        .windows(2)
        .filter(|w| w[0].user_id != w[1].user_id)
        .count()
        + usize::from(!sessions.is_empty())
}

fn session_arrays(sessions: Vec<Session>, events_read: usize) -> SessionArrays {
    let n = sessions.len();
    let users = distinct_users(&sessions);
    // The reasons are a handful of words: one text value each, pointed to by every element.
    let mut texts: Vec<(&'static str, pg_sys::Datum)> = Vec::new();
    let mut text = |word: &'static str| -> pg_sys::Datum {
        if let Some((_, d)) = texts.iter().find(|(w, _)| *w == word) {
            return *d;
        }
        let d = word.into_datum().unwrap_or(pg_sys::Datum::from(0));
        texts.push((word, d));
        d
    };
    // One buffer of values and one of NULL flags, reused column after column: ten columns of
    // half a million values each, all allocated at once, cost more in fresh pages than the
    // copying they stand for.
    let mut buffers = ColumnBuffers {
        datums: Vec::with_capacity(n),
        nulls: Vec::with_capacity(n),
    };
    // Storage of bigint, timestamptz and double precision: 8 bytes by value, aligned on 8;
    // boolean: 1 byte by value; text: a varlena, aligned on 4.
    let user = buffers.column(&sessions, (8, true, b'd'), |r| Some(r.0.into()));
    let channel = buffers.column(&sessions, (8, true, b'd'), |r| Some(r.1.into()));
    let start = buffers.column(&sessions, (8, true, b'd'), |r| {
        Some(r.2.into_inner().into())
    });
    let end = buffers.column(&sessions, (8, true, b'd'), |r| {
        r.3.map(|t| t.into_inner().into())
    });
    let start_reason = buffers.column(&sessions, (-1, false, b'i'), |r| Some(text(r.4)));
    let end_reason = buffers.column(&sessions, (-1, false, b'i'), |r| r.5.map(&mut text));
    let afk = buffers.column(&sessions, (1, true, b'c'), |r| Some(r.6.into()));
    let capped = buffers.column(&sessions, (1, true, b'c'), |r| Some(r.7.into()));
    let mute = buffers.column(&sessions, (8, true, b'd'), |r| Some(r.8.to_bits().into()));
    let deaf = buffers.column(&sessions, (8, true, b'd'), |r| Some(r.9.to_bits().into()));
    (
        users as i64,
        events_read as i64,
        user,
        channel,
        start,
        end,
        start_reason,
        end_reason,
        afk,
        capped,
        mute,
        deaf,
    )
}

/// The values and NULL flags of one column of [`session_arrays`] at a time.
struct ColumnBuffers {
    datums: Vec<pg_sys::Datum>,
    nulls: Vec<bool>,
}

impl ColumnBuffers {
    /// One column of the sessions as an array: `value` of each session's row (None: NULL),
    /// stored as `(len, byval, align)` says. NULL flags that are all false give an array
    /// without a NULL bitmap, as none would.
    fn column<T: IntoDatum>(
        &mut self,
        sessions: &[Session],
        (len, byval, align): (i32, bool, u8),
        mut value: impl FnMut(SessionRow) -> Option<pg_sys::Datum>,
    ) -> BuiltArray<T> {
        self.datums.clear();
        self.nulls.clear();
        for s in sessions {
            let v = value(session_row(*s));
            self.datums.push(v.unwrap_or(pg_sys::Datum::from(0)));
            self.nulls.push(v.is_none());
        }
        BuiltArray::build(&mut self.datums, Some(&mut self.nulls), len, byval, align)
    }
}

fn voice_config(
    afk_channel_id: Option<i64>,
    ignored_channel_ids: Option<Vec<Option<i64>>>,
    session_cap: Interval,
    outage_after: Interval,
) -> VoiceConfig {
    VoiceConfig::new(interval_us(session_cap), interval_us(outage_after))
        .with_afk_channel(afk_channel_id)
        .with_ignored_channels(
            ignored_channel_ids
                .unwrap_or_default()
                .into_iter()
                .flatten(),
        )
}

/// Reads one guild's observations (see [`read_guild`]) and walks them; also returns how many
/// raw events it read (a full rebuild reports them without counting them again).
fn guild_sessions(
    guild_id: i64,
    horizon: TimestampWithTimeZone,
    config: &VoiceConfig,
    restarts: Option<&Restarts>,
    marks_from: Option<TimestampWithTimeZone>,
) -> (Vec<Session>, usize) {
    let horizon = to_unix_us(horizon);
    Spi::connect(|client| -> SpiResult<(Vec<Session>, usize)> {
        let input = read_guild(client, guild_id, restarts, marks_from)?;
        // The events arrive as observations already: a million of them copied once more
        // would cost a sizeable share of the walk.
        let mut observations = input.events;
        let events_read = observations.len();
        let found = outages(&input.beats, config.outage_after_us, horizon);
        let timeline = GuildTimeline::new(&found, input.snapshots.iter().map(|s| s.taken_at));
        observations.extend(snapshot_entries(&input.snapshots));
        if let Some(r) = restarts {
            observations.retain(|o| {
                r.restart_of(o.user_id)
                    .is_some_and(|t| o.observation.ts >= t)
            });
        }
        let sessions = sessionize_users(observations, &[], &timeline, config, horizon).sessions;
        Ok((sessions, events_read))
    })
    .unwrap_or_else(|e| {
        crate::error::spi_error("guildstats: voice sessions: cannot read the raw tables", e)
    })
}

fn session_row(s: Session) -> SessionRow {
    (
        s.user_id,
        s.channel_id,
        from_unix_us(s.started_at),
        s.ended_at.map(from_unix_us),
        s.start_reason.as_str(),
        s.end_reason.map(|r| r.as_str()),
        s.is_afk,
        s.capped,
        s.self_mute_us as f64 / 1e6,
        s.self_deaf_us as f64 / 1e6,
    )
}

struct GuildInput {
    /// The raw voice events, as observations.
    events: Vec<UserObservation>,
    snapshots: Vec<VoiceSnapshot>,
    beats: Vec<i64>,
}

/// Reads what the walk needs, each table as one row of arrays (far cheaper than a row per
/// observation through SPI). Incremental builds read each user's events from their restart
/// on, and the guild's snapshots and heartbeats from the earlier of `marks_from` and the first
/// of those events that enters a channel (without `marks_from`, from the earliest restart);
/// heartbeats from the last one before that, so that an outage spanning it is seen whole.
fn read_guild(
    client: &pgrx::spi::SpiClient<'_>,
    guild_id: i64,
    restarts: Option<&Restarts>,
    marks_from: Option<TimestampWithTimeZone>,
) -> SpiResult<GuildInput> {
    let events_sql_all = "SELECT user_id, event_ts, channel_id, self_mute, self_deaf
                          FROM @extschema@.raw_voice_events WHERE guild_id = $1";
    // One index range per user (OFFSET 0 keeps the planner from turning the lateral into a
    // join that could scan the guild's whole history).
    let events_sql_users = "SELECT e.user_id, e.event_ts, e.channel_id, e.self_mute, e.self_deaf
                            FROM unnest($2::bigint[], $3::timestamptz[]) AS r(user_id, restart_at)
                            CROSS JOIN LATERAL (
                                SELECT x.user_id, x.event_ts, x.channel_id, x.self_mute, x.self_deaf
                                FROM @extschema@.raw_voice_events x
                                WHERE x.guild_id = $1 AND x.user_id = r.user_id AND x.event_ts >= r.restart_at
                                OFFSET 0) e";
    let events = match restarts {
        None => read_events(
            &schema_qualified(events_sql_all),
            &[(pg_sys::INT8OID, pg_sys::Datum::from(guild_id))],
        ),
        Some(r) => {
            let starts: Vec<TimestampWithTimeZone> =
                r.from.iter().copied().map(from_unix_us).collect();
            // Both arrays live in this call's memory context until the query has run.
            let (Some(users), Some(starts)) = (r.users.clone().into_datum(), starts.into_datum())
            else {
                return Ok(GuildInput {
                    events: Vec::new(),
                    snapshots: Vec::new(),
                    beats: Vec::new(),
                });
            };
            read_events(
                &schema_qualified(events_sql_users),
                &[
                    (pg_sys::INT8OID, pg_sys::Datum::from(guild_id)),
                    (pg_sys::INT8ARRAYOID, users),
                    (pg_sys::TIMESTAMPTZARRAYOID, starts),
                ],
            )
        }
    };
    let from = match (restarts, marks_from) {
        (None, _) => TimestampWithTimeZone::negative_infinity(),
        (Some(r), None) => r
            .earliest()
            .map(from_unix_us)
            .unwrap_or_else(TimestampWithTimeZone::negative_infinity),
        (Some(_), Some(marks_from)) => {
            let first_entry = events
                .iter()
                .filter(|e| {
                    matches!(
                        e.observation.kind,
                        ObservationKind::Event {
                            channel: Some(_),
                            ..
                        }
                    )
                })
                .map(|e| e.observation.ts)
                .min();
            match first_entry {
                Some(t) if t < to_unix_us(marks_from) => from_unix_us(t),
                _ => marks_from,
            }
        }
    };

    // Snapshot times (an empty list is still a snapshot; something else than a list is not a
    // snapshot at all), then every listed state.
    let snapshot_times: Vec<Option<TimestampWithTimeZone>> = client
        .select(
            &schema_qualified(
                "SELECT array_agg(taken_at ORDER BY taken_at) FROM @extschema@.raw_voice_snapshots
                 WHERE guild_id = $1 AND taken_at >= $2 AND jsonb_typeof(voice_states) = 'array'",
            ),
            None,
            &[guild_id.into(), from.into()],
        )?
        .first()
        .get(1)?
        .unwrap_or_default();
    let entries_sql = "SELECT array_agg(s.taken_at), array_agg(v.user_id), array_agg(v.channel_id),
                              array_agg(v.self_mute), array_agg(v.self_deaf)
                       FROM @extschema@.raw_voice_snapshots s
                       CROSS JOIN LATERAL @extschema@._snapshot_states(s.voice_states) v
                       WHERE s.guild_id = $1 AND s.taken_at >= $2";
    let row = client
        .select(
            &schema_qualified(entries_sql),
            None,
            &[guild_id.into(), from.into()],
        )?
        .first();
    let entry_times: Vec<Option<TimestampWithTimeZone>> = row.get(1)?.unwrap_or_default();
    let entry_users: Vec<Option<i64>> = row.get(2)?.unwrap_or_default();
    let entry_channels: Vec<Option<i64>> = row.get(3)?.unwrap_or_default();
    let entry_mutes: Vec<Option<bool>> = row.get(4)?.unwrap_or_default();
    let entry_deafs: Vec<Option<bool>> = row.get(5)?.unwrap_or_default();
    let mut snapshots: Vec<VoiceSnapshot> = snapshot_times
        .into_iter()
        .flatten()
        .map(|t| VoiceSnapshot {
            taken_at: to_unix_us(t),
            states: Vec::new(),
        })
        .collect();
    // Sorted by time: attach each entry to its snapshot by binary search.
    for (i, entry_time) in entry_times.iter().enumerate() {
        let (Some(t), Some(Some(user_id)), Some(Some(channel_id))) =
            (*entry_time, entry_users.get(i), entry_channels.get(i))
        else {
            continue;
        };
        let t = to_unix_us(t);
        if let Ok(k) = snapshots.binary_search_by_key(&t, |s| s.taken_at) {
            snapshots[k].states.push(SnapshotState {
                user_id: *user_id,
                channel_id: *channel_id,
                self_mute: entry_mutes.get(i).copied().flatten().unwrap_or(false),
                self_deaf: entry_deafs.get(i).copied().flatten().unwrap_or(false),
            });
        }
    }

    // Sorted here: sorting in the aggregate, then converting the array an element at a time,
    // cost more than reading the rows (in time order already, as the bot sends them).
    let beats_sql = "SELECT beat_at FROM @extschema@.raw_heartbeats
                     WHERE source = 'discord' AND guild_id = $1
                       AND beat_at >= coalesce((SELECT max(beat_at) FROM @extschema@.raw_heartbeats
                                                 WHERE source = 'discord' AND guild_id = $1 AND beat_at < $2),
                                               '-infinity')";
    let mut beats: Vec<i64> = Vec::new();
    read_rows(
        &schema_qualified(beats_sql),
        &[
            (pg_sys::INT8OID, pg_sys::Datum::from(guild_id)),
            (
                pg_sys::TIMESTAMPTZOID,
                pg_sys::Datum::from(from.into_inner()),
            ),
        ],
        &[pg_sys::TIMESTAMPTZOID],
        &mut |values, nulls| {
            if !nulls[0] {
                beats.push(postgres_us_to_unix(values[0]));
            }
        },
    );
    beats.sort_unstable();
    Ok(GuildInput {
        events,
        snapshots,
        beats,
    })
}

/// A timestamptz value (microseconds since PostgreSQL's epoch) as microseconds since the
/// Unix epoch.
fn postgres_us_to_unix(value: pg_sys::Datum) -> i64 {
    (value.value() as i64).saturating_add(POSTGRES_EPOCH_US)
}

/// Where the executor hands a query's rows: straight to `on_row`, with the values and NULL
/// flags of the `columns` read from each slot. A full build reads a million events;
/// aggregated into arrays first (array_agg looks up its argument's type on every row) or
/// copied into an SPI tuple table, they cost more than the walk itself.
#[repr(C)]
struct RowSink<'a> {
    /// First, so that the executor's `DestReceiver` pointer is this struct's.
    dest: pg_sys::DestReceiver,
    /// The types of the columns the query must return, all passed by value.
    columns: &'a [pg_sys::Oid],
    on_row: &'a mut dyn FnMut(&[pg_sys::Datum], &[bool]),
}

/// The columns of the events queries: user_id, event_ts, channel_id, self_mute, self_deaf.
const EVENT_COLUMNS: [pg_sys::Oid; 5] = [
    pg_sys::INT8OID,
    pg_sys::TIMESTAMPTZOID,
    pg_sys::INT8OID,
    pg_sys::BOOLOID,
    pg_sys::BOOLOID,
];

#[pg_guard]
unsafe extern "C-unwind" fn row_sink_startup(
    dest: *mut pg_sys::DestReceiver,
    _operation: std::os::raw::c_int,
    typeinfo: pg_sys::TupleDesc,
) {
    // SAFETY: `dest` is the `RowSink` that read_rows set up; the executor passes the
    // descriptor of the rows it will send.
    let (columns, expected) = unsafe {
        let desc = &*typeinfo;
        let columns: Vec<pg_sys::Oid> = (0..desc.natts as usize)
            .map(|i| (*desc.attrs.as_ptr().add(i)).atttypid)
            .collect();
        (columns, (*dest.cast::<RowSink>()).columns)
    };
    // The values are read by position and as by-value datums: refuse any other shape.
    if columns != expected {
        crate::error::raise(
            PgSqlErrorCode::ERRCODE_DATATYPE_MISMATCH,
            format!(
                "guildstats: voice sessions: a query returns columns of types {columns:?}, not {expected:?}"
            ),
        );
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn row_sink_receive(
    slot: *mut pg_sys::TupleTableSlot,
    dest: *mut pg_sys::DestReceiver,
) -> bool {
    // SAFETY: `dest` is the `RowSink` that read_rows set up, alive while the query runs; the
    // slot has the columns row_sink_startup checked.
    unsafe {
        let sink = &mut *dest.cast::<RowSink>();
        let n = sink.columns.len();
        if ((*slot).tts_nvalid as usize) < n {
            pg_sys::slot_getsomeattrs_int(slot, n as i32);
        }
        let values = std::slice::from_raw_parts((*slot).tts_values, n);
        let nulls = std::slice::from_raw_parts((*slot).tts_isnull, n);
        (sink.on_row)(values, nulls);
    }
    true
}

#[pg_guard]
unsafe extern "C-unwind" fn row_sink_nothing(_dest: *mut pg_sys::DestReceiver) {}

/// Runs one of the events queries with its parameters and returns its rows as observations.
fn read_events(sql: &str, args: &[(pg_sys::Oid, pg_sys::Datum)]) -> Vec<UserObservation> {
    let mut events: Vec<UserObservation> = Vec::new();
    read_rows(sql, args, &EVENT_COLUMNS, &mut |values, nulls| {
        if !nulls[0] && !nulls[1] {
            events.push(UserObservation::from(RawVoiceEvent {
                user_id: values[0].value() as i64,
                ts: postgres_us_to_unix(values[1]),
                channel_id: (!nulls[2]).then(|| values[2].value() as i64),
                self_mute: !nulls[3] && values[3].value() != 0,
                self_deaf: !nulls[4] && values[4].value() != 0,
            }));
        }
    });
    events
}

/// Runs a query (inside the caller's SPI connection) with its parameters, each a type and a
/// non-NULL value, and hands each row to `on_row` (see [`RowSink`]); the query must return
/// `columns`, of types passed by value.
fn read_rows(
    sql: &str,
    args: &[(pg_sys::Oid, pg_sys::Datum)],
    columns: &[pg_sys::Oid],
    on_row: &mut dyn FnMut(&[pg_sys::Datum], &[bool]),
) {
    let mut sink = RowSink {
        dest: pg_sys::DestReceiver {
            receiveSlot: Some(row_sink_receive),
            rStartup: Some(row_sink_startup),
            rShutdown: Some(row_sink_nothing),
            rDestroy: Some(row_sink_nothing),
            // Not DestSPI: SPI would look for its own tuple table afterwards.
            mydest: pg_sys::CommandDest::DestNone,
        },
        columns,
        on_row,
    };
    let Ok(sql) = std::ffi::CString::new(sql) else {
        crate::error::raise(
            PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
            "guildstats: voice sessions: a query contains a NUL byte",
        );
    };
    let mut types: Vec<pg_sys::Oid> = args.iter().map(|(t, _)| *t).collect();
    // SAFETY: the caller holds an SPI connection; the plan is freed before returning; the
    // parameter list has `args.len()` slots (makeParamList) and each value lives as long as
    // the caller's `args`; `sink` outlives the execution that writes into it.
    let status = unsafe {
        let plan = pg_sys::SPI_prepare(sql.as_ptr(), types.len() as i32, types.as_mut_ptr());
        if plan.is_null() {
            let spi_status = pg_sys::SPI_result;
            crate::error::raise(
                PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
                format!(
                    "guildstats: voice sessions: cannot prepare a query (SPI status {spi_status})"
                ),
            );
        }
        let params = pg_sys::makeParamList(args.len() as i32);
        for (i, (ptype, value)) in args.iter().enumerate() {
            *(*params).params.as_mut_ptr().add(i) = pg_sys::ParamExternData {
                value: *value,
                isnull: false,
                pflags: pg_sys::PARAM_FLAG_CONST as u16,
                ptype: *ptype,
            };
        }
        let options = pg_sys::SPIExecuteOptions {
            params,
            read_only: true,
            dest: &mut sink.dest,
            ..Default::default()
        };
        let status = pg_sys::SPI_execute_plan_extended(plan, &options);
        pg_sys::SPI_freeplan(plan);
        status
    };
    if status < 0 {
        crate::error::raise(
            PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
            format!("guildstats: voice sessions: cannot read the raw tables (SPI status {status})"),
        );
    }
}

/// The extension's schema is fixed (`schema = guildstats` in the control file).
fn schema_qualified(sql: &str) -> String {
    sql.replace("@extschema@", "guildstats")
}

extension_sql!(
    r#"
COMMENT ON FUNCTION _voice_sessionize(bigint, timestamptz, bigint, bigint[], interval, interval, bigint[], timestamptz[], timestamptz) IS
    'Internal to build_voice_sessions(): the voice sessions of one guild computed from the raw tables by the Rust sessionizer (whole guild when users is NULL, else each listed user from their restart_at on, with the guild''s snapshots and heartbeats from the earlier of marks_from and the first of those users'' events that enters a channel). Writes nothing.';
"#,
    name = "voice_sessionize_comment",
    requires = [voice_sessionize]
);

extension_sql!(
    r#"
COMMENT ON FUNCTION _voice_sessionize_arrays(bigint, timestamptz, bigint, bigint[], interval, interval) IS
    'Internal to build_voice_sessions(): the voice sessions of a whole guild, as _voice_sessionize(...) with users NULL gives them, in one row: the number of distinct users, the number of raw voice events read, then one array per column, element i of each making session i. A full rebuild unnests them into its insert and reports the events read. Writes nothing.';
"#,
    name = "voice_sessionize_arrays_comment",
    requires = [voice_sessionize_arrays]
);

extension_sql!(
    r#"
COMMENT ON FUNCTION _voice_write_guild_sessions(bigint, timestamptz, bigint, bigint[], interval, interval) IS
    'Internal to build_voice_sessions(): computes the voice sessions of a whole guild (as _voice_sessionize_arrays) and writes them into voice_sessions through COPY''s bulk write, which checks INSERT privilege and enforces the constraints, indexes and triggers as an INSERT would; the caller has emptied the guild''s sessions. Returns the number of distinct users, of raw voice events read, and of sessions written. Refuses a table under row-level security for the current user (the caller then inserts _voice_sessionize_arrays'' rows).';
"#,
    name = "voice_write_guild_sessions_comment",
    requires = [voice_write_guild_sessions]
);
