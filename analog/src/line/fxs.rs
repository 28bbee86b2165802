//! The FXS line: an analog phone on the gateway.
//!
//! ```text
//!            off-hook                 digit            route
//!   Idle ───────────▶ DialTone ─────────────▶ Collecting ─────▶ Routed ──answer──▶ Connected
//!    │ ▲                 │ no digit: reorder → howler → permanent signal            │ hangup
//!    │ │                                                                               │
//!    │ └─────── on-hook (Ended) from anywhere ◀──────────────── Clearing (busy) ◀─────┘
//!    │ ring command
//!    └──▶ Ringing (cadence; caller ID after the first ring (Bell) or before it (ETSI))
//!             └── off-hook (ring trip) ──▶ Connected (Answered)
//! ```
//!
//! Hold and consultation transfer, as on a PBX or an ATA. A flash in `Connected` holds the
//! call (`Flash { held: true }`) and the phone hears dial tone: the same dial-tone → digits →
//! route path then starts a second, consultation call (`Consult`, ended by `ConsultEnded`)
//! while the first stays held. From there:
//!
//! | the phone | with a consultation call | held, no consultation call |
//! |---|---|---|
//! | flashes | the consultation ends, the held call is back (`Flash { held: false }`) | the held call is back |
//! | goes on-hook | `Transfer`: the two far ends are joined, the port is free | recall: the phone rings; off-hook takes the held call back |
//!
//! The held party hanging up (`Hangup` while held) ends only the held call; a
//! consultation call then becomes the phone's call.
//!
//! Inputs: the raw loop-closure bit ([`FxsLine::hook_sample`]), DTMF digits the port's
//! detector heard ([`FxsLine::dtmf`]), completion of an audio burst such as caller ID
//! ([`FxsLine::audio_done`]), commands ([`FxsLine::command`]) and the passing of time
//! ([`FxsLine::poll`]). Outputs ([`FxsOutput`], drained with [`FxsLine::pop`]): what the
//! linefeed should be, what the audio path should do, and line events.

use heapless::{Deque, Vec};

use super::dialplan::{Decision, DialPlan};
use super::hook::{HookDetector, HookEvent, HookTiming};
use super::{DigitSource, Digits, EndReason, LineEvent, Route, Tone, cadence_segment};
use crate::Millis;
use crate::cid::dtmf::Variant;
use crate::cid::{CallerId, Layout};

/// How the phone is fed (the port maps it onto the chip's linefeed states, adding the
/// configured idle polarity).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Feed {
    /// Battery on, idle/talk polarity.
    Active,
    /// Battery on, polarity reversed (answer supervision, ETSI caller-ID alert).
    Reversed,
    /// On-hook transmission (audio to an on-hook phone) in the given polarity.
    OnHookTransmission {
        /// Reversed polarity.
        reversed: bool,
    },
    /// Ringing voltage.
    Ringing,
}

/// Caller-ID signalling towards the phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CidMode {
    /// No caller ID.
    Off,
    /// Bell 202 FSK between the first and second ring (GR-30 type 1).
    Bell(Layout),
    /// V.23 FSK after the first ring.
    EtsiAfterRing(Layout),
    /// Line reversal, DT-AS, V.23 FSK, then the first ring (EN 300 659-1 §6.1.1(b)).
    EtsiPreRing(Layout),
    /// Line reversal, DTMF CLIP, then the first ring.
    Dtmf(Variant),
}

/// What the audio path towards the phone should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FxsAudio {
    /// Send silence; ignore the phone.
    Silence,
    /// Play a tone (and listen for DTMF while it is dial tone).
    Tone(Tone),
    /// Listen for dialled DTMF digits (silence towards the phone).
    CollectDigits,
    /// Send caller ID; report [`FxsLine::audio_done`] when the burst is over.
    CallerId {
        /// Who calls.
        caller: CallerId,
        /// How.
        mode: CidMode,
    },
    /// The call's audio passes both ways.
    Connected,
}

/// One decision of the FXS line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FxsOutput {
    /// Set the linefeed.
    Feed(Feed),
    /// Change what the audio path does.
    Audio(FxsAudio),
    /// Report an event.
    Event(LineEvent),
}

