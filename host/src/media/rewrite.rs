//! Per-subscriber RTP sequence number and timestamp rewriting.
//!
//! A subscriber's decoder keeps one jitter buffer per SSRC and treats gaps or jumps backwards
//! in sequence numbers as loss. When the forwarded source changes (publisher replaced,
//! simulcast layer switch) the new source numbers its packets independently, so the
//! [`StreamRewriter`] re-bases every source onto one continuous output numbering.

use std::time::{Duration, Instant};

/// How many recently replaced sources are remembered, so their late packets can be told
/// apart from a switch back. Simulcast has three layers; one spare covers a publisher swap.
const RETIRED_SLOTS: usize = 4;

/// How long after a switch a packet from the replaced source counts as late rather than as a
/// switch back. Far beyond any NACK/reorder horizon, yet short enough that the retired
/// source's sequence numbers cannot have advanced half the u16 space (RFC 1982 stays valid).
const LATE_HORIZON: Duration = Duration::from_secs(5);

/// Once the output has advanced this far past a switch point, packets older than the switch
/// are no longer plausible and the guard is dropped before u16 comparison could wrap.
const FLOOR_RETIRE_DISTANCE: u16 = 0x4000;

/// Timestamp jumps are capped below half the u32 space, beyond which receivers would read
/// the jump as going backwards.
const MAX_TS_JUMP: u32 = 0x7FFF_FFFF;

/// RFC 1982 serial comparison: true when `a` is strictly after `b`.
pub(crate) fn seq_newer(a: u16, b: u16) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000
}

/// RFC 1982 serial comparison for 32-bit RTP timestamps: true when `a` is at or after `b`.
fn ts_at_or_after(a: u32, b: u32) -> bool {
    a.wrapping_sub(b) < 0x8000_0000
}

/// Converts wall time to RTP clock ticks, at least one so a switch always moves forward.
fn ticks(elapsed: Duration, clock_rate: u32) -> u32 {
    let raw = elapsed.as_nanos() * u128::from(clock_rate) / 1_000_000_000;
    u32::try_from(raw)
        .unwrap_or(MAX_TS_JUMP)
        .clamp(1, MAX_TS_JUMP)
}

/// The source currently being forwarded and how it maps onto the output.
#[derive(Debug, Clone, Copy)]
struct Current {
    ssrc: u32,
    seq_offset: u16,
    ts_offset: u32,
    /// Output seq the previous source ended at; packets at or before it would collide with
    /// what was already sent. `None` for the first source, or once far behind.
    floor: Option<u16>,
}

/// A source switched away from, remembered to recognise its late packets.
#[derive(Debug, Clone, Copy)]
struct Retired {
    ssrc: u32,
    max_input_seq: u16,
    retired_at: Instant,
}

/// Rewrites sequence numbers and timestamps of one subscriber stream so the subscriber sees a
/// single continuous RTP stream across source changes.
#[derive(Debug, Clone)]
pub struct StreamRewriter {
    out_ssrc: u32,
    clock_rate: u32,
    current: Option<Current>,
    /// Highest output sequence number sent so far.
    max_out_seq: u16,
    /// Highest output timestamp sent so far, and when its latest packet arrived.
    max_out_ts: u32,
    max_ts_arrival: Option<Instant>,
    retired: [Option<Retired>; RETIRED_SLOTS],
    /// The next packet of the current source re-bases its sequence numbers (see
    /// [`StreamRewriter::resume_contiguously`]).
    resume_pending: bool,
}

impl StreamRewriter {
    /// Creates a rewriter emitting on `out_ssrc` with an RTP clock of `clock_rate` Hz.
    pub fn new(out_ssrc: u32, clock_rate: u32) -> Self {
        Self {
            out_ssrc,
            clock_rate,
            current: None,
            max_out_seq: 0,
            max_out_ts: 0,
            max_ts_arrival: None,
            retired: [None; RETIRED_SLOTS],
            resume_pending: false,
        }
    }

