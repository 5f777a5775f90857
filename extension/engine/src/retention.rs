//! Retention cohorts: who comes back, period by period, after their cohort period.
//!
//! Input: `(user, cohort time, activity time)` triples with times as local wall-clock
//! microseconds since 2000-01-01 (PostgreSQL `timestamp`, after `AT TIME ZONE` the guild's
//! zone), so calendar days, weeks (Monday first) and months are plain arithmetic here.
//!
//! Per user the state keeps the cohort period (the earliest cohort time given, else the
//! earliest activity) and the set of periods with activity. Two states merge by union, so the
//! SQL aggregate runs in parallel and re-aggregates.
//!
//! Output, per cohort and period offset `k` (0 = the cohort period itself), up to the last
//! period with any activity in the input and at most `max_offset`:
//!
//! - `retained`: users of the cohort active in exactly period `k` after their cohort period;
//! - `retained_or_later`: users active in period `k` or any later one (past `max_offset` too);
//! - rates: both divided by the cohort size.
//!
//! Nothing from outside can make that unbounded: one outlier timestamp, centuries away, adds at
//! most `max_offset` rows per cohort; `max_offset` has a ceiling, the table a row limit checked
//! before its cells are allocated, and decoding refuses periods no timestamp can fall in.

use std::collections::HashMap;
use std::fmt;

/// Microseconds in a day.
const DAY_US: i64 = 86_400_000_000;

/// First microsecond PostgreSQL's `timestamp` can hold (4714-11-24 BC), since 2000-01-01.
pub const MIN_TIMESTAMP_US: i64 = -211_813_488_000_000_000;
/// Last microsecond of PostgreSQL's `timestamp` (294276-12-31 23:59:59.999999).
pub const MAX_TIMESTAMP_US: i64 = 9_223_371_331_200_000_000 - 1;

/// Calendar period of a cohort table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Day,
    /// Weeks start on Monday (ISO).
    Week,
    Month,
}

impl Period {
    pub fn parse(text: &str) -> Result<Period, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "day" | "days" | "daily" => Ok(Period::Day),
            "week" | "weeks" | "weekly" => Ok(Period::Week),
            "month" | "months" | "monthly" => Ok(Period::Month),
            other => Err(format!(
                "retention period must be day, week or month, got {other:?}"
            )),
        }
    }

    fn code(self) -> u8 {
        match self {
            Period::Day => 0,
            Period::Week => 1,
            Period::Month => 2,
        }
    }

    fn from_code(code: u8) -> Option<Period> {
        match code {
            0 => Some(Period::Day),
            1 => Some(Period::Week),
            2 => Some(Period::Month),
            _ => None,
        }
    }

    /// The period holding a local time (microseconds since 2000-01-01 00:00).
    pub fn index(self, local_us: i64) -> i32 {
        let day = local_us.div_euclid(DAY_US);
        let index = match self {
            Period::Day => day,
            // 2000-01-01 was a Saturday: Monday 2000-01-03 starts week 1.
            Period::Week => (day + 5).div_euclid(7),
            Period::Month => {
                let (y, m, _) = civil_from_days(day);
                y * 12 + i64::from(m) - 1 - 2000 * 12
            }
        };
        index.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
    }

    /// The periods a finite `timestamp` can fall in: anything outside comes from a forged state.
    pub fn valid_indexes(self) -> std::ops::RangeInclusive<i32> {
        self.index(MIN_TIMESTAMP_US)..=self.index(MAX_TIMESTAMP_US)
    }

    /// First day of a period, in days since 2000-01-01.
    pub fn start_day(self, index: i32) -> i64 {
        let index = i64::from(index);
        match self {
            Period::Day => index,
            Period::Week => index * 7 - 5,
            Period::Month => {
                let months = index + 2000 * 12;
                days_from_civil(months.div_euclid(12), (months.rem_euclid(12) + 1) as u32, 1)
            }
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
        })
    }
}

