//! An adaptive jitter buffer, sans-IO: decoded packets with their RTP timestamp and
//! arrival instant go in, 20 ms frames come out on the caller's clock.
//!
//! * **Ordering**: frames are kept by (unwrapped) timestamp, so reordered packets play
//!   in order; late packets (behind the playout point) and duplicates are dropped.
//! * **Loss**: a hole with newer frames behind it is concealed — the last frame repeated
//!   at halving level for up to three frames, then silence — and playout moves on.
//! * **Underrun** (nothing newer has arrived: the network delayed everything): the frame
//!   is concealed *without* moving the playout point, so the delay grows by one frame,
//!   and the target delay is raised.
//! * **Adaptation**: the target delay follows the RFC 3550 interarrival jitter estimate
//!   (about three times it, plus a frame), between the configured minimum and maximum;
//!   when more than the target sits in the buffer for half a second, one frame is
//!   dropped to shrink the delay again. A jump beyond the maximum (a new talk spurt after
//!   a long silence, a timestamp jump) resynchronises.
//!
//! Memory is bounded: at most `max_delay / 20 ms + 8` frames of 320 bytes are kept, in a
//! ring ordered by frame index (see [`Frames`]).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::FRAME;

/// Jitter buffer settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JitterConfig {
    /// Lowest target delay.
    pub min_delay: Duration,
    /// Highest target delay.
    pub max_delay: Duration,
}

impl Default for JitterConfig {
    fn default() -> Self {
        Self {
            min_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(200),
        }
    }
}

/// What a frame pulled from the buffer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameStatus {
    /// Audio from the far end (possibly part of a frame, the rest silence).
    Received,
    /// Synthesized to cover a lost or late packet.
    Concealed,
    /// Silence: nothing to play (not started, or the far end stopped sending).
    Missing,
}

/// Counters, for RTCP and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitterStats {
    /// Packets accepted.
    pub packets: u64,
    /// Packets that arrived after their playout time.
    pub late: u64,
    /// Duplicates dropped.
    pub duplicates: u64,
    /// Frames concealed because they were lost.
    pub lost: u64,
    /// Frames concealed because of an underrun (delay grown).
    pub underruns: u64,
    /// Frames dropped to shrink the delay.
    pub shrunk: u64,
    /// Resynchronisations.
    pub resyncs: u64,
}

#[derive(Debug, Clone)]
struct Slot {
    samples: [i16; FRAME],
}

/// The queued frames by index, oldest first. A ring rather than a map: frames arrive almost
/// always in order and leave from the front, so inserting is a push at the back and playing
/// a pop at the front, and a reordered packet is a short search in a handful of frames. A
/// B-tree's node holds eleven 320-byte slots whatever the level (3.6 KB per call for the
/// usual one to three frames queued) and is freed and allocated again as the buffer drains
/// and fills; the ring keeps its few slots.
#[derive(Debug, Clone, Default)]
struct Frames(VecDeque<(u64, Slot)>);

impl Frames {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn first(&self) -> Option<u64> {
        self.0.front().map(|(k, _)| *k)
    }

    fn pop_first(&mut self) {
        self.0.pop_front();
    }

    /// The slot of frame `idx`, made (silent) if it is not queued; true when it was made.
    fn slot(&mut self, idx: u64) -> (&mut Slot, bool) {
        let (at, fresh) = match self.0.binary_search_by_key(&idx, |(k, _)| *k) {
            Ok(at) => (at, false),
            Err(at) => {
                self.0.insert(
                    at,
                    (
                        idx,
                        Slot {
                            samples: [0; FRAME],
                        },
                    ),
                );
                (at, true)
            }
        };
        (&mut self.0[at].1, fresh)
    }

    fn remove(&mut self, idx: u64) -> Option<Slot> {
        let at = self.0.binary_search_by_key(&idx, |(k, _)| *k).ok()?;
        self.0.remove(at).map(|(_, slot)| slot)
    }
}

