//! Reconnect snapshots: the complete list of who is in voice at one instant.

use super::observation::{Observation, UserObservation};

/// One listed voice state of a `raw_voice_snapshots.voice_states` array.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SnapshotState {
    /// The listed user.
    pub user_id: i64,
    /// The channel they are in.
    pub channel_id: i64,
    /// Their self-mute flag.
    pub self_mute: bool,
    /// Their self-deaf flag.
    pub self_deaf: bool,
}

/// One `raw_voice_snapshots` row: everyone in voice in the guild at `taken_at`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct VoiceSnapshot {
    /// Microseconds since the Unix epoch.
    pub taken_at: i64,
    /// Everyone listed (an empty list means nobody is in voice).
    pub states: Vec<SnapshotState>,
}

/// The snapshot entries of every listed user, sorted by `(user_id, observation)`.
///
/// If several snapshots share a `taken_at` they count as one (their lists are merged). If a
/// user is listed more than once at one time (malformed input), the smallest
/// `(channel, flags)` listing is kept, so the result does not depend on list order.
///
/// This is the input [`sessionize_users`](super::sessionize_users) wants next to a
/// [`GuildTimeline`](super::GuildTimeline) holding the snapshot times: absences are then
/// implied and never materialized.
pub fn snapshot_entries(snapshots: &[VoiceSnapshot]) -> Vec<UserObservation> {
    let mut out: Vec<UserObservation> = snapshots
        .iter()
        .flat_map(|s| {
            s.states.iter().map(move |st| UserObservation {
                user_id: st.user_id,
                observation: Observation::snapshot_entry(
                    s.taken_at,
                    st.channel_id,
                    st.self_mute,
                    st.self_deaf,
                ),
            })
        })
        .collect();
    out.sort_unstable();
    // Sorted, so the first of each (user, ts) run is the smallest listing.
    out.dedup_by(|b, a| a.user_id == b.user_id && a.observation.ts == b.observation.ts);
    out
}

/// Expands guild snapshots into explicit per-user observations for the given users: a listed
/// user gets a [`SnapshotEntry`](super::ObservationKind::SnapshotEntry), an unlisted one a
/// [`SnapshotAbsent`](super::ObservationKind::SnapshotAbsent). Listed users outside `users`
/// are left out (they are not part of this build).
///
/// Absences are emitted for every unlisted user of the set, whatever their state: the walk
/// makes an absence a no-op for a user who is not in a session, and the state is only known
/// during the walk. The output has `users × snapshot times` rows; for whole-guild builds prefer
/// [`snapshot_entries`] plus a [`GuildTimeline`](super::GuildTimeline), which implies the
/// absences instead.
///
/// `users` may be unsorted and contain duplicates. The result is sorted by
/// `(user_id, observation)`.
pub fn expand_snapshots(snapshots: &[VoiceSnapshot], users: &[i64]) -> Vec<UserObservation> {
    let mut users = users.to_vec();
    users.sort_unstable();
    users.dedup();
    let mut times: Vec<i64> = snapshots.iter().map(|s| s.taken_at).collect();
    times.sort_unstable();
    times.dedup();
    let entries = snapshot_entries(snapshots);

    let mut out = Vec::with_capacity(users.len().saturating_mul(times.len()));
    let mut e = 0;
    for &user in &users {
        while e < entries.len() && entries[e].user_id < user {
            e += 1;
        }
        let start = e;
        while e < entries.len() && entries[e].user_id == user {
            e += 1;
        }
        let mine = &entries[start..e];
        // Both lists are sorted by time: merge them.
        let mut k = 0;
        for &t in &times {
            if k < mine.len() && mine[k].observation.ts == t {
                out.push(mine[k]);
                k += 1;
            } else {
                out.push(UserObservation {
                    user_id: user,
                    observation: Observation::snapshot_absent(t),
                });
            }
        }
    }
    out
}