/// Days since 2000-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Shift to days since 0000-03-01 (Howard Hinnant's algorithm).
    let z = days + 730_425;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// (year, month, day) to days since 2000-01-01.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from(if m > 2 { m - 3 } else { m + 9 });
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 730_425
}

/// Pairs buffered before they are sorted into the compact part (16 MiB; small in unit tests
/// so that they cross it).
const FLUSH_AT: usize = if cfg!(test) { 64 } else { 1 << 20 };

/// A user's activity in one period.
type Pair = (i64, i32);

/// Users with their cohort and active periods.
///
/// Activity is kept as distinct `(user, period)` pairs: new pairs are appended to a buffer (a
/// sequential write per row, no hash lookup, no pointer chasing), and every million rows the
/// buffer is sorted, deduplicated and merged into the sorted compact part. Users have few
/// distinct active periods, so the compact part stays small whatever the number of rows.
/// Explicit cohort times, rarer, go to a map.
#[derive(Debug, Clone, Default)]
pub struct RetentionState {
    period: Option<Period>,
    /// Earliest explicit cohort period per user.
    cohorts: HashMap<i64, i32>,
    /// Sorted, distinct.
    pairs: Vec<Pair>,
    /// Unsorted, may repeat.
    buffer: Vec<Pair>,
}

impl PartialEq for RetentionState {
    fn eq(&self, other: &Self) -> bool {
        self.period == other.period
            && self.cohorts == other.cohorts
            && self.sorted_pairs() == other.sorted_pairs()
    }
}

/// One cell of the cohort table.
#[derive(Debug, Clone, PartialEq)]
pub struct RetentionRow {
    /// First day of the cohort period (days since 2000-01-01).
    pub cohort_start_day: i64,
    pub cohort_size: u64,
    pub period_offset: i32,
    pub retained: u64,
    pub retained_or_later: u64,
}

impl RetentionRow {
    pub fn rate(&self) -> f64 {
        self.retained as f64 / self.cohort_size as f64
    }
    pub fn rate_or_later(&self) -> f64 {
        self.retained_or_later as f64 / self.cohort_size as f64
    }
}

/// Largest `max_offset` a caller may ask for: a century of days.
pub const MAX_OFFSET_CEILING: i32 = 36_525;

/// Default `max_offset`: a year of days (D365), seven years of weeks, thirty of months.
pub const DEFAULT_MAX_OFFSET: i32 = 365;

/// Most rows one cohort table may have. Past it, the caller gets an error instead of a result
/// that fills memory or the disk.
pub const MAX_ROWS: u64 = 10_000_000;

/// Why a cohort table is not produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowsError {
    /// `max_offset` outside `0..=MAX_OFFSET_CEILING`.
    MaxOffset(i32),
    /// The table would have this many rows, more than `MAX_ROWS`.
    TooManyRows(u64),
}

impl fmt::Display for RowsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RowsError::MaxOffset(m) => write!(
                f,
                "retention: max_offset must be between 0 and {MAX_OFFSET_CEILING}, got {m}"
            ),
            RowsError::TooManyRows(n) => write!(
                f,
                "retention: the cohort table would have {n} rows, more than the limit of \
                 {MAX_ROWS}; lower max_offset or narrow the input"
            ),
        }
    }
}

/// The rows of a cohort table, cohort by cohort, offset by offset.
#[derive(Debug, Default)]
pub struct RetentionRows {
    period: Option<Period>,
    /// (cohort, size, first cell, number of offsets), ascending by cohort.
    cohorts: Vec<(i32, u64, usize, usize)>,
    /// Per cell (cohort and offset): users active at exactly that offset.
    exact: Vec<u64>,
    /// Per cell: users whose last activity is at that offset (or past the last one shown).
    last: Vec<u64>,
    cohort: usize,
    offset: usize,
    /// Users of the current cohort whose last offset is at least `offset`.
    or_later: u64,
}

impl Iterator for RetentionRows {
    type Item = RetentionRow;