    /// Makes the next packet of the current source follow the last output sequence number,
    /// so packets the caller chose not to forward (skipped while waiting for a keyframe) leave
    /// no gap the receiver would NACK in vain. Timestamps keep their offset: same clock.
    pub fn resume_contiguously(&mut self) {
        self.resume_pending = self.current.is_some();
    }

    /// The SSRC every rewritten packet is sent with.
    pub fn out_ssrc(&self) -> u32 {
        self.out_ssrc
    }

    /// The source SSRC currently being forwarded, if any packet has been seen.
    pub fn current_source(&self) -> Option<u32> {
        self.current.map(|c| c.ssrc)
    }

    /// True when [`rewrite`](Self::rewrite) would drop this packet as stale (see there),
    /// without changing any state; lets a caller discard it before other gating.
    pub fn is_stale(&self, src_ssrc: u32, seq: u16, arrival: Instant) -> bool {
        match self.current {
            Some(c) if c.ssrc == src_ssrc => {
                self.precedes_switch(c, seq.wrapping_add(c.seq_offset))
            }
            Some(_) => self.is_late_from_retired(src_ssrc, seq, arrival),
            None => false,
        }
    }

    /// Maps one source packet to its output `(seq, ts)`, or `None` when it must be dropped
    /// (a late packet from a replaced source, or one older than the current source's switch
    /// point). A packet from an SSRC other than the current one switches the stream to it.
    pub fn rewrite(
        &mut self,
        src_ssrc: u32,
        seq: u16,
        ts: u32,
        arrival: Instant,
    ) -> Option<(u16, u32)> {
        let current = match self.current {
            Some(c) if c.ssrc == src_ssrc && self.resume_pending => self.resume(c, seq),
            Some(c) if c.ssrc == src_ssrc => c,
            Some(_) if self.is_late_from_retired(src_ssrc, seq, arrival) => return None,
            Some(old) => self.switch(old, src_ssrc, seq, ts, arrival),
            None => self.start(src_ssrc, seq),
        };
        let out_seq = seq.wrapping_add(current.seq_offset);
        let out_ts = ts.wrapping_add(current.ts_offset);
        if seq_newer(out_seq, self.max_out_seq) {
            self.max_out_seq = out_seq;
            if let Some(floor) = current.floor
                && out_seq.wrapping_sub(floor) >= FLOOR_RETIRE_DISTANCE
                && let Some(c) = self.current.as_mut()
            {
                c.floor = None;
            }
        } else if self.precedes_switch(current, out_seq) {
            return None;
        }
        let first_ts = self.max_ts_arrival.is_none();
        if first_ts || ts_at_or_after(out_ts, self.max_out_ts) {
            self.max_out_ts = out_ts;
            self.max_ts_arrival = Some(arrival);
        }
        Some((out_seq, out_ts))
    }

    /// True when `out_seq`, not newer than the max, lies at or before the point where
    /// `current` took over: it would reuse a number the previous source already sent.
    fn precedes_switch(&self, current: Current, out_seq: u16) -> bool {
        current.floor.is_some_and(|floor| {
            !seq_newer(out_seq, self.max_out_seq)
                && self.max_out_seq.wrapping_sub(out_seq) >= self.max_out_seq.wrapping_sub(floor)
        })
    }

    /// First packet ever: offsets zero, so output equals input. Packets numbered before it
    /// (skipped while the caller waited for a keyframe, then repaired late by RTX) precede
    /// the stream this subscriber sees: forwarding them would open gaps it NACKs in vain.
    fn start(&mut self, ssrc: u32, seq: u16) -> Current {
        let current = Current {
            ssrc,
            seq_offset: 0,
            ts_offset: 0,
            floor: Some(seq.wrapping_sub(1)),
        };
        self.current = Some(current);
        self.max_out_seq = seq;
        current
    }

