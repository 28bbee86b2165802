//! The FXO line: the gateway on a landline.
//!
//! ```text
//!   Idle (on-hook, caller-ID receiver on) ── ring ──▶ Ringing ── answer / N rings ──▶ Connected
//!     │  ▲                                      └─ no ring for 8 s: Ended(RingingStopped)   │
//!     │  └── release guard ◀── on-hook ◀── hangup / disconnect supervision ◀────────────────┘
//!     └── dial ──▶ Seized (wait for dial tone) ──▶ Dialling (DTMF or pulses) ──▶ Connected
//! ```
//!
//! Caller ID is taken before answering: a message decoded before the first ring (ETSI) or
//! between the first and second ring (Bell) is attached to [`LineEvent::Incoming`], which is
//! reported as soon as caller ID arrives or, without caller ID, at the ring given by
//! [`FxoConfig::announce_at_ring`].
//!
//! Disconnect supervision while off-hook, so a call never stays up after the far end left:
//! loop current drop (after a safe zone following seizure, flash or pulses), battery polarity
//! reversal (after answer; the first reversal is the answer itself when
//! [`FxoConfig::answer_on_polarity`] is set), battery loss, busy or congestion tone (reported
//! by the port's tone detector), and a silence timeout.

use heapless::Deque;

use super::ring::{RingDetector, RingEdge, RingTiming};
use super::{Digits, Disconnect, EndReason, LineEvent};
use crate::Millis;
use crate::cid::CallerId;
use crate::country::BatteryThresholds;
use crate::si3050::LineSample;

/// How digits are dialled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DialMode {
    /// In-band DTMF (the port's generator).
    Dtmf,
    /// Loop-disconnect pulses made by the hook switch.
    Pulse,
}

/// Pulse dialling timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PulseTiming {
    /// On-hook time of a pulse (10 pps at 60/40).
    pub break_ms: u16,
    /// Off-hook time between pulses.
    pub make_ms: u16,
    /// Off-hook time between digits.
    pub interdigit_ms: u16,
}

impl Default for PulseTiming {
    fn default() -> Self {
        Self {
            break_ms: 60,
            make_ms: 40,
            interdigit_ms: 700,
        }
    }
}

/// Disconnect supervision settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Supervision {
    /// Watch the loop current.
    pub loop_current: bool,
    /// Loop current at or below this register value is "no current" (about 1.1 mA/LSB).
    pub loop_current_threshold: u8,
    /// The current must stay low this long (power denial; xpp: 80 ms).
    pub loop_current_min_ms: u16,
    /// After seizure, a flash or pulse dialling the current is not watched for this long.
    pub safe_zone_ms: u16,
    /// A battery reversal after answer is a disconnect.
    pub battery_reversal: bool,
    /// Polarity must hold this long to count as reversed.
    pub polarity_debounce_ms: u16,
    /// Battery thresholds (the country's).
    pub battery: BatteryThresholds,
    /// Busy and congestion tones from the exchange end the call.
    pub tones: bool,
    /// No audio for this long ends the call (`None`: never).
    pub silence_timeout_ms: Option<u32>,
}

impl Default for Supervision {
    fn default() -> Self {
        Self {
            loop_current: true,
            loop_current_threshold: 2,
            loop_current_min_ms: 80,
            safe_zone_ms: 650,
            battery_reversal: true,
            polarity_debounce_ms: 64,
            battery: BatteryThresholds {
                threshold_v: 3,
                debounce_ms: 64,
                alarm_ms: 1000,
            },
            tones: true,
            silence_timeout_ms: Some(120_000),
        }
    }
}

