//! Bad and odd input: every case gives an image or an error the bot can show, never a panic.

mod common;

use common::{fixture, Image};
use guildstats_charts::model::{LastSession, PlayerLine, SessionForm, Stats, Voice, VoiceWeek};
use guildstats_charts::{
    last_session_png, render_last_session, render_stats_form, render_voice_weekly, stats_form_png,
    voice_weekly_png, ChartError, Theme,
};
use serde_json::json;

#[test]
fn an_answer_that_is_not_ok_gives_its_error_text() {
    let doc = json!({"ok": false, "error": "no ET rounds recorded yet"});
    assert_eq!(
        last_session_png(&doc, Theme::Dark),
        Err(ChartError::NotOk("no ET rounds recorded yet".into()))
    );
    let ambiguous = json!({"ok": false, "error": "2 players match \"ghost\"", "candidates": [{"name": "Ghost"}]});
    let err = stats_form_png(&ambiguous, Theme::Dark).unwrap_err();
    assert_eq!(err.to_string(), "2 players match \"ghost\"");
    let bare = json!({"ok": false});
    assert!(
        matches!(voice_weekly_png(&bare, None, Theme::Dark), Err(ChartError::NotOk(t)) if !t.is_empty())
    );
}

#[test]
fn nothing_to_draw_is_no_data() {
    let empty = json!({"ok": true, "players": [], "maps": []});
    assert!(matches!(
        last_session_png(&empty, Theme::Dark),
        Err(ChartError::NoData(_))
    ));
    let nulls = json!({"ok": true, "players": null, "maps": null, "session": null, "mvp": null});
    assert!(matches!(
        last_session_png(&nulls, Theme::Dark),
        Err(ChartError::NoData(_))
    ));
    let stats = json!({"ok": true, "player": {"name": "Rook"}, "sessions": []});
    assert_eq!(
        stats_form_png(&stats, Theme::Dark),
        Err(ChartError::NoData("no sessions to draw for Rook".into()))
    );
    let voice = json!({"ok": true, "weeks": []});
    assert!(matches!(
        voice_weekly_png(&voice, None, Theme::Light),
        Err(ChartError::NoData(_))
    ));
}

#[test]
fn a_wrong_type_names_the_field() {
    let doc = json!({"ok": true, "players": [{"name": "Vex", "kills": 3}, {"name": "Rook", "kills": "12"}]});
    let err = last_session_png(&doc, Theme::Dark).unwrap_err();
    match &err {
        ChartError::BadDocument(text) => {
            assert!(text.contains("command_last_session"), "{text}");
            assert!(text.contains("players[1].kills"), "{text}");
        }
        other => panic!("expected BadDocument, got {other:?}"),
    }
    assert!(matches!(
        stats_form_png(&json!([1, 2]), Theme::Dark),
        Err(ChartError::BadDocument(_))
    ));
    assert!(matches!(
        voice_weekly_png(&json!(null), None, Theme::Dark),
        Err(ChartError::BadDocument(_))
    ));
}

#[test]
fn unknown_fields_and_nulls_are_tolerated() {
    let doc = json!({"ok": true, "new_field": {"x": 1},
        "players": [{"name": null, "kills": null, "dpm": 12.5, "extra": [1, 2]}],
        "maps": [{"map": "supply", "winner_team": null, "round1_time_s": null, "future": true}]});
    let image = Image::decode(&last_session_png(&doc, Theme::Dark).unwrap());
    assert_eq!((image.width, image.height), (1200, 800));
    let voice = json!({"ok": true, "weeks": [{"week_start": null, "hours": null}, {"hours": 0}]});
    let image = Image::decode(&voice_weekly_png(&voice, Some(""), Theme::Dark).unwrap());
    assert_eq!((image.width, image.height), (1200, 600));
}

fn player(i: usize, name: String) -> serde_json::Value {
    json!({"name": name, "team": if i.is_multiple_of(2) { "a" } else { "b" }, "kills": 60 - i, "deaths": 20,
           "kd": 1.5, "dpm": 250.0, "damage_given": 9000, "damage_received": 8000, "time_played_s": 3000})
}