/// A command to the FXS line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FxsCommand {
    /// Ring the phone (an incoming call for it), with caller ID when given.
    Ring {
        /// Who calls.
        caller: Option<CallerId>,
    },
    /// The far end of a call the phone made is ringing: play ringback.
    Ringback,
    /// The call the phone made is answered (or the gateway takes it): connect audio.
    Answer,
    /// End the call. The phone, if still off-hook, hears `tone` (busy or congestion).
    Hangup {
        /// The tone for a phone still off-hook.
        tone: Tone,
    },
    /// Give dial tone again during a call (after a flash: a consultation call).
    DialTone,
    /// End the consultation call (the held call stays); the phone hears `tone`.
    HangupConsult {
        /// Busy or congestion.
        tone: Tone,
    },
}

/// Why a command was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FxsCommandError {
    /// The phone is in use (ring refused) or no call is in a state for this command.
    Busy,
    /// There is no call to act on.
    NoCall,
}

/// FXS line settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FxsConfig {
    /// Hook timing.
    pub hook: HookTiming,
    /// Ringing cadence: on, off, on, off… ms (the tone zone's `ring_cadence`).
    pub ring_cadence: Vec<u16, 8>,
    /// Caller-ID signalling.
    pub cid: CidMode,
    /// Delay from the end of the first ring (or from the line reversal) to the caller ID.
    pub cid_delay_ms: u16,
    /// Quiet time between the caller ID and the next ring.
    pub cid_guard_ms: u16,
    /// Dial plan.
    pub dial_plan: DialPlan,
    /// No first digit within this time: reorder.
    pub first_digit_timeout_ms: u32,
    /// No further digit within this time: route what was dialled.
    pub interdigit_timeout_ms: u32,
    /// Reorder (or busy after a call) before the howler.
    pub reorder_ms: u32,
    /// Howler before the permanent-signal state.
    pub howler_ms: u32,
    /// Reverse the polarity while a call the phone made is answered (answer supervision for
    /// payphones and PBX trunks).
    pub reverse_on_answer: bool,
}

