//! build_et_ratings() on the real ET:Legacy files against an independent computation: the maps,
//! sides and play shares listed by plain SQL written another way (straight from et_rounds and
//! et_player_rounds), rated by the Rust engine (itself checked against PyPI openskill in
//! extension/engine/tests/openskill_reference.rs). And files arriving in two batches, with
//! earlier maps arriving late, end with the same ratings as one batch.

use std::collections::BTreeMap;

use guildstats_e2e::et::{cluster_and_fixtures, fixture_names, import_pending, insert_files};
use guildstats_e2e::{db_message, TestDb};
use guildstats_engine::rating::{
    predict_win, rate_two_teams, Outcome, Params, Participant, Rating,
};
use postgres::Client;

fn build(client: &mut Client) -> (i32, i32, String) {
    let row = client
        .query_one(
            "SELECT maps_rated, maps_replayed, status FROM guildstats.build_et_ratings()",
            &[],
        )
        .unwrap_or_else(|e| panic!("build_et_ratings: {}", db_message(&e)));
    (row.get(0), row.get(1), row.get(2))
}

type Ratings = BTreeMap<String, (f64, f64, i32)>;
/// A rated map: match id, outcome, players as (guid, side, share).
type Game = (String, String, Vec<(String, i16, f64)>);
/// Shares per (guid, side) while a map's rows are summed.
type Parts = BTreeMap<(String, i16), f64>;

fn stored_ratings(client: &mut Client) -> Ratings {
    client
        .query(
            "SELECT guid, mu, sigma, maps FROM guildstats.et_ratings",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2), r.get(3))))
        .collect()
}

/// The rated games from the ET tables, not through et_rating_games(): (match, outcome, players
/// as (guid, side, share)) in rating order.
fn independent_games(client: &mut Client) -> Vec<Game> {
    let rows = client
        .query(
            "WITH m AS (
                 SELECT match_id, started_at, outcome, round1_id, round2_id
                 FROM guildstats.et_matches mm
                 WHERE outcome IN ('round1_attackers', 'round2_attackers', 'draw')
                   AND NOT EXISTS (SELECT 1 FROM guildstats.et_rounds r
                                   WHERE r.round_id IN (mm.round1_id, mm.round2_id)
                                     AND r.restart_kind = 'cancelled'))
             SELECT m.match_id, m.outcome, p.guid, p.is_bot,
                    CASE WHEN r.round_number = 1 AND p.team <> r.defender_team THEN 1
                         WHEN r.round_number = 2 AND p.team = r.defender_team THEN 1
                         ELSE 2 END::smallint AS side,
                    coalesce(p.time_played_seconds::float8
                             / nullif(max(p.time_played_seconds) OVER (PARTITION BY p.round_id), 0), 1.0) AS part
             FROM m
             JOIN guildstats.et_rounds r ON r.round_id IN (m.round1_id, m.round2_id)
             JOIN guildstats.et_player_rounds p ON p.round_id = r.round_id
             WHERE p.team IN (1, 2)
             ORDER BY m.started_at, m.match_id",
            &[],
        )
        .unwrap_or_else(|e| panic!("listing games: {}", db_message(&e)));
    let mut games: Vec<(String, String, Parts)> = Vec::new();
    for row in &rows {
        let (match_id, outcome): (String, String) = (row.get(0), row.get(1));
        if games.last().is_none_or(|g| g.0 != match_id) {
            games.push((match_id, outcome, BTreeMap::new()));
        }
        if row.get::<_, bool>(3) {
            continue;
        }
        let part: f64 = row.get(5);
        *games
            .last_mut()
            .unwrap()
            .2
            .entry((row.get(2), row.get(4)))
            .or_default() += part / 2.0;
    }
    games
        .into_iter()
        .filter_map(|(match_id, outcome, parts)| {
            // One side per player: the one they played longer (side 1 on a tie).
            let mut best: BTreeMap<String, (i16, f64)> = BTreeMap::new();
            for ((guid, side), share) in parts {
                let e = best.entry(guid).or_insert((side, share));
                if share > e.1 {
                    *e = (side, share);
                }
            }
            let players: Vec<(String, i16, f64)> = best
                .into_iter()
                .filter(|(_, (_, share))| *share > 0.0)
                .map(|(g, (side, share))| (g, side, share.min(1.0)))
                .collect();
            let both = players.iter().any(|p| p.1 == 1) && players.iter().any(|p| p.1 == 2);
            both.then_some((match_id, outcome, players))
        })
        .collect()
}