/// The jitter buffer of one stream.
#[derive(Debug, Clone)]
pub struct JitterBuffer {
    min_frames: u64,
    max_frames: u64,
    frames: Frames,
    /// Unwrapped timestamp of the first packet: frame index 0.
    origin: Option<u64>,
    last_ext: u64,
    cursor: Option<u64>,
    newest: Option<u64>,
    pulls_waiting: u64,
    jitter: f64,
    last_transit: Option<f64>,
    base: Option<Instant>,
    bump: u64,
    pulls_since_bump: u64,
    over_target: u32,
    last: [i16; FRAME],
    conceal_run: u32,
    stats: JitterStats,
}

impl JitterBuffer {
    /// A buffer with `cfg`.
    pub fn new(cfg: JitterConfig) -> Self {
        let f = |d: Duration| u64::try_from(d.as_millis() / 20).unwrap_or(1).max(1);
        let min_frames = f(cfg.min_delay);
        Self {
            min_frames,
            max_frames: f(cfg.max_delay).max(min_frames),
            frames: Frames::default(),
            origin: None,
            last_ext: 0,
            cursor: None,
            newest: None,
            pulls_waiting: 0,
            jitter: 0.0,
            last_transit: None,
            base: None,
            bump: 0,
            pulls_since_bump: 0,
            over_target: 0,
            last: [0; FRAME],
            conceal_run: 0,
            stats: JitterStats::default(),
        }
    }

