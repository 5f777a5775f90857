//! Weng–Lin skill ratings (Weng & Lin 2011, "A Bayesian Approximation Method for Online Ranking",
//! Algorithm 4: the Plackett–Luce model), for one game between two teams, as the `openskill`
//! package computes them, plus a per-player weight for the share of the game a player played.
//!
//! With every weight 1 the numbers are those of `openskill` 6.0.2's `PlackettLuce().rate()`
//! (tests/openskill_reference.rs checks this to 1e-9). `openskill`'s own `weights` argument
//! rescales each team's weights to the range 1..2 and divides the update of a losing player by
//! it, which is no share of play; ours is the plain reading instead: a player who played share
//! `w` of the map counts `w` times in the team's strength and gets `w` times the update.

/// The model's constants; `Default` gives `openskill`'s defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Params {
    /// Starting mean of a new player.
    pub mu: f64,
    /// Starting standard deviation of a new player.
    pub sigma: f64,
    /// Performance noise of one game.
    pub beta: f64,
    /// Floor of the factor a game may shrink a variance by, so sigma never reaches 0.
    pub kappa: f64,
    /// Added to every sigma before a game (in quadrature), so ratings can move again after a
    /// long history.
    pub tau: f64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            mu: 25.0,
            sigma: 25.0 / 3.0,
            beta: 25.0 / 6.0,
            kappa: 0.0001,
            tau: 25.0 / 300.0,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rating {
    pub mu: f64,
    pub sigma: f64,
}

impl Rating {
    /// A new player's rating.
    pub fn new(params: &Params) -> Self {
        Rating {
            mu: params.mu,
            sigma: params.sigma,
        }
    }

    /// The conservative estimate mu - 3 sigma that leaderboards sort by.
    pub fn ordinal(&self) -> f64 {
        self.mu - 3.0 * self.sigma
    }
}

/// One player in one game: their rating before it, and the share of the game they played.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Participant {
    pub rating: Rating,
    /// In (0, 1]: 1 for the whole map.
    pub weight: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    FirstWins,
    SecondWins,
    Draw,
}

#[derive(Clone, Debug, PartialEq)]
pub enum RatingError {
    EmptyTeam,
    BadWeight {
        team: usize,
        player: usize,
        weight: f64,
    },
    BadRating {
        team: usize,
        player: usize,
        mu: f64,
        sigma: f64,
    },
}

impl std::fmt::Display for RatingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RatingError::EmptyTeam => write!(f, "a team has no players"),
            RatingError::BadWeight {
                team,
                player,
                weight,
            } => write!(
                f,
                "team {} player {}: weight {} is not in (0, 1]",
                team + 1,
                player + 1,
                weight
            ),
            RatingError::BadRating {
                team,
                player,
                mu,
                sigma,
            } => write!(
                f,
                "team {} player {}: rating mu {} sigma {} is not finite with sigma > 0",
                team + 1,
                player + 1,
                mu,
                sigma
            ),
        }
    }
}

impl std::error::Error for RatingError {}

fn check(teams: [&[Participant]; 2]) -> Result<(), RatingError> {
    for (t, team) in teams.iter().enumerate() {
        if team.is_empty() {
            return Err(RatingError::EmptyTeam);
        }
        for (p, player) in team.iter().enumerate() {
            let w = player.weight;
            if !(w > 0.0 && w <= 1.0) {
                return Err(RatingError::BadWeight {
                    team: t,
                    player: p,
                    weight: w,
                });
            }
            let r = player.rating;
            if !(r.mu.is_finite() && r.sigma.is_finite() && r.sigma > 0.0) {
                return Err(RatingError::BadRating {
                    team: t,
                    player: p,
                    mu: r.mu,
                    sigma: r.sigma,
                });
            }
        }
    }
    Ok(())
}

