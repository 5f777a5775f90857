//! Rounds, players and weapons as typed columns, for the batch import: one array per column,
//! stored with `INSERT ... SELECT unnest($1), unnest($2), ...`. Cheaper than jsonb, whose
//! numbers are numerics that must be parsed, printed and parsed again on the way into integer
//! columns. The unnests stand in the select list, where they advance in step and stream;
//! `FROM unnest($1, $2, ...)` would first copy every array into a tuplestore.

use crate::jsonb::JsonbBytes;
use guildstats_engine::et::{ParsedRound, Player, Team};
use pgrx::datum::DatumWithOid;

// The parser refuses any number, total or time outside 0..=i32::MAX (a per-file error), so
// these conversions never drop a value; should that guarantee break, the import fails loudly
// instead of storing a NULL or a clamped number.
fn int(value: Option<i64>) -> Option<i32> {
    value.map(|v| fits(v, "a count"))
}

fn count(value: u64) -> i32 {
    fits(value, "a total")
}

fn fits<T: TryInto<i32> + Copy + std::fmt::Display>(value: T, what: &str) -> i32 {
    value.try_into().unwrap_or_else(|_| {
        crate::error::raise(
            pgrx::PgSqlErrorCode::ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE,
            format!("{what} of {value} passed the parser but does not fit an integer column"),
        )
    })
}

/// What the import knows of a round besides the parsed file.
pub struct RoundFacts<'a> {
    pub round_id: i64,
    pub raw_ingest_id: i64,
    pub sha256: &'a [u8],
    pub source: &'a str,
    /// The round 1 its stored player values were differenced against.
    pub players_basis: Option<i64>,
}

/// The columns of `et_rounds` that an import fills.
#[derive(Default)]
pub struct RoundColumns {
    round_id: Vec<i64>,
    raw_ingest_id: Vec<i64>,
    sha256: Vec<Vec<u8>>,
    file_name: Vec<String>,
    source: Vec<String>,
    saved_at: Vec<String>,
    map: Vec<String>,
    round_number: Vec<i16>,
    server_name: Vec<String>,
    server_name_raw: Vec<String>,
    config: Vec<String>,
    defender_team: Vec<Option<i16>>,
    winner_team: Vec<Option<i16>>,
    time_limit_seconds: Vec<Option<i32>>,
    time_used_seconds: Vec<Option<i32>>,
    lua_fields: Vec<Option<i16>>,
    player_count: Vec<i32>,
    players_basis: Vec<Option<i64>>,
}

fn team(team: Option<Team>) -> Option<i16> {
    team.map(|t| i16::from(t.code()))
}

fn seconds(value: Option<u32>) -> Option<i32> {
    value.map(|v| fits(v, "a time"))
}

impl RoundColumns {
    pub fn push(&mut self, facts: RoundFacts, round: &ParsedRound) {
        let header = &round.header;
        self.round_id.push(facts.round_id);
        self.raw_ingest_id.push(facts.raw_ingest_id);
        self.sha256.push(facts.sha256.to_vec());
        self.file_name.push(round.file_name.clone());
        self.source.push(facts.source.to_string());
        self.saved_at.push(round.file.saved_at.to_string());
        self.map.push(round.file.map.clone());
        self.round_number.push(i16::from(round.file.round));
        self.server_name.push(header.server_name.clone());
        self.server_name_raw.push(header.server_name_raw.clone());
        self.config.push(header.config.clone());
        self.defender_team.push(team(header.defender));
        self.winner_team.push(team(header.winner));
        self.time_limit_seconds
            .push(seconds(header.time_limit_seconds));
        self.time_used_seconds
            .push(seconds(header.time_used_seconds));
        self.lua_fields.push(
            round
                .version
                .and_then(|v| i16::try_from(v.field_count()).ok()),
        );
        self.player_count
            .push(i32::try_from(round.players.len()).unwrap_or(i32::MAX));
        self.players_basis.push(facts.players_basis);
    }

    pub fn insert(self) -> (&'static str, Vec<DatumWithOid<'static>>) {
        (
            "INSERT INTO guildstats.et_rounds (
                 round_id, raw_ingest_id, sha256, file_name, source, saved_at, map, round_number,
                 server_name, server_name_raw, config, defender_team, winner_team,
                 time_limit_seconds, time_used_seconds, lua_fields, player_count, players_basis)
             SELECT unnest($1::bigint[]), unnest($2::bigint[]), unnest($3::bytea[]),
                    unnest($4::text[]), unnest($5::text[]), unnest($6::text[]::timestamp[]),
                    unnest($7::text[]), unnest($8::smallint[]), unnest($9::text[]),
                    unnest($10::text[]), unnest($11::text[]), unnest($12::smallint[]),
                    unnest($13::smallint[]), unnest($14::integer[]), unnest($15::integer[]),
                    unnest($16::smallint[]), unnest($17::integer[]), unnest($18::bigint[])",
            vec![
                self.round_id.into(),
                self.raw_ingest_id.into(),
                self.sha256.into(),
                self.file_name.into(),
                self.source.into(),
                self.saved_at.into(),
                self.map.into(),
                self.round_number.into(),
                self.server_name.into(),
                self.server_name_raw.into(),
                self.config.into(),
                self.defender_team.into(),
                self.winner_team.into(),
                self.time_limit_seconds.into(),
                self.time_used_seconds.into(),
                self.lua_fields.into(),
                self.player_count.into(),
                self.players_basis.into(),
            ],
        )
    }
}

