//! Outages: silences in the ingester's heartbeats.

/// A silence in the heartbeats longer than the configured threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Outage {
    /// The last heartbeat before the silence: the last instant the bot vouches for.
    pub last_beat: i64,
    /// The first heartbeat after the silence; `None` while the outage is still going on at the
    /// horizon.
    pub resumed_at: Option<i64>,
}

/// Finds the outages in a guild's heartbeat times.
///
/// - A gap between consecutive beats longer than `outage_after_us` is an outage
///   (`resumed_at: Some(next beat)`).
/// - If the last beat is older than `horizon - outage_after_us` (the silence up to "now" is
///   already longer than the threshold), an outage is going on from it (`resumed_at: None`).
/// - With no beats at all there is no outage information, and no outage is invented: the
///   heartbeat feature may simply not have been running. Callers that want "no heartbeats
///   means the bot was down" must say so themselves.
///
/// Beats after `horizon` are ignored: as far as this build knows they have not happened yet
/// (otherwise a beat just after "now" would hide a silence that is going on at "now").
///
/// `beats` may be unsorted and contain duplicates. A negative threshold counts as zero. The
/// result is sorted by `last_beat`, and the outages never overlap.
pub fn outages(beats: &[i64], outage_after_us: i64, horizon: i64) -> Vec<Outage> {
    let threshold = outage_after_us.max(0);
    // Heartbeats come from an ordered index scan; copy only if the caller did not sort them.
    let sorted_copy;
    let beats = if beats.windows(2).all(|w| w[0] <= w[1]) {
        beats
    } else {
        let mut v = beats.to_vec();
        v.sort_unstable();
        sorted_copy = v;
        &sorted_copy[..]
    };
    let beats = &beats[..beats.partition_point(|&b| b <= horizon)];
    let mut out = Vec::new();
    for w in beats.windows(2) {
        if w[1].saturating_sub(w[0]) > threshold {
            out.push(Outage {
                last_beat: w[0],
                resumed_at: Some(w[1]),
            });
        }
    }
    if let Some(&last) = beats.last() {
        if horizon.saturating_sub(last) > threshold {
            out.push(Outage {
                last_beat: last,
                resumed_at: None,
            });
        }
    }
    out
}