#[test]
fn many_players_make_the_image_taller_up_to_a_cap() {
    let players =
        |n: usize| -> Vec<_> { (0..n).map(|i| player(i, format!("player {i}"))).collect() };
    let size = |n: usize| {
        let image = Image::decode(
            &last_session_png(&json!({"ok": true, "players": players(n)}), Theme::Dark).unwrap(),
        );
        (image.width, image.height)
    };
    // 800 px holds 17 rows of 17 px in each panel (346 - 44 chrome = 302 px).
    assert_eq!(size(12), (1200, 800));
    assert_eq!(size(17), (1200, 800));
    // 24 players: panels of 44 + 24 * 17 = 452 px, the image 72 + 3 * 12 + 2 * 452.
    assert_eq!(size(24), (1200, 1012));
    // Past 32 players the rest are left out (the header says "top 32 of 40").
    assert_eq!(size(40), size(32));
    assert_eq!(size(32), (1200, 72 + 36 + 2 * (44 + 32 * 17)));
}

#[test]
fn long_names_and_odd_characters_are_cut_not_fatal() {
    let long = "W".repeat(500);
    let odd = "tab\there\nnew line\u{0}nul ∑ 漢字 🎯 \u{202e}rtl";
    let mut doc = fixture("last_session.json");
    doc["players"][0]["name"] = json!(long);
    doc["players"][1]["name"] = json!(odd);
    doc["mvp"]["name"] = json!(long);
    doc["maps"][0]["map"] = json!(long);
    doc["session"]["server"] = json!(long);
    let image = Image::decode(&last_session_png(&doc, Theme::Dark).unwrap());
    assert_eq!((image.width, image.height), (1200, 800));
    let mut stats = fixture("stats.json");
    stats["player"]["name"] = json!(long);
    Image::decode(&stats_form_png(&stats, Theme::Light).unwrap());
    Image::decode(&voice_weekly_png(&fixture("voice.json"), Some(&long), Theme::Dark).unwrap());
}

#[test]
fn nan_infinite_and_huge_values_are_drawn_bounded() {
    // JSON cannot carry NaN, but the typed API can; and JSON can carry 1e308.
    let weird = [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        1e308,
        -1e308,
        -5.0,
        0.0,
        f64::MIN_POSITIVE,
    ];
    let players: Vec<PlayerLine> = weird
        .iter()
        .enumerate()
        .map(|(i, v)| PlayerLine {
            name: format!("p{i}"),
            kills: Some(*v),
            deaths: Some(*v),
            kd: Some(*v),
            dpm: Some(*v),
            damage_given: Some(*v),
            damage_received: Some(-*v),
            time_played_s: Some(*v),
            ..PlayerLine::default()
        })
        .collect();
    let doc = LastSession {
        players,
        ..LastSession::default()
    };
    Image::decode(&render_last_session(&doc, Theme::Dark).unwrap());
    let sessions = weird
        .iter()
        .map(|v| SessionForm {
            kd: Some(*v),
            dpm: Some(*v),
            ..SessionForm::default()
        })
        .collect();
    Image::decode(
        &render_stats_form(
            &Stats {
                sessions,
                ..Stats::default()
            },
            Theme::Dark,
        )
        .unwrap(),
    );
    let weeks = weird
        .iter()
        .map(|v| VoiceWeek {
            hours: Some(*v),
            ..VoiceWeek::default()
        })
        .collect();
    let voice = Voice {
        weeks,
        hours_week: Some(f64::NAN),
        rank_week: Some(f64::INFINITY),
        ..Voice::default()
    };
    Image::decode(&render_voice_weekly(&voice, None, Theme::Light).unwrap());
    let huge = json!({"ok": true, "weeks": [{"week_start": "2026-10-05", "hours": 1e308}, {"hours": 1e308}]});
    Image::decode(&voice_weekly_png(&huge, None, Theme::Dark).unwrap());
}

#[test]
fn themes_parse_from_configuration_words() {
    assert_eq!(" Light ".parse::<Theme>(), Ok(Theme::Light));
    assert_eq!("dark".parse::<Theme>(), Ok(Theme::Dark));
    assert!("blue".parse::<Theme>().unwrap_err().contains("blue"));
    assert_eq!(Theme::default(), Theme::Dark);
}
