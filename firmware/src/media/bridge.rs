//! Joining two calls' audio: the frame queues between two media sessions.
//!
//! Each call keeps its own frame loop and port (each port is paced by its own far end),
//! so a bridge is two one-way queues: every frame a session reads from its caller goes
//! into the queue towards the peer, and every frame it sends takes the peer's oldest
//! queued frame. Nothing waits: a session that ticks before its peer has produced this
//! period's frame takes the previous one, so the added delay is below one frame and no
//! frame is held back on purpose.
//!
//! The two clocks drift (two modems, two networks), so the queue is kept short: beyond
//! [`MAX_DEPTH`] frames the oldest is dropped (bounded latency), and when it runs dry the
//! last frame is repeated once at half level before silence (a gap is heard as a click,
//! a repeated frame is not). Sessions at different rates (8 and 16 kHz) are converted on
//! the way out of the queue.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

/// Most frames queued towards a peer (60 ms): older ones are dropped.
pub const MAX_DEPTH: usize = 3;

/// Longest frame (20 ms at 16 kHz).
const MAX_FRAME: usize = 320;

/// A frame in the queue.
#[derive(Clone, Copy)]
pub(crate) struct Frame {
    samples: [i16; MAX_FRAME],
    len: usize,
    rate: u32,
}

impl Frame {
    /// A copy of `samples` (at most one frame) at `rate`.
    pub(crate) fn new(samples: &[i16], rate: u32) -> Self {
        let mut frame = Frame {
            samples: [0; MAX_FRAME],
            len: samples.len().min(MAX_FRAME),
            rate,
        };
        frame.samples[..frame.len].copy_from_slice(&samples[..frame.len]);
        frame
    }
}

/// The peer audio a session is joined to: the other end of a two-party bridge, or a
/// conference ([`super::conference`]). The media core sends the caller's frame and takes
/// the frame the caller hears from it, once per tick.
pub(crate) trait Joined: Send {
    /// Passes the caller's frame on.
    fn send(&mut self, samples: &[i16], rate: u32);
    /// Fills `out` (one frame at `rate`) with what the caller hears; false when nothing
    /// new came.
    fn receive(&mut self, out: &mut [i16], rate: u32) -> bool;
}

/// Counters of one direction of a bridge.
#[derive(Debug, Default)]
pub struct BridgeStats {
    /// Frames passed on.
    pub frames: AtomicU64,
    /// Frames dropped because the consumer fell behind.
    pub dropped: AtomicU64,
    /// Frames the consumer wanted and found no frame for.
    pub underruns: AtomicU64,
}

/// One direction: frames from one session to the other.
#[derive(Default)]
struct FrameQueue {
    frames: Mutex<VecDeque<Frame>>,
    stats: BridgeStats,
}

