//! Parsed rounds as jsonb. The keys are the column names of `et_player_rounds` and
//! `et_weapon_rounds`, so that SQL can store a document with `jsonb_to_recordset`.

use guildstats_engine::et::{DiffStatus, ParsedRound, Player, Round2Result, Team};
use serde_json::{json, Map, Value};

fn team_code(team: Option<Team>) -> Value {
    team.map_or(Value::Null, |t| json!(t.code()))
}

/// The whole file: name facts, header and players (with the file's own values).
pub fn round(round: &ParsedRound) -> Value {
    let header = &round.header;
    let saved = round.file.saved_at;
    json!({
        "file_name": round.file_name,
        "saved_at": format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            saved.year, saved.month, saved.day, saved.hour, saved.minute, saved.second
        ),
        "map": round.file.map,
        "round_number": round.file.round,
        "lua_fields": round.version.map(|v| v.field_count()),
        "header": {
            "server_name": header.server_name,
            "server_name_raw": header.server_name_raw,
            "map": header.map,
            "config": header.config,
            "round": header.round,
            "defender_team": team_code(header.defender),
            "winner_team": team_code(header.winner),
            "time_limit_raw": header.time_limit_raw,
            "time_used_raw": header.time_used_raw,
            "time_limit_seconds": header.time_limit_seconds,
            "time_used_seconds": header.time_used_seconds,
            "playtime_raw": header.playtime_raw,
        },
        "players": round.players.iter().map(|p| player(p, "raw")).collect::<Vec<_>>(),
    })
}

/// A round 2 after the differential: `players` hold this round's values, `file_players` the
/// file's cumulative ones, in the same order.
pub fn round2_players(result: &Round2Result) -> Value {
    let status = |s: DiffStatus| match s {
        DiffStatus::Differenced => "differenced",
        DiffStatus::R2Only => "round2_only",
        DiffStatus::Reset => "reset",
    };
    json!({
        "players": result
            .players
            .iter()
            .map(|p| player(&p.round2_only, status(p.status)))
            .collect::<Vec<_>>(),
        "file_players": result
            .players
            .iter()
            .map(|p| player(&p.cumulative, "raw"))
            .collect::<Vec<_>>(),
        "round1_only_guids": result.r1_only_guids,
    })
}

/// One player: identity, totals over weapons, derived rates, every extended field by name
/// (null where this Lua version does not write it) and the weapons.
pub fn player(p: &Player, values: &str) -> Value {
    let e = &p.extended;
    let mut object = Map::new();
    let mut put = |key: &str, value: Value| {
        object.insert(key.to_string(), value);
    };
    put("guid", json!(p.guid));
    put("guid_raw", json!(p.guid_raw));
    put("is_bot", json!(p.is_bot));
    put("name", json!(p.name_raw));
    put("clean_name", json!(p.name));
    put("team", json!(p.team_code));
    put("values", json!(values));
    put("kills", json!(p.kills()));
    put("deaths", json!(p.deaths()));
    put("hits", json!(p.hits()));
    put("shots", json!(p.shots()));
    put("headshots", json!(p.headshot_hits()));
    put("time_played_seconds", json!(p.time_played_seconds()));
    put("dpm", json!(p.dpm()));
    put("accuracy", json!(p.accuracy()));
    put("kd", json!(p.kd()));
    put("efficiency", json!(p.efficiency()));
    put("damage_given", json!(e.damage_given));
    put("damage_received", json!(e.damage_received));
    put("team_damage_given", json!(e.team_damage_given));
    put("team_damage_received", json!(e.team_damage_received));
    put("gibs", json!(e.gibs));
    put("self_kills", json!(e.self_kills));
    put("team_kills", json!(e.team_kills));
    put("team_gibs", json!(e.team_gibs));
    put("time_played_percent", json!(e.time_played_percent));
    put("xp", json!(e.xp));
    put("killing_spree", json!(e.killing_spree));
    put("death_spree", json!(e.death_spree));
    put("kill_assists", json!(e.kill_assists));
    put("kill_steals", json!(e.kill_steals));
    put("headshot_kills", json!(e.headshot_kills));
    put("objectives_stolen", json!(e.objectives_stolen));
    put("objectives_returned", json!(e.objectives_returned));
    put("dynamites_planted", json!(e.dynamites_planted));
    put("dynamites_defused", json!(e.dynamites_defused));
    put("times_revived", json!(e.times_revived));
    put("revives_given", json!(e.revives_given));
    put("bullets_fired", json!(e.bullets_fired));
    put("bullets_fired_reliable", json!(e.bullets_fired_reliable));
    put("time_dead_minutes", json!(e.time_dead_minutes));
    put("time_dead_ratio", json!(e.time_dead_ratio));
    put("tank_meatshield", json!(e.tank_meatshield));
    put("useful_kills", json!(e.useful_kills));
    put("useless_kills", json!(e.useless_kills));
    put("full_self_kills", json!(e.full_self_kills));
    put("repairs_constructions", json!(e.repairs_constructions));
    put("playtime_denied_seconds", json!(e.playtime_denied_seconds));
    put(
        "playtime_denied_reliable",
        json!(e.playtime_denied_reliable),
    );
    put("multikill_2", json!(e.multikill_2));
    put("multikill_3", json!(e.multikill_3));
    put("multikill_4", json!(e.multikill_4));
    put("multikill_5", json!(e.multikill_5));
    put("multikill_6", json!(e.multikill_6));
    put(
        "weapons",
        Value::Array(
            p.weapons
                .iter()
                .map(|w| {
                    json!({
                        "weapon_index": w.index,
                        "weapon": w.name(),
                        "hits": w.hits,
                        "shots": w.shots,
                        "kills": w.kills,
                        "deaths": w.deaths,
                        "headshots": w.headshots,
                    })
                })
                .collect(),
        ),
    );
    Value::Object(object)
}