/// FXO line settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FxoConfig {
    /// Ring detection.
    pub ring: RingTiming,
    /// Without caller ID, report the incoming call at the start of this ring (caller ID
    /// comes between rings 1 and 2, so 2 waits for it).
    pub announce_at_ring: u8,
    /// Answer by itself at the end of this ring (`None`: only on command).
    pub auto_answer_rings: Option<u8>,
    /// No ring for this long after the last one: the caller gave up.
    pub ring_timeout_ms: u32,
    /// Caller ID received on-hook stays valid for a ring starting this long after it.
    pub cid_valid_ms: u32,
    /// Dialling mode.
    pub dial_mode: DialMode,
    /// After seizing, dial after this long even if no dial tone was reported.
    pub dial_delay_ms: u32,
    /// Pulse timing.
    pub pulse: PulseTiming,
    /// Hook flash length.
    pub flash_ms: u16,
    /// The far end's answer is signalled by a battery reversal (otherwise an outgoing call
    /// counts as answered once dialled: plain lines give no answer signal).
    pub answer_on_polarity: bool,
    /// Disconnect supervision.
    pub supervision: Supervision,
    /// After going on-hook, ignore the line this long (seizing or ringing transients).
    pub release_guard_ms: u16,
}

impl Default for FxoConfig {
    fn default() -> Self {
        Self {
            ring: RingTiming::default(),
            announce_at_ring: 2,
            auto_answer_rings: None,
            ring_timeout_ms: 8_000,
            cid_valid_ms: 6_000,
            dial_mode: DialMode::Dtmf,
            dial_delay_ms: 2_000,
            pulse: PulseTiming::default(),
            flash_ms: 600,
            answer_on_polarity: false,
            supervision: Supervision::default(),
            release_guard_ms: 500,
        }
    }
}

/// What the audio path of the FXO port should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FxoAudio {
    /// On-hook: run the caller-ID receivers (FSK and DTMF) on the line audio.
    Monitor,
    /// Off-hook before the call: listen for dial tone, send nothing.
    AwaitDialTone,
    /// Send these DTMF digits; report [`FxoLine::audio_done`] when they are out.
    SendDtmf(Digits),
    /// The call's audio passes both ways (and the port watches for busy/congestion tones and
    /// silence).
    Connected,
}

/// One decision of the FXO line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FxoOutput {
    /// Go off-hook (`true`) or on-hook.
    Hook(bool),
    /// Change what the audio path does.
    Audio(FxoAudio),
    /// Report an event.
    Event(LineEvent),
}

/// A command to the FXO line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FxoCommand {
    /// Answer the ringing line.
    Answer,
    /// Seize the line and dial.
    Dial(Digits),
    /// End the call (or refuse the ringing one: it keeps ringing unanswered at the exchange
    /// side, so the line only forgets it).
    Hangup,
    /// Hook flash during a call.
    Flash,
}

/// Why a command was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FxoCommandError {
    /// The line is in use (or still releasing).
    Busy,
    /// Nothing to act on.
    NoCall,
    /// The number has characters that cannot be dialled in this mode.
    BadNumber,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pulse {
    Break { until: Millis },
    Make { until: Millis },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Idle,
    Ringing {
        rings: u8,
        last_end: Option<Millis>,
        announced: bool,
        caller: Option<CallerId>,
    },
    Seized {
        digits: Digits,
        dial_at: Millis,
    },
    DiallingDtmf,
    DiallingPulse {
        digits: Digits,
        next: usize,
        left: u8,
        phase: Pulse,
    },
    Connected {
        answered: bool,
    },
    Flashing {
        until: Millis,
    },
    Releasing {
        until: Millis,
    },
}

/// Battery presence and polarity tracking.
#[derive(Debug, Clone, Copy, Default)]
struct Battery {
    polarity: Option<bool>,
    candidate: Option<(bool, Millis)>,
    lost_since: Option<Millis>,
    present: bool,
}

/// The FXO line state machine.
#[derive(Debug, Clone)]
pub struct FxoLine {
    config: FxoConfig,
    rings: RingDetector,
    state: State,
    battery: Battery,
    /// Caller ID received while idle (before the first ring), with its time.
    early_cid: Option<(CallerId, Millis)>,
    /// The loop current is not watched before this time.
    current_watch_from: Millis,
    current_low_since: Option<Millis>,
    /// Polarity is not watched before this time (ringing swings the line voltage).
    polarity_watch_from: Millis,
    last_audio: Millis,
    call: bool,
    answered: bool,
    outgoing: bool,
    out: Deque<FxoOutput, 16>,
}