impl FrameQueue {
    fn push(&self, samples: &[i16], rate: u32) {
        if push_bounded(&mut self.frames.lock(), Frame::new(samples, rate)) {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One session's end of a bridge. Dropping both ends frees the queues.
pub struct BridgeEnd {
    to_peer: Arc<FrameQueue>,
    from_peer: Arc<FrameQueue>,
    /// The last frame received (for one concealment frame), and whether it was used.
    last: Option<Frame>,
    concealed: bool,
}

/// A bridge between two sessions: give one end to each ([`super::CallMedia::bridge`]).
pub fn bridge_pair() -> (BridgeEnd, BridgeEnd) {
    let a_to_b = Arc::new(FrameQueue::default());
    let b_to_a = Arc::new(FrameQueue::default());
    (
        BridgeEnd {
            to_peer: Arc::clone(&a_to_b),
            from_peer: Arc::clone(&b_to_a),
            last: None,
            concealed: false,
        },
        BridgeEnd {
            to_peer: b_to_a,
            from_peer: a_to_b,
            last: None,
            concealed: false,
        },
    )
}

impl BridgeEnd {
    /// Counters of the frames this end receives.
    pub fn incoming_stats(&self) -> &BridgeStats {
        &self.from_peer.stats
    }

    /// Queues the caller's frame for the peer.
    pub(crate) fn send(&self, samples: &[i16], rate: u32) {
        self.to_peer.push(samples, rate);
    }

    /// Fills `out` (one frame at `rate`) with the peer's next frame. Returns false when
    /// there was none (`out` then holds the concealment frame or silence).
    pub(crate) fn receive(&mut self, out: &mut [i16], rate: u32) -> bool {
        let stats = &self.from_peer.stats;
        let came = take_concealed(
            &mut self.from_peer.frames.lock(),
            &mut self.last,
            &mut self.concealed,
            out,
            rate,
        );
        if came {
            stats.frames.fetch_add(1, Ordering::Relaxed);
        } else {
            stats.underruns.fetch_add(1, Ordering::Relaxed);
        }
        came
    }
}

impl Joined for BridgeEnd {
    fn send(&mut self, samples: &[i16], rate: u32) {
        BridgeEnd::send(self, samples, rate);
    }

    fn receive(&mut self, out: &mut [i16], rate: u32) -> bool {
        BridgeEnd::receive(self, out, rate)
    }
}

/// Queues `frame`, dropping the oldest beyond [`MAX_DEPTH`] (bounded latency); true
/// when one was dropped.
pub(crate) fn push_bounded(q: &mut VecDeque<Frame>, frame: Frame) -> bool {
    let dropped = q.len() >= MAX_DEPTH;
    if dropped {
        q.pop_front();
    }
    q.push_back(frame);
    dropped
}

/// Takes the next frame of `q` into `out` at `rate`; when there is none, repeats `last`
/// once at half level, then silence (see the module header). True when a frame came.
pub(crate) fn take_concealed(
    q: &mut VecDeque<Frame>,
    last: &mut Option<Frame>,
    concealed: &mut bool,
    out: &mut [i16],
    rate: u32,
) -> bool {
    match q.pop_front() {
        Some(frame) => {
            convert(&frame, out, rate);
            *last = Some(frame);
            *concealed = false;
            true
        }
        None => {
            match last {
                Some(frame) if !*concealed => {
                    convert(frame, out, rate);
                    for s in out.iter_mut() {
                        *s /= 2;
                    }
                    *concealed = true;
                }
                _ => out.fill(0),
            }
            false
        }
    }
}

/// Copies `frame` into `out` at `rate`.
fn convert(frame: &Frame, out: &mut [i16], rate: u32) {
    convert_rate(&frame.samples[..frame.len], frame.rate, out, rate);
}

/// Copies `src` (at `src_rate`) into `out` at `rate`: as is, or 2:1 / 1:2 between 16 and
/// 8 kHz (a two-tap average down, linear interpolation up; speech is band-limited to
/// 3.4 kHz on every line a gateway bridges, so this loses nothing audible). Also used by
/// external media, whose G.711 RTP is 8 kHz whatever the call's rate.
pub(crate) fn convert_rate(src: &[i16], src_rate: u32, out: &mut [i16], rate: u32) {
    if src_rate == rate {
        let n = src.len().min(out.len());
        out[..n].copy_from_slice(&src[..n]);
        out[n..].fill(0);
    } else if src_rate > rate {
        for (o, pair) in out.iter_mut().zip(src.chunks_exact(2)) {
            *o = i16::try_from((i32::from(pair[0]) + i32::from(pair[1])) / 2).unwrap_or(0);
        }
    } else {
        for (i, o) in out.iter_mut().enumerate() {
            let a = src.get(i / 2).copied().unwrap_or(0);
            *o = if i % 2 == 0 {
                a
            } else {
                let b = src.get(i / 2 + 1).copied().unwrap_or(a);
                i16::try_from((i32::from(a) + i32::from(b)) / 2).unwrap_or(a)
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_pass_in_order_without_delay() {
        let (a, mut b) = bridge_pair();
        let mut out = [0i16; 160];
        for n in 1..=5i16 {
            a.send(&[n; 160], 8000);
            assert!(b.receive(&mut out, 8000));
            assert_eq!(out[0], n);
        }
        assert_eq!(b.incoming_stats().frames.load(Ordering::Relaxed), 5);
    }

    #[test]
    fn a_slow_consumer_loses_the_oldest_frames_only() {
        let (a, mut b) = bridge_pair();
        for n in 1..=5i16 {
            a.send(&[n; 160], 8000);
        }
        let mut out = [0i16; 160];
        let got: Vec<i16> = (0..3)
            .map(|_| {
                b.receive(&mut out, 8000);
                out[0]
            })
            .collect();
        assert_eq!(got, [3, 4, 5]);
        assert_eq!(b.incoming_stats().dropped.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn an_underrun_repeats_the_last_frame_once_at_half_level() {
        let (a, mut b) = bridge_pair();
        let mut out = [0i16; 160];
        a.send(&[1000; 160], 8000);
        assert!(b.receive(&mut out, 8000));
        assert!(!b.receive(&mut out, 8000));
        assert_eq!(out[0], 500);
        assert!(!b.receive(&mut out, 8000));
        assert_eq!(out[0], 0);
    }

    #[test]
    fn rates_are_converted_between_8_and_16_khz() {
        let (a, mut b) = bridge_pair();
        let ramp: Vec<i16> = (0..320).map(|i| i16::try_from(i * 10).unwrap()).collect();
        a.send(&ramp, 16000);
        let mut narrow = [0i16; 160];
        assert!(b.receive(&mut narrow, 8000));
        assert_eq!(narrow[1], (20 + 30) / 2);
        b.send(&narrow, 8000);
        let (mut wide, mut a) = ([0i16; 320], a);
        assert!(a.receive(&mut wide, 16000));
        assert_eq!(wide[2], narrow[1]);
        assert_eq!(wide[3], (narrow[1] + narrow[2]) / 2);
    }
}
