//! Parsed rounds as jsonb, written in PostgreSQL's binary form (`crate::jsonb`). The keys are
//! the column names of `et_player_rounds` and `et_weapon_rounds`, so that SQL can store a
//! document with `jsonb_to_recordset`.

use crate::jsonb::{JsonbBytes, JsonbValue};
use guildstats_engine::et::{DiffStatus, ParsedRound, Player, Round2Result, Team};

use JsonbValue as J;

fn team_code(team: Option<Team>) -> JsonbValue<'static> {
    team.map_or(J::Null, |t| J::Int(i64::from(t.code())))
}

fn seconds(value: Option<u32>) -> JsonbValue<'static> {
    J::opt_int(value.map(i64::from))
}

/// What `values_basis` says of a round-2 player's values.
pub fn values_basis(status: DiffStatus) -> &'static str {
    match status {
        DiffStatus::Differenced => "differenced",
        DiffStatus::R2Only => "round2_only",
        DiffStatus::Reset => "reset",
    }
}

/// The whole file: name facts, header and players (with the file's own values).
pub fn round(round: &ParsedRound) -> Result<JsonbBytes, String> {
    let header = &round.header;
    let saved_at = round.file.saved_at.to_string();
    JsonbBytes::encode(&J::Object(vec![
        ("file_name", J::Str(&round.file_name)),
        ("saved_at", J::Str(&saved_at)),
        ("map", J::Str(&round.file.map)),
        ("round_number", J::Int(i64::from(round.file.round))),
        (
            "lua_fields",
            J::opt_int(round.version.map(|v| v.field_count() as i64)),
        ),
        (
            "header",
            J::Object(vec![
                ("server_name", J::Str(&header.server_name)),
                ("server_name_raw", J::Str(&header.server_name_raw)),
                ("map", J::Str(&header.map)),
                ("config", J::Str(&header.config)),
                ("round", J::Int(header.round)),
                ("defender_team", team_code(header.defender)),
                ("winner_team", team_code(header.winner)),
                ("time_limit_raw", J::Str(&header.time_limit_raw)),
                ("time_used_raw", J::Str(&header.time_used_raw)),
                ("time_limit_seconds", seconds(header.time_limit_seconds)),
                ("time_used_seconds", seconds(header.time_used_seconds)),
                ("playtime_raw", J::opt_int(header.playtime_raw)),
            ]),
        ),
        (
            "players",
            J::Array(round.players.iter().map(|p| player(p, "raw")).collect()),
        ),
        (
            "warnings",
            J::Array(round.warnings.iter().map(|w| J::Str(w)).collect()),
        ),
    ]))
}

/// A round 2 after the differential: `players` hold this round's values, `file_players` the
/// file's cumulative ones, in the same order.
pub fn round2_players(result: &Round2Result) -> Result<JsonbBytes, String> {
    JsonbBytes::encode(&J::Object(vec![
        (
            "players",
            J::Array(
                result
                    .players
                    .iter()
                    .map(|p| player(&p.round2_only, values_basis(p.status)))
                    .collect(),
            ),
        ),
        (
            "file_players",
            J::Array(
                result
                    .players
                    .iter()
                    .map(|p| player(&p.cumulative, "raw"))
                    .collect(),
            ),
        ),
        (
            "round1_only_guids",
            J::Array(result.r1_only_guids.iter().map(|g| J::Str(g)).collect()),
        ),
    ]))
}

/// One player: identity, totals over weapons, derived rates, every extended field by name
/// (null where this Lua version does not write it) and the weapons.
fn player<'a>(p: &'a Player, values: &'a str) -> JsonbValue<'a> {
    let weapons = p
        .weapons
        .iter()
        .map(|w| {
            J::Object(vec![
                ("weapon_index", J::Int(i64::from(w.index))),
                ("weapon", J::Str(w.name())),
                ("hits", J::Int(i64::from(w.hits))),
                ("shots", J::Int(i64::from(w.shots))),
                ("kills", J::Int(i64::from(w.kills))),
                ("deaths", J::Int(i64::from(w.deaths))),
                ("headshots", J::Int(i64::from(w.headshots))),
            ])
        })
        .collect();
    let mut fields = player_fields(p, values);
    fields.push(("weapons", J::Array(weapons)));
    J::Object(fields)
}