    /// Re-bases onto a new source so its first packet follows the last output seq and its
    /// timestamp advances by the wall time since the newest output timestamp.
    fn switch(&mut self, old: Current, ssrc: u32, seq: u16, ts: u32, now: Instant) -> Current {
        self.resume_pending = false;
        self.retire(old, now);
        self.retired = self.retired.map(|slot| slot.filter(|r| r.ssrc != ssrc));
        let elapsed = self
            .max_ts_arrival
            .map_or(Duration::ZERO, |at| now.saturating_duration_since(at));
        let next_seq = self.max_out_seq.wrapping_add(1);
        let next_ts = self
            .max_out_ts
            .wrapping_add(ticks(elapsed, self.clock_rate));
        let current = Current {
            ssrc,
            seq_offset: next_seq.wrapping_sub(seq),
            ts_offset: next_ts.wrapping_sub(ts),
            floor: Some(self.max_out_seq),
        };
        self.current = Some(current);
        current
    }

    /// Re-bases the current source's sequence numbers onto `max_out_seq + 1`.
    fn resume(&mut self, current: Current, seq: u16) -> Current {
        self.resume_pending = false;
        let resumed = Current {
            seq_offset: self.max_out_seq.wrapping_add(1).wrapping_sub(seq),
            floor: Some(self.max_out_seq),
            ..current
        };
        self.current = Some(resumed);
        resumed
    }

    /// Remembers `old` in a free slot, or over the longest-retired one.
    fn retire(&mut self, old: Current, now: Instant) {
        let entry = Retired {
            ssrc: old.ssrc,
            max_input_seq: self.max_out_seq.wrapping_sub(old.seq_offset),
            retired_at: now,
        };
        // `None` orders before any `Some`, so free slots are taken first.
        if let Some(slot) = self
            .retired
            .iter_mut()
            .min_by_key(|slot| slot.map(|r| r.retired_at))
        {
            *slot = Some(entry);
        }
    }

