//! The sans-IO heart of a call's media session: one call of [`MediaCore::tick`]
//! per 20 ms frame takes the caller's audio and produces the audio to send, and
//! commands change what it does between frames.
//!
//! Per frame, in this order:
//!
//! 1. in-band DTMF detection on the caller's raw audio (mute does not deafen the
//!    IVR), merged with modem reports so each press is reported once;
//! 2. the outgoing audio: music on hold when on hold (both layers paused), else
//!    the flow layer, with the interrupt layer mixed over it (flow lowered 6 dB
//!    while an interrupt plays); items of a layer play back to back, gapless;
//! 3. recordings take their audio (caller after inbound mute, outgoing, or both),
//!    then beeps of recordings about to start are mixed in;
//! 4. outbound mute; keys that end recordings cut them.
//!
//! When the call is bridged to another ([`super::bridge`]) or in a conference
//! ([`super::conference`], the same slot: the others' mix is the "peer"), the caller's audio (after
//! inbound mute) also goes to the peer, and the peer's audio is the base of the outgoing
//! audio, under the flow layer's and mixed with it. Digits the line signalled that the
//! audio did not carry are reported for relay to the peer once the merge window shows
//! that no in-band tone came with them (the peer then hears each digit once).
//!
//! External media streams ([`super::external`]) listen to the caller after inbound mute
//! and to the outgoing audio before their own injection; what their hosts speak is mixed
//! into the caller's audio (before the bridge, recordings and `echo` take it) and/or into
//! the outgoing audio (before recordings and outbound mute).
//!
//! Commands are applied between frames, so a `stop` takes effect on the very next
//! frame written (barge-in within one frame). Time is the frame count.

use std::collections::VecDeque;
use std::sync::Arc;

use flowgate_dsp::{DtmfConfig, DtmfDetector, DtmfEvent, Gain, mix2};
use uuid::Uuid;

use super::audio::frame_len;
use super::bridge::Joined;
use super::dtmf::DtmfMerger;
use super::error::{MediaError, Result};
use super::external::Tap;
use super::record::{Finished, Recorder};
use super::render::{Looping, Render};
use super::types::{
    DtmfSource, Layer, MediaEvent, MuteDirection, PlaybackId, PlaybackOutcome, RecordDirection,
    RecordingEnd, StopCause,
};

/// Level of the flow layer while an interrupt plays over it.
const DUCK_DB: f32 = -6.0;

/// A silent frame (the longest: 20 ms at 16 kHz).
static SILENCE: [i16; 320] = [0; 320];

/// A change to what the session does, applied between frames.
pub(crate) enum Command {
    /// Queue a playback on a layer; `render` is `None` while its audio is prepared.
    Enqueue {
        id: PlaybackId,
        layer: Layer,
        render: Option<Box<dyn Render>>,
    },
    /// The prepared audio of a queued playback.
    Ready {
        id: PlaybackId,
        render: Box<dyn Render>,
    },
    /// Preparing a queued playback failed.
    Failed {
        id: PlaybackId,
        error: Arc<MediaError>,
    },
    /// Stop one playback.
    Stop { id: PlaybackId, cause: StopCause },
    /// Stop everything on a layer.
    StopLayer(Layer),
    /// Music on hold on (`Some`) or off.
    Hold(Option<Arc<[i16]>>),
    /// Mute or unmute a direction.
    Mute { direction: MuteDirection, on: bool },
    /// A digit the line signalled.
    SignalledDtmf(char),
    /// Join the peer of a bridge or a conference (`Some`), or leave it.
    Bridge(Option<Box<dyn Joined>>),
    /// Start a recording.
    Record(Box<Recorder>),
    /// Stop a recording.
    StopRecording(Uuid),
    /// Start answering-machine detection on the caller's audio; the verdict goes to the
    /// sender (dropped unanswered if the session closes first).
    DetectMachine(
        Box<flowgate_dsp::Amd>,
        tokio::sync::oneshot::Sender<flowgate_dsp::AmdResult>,
    ),
    /// Start an external media stream (its I/O half is on the media thread).
    ExternalStart(Box<Tap>),
    /// Stop one external media stream, or all (`None`).
    ExternalStop(Option<Uuid>),
    /// End the session.
    Close,
}