/// The columns of `et_player_rounds`, in table order.
#[derive(Default)]
pub struct PlayerColumns {
    round_id: Vec<i64>,
    guid: Vec<String>,
    name: Vec<String>,
    clean_name: Vec<String>,
    is_bot: Vec<bool>,
    team: Vec<i16>,
    values_basis: Vec<String>,
    kills: Vec<i32>,
    deaths: Vec<i32>,
    hits: Vec<i32>,
    shots: Vec<i32>,
    headshots: Vec<i32>,
    ints: [Vec<Option<i32>>; 31],
    time_played_percent: Vec<Option<f32>>,
    time_dead_minutes: Vec<Option<f32>>,
    dpm: Vec<Option<f64>>,
    accuracy: Vec<Option<f64>>,
    kd: Vec<Option<f64>>,
    efficiency: Vec<Option<f64>>,
    file_stats: Vec<JsonbBytes>,
}

/// The nullable integer columns, in table order (`time_played_percent`, a real, stands between
/// the 9th and the 10th).
fn integer_fields(p: &Player) -> [Option<i32>; 31] {
    let e = &p.extended;
    [
        int(e.damage_given),
        int(e.damage_received),
        int(e.team_damage_given),
        int(e.team_damage_received),
        int(e.gibs),
        int(e.self_kills),
        int(e.team_kills),
        int(e.team_gibs),
        p.time_played_seconds().map(|s| fits(s, "a time")),
        int(e.xp),
        int(e.killing_spree),
        int(e.death_spree),
        int(e.kill_assists),
        int(e.kill_steals),
        int(e.headshot_kills),
        int(e.objectives_stolen),
        int(e.objectives_returned),
        int(e.dynamites_planted),
        int(e.dynamites_defused),
        int(e.times_revived),
        int(e.revives_given),
        int(e.useful_kills),
        int(e.useless_kills),
        int(e.full_self_kills),
        int(e.repairs_constructions),
        int(e.playtime_denied_seconds),
        int(e.multikill_2),
        int(e.multikill_3),
        int(e.multikill_4),
        int(e.multikill_5),
        int(e.multikill_6),
    ]
}

impl PlayerColumns {
    pub fn push(&mut self, round_id: i64, p: &Player, values_basis: &str, file_stats: JsonbBytes) {
        self.round_id.push(round_id);
        self.guid.push(p.guid.clone());
        self.name.push(p.name_raw.clone());
        self.clean_name.push(p.name.clone());
        self.is_bot.push(p.is_bot);
        // 1 to 3: the parser refuses any other team.
        self.team.push(fits(p.team_code, "a team") as i16);
        self.values_basis.push(values_basis.to_string());
        self.kills.push(count(p.kills()));
        self.deaths.push(count(p.deaths()));
        self.hits.push(count(p.hits()));
        self.shots.push(count(p.shots()));
        self.headshots.push(count(p.headshot_hits()));
        for (column, value) in self.ints.iter_mut().zip(integer_fields(p)) {
            column.push(value);
        }
        self.time_played_percent
            .push(p.extended.time_played_percent.map(|v| v as f32));
        self.time_dead_minutes
            .push(p.extended.time_dead_minutes.map(|v| v as f32));
        self.dpm.push(p.dpm());
        self.accuracy.push(p.accuracy());
        self.kd.push(Some(p.kd()));
        self.efficiency.push(p.efficiency());
        self.file_stats.push(file_stats);
    }

    pub fn len(&self) -> usize {
        self.round_id.len()
    }