    /// Counters.
    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    /// The RFC 3550 interarrival jitter estimate, in timestamp units.
    pub fn jitter(&self) -> u32 {
        // Bounded by construction (≤ a few seconds of samples).
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "non-negative and bounded"
        )]
        let j = self.jitter.round() as u32;
        j
    }

    /// The current target delay in frames.
    pub fn target_frames(&self) -> u64 {
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "non-negative and bounded"
        )]
        let from_jitter = (3.0 * self.jitter / FRAME as f64).ceil() as u64 + 1;
        (from_jitter + self.bump).clamp(self.min_frames, self.max_frames)
    }

    /// Frames queued at or after the playout point (a measure of the current delay).
    pub fn level(&self) -> u64 {
        match (self.cursor, self.newest) {
            (Some(c), Some(n)) if n >= c => n + 1 - c,
            _ => 0,
        }
    }

    /// Forgets everything (a new SSRC: a new stream).
    pub fn reset(&mut self) {
        let stats = self.stats;
        *self = Self {
            stats,
            ..Self::new(JitterConfig::default())
        }
        .with_limits(self.min_frames, self.max_frames);
    }

    fn with_limits(mut self, min: u64, max: u64) -> Self {
        self.min_frames = min;
        self.max_frames = max;
        self
    }

    fn unwrap_ts(&mut self, ts: u32) -> u64 {
        if self.origin.is_none() {
            // Start the extended space high so timestamps just before the first packet
            // (reordered at the very start) do not underflow.
            self.last_ext = (1u64 << 32) + u64::from(ts);
            return self.last_ext;
        }
        let last32 = (self.last_ext & 0xffff_ffff) as u32;
        #[expect(
            clippy::cast_possible_wrap,
            reason = "wrapping difference of RTP timestamps"
        )]
        let delta = ts.wrapping_sub(last32) as i32;
        let ext = self.last_ext.wrapping_add_signed(i64::from(delta));
        if delta > 0 {
            self.last_ext = ext;
        }
        ext
    }

    /// Adds a packet's decoded samples (any length; 160 per 20 ms).
    pub fn push(&mut self, timestamp: u32, samples: &[i16], arrival: Instant) {
        let ext = self.unwrap_ts(timestamp);
        // Frames are counted from the first packet's timestamp (less a margin for packets
        // reordered before it), so a stream's 20 ms grid lines up with its packets.
        let origin = *self.origin.get_or_insert(ext);
        let Some(rel) = (ext + FRAME as u64 * 64).checked_sub(origin) else {
            return;
        };
        // Interarrival jitter (RFC 3550 §6.4.1 / A.8), in timestamp units.
        let base = *self.base.get_or_insert(arrival);
        let arrival_ts = arrival.saturating_duration_since(base).as_secs_f64() * 8000.0;
        #[expect(
            clippy::cast_precision_loss,
            reason = "timestamps fit f64 exactly for years"
        )]
        let transit = arrival_ts - ext as f64;
        if let Some(prev) = self.last_transit {
            let d = (transit - prev).abs();
            self.jitter += (d - self.jitter) / 16.0;
        }
        self.last_transit = Some(transit);

        let idx0 = rel / FRAME as u64;
        let off0 = usize::try_from(rel % FRAME as u64).unwrap_or(0);
        if let Some(c) = self.cursor
            && idx0 + u64::from(off0 + samples.len() > FRAME) < c
        {
            self.stats.late += 1;
            return;
        }
        let mut idx = idx0;
        let mut off = off0;
        let mut rest = samples;
        let mut dup = true;
        while !rest.is_empty() {
            let n = (FRAME - off).min(rest.len());
            if self.cursor.is_none_or(|c| idx >= c) {
                let (slot, fresh) = self.frames.slot(idx);
                dup &= !fresh;
                slot.samples[off..off + n].copy_from_slice(&rest[..n]);
                self.newest = Some(self.newest.map_or(idx, |m| m.max(idx)));
            }
            rest = &rest[n..];
            idx += 1;
            off = 0;
        }
        if dup && !samples.is_empty() {
            self.stats.duplicates += 1;
            return;
        }
        self.stats.packets += 1;
        // Bound memory: drop the oldest beyond the maximum delay plus slack.
        while self.frames.len() as u64 > self.max_frames + 8 {
            self.frames.pop_first();
        }
    }

    fn conceal(&mut self, out: &mut [i16]) -> FrameStatus {
        self.conceal_run += 1;
        if self.conceal_run > 3 {
            out.fill(0);
            return FrameStatus::Missing;
        }
        let shift = self.conceal_run;
        for (o, s) in out.iter_mut().zip(self.last.iter()) {
            *o = *s >> shift;
        }
        FrameStatus::Concealed
    }

    /// Pulls the next 20 ms frame into `out` (160 samples; a shorter slice gets the
    /// frame's start). Call it every 20 ms.
    pub fn pop(&mut self, out: &mut [i16]) -> FrameStatus {
        self.pulls_since_bump += 1;
        if self.pulls_since_bump >= 150 && self.bump > 0 {
            // Three seconds without an underrun: give back one frame of added delay.
            self.bump -= 1;
            self.pulls_since_bump = 0;
        }
        let target = self.target_frames();
        let Some(newest) = self.newest else {
            out.fill(0);
            return FrameStatus::Missing;
        };
        let cursor = match self.cursor {
            Some(c) => c,
            None => {
                // Prefill: wait until the target delay is buffered (or has elapsed).
                let oldest = self.frames.first().unwrap_or(newest);
                self.pulls_waiting += 1;
                if newest + 1 - oldest < target && self.pulls_waiting < target {
                    out.fill(0);
                    return FrameStatus::Missing;
                }
                self.cursor = Some(oldest);
                oldest
            }
        };
        let mut cursor = cursor;
        if newest + 1 > cursor + self.max_frames + 2 {
            // Far behind (a timestamp jump or a new talk spurt): play from target behind
            // the newest frame.
            cursor = newest + 1 - target;
            self.stats.resyncs += 1;
        }
        while let Some(k) = self.frames.first() {
            if k >= cursor {
                break;
            }
            self.frames.pop_first();
        }
        let n = out.len().min(FRAME);
        let status = if let Some(slot) = self.frames.remove(cursor) {
            out[..n].copy_from_slice(&slot.samples[..n]);
            out[n..].fill(0);
            self.last = slot.samples;
            self.conceal_run = 0;
            cursor += 1;
            // Shrink: more than target+1 frames queued for half a second → skip one.
            if newest + 1 - cursor > target + 1 {
                self.over_target += 1;
                if self.over_target >= 25 {
                    self.over_target = 0;
                    if self.frames.remove(cursor).is_some() || newest > cursor {
                        cursor += 1;
                        self.stats.shrunk += 1;
                    }
                }
            } else {
                self.over_target = 0;
            }
            FrameStatus::Received
        } else if newest >= cursor + target || (newest > cursor && self.conceal_run >= 2) {
            // A hole with a target's worth of newer frames queued (or one we already
            // waited two frames for): the packet is lost.
            self.stats.lost += 1;
            cursor += 1;
            self.conceal(out)
        } else {
            // Nothing (or too little) newer: the packet is late, not lost. Hold the
            // playout point (the delay grows) and raise the target.
            if self.conceal_run < 3 {
                self.stats.underruns += 1;
                if self.bump < self.max_frames {
                    self.bump += 1;
                }
                self.pulls_since_bump = 0;
            }
            self.conceal(out)
        };
        self.cursor = Some(cursor);
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(v: i16) -> [i16; FRAME] {
        [v; FRAME]
    }

    /// Runs a schedule: packet k (timestamp k·160, value k+1) arrives at `arrive(k)` ms;
    /// the buffer is pulled every 20 ms. Returns the values played (0 = none).
    fn run(n: u32, arrive: impl Fn(u32) -> Option<u64>, pulls: u32) -> (Vec<i16>, JitterBuffer) {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let mut events: Vec<(u64, u32)> =
            (0..n).filter_map(|k| arrive(k).map(|a| (a, k))).collect();
        events.sort();
        let mut played = Vec::new();
        let mut e = 0;
        for p in 0..pulls {
            let now_ms = u64::from(p) * 20;
            while e < events.len() && events[e].0 <= now_ms {
                let k = events[e].1;
                let v = i16::try_from(k + 1).unwrap();
                jb.push(
                    1000 + k * 160,
                    &frame(v),
                    t0 + Duration::from_millis(events[e].0),
                );
                e += 1;
            }
            let mut out = [0i16; FRAME];
            let st = jb.pop(&mut out);
            played.push(if st == FrameStatus::Received {
                out[0]
            } else {
                0
            });
        }
        (played, jb)
    }

    fn received(played: &[i16]) -> Vec<i16> {
        played.iter().copied().filter(|&v| v != 0).collect()
    }

    #[test]
    fn steady_stream_plays_in_order_with_constant_delay() {
        let (played, jb) = run(100, |k| Some(u64::from(k) * 20), 100);
        assert_eq!(received(&played), (1..=100).collect::<Vec<i16>>());
        assert_eq!(
            jb.stats().lost + jb.stats().late + jb.stats().underruns,
            0,
            "{:?}",
            jb.stats()
        );
        assert!(jb.target_frames() <= 2);
        // The ring holds the few frames in flight, not a map node's worth.
        assert!(jb.frames.0.capacity() <= 4, "{}", jb.frames.0.capacity());
    }

    #[test]
    fn a_flood_of_far_apart_timestamps_keeps_the_bound() {
        // Every packet a new frame far from the others, out of order: the store stays at
        // the bound, ordered by frame index.
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        for k in 0..500u32 {
            let ts = 1000 + (k * 7919 % 500) * 160 * 3;
            jb.push(ts, &frame(1), t0 + Duration::from_millis(u64::from(k)));
        }
        let bound = usize::try_from(jb.max_frames + 8).unwrap();
        assert_eq!(jb.frames.len(), bound);
        let keys: Vec<u64> = jb.frames.0.iter().map(|(k, _)| *k).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
    }

    #[test]
    fn reordered_packets_play_in_order() {
        // Pairs swapped: 1,0,3,2,… each pair's second packet 5 ms late.
        let (played, jb) = run(
            100,
            |k| {
                Some(if k % 2 == 0 {
                    u64::from(k) * 20 + 25
                } else {
                    u64::from(k) * 20 - 15
                })
            },
            115,
        );
        // The very first packet may be given up while nothing is known about the path
        // (it arrived after its successor and after playout started); none after it.
        let r = received(&played);
        assert!(r.ends_with(&(2..=100).collect::<Vec<i16>>()), "{r:?}");
        assert!(
            jb.stats().late <= 1 && jb.stats().lost == 0,
            "{:?}",
            jb.stats()
        );
    }

    #[test]
    fn loss_is_concealed_and_playout_moves_on() {
        let (played, jb) = run(
            50,
            |k| (k != 20 && k != 21).then_some(u64::from(k) * 20),
            60,
        );
        let r = received(&played);
        assert_eq!(r.len(), 48);
        assert!(!r.contains(&21) && !r.contains(&22));
        assert_eq!(jb.stats().lost, 2);
        // Still in order around the hole.
        assert!(r.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn jitter_grows_the_delay_then_it_shrinks_back() {
        // 120 ms of delay on every fifth packet for 6 s, then a clean stream for 20 s.
        let (played, jb) = run(
            1300,
            |k| Some(u64::from(k) * 20 + if k < 300 && k % 5 == 0 { 120 } else { 0 }),
            1300,
        );
        let r = received(&played);
        let s = jb.stats();
        // Early packets may be late while the buffer learns; after that nothing is lost.
        assert!(s.late <= 6, "{s:?}");
        assert!(r.len() >= 1290, "{}", r.len());
        assert!(r.windows(2).all(|w| w[0] < w[1]));
        assert!(
            s.shrunk > 0,
            "{s:?} level {} target {} bump {}",
            jb.level(),
            jb.target_frames(),
            jb.bump
        );
        // Back to a small delay at the end.
        assert!(jb.level() <= 3, "level {}", jb.level());
        assert!(jb.target_frames() <= 2);
    }

    #[test]
    fn duplicates_and_late_packets_are_dropped() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        jb.push(0, &frame(1), t0);
        jb.push(0, &frame(1), t0);
        assert_eq!(jb.stats().duplicates, 1);
        let mut out = [0; FRAME];
        assert_eq!(jb.pop(&mut out), FrameStatus::Received);
        jb.push(160, &frame(2), t0 + Duration::from_millis(20));
        assert_eq!(jb.pop(&mut out), FrameStatus::Received);
        // Timestamp 0 again, now behind the playout point.
        jb.push(0, &frame(9), t0 + Duration::from_millis(40));
        assert_eq!(jb.stats().late, 1);
    }

    #[test]
    fn stopped_stream_goes_missing_and_resyncs_on_a_jump() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let mut out = [0; FRAME];
        for k in 0..10u32 {
            jb.push(
                k * 160,
                &frame(5),
                t0 + Duration::from_millis(u64::from(k) * 20),
            );
            jb.pop(&mut out);
        }
        let statuses: Vec<FrameStatus> = (0..6).map(|_| jb.pop(&mut out)).collect();
        assert!(statuses.iter().take(1).all(|s| *s != FrameStatus::Missing));
        assert_eq!(statuses[5], FrameStatus::Missing);
        // The far end comes back 10 s later in timestamp terms.
        for k in 0..3u32 {
            jb.push(80_000 + k * 160, &frame(7), t0 + Duration::from_secs(10));
        }
        let mut got = false;
        for _ in 0..4 {
            if jb.pop(&mut out) == FrameStatus::Received {
                assert_eq!(out[0], 7);
                got = true;
            }
        }
        assert!(got);
        assert!(jb.stats().resyncs >= 1);
    }

    #[test]
    fn timestamps_wrap() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let mut out = [0; FRAME];
        let mut got = Vec::new();
        for k in 0..10u32 {
            let ts = (u32::MAX - 800).wrapping_add(k * 160);
            jb.push(
                ts,
                &frame(i16::try_from(k + 1).unwrap()),
                t0 + Duration::from_millis(u64::from(k) * 20),
            );
            if jb.pop(&mut out) == FrameStatus::Received {
                got.push(out[0]);
            }
        }
        assert!(got.windows(2).all(|w| w[1] == w[0] + 1), "{got:?}");
        assert!(got.len() >= 8);
    }
}
