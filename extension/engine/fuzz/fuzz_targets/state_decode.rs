//! Any bytes given as an aggregate state (what a reader can pass to `retention_state_in`,
//! `gini_state_recv` or `_retention_rows`) must decode or fail with an error: never panic, never
//! allocate out of proportion to the bytes. What decodes must re-encode to the same state, merge
//! with itself, and yield a bounded retention table or an error.
#![no_main]

use guildstats_engine::gini::GiniState;
use guildstats_engine::retention::{RetentionState, MAX_ROWS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, state)) = data.split_first() else {
        return;
    };
    if selector & 1 == 0 {
        let Ok(decoded) = RetentionState::decode(state) else {
            return;
        };
        let again = RetentionState::decode(&decoded.encode()).expect("re-encoded state decodes");
        assert!(again == decoded, "re-encoding changes the state");
        let mut doubled = decoded.clone();
        doubled.merge(&decoded).expect("a state merges with itself");
        assert!(doubled == decoded, "merging a state with itself changes it");
        // Offsets from below 0 to past the ceiling: errors and both limits get exercised.
        let max_offset = i32::from(selector >> 1) * 300 - 100;
        if let Ok(rows) = decoded.rows(max_offset) {
            assert!(rows.count() as u64 <= MAX_ROWS);
        }
    } else {
        let Ok(decoded) = GiniState::decode(state) else {
            return;
        };
        assert!(decoded.distinct() <= state.len());
        let again = GiniState::decode(&decoded.encode()).expect("re-encoded state decodes");
        assert!(again == decoded, "re-encoding changes the state");
        let text = GiniState::from_text(&decoded.to_text()).expect("text form reads back");
        assert!(text == decoded, "the text form changes the state");
        for g in [decoded.gini(), decoded.median(), decoded.top_share(0.01).ok().flatten()]
            .into_iter()
            .flatten()
        {
            assert!(!g.is_nan(), "NaN from {decoded:?}");
        }
        let mut doubled = decoded.clone();
        let _ = doubled.merge(&decoded);
    }
});
