//! Players and weapons as typed columns, for the batch import: one array per column, stored
//! with `INSERT ... SELECT FROM unnest(...)`. Cheaper than jsonb, whose numbers are numerics
//! that must be parsed, printed and parsed again on the way into integer columns.

use guildstats_engine::et::Player;
use pgrx::datum::DatumWithOid;
use pgrx::JsonB;
use serde_json::Value;

fn int(value: Option<i64>) -> Option<i32> {
    value.and_then(|v| i32::try_from(v).ok())
}

fn count(value: u64) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
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
    file_stats: Vec<JsonB>,
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
        p.time_played_seconds().and_then(|s| i32::try_from(s).ok()),
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
    pub fn push(&mut self, round_id: i64, p: &Player, values_basis: &str, file_stats: Value) {
        self.round_id.push(round_id);
        self.guid.push(p.guid.clone());
        self.name.push(p.name_raw.clone());
        self.clean_name.push(p.name.clone());
        self.is_bot.push(p.is_bot);
        self.team
            .push(i16::try_from(p.team_code).unwrap_or_default());
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
        self.file_stats.push(JsonB(file_stats));
    }

    pub fn len(&self) -> usize {
        self.round_id.len()
    }

    /// The statement and its arguments. The order of the unnest arguments is the table's.
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
    SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::boolean[],
        $6::smallint[], $7::text[], $8::integer[], $9::integer[], $10::integer[], $11::integer[],
        $12::integer[], $13::integer[], $14::integer[], $15::integer[], $16::integer[],
        $17::integer[], $18::integer[], $19::integer[], $20::integer[], $21::integer[],
        $22::real[], $23::integer[], $24::integer[], $25::integer[], $26::integer[],
        $27::integer[], $28::integer[], $29::integer[], $30::integer[], $31::integer[],
        $32::integer[], $33::integer[], $34::integer[], $35::integer[], $36::integer[],
        $37::integer[], $38::integer[], $39::integer[], $40::integer[], $41::integer[],
        $42::integer[], $43::integer[], $44::integer[], $45::real[], $46::double precision[],
        $47::double precision[], $48::double precision[], $49::double precision[], $50::jsonb[])";

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
             SELECT * FROM unnest($1::bigint[], $2::text[], $3::smallint[], $4::text[],
                 $5::integer[], $6::integer[], $7::integer[], $8::integer[], $9::integer[])",
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
