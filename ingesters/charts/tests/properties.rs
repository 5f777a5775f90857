//! Random documents never make the renderer panic: every answer is a valid PNG of the promised
//! width, or `NoData` exactly when there is nothing to draw. Names are any Unicode up to 600
//! characters, numbers anything JSON can hold (and, through the typed API, NaN and infinities).

mod common;

use common::Image;
use guildstats_charts::model::{
    LastSession, MapResult, PlayerLine, SessionForm, Stats, Voice, VoiceWeek,
};
use guildstats_charts::{
    last_session_png, render_last_session, render_stats_form, render_voice_weekly, stats_form_png,
    voice_weekly_png, ChartError, Theme,
};
use proptest::prelude::*;
use serde_json::{json, Value};

/// Any number JSON can carry, or null, or the field left out (`None`).
fn number() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        Just(None),
        Just(Some(Value::Null)),
        any::<i64>().prop_map(|n| Some(json!(n))),
        (-1000.0f64..100_000.0).prop_map(|n| Some(json!(n))),
        prop::num::f64::NORMAL.prop_map(|n| Some(json!(n))),
        Just(Some(json!(0))),
    ]
}

fn text(max: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        prop::string::string_regex(&format!(".{{0,{max}}}")).unwrap(),
        prop::string::string_regex("[a-zA-Z0-9 .^_-]{0,20}").unwrap(),
    ]
}

fn object(fields: Vec<(&'static str, Option<Value>)>) -> Value {
    Value::Object(
        fields
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
            .collect(),
    )
}

fn player() -> impl Strategy<Value = Value> {
    (
        text(600),
        prop_oneof![
            Just(json!("a")),
            Just(json!("b")),
            Just(Value::Null),
            text(5).prop_map(Value::from)
        ],
        prop::collection::vec(number(), 9),
    )
        .prop_map(|(name, team, n)| {
            let keys = [
                "kills",
                "deaths",
                "kd",
                "dpm",
                "damage_given",
                "damage_received",
                "gibs",
                "time_played_s",
                "guid",
            ];
            let mut fields: Vec<(&str, Option<Value>)> = keys.iter().copied().zip(n).collect();
            fields.pop();
            fields.push(("name", Some(json!(name))));
            fields.push(("team", Some(team)));
            object(fields)
        })
}

fn map() -> impl Strategy<Value = Value> {
    (
        text(100),
        text(100),
        number(),
        number(),
        prop_oneof![Just("a"), Just("b"), Just("draw"), Just("x")],
    )
        .prop_map(|(map, result, r1, r2, winner)| {
            object(vec![
                ("map", Some(json!(map))),
                ("result", Some(json!(result))),
                ("round1_time_s", r1),
                ("round2_time_s", r2),
                ("winner_team", Some(json!(winner))),
            ])
        })
}

fn assert_png(png: &[u8], width: u32, min_height: u32) {
    let image = Image::decode(png);
    assert_eq!(image.width, width);
    assert!(image.height >= min_height);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn last_session_documents(
        players in prop::collection::vec(player(), 0..40),
        maps in prop::collection::vec(map(), 0..14),
        server in text(300),
        mvp in text(600),
        light in any::<bool>(),
    ) {
        let empty = players.is_empty() && maps.is_empty();
        let doc = json!({"ok": true, "players": players, "maps": maps,
                         "session": {"server": server, "started_at": "2026-11-28T20:05:00+01:00", "rounds": 6},
                         "mvp": {"name": mvp, "reason": "random"}});
        let theme = if light { Theme::Light } else { Theme::Dark };
        match last_session_png(&doc, theme) {
            Ok(png) => { prop_assert!(!empty); assert_png(&png, 1200, 800); }
            Err(ChartError::NoData(_)) => prop_assert!(empty),
            Err(other) => prop_assert!(false, "unexpected {other:?}"),
        }
    }

    #[test]
    fn stats_documents(
        sessions in prop::collection::vec((text(40), number(), number()), 0..30),
        name in text(600),
    ) {
        let n = sessions.len();
        let sessions: Vec<Value> = sessions
            .into_iter()
            .map(|(date, kd, dpm)| object(vec![("date", Some(json!(date))), ("kd", kd), ("dpm", dpm)]))
            .collect();
        let doc = json!({"ok": true, "player": {"name": name}, "sessions": sessions,
                         "form": {"last_30_days": {"kd": 1.2, "dpm": null}, "before": null}});
        match stats_form_png(&doc, Theme::Dark) {
            Ok(png) => { prop_assert!(n > 0); assert_png(&png, 1200, 640); }
            Err(ChartError::NoData(_)) => prop_assert_eq!(n, 0),
            Err(other) => prop_assert!(false, "unexpected {other:?}"),
        }
    }

    #[test]
    fn voice_documents(
        weeks in prop::collection::vec((text(30), number()), 0..60),
        member in proptest::option::of(text(600)),
        totals in prop::collection::vec(number(), 5),
    ) {
        let n = weeks.len();
        let weeks: Vec<Value> = weeks
            .into_iter()
            .map(|(start, hours)| object(vec![("week_start", Some(json!(start))), ("hours", hours)]))
            .collect();
        let keys = ["hours_week", "hours_month", "rank_week", "rank_month", "members_ranked"];
        let mut doc = object(keys.iter().copied().zip(totals).collect());
        doc["weeks"] = json!(weeks);
        match voice_weekly_png(&doc, member.as_deref(), Theme::Light) {
            Ok(png) => { prop_assert!(n > 0); assert_png(&png, 1200, 600); }
            Err(ChartError::NoData(_)) => prop_assert_eq!(n, 0),
            Err(other) => prop_assert!(false, "unexpected {other:?}"),
        }
    }

    /// The typed API takes any f64, NaN and infinities included.
    #[test]
    fn typed_documents_with_any_float(values in prop::collection::vec(prop::num::f64::ANY, 1..30)) {
        let players = values.iter().map(|v| PlayerLine {
            name: format!("{v}"), team: Some("a".into()), kills: Some(*v), deaths: Some(*v), kd: Some(*v),
            dpm: Some(-*v), damage_given: Some(*v), damage_received: Some(v * 2.0), gibs: Some(*v),
            time_played_s: Some(*v),
        }).collect();
        let maps = values.iter().take(5).map(|v| MapResult {
            round1_time_s: Some(*v), round2_time_s: Some(-*v), winner_team: Some("a".into()), ..MapResult::default()
        }).collect();
        let doc = LastSession { players, maps, ..LastSession::default() };
        assert_png(&render_last_session(&doc, Theme::Dark).unwrap(), 1200, 800);
        let sessions = values.iter().map(|v| SessionForm { kd: Some(*v), dpm: Some(*v), ..SessionForm::default() }).collect();
        assert_png(&render_stats_form(&Stats { sessions, ..Stats::default() }, Theme::Light).unwrap(), 1200, 640);
        let weeks = values.iter().map(|v| VoiceWeek { hours: Some(*v), ..VoiceWeek::default() }).collect();
        let voice = Voice { weeks, hours_week: values.first().copied(), ..Voice::default() };
        assert_png(&render_voice_weekly(&voice, Some("x"), Theme::Dark).unwrap(), 1200, 600);
    }
}
