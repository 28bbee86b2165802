//! A call's media session: the [`CallMedia`] handle the runtime drives, and the
//! frame loop behind it that owns the port and the [`MediaCore`]: a thread of its own for
//! a device port, or the shared frame loop (`frameloop`) for a port without a clock (RTP).
//!
//! ```text
//! runtime ──CallMedia methods──▶ std mpsc ──▶ media thread: read frame ─ apply commands ─ tick ─ write frame
//!    ▲                                              │
//!    └──── MediaEvent (tokio mpsc) + Playback outcomes (watch) ◀──┘
//! ```
//!
//! The thread applies commands right after each frame is read and before the
//! frame to send is computed, so a `stop` (barge-in) is effective in the next
//! frame written. Audio that needs preparing (TTS, downloads, decoding) is made
//! on the tokio runtime and blocking pool, never on the media thread: the
//! playback takes its place in its layer at once and plays when ready.
//!
//! # Handles and their lifetimes
//!
//! * Dropping a [`Playback`] **stops** it, unless it finished or was
//!   [`detach`](Playback::detach)ed: audio never outlives everything that could
//!   stop it by accident. An `async` talk detaches; a detached playback still
//!   ends with its audio, [`CallMedia::stop`]/[`stop_layer`](CallMedia::stop_layer),
//!   or the session.
//! * Dropping the [`CallMedia`] closes the session like [`CallMedia::close`]:
//!   playbacks stop, recordings are finalized, `Closed` is the last event.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::time::{Duration, Instant};

use flowgate_line::LegAudio;
use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;

use super::context::MediaContext;
use super::core::{Command, MediaCore};
use super::error::{MediaError, Result};
use super::external::{
    ExternalMediaInfo, ExternalMediaOptions, ExternalStream, MAX_PER_CALL, MediaStreamEnds, Tap,
    TapDirection,
};
use super::frameloop::FrameTask;
use super::port::{AudioPort, ClaimedPort, Pacing, open_transport};
use super::record::{Recorder, WavSink};
use super::types::{
    Layer, MediaEvent, MuteDirection, PlaybackId, PlaybackOutcome, RecordOptions, RecordingInfo,
    Source, StopCause,
};

/// How a session gets its port.
enum Open {
    /// A port the line or the caller made.
    Port(Box<dyn AudioPort>),
    /// A device opened on the session's own thread (opening blocks).
    Device(Box<dyn FnOnce() -> Result<Box<dyn AudioPort>> + Send>),
}

impl Open {
    fn open(self) -> Result<Box<dyn AudioPort>> {
        match self {
            Open::Port(port) => Ok(port),
            Open::Device(open) => open(),
        }
    }
}

/// The event stream of a session.
pub type MediaEvents = mpsc::UnboundedReceiver<MediaEvent>;

type Outcome = watch::Sender<Option<PlaybackOutcome>>;

enum Msg {
    Cmd(Command),
    Track(PlaybackId, Outcome),
    /// An external media stream: its socket stays on the media thread, its tap goes to the
    /// core; the reply says whether the call had room for it.
    ExternalStart(Box<ExternalStream>, Box<Tap>, oneshot::Sender<Result<()>>),
    /// Stop one stream or all; the reply counts those stopped, once no packet of theirs
    /// can be sent any more.
    ExternalStop(Option<Uuid>, oneshot::Sender<usize>),
}

struct Shared {
    label: String,
    rate: u32,
    ctx: MediaContext,
    tx: Sender<Msg>,
    next_id: AtomicU64,
    runtime: tokio::runtime::Handle,
    done: watch::Receiver<bool>,
}

impl Shared {
    fn send(&self, cmd: Command) -> Result<()> {
        self.tx
            .send(Msg::Cmd(cmd))
            .map_err(|_| MediaError::SessionClosed)
    }
}

/// The handle of a call's media session. Not `Clone`: wrap it in an `Arc` to
/// share; dropping it closes the session.
pub struct CallMedia {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for CallMedia {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallMedia")
            .field("label", &self.shared.label)
            .field("rate", &self.shared.rate)
            .finish()
    }
}

/// A playback started with [`CallMedia::play`]; see the module docs for what
/// dropping it does.
#[derive(Debug)]
pub struct Playback {
    id: PlaybackId,
    shared: Arc<Shared>,
    outcome: watch::Receiver<Option<PlaybackOutcome>>,
    detached: bool,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label)
    }
}