/// A player's `file_stats`: what [`player`] gives for the file's values, without weapons,
/// written straight as jsonb.
pub fn file_stats(p: &Player) -> Result<JsonbBytes, String> {
    JsonbBytes::encode(&JsonbValue::Object(player_fields(p, "raw")))
}

/// Every field of a player but the weapons, by name.
fn player_fields<'a>(p: &'a Player, values: &'a str) -> Vec<(&'static str, JsonbValue<'a>)> {
    let e = &p.extended;
    let int = J::opt_int;
    let float = J::opt_float;
    vec![
        ("guid", J::Str(&p.guid)),
        ("guid_raw", J::Str(&p.guid_raw)),
        ("is_bot", J::Bool(p.is_bot)),
        ("name", J::Str(&p.name_raw)),
        ("clean_name", J::Str(&p.name)),
        ("team", J::Int(p.team_code)),
        ("values", J::Str(values)),
        ("kills", J::count(p.kills())),
        ("deaths", J::count(p.deaths())),
        ("hits", J::count(p.hits())),
        ("shots", J::count(p.shots())),
        ("headshots", J::count(p.headshot_hits())),
        (
            "time_played_seconds",
            int(p.time_played_seconds().map(i64::from)),
        ),
        ("dpm", float(p.dpm())),
        ("accuracy", float(p.accuracy())),
        ("kd", J::Float(p.kd())),
        ("efficiency", float(p.efficiency())),
        ("damage_given", int(e.damage_given)),
        ("damage_received", int(e.damage_received)),
        ("team_damage_given", int(e.team_damage_given)),
        ("team_damage_received", int(e.team_damage_received)),
        ("gibs", int(e.gibs)),
        ("self_kills", int(e.self_kills)),
        ("team_kills", int(e.team_kills)),
        ("team_gibs", int(e.team_gibs)),
        ("time_played_percent", float(e.time_played_percent)),
        ("xp", int(e.xp)),
        ("killing_spree", int(e.killing_spree)),
        ("death_spree", int(e.death_spree)),
        ("kill_assists", int(e.kill_assists)),
        ("kill_steals", int(e.kill_steals)),
        ("headshot_kills", int(e.headshot_kills)),
        ("objectives_stolen", int(e.objectives_stolen)),
        ("objectives_returned", int(e.objectives_returned)),
        ("dynamites_planted", int(e.dynamites_planted)),
        ("dynamites_defused", int(e.dynamites_defused)),
        ("times_revived", int(e.times_revived)),
        ("revives_given", int(e.revives_given)),
        ("bullets_fired", int(e.bullets_fired)),
        ("bullets_fired_reliable", J::Bool(e.bullets_fired_reliable)),
        ("time_dead_minutes", float(e.time_dead_minutes)),
        ("time_dead_ratio", float(e.time_dead_ratio)),
        ("tank_meatshield", float(e.tank_meatshield)),
        ("useful_kills", int(e.useful_kills)),
        ("useless_kills", int(e.useless_kills)),
        ("full_self_kills", int(e.full_self_kills)),
        ("repairs_constructions", int(e.repairs_constructions)),
        ("playtime_denied_seconds", int(e.playtime_denied_seconds)),
        (
            "playtime_denied_reliable",
            J::Bool(e.playtime_denied_reliable),
        ),
        ("multikill_2", int(e.multikill_2)),
        ("multikill_3", int(e.multikill_3)),
        ("multikill_4", int(e.multikill_4)),
        ("multikill_5", int(e.multikill_5)),
        ("multikill_6", int(e.multikill_6)),
    ]
}
