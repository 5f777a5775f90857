//! The community currency: points earned for being around (daily claim with a streak bonus,
//! chat, voice time, event attendance, a welcome bonus) and spent in a shop or given away.
//!
//! Earnings follow activity, so the ledger inherits the heavy tail of activity (which is what
//! makes a Gini coefficient on balances interesting). Spending never takes a balance below
//! zero. Every `tx_key` names its kind, user and day (or event), so keys are unique by
//! construction and a replay of the ledger is harmless.

use rand::Rng;

use crate::members::Member;
use crate::rng::micros_between;
use crate::rows::PointTxRow;
use crate::time::Ts;

/// Per-member ledger state carried across days.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Wallet {
    pub balance: i64,
    pub streak: u32,
    pub last_daily: Option<u32>,
}

/// What a member did on one day, as the economy sees it.
pub(crate) struct DayActivity<'a> {
    pub day: u32,
    pub day_start: Ts,
    /// Seconds in voice outside the AFK channel.
    pub voice_secs: f64,
    pub first_active: Option<Ts>,
    pub last_voice_end: Option<Ts>,
    pub messages: u32,
    pub last_message: Option<Ts>,
    /// Attended scheduled events: (event id, actual end).
    pub attended: &'a [(i64, Ts)],
}

const SHOP: [(i64, &str); 4] = [
    (400, "role_color"),
    (1000, "custom_emoji"),
    (2500, "vip_pass"),
    (6000, "game_key"),
];

/// A transfer one member makes to another, applied to the receiver by the caller.
pub(crate) struct Transfer {
    pub to: usize,
    pub amount: i64,
}

/// The ledger lines of one member-day. `recipient` picks the receiver of a transfer (an
/// index of a member present that day), if there is one.
#[allow(clippy::too_many_arguments)]
pub(crate) fn plan_day<R: Rng + ?Sized>(
    guild_id: i64,
    m: &Member,
    wallet: &mut Wallet,
    act: &DayActivity<'_>,
    start: Ts,
    end: Ts,
    recipient: &mut dyn FnMut(&mut R) -> Option<(usize, i64)>,
    rng: &mut R,
    out: &mut Vec<PointTxRow>,
) -> Option<Transfer> {
    let date = act.day_start.date_key();
    let user = m.user_id;
    let mut push = |wallet: &mut Wallet, amount: i64, reason: &'static str, at: Ts, key: String| {
        if at < end && amount != 0 {
            wallet.balance += amount;
            out.push(PointTxRow {
                guild_id,
                user_id: user,
                amount,
                reason,
                tx_ts: at,
                tx_key: key,
            });
        }
    };
    let next_day = act.day_start.add_secs(86_400);
    if m.joined_at >= start && m.joined_at >= act.day_start && m.joined_at < next_day {
        push(
            wallet,
            500,
            "welcome",
            m.joined_at.add_secs(5),
            format!("welcome:{user}"),
        );
    }
    // Only days with some activity earn or spend anything beyond the welcome bonus.
    let first = act.first_active?;
    if rng.gen::<f64>() < 0.75 {
        wallet.streak = match wallet.last_daily {
            Some(d) if d + 1 == act.day => wallet.streak + 1,
            _ => 1,
        };
        wallet.last_daily = Some(act.day);
        let amount = 50 + 10 * i64::from(wallet.streak.saturating_sub(1).min(10));
        let at = first.add_micros(micros_between(rng, 1.0, 600.0));
        push(wallet, amount, "daily", at, format!("daily:{user}:{date}"));
    }
    if act.messages > 0 {
        if let Some(at) = act.last_message {
            let amount = i64::from(act.messages * 2).min(60);
            push(
                wallet,
                amount,
                "chat",
                at.add_secs(1),
                format!("chat:{user}:{date}"),
            );
        }
    }
    if let Some(at) = act.last_voice_end {
        let amount = (act.voice_secs / 300.0) as i64;
        push(
            wallet,
            amount,
            "voice",
            at.add_secs(2),
            format!("voice:{user}:{date}"),
        );
    }
    for (event_id, ended) in act.attended {
        let at = ended.add_micros(micros_between(rng, 60.0, 1800.0));
        push(wallet, 250, "event", at, format!("event:{user}:{event_id}"));
    }
    let spend_at = first.add_micros(micros_between(rng, 60.0, 4.0 * 3600.0));
    if rng.gen::<f64>() < 0.12 {
        let affordable: Vec<_> = SHOP.iter().filter(|(p, _)| *p <= wallet.balance).collect();
        if !affordable.is_empty() {
            let (price, item) = affordable[rng.gen_range(0..affordable.len())];
            push(
                wallet,
                -price,
                "shop",
                spend_at,
                format!("shop:{user}:{date}:{item}"),
            );
        }
    }
    if wallet.balance >= 200 && rng.gen::<f64>() < 0.015 {
        if let Some((to, to_user)) = recipient(rng) {
            let amount = rng.gen_range(50..=(wallet.balance / 2).min(1000));
            let at = spend_at.add_secs(30);
            if at < end {
                push(
                    wallet,
                    -amount,
                    "transfer",
                    at,
                    format!("transfer:{user}:{date}:out"),
                );
                out.push(PointTxRow {
                    guild_id,
                    user_id: to_user,
                    amount,
                    reason: "transfer",
                    tx_ts: at,
                    tx_key: format!("transfer:{user}:{date}:in:{to_user}"),
                });
                return Some(Transfer { to, amount });
            }
        }
    }
    None
}