impl Playback {
    /// Its id (also in the session's events).
    #[must_use]
    pub fn id(&self) -> PlaybackId {
        self.id
    }

    /// Waits until it ends.
    pub async fn wait(&mut self) -> PlaybackOutcome {
        match self.outcome.wait_for(Option::is_some).await {
            Ok(o) => o
                .clone()
                .unwrap_or(PlaybackOutcome::Stopped(StopCause::Closed)),
            Err(_) => PlaybackOutcome::Stopped(StopCause::Closed),
        }
    }

    /// How it ended, if it has.
    #[must_use]
    pub fn outcome(&self) -> Option<PlaybackOutcome> {
        self.outcome.borrow().clone()
    }

    /// Stops it (effective in the next frame).
    pub fn stop(&self) {
        let _ = self.shared.send(Command::Stop {
            id: self.id,
            cause: StopCause::Command,
        });
    }

    /// Lets it play on without this handle (`async` talk).
    pub fn detach(mut self) {
        self.detached = true;
    }
}

impl Drop for Playback {
    fn drop(&mut self) {
        if !self.detached && self.outcome.borrow().is_none() {
            let _ = self.shared.send(Command::Stop {
                id: self.id,
                cause: StopCause::HandleDropped,
            });
        }
    }
}

impl CallMedia {
    /// Opens a session on a leg's audio: a device transport (opened on the session's own
    /// thread) or a port the line made. A device still held by the previous call's session
    /// (closing, not yet closed) is opened once that session releases it.
    ///
    /// # Errors
    /// [`MediaError::NoAudioPath`] when the leg has no audio, device errors
    /// ([`MediaError::DeviceBusy`] also when the previous session does not release the device
    /// within `release_wait`), [`MediaError::NoRuntime`] outside a tokio runtime.
    pub async fn open(
        audio: LegAudio,
        ctx: &MediaContext,
        label: &str,
    ) -> Result<(CallMedia, MediaEvents)> {
        match audio {
            LegAudio::Unavailable(why) => Err(MediaError::NoAudioPath(why)),
            LegAudio::Port(port) => CallMedia::open_port(port, ctx, label).await,
            LegAudio::Device(transport) => {
                let (options, clock) = (ctx.settings().port.clone(), ctx.clock());
                let claim = ctx
                    .device_claims()
                    .claim(&transport, options.release_wait)
                    .await?;
                CallMedia::start(
                    Open::Device(Box::new(move || {
                        let port = open_transport(&transport, &options, clock)?;
                        // The claim goes with the port: released when the device is closed
                        // (or at once, with the closure, when opening failed).
                        Ok(match claim {
                            Some(claim) => Box::new(ClaimedPort::new(port, claim)),
                            None => port,
                        })
                    })),
                    ctx,
                    label,
                )
                .await
            }
        }
    }

    /// Opens a session on a port the caller built (an RTP stream, a
    /// [`ChannelPort`](super::ChannelPort), a port with a test clock). A port with
    /// [`Pacing::Shared`] runs on the context's shared frame loop, others on a thread of
    /// their own.
    ///
    /// # Errors
    /// [`MediaError::NoRuntime`], [`MediaError::Dsp`] for an unsupported rate.
    pub async fn open_port(
        port: Box<dyn AudioPort>,
        ctx: &MediaContext,
        label: &str,
    ) -> Result<(CallMedia, MediaEvents)> {
        CallMedia::start(Open::Port(port), ctx, label).await
    }

