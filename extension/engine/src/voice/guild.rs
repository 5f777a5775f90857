//! Whole-guild convenience: sort once, group by user, walk each user.

use super::config::VoiceConfig;
use super::observation::{RawVoiceEvent, UserObservation};
use super::outage::outages;
use super::session::Session;
use super::sessionizer::walk;
use super::snapshot::{snapshot_entries, VoiceSnapshot};
use super::state::UserState;
use super::timeline::GuildTimeline;

/// What [`sessionize_users`] returns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UsersResult {
    /// Sessions ordered by `(user_id, started_at)`; open ones have `ended_at: None`.
    pub sessions: Vec<Session>,
    /// Every walked user's state at the end, ordered by user id.
    pub states: Vec<(i64, UserState)>,
}

/// Sessionizes a whole guild from its raw rows (a full build): every user starts
/// [`UserState::Unknown`].
///
/// `events` in any order (duplicates allowed); `snapshots` in any order; `beats`: the guild's
/// heartbeat times, any order (see [`outages`] for what none at all means); `horizon`: the
/// build's "now". Sessions are ordered by `(user_id, started_at)`.
///
/// Cost: one sort of the events, one linear walk, and per user a binary search per run of
/// guild marks (outages, snapshot times) met while the user is not in a session.
pub fn sessionize_guild(
    events: Vec<RawVoiceEvent>,
    snapshots: &[VoiceSnapshot],
    beats: &[i64],
    config: &VoiceConfig,
    horizon: i64,
) -> Vec<Session> {
    let found = outages(beats, config.outage_after_us, horizon);
    let timeline = GuildTimeline::new(&found, snapshots.iter().map(|s| s.taken_at));
    let mut observations: Vec<UserObservation> = events.into_iter().map(Into::into).collect();
    observations.extend(snapshot_entries(snapshots));
    sessionize_users(observations, &[], &timeline, config, horizon).sessions
}

/// Sessionizes many users of one guild, each from their own starting state (an incremental
/// build restarts each touched user from a saved state, with that user's observations from
/// then on).
///
/// - `observations`: any order; sorted here once by `(user_id, ts, kind)`. Snapshot absences
///   may be explicit, or implied by snapshot times in `timeline` (then pass only entries, from
///   [`snapshot_entries`]).
/// - `initial_states`: users not listed start [`UserState::Unknown`]; listed users are walked
///   even without observations (an outage, a snapshot or the cap may still close their open
///   session). If a user is listed twice, the first listing counts.
///
/// See [`sessionize_user_with`](super::sessionize_user_with) for the resume rules.
pub fn sessionize_users(
    mut observations: Vec<UserObservation>,
    initial_states: &[(i64, UserState)],
    timeline: &GuildTimeline,
    config: &VoiceConfig,
    horizon: i64,
) -> UsersResult {
    sort_observations(&mut observations);
    let mut initial: Vec<(i64, UserState)> = initial_states.to_vec();
    // Stable, so the first listing of a user stays first.
    initial.sort_by_key(|(user, _)| *user);
    initial.dedup_by_key(|(user, _)| *user);

    let mut sessions = Vec::new();
    let mut states = Vec::new();
    let mut o = 0;
    let mut s = 0;
    while o < observations.len() || s < initial.len() {
        let next_obs_user = observations.get(o).map(|x| x.user_id);
        let next_state_user = initial.get(s).map(|x| x.0);
        let user = match (next_obs_user, next_state_user) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) => a,
            (None, Some(b)) => b,
            (None, None) => break,
        };
        let start = o;
        while o < observations.len() && observations[o].user_id == user {
            o += 1;
        }
        let state = if next_state_user == Some(user) {
            s += 1;
            initial[s - 1].1
        } else {
            UserState::Unknown
        };
        let end_state = walk(
            user,
            state,
            &observations[start..o],
            timeline,
            config,
            horizon,
            &mut sessions,
        );
        states.push((user, end_state));
    }
    UsersResult { sessions, states }
}

/// Sorts into `UserObservation`'s order, `(user_id, ts, kind)`. A whole guild is a million
/// observations: comparing them field by field (the derived order) took most of the time the
/// walk itself takes. Almost every pair differs in user or time, so the sort compares one
/// packed 128-bit key, and only the rare runs of one user's observations at one instant are
/// then put in the full order.
fn sort_observations(observations: &mut [UserObservation]) {
    // Signed to unsigned with the order kept: flip the sign bit.
    fn key(o: &UserObservation) -> u128 {
        let user = (o.user_id as u64) ^ (1 << 63);
        let ts = (o.observation.ts as u64) ^ (1 << 63);
        (u128::from(user) << 64) | u128::from(ts)
    }
    observations.sort_unstable_by_key(key);
    for run in observations.chunk_by_mut(|a, b| key(a) == key(b)) {
        if run.len() > 1 {
            run.sort_unstable();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::voice::observation::Observation;
    use proptest::prelude::*;

    /// Users and times from a few values each, the extremes included, so that ties of user
    /// and time (decided by the kind) are common and the sign flip is exercised.
    fn observation() -> impl Strategy<Value = UserObservation> {
        let user = prop::sample::select(vec![i64::MIN, -5, 0, 7, 1 << 40, i64::MAX]);
        let ts = prop::sample::select(vec![i64::MIN, -1, 0, 1, 1_000_000, i64::MAX]);
        let channel = prop::option::of(prop::sample::select(vec![-3i64, 4, 9]));
        (user, ts, 0..3u8, channel, any::<bool>(), any::<bool>()).prop_map(
            |(user_id, ts, kind, channel, mute, deaf)| UserObservation {
                user_id,
                observation: match kind {
                    0 => Observation::event(ts, channel, mute, deaf),
                    1 => Observation::snapshot_entry(ts, channel.unwrap_or(1), mute, deaf),
                    _ => Observation::snapshot_absent(ts),
                },
            },
        )
    }

    proptest! {
        #[test]
        fn packed_sort_is_the_derived_order(mut list in prop::collection::vec(observation(), 0..200)) {
            let mut expected = list.clone();
            expected.sort();
            sort_observations(&mut list);
            prop_assert_eq!(list, expected);
        }
    }
}