    fn next(&mut self) -> Option<RetentionRow> {
        let period = self.period?;
        loop {
            let &(cohort, size, first, width) = self.cohorts.get(self.cohort)?;
            if self.offset >= width {
                self.cohort += 1;
                self.offset = 0;
                continue;
            }
            let k = self.offset;
            if k == 0 {
                self.or_later = self.last[first..first + width].iter().sum();
            }
            let row = RetentionRow {
                cohort_start_day: period.start_day(cohort),
                cohort_size: size,
                period_offset: k as i32,
                retained: self.exact[first + k],
                retained_or_later: self.or_later,
            };
            // Users whose last offset is k are not active at k + 1 or later.
            self.or_later -= self.last[first + k];
            self.offset += 1;
            return Some(row);
        }
    }
}

/// Merges two sorted, distinct runs into one.
fn merge_sorted(a: &[Pair], b: &[Pair]) -> Vec<Pair> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => {
                out.push(a[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(b[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

impl RetentionState {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn period(&self) -> Option<Period> {
        self.period
    }

    fn set_period(&mut self, period: Period) -> Result<(), String> {
        match self.period {
            None => {
                self.period = Some(period);
                Ok(())
            }
            Some(p) if p == period => Ok(()),
            Some(p) => Err(format!(
                "retention: one aggregate cannot mix periods ({p} and {period})"
            )),
        }
    }

    /// One input row. Times are local microseconds since 2000-01-01; `None` is SQL NULL.
    pub fn add(
        &mut self,
        user: i64,
        cohort_us: Option<i64>,
        activity_us: Option<i64>,
        period: Period,
    ) -> Result<(), String> {
        if self.period != Some(period) {
            self.set_period(period)?;
        }
        if let Some(c) = cohort_us {
            let c = period.index(c);
            self.cohorts
                .entry(user)
                .and_modify(|old| *old = (*old).min(c))
                .or_insert(c);
        }
        if let Some(a) = activity_us {
            let pair = (user, period.index(a));
            if self.buffer.last() != Some(&pair) {
                self.buffer.push(pair);
                if self.buffer.len() >= FLUSH_AT {
                    self.compact();
                }
            }
        }
        Ok(())
    }

    /// Sorts the buffer into the compact part.
    fn compact(&mut self) {
        if self.buffer.is_empty() {
            return;
        }
        self.buffer.sort_unstable();
        self.buffer.dedup();
        self.pairs = merge_sorted(&self.pairs, &self.buffer);
        self.buffer.clear();
    }

    /// All distinct pairs, sorted, without changing the state.
    fn sorted_pairs(&self) -> std::borrow::Cow<'_, [Pair]> {
        if self.buffer.is_empty() {
            return std::borrow::Cow::Borrowed(&self.pairs);
        }
        let mut buffer = self.buffer.clone();
        buffer.sort_unstable();
        buffer.dedup();
        std::borrow::Cow::Owned(merge_sorted(&self.pairs, &buffer))
    }

    /// Adds everything `other` knows (union of users and periods).
    pub fn merge(&mut self, other: &RetentionState) -> Result<(), String> {
        if let Some(p) = other.period {
            self.set_period(p)?;
        }
        for (&user, &c) in &other.cohorts {
            self.cohorts
                .entry(user)
                .and_modify(|old| *old = (*old).min(c))
                .or_insert(c);
        }
        self.compact();
        let theirs = other.sorted_pairs();
        self.pairs = merge_sorted(&self.pairs, &theirs);
        Ok(())
    }

    /// The cohort table: every cohort, offsets from 0 to the last period with any activity in
    /// the state, and at most `max_offset`. Refuses (before allocating anything large) a
    /// `max_offset` outside `0..=MAX_OFFSET_CEILING` and a table of more than `MAX_ROWS` rows.
    /// Memory: linear in the state, plus two counters per row of the table.
    pub fn rows(&self, max_offset: i32) -> Result<RetentionRows, RowsError> {
        if !(0..=MAX_OFFSET_CEILING).contains(&max_offset) {
            return Err(RowsError::MaxOffset(max_offset));
        }
        let empty = RetentionRows::default();
        let Some(period) = self.period else {
            return Ok(empty);
        };
        let pairs = self.sorted_pairs();
        let horizon = pairs
            .iter()
            .map(|p| p.1)
            .chain(self.cohorts.values().copied())
            .max();
        let Some(horizon) = horizon else {
            return Ok(empty);
        };
        let max_offset = i64::from(max_offset);
        // Pairs are sorted by user, then period: each user is one run. First the cohort of each
        // user (in run order, then users with a cohort and no activity)...
        let mut runs: Vec<(usize, usize, i32)> = Vec::new();
        let mut start = 0;
        while start < pairs.len() {
            let user = pairs[start].0;
            let mut end = start;
            while end < pairs.len() && pairs[end].0 == user {
                end += 1;
            }
            let cohort = self.cohorts.get(&user).copied().unwrap_or(pairs[start].1);
            runs.push((start, end, cohort));
            start = end;
        }
        for (&user, &cohort) in &self.cohorts {
            let active = pairs
                .binary_search_by(|p| p.0.cmp(&user).then(std::cmp::Ordering::Greater))
                .unwrap_err();
            if pairs.get(active).is_none_or(|p| p.0 != user) {
                runs.push((0, 0, cohort));
            }
        }
        // ... then the size of the table, checked before any memory goes to its cells: a
        // forged or outlying span costs max_offset cells per cohort at most, and the whole
        // table MAX_ROWS.
        let mut distinct: Vec<i32> = runs.iter().map(|r| r.2).collect();
        distinct.sort_unstable();
        distinct.dedup();
        let mut cohorts = Vec::with_capacity(distinct.len());
        let mut cells = 0usize;
        for &cohort in &distinct {
            let width = ((i64::from(horizon) - i64::from(cohort)).min(max_offset) + 1) as usize;
            cohorts.push((cohort, 0u64, cells, width));
            cells += width;
        }
        if cells as u64 > MAX_ROWS {
            return Err(RowsError::TooManyRows(cells as u64));
        }
        let mut exact = vec![0u64; cells];
        let mut last = vec![0u64; cells];
        for &(start, end, cohort) in &runs {
            let entry = &mut cohorts[distinct.binary_search(&cohort).expect("a known cohort")];
            entry.1 += 1;
            let mut latest = None;
            for &(_, p) in &pairs[start..end] {
                let k = i64::from(p) - i64::from(cohort);
                if k >= 0 {
                    if k <= max_offset {
                        exact[entry.2 + k as usize] += 1;
                    }
                    latest = Some(k.min(max_offset) as usize);
                }
            }
            if let Some(k) = latest {
                last[entry.2 + k] += 1;
            }
        }
        Ok(RetentionRows {
            period: Some(period),
            cohorts,
            exact,
            last,
            cohort: 0,
            offset: 0,
            or_later: 0,
        })
    }

    /// Versioned binary form: version 1, period code (255: none yet); the explicit cohorts
    /// (count, then per user ascending: the user as a zigzag gap from the previous one and the
    /// zigzag cohort period); the activity (count of users, then per user ascending: the user
    /// gap, the number of periods and the periods as zigzag gaps). All varints.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![1u8, self.period.map_or(255, Period::code)];
        let mut cohorts: Vec<(i64, i32)> = self.cohorts.iter().map(|(&u, &c)| (u, c)).collect();
        cohorts.sort_unstable();
        put_varint(&mut out, cohorts.len() as u64);
        let mut prev_user = None;
        for (user, c) in cohorts {
            put_user(&mut out, user, prev_user);
            put_varint(&mut out, zigzag(i64::from(c)));
            prev_user = Some(user);
        }
        let pairs = self.sorted_pairs();
        let users =
            pairs.windows(2).filter(|w| w[0].0 != w[1].0).count() + usize::from(!pairs.is_empty());
        put_varint(&mut out, users as u64);
        let mut prev_user = None;
        let mut start = 0;
        while start < pairs.len() {
            let user = pairs[start].0;
            let mut end = start;
            while end < pairs.len() && pairs[end].0 == user {
                end += 1;
            }
            put_user(&mut out, user, prev_user);
            put_varint(&mut out, (end - start) as u64);
            let mut prev = 0i64;
            for &(_, p) in &pairs[start..end] {
                put_varint(&mut out, zigzag(i64::from(p) - prev));
                prev = i64::from(p);
            }
            prev_user = Some(user);
            start = end;
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<RetentionState, String> {
        let bad = |why: &str| format!("invalid retention_state: {why}");
        let mut r = Reader { bytes, pos: 0 };
        if r.byte().map_err(|e| bad(&e))? != 1 {
            return Err(bad("unknown version"));
        }
        let period = match r.byte().map_err(|e| bad(&e))? {
            255 => None,
            code => Some(Period::from_code(code).ok_or_else(|| bad("unknown period"))?),
        };
        // A state without a period has seen no row; periods out of the range of timestamps
        // cannot come from one and would overflow dates downstream.
        let valid = period.map(Period::valid_indexes);
        let check = |p: i32| -> Result<i32, String> {
            match &valid {
                Some(range) if range.contains(&p) => Ok(p),
                Some(_) => Err(bad("period out of the range of timestamps")),
                None => Err(bad("periods without a period kind")),
            }
        };
        let n = r.varint().map_err(|e| bad(&e))?;
        // Each cohort entry takes at least two bytes, each user at least three: refuse counts
        // the input cannot hold before reserving memory for them.
        if n > (bytes.len() / 2) as u64 {
            return Err(bad("cohort count larger than the data"));
        }
        // Reserve no more than a little up front: a count the bytes could hold but do not (a
        // truncated state) must not cost memory before the error.
        let mut cohorts = HashMap::with_capacity((n as usize).min(PREALLOCATE_AT_MOST));
        let mut user = None;
        for _ in 0..n {
            let this = r.user(user).map_err(|e| bad(&e))?;
            user = Some(this);
            let user = this;
            let c = to_i32(unzigzag(r.varint().map_err(|e| bad(&e))?))
                .ok_or_else(|| bad("cohort out of range"))?;
            cohorts.insert(user, check(c)?);
        }
        let n = r.varint().map_err(|e| bad(&e))?;
        if n > (bytes.len() / 3) as u64 {
            return Err(bad("user count larger than the data"));
        }
        let mut pairs = Vec::new();
        let mut user = None;
        for _ in 0..n {
            let this = r.user(user).map_err(|e| bad(&e))?;
            user = Some(this);
            let user = this;
            let count = r.varint().map_err(|e| bad(&e))?;
            if count == 0 || count > bytes.len() as u64 {
                return Err(bad("bad period count"));
            }
            let mut prev = 0i64;
            for j in 0..count {
                let gap = unzigzag(r.varint().map_err(|e| bad(&e))?);
                if j > 0 && gap <= 0 {
                    return Err(bad("periods not ascending"));
                }
                prev = prev
                    .checked_add(gap)
                    .ok_or_else(|| bad("period out of range"))?;
                let p = to_i32(prev).ok_or_else(|| bad("period out of range"))?;
                pairs.push((user, check(p)?));
            }
        }
        if r.pos != bytes.len() {
            return Err(bad("trailing bytes"));
        }
        Ok(RetentionState {
            period,
            cohorts,
            pairs,
            buffer: Vec::new(),
        })
    }
}

/// Entries reserved before they are read (see `decode`).
const PREALLOCATE_AT_MOST: usize = 1 << 16;

fn to_i32(v: i64) -> Option<i32> {
    i32::try_from(v).ok()
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A user id: the first zigzag-encoded, the next ones as the (positive) gap from the previous.
fn put_user(out: &mut Vec<u8>, user: i64, previous: Option<i64>) {
    match previous {
        None => put_varint(out, zigzag(user)),
        Some(p) => put_varint(out, user.wrapping_sub(p) as u64),
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, String> {
        let b = *self.bytes.get(self.pos).ok_or("truncated")?;
        self.pos += 1;
        Ok(b)
    }

    fn user(&mut self, previous: Option<i64>) -> Result<i64, String> {
        let v = self.varint()?;
        match previous {
            None => Ok(unzigzag(v)),
            Some(p) => {
                let user = p.wrapping_add(v as i64);
                if v == 0 || user <= p {
                    return Err("users not ascending".into());
                }
                Ok(user)
            }
        }
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            let part = u64::from(b & 0x7f);
            if shift == 63 && part > 1 {
                return Err("varint overflows".into());
            }
            v |= part << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint too long".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000_000;

    impl RetentionState {
        fn table(&self) -> Vec<RetentionRow> {
            self.rows(DEFAULT_MAX_OFFSET).unwrap().collect()
        }
    }

    fn day(d: i64) -> i64 {
        d * DAY_US + 12 * H
    }

    #[test]
    fn calendar_arithmetic() {
        assert_eq!(civil_from_days(0), (2000, 1, 1));
        assert_eq!(days_from_civil(2000, 1, 1), 0);
        assert_eq!(days_from_civil(2026, 3, 1), 9556);
        assert_eq!(civil_from_days(9556), (2026, 3, 1));
        assert_eq!(civil_from_days(-1), (1999, 12, 31));
        for d in -800..800 {
            let (y, m, dd) = civil_from_days(d * 37);
            assert_eq!(days_from_civil(y, m, dd), d * 37);
        }
        // 2026-03-02 is a Monday: its week starts that day; Sunday belongs to the week before.
        let monday = days_from_civil(2026, 3, 2);
        assert_eq!(
            Period::Week.start_day(Period::Week.index(day(monday))),
            monday
        );
        assert_eq!(
            Period::Week.start_day(Period::Week.index(day(monday + 6))),
            monday
        );
        assert_eq!(
            Period::Week.start_day(Period::Week.index(day(monday - 1))),
            monday - 7
        );
        let march = days_from_civil(2026, 3, 1);
        assert_eq!(
            Period::Month.start_day(Period::Month.index(day(march + 30))),
            march
        );
        assert_eq!(
            Period::Month.index(day(march))
                - Period::Month.index(day(days_from_civil(2025, 12, 31))),
            3
        );
        assert_eq!(Period::Month.start_day(Period::Month.index(day(-1))), -31);
        assert_eq!(Period::Day.index(-1), -1);
    }

    #[test]
    fn exact_and_or_later() {
        let mut s = RetentionState::new();
        // user 1: active days 0, 1, 3; user 2: day 0 and 2; user 3: only day 1 (cohort day 1).
        for (u, d) in [(1, 0), (1, 1), (1, 3), (2, 0), (2, 2), (3, 1), (1, 1)] {
            s.add(u, None, Some(day(d)), Period::Day).unwrap();
        }
        let rows = s.table();
        let cells: Vec<(i64, u64, i32, u64, u64)> = rows
            .iter()
            .map(|r| {
                (
                    r.cohort_start_day,
                    r.cohort_size,
                    r.period_offset,
                    r.retained,
                    r.retained_or_later,
                )
            })
            .collect();
        assert_eq!(
            cells,
            vec![
                (0, 2, 0, 2, 2),
                (0, 2, 1, 1, 2),
                (0, 2, 2, 1, 2),
                (0, 2, 3, 1, 1),
                (1, 1, 0, 1, 1),
                (1, 1, 1, 0, 0),
                (1, 1, 2, 0, 0),
            ]
        );
        assert_eq!(rows[1].rate(), 0.5);
    }

    #[test]
    fn explicit_cohorts_and_users_without_activity() {
        let mut s = RetentionState::new();
        // joined day 0, active day 2; joined day 0, never active; active before joining.
        s.add(1, Some(day(0)), None, Period::Day).unwrap();
        s.add(1, None, Some(day(2)), Period::Day).unwrap();
        s.add(2, Some(day(0)), None, Period::Day).unwrap();
        s.add(3, None, Some(day(0)), Period::Day).unwrap();
        s.add(3, Some(day(1)), None, Period::Day).unwrap();
        let rows = s.table();
        let day0: Vec<(u64, u64)> = rows
            .iter()
            .filter(|r| r.cohort_start_day == 0)
            .map(|r| (r.retained, r.retained_or_later))
            .collect();
        assert_eq!(day0, vec![(0, 1), (0, 1), (1, 1)]);
        assert!(rows
            .iter()
            .all(|r| r.cohort_start_day != 0 || r.cohort_size == 2));
        // user 3: cohort day 1, activity on day 0 is before the cohort and does not count.
        let day1: Vec<u64> = rows
            .iter()
            .filter(|r| r.cohort_start_day == 1)
            .map(|r| r.retained)
            .collect();
        assert_eq!(day1, vec![0, 0]);
    }

    #[test]
    fn merge_encode_and_period_mixing() {
        let mut a = RetentionState::new();
        let mut b = RetentionState::new();
        let mut whole = RetentionState::new();
        for i in 0..500i64 {
            let (u, d) = (i % 37, (i * 7) % 40);
            let part = if i % 3 == 0 { &mut a } else { &mut b };
            part.add(u, None, Some(day(d)), Period::Week).unwrap();
            whole.add(u, None, Some(day(d)), Period::Week).unwrap();
        }
        let mut merged = b.clone();
        merged.merge(&a).unwrap();
        assert_eq!(merged, whole);
        assert_eq!(merged.table(), whole.table());
        let decoded = RetentionState::decode(&whole.encode()).unwrap();
        assert_eq!(decoded, whole);
        assert_eq!(
            RetentionState::decode(&RetentionState::new().encode()).unwrap(),
            RetentionState::new()
        );
        let mut m = RetentionState::new();
        m.add(1, None, Some(0), Period::Month).unwrap();
        assert!(m.merge(&whole).is_err());
        assert!(m.add(1, None, Some(0), Period::Day).is_err());
        for cut in 0..whole.encode().len().min(200) {
            assert!(RetentionState::decode(&whole.encode()[..cut]).is_err());
        }
    }

    #[test]
    fn extreme_user_ids_and_cohort_only_users_round_trip() {
        let mut s = RetentionState::new();
        for (u, d) in [(i64::MIN, 0), (-5, 1), (i64::MAX, 2), (0, 0), (i64::MAX, 5)] {
            s.add(u, None, Some(day(d)), Period::Day).unwrap();
        }
        s.add(i64::MIN, Some(day(0)), None, Period::Day).unwrap();
        s.add(7, Some(day(1)), None, Period::Day).unwrap();
        let back = RetentionState::decode(&s.encode()).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.table(), s.table());
        let day1: Vec<u64> = s
            .table()
            .iter()
            .filter(|r| r.cohort_start_day == 1)
            .map(|r| r.cohort_size)
            .collect();
        assert!(day1.iter().all(|&n| n == 2), "{day1:?}");
    }

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn forged_periods_beyond_timestamps_are_refused() {
        // The state of issue 10: weeks 0 and 2^31 - 1 for one user.
        let err = RetentionState::decode(&hex("01010001020200feffffff0f")).unwrap_err();
        assert!(err.contains("out of the range of timestamps"), "{err}");
        // The same span as a cohort, and for days and months.
        for period in [Period::Day, Period::Week, Period::Month] {
            let range = period.valid_indexes();
            for (p, ok) in [
                (*range.start(), true),
                (*range.end(), true),
                (*range.start() - 1, false),
                (*range.end() + 1, false),
            ] {
                let mut bytes = vec![1, period.code()];
                put_varint(&mut bytes, 1);
                put_varint(&mut bytes, zigzag(5));
                put_varint(&mut bytes, zigzag(i64::from(p)));
                put_varint(&mut bytes, 0);
                assert_eq!(RetentionState::decode(&bytes).is_ok(), ok, "{period} {p}");
            }
        }
        // Periods with no period kind.
        assert!(RetentionState::decode(&hex("01ff0001020200")).is_err());
        // A gap that would overflow the running period.
        let mut bytes = vec![1, 0, 0, 1, 2, 2, 0];
        put_varint(&mut bytes, zigzag(i64::MAX));
        assert!(RetentionState::decode(&bytes).is_err());
    }

    #[test]
    fn a_span_of_the_whole_timestamp_range_stays_bounded() {
        // One user active on the first and the last day a timestamp can hold.
        let mut s = RetentionState::new();
        s.add(1, None, Some(MIN_TIMESTAMP_US), Period::Day).unwrap();
        s.add(1, None, Some(MAX_TIMESTAMP_US), Period::Day).unwrap();
        let s = RetentionState::decode(&s.encode()).unwrap();
        let rows: Vec<RetentionRow> = s.rows(DEFAULT_MAX_OFFSET).unwrap().collect();
        assert_eq!(rows.len(), DEFAULT_MAX_OFFSET as usize + 1);
        assert_eq!((rows[0].retained, rows[0].retained_or_later), (1, 1));
        // Still active later than the last offset shown.
        let last = rows.last().unwrap();
        assert_eq!((last.retained, last.retained_or_later), (0, 1));
        assert_eq!(
            s.rows(MAX_OFFSET_CEILING).unwrap().count(),
            MAX_OFFSET_CEILING as usize + 1
        );
    }

    #[test]
    fn max_offset_out_of_range_and_huge_tables_are_errors() {
        let s = RetentionState::new();
        assert_eq!(s.rows(-1).unwrap_err(), RowsError::MaxOffset(-1));
        assert_eq!(
            s.rows(MAX_OFFSET_CEILING + 1).unwrap_err(),
            RowsError::MaxOffset(MAX_OFFSET_CEILING + 1)
        );
        assert_eq!(s.rows(0).unwrap().count(), 0);
        // 400 users, each its own day cohort 300 days apart, and one active at the very end:
        // 400 cohorts of 36,526 offsets is more than MAX_ROWS.
        let mut s = RetentionState::new();
        for u in 0..400i64 {
            s.add(
                u,
                None,
                Some(MIN_TIMESTAMP_US + u * 300 * DAY_US),
                Period::Day,
            )
            .unwrap();
        }
        s.add(0, None, Some(MAX_TIMESTAMP_US), Period::Day).unwrap();
        assert_eq!(
            s.rows(MAX_OFFSET_CEILING).unwrap_err(),
            RowsError::TooManyRows(400 * 36_526)
        );
        assert_eq!(s.rows(10).unwrap().count(), 400 * 11);
    }

    #[test]
    fn one_outlier_in_the_year_3000_adds_no_more_than_max_offset_rows() {
        let mut s = RetentionState::new();
        for (u, d) in [(1, 0), (2, 0), (1, 1), (3, 2)] {
            s.add(u, None, Some(day(d)), Period::Day).unwrap();
        }
        let y3000 = days_from_civil(3000, 1, 1);
        s.add(2, None, Some(day(y3000)), Period::Day).unwrap();
        let rows = s.table();
        // Cohorts day 0 (users 1, 2) and day 2 (user 3), each cut at offset 365.
        assert_eq!(rows.len(), 2 * 366);
        let day0: Vec<(u64, u64)> = rows[..3]
            .iter()
            .map(|r| (r.retained, r.retained_or_later))
            .collect();
        assert_eq!(day0, vec![(2, 2), (1, 2), (0, 1)]);
        assert_eq!(s.rows(1).unwrap().count(), 4);
    }
}
