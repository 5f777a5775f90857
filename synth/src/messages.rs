//! Chat activity as metadata only: who wrote how much, where and when.
//!
//! Volume per member is heavy-tailed and correlated with voice activity (the member's
//! message rate shares a factor with the voice rate, and people chat more on days they are in
//! voice). Messages come in bursts around the same local hours as voice sessions.

use rand::Rng;

use crate::ids::DISCORD_EPOCH_MS;
use crate::members::Member;
use crate::rhythm::{draw_local_hour, local_hour_to_utc, weekday_factor};
use crate::rng::{exponential, lognormal, poisson, weighted};
use crate::rows::MessageRow;
use crate::time::{LocalZone, Ts};

/// Text channels messages can go to.
#[derive(Clone, Debug)]
pub(crate) struct TextLayout {
    pub general: i64,
    pub lfg: i64,
    pub memes: i64,
    pub clips: i64,
    pub announcements: i64,
    /// Threads as (thread id, parent channel id).
    pub threads: Vec<(i64, i64)>,
}

pub(crate) struct MsgCtx<'a> {
    pub guild_id: i64,
    pub layout: &'a TextLayout,
    pub zone: LocalZone,
    pub day_start: Ts,
    pub weekday: u32,
    pub end: Ts,
    /// Whether an instant is inside a bot outage (the bot cannot see those messages).
    pub in_outage: &'a dyn Fn(Ts) -> bool,
}

/// The messages member `idx` posts on one day. `last_ms` carries the member's last message
/// millisecond: ids are (ms since the Discord epoch) << 22 | member index, so one member never
/// posting twice in the same millisecond makes every id unique.
pub(crate) fn plan_day<R: Rng + ?Sized>(
    ctx: &MsgCtx<'_>,
    m: &Member,
    idx: usize,
    voiced_today: bool,
    last_ms: &mut i64,
    rng: &mut R,
) -> Vec<MessageRow> {
    let boost = if voiced_today { 1.4 } else { 1.0 };
    let n = poisson(rng, m.msg_rate * weekday_factor(ctx.weekday) * boost).min(600);
    if n == 0 {
        return Vec::new();
    }
    let bursts = (1 + n / 10).min(8) as usize;
    let centers: Vec<Ts> = (0..bursts)
        .map(|_| {
            let h = draw_local_hour(rng, ctx.weekday, m.evening_peak);
            local_hour_to_utc(ctx.zone, ctx.day_start, h)
        })
        .collect();
    let mut cursor = centers.clone();
    let mut times: Vec<i64> = (0..n)
        .map(|_| {
            let b = rng.gen_range(0..bursts);
            cursor[b] = cursor[b].add_micros((exponential(rng, 90.0) * 1e6) as i64 + 1000);
            cursor[b].micros()
        })
        .collect();
    times.sort_unstable();
    let lo = m.joined_at.max(ctx.day_start);
    let hi = m.quiet_at.min(m.hard_end()).min(ctx.end);
    let mut out = Vec::with_capacity(times.len());
    for t in times {
        let mut ms = t.div_euclid(1000);
        if ms <= *last_ms {
            ms = *last_ms + 1;
        }
        let sent_at = Ts::from_micros(ms * 1000 + t.rem_euclid(1000));
        if sent_at < lo || sent_at >= hi {
            continue;
        }
        *last_ms = ms;
        // The details are drawn even for messages the bot misses, so that an outage does not
        // shift the random numbers of the messages after it.
        let row = message(ctx, m, idx, sent_at, ms, rng);
        if !(ctx.in_outage)(sent_at) {
            out.push(row);
        }
    }
    out
}

fn message<R: Rng + ?Sized>(
    ctx: &MsgCtx<'_>,
    m: &Member,
    idx: usize,
    sent_at: Ts,
    ms: i64,
    rng: &mut R,
) -> MessageRow {
    let l = ctx.layout;
    let (channel_id, attach_p) = if m.is_bot {
        match weighted(rng, &[0.5, 0.5]) {
            0 => (l.announcements, 0.3),
            _ => (l.lfg, 0.0),
        }
    } else {
        match weighted(rng, &[0.5, 0.2, 0.17, 0.1, 0.0]) {
            0 => (l.general, 0.04),
            1 => (l.lfg, 0.01),
            2 => (l.memes, 0.35),
            3 => (l.clips, 0.75),
            _ => (l.announcements, 0.0),
        }
    };
    let thread_id = if rng.gen::<f64>() < 0.05 {
        l.threads
            .iter()
            .find(|(_, parent)| *parent == channel_id)
            .map(|(t, _)| *t)
    } else {
        None
    };
    let attachment_count = if rng.gen::<f64>() < attach_p {
        1 + i32::from(rng.gen::<f64>() < 0.15)
    } else {
        0
    };
    // Attachment-only posts have no text at all.
    let char_count = if attachment_count > 0 && rng.gen::<f64>() < 0.5 {
        0
    } else {
        lognormal(rng, 38.0, 1.0).clamp(1.0, 2000.0).round() as i32
    };
    let word_count = if char_count == 0 {
        0
    } else {
        ((f64::from(char_count) / rng.gen_range(4.5..6.5)).round() as i32).max(1)
    };
    let mention_count = match rng.gen::<f64>() {
        x if x < 0.02 => rng.gen_range(2..5),
        x if x < 0.14 => 1,
        _ => 0,
    };
    MessageRow {
        guild_id: ctx.guild_id,
        channel_id,
        user_id: m.user_id,
        message_id: ((ms - DISCORD_EPOCH_MS).max(0) << 22) | (idx as i64 & 0x3F_FFFF),
        sent_at,
        char_count,
        word_count,
        attachment_count,
        mention_count,
        is_reply: rng.gen::<f64>() < 0.22,
        is_bot: m.is_bot,
        thread_id,
    }
}