/// The new ratings of both teams' players, in the order given.
pub fn rate_two_teams(
    params: &Params,
    first: &[Participant],
    second: &[Participant],
    outcome: Outcome,
) -> Result<[Vec<Rating>; 2], RatingError> {
    check([first, second])?;
    let tau_sq = params.tau * params.tau;
    let teams: [Vec<(f64, f64, f64)>; 2] = [first, second].map(|team| {
        team.iter()
            .map(|p| {
                let r = p.rating;
                (r.mu, r.sigma * r.sigma + tau_sq, p.weight)
            })
            .collect()
    });
    // Team strength: sums over players, each counted by the share they played.
    let team_mu = teams
        .each_ref()
        .map(|t| t.iter().map(|&(mu, _, w)| w * mu).sum::<f64>());
    let team_var = teams
        .each_ref()
        .map(|t| t.iter().map(|&(_, var, w)| w * var).sum::<f64>());
    // Rank 0 is best; a draw gives both rank 0.
    let rank = match outcome {
        Outcome::FirstWins => [0, 1],
        Outcome::SecondWins => [1, 0],
        Outcome::Draw => [0, 0],
    };
    let beta_sq = params.beta * params.beta;
    let c = (team_var[0] + beta_sq + team_var[1] + beta_sq).sqrt();
    let e = team_mu.map(|mu| (mu / c).exp());
    // sum_q: over the teams ranked no better than q; a_q: how many teams share q's rank.
    let sum_q: [f64; 2] =
        std::array::from_fn(|q| (0..2).filter(|&s| rank[s] >= rank[q]).map(|s| e[s]).sum());
    let a: [f64; 2] =
        std::array::from_fn(|q| (0..2).filter(|&s| rank[s] == rank[q]).count() as f64);

    let mut out: [Vec<Rating>; 2] = [Vec::new(), Vec::new()];
    for i in 0..2 {
        let mut omega = 0.0;
        let mut delta = 0.0;
        for q in (0..2).filter(|&q| rank[q] <= rank[i]) {
            let quotient = e[i] / sum_q[q];
            delta += quotient * (1.0 - quotient) / a[q];
            omega += if q == i { 1.0 - quotient } else { -quotient } / a[q];
        }
        omega *= team_var[i] / c;
        let gamma = team_var[i].sqrt() / c;
        delta *= gamma * team_var[i] / (c * c);
        out[i] = teams[i]
            .iter()
            .map(|&(mu, var, w)| {
                let share = w * var / team_var[i];
                Rating {
                    mu: mu + share * omega,
                    sigma: var.sqrt() * (1.0 - share * delta).max(params.kappa).sqrt(),
                }
            })
            .collect();
    }
    Ok(out)
}

/// The probability that `first` beats `second`: Phi((mu1 - mu2) / sqrt(2 beta^2 + var1 + var2))
/// with full-time players, as `openskill`'s `predict_win` for two teams.
pub fn predict_win(params: &Params, first: &[Rating], second: &[Rating]) -> f64 {
    let sum = |t: &[Rating]| {
        t.iter()
            .fold((0.0, 0.0), |(m, v), r| (m + r.mu, v + r.sigma * r.sigma))
    };
    let (m1, v1) = sum(first);
    let (m2, v2) = sum(second);
    normal_cdf((m1 - m2) / (2.0 * params.beta * params.beta + v1 + v2).sqrt())
}