impl FxoLine {
    /// An idle line.
    #[must_use]
    pub fn new(config: FxoConfig) -> Self {
        Self {
            rings: RingDetector::new(config.ring),
            config,
            state: State::Idle,
            battery: Battery::default(),
            early_cid: None,
            current_watch_from: 0,
            current_low_since: None,
            polarity_watch_from: 0,
            last_audio: 0,
            call: false,
            answered: false,
            outgoing: false,
            out: Deque::new(),
        }
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &FxoConfig {
        &self.config
    }

    /// The next decision, if any.
    pub fn pop(&mut self) -> Option<FxoOutput> {
        self.out.pop_front()
    }

    /// True while off-hook (seized, dialling, connected, flashing).
    #[must_use]
    pub fn off_hook(&self) -> bool {
        matches!(
            self.state,
            State::Seized { .. }
                | State::DiallingDtmf
                | State::DiallingPulse { .. }
                | State::Connected { .. }
        )
    }

    /// True during a ring burst.
    #[must_use]
    pub fn ringing(&self) -> bool {
        self.rings.is_ringing()
    }

    /// True while a call is in progress.
    #[must_use]
    pub fn in_call(&self) -> bool {
        self.call
    }

    /// Battery present on the line (as last judged).
    #[must_use]
    pub fn battery_present(&self) -> bool {
        self.battery.present
    }

    /// Line polarity (`true` = positive), once known.
    #[must_use]
    pub fn polarity(&self) -> Option<bool> {
        self.battery.polarity
    }

    fn emit(&mut self, o: FxoOutput) {
        let _ = self.out.push_back(o);
    }

    fn event(&mut self, e: LineEvent) {
        self.emit(FxoOutput::Event(e));
    }

    fn end_call(&mut self, reason: EndReason) {
        if self.call {
            self.call = false;
            let answered = self.answered;
            self.answered = false;
            self.event(LineEvent::Ended { reason, answered });
        }
    }

    fn release(&mut self, now: Millis, reason: EndReason) {
        let was_off_hook = self.off_hook() || matches!(self.state, State::Flashing { .. });
        self.end_call(reason);
        if was_off_hook {
            self.emit(FxoOutput::Hook(false));
        }
        self.emit(FxoOutput::Audio(FxoAudio::Monitor));
        self.state = State::Releasing {
            until: now + u64::from(self.config.release_guard_ms),
        };
        // The seizure and release disturb the line voltage: do not read it as a reversal.
        self.polarity_watch_from = now + u64::from(self.config.release_guard_ms);
        self.battery.candidate = None;
    }

    fn seize(&mut self, now: Millis) {
        self.emit(FxoOutput::Hook(true));
        self.current_watch_from = now + u64::from(self.config.supervision.safe_zone_ms);
        self.current_low_since = None;
        self.polarity_watch_from = now + u64::from(self.config.supervision.safe_zone_ms);
        self.battery.candidate = None;
        self.last_audio = now;
    }

    fn connect(&mut self, now: Millis, answered: bool) {
        self.state = State::Connected { answered };
        self.last_audio = now;
        self.emit(FxoOutput::Audio(FxoAudio::Connected));
        if answered && !self.answered {
            self.answered = true;
            self.event(LineEvent::Answered);
        }
    }

    /// Feeds one sample of the line (ring bits, line voltage, loop current).
    pub fn sample(&mut self, s: &LineSample, now: Millis) {
        if let Some(edge) = self.rings.sample(s.ring_positive, s.ring_negative, now) {
            self.on_ring(edge, now);
        }
        if self.rings.is_ringing() {
            self.polarity_watch_from = self.polarity_watch_from.max(now + 500);
        }
        self.track_battery(s.line_voltage, now);
        self.track_current(s.loop_current_raw, now);
        self.poll(now);
    }

    fn track_battery(&mut self, v: i8, now: Millis) {
        let sup = self.config.supervision;
        let b = &mut self.battery;
        if v.unsigned_abs() <= sup.battery.threshold_v {
            b.candidate = None;
            let since = *b.lost_since.get_or_insert(now);
            if b.present && now.saturating_sub(since) >= u64::from(sup.battery.debounce_ms) {
                b.present = false;
                b.polarity = None;
                // Off-hook, no battery also means no loop current: with loop-current
                // supervision on, that check reports it (as the power denial it usually is);
                // battery loss ends the call itself only when current is not watched.
                if self.off_hook() && !sup.loop_current {
                    self.release(now, EndReason::FarEnd(Disconnect::BatteryLoss));
                }
            }
            return;
        }
        b.lost_since = None;
        b.present = true;
        let sign = v > 0;
        match (b.polarity, b.candidate) {
            (None, _) => {
                b.polarity = Some(sign);
                b.candidate = None;
            }
            (Some(p), _) if p == sign => b.candidate = None,
            (Some(_), Some((c, t))) if c == sign => {
                if now.saturating_sub(t) >= u64::from(sup.polarity_debounce_ms) {
                    b.polarity = Some(sign);
                    b.candidate = None;
                    if now >= self.polarity_watch_from {
                        self.on_reversal(now);
                    }
                }
            }
            (Some(_), _) => b.candidate = Some((sign, now)),
        }
    }

    fn on_reversal(&mut self, now: Millis) {
        match self.state {
            State::Connected { answered: false } if self.config.answer_on_polarity => {
                self.connect(now, true);
                // The reversal disturbed the current; give it the safe zone again.
                self.current_watch_from = now + u64::from(self.config.supervision.safe_zone_ms);
            }
            State::Connected { .. } | State::DiallingDtmf | State::DiallingPulse { .. }
                if self.config.supervision.battery_reversal =>
            {
                self.release(now, EndReason::FarEnd(Disconnect::BatteryReversal));
            }
            _ => {}
        }
    }

    fn track_current(&mut self, raw: u8, now: Millis) {
        let sup = self.config.supervision;
        let watching = sup.loop_current
            && matches!(self.state, State::Connected { .. } | State::DiallingDtmf)
            && now >= self.current_watch_from;
        if !watching {
            self.current_low_since = None;
            return;
        }
        if raw <= sup.loop_current_threshold {
            let since = *self.current_low_since.get_or_insert(now);
            if now.saturating_sub(since) >= u64::from(sup.loop_current_min_ms) {
                self.release(now, EndReason::FarEnd(Disconnect::LoopCurrent));
            }
        } else {
            self.current_low_since = None;
        }
    }

    fn on_ring(&mut self, edge: RingEdge, now: Millis) {
        match edge {
            RingEdge::Start => match &mut self.state {
                State::Idle => {
                    let caller = self
                        .early_cid
                        .take()
                        .filter(|(_, t)| {
                            now.saturating_sub(*t) <= u64::from(self.config.cid_valid_ms)
                        })
                        .map(|(c, _)| c);
                    self.call = true;
                    self.answered = false;
                    self.outgoing = false;
                    let announce = caller.is_some() || self.config.announce_at_ring <= 1;
                    self.state = State::Ringing {
                        rings: 1,
                        last_end: None,
                        announced: announce,
                        caller: caller.clone(),
                    };
                    if announce {
                        self.event(LineEvent::Incoming { caller, rings: 1 });
                    }
                }
                State::Ringing {
                    rings,
                    announced,
                    caller,
                    ..
                } => {
                    *rings = rings.saturating_add(1);
                    let rings = *rings;
                    if *announced {
                        self.event(LineEvent::Ring { rings });
                    } else if rings >= self.config.announce_at_ring {
                        *announced = true;
                        let caller = caller.clone();
                        self.event(LineEvent::Incoming { caller, rings });
                    }
                }
                State::Releasing { until } => {
                    // A refused call still ringing: keep ignoring it while it rings.
                    let hold = now + u64::from(self.config.ring_timeout_ms);
                    *until = (*until).max(hold);
                }
                _ => {}
            },
            RingEdge::End { .. } => {
                if let State::Ringing {
                    rings, last_end, ..
                } = &mut self.state
                {
                    *last_end = Some(now);
                    let rings = *rings;
                    if self.config.auto_answer_rings.is_some_and(|n| rings >= n) {
                        self.answer(now);
                    }
                }
            }
        }
    }

    fn answer(&mut self, now: Millis) {
        if let State::Ringing {
            announced,
            caller,
            rings,
            ..
        } = &self.state
        {
            if !announced {
                let (caller, rings) = (caller.clone(), *rings);
                self.event(LineEvent::Incoming { caller, rings });
            }
            self.seize(now);
            self.connect(now, true);
        }
    }

    /// Caller ID decoded by the port's receivers.
    pub fn caller_id(&mut self, cid: CallerId, now: Millis) {
        match &mut self.state {
            State::Idle | State::Releasing { .. } => self.early_cid = Some((cid, now)),
            State::Ringing {
                announced,
                caller,
                rings,
                ..
            } if caller.is_none() => {
                *caller = Some(cid.clone());
                if !*announced {
                    *announced = true;
                    let rings = *rings;
                    self.event(LineEvent::Incoming {
                        caller: Some(cid),
                        rings,
                    });
                }
            }
            _ => {}
        }
    }

    /// The port heard dial tone after seizure: dial now.
    pub fn dial_tone(&mut self, now: Millis) {
        if let State::Seized { dial_at, .. } = &mut self.state {
            *dial_at = now;
        }
        self.poll(now);
    }

    /// The port's tone detector recognised busy or congestion tone from the exchange.
    pub fn far_end_tone(&mut self, kind: Disconnect, now: Millis) {
        if self.config.supervision.tones
            && matches!(kind, Disconnect::BusyTone | Disconnect::CongestionTone)
            && matches!(self.state, State::Connected { .. } | State::DiallingDtmf)
        {
            self.release(now, EndReason::FarEnd(kind));
        }
    }

    /// The received audio is not silent (call once per frame that carries sound).
    pub fn audio_activity(&mut self, now: Millis) {
        self.last_audio = now;
    }

    /// The DTMF digits asked for are out.
    pub fn audio_done(&mut self, now: Millis) {
        if self.state == State::DiallingDtmf {
            self.dialled(now);
        }
    }

    fn dialled(&mut self, now: Millis) {
        self.event(LineEvent::Proceeding);
        let answered = !self.config.answer_on_polarity;
        self.connect(now, answered);
    }

    /// Runs timers.
    pub fn poll(&mut self, now: Millis) {
        match self.state.clone() {
            State::Ringing { last_end, .. } => {
                if !self.rings.is_ringing()
                    && let Some(t) = last_end
                    && now.saturating_sub(t) >= u64::from(self.config.ring_timeout_ms)
                {
                    self.end_call(EndReason::RingingStopped);
                    self.state = State::Idle;
                }
            }
            State::Seized { digits, dial_at } => {
                if now >= dial_at {
                    self.start_dialling(digits, now);
                }
            }
            State::DiallingPulse {
                digits,
                next,
                left,
                phase,
            } => self.pulse_step(digits, next, left, phase, now),
            State::Connected { .. } => {
                if let Some(limit) = self.config.supervision.silence_timeout_ms
                    && now.saturating_sub(self.last_audio) >= u64::from(limit)
                {
                    self.release(now, EndReason::FarEnd(Disconnect::Silence));
                }
            }
            State::Flashing { until } => {
                if now >= until {
                    self.emit(FxoOutput::Hook(true));
                    self.current_watch_from = now + u64::from(self.config.supervision.safe_zone_ms);
                    self.polarity_watch_from = self.current_watch_from;
                    self.state = State::Connected {
                        answered: self.answered,
                    };
                }
            }
            State::Releasing { until } => {
                if now >= until {
                    self.state = State::Idle;
                }
            }
            State::Idle | State::DiallingDtmf => {}
        }
    }

    fn start_dialling(&mut self, digits: Digits, now: Millis) {
        match self.config.dial_mode {
            DialMode::Dtmf => {
                self.state = State::DiallingDtmf;
                self.emit(FxoOutput::Audio(FxoAudio::SendDtmf(digits)));
            }
            DialMode::Pulse => {
                self.state = State::DiallingPulse {
                    digits,
                    next: 0,
                    left: 0,
                    phase: Pulse::Make { until: now },
                };
                self.poll(now);
            }
        }
    }

    fn pulse_step(&mut self, digits: Digits, next: usize, left: u8, phase: Pulse, now: Millis) {
        let p = self.config.pulse;
        let (mut next, mut left) = (next, left);
        let new_phase = match phase {
            Pulse::Break { until } if now >= until => {
                self.emit(FxoOutput::Hook(true));
                let make = if left == 0 {
                    p.interdigit_ms
                } else {
                    p.make_ms
                };
                Pulse::Make {
                    until: until + u64::from(make),
                }
            }
            Pulse::Make { until } if now >= until => {
                if left == 0 {
                    let Some(d) = digits.as_bytes().get(next) else {
                        // Every digit is out; the loop current settles after the last pulse.
                        self.current_watch_from =
                            now + u64::from(self.config.supervision.safe_zone_ms);
                        self.dialled(now);
                        return;
                    };
                    next += 1;
                    left = if *d == b'0' { 10 } else { d - b'0' };
                }
                left -= 1;
                self.emit(FxoOutput::Hook(false));
                Pulse::Break {
                    until: until.max(now) + u64::from(p.break_ms),
                }
            }
            other => other,
        };
        self.state = State::DiallingPulse {
            digits,
            next,
            left,
            phase: new_phase,
        };
    }

    /// Applies a command.
    ///
    /// # Errors
    /// [`FxoCommandError`] when the line cannot do it now.
    pub fn command(&mut self, cmd: FxoCommand, now: Millis) -> Result<(), FxoCommandError> {
        match cmd {
            FxoCommand::Answer => match self.state {
                State::Ringing { .. } => {
                    self.answer(now);
                    Ok(())
                }
                State::Connected { .. } => Ok(()),
                _ => Err(FxoCommandError::NoCall),
            },
            FxoCommand::Dial(digits) => {
                if self.state != State::Idle {
                    return Err(FxoCommandError::Busy);
                }
                let ok = match self.config.dial_mode {
                    DialMode::Dtmf => digits
                        .chars()
                        .all(|c| c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D')),
                    DialMode::Pulse => digits.chars().all(|c| c.is_ascii_digit()),
                };
                if digits.is_empty() || !ok {
                    return Err(FxoCommandError::BadNumber);
                }
                self.call = true;
                self.answered = false;
                self.outgoing = true;
                self.early_cid = None;
                self.seize(now);
                self.emit(FxoOutput::Audio(FxoAudio::AwaitDialTone));
                self.state = State::Seized {
                    digits,
                    dial_at: now + u64::from(self.config.dial_delay_ms),
                };
                Ok(())
            }
            FxoCommand::Hangup => match self.state {
                State::Ringing { .. } => {
                    // Not answered: the exchange keeps ringing until the caller gives up; the
                    // line forgets the call now and ignores the rest of this ringing.
                    self.end_call(EndReason::Local);
                    self.state = State::Releasing {
                        until: now + u64::from(self.config.ring_timeout_ms),
                    };
                    Ok(())
                }
                State::Idle | State::Releasing { .. } => Err(FxoCommandError::NoCall),
                _ => {
                    self.release(now, EndReason::Local);
                    Ok(())
                }
            },
            FxoCommand::Flash => match self.state {
                State::Connected { .. } => {
                    self.emit(FxoOutput::Hook(false));
                    self.state = State::Flashing {
                        until: now + u64::from(self.config.flash_ms),
                    };
                    Ok(())
                }
                _ => Err(FxoCommandError::NoCall),
            },
        }
    }
}