#[test]
fn real_maps_rate_as_the_engine_rates_them_and_two_batches_equal_one() {
    let Some((cluster, dir)) = cluster_and_fixtures("et_ratings") else {
        return;
    };
    let names = fixture_names(&dir);

    let one_db = TestDb::create(&cluster, "et_ratings_one");
    let mut one = one_db.connect();
    insert_files(&mut one, &dir, &names);
    import_pending(&mut one);
    let (rated, replayed, status) = build(&mut one);
    assert_eq!(status, "ok");
    assert_eq!(replayed, 0);
    assert_eq!(
        build(&mut one),
        (0, 0, "ok".to_string()),
        "a second build has nothing to do"
    );

    // The engine on the independently listed games.
    let games = independent_games(&mut one);
    assert_eq!(games.len(), rated as usize, "maps rated");
    assert!(
        games.len() > 100,
        "the fixtures hold {} rateable maps",
        games.len()
    );
    let params = Params::default();
    let mut expected: Ratings = BTreeMap::new();
    let mut weighted = 0;
    for (match_id, outcome, players) in &games {
        let team = |side: i16, expected: &Ratings| -> Vec<Participant> {
            players
                .iter()
                .filter(|p| p.1 == side)
                .map(|(g, _, share)| {
                    let (mu, sigma, _) =
                        expected
                            .get(g)
                            .copied()
                            .unwrap_or((params.mu, params.sigma, 0));
                    Participant {
                        rating: Rating { mu, sigma },
                        weight: *share,
                    }
                })
                .collect()
        };
        weighted += players.iter().filter(|p| p.2 < 1.0).count();
        let outcome = match outcome.as_str() {
            "round1_attackers" => Outcome::FirstWins,
            "round2_attackers" => Outcome::SecondWins,
            _ => Outcome::Draw,
        };
        let (a, b) = (team(1, &expected), team(2, &expected));
        let [na, nb] =
            rate_two_teams(&params, &a, &b, outcome).unwrap_or_else(|e| panic!("{match_id}: {e}"));
        let guids = |side: i16| {
            players
                .iter()
                .filter(move |p| p.1 == side)
                .map(|p| p.0.clone())
        };
        for (g, r) in guids(1).zip(na).chain(guids(2).zip(nb)) {
            let maps = expected.get(&g).map_or(0, |e| e.2);
            expected.insert(g, (r.mu, r.sigma, maps + 1));
        }
    }
    assert!(
        weighted > 0,
        "some players played part of a map, so the weights are exercised"
    );
    let stored = stored_ratings(&mut one);
    assert_eq!(
        stored.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (guid, (mu, sigma, maps)) in &expected {
        let s = stored[guid];
        assert!(
            (s.0 - mu).abs() < 1e-9 && (s.1 - sigma).abs() < 1e-9,
            "{guid}: stored {s:?}, engine {mu} {sigma}"
        );
        assert_eq!(s.2, *maps, "{guid}: maps");
    }

    // Two batches: every third file first, the rest later, so maps between the first batch's
    // maps arrive late and force a replay.
    let two_db = TestDb::create(&cluster, "et_ratings_two");
    let mut two = two_db.connect();
    let (first, second): (Vec<_>, Vec<_>) = names
        .iter()
        .cloned()
        .enumerate()
        .partition(|(i, _)| i % 3 == 0);
    let strip = |v: Vec<(usize, String)>| v.into_iter().map(|(_, n)| n).collect::<Vec<_>>();
    insert_files(&mut two, &dir, &strip(first));
    import_pending(&mut two);
    let (rated_first, _, status) = build(&mut two);
    assert_eq!(status, "ok");
    assert!(rated_first > 0, "the first batch holds complete maps");
    insert_files(&mut two, &dir, &strip(second));
    import_pending(&mut two);
    let (_, replayed, status) = build(&mut two);
    assert_eq!(status, "ok");
    assert!(replayed > 0, "late earlier maps replay what follows them");
    let later = stored_ratings(&mut two);
    assert_eq!(later.len(), stored.len());
    for (guid, s) in &stored {
        let l = later[guid];
        assert!(
            (l.0 - s.0).abs() < 1e-9 && (l.1 - s.1).abs() < 1e-9 && l.2 == s.2,
            "{guid}: two batches {l:?}, one batch {s:?}"
        );
    }
    let history = |c: &mut Client| -> i64 {
        c.query_one("SELECT count(*) FROM guildstats.et_rating_history", &[])
            .unwrap()
            .get(0)
    };
    assert_eq!(history(&mut two), history(&mut one));
}

/// et_balance_teams() against every split tried in Rust with the engine's predict_win: the
/// exhaustive search finds the closest chance; the greedy one returns a valid split whose
/// stated chance is the engine's.
#[test]
fn balanced_teams_are_the_closest_split() {
    let Some((cluster, dir)) = cluster_and_fixtures("et_ratings_balance") else {
        return;
    };
    let db = TestDb::create(&cluster, "et_ratings_balance");
    let mut client = db.connect();
    insert_files(&mut client, &dir, &fixture_names(&dir));
    import_pending(&mut client);
    build(&mut client);
    let ratings = stored_ratings(&mut client);
    let mut regulars: Vec<(&String, i32)> = ratings.iter().map(|(g, r)| (g, r.2)).collect();
    regulars.sort_by_key(|&(g, maps)| (-maps, g.clone()));
    let params = Params::default();
    let rating = |g: &String| Rating {
        mu: ratings[g].0,
        sigma: ratings[g].1,
    };

    for (n, method) in [(8, "exhaustive"), (9, "exhaustive"), (15, "greedy")] {
        let guids: Vec<String> = regulars.iter().take(n).map(|(g, _)| (*g).clone()).collect();
        let row = client
            .query_one(
                "SELECT team_a, team_b, win_probability, method FROM guildstats.et_balance_teams($1)",
                &[&guids],
            )
            .unwrap_or_else(|e| panic!("et_balance_teams: {}", db_message(&e)));
        let (a, b): (Vec<String>, Vec<String>) = (row.get(0), row.get(1));
        let (p, m): (f64, String) = (row.get(2), row.get(3));
        assert_eq!(m, method);
        let mut all: Vec<String> = a.iter().chain(&b).cloned().collect();
        all.sort();
        let mut want = guids.clone();
        want.sort();
        assert_eq!(all, want, "{n} players: every GUID in exactly one team");
        assert!(
            a.len().abs_diff(b.len()) <= 1,
            "{n} players: sizes {} and {}",
            a.len(),
            b.len()
        );
        let ra: Vec<Rating> = a.iter().map(rating).collect();
        let rb: Vec<Rating> = b.iter().map(rating).collect();
        assert!(
            (p - predict_win(&params, &ra, &rb)).abs() < 1e-9,
            "{n} players: stated chance {p}"
        );
        if method == "exhaustive" {
            let mut closest = f64::MAX;
            for mask in 0u32..(1 << n) {
                let size = mask.count_ones() as usize;
                if size != n / 2 && size != n.div_ceil(2) {
                    continue;
                }
                let (x, y): (Vec<Rating>, Vec<Rating>) = {
                    let (x, y): (Vec<_>, Vec<_>) = guids
                        .iter()
                        .enumerate()
                        .partition(|(i, _)| mask & (1 << i) != 0);
                    (
                        x.into_iter().map(|(_, g)| rating(g)).collect(),
                        y.into_iter().map(|(_, g)| rating(g)).collect(),
                    )
                };
                closest = closest.min((predict_win(&params, &x, &y) - 0.5).abs());
            }
            assert!(
                ((p - 0.5).abs() - closest).abs() < 1e-9,
                "{n} players: {p} but a split gives 0.5 ± {closest}"
            );
        }
    }
}