    async fn start(
        open: Open,
        ctx: &MediaContext,
        label: &str,
    ) -> Result<(CallMedia, MediaEvents)> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| MediaError::NoRuntime)?;
        let (tx, rx) = std::sync::mpsc::channel();
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let (done_tx, done_rx) = watch::channel(false);
        let (ready_tx, ready_rx) = oneshot::channel::<Result<u32>>();
        let window = ctx.settings().dtmf_merge_window;
        let label_owned = label.to_owned();
        let rate = match open {
            Open::Port(port) if port.pacing() == Pacing::Shared => {
                // No device to open and no clock of its own: the shared frame loop runs it.
                let rate = port.sample_rate();
                let core = MediaCore::new(rate, window)?;
                let task = Task::new(port, core, rx, ev_tx, label_owned, done_tx, true);
                ctx.frame_loop().add(Box::new(task))?;
                rate
            }
            open => {
                std::thread::Builder::new()
                    .name(format!("media-{label}"))
                    .spawn(move || {
                        let started = open.open().and_then(|port| {
                            let rate = port.sample_rate();
                            MediaCore::new(rate, window).map(|core| (port, core, rate))
                        });
                        match started {
                            Ok((port, core, rate)) => {
                                let _ = ready_tx.send(Ok(rate));
                                let mut task =
                                    Task::new(port, core, rx, ev_tx, label_owned, done_tx, false);
                                while task.frame_once() {}
                                task.finish(false);
                            }
                            Err(e) => {
                                drop(rx);
                                let _ = ready_tx.send(Err(e));
                                let _ = done_tx.send(true);
                            }
                        }
                    })
                    .map_err(|e| {
                        MediaError::Worker(format!("cannot start the media thread: {e}"))
                    })?;
                ready_rx.await.map_err(|_| {
                    MediaError::Worker("the media thread died while opening".into())
                })??
            }
        };
        ctx.stats().session_opened();
        tracing::debug!(call = %label, rate, "media session open");
        let shared = Arc::new(Shared {
            label: label.to_owned(),
            rate,
            ctx: ctx.clone(),
            tx,
            next_id: AtomicU64::new(1),
            runtime,
            done: done_rx,
        });
        Ok((CallMedia { shared }, ev_rx))
    }

    /// The call's sample rate.
    #[must_use]
    pub fn rate(&self) -> u32 {
        self.shared.rate
    }

    /// Starts playing `source` on `layer` after what the layer already plays.
    /// TTS and URLs are prepared in the background; their failure is the
    /// playback's outcome.
    ///
    /// # Errors
    /// What can be checked at once: empty text or URL list, bad digits, and
    /// [`MediaError::SessionClosed`].
    pub fn play(&self, layer: Layer, source: Source) -> Result<Playback> {
        let sh = &self.shared;
        let render = sh.ctx.render_now(&source, sh.rate)?;
        let id = PlaybackId(sh.next_id.fetch_add(1, Ordering::Relaxed));
        let (done_tx, done_rx) = watch::channel(None);
        let needs_prep = render.is_none();
        sh.tx
            .send(Msg::Track(id, done_tx))
            .map_err(|_| MediaError::SessionClosed)?;
        sh.send(Command::Enqueue { id, layer, render })?;
        if needs_prep {
            let (ctx, tx, rate) = (sh.ctx.clone(), sh.tx.clone(), sh.rate);
            sh.runtime.spawn(async move {
                let cmd = match ctx.prepare(&source, rate).await {
                    Ok(render) => Command::Ready { id, render },
                    Err(e) => {
                        tracing::info!(playback = %id, error = %e, "playback audio could not be prepared");
                        Command::Failed { id, error: Arc::new(e) }
                    }
                };
                let _ = tx.send(Msg::Cmd(cmd));
            });
        }
        Ok(Playback {
            id,
            shared: self.shared.clone(),
            outcome: done_rx,
            detached: false,
        })
    }

    /// The caller hears themselves for `duration` (a flow-layer playback).
    ///
    /// # Errors
    /// [`MediaError::SessionClosed`].
    pub fn echo(&self, duration: Duration) -> Result<Playback> {
        self.play(Layer::Flow, Source::Echo(duration))
    }

    /// Stops a playback (effective in the next frame).
    ///
    /// # Errors
    /// [`MediaError::SessionClosed`].
    pub fn stop(&self, id: PlaybackId) -> Result<()> {
        self.shared.send(Command::Stop {
            id,
            cause: StopCause::Command,
        })
    }

    /// Stops everything on a layer.
    ///
    /// # Errors
    /// [`MediaError::SessionClosed`].
    pub fn stop_layer(&self, layer: Layer) -> Result<()> {
        self.shared.send(Command::StopLayer(layer))
    }

    /// Starts a recording into `<data>/recordings/<id>.wav`.
    ///
    /// # Errors
    /// [`MediaError::Io`] when the file cannot be created (or exists),
    /// [`MediaError::SessionClosed`].
    pub async fn start_recording(&self, options: RecordOptions) -> Result<RecordingInfo> {
        let sh = &self.shared;
        let id = options.id.unwrap_or_else(Uuid::now_v7);
        let path = sh.ctx.recording_path(id);
        let rate = sh.rate;
        let p = path.clone();
        let sink = tokio::task::spawn_blocking(move || WavSink::create(&p, rate))
            .await
            .map_err(|e| MediaError::Worker(e.to_string()))??;
        let recorder = Recorder::new(
            id,
            path.clone(),
            &options,
            Box::new(sink),
            rate,
            sh.ctx.settings().max_recording,
        )?;
        if let Err(e) = sh.send(Command::Record(Box::new(recorder))) {
            let _ = tokio::fs::remove_file(&path).await;
            return Err(e);
        }
        tracing::debug!(call = %sh.label, recording = %id, "recording started");
        Ok(RecordingInfo { id, path })
    }

    /// Stops a recording; `RecordingFinished` follows.
    ///
    /// # Errors
    /// [`MediaError::SessionClosed`].
    pub fn stop_recording(&self, id: Uuid) -> Result<()> {
        self.shared.send(Command::StopRecording(id))
    }

    /// Starts answering-machine detection on the caller's audio (replacing one in
    /// progress); the receiver gets the verdict, or an error if the session closes first.
    ///
    /// # Errors
    /// [`MediaError::InvalidOption`] for unusable settings, [`MediaError::SessionClosed`].
    pub fn detect_machine(
        &self,
        config: flowgate_dsp::AmdConfig,
    ) -> Result<tokio::sync::oneshot::Receiver<flowgate_dsp::AmdResult>> {
        let amd = flowgate_dsp::Amd::new(config).map_err(|e| MediaError::InvalidOption {
            field: "amd",
            reason: e.to_string(),
        })?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.shared
            .send(Command::DetectMachine(Box::new(amd), tx))?;
        Ok(rx)
    }

    /// Music on hold on or off. While on hold both layers pause.
    ///
    /// # Errors
    /// [`MediaError::SessionClosed`].
    pub async fn hold(&self, on: bool) -> Result<()> {
        let moh = if on {
            Some(self.shared.ctx.music_on_hold(self.shared.rate).await)
        } else {
            None
        };
        self.shared.send(Command::Hold(moh))
    }

    /// Mutes or unmutes a direction.
    ///
    /// # Errors
    /// [`MediaError::SessionClosed`].
    pub fn mute(&self, direction: MuteDirection, on: bool) -> Result<()> {
        self.shared.send(Command::Mute { direction, on })
    }

    /// Joins the peer at the other end of `end` (see [`super::bridge`]): from the next
    /// frame the caller hears the peer and the peer hears the caller.
    ///
    /// # Errors
    /// [`MediaError::SessionClosed`].
    pub fn bridge(&self, end: super::BridgeEnd) -> Result<()> {
        self.shared.send(Command::Bridge(Some(Box::new(end))))
    }

    /// Joins a conference through `end` (see [`super::conference`]): from the next frame
    /// the caller hears the others' mix and they hear the caller. Replaces a bridge.
    ///
    /// # Errors
    /// [`MediaError::SessionClosed`].
    pub fn join_conference(&self, end: super::ConferenceEnd) -> Result<()> {
        self.shared.send(Command::Bridge(Some(Box::new(end))))
    }

    /// Leaves the bridge or conference (the caller hears the flow again).
    ///
    /// # Errors
    /// [`MediaError::SessionClosed`].
    pub fn unbridge(&self) -> Result<()> {
        self.shared.send(Command::Bridge(None))
    }

    /// A digit the line signalled for this call (a modem URC, RFC 4733). It is merged
    /// with in-band detection and comes back as one `MediaEvent::Dtmf` per press.
    ///
    /// # Errors
    /// [`MediaError::InvalidOption`] for a non-DTMF character,
    /// [`MediaError::SessionClosed`].
    pub fn signalled_dtmf(&self, digit: char) -> Result<()> {
        let d =
            flowgate_dsp::DtmfDigit::from_char(digit).ok_or_else(|| MediaError::InvalidOption {
                field: "digit",
                reason: format!("{digit:?} is not a DTMF key"),
            })?;
        self.shared.send(Command::SignalledDtmf(d.to_char()))
    }

    /// Starts streaming the call's audio as RTP to `options.host` (see
    /// [`super::external`]), from the next frame on, until
    /// [`stop_external`](Self::stop_external) or the end of the session.
    ///
    /// # Errors
    /// [`MediaError::Device`] when the socket cannot be made,
    /// [`MediaError::InvalidOption`] when the call already has
    /// [`MAX_PER_CALL`] streams, [`MediaError::SessionClosed`].
    pub async fn start_external(&self, options: ExternalMediaOptions) -> Result<ExternalMediaInfo> {
        let sh = &self.shared;
        let id = Uuid::now_v7();
        let (stream, local) = ExternalStream::open(id, &options, sh.rate)?;
        let tap = Tap::new(id, &options, super::audio::frame_len(sh.rate));
        let (tx, rx) = oneshot::channel();
        sh.tx
            .send(Msg::ExternalStart(Box::new(stream), Box::new(tap), tx))
            .map_err(|_| MediaError::SessionClosed)?;
        rx.await.map_err(|_| MediaError::SessionClosed)??;
        tracing::info!(call = %sh.label, external_media = %id, host = %options.host, %local, "external media started");
        Ok(ExternalMediaInfo { id, local })
    }

    /// Starts a WebSocket media stream (see [`super::external`], [`super::wsmedia`]): the
    /// call's audio (both sides, mixed) goes to the returned ends as 8 kHz frames, and the
    /// frames sent into them are heard on both sides of the call, from the next frame on,
    /// until the ends are dropped or the session ends. Counts towards [`MAX_PER_CALL`]
    /// with the RTP streams.
    ///
    /// # Errors
    /// [`MediaError::InvalidOption`] when the call already has [`MAX_PER_CALL`] streams,
    /// [`MediaError::SessionClosed`].
    pub async fn start_media_stream(&self) -> Result<MediaStreamEnds> {
        let sh = &self.shared;
        let id = Uuid::now_v7();
        let (stream, ends) = ExternalStream::channel(id, sh.rate);
        let both = Some(TapDirection::Both);
        let tap = Tap::with(id, both, both, super::audio::frame_len(sh.rate));
        let (tx, rx) = oneshot::channel();
        sh.tx
            .send(Msg::ExternalStart(Box::new(stream), Box::new(tap), tx))
            .map_err(|_| MediaError::SessionClosed)?;
        rx.await.map_err(|_| MediaError::SessionClosed)??;
        tracing::info!(call = %sh.label, media_stream = %id, "media stream started");
        Ok(ends)
    }

    /// Stops the external media stream `id`, or all of them (`None`); returns how many
    /// were stopped. When it returns, none of them sends any more.
    ///
    /// # Errors
    /// [`MediaError::SessionClosed`] (every stream has ended with the session then).
    pub async fn stop_external(&self, id: Option<Uuid>) -> Result<usize> {
        let (tx, rx) = oneshot::channel();
        self.shared
            .tx
            .send(Msg::ExternalStop(id, tx))
            .map_err(|_| MediaError::SessionClosed)?;
        rx.await.map_err(|_| MediaError::SessionClosed)
    }

    /// Ends the session (hang-up): playbacks stop, recordings are finalized, and
    /// `Closed` is the last event. Returns at once; [`closed`](Self::closed) waits.
    pub fn close(&self) {
        let _ = self.shared.send(Command::Close);
    }

    /// Waits until the session has ended (after `close`, the far end closing the port, or
    /// a port failure).
    pub async fn closed(&self) {
        let mut done = self.shared.done.clone();
        let _ = done.wait_for(|d| *d).await;
    }

    /// True once the session has ended.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        *self.shared.done.borrow()
    }
}