struct Item {
    id: PlaybackId,
    layer: Layer,
    render: Option<Box<dyn Render>>,
    started: bool,
}

fn layer_index(layer: Layer) -> usize {
    match layer {
        Layer::Flow => 0,
        Layer::Interrupt => 1,
    }
}

/// The media state machine of one call.
pub(crate) struct MediaCore {
    rate: u32,
    frame: usize,
    /// Absolute position (samples) of the next frame's first sample.
    pos: u64,
    layers: [VecDeque<Item>; 2],
    hold: Option<Looping>,
    mute_in: bool,
    mute_out: bool,
    detector: DtmfDetector,
    merger: DtmfMerger,
    recorders: Vec<Recorder>,
    /// Answering-machine detection in progress, with where its verdict goes.
    amd: Option<(
        Box<flowgate_dsp::Amd>,
        tokio::sync::oneshot::Sender<flowgate_dsp::AmdResult>,
    )>,
    bridge: Option<Box<dyn Joined>>,
    externals: Vec<Tap>,
    events: Vec<MediaEvent>,
    closed: bool,
    // Scratch buffers, one frame each.
    flow: Vec<i16>,
    peer: Vec<i16>,
    interrupt: Vec<i16>,
    mixed: Vec<i16>,
    /// The caller's audio with what external hosts speak into it.
    injected: Vec<i16>,
    presses: Vec<(char, Option<u64>)>,
}

impl MediaCore {
    /// A core for a call at `rate` (8000 or 16000).
    pub(crate) fn new(rate: u32, merge_window: std::time::Duration) -> Result<Self> {
        let frame = frame_len(rate);
        Ok(MediaCore {
            rate,
            frame,
            pos: 0,
            layers: [VecDeque::new(), VecDeque::new()],
            hold: None,
            mute_in: false,
            mute_out: false,
            detector: DtmfDetector::new(DtmfConfig::new(rate))?,
            merger: DtmfMerger::new(merge_window),
            recorders: Vec::new(),
            amd: None,
            bridge: None,
            externals: Vec::new(),
            events: Vec::new(),
            closed: false,
            flow: vec![0; frame],
            peer: vec![0; frame],
            interrupt: vec![0; frame],
            mixed: vec![0; frame],
            injected: vec![0; frame],
            presses: Vec::new(),
        })
    }

    /// Samples per frame.
    pub(crate) fn frame_len(&self) -> usize {
        self.frame
    }

