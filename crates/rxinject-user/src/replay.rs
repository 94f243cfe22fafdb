//! Replay pacing, tcpreplay's way: when each frame is due, relative to the start.

use std::time::Duration;

/// How fast to replay.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pace {
    /// The file's own timing, sped up (or slowed down) by a factor (1.0: as captured).
    File { multiplier: f64 },
    /// A fixed rate of frames per second.
    Pps(f64),
    /// A fixed rate of megabits per second (frame bytes on the wire, as tcpreplay counts).
    Mbps(f64),
    /// As fast as the driver takes them.
    TopSpeed,
}

/// When each of `frames` (timestamp in ns, length in bytes) is due, from the start of the
/// replay. With the file's timing each frame waits for the gap since the previous one, as
/// tcpreplay does: a timestamp that goes back in time counts as no delay, and `max_gap`
/// (after the multiplier) caps any single gap, so a file whose clock jumps by decades
/// replays in the time its real gaps take.
pub fn schedule(frames: &[(i128, usize)], pace: Pace, max_gap: Option<Duration>) -> Vec<Duration> {
    let mut out = Vec::with_capacity(frames.len());
    let mut bits: f64 = 0.0;
    let mut last = Duration::ZERO;
    let mut prev_ts = frames.first().map_or(0, |f| f.0);
    let cap = |d: Duration| max_gap.map_or(d, |m| d.min(m));
    for (i, &(ts, len)) in frames.iter().enumerate() {
        let due = match pace {
            Pace::TopSpeed => Duration::ZERO,
            Pace::File { multiplier } => {
                let gap = (ts - prev_ts).max(0) as f64 / multiplier.max(f64::MIN_POSITIVE);
                prev_ts = ts;
                last.saturating_add(cap(Duration::from_nanos(gap.min(u64::MAX as f64) as u64)))
            }
            Pace::Pps(pps) => Duration::from_secs_f64(i as f64 / pps.max(f64::MIN_POSITIVE)),
            Pace::Mbps(mbps) => {
                let d = Duration::from_secs_f64(bits / (mbps.max(f64::MIN_POSITIVE) * 1e6));
                bits += (len * 8) as f64;
                d
            }
        };
        last = last.max(due);
        out.push(last);
    }
    out
}

/// Splits frames into writes: each write holds frames due within `window` of its first
/// frame, at most `max_frames` of them and `max_bytes` of records. Returns ranges.
pub fn batches(
    due: &[Duration],
    record_lens: &[usize],
    window: Duration,
    max_frames: usize,
    max_bytes: usize,
) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < due.len() {
        let mut end = start;
        let mut bytes = 0;
        while end < due.len()
            && end - start < max_frames
            && bytes + record_lens[end] <= max_bytes
            && due[end] <= due[start] + window
        {
            bytes += record_lens[end];
            end += 1;
        }
        if end == start {
            end = start + 1; // a record alone larger than the limit: its own write (refused there)
        }
        out.push(start..end);
        start = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_timing_and_multiplier() {
        let f = [
            (1_000_000_000, 60),
            (1_500_000_000, 60),
            (1_400_000_000, 60),
            (3_000_000_000, 60),
        ];
        // The step back is no delay; the next gap counts from the frame before it.
        let d = schedule(&f, Pace::File { multiplier: 1.0 }, None);
        assert_eq!(d, [0, 500, 500, 2100].map(Duration::from_millis));
        let d = schedule(&f, Pace::File { multiplier: 2.0 }, None);
        assert_eq!(d[3], Duration::from_millis(1050));
        // A cap on any single gap, after the multiplier.
        let d = schedule(
            &f,
            Pace::File { multiplier: 1.0 },
            Some(Duration::from_millis(700)),
        );
        assert_eq!(d, [0, 500, 500, 1200].map(Duration::from_millis));
    }

    #[test]
    fn a_clock_jumping_by_decades_and_back_is_one_gap() {
        const YEAR_NS: i128 = 365 * 24 * 3600 * 1_000_000_000;
        let f = [
            (0, 60),
            (68 * YEAR_NS, 60),
            (YEAR_NS, 60),
            (YEAR_NS + 1_000_000, 60),
        ];
        let d = schedule(&f, Pace::File { multiplier: 1.0 }, None);
        let jump = Duration::from_nanos((68 * YEAR_NS) as u64);
        assert_eq!(d, [Duration::ZERO, jump, jump, jump + Duration::from_millis(1)]);
        let d = schedule(&f, Pace::File { multiplier: 1.0 }, Some(Duration::from_secs(1)));
        assert_eq!(d[3], Duration::from_millis(1001));
    }

    #[test]
    fn fixed_rates() {
        let f = vec![(0, 125); 5];
        assert_eq!(schedule(&f, Pace::Pps(10.0), None)[4], Duration::from_millis(400));
        // 125 bytes = 1000 bits; at 1 Mbps each takes 1 ms.
        assert_eq!(schedule(&f, Pace::Mbps(1.0), None)[3], Duration::from_millis(3));
        assert!(schedule(&f, Pace::TopSpeed, None).iter().all(|d| d.is_zero()));
    }

    #[test]
    fn batches_respect_window_and_limits() {
        let due: Vec<Duration> = [0, 0, 1, 5, 5, 5, 30].map(Duration::from_millis).to_vec();
        let lens = vec![100; 7];
        assert_eq!(
            batches(&due, &lens, Duration::from_millis(2), 100, 10_000),
            vec![0..3, 3..6, 6..7]
        );
        assert_eq!(
            batches(&due, &lens, Duration::from_millis(100), 2, 10_000),
            vec![0..2, 2..4, 4..6, 6..7]
        );
        assert_eq!(
            batches(&due, &lens, Duration::from_millis(100), 100, 250),
            vec![0..2, 2..4, 4..6, 6..7]
        );
        assert_eq!(batches(&due[..1], &[500], Duration::ZERO, 10, 100), vec![0..1]);
    }
}