impl Drop for CallMedia {
    fn drop(&mut self) {
        self.close();
    }
}

/// Frames of backlog taken from the port at hang-up at most (10 s): a far end that floods
/// (a pipe) cannot keep a closing session alive.
const MAX_FRAMES_AT_CLOSE: u32 = 500;

/// What the media thread owns besides the port and the core.
#[derive(Default)]
struct Loop {
    tracked: HashMap<PlaybackId, Outcome>,
    externals: Vec<ExternalStream>,
}

fn stopped(label: &str, stream: &ExternalStream) {
    let stats = stream.stats();
    tracing::info!(
        call = %label,
        external_media = %stream.id(),
        kind = %stream.describe(),
        sent = stats.sent,
        received = stats.received,
        send_errors = stats.send_errors,
        "external media stopped"
    );
}

/// Applies queued messages. True when the session is to end (`Close`, or every sender is
/// gone): the caller closes the core, after taking what the port already received.
#[must_use]
fn apply_pending(rx: &Receiver<Msg>, core: &mut MediaCore, state: &mut Loop, label: &str) -> bool {
    let tracked = &mut state.tracked;
    loop {
        match rx.try_recv() {
            Ok(Msg::Cmd(Command::Close)) => return true,
            Ok(Msg::Cmd(c)) => core.apply(c),
            Ok(Msg::Track(id, tx)) => {
                tracked.insert(id, tx);
            }
            Ok(Msg::ExternalStart(stream, tap, reply)) => {
                if state.externals.len() >= MAX_PER_CALL {
                    let _ = reply.send(Err(MediaError::InvalidOption {
                        field: "external_media",
                        reason: format!(
                            "the call already has {MAX_PER_CALL} external media streams"
                        ),
                    }));
                } else {
                    state.externals.push(*stream);
                    core.apply(Command::ExternalStart(tap));
                    let _ = reply.send(Ok(()));
                }
            }
            Ok(Msg::ExternalStop(id, reply)) => {
                let before = state.externals.len();
                state.externals.retain(|s| {
                    let keep = id.is_some_and(|id| s.id() != id);
                    if !keep {
                        stopped(label, s);
                    }
                    keep
                });
                core.apply(Command::ExternalStop(id));
                let _ = reply.send(before - state.externals.len());
            }
            Err(TryRecvError::Empty) => return false,
            Err(TryRecvError::Disconnected) => return true,
        }
    }
}