    /// The statement and its arguments. The order of the unnests is the table's.
    pub fn insert(self) -> (&'static str, Vec<DatumWithOid<'static>>) {
        let mut args: Vec<DatumWithOid<'static>> = vec![
            self.round_id.into(),
            self.guid.into(),
            self.name.into(),
            self.clean_name.into(),
            self.is_bot.into(),
            self.team.into(),
            self.values_basis.into(),
            self.kills.into(),
            self.deaths.into(),
            self.hits.into(),
            self.shots.into(),
            self.headshots.into(),
        ];
        let [damage_given, damage_received, team_damage_given, team_damage_received, gibs, self_kills, team_kills, team_gibs, time_played_seconds, xp, killing_spree, death_spree, kill_assists, kill_steals, headshot_kills, objectives_stolen, objectives_returned, dynamites_planted, dynamites_defused, times_revived, revives_given, useful_kills, useless_kills, full_self_kills, repairs_constructions, playtime_denied_seconds, multikill_2, multikill_3, multikill_4, multikill_5, multikill_6] =
            self.ints;
        for column in [
            damage_given,
            damage_received,
            team_damage_given,
            team_damage_received,
            gibs,
            self_kills,
            team_kills,
            team_gibs,
            time_played_seconds,
        ] {
            args.push(column.into());
        }
        args.push(self.time_played_percent.into());
        for column in [
            xp,
            killing_spree,
            death_spree,
            kill_assists,
            kill_steals,
            headshot_kills,
            objectives_stolen,
            objectives_returned,
            dynamites_planted,
            dynamites_defused,
            times_revived,
            revives_given,
            useful_kills,
            useless_kills,
            full_self_kills,
            repairs_constructions,
            playtime_denied_seconds,
            multikill_2,
            multikill_3,
            multikill_4,
            multikill_5,
            multikill_6,
        ] {
            args.push(column.into());
        }
        args.push(self.time_dead_minutes.into());
        args.push(self.dpm.into());
        args.push(self.accuracy.into());
        args.push(self.kd.into());
        args.push(self.efficiency.into());
        args.push(self.file_stats.into());
        debug_assert_eq!(args.len(), 50);
        (PLAYER_INSERT, args)
    }
}

const PLAYER_INSERT: &str = "INSERT INTO guildstats.et_player_rounds
    SELECT unnest($1::bigint[]), unnest($2::text[]), unnest($3::text[]), unnest($4::text[]),
        unnest($5::boolean[]), unnest($6::smallint[]), unnest($7::text[]),
        unnest($8::integer[]), unnest($9::integer[]), unnest($10::integer[]),
        unnest($11::integer[]), unnest($12::integer[]), unnest($13::integer[]),
        unnest($14::integer[]), unnest($15::integer[]), unnest($16::integer[]),
        unnest($17::integer[]), unnest($18::integer[]), unnest($19::integer[]),
        unnest($20::integer[]), unnest($21::integer[]), unnest($22::real[]),
        unnest($23::integer[]), unnest($24::integer[]), unnest($25::integer[]),
        unnest($26::integer[]), unnest($27::integer[]), unnest($28::integer[]),
        unnest($29::integer[]), unnest($30::integer[]), unnest($31::integer[]),
        unnest($32::integer[]), unnest($33::integer[]), unnest($34::integer[]),
        unnest($35::integer[]), unnest($36::integer[]), unnest($37::integer[]),
        unnest($38::integer[]), unnest($39::integer[]), unnest($40::integer[]),
        unnest($41::integer[]), unnest($42::integer[]), unnest($43::integer[]),
        unnest($44::integer[]), unnest($45::real[]), unnest($46::double precision[]),
        unnest($47::double precision[]), unnest($48::double precision[]),
        unnest($49::double precision[]), unnest($50::jsonb[])";

/// The columns of `et_weapon_rounds`, in table order.
#[derive(Default)]
pub struct WeaponColumns {
    round_id: Vec<i64>,
    guid: Vec<String>,
    weapon_index: Vec<i16>,
    weapon: Vec<String>,
    hits: Vec<i32>,
    shots: Vec<i32>,
    kills: Vec<i32>,
    deaths: Vec<i32>,
    headshots: Vec<i32>,
}

impl WeaponColumns {
    pub fn push_all(&mut self, round_id: i64, p: &Player) {
        for w in &p.weapons {
            self.round_id.push(round_id);
            self.guid.push(p.guid.clone());
            self.weapon_index.push(i16::from(w.index));
            self.weapon.push(w.name().to_string());
            self.hits.push(count(u64::from(w.hits)));
            self.shots.push(count(u64::from(w.shots)));
            self.kills.push(count(u64::from(w.kills)));
            self.deaths.push(count(u64::from(w.deaths)));
            self.headshots.push(count(u64::from(w.headshots)));
        }
    }

    pub fn insert(self) -> (&'static str, Vec<DatumWithOid<'static>>) {
        (
            "INSERT INTO guildstats.et_weapon_rounds
             SELECT unnest($1::bigint[]), unnest($2::text[]), unnest($3::smallint[]),
                    unnest($4::text[]), unnest($5::integer[]), unnest($6::integer[]),
                    unnest($7::integer[]), unnest($8::integer[]), unnest($9::integer[])",
            vec![
                self.round_id.into(),
                self.guid.into(),
                self.weapon_index.into(),
                self.weapon.into(),
                self.hits.into(),
                self.shots.into(),
                self.kills.into(),
                self.deaths.into(),
                self.headshots.into(),
            ],
        )
    }
}