    /// True after `Close`.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed
    }

    /// Events produced since the last call.
    pub(crate) fn drain_events(&mut self) -> std::vec::Drain<'_, MediaEvent> {
        self.events.drain(..)
    }

    fn now_ms(&self) -> u64 {
        self.pos * 1000 / u64::from(self.rate)
    }

    fn finish_item(&mut self, item: Item, outcome: PlaybackOutcome) {
        self.events.push(MediaEvent::PlaybackFinished {
            id: item.id,
            layer: item.layer,
            outcome,
        });
    }

    fn remove_item(&mut self, id: PlaybackId) -> Option<Item> {
        for q in &mut self.layers {
            if let Some(i) = q.iter().position(|it| it.id == id) {
                return q.remove(i);
            }
        }
        None
    }

    fn finish_recording(&mut self, idx: usize, reason: RecordingEnd) {
        let r = self.recorders.swap_remove(idx);
        let Finished {
            id,
            path,
            duration,
            reason,
        } = r.finish(reason);
        self.events.push(MediaEvent::RecordingFinished {
            id,
            path,
            duration,
            reason,
        });
    }

    /// Applies a command (between frames).
    pub(crate) fn apply(&mut self, cmd: Command) {
        match cmd {
            Command::Enqueue { id, layer, render } => {
                self.layers[layer_index(layer)].push_back(Item {
                    id,
                    layer,
                    render,
                    started: false,
                });
            }
            Command::Ready { id, render } => {
                if let Some(item) = self
                    .layers
                    .iter_mut()
                    .flatten()
                    .find(|it| it.id == id && it.render.is_none())
                {
                    item.render = Some(render);
                }
            }
            Command::Failed { id, error } => {
                if let Some(item) = self.remove_item(id) {
                    self.finish_item(item, PlaybackOutcome::Failed(error));
                }
            }
            Command::Stop { id, cause } => {
                if let Some(item) = self.remove_item(id) {
                    self.finish_item(item, PlaybackOutcome::Stopped(cause));
                }
            }
            Command::StopLayer(layer) => {
                self.clear_layer(layer_index(layer), StopCause::LayerCleared)
            }
            Command::Hold(moh) => self.hold = moh.map(Looping::new),
            Command::Mute { direction, on } => {
                if matches!(direction, MuteDirection::In | MuteDirection::Both) {
                    self.mute_in = on;
                }
                if matches!(direction, MuteDirection::Out | MuteDirection::Both) {
                    self.mute_out = on;
                }
            }
            Command::SignalledDtmf(digit) => {
                let now = self.now_ms();
                if self.merger.press(digit, DtmfSource::Signalled, now) {
                    self.events.push(MediaEvent::Dtmf {
                        digit,
                        source: DtmfSource::Signalled,
                    });
                    self.presses.push((digit, None));
                    self.apply_keys();
                }
            }
            Command::Record(r) => {
                if r.is_active() {
                    self.events
                        .push(MediaEvent::RecordingStarted { id: r.id() });
                }
                self.recorders.push(*r);
            }
            Command::StopRecording(id) => {
                if let Some(i) = self.recorders.iter().position(|r| r.id() == id) {
                    self.finish_recording(i, RecordingEnd::Stopped);
                }
            }
            Command::Bridge(end) => self.bridge = end,
            Command::DetectMachine(amd, reply) => self.amd = Some((amd, reply)),
            Command::ExternalStart(tap) => self.externals.push(*tap),
            Command::ExternalStop(id) => {
                self.externals.retain(|t| id.is_some_and(|id| t.id() != id))
            }
            Command::Close => self.close(),
        }
    }

    fn clear_layer(&mut self, idx: usize, cause: StopCause) {
        let items: Vec<Item> = self.layers[idx].drain(..).collect();
        for item in items {
            self.finish_item(item, PlaybackOutcome::Stopped(cause));
        }
    }

    /// Ends everything: playbacks stop, recordings are finalized (`Hangup`).
    pub(crate) fn close(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.bridge = None;
        self.externals.clear();
        for idx in 0..self.layers.len() {
            self.clear_layer(idx, StopCause::Closed);
        }
        while !self.recorders.is_empty() {
            self.finish_recording(self.recorders.len() - 1, RecordingEnd::Hangup);
        }
    }

    /// Renders one layer into its scratch buffer. Returns true if anything played.
    fn render_layer(&mut self, idx: usize, input: &[i16]) -> bool {
        let mut out = std::mem::take(if idx == 0 {
            &mut self.flow
        } else {
            &mut self.interrupt
        });
        out.fill(0);
        let len = out.len();
        let mut filled = 0;
        let mut active = false;
        while filled < len {
            let Some(item) = self.layers[idx].front_mut() else {
                break;
            };
            let Some(render) = item.render.as_mut() else {
                break;
            };
            if !item.started {
                item.started = true;
                self.events.push(MediaEvent::PlaybackStarted {
                    id: item.id,
                    layer: item.layer,
                });
            }
            let n = render.render(&input[filled..], &mut out[filled..]);
            // An item that ended exactly on the last frame reports it now, with
            // no audio: that does not count as playing (no ducking).
            active |= n > 0;
            filled += n;
            if filled < len {
                out[filled..].fill(0);
                if let Some(done) = self.layers[idx].pop_front() {
                    self.finish_item(done, PlaybackOutcome::Finished);
                }
            }
        }
        if idx == 0 {
            self.flow = out;
        } else {
            self.interrupt = out;
        }
        active
    }

    fn apply_keys(&mut self) {
        let presses = std::mem::take(&mut self.presses);
        for &(digit, at) in &presses {
            let mut i = 0;
            while i < self.recorders.len() {
                match self.recorders[i].key(digit, at) {
                    Some(end) => self.finish_recording(i, end),
                    None => i += 1,
                }
            }
        }
        self.presses = presses;
        self.presses.clear();
    }

    /// Processes one frame: `input` is the caller's audio, `output` receives the
    /// audio to send. Both are one frame long.
    pub(crate) fn tick(&mut self, input: &[i16], output: &mut [i16]) {
        let frame = self.frame.min(input.len()).min(output.len());
        let (input, output) = (&input[..frame], &mut output[..frame]);
        let now = self.now_ms();

        // 1. DTMF.
        let mut detected: [Option<DtmfEvent>; 8] = [None; 8];
        let mut n = 0;
        self.detector.process_with(input, |e| {
            if let Some(slot) = detected.get_mut(n) {
                *slot = Some(e);
                n += 1;
            }
        });
        for e in detected.iter().flatten() {
            let digit = e.digit().to_char();
            match *e {
                DtmfEvent::Start { at, .. } => {
                    if self.merger.press(digit, DtmfSource::InBand, now) {
                        self.events.push(MediaEvent::Dtmf {
                            digit,
                            source: DtmfSource::InBand,
                        });
                        self.presses.push((digit, Some(at)));
                    }
                }
                DtmfEvent::End { .. } => self.merger.release(digit, now),
            }
        }

        // Answering-machine detection hears the caller as they are, muted or not.
        if let Some((amd, _)) = self.amd.as_mut()
            && let Some(result) = amd.process(input)
            && let Some((_, reply)) = self.amd.take()
        {
            // The flow may have moved on (an interrupt dropped the waiting command).
            let _ = reply.send(result);
        }

        if self.bridge.is_some() {
            let events = &mut self.events;
            self.merger
                .settle_signalled(now, |digit| events.push(MediaEvent::RelayDigit { digit }));
        }

        // 2. Outgoing audio.
        let caller: &[i16] = if self.mute_in {
            SILENCE.get(..frame).unwrap_or(&[])
        } else {
            input
        };
        // External hosts listen before anything is injected, then speak into the caller's
        // side (taken out of `self` for the frame so the layers can borrow `self`).
        let mut injected = std::mem::take(&mut self.injected);
        let mut speaks_in = false;
        for tap in &mut self.externals {
            tap.listen_in(caller);
        }
        if !self.externals.is_empty() {
            injected[..frame].copy_from_slice(caller);
            for tap in &self.externals {
                speaks_in |= tap.speak_in(&mut injected[..frame]);
            }
        }
        let heard: &[i16] = if speaks_in {
            &injected[..frame]
        } else {
            caller
        };
        let bridged = match self.bridge.as_mut() {
            Some(end) => {
                end.send(heard, self.rate);
                end.receive(&mut self.peer[..frame], self.rate);
                true
            }
            None => false,
        };
        if let Some(moh) = self.hold.as_mut() {
            moh.fill(output);
        } else {
            self.render_layer(0, heard);
            if bridged {
                for (f, p) in self.flow.iter_mut().zip(&self.peer[..frame]) {
                    *f = f.saturating_add(*p);
                }
            }
            if self.render_layer(1, heard) {
                mix2(
                    output,
                    &self.flow,
                    Gain::from_db(DUCK_DB),
                    &self.interrupt,
                    Gain::UNITY,
                );
            } else {
                output.copy_from_slice(&self.flow[..frame]);
            }
        }

        for tap in &mut self.externals {
            tap.listen_out(output);
        }
        for tap in &self.externals {
            tap.speak_out(output);
        }

        // 3. Recordings.
        let mut ended = Vec::new();
        for (i, r) in self.recorders.iter_mut().enumerate() {
            let audio: &[i16] = match r.direction() {
                RecordDirection::In => heard,
                RecordDirection::Out => output,
                RecordDirection::Both => {
                    mix2(
                        &mut self.mixed[..frame],
                        heard,
                        Gain::UNITY,
                        output,
                        Gain::UNITY,
                    );
                    &self.mixed[..frame]
                }
            };
            if let Some(end) = r.feed(self.pos, audio) {
                ended.push((i, end));
            }
        }
        // Highest index first: `swap_remove` only moves entries already handled.
        for (i, end) in ended.into_iter().rev() {
            self.finish_recording(i, end);
        }
        for r in &mut self.recorders {
            if r.beep(output) {
                self.events
                    .push(MediaEvent::RecordingStarted { id: r.id() });
            }
        }

        // 4. Mute out, keys.
        if self.mute_out {
            output.fill(0);
        }
        if !self.presses.is_empty() {
            self.apply_keys();
        }
        self.injected = injected;
        self.pos += frame as u64;
    }

    /// The external media stream `id`'s buffers (the media thread moves its audio).
    pub(crate) fn external_mut(&mut self, id: Uuid) -> Option<&mut Tap> {
        self.externals.iter_mut().find(|t| t.id() == id)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use flowgate_dsp::{DtmfGenConfig, DtmfGenerator};

    use super::*;
    use crate::media::record::tests::MemSink;
    use crate::media::render::{Echo, Pcm, Silence};
    use crate::media::types::{EndOfKey, RecordOptions};

    const F: usize = 160;

    fn core() -> MediaCore {
        MediaCore::new(8000, Duration::from_millis(300)).expect("core")
    }

    fn pcm(v: i16, n: usize) -> Option<Box<dyn Render>> {
        Some(Box::new(Pcm::new(vec![Arc::from(vec![v; n])])))
    }

    fn tick(c: &mut MediaCore, input: &[i16]) -> Vec<i16> {
        let mut out = vec![0; F];
        c.tick(input, &mut out);
        out
    }

    fn events(c: &mut MediaCore) -> Vec<MediaEvent> {
        c.drain_events().collect()
    }

    /// Caller audio with `digits` as DTMF (100 ms on, 100 ms off), in frames.
    fn dtmf_frames(digits: &str, total_frames: usize) -> Vec<Vec<i16>> {
        let mut g = DtmfGenerator::new(DtmfGenConfig::new(8000)).expect("gen");
        g.queue(digits).expect("digits");
        (0..total_frames)
            .map(|_| {
                let mut f = vec![0; F];
                g.fill(&mut f);
                f
            })
            .collect()
    }

    #[test]
    fn flow_items_play_back_to_back_and_report() {
        let mut c = core();
        c.apply(Command::Enqueue {
            id: PlaybackId(1),
            layer: Layer::Flow,
            render: pcm(100, 200),
        });
        c.apply(Command::Enqueue {
            id: PlaybackId(2),
            layer: Layer::Flow,
            render: pcm(200, 100),
        });
        let silence = vec![0; F];
        let o1 = tick(&mut c, &silence);
        let o2 = tick(&mut c, &silence);
        assert!(o1.iter().all(|&s| s == 100));
        assert_eq!(&o2[38..42], &[100, 100, 200, 200], "gapless");
        assert_eq!((o2[139], o2[140]), (200, 0));
        let o3 = tick(&mut c, &silence);
        assert!(o3.iter().all(|&s| s == 0));
        let ev = events(&mut c);
        let kinds: Vec<String> = ev
            .iter()
            .map(|e| match e {
                MediaEvent::PlaybackStarted { id, .. } => format!("start {}", id.0),
                MediaEvent::PlaybackFinished { id, outcome, .. } => {
                    format!("end {} {}", id.0, outcome.is_finished())
                }
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(kinds, ["start 1", "end 1 true", "start 2", "end 2 true"]);
    }

    #[test]
    fn stop_takes_effect_on_the_next_frame() {
        let mut c = core();
        c.apply(Command::Enqueue {
            id: PlaybackId(1),
            layer: Layer::Flow,
            render: pcm(500, 8000),
        });
        let silence = vec![0; F];
        assert!(tick(&mut c, &silence).iter().all(|&s| s == 500));
        c.apply(Command::Stop {
            id: PlaybackId(1),
            cause: StopCause::Command,
        });
        assert!(tick(&mut c, &silence).iter().all(|&s| s == 0));
        assert!(events(&mut c).iter().any(|e| matches!(
            e,
            MediaEvent::PlaybackFinished {
                outcome: PlaybackOutcome::Stopped(StopCause::Command),
                ..
            }
        )));
    }

    #[test]
    fn interrupt_mixes_over_ducked_flow_and_hold_pauses_both() {
        let mut c = core();
        c.apply(Command::Enqueue {
            id: PlaybackId(1),
            layer: Layer::Flow,
            render: pcm(1000, 800),
        });
        c.apply(Command::Enqueue {
            id: PlaybackId(2),
            layer: Layer::Interrupt,
            render: pcm(300, 160),
        });
        let silence = vec![0; F];
        assert!(
            tick(&mut c, &silence)
                .iter()
                .all(|&s| s == 501 + 300 || s == 500 + 300)
        );
        assert!(tick(&mut c, &silence).iter().all(|&s| s == 1000));
        c.apply(Command::Hold(Some(Arc::from(vec![7i16; 10]))));
        assert!(tick(&mut c, &silence).iter().all(|&s| s == 7));
        c.apply(Command::Hold(None));
        // The flow item resumes where it was: 3 more frames of it.
        for _ in 0..3 {
            assert!(tick(&mut c, &silence).iter().all(|&s| s == 1000));
        }
        assert!(tick(&mut c, &silence).iter().all(|&s| s == 0));
    }

    #[test]
    fn preparing_item_holds_its_place() {
        let mut c = core();
        c.apply(Command::Enqueue {
            id: PlaybackId(1),
            layer: Layer::Flow,
            render: None,
        });
        c.apply(Command::Enqueue {
            id: PlaybackId(2),
            layer: Layer::Flow,
            render: pcm(9, 160),
        });
        let silence = vec![0; F];
        assert!(tick(&mut c, &silence).iter().all(|&s| s == 0));
        c.apply(Command::Ready {
            id: PlaybackId(1),
            render: pcm(4, 160).expect("r"),
        });
        assert!(tick(&mut c, &silence).iter().all(|&s| s == 4));
        assert!(tick(&mut c, &silence).iter().all(|&s| s == 9));
        c.apply(Command::Enqueue {
            id: PlaybackId(3),
            layer: Layer::Flow,
            render: None,
        });
        c.apply(Command::Failed {
            id: PlaybackId(3),
            error: Arc::new(MediaError::SessionClosed),
        });
        assert!(events(&mut c).iter().any(|e| matches!(
            e,
            MediaEvent::PlaybackFinished {
                id: PlaybackId(3),
                outcome: PlaybackOutcome::Failed(_),
                ..
            }
        )));
    }

    #[test]
    fn echo_mute_and_silence() {
        let mut c = core();
        c.apply(Command::Enqueue {
            id: PlaybackId(1),
            layer: Layer::Flow,
            render: Some(Box::new(Echo(F as u64 * 3))),
        });
        let voice: Vec<i16> = (0..F).map(|i| i16::try_from(i).unwrap_or(0)).collect();
        assert_eq!(tick(&mut c, &voice), voice, "echo adds no frame of delay");
        c.apply(Command::Mute {
            direction: MuteDirection::In,
            on: true,
        });
        assert!(tick(&mut c, &voice).iter().all(|&s| s == 0));
        c.apply(Command::Mute {
            direction: MuteDirection::In,
            on: false,
        });
        c.apply(Command::Mute {
            direction: MuteDirection::Out,
            on: true,
        });
        assert!(tick(&mut c, &voice).iter().all(|&s| s == 0));
        c.apply(Command::Mute {
            direction: MuteDirection::Both,
            on: false,
        });
        c.apply(Command::Enqueue {
            id: PlaybackId(2),
            layer: Layer::Flow,
            render: Some(Box::new(Silence(10))),
        });
        tick(&mut c, &voice);
        assert!(events(&mut c).iter().any(|e| matches!(
            e,
            MediaEvent::PlaybackFinished {
                id: PlaybackId(2),
                ..
            }
        )));
    }

    #[test]
    fn inband_and_modem_digits_count_once() {
        let mut c = core();
        let frames = dtmf_frames("25", 30);
        let mut digits = Vec::new();
        for (k, f) in frames.iter().enumerate() {
            if k == 4 {
                // The modem reports the first key as well while it sounds.
                c.apply(Command::SignalledDtmf('2'));
            }
            tick(&mut c, f);
            for e in c.drain_events() {
                if let MediaEvent::Dtmf { digit, source } = e {
                    digits.push((digit, source));
                }
            }
        }
        assert_eq!(digits.len(), 2, "{digits:?}");
        assert_eq!(digits[0].0, '2');
        assert_eq!(digits[1], ('5', DtmfSource::InBand));
    }

    fn recording(c: &mut MediaCore, opts: RecordOptions) -> MemSink {
        let sink = MemSink::default();
        let r = Recorder::new(
            Uuid::nil(),
            "r.wav".into(),
            &opts,
            Box::new(sink.clone()),
            8000,
            Duration::from_secs(60),
        )
        .expect("rec");
        c.apply(Command::Record(Box::new(r)));
        sink
    }

    #[test]
    fn recording_ends_on_hash_without_the_tone() {
        let mut c = core();
        let sink = recording(
            &mut c,
            RecordOptions {
                end_of_key: EndOfKey::Digit('#'),
                ..Default::default()
            },
        );
        let voice = vec![3000i16; F];
        for _ in 0..10 {
            tick(&mut c, &voice);
        }
        let mut finished = None;
        for f in dtmf_frames("#", 10) {
            tick(&mut c, &f);
            for e in c.drain_events() {
                if let MediaEvent::RecordingFinished {
                    duration, reason, ..
                } = e
                {
                    finished = Some((duration, reason));
                }
            }
        }
        let (duration, reason) = finished.expect("ended by #");
        assert!(matches!(reason, RecordingEnd::Key('#')));
        let (samples, done) = sink.0.lock().clone();
        assert!(done);
        // Everything before the tone (less the guard), and not the tone.
        assert!(
            (10 * F - 80..=10 * F).contains(&samples.len()),
            "{}",
            samples.len()
        );
        assert!(samples.iter().all(|&s| s == 3000));
        assert_eq!(duration, Duration::from_micros(samples.len() as u64 * 125));
    }

    #[test]
    fn close_finalizes_recordings_and_stops_playbacks() {
        let mut c = core();
        let sink = recording(&mut c, RecordOptions::default());
        c.apply(Command::Enqueue {
            id: PlaybackId(1),
            layer: Layer::Interrupt,
            render: pcm(1, 80_000),
        });
        tick(&mut c, &vec![5; F]);
        c.apply(Command::Close);
        assert!(c.is_closed());
        let ev = events(&mut c);
        assert!(ev.iter().any(|e| matches!(
            e,
            MediaEvent::RecordingFinished {
                reason: RecordingEnd::Hangup,
                ..
            }
        )));
        assert!(ev.iter().any(|e| matches!(
            e,
            MediaEvent::PlaybackFinished {
                outcome: PlaybackOutcome::Stopped(StopCause::Closed),
                ..
            }
        )));
        assert_eq!(sink.0.lock().0.len(), F);
    }

    #[test]
    fn external_media_listens_before_and_speaks_into_the_right_side() {
        use crate::media::external::{ExternalMediaOptions, TapDirection};
        let mut c = core();
        let id = Uuid::from_u128(1);
        let options = ExternalMediaOptions {
            host: "127.0.0.1:9".parse().expect("addr"),
            codec: flowgate_sip::sdp::Codec::Pcmu,
            listen: Some(TapDirection::Both),
            speak: Some(TapDirection::Both),
        };
        c.apply(Command::ExternalStart(Box::new(Tap::new(id, &options, F))));
        // The flow echoes the caller: what the host speaks "in" is echoed too.
        c.apply(Command::Enqueue {
            id: PlaybackId(1),
            layer: Layer::Flow,
            render: Some(Box::new(Echo(F as u64 * 10))),
        });
        c.external_mut(id).expect("tap").spoken_mut().fill(30);
        let out = tick(&mut c, &vec![100; F]);
        // Echo of (caller 100 + host 30), plus the host "out" 30.
        assert!(out.iter().all(|&s| s == 160), "{:?}", &out[..4]);
        // The host hears the caller and the echo of the caller, never itself directly:
        // listen takes the caller (100) and the output before injection (130).
        let tap = c.external_mut(id).expect("tap");
        assert!(
            tap.listened().iter().all(|&s| s == 230),
            "{:?}",
            &tap.listened()[..4]
        );
        c.apply(Command::ExternalStop(None));
        assert!(c.external_mut(id).is_none());
        assert!(tick(&mut c, &vec![100; F]).iter().all(|&s| s == 100));
    }
}