fn dispatch(core: &mut MediaCore, state: &mut Loop, events: &mpsc::UnboundedSender<MediaEvent>) {
    let tracked = &mut state.tracked;
    for e in core.drain_events() {
        if let MediaEvent::PlaybackFinished { id, outcome, .. } = &e
            && let Some(tx) = tracked.remove(id)
        {
            let _ = tx.send(Some(outcome.clone()));
        }
        let _ = events.send(e);
    }
}

/// A session's frame loop state, run by its own thread (device ports) or by the shared
/// frame loop (ports with [`Pacing::Shared`]); the frame is the same either way.
struct Task {
    port: Box<dyn AudioPort>,
    core: MediaCore,
    rx: Option<Receiver<Msg>>,
    events: mpsc::UnboundedSender<MediaEvent>,
    label: String,
    done: watch::Sender<bool>,
    /// Read with `read_frame_now` (the shared loop keeps the pace) instead of `read_frame`.
    shared: bool,
    state: Loop,
    input: Vec<i16>,
    output: Vec<i16>,
    /// Why the port ended the session, if it did: a failure, or the far end closing it.
    port_end: Option<super::port::PortError>,
    frames: u64,
    missing: u64,
}

impl Task {
    fn new(
        port: Box<dyn AudioPort>,
        core: MediaCore,
        rx: Receiver<Msg>,
        events: mpsc::UnboundedSender<MediaEvent>,
        label: String,
        done: watch::Sender<bool>,
        shared: bool,
    ) -> Self {
        let n = core.frame_len();
        Task {
            port,
            core,
            rx: Some(rx),
            events,
            label,
            done,
            shared,
            state: Loop::default(),
            input: vec![0; n],
            output: vec![0; n],
            port_end: None,
            frames: 0,
            missing: 0,
        }
    }