impl Default for FxsConfig {
    fn default() -> Self {
        let mut ring_cadence = Vec::new();
        let _ = ring_cadence.extend_from_slice(&[2000, 4000]);
        Self {
            hook: HookTiming::default(),
            ring_cadence,
            cid: CidMode::Bell(Layout::Mdmf),
            cid_delay_ms: 500,
            cid_guard_ms: 300,
            dial_plan: DialPlan::default(),
            first_digit_timeout_ms: 15_000,
            interdigit_timeout_ms: 4_000,
            reorder_ms: 30_000,
            howler_ms: 40_000,
            reverse_on_answer: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RingPhase {
    /// ETSI pre-ring: polarity reversed, waiting to send caller ID at `until`.
    Alerting { until: Millis },
    /// Caller ID on the line (on-hook transmission).
    SendingCid,
    /// After caller ID (or at the start), quiet until `until`; then the cadence resumes at
    /// the ringing state's `offset`.
    Guard { until: Millis },
    /// The cadence runs from `start`; segment `segment` ends at `until`.
    Cadence {
        start: Millis,
        segment: usize,
        until: Millis,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Idle,
    Ringing {
        phase: RingPhase,
        cid_sent: bool,
        caller: Option<CallerId>,
        /// Cadence position to resume at after caller ID.
        offset: u64,
        /// The cadence does not resume before this time (the end of the pause that carries
        /// caller ID: the ring rhythm stays the country's).
        resume_at: Millis,
    },
    DialTone {
        since: Millis,
    },
    Collecting {
        digits: Digits,
        last: Millis,
    },
    Routed,
    Connected,
    Clearing {
        tone: Tone,
        since: Millis,
    },
    Howler {
        since: Millis,
    },
    PermanentSignal,
}

/// The FXS line state machine.
#[derive(Debug, Clone)]
pub struct FxsLine {
    config: FxsConfig,
    hook: HookDetector,
    state: State,
    /// A call is in progress (an `Ended` is owed).
    call: bool,
    answered: bool,
    /// The call is on hold (a flash); the state is then the phone's consultation side.
    held: bool,
    /// A consultation call is in progress (a `ConsultEnded` is owed). Only while `held`.
    consult: bool,
    consult_answered: bool,
    out: Deque<FxsOutput, 16>,
}

impl FxsLine {
    /// An idle line.
    #[must_use]
    pub fn new(config: FxsConfig) -> Self {
        Self {
            hook: HookDetector::new(config.hook),
            config,
            state: State::Idle,
            call: false,
            answered: false,
            held: false,
            consult: false,
            consult_answered: false,
            out: Deque::new(),
        }
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &FxsConfig {
        &self.config
    }

    /// True while the phone is (debounced) off-hook.
    #[must_use]
    pub fn off_hook(&self) -> bool {
        self.hook.is_off_hook()
    }

    /// True while ringing (including caller-ID transmission between rings).
    #[must_use]
    pub fn ringing(&self) -> bool {
        matches!(self.state, State::Ringing { .. })
    }

    /// True while a call is in progress.
    #[must_use]
    pub fn in_call(&self) -> bool {
        self.call
    }

    /// The next decision, if any.
    pub fn pop(&mut self) -> Option<FxsOutput> {
        self.out.pop_front()
    }

    fn emit(&mut self, o: FxsOutput) {
        // Sixteen slots; one input produces at most five outputs and the port drains after
        // every input. Should the port not drain, the oldest stays and the newest is lost
        // rather than the state machine panicking.
        let _ = self.out.push_back(o);
    }

    fn event(&mut self, e: LineEvent) {
        self.emit(FxsOutput::Event(e));
    }

    /// True while the call is held (after a flash), with or without a consultation call.
    #[must_use]
    pub fn held(&self) -> bool {
        self.held
    }

    /// True while a consultation call is in progress.
    #[must_use]
    pub fn consulting(&self) -> bool {
        self.consult
    }

    fn end_consult(&mut self, reason: EndReason) {
        if self.consult {
            self.consult = false;
            let answered = self.consult_answered;
            self.consult_answered = false;
            self.event(LineEvent::ConsultEnded { reason, answered });
        }
    }

    /// The phone takes the held call back (a flash, or off-hook on the recall ring).
    fn retrieve(&mut self) {
        self.end_consult(EndReason::PhoneOnHook);
        self.held = false;
        self.state = State::Connected;
        self.emit(FxsOutput::Feed(Feed::Active));
        self.emit(FxsOutput::Audio(FxsAudio::Connected));
        self.event(LineEvent::Flash { held: false });
    }

    fn end_call(&mut self, reason: EndReason) {
        self.end_consult(reason);
        self.held = false;
        if self.call {
            self.call = false;
            let answered = self.answered;
            self.answered = false;
            self.event(LineEvent::Ended { reason, answered });
        }
    }

    fn go_idle(&mut self) {
        self.state = State::Idle;
        self.emit(FxsOutput::Feed(Feed::Active));
        self.emit(FxsOutput::Audio(FxsAudio::Silence));
    }

    /// Feeds the raw loop-closure bit sampled at `now`.
    pub fn hook_sample(&mut self, off_hook: bool, now: Millis) {
        let mut e = self.hook.update(off_hook, now);
        while let Some(ev) = e {
            self.on_hook_event(ev, now);
            e = self.hook.poll(now);
        }
        self.timers(now);
    }

    /// Runs timers (call at least every 10 ms while ringing or dialling; any rate otherwise).
    pub fn poll(&mut self, now: Millis) {
        while let Some(ev) = self.hook.poll(now) {
            self.on_hook_event(ev, now);
        }
        self.timers(now);
    }

    fn on_hook_event(&mut self, ev: HookEvent, now: Millis) {
        match ev {
            HookEvent::OffHook => match self.state {
                State::Idle => {
                    self.call = true;
                    self.answered = false;
                    self.event(LineEvent::OffHook);
                    if self.config.dial_plan.hotline {
                        self.state = State::Routed;
                        self.emit(FxsOutput::Audio(FxsAudio::Silence));
                        self.event(LineEvent::Dialled {
                            route: Route::Hotline,
                            digits: Digits::new(),
                        });
                    } else {
                        self.state = State::DialTone { since: now };
                        self.emit(FxsOutput::Audio(FxsAudio::Tone(Tone::Dial)));
                    }
                }
                State::Ringing { .. } if self.held => self.retrieve(),
                State::Ringing { .. } => {
                    // Ring trip: the chip has already switched to active; make it explicit.
                    self.state = State::Connected;
                    self.answered = true;
                    self.emit(FxsOutput::Feed(Feed::Active));
                    self.emit(FxsOutput::Audio(FxsAudio::Connected));
                    self.event(LineEvent::Answered);
                }
                _ => {}
            },
            HookEvent::OnHook => {
                let was_ringing = matches!(self.state, State::Ringing { .. });
                if was_ringing || self.state == State::Idle {
                    return;
                }
                if self.consult {
                    // Consultation transfer: the phone hands the held party to the one it
                    // consulted (answered or still ringing) and leaves.
                    self.event(LineEvent::Transfer {
                        answered: self.consult_answered,
                    });
                    self.end_call(EndReason::Transferred);
                    self.go_idle();
                } else if self.held {
                    // Recall: the held party is not dropped; the phone rings until it is
                    // lifted (the call comes back) or the held party hangs up.
                    self.state = State::Ringing {
                        phase: RingPhase::Guard { until: now },
                        cid_sent: true,
                        caller: None,
                        offset: 0,
                        resume_at: 0,
                    };
                    self.emit(FxsOutput::Audio(FxsAudio::Silence));
                    self.start_cadence(now, 0);
                } else {
                    self.end_call(EndReason::PhoneOnHook);
                    self.go_idle();
                }
            }
            // Flash-hook hold: the far end is put on hold and the phone hears dial tone (the
            // recall tone every PBX gives) and may dial a consultation call; a flash while
            // held (dialling, consulting, or hearing busy after the consultation) takes the
            // held call back and ends any consultation call.
            HookEvent::Flash => match self.state {
                State::Idle | State::Ringing { .. } => {}
                _ if self.held => self.retrieve(),
                State::Connected if self.answered => {
                    self.held = true;
                    self.state = State::DialTone { since: now };
                    self.emit(FxsOutput::Audio(FxsAudio::Tone(Tone::Dial)));
                    self.event(LineEvent::Flash { held: true });
                }
                _ => {}
            },
            HookEvent::Digit(d) => self.digit(d, DigitSource::Pulse, now),
        }
    }

    /// A DTMF digit the port's detector heard from the phone.
    pub fn dtmf(&mut self, digit: char, now: Millis) {
        // In a call, in-band DTMF belongs to the media layer (it hears the same audio).
        if !matches!(self.state, State::Connected) {
            self.digit(digit, DigitSource::Dtmf, now);
        }
    }

    fn digit(&mut self, d: char, source: DigitSource, now: Millis) {
        match &mut self.state {
            State::DialTone { .. } => {
                let mut digits = Digits::new();
                let _ = digits.push(d);
                self.state = State::Collecting { digits, last: now };
                self.emit(FxsOutput::Audio(FxsAudio::CollectDigits));
                self.check_plan(false, now);
            }
            State::Collecting { digits, last } => {
                let _ = digits.push(d);
                *last = now;
                self.check_plan(false, now);
            }
            State::Connected => self.event(LineEvent::Digit { digit: d, source }),
            _ => {}
        }
    }

    fn check_plan(&mut self, timed_out: bool, now: Millis) {
        let State::Collecting { digits, .. } = &self.state else {
            return;
        };
        let digits = digits.clone();
        match self.config.dial_plan.check(&digits, timed_out) {
            Decision::NeedMore => {}
            Decision::Route(route) => {
                self.state = State::Routed;
                self.emit(FxsOutput::Audio(FxsAudio::Silence));
                if self.held {
                    self.consult = true;
                    self.consult_answered = false;
                    self.event(LineEvent::Consult { route, digits });
                } else {
                    self.event(LineEvent::Dialled { route, digits });
                }
            }
            Decision::Invalid => {
                // While held, a wrong number ends nothing: a flash still takes the call back.
                if !self.held {
                    self.end_call(EndReason::NoRoute);
                }
                self.clearing(Tone::Congestion, now);
            }
        }
    }

    fn clearing(&mut self, tone: Tone, since: Millis) {
        self.state = State::Clearing { tone, since };
        self.emit(FxsOutput::Feed(Feed::Active));
        self.emit(FxsOutput::Audio(FxsAudio::Tone(tone)));
    }

    /// The audio burst the line asked for (caller ID) is over.
    pub fn audio_done(&mut self, now: Millis) {
        if let State::Ringing {
            phase: RingPhase::SendingCid,
            ..
        } = self.state
        {
            let guard = now + u64::from(self.config.cid_guard_ms);
            let resume = match self.state {
                State::Ringing { resume_at, .. } => resume_at,
                _ => 0,
            };
            self.set_ring_phase(RingPhase::Guard {
                until: guard.max(resume),
            });
            // Normal polarity, no on-hook transmission: quiet until the next ring.
            self.emit(FxsOutput::Feed(Feed::Active));
            self.emit(FxsOutput::Audio(FxsAudio::Silence));
        }
    }

    fn set_ring_phase(&mut self, p: RingPhase) {
        if let State::Ringing { phase, .. } = &mut self.state {
            *phase = p;
        }
    }

    fn cid_slot(&self) -> usize {
        // Caller ID goes into the longest pause of the first cadence cycle (US: the 4 s after
        // the first ring; UK: the 2 s after the double ring).
        let c = &self.config.ring_cadence;
        (1..c.len())
            .step_by(2)
            .max_by_key(|&i| (c[i], usize::MAX - i))
            .unwrap_or(1)
    }

    fn timers(&mut self, now: Millis) {
        match self.state.clone() {
            State::Ringing {
                phase,
                cid_sent,
                caller,
                offset,
                ..
            } => self.ring_timers(now, phase, cid_sent, caller, offset),
            State::DialTone { since } => {
                if now.saturating_sub(since) >= u64::from(self.config.first_digit_timeout_ms) {
                    if !self.held {
                        self.end_call(EndReason::NoRoute);
                    }
                    self.clearing(Tone::Congestion, now);
                }
            }
            State::Collecting { last, .. } => {
                if now.saturating_sub(last) >= u64::from(self.config.interdigit_timeout_ms) {
                    self.check_plan(true, now);
                }
            }
            State::Clearing { since, .. } => {
                if now.saturating_sub(since) >= u64::from(self.config.reorder_ms) {
                    self.state = State::Howler { since: now };
                    self.emit(FxsOutput::Audio(FxsAudio::Tone(Tone::Howler)));
                }
            }
            State::Howler { since } => {
                if now.saturating_sub(since) >= u64::from(self.config.howler_ms) {
                    self.state = State::PermanentSignal;
                    self.emit(FxsOutput::Audio(FxsAudio::Silence));
                    self.event(LineEvent::PermanentSignal);
                }
            }
            State::Idle | State::Routed | State::Connected | State::PermanentSignal => {}
        }
    }

    fn ring_timers(
        &mut self,
        now: Millis,
        phase: RingPhase,
        cid_sent: bool,
        caller: Option<CallerId>,
        offset: u64,
    ) {
        match phase {
            RingPhase::Alerting { until } => {
                if now >= until {
                    self.send_cid(caller);
                }
            }
            RingPhase::SendingCid => {}
            RingPhase::Guard { until } => {
                if now >= until {
                    self.start_cadence(now, offset);
                }
            }
            RingPhase::Cadence {
                start,
                segment,
                until,
            } => {
                if now < until {
                    return;
                }
                let cadence = self.config.ring_cadence.clone();
                let (next, ends) = cadence_segment(&cadence, now - start + offset);
                let end_abs = start + ends - offset;
                // Caller ID after the first ring (Bell / ETSI after ring): at the start of
                // the first cycle's longest pause.
                let after_ring = matches!(
                    self.config.cid,
                    CidMode::Bell(_) | CidMode::EtsiAfterRing(_)
                );
                let first_cycle =
                    now - start + offset < cadence.iter().map(|&d| u64::from(d)).sum::<u64>();
                if after_ring
                    && !cid_sent
                    && caller.is_some()
                    && next == self.cid_slot()
                    && first_cycle
                {
                    // Play the rest of the cadence after caller ID: remember where we are.
                    let played = now - start + offset;
                    if let State::Ringing {
                        phase,
                        offset,
                        cid_sent,
                        resume_at,
                        ..
                    } = &mut self.state
                    {
                        *phase = RingPhase::Alerting {
                            until: now + u64::from(self.config.cid_delay_ms),
                        };
                        *offset = played + u64::from(cadence[next]);
                        *resume_at = end_abs;
                        *cid_sent = true;
                    }
                    self.emit(FxsOutput::Feed(Feed::Active));
                    return;
                }
                if next != segment {
                    let on = next % 2 == 0;
                    self.emit(FxsOutput::Feed(if on {
                        Feed::Ringing
                    } else {
                        Feed::Active
                    }));
                }
                self.set_ring_phase(RingPhase::Cadence {
                    start,
                    segment: next,
                    until: end_abs,
                });
            }
        }
    }

    fn send_cid(&mut self, caller: Option<CallerId>) {
        let Some(caller) = caller else {
            return;
        };
        let reversed = matches!(self.config.cid, CidMode::EtsiPreRing(_) | CidMode::Dtmf(_));
        self.set_ring_phase(RingPhase::SendingCid);
        self.emit(FxsOutput::Feed(Feed::OnHookTransmission { reversed }));
        self.emit(FxsOutput::Audio(FxsAudio::CallerId {
            caller,
            mode: self.config.cid,
        }));
    }

    fn start_cadence(&mut self, now: Millis, offset: u64) {
        let cadence = self.config.ring_cadence.clone();
        let (segment, ends) = cadence_segment(&cadence, offset);
        self.set_ring_phase(RingPhase::Cadence {
            start: now,
            segment,
            until: now + ends - offset,
        });
        let on = segment % 2 == 0;
        self.emit(FxsOutput::Feed(if on {
            Feed::Ringing
        } else {
            Feed::Active
        }));
    }

    /// Applies a command.
    ///
    /// # Errors
    /// [`FxsCommandError::Busy`] when the phone is in use (ring) or the call is not in a state
    /// for the command; [`FxsCommandError::NoCall`] without a call.
    pub fn command(&mut self, cmd: FxsCommand, now: Millis) -> Result<(), FxsCommandError> {
        match cmd {
            FxsCommand::Ring { caller } => {
                if self.state != State::Idle || self.hook.is_off_hook() {
                    return Err(FxsCommandError::Busy);
                }
                self.call = true;
                self.answered = false;
                let pre_ring =
                    matches!(self.config.cid, CidMode::EtsiPreRing(_) | CidMode::Dtmf(_))
                        && caller.is_some();
                let has_cid = caller.is_some() && self.config.cid != CidMode::Off;
                self.state = State::Ringing {
                    phase: RingPhase::Guard { until: now },
                    cid_sent: !has_cid,
                    caller: if has_cid { caller } else { None },
                    offset: 0,
                    resume_at: 0,
                };
                if pre_ring {
                    // The line reversal is the ETSI alert; caller ID follows after the delay.
                    self.set_ring_phase(RingPhase::Alerting {
                        until: now + u64::from(self.config.cid_delay_ms),
                    });
                    if let State::Ringing { cid_sent, .. } = &mut self.state {
                        *cid_sent = true;
                    }
                    self.emit(FxsOutput::Feed(Feed::Reversed));
                } else {
                    self.start_cadence(now, 0);
                }
                Ok(())
            }
            FxsCommand::Ringback => match self.state {
                State::Routed => {
                    self.emit(FxsOutput::Audio(FxsAudio::Tone(Tone::Ringback)));
                    Ok(())
                }
                _ if self.call => Err(FxsCommandError::Busy),
                _ => Err(FxsCommandError::NoCall),
            },
            FxsCommand::Answer => match self.state {
                State::Routed if self.consult => {
                    self.state = State::Connected;
                    self.consult_answered = true;
                    self.emit(FxsOutput::Audio(FxsAudio::Connected));
                    Ok(())
                }
                State::Routed => {
                    self.state = State::Connected;
                    self.answered = true;
                    if self.config.reverse_on_answer {
                        self.emit(FxsOutput::Feed(Feed::Reversed));
                    }
                    self.emit(FxsOutput::Audio(FxsAudio::Connected));
                    Ok(())
                }
                State::Connected => Ok(()),
                // The held call was answered before it was held.
                _ if self.held && !self.consult => Ok(()),
                _ if self.call => Err(FxsCommandError::Busy),
                _ => Err(FxsCommandError::NoCall),
            },
            FxsCommand::Hangup { tone } => {
                if !self.call {
                    return Err(FxsCommandError::NoCall);
                }
                if self.consult {
                    // The held party left during a consultation: the consultation call
                    // becomes the phone's call, as it is.
                    let answered = self.answered;
                    self.event(LineEvent::Ended {
                        reason: EndReason::Local,
                        answered,
                    });
                    self.held = false;
                    self.consult = false;
                    self.answered = self.consult_answered;
                    self.consult_answered = false;
                    return Ok(());
                }
                let ringing = matches!(self.state, State::Ringing { .. });
                self.end_call(EndReason::Local);
                if ringing || !self.hook.is_off_hook() {
                    self.go_idle();
                } else {
                    self.clearing(tone, now);
                }
                Ok(())
            }
            FxsCommand::HangupConsult { tone } => {
                if !self.consult {
                    return Err(FxsCommandError::NoCall);
                }
                self.end_consult(EndReason::Local);
                // Still held: the phone hears `tone` until it flashes back (or hangs up,
                // which recalls).
                self.clearing(tone, now);
                Ok(())
            }
            FxsCommand::DialTone => {
                if self.state != State::Connected {
                    return Err(if self.call {
                        FxsCommandError::Busy
                    } else {
                        FxsCommandError::NoCall
                    });
                }
                self.state = State::DialTone { since: now };
                self.emit(FxsOutput::Audio(FxsAudio::Tone(Tone::Dial)));
                Ok(())
            }
        }
    }
}