    /// True for a packet from a replaced source that is no newer than what it had sent when
    /// replaced, within [`LATE_HORIZON`]: a straggler, not a switch back.
    fn is_late_from_retired(&self, ssrc: u32, seq: u16, now: Instant) -> bool {
        self.retired.iter().flatten().any(|r| {
            r.ssrc == ssrc
                && now.saturating_duration_since(r.retired_at) < LATE_HORIZON
                && !seq_newer(seq, r.max_input_seq)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resuming_after_skipped_packets_leaves_no_sequence_gap() {
        let t = Instant::now();
        let mut rw = StreamRewriter::new(9, 90_000);
        assert_eq!(rw.rewrite(1, 100, 1000, t), Some((100, 1000)));
        // 101..=104 are skipped by the caller, then it resumes at 105.
        rw.resume_contiguously();
        assert_eq!(rw.rewrite(1, 105, 4000, t), Some((101, 4000)));
        assert_eq!(rw.rewrite(1, 106, 4000, t), Some((102, 4000)));
        // A straggler from before the resume point would collide: dropped.
        assert_eq!(rw.rewrite(1, 103, 3000, t), None);
    }

    #[test]
    fn packet_older_than_the_first_forwarded_one_is_dropped() {
        let t = Instant::now();
        let mut rw = StreamRewriter::new(9, 90_000);
        assert_eq!(rw.rewrite(1, 200, 9000, t), Some((200, 9000)));
        assert_eq!(rw.rewrite(1, 198, 6000, t), None);
        assert_eq!(rw.rewrite(1, 201, 9000, t), Some((201, 9000)));
    }

    #[test]
    fn resume_before_any_packet_is_a_no_op() {
        let mut rw = StreamRewriter::new(9, 90_000);
        rw.resume_contiguously();
        assert_eq!(rw.rewrite(1, 50, 7, Instant::now()), Some((50, 7)));
    }

    const A: u32 = 0xAAAA_0001;
    const B: u32 = 0xBBBB_0002;
    const VIDEO_HZ: u32 = 90_000;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn steady_stream_passes_through_with_unchanged_seq_and_ts_deltas() {
        let t0 = Instant::now();
        let mut rw = StreamRewriter::new(0x1234, VIDEO_HZ);
        assert_eq!(rw.out_ssrc(), 0x1234);
        for i in 0..10u16 {
            let ts = 5_000 + u32::from(i) * 3_000;
            let out = rw.rewrite(A, 700 + i, ts, t0 + ms(u64::from(i) * 33));
            assert_eq!(out, Some((700 + i, ts)));
        }
        assert_eq!(rw.current_source(), Some(A));
    }

    #[test]
    fn seq_and_ts_wrap_around_without_breaking_continuity() {
        let t0 = Instant::now();
        let mut rw = StreamRewriter::new(1, VIDEO_HZ);
        let ts0 = u32::MAX - 1_000;
        assert_eq!(rw.rewrite(A, 65_534, ts0, t0), Some((65_534, ts0)));
        assert_eq!(rw.rewrite(A, 65_535, ts0, t0), Some((65_535, ts0)));
        let ts1 = ts0.wrapping_add(3_000);
        assert_eq!(rw.rewrite(A, 0, ts1, t0 + ms(33)), Some((0, ts1)));
        assert_eq!(rw.rewrite(A, 1, ts1, t0 + ms(33)), Some((1, ts1)));
        // A switch right after the wrap still continues from the wrapped maximum.
        let (seq, ts) = rw.rewrite(B, 30_000, 9, t0 + ms(66)).unwrap();
        assert_eq!(seq, 2);
        assert_eq!(ts, ts1.wrapping_add(3 * 990));
    }

    #[test]
    fn reordered_and_duplicate_packets_keep_their_relative_position() {
        let t0 = Instant::now();
        let mut rw = StreamRewriter::new(1, VIDEO_HZ);
        let (base, _) = rw.rewrite(A, 10, 100, t0).unwrap();
        let (late, _) = rw.rewrite(A, 12, 100, t0).unwrap();
        let (middle, _) = rw.rewrite(A, 11, 100, t0).unwrap();
        let (again, _) = rw.rewrite(A, 11, 100, t0).unwrap();
        assert_eq!((late - base, middle - base), (2, 1));
        assert_eq!(again, middle);
        // Reordering must not pull the maximum back: the next packet follows 12.
        assert_eq!(rw.rewrite(A, 13, 100, t0).map(|o| o.0), Some(base + 3));
    }

    #[test]
    fn switch_to_new_ssrc_continues_seq_and_advances_ts_by_elapsed_time() {
        let t0 = Instant::now();
        let mut rw = StreamRewriter::new(1, VIDEO_HZ);
        rw.rewrite(A, 100, 1_000, t0);
        rw.rewrite(A, 101, 1_000, t0 + ms(5));
        let out = rw.rewrite(B, 5_000, 777_777, t0 + ms(105));
        // 100 ms after the last packet at 90 kHz is 9000 ticks.
        assert_eq!(out, Some((102, 10_000)));
        assert_eq!(rw.current_source(), Some(B));
        // The new source then keeps its own deltas.
        assert_eq!(
            rw.rewrite(B, 5_001, 780_777, t0 + ms(138)),
            Some((103, 13_000))
        );
    }

    #[test]
    fn switch_without_elapsed_time_still_advances_ts_by_one_tick() {
        let t0 = Instant::now();
        let mut rw = StreamRewriter::new(1, 48_000);
        rw.rewrite(A, 1, 960, t0);
        assert_eq!(rw.rewrite(B, 9, 0, t0), Some((2, 961)));
    }

    #[test]
    fn late_packet_from_old_ssrc_after_switch_is_dropped() {
        let t0 = Instant::now();
        let mut rw = StreamRewriter::new(1, VIDEO_HZ);
        rw.rewrite(A, 100, 0, t0);
        rw.rewrite(A, 101, 0, t0);
        rw.rewrite(B, 7, 50, t0 + ms(10));
        assert!(rw.is_stale(A, 101, t0 + ms(11)));
        assert!(!rw.is_stale(B, 8, t0 + ms(11)));
        assert_eq!(rw.rewrite(A, 101, 0, t0 + ms(11)), None);
        assert_eq!(rw.rewrite(A, 99, 0, t0 + ms(12)), None);
        assert_eq!(rw.current_source(), Some(B));
        assert_eq!(rw.rewrite(B, 8, 50, t0 + ms(13)).map(|o| o.0), Some(103));
    }

    #[test]
    fn packet_older_than_the_switch_point_of_new_source_is_dropped() {
        let t0 = Instant::now();
        let mut rw = StreamRewriter::new(1, VIDEO_HZ);
        rw.rewrite(A, 100, 0, t0);
        assert_eq!(rw.rewrite(B, 5_000, 0, t0 + ms(10)).map(|o| o.0), Some(101));
        // 4999 would map onto 100, which A already used.
        assert!(rw.is_stale(B, 4_999, t0 + ms(11)));
        assert_eq!(rw.rewrite(B, 4_999, 0, t0 + ms(11)), None);
        assert_eq!(rw.rewrite(B, 5_000, 0, t0 + ms(12)).map(|o| o.0), Some(101));
    }

    #[test]
    fn switching_back_and_forth_keeps_output_monotonic() {
        let t0 = Instant::now();
        let mut rw = StreamRewriter::new(1, VIDEO_HZ);
        let (mut a_seq, mut b_seq) = (65_530u16, 10u16);
        let (mut a_ts, mut b_ts) = (u32::MAX - 20_000, 123u32);
        let mut last: Option<(u16, u32)> = None;
        for step in 0..40u64 {
            let now = t0 + ms(step * 20);
            let use_a = (step / 5) % 2 == 0;
            let (src, seq, ts) = if use_a {
                (A, &mut a_seq, &mut a_ts)
            } else {
                (B, &mut b_seq, &mut b_ts)
            };
            // Both sources keep producing whether or not they are forwarded.
            let out = rw.rewrite(src, *seq, *ts, now);
            *seq = seq.wrapping_add(1);
            *ts = ts.wrapping_add(1_800);
            let (out_seq, out_ts) = out.unwrap();
            if let Some((prev_seq, prev_ts)) = last {
                assert_eq!(out_seq, prev_seq.wrapping_add(1), "step {step}");
                assert!(
                    ts_at_or_after(out_ts, prev_ts.wrapping_add(1)),
                    "step {step}"
                );
            }
            last = Some((out_seq, out_ts));
            if use_a {
                b_seq = b_seq.wrapping_add(1);
            } else {
                a_seq = a_seq.wrapping_add(1);
            }
        }
    }

    /// Deterministic generator so the randomized test is reproducible.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> u32 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 32) as u32
        }
    }

    #[test]
    fn random_packets_never_panic_and_is_stale_predicts_drops() {
        let t0 = Instant::now() + Duration::from_secs(60);
        let mut rng = Lcg(0x5EED);
        for clock_rate in [0, 8_000, 90_000, u32::MAX] {
            let mut rw = StreamRewriter::new(9, clock_rate);
            for _ in 0..5_000 {
                let src = rng.next() % 6;
                let seq = rng.next() as u16;
                let ts = rng.next();
                let jitter = Duration::from_millis(u64::from(rng.next() % 120_000));
                let now = if rng.next().is_multiple_of(4) {
                    t0 - jitter / 2
                } else {
                    t0 + jitter
                };
                let stale = rw.is_stale(src, seq, now);
                assert_eq!(rw.rewrite(src, seq, ts, now).is_none(), stale);
            }
        }
    }
}