    fn apply_pending(&mut self) {
        let closing = match &self.rx {
            Some(rx) => apply_pending(rx, &mut self.core, &mut self.state, &self.label),
            None => false,
        };
        if closing && !self.core.is_closed() {
            self.take_received();
            self.core.close();
        }
    }

    /// Hang-up: the frames the far end already sent (the port's or the kernel's backlog)
    /// go through the core before it finalizes the recordings, or the last words before
    /// a hang-up would be missing from them. A port paced to real time keeps such a
    /// backlog after its far end stalled and then sent in a burst (measured: up to a few
    /// hundred ms from the simulated modem on a loaded machine). Nothing is sent any more.
    fn take_received(&mut self) {
        let mut taken = 0u32;
        while taken < MAX_FRAMES_AT_CLOSE {
            match self.port.read_buffered(&mut self.input) {
                Ok(true) => {
                    self.core.tick(&self.input, &mut self.output);
                    taken += 1;
                }
                Ok(false) | Err(_) => break,
            }
        }
        if taken > 0 {
            self.frames += u64::from(taken);
            tracing::debug!(call = %self.label, frames = taken, "audio received before the hang-up taken");
        }
    }

    /// One frame: commands, read, commands that came meanwhile, tick, write. False once
    /// the session has ended (closed, the port closed by the far end, or the port failed).
    fn frame_once(&mut self) -> bool {
        if self.core.is_closed() {
            return false;
        }
        self.apply_pending();
        dispatch(&mut self.core, &mut self.state, &self.events);
        if self.core.is_closed() {
            return false;
        }
        let read = if self.shared {
            self.port.read_frame_now(&mut self.input)
        } else {
            self.port.read_frame(&mut self.input)
        };
        match read {
            Ok(super::port::FrameStatus::Received) => {}
            Ok(super::port::FrameStatus::Missing) => self.missing += 1,
            Err(e) => {
                self.port_end = Some(e);
                return false;
            }
        }
        // Commands that came while we waited for the frame act on this frame.
        self.apply_pending();
        if self.core.is_closed() {
            return false;
        }
        // External hosts' audio for this frame in, the frame, their listened audio out.
        let now = Instant::now();
        for stream in &mut self.state.externals {
            if let Some(tap) = self.core.external_mut(stream.id()) {
                stream.receive(now, tap.spoken_mut());
            }
        }
        self.core.tick(&self.input, &mut self.output);
        for stream in &mut self.state.externals {
            if let Some(tap) = self.core.external_mut(stream.id()) {
                stream.send(tap.listened());
            }
        }
        // A WebSocket client that left ends its stream (and frees its place).
        if self.state.externals.iter().any(ExternalStream::is_gone) {
            let mut gone = Vec::new();
            let label = &self.label;
            self.state.externals.retain(|s| {
                let keep = !s.is_gone();
                if !keep {
                    stopped(label, s);
                    gone.push(s.id());
                }
                keep
            });
            for id in gone {
                self.core.apply(Command::ExternalStop(Some(id)));
            }
        }
        dispatch(&mut self.core, &mut self.state, &self.events);
        if let Err(e) = self.port.write_frame(&self.output) {
            self.port_end = Some(e);
            return false;
        }
        self.frames += 1;
        true
    }