/// The standard normal distribution function, to about 1e-15 absolute.
///
/// Rust's std has no erf. The series erf(t) = 2/sqrt(pi) exp(-t^2) sum 2^n t^(2n+1) / (2n+1)!!
/// has only positive terms, so no cancellation; beyond |t| = 6, 1 - erf(t) < 3e-17. The SQL
/// side (sql/extension/et_ratings.sql, _et_normal_cdf) computes it the same way: PostgreSQL 15
/// has no erf either.
pub fn normal_cdf(z: f64) -> f64 {
    if z.is_nan() {
        return f64::NAN;
    }
    let t = z / std::f64::consts::SQRT_2;
    let erf = if t.abs() >= 6.0 {
        t.signum()
    } else {
        let t_sq = t * t;
        let mut term = t;
        let mut sum = t;
        let mut n = 0.0;
        while term.abs() > sum.abs() * 1e-17 {
            n += 1.0;
            term *= 2.0 * t_sq / (2.0 * n + 1.0);
            sum += term;
        }
        2.0 / std::f64::consts::PI.sqrt() * (-t_sq).exp() * sum
    };
    0.5 * (1.0 + erf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(mu: f64, sigma: f64) -> Participant {
        Participant {
            rating: Rating { mu, sigma },
            weight: 1.0,
        }
    }

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }

    /// One against one, new players, no tau: worked by hand from Algorithm 4.
    /// var = (25/3)^2 = 625/9 each; c^2 = 2 (625/9 + 625/36) = 3125/18, c = 13.1761...
    /// Equal mu: e1 = e2, so the quotient p = 1/2 everywhere.
    /// Winner (rank 0): only q = winner counts, p = e1 / (e1 + e2) = 1/2, so omega = var/c * 1/2
    /// and delta = gamma * var/c^2 * 1/4 with gamma = sqrt(var)/c. Loser: q = winner gives
    /// omega -= 1/2, delta += 1/4; q = loser has p = e2/e2 = 1 and adds nothing. So the loser
    /// mirrors the winner's mean change and shrinks its sigma alike.
    #[test]
    fn one_on_one_by_hand() {
        let params = Params {
            tau: 0.0,
            ..Params::default()
        };
        let [w, l] = rate_two_teams(
            &params,
            &[full(25.0, 25.0 / 3.0)],
            &[full(25.0, 25.0 / 3.0)],
            Outcome::FirstWins,
        )
        .unwrap();
        let var: f64 = 625.0 / 9.0;
        let c = (3125.0f64 / 18.0).sqrt();
        let gamma = var.sqrt() / c;
        let omega = var / c * 0.5;
        let delta = gamma * var / (c * c) * 0.25;
        close(w[0].mu, 25.0 + omega);
        close(l[0].mu, 25.0 - omega);
        close(w[0].sigma, (var * (1.0 - delta)).sqrt());
        close(l[0].sigma, (var * (1.0 - delta)).sqrt());
        // The same case in openskill 6.0.2 (tau=0): PlackettLuce(tau=0).rate([[a], [b]]).
        assert!((w[0].mu - 27.63523138347365).abs() < 1e-9);
        assert!((w[0].sigma - 8.065506316323548).abs() < 1e-9);
    }

    /// A draw between equals moves no mean, and both sigmas shrink alike.
    #[test]
    fn draw_between_equals() {
        let params = Params::default();
        let p = full(30.0, 4.0);
        let [a, b] = rate_two_teams(&params, &[p, p], &[p, p], Outcome::Draw).unwrap();
        for r in a.iter().chain(&b) {
            close(r.mu, 30.0);
            assert!(r.sigma < (16.0f64 + params.tau * params.tau).sqrt());
        }
        close(a[0].sigma, b[1].sigma);
    }

    /// A half-time player counts half in the team and gets half the share of the update.
    /// Two players with equal var v in a team: full-time shares are v / 2v = 1/2 each; with
    /// weights 1 and 1/2 the team var is 1.5 v, shares 2/3 and 1/3.
    #[test]
    fn half_time_player_gets_half_the_update() {
        let params = Params {
            tau: 0.0,
            ..Params::default()
        };
        let s = 25.0 / 3.0;
        let team = [
            full(25.0, s),
            Participant {
                weight: 0.5,
                ..full(25.0, s)
            },
        ];
        let [w, l] = rate_two_teams(
            &params,
            &team,
            &[full(25.0, s), full(25.0, s)],
            Outcome::FirstWins,
        )
        .unwrap();
        let var = s * s;
        let (m1, v1, m2, v2) = (37.5, 1.5 * var, 50.0, 2.0 * var);
        let c = (v1 + v2 + 2.0 * params.beta * params.beta).sqrt();
        let (e1, e2) = ((m1 / c).exp(), (m2 / c).exp());
        let p1 = e1 / (e1 + e2);
        let omega1 = v1 / c * (1.0 - p1);
        close(w[0].mu - 25.0, omega1 * 2.0 / 3.0);
        close(w[1].mu - 25.0, omega1 / 3.0);
        let delta1 = (v1.sqrt() / c) * v1 / (c * c) * p1 * (1.0 - p1);
        close(w[1].sigma, (var * (1.0 - delta1 / 3.0)).sqrt());
        // Loser team: omega = -v2/c * p2 over q = winner, where p2 = e2 / (e1 + e2).
        let p2 = e2 / (e1 + e2);
        close(l[0].mu - 25.0, -v2 / c * p2 / 2.0);
        // The winner gains less than it would against a full team that is weaker: an
        // upset-free sanity check of the direction.
        assert!(w[0].mu > 25.0 && l[0].mu < 25.0);
    }

    #[test]
    fn bad_input_is_named() {
        let params = Params::default();
        let ok = full(25.0, 8.0);
        let err = rate_two_teams(&params, &[ok], &[], Outcome::Draw).unwrap_err();
        assert_eq!(err, RatingError::EmptyTeam);
        let bad = Participant { weight: 0.0, ..ok };
        let err = rate_two_teams(&params, &[ok], &[ok, bad], Outcome::Draw).unwrap_err();
        assert_eq!(
            err.to_string(),
            "team 2 player 2: weight 0 is not in (0, 1]"
        );
        let bad = full(f64::NAN, 1.0);
        assert!(matches!(
            rate_two_teams(&params, &[bad], &[ok], Outcome::Draw),
            Err(RatingError::BadRating { .. })
        ));
    }

    #[test]
    fn normal_cdf_known_values() {
        close(normal_cdf(0.0), 0.5);
        assert!((normal_cdf(1.0) - 0.8413447460685429).abs() < 1e-15);
        assert!((normal_cdf(-1.96) - 0.024997895148220428).abs() < 1e-15);
        assert!((normal_cdf(3.0) - 0.9986501019683699).abs() < 1e-15);
        assert_eq!(normal_cdf(40.0), 1.0);
        assert_eq!(normal_cdf(-40.0), 0.0);
    }

    #[test]
    fn predict_win_is_symmetric() {
        let params = Params::default();
        let a = [Rating {
            mu: 30.0,
            sigma: 5.0,
        }];
        let b = [Rating {
            mu: 25.0,
            sigma: 8.0,
        }];
        close(
            predict_win(&params, &a, &b) + predict_win(&params, &b, &a),
            1.0,
        );
        close(predict_win(&params, &a, &a), 0.5);
        let z = 5.0 / (2.0 * params.beta * params.beta + 25.0 + 64.0f64).sqrt();
        close(predict_win(&params, &a, &b), normal_cdf(z));
    }
}