    /// Ends the session: `Closed` last, then the handles see it closed.
    fn finish(mut self, panicked: bool) {
        // From here on, commands fail with `SessionClosed`.
        self.rx = None;
        // The streams end with the call.
        for stream in self.state.externals.drain(..) {
            stopped(&self.label, &stream);
        }
        let label = self.label.clone();
        if panicked {
            self.port_end = Some(super::port::PortError::Failed {
                device: self.port.device().to_owned(),
                op: "media",
                detail: "the media session panicked".into(),
            });
        } else {
            self.core.close();
            dispatch(&mut self.core, &mut self.state, &self.events);
        }
        match self.port_end.take() {
            // The far end ended the call (a BYE closed the RTP stream, the phone went
            // on-hook): the media ends as on a hang-up, which is no news to an admin.
            Some(e) if e.is_closed() => {
                tracing::debug!(call = %label, device = %self.port.device(), reason = %e, "audio port closed by the far end");
            }
            Some(e) => {
                tracing::warn!(call = %label, device = %self.port.device(), error = %e, "audio port failed");
                let _ = self.events.send(MediaEvent::PortFailed {
                    error: Arc::new(e.into()),
                });
            }
            None => {}
        }
        let Task {
            port,
            events,
            done,
            frames,
            missing,
            ..
        } = self;
        drop(port);
        tracing::debug!(call = %label, frames, missing, "media session closed");
        let _ = events.send(MediaEvent::Closed);
        let _ = done.send(true);
    }
}

impl FrameTask for Task {
    fn frame(&mut self) -> bool {
        self.frame_once()
    }

    fn finish(self: Box<Self>, panicked: bool) {
        Task::finish(*self, panicked);
    }
}
