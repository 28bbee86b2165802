//! A simulated exchange line on the FXO port: battery with polarity, ringing with the zone's
//! cadence at 20 Hz and caller ID (Bell after the first ring; ETSI after a line reversal and
//! DT-AS before it; DTMF CLIP), dial tone, DTMF and pulse digit collection, ringback, answer
//! (optionally signalled by a battery reversal), a far end that talks and listens, and the far
//! end hanging up with the disconnect signal of a real line (reversal, open loop, battery
//! loss, or only a busy tone).

use std::collections::VecDeque;

use flowgate_dsp::{DtmfConfig, DtmfDetector, DtmfEvent, ToneGenerator, ToneKind, ToneTable};

use super::si3050::{LineView, SimSi3050};
use crate::Millis;
use crate::cid::{CallerId, Layout};
use crate::country::CidSignalling;
use crate::line::fxs::CidMode;
use crate::line::hook::{HookDetector, HookEvent, HookTiming};
use crate::port::cid::CidSender;

/// How the exchange signals that the far end hung up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DisconnectSignal {
    /// Battery polarity reversal, then busy tone.
    Reversal,
    /// The loop is opened (no battery) for `ms`, then busy tone.
    OpenLoop {
        /// Open interval.
        ms: u32,
    },
    /// Only a busy tone.
    BusyTone,
    /// The battery goes away until the gateway releases.
    BatteryLoss,
}

/// Exchange settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeConfig {
    /// Battery voltage on-hook.
    pub battery_v: i8,
    /// Tone zone (tones and ring cadence).
    pub zone: String,
    /// Disconnect signalling.
    pub disconnect: DisconnectSignal,
    /// Signal answer of an outgoing call with a battery reversal.
    pub answer_reversal: bool,
    /// The far end answers an outgoing call after this long (`None`: only by control).
    pub auto_answer_ms: Option<u64>,
    /// Digits end after this pause.
    pub interdigit_ms: u64,
}

impl Default for ExchangeConfig {
    fn default() -> Self {
        Self {
            battery_v: 48,
            zone: "us".to_owned(),
            disconnect: DisconnectSignal::Reversal,
            answer_reversal: false,
            auto_answer_ms: None,
            interdigit_ms: 3_000,
        }
    }
}

/// What the exchange is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExchangeState {
    /// Nothing.
    Idle,
    /// Ringing the gateway (cadence from `cadence_start`).
    Ringing {
        /// Start of the ring cadence (after any pre-ring caller ID).
        cadence_start: Millis,
    },
    /// Dial tone after the gateway seized the line.
    DialTone,
    /// Collecting the gateway's digits.
    Collecting {
        /// Digits so far.
        digits: String,
        /// Time of the last digit.
        last: Millis,
    },
    /// The far end rings (ringback to the gateway).
    Calling {
        /// The number.
        number: String,
        /// Since.
        since: Millis,
    },
    /// Talking.
    Connected,
    /// The far end left; the exchange signals it.
    FarEndGone {
        /// Since.
        since: Millis,
    },
}

/// Something the exchange saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExchangeEvent {
    /// The gateway answered a call the exchange rang in.
    GatewayAnswered,
    /// The gateway dialled a number.
    Dialled(String),
    /// The gateway hung up.
    GatewayHungUp,
    /// The gateway flashed.
    GatewayFlash,
}

/// The exchange line.
#[derive(Debug)]
pub struct SimExchange {
    config: ExchangeConfig,
    cadence: Vec<u32>,
    state: ExchangeState,
    polarity: bool,
    battery: bool,
    /// Battery returns at this time (open-loop disconnect).
    battery_back_at: Option<Millis>,
    /// Caller-ID audio queued for the line, played from `cid_at`.
    cid_audio: VecDeque<i16>,
    cid_at: Millis,
    /// After pre-ring caller ID, restore the polarity at this time.
    restore_polarity_at: Option<Millis>,
    tone: Option<ToneGenerator>,
    far_end: VecDeque<i16>,
    heard: Vec<i16>,
    hook: HookDetector,
    dtmf: DtmfDetector,
    events: Vec<ExchangeEvent>,
    now: Millis,
}

fn tone(zone: &str, kind: ToneKind) -> Option<ToneGenerator> {
    ToneGenerator::call_progress(zone, kind, 8000).ok()
}

impl SimExchange {
    /// An idle exchange line.
    ///
    /// # Errors
    /// An unknown tone zone.
    pub fn new(config: ExchangeConfig) -> Result<Self, String> {
        let table = ToneTable::builtin().map_err(|e| e.to_string())?;
        let zone = table.zone(&config.zone).map_err(|e| e.to_string())?;
        let cadence = zone.ring_cadence_ms.clone();
        Ok(Self {
            cadence,
            state: ExchangeState::Idle,
            polarity: true,
            battery: true,
            battery_back_at: None,
            cid_audio: VecDeque::new(),
            cid_at: 0,
            restore_polarity_at: None,
            tone: None,
            far_end: VecDeque::new(),
            heard: Vec::new(),
            hook: HookDetector::new(HookTiming::default()),
            dtmf: DtmfDetector::new(DtmfConfig::new(8000)).map_err(|e| e.to_string())?,
            events: Vec::new(),
            now: 0,
            config,
        })
    }

    /// The state.
    #[must_use]
    pub fn state(&self) -> &ExchangeState {
        &self.state
    }

    /// What the exchange saw so far.
    #[must_use]
    pub fn events(&self) -> &[ExchangeEvent] {
        &self.events
    }

    /// Numbers the gateway dialled.
    #[must_use]
    pub fn dialled(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| match e {
                ExchangeEvent::Dialled(n) => Some(n.clone()),
                _ => None,
            })
            .collect()
    }

    /// Rings the gateway with caller ID sent the way `signalling` says (`None`: no caller ID).
    ///
    /// # Errors
    /// The line is not idle, or the caller ID cannot be rendered.
    pub fn ring(
        &mut self,
        caller: Option<&CallerId>,
        signalling: CidSignalling,
    ) -> Result<(), String> {
        if self.state != ExchangeState::Idle || self.hook.is_off_hook() {
            return Err("the exchange line is busy".to_owned());
        }
        let now = self.now;
        let mode = match signalling {
            CidSignalling::Bell => CidMode::Bell(Layout::Mdmf),
            CidSignalling::EtsiAfterRing => CidMode::EtsiAfterRing(Layout::Etsi),
            CidSignalling::EtsiPreRing => CidMode::EtsiPreRing(Layout::Etsi),
            CidSignalling::Dtmf => CidMode::Dtmf(crate::cid::dtmf::Variant::V1),
        };
        let audio = match caller {
            Some(c) => CidSender::new(c, mode, 8000)
                .map_err(|e| e.to_string())?
                .samples()
                .to_vec(),
            None => Vec::new(),
        };
        let pre_ring = matches!(signalling, CidSignalling::EtsiPreRing | CidSignalling::Dtmf);
        if pre_ring && !audio.is_empty() {
            // Line reversal, caller ID 150 ms later, then the first ring after 300 ms quiet.
            self.polarity = !self.polarity;
            self.cid_at = now + 150;
            let burst_ms = audio.len() as u64 / 8;
            let ring_at = self.cid_at + burst_ms + 300;
            self.restore_polarity_at = Some(ring_at);
            self.state = ExchangeState::Ringing {
                cadence_start: ring_at,
            };
        } else {
            // Caller ID 500 ms after the first ring.
            self.cid_at = now + u64::from(self.cadence.first().copied().unwrap_or(2000)) + 500;
            self.state = ExchangeState::Ringing { cadence_start: now };
        }
        self.cid_audio = audio.into();
        Ok(())
    }

    /// Rings with raw caller-ID audio (from another implementation) played 500 ms after the
    /// first ring.
    ///
    /// # Errors
    /// The line is not idle.
    pub fn ring_with_audio(&mut self, cid_audio: &[i16]) -> Result<(), String> {
        self.ring(None, CidSignalling::Bell)?;
        self.cid_audio = cid_audio.iter().copied().collect();
        Ok(())
    }

    /// The far end answers the gateway's outgoing call.
    ///
    /// # Errors
    /// No outgoing call is ringing.
    pub fn answer(&mut self) -> Result<(), String> {
        match self.state {
            ExchangeState::Calling { .. } => {
                self.connect();
                Ok(())
            }
            _ => Err("no outgoing call to answer".to_owned()),
        }
    }

    fn connect(&mut self) {
        self.state = ExchangeState::Connected;
        self.tone = None;
        if self.config.answer_reversal {
            self.polarity = !self.polarity;
        }
    }

    /// The far end hangs up (or the caller gives up while ringing).
    ///
    /// # Errors
    /// No call.
    pub fn far_end_hangup(&mut self) -> Result<(), String> {
        let now = self.now;
        match self.state {
            ExchangeState::Ringing { .. } => {
                self.state = ExchangeState::Idle;
                self.cid_audio.clear();
                self.restore_polarity_at = None;
                self.polarity = true;
                Ok(())
            }
            ExchangeState::Connected | ExchangeState::Calling { .. } => {
                self.state = ExchangeState::FarEndGone { since: now };
                match self.config.disconnect {
                    DisconnectSignal::Reversal => self.polarity = !self.polarity,
                    DisconnectSignal::OpenLoop { ms } => {
                        self.battery = false;
                        self.battery_back_at = Some(now + u64::from(ms));
                    }
                    DisconnectSignal::BusyTone => {
                        self.tone = tone(&self.config.zone, ToneKind::Busy);
                    }
                    DisconnectSignal::BatteryLoss => self.battery = false,
                }
                Ok(())
            }
            _ => Err("no call to hang up".to_owned()),
        }
    }

    /// Queues far-end speech towards the gateway.
    pub fn say(&mut self, samples: &[i16]) {
        self.far_end.extend(samples.iter().copied());
    }

    /// What the far end heard (taken).
    pub fn take_heard(&mut self) -> Vec<i16> {
        std::mem::take(&mut self.heard)
    }

    /// Updates the line as the DAA sees it.
    pub fn advance(&mut self, now: Millis, daa: &mut SimSi3050) {
        self.now = now;
        if let Some(t) = self.restore_polarity_at
            && now >= t
        {
            self.restore_polarity_at = None;
            self.polarity = true;
        }
        if let Some(t) = self.battery_back_at
            && now >= t
        {
            self.battery_back_at = None;
            self.battery = true;
            if matches!(self.state, ExchangeState::FarEndGone { .. }) {
                self.tone = tone(&self.config.zone, ToneKind::Busy);
            }
        }
        let mut ev = self.hook.update(daa.off_hook(), now);
        while let Some(e) = ev {
            self.on_hook(e, now);
            ev = self.hook.poll(now);
        }
        match self.state.clone() {
            ExchangeState::Collecting { digits, last }
                if now.saturating_sub(last) >= self.config.interdigit_ms =>
            {
                self.events.push(ExchangeEvent::Dialled(digits.clone()));
                self.state = ExchangeState::Calling {
                    number: digits,
                    since: now,
                };
                self.tone = tone(&self.config.zone, ToneKind::Ringback);
            }
            ExchangeState::Calling { since, .. }
                if self
                    .config
                    .auto_answer_ms
                    .is_some_and(|ms| now.saturating_sub(since) >= ms) =>
            {
                self.connect();
            }
            ExchangeState::FarEndGone { since }
                if self.config.disconnect == DisconnectSignal::Reversal
                    && self.tone.is_none()
                    && now.saturating_sub(since) >= 500 =>
            {
                self.tone = tone(&self.config.zone, ToneKind::Busy);
            }
            _ => {}
        }
        daa.line = self.line_view(now, daa.off_hook());
        daa.advance(now);
    }

    fn ring_on(&self, now: Millis) -> bool {
        let ExchangeState::Ringing { cadence_start } = self.state else {
            return false;
        };
        if now < cadence_start || self.cadence.is_empty() {
            return false;
        }
        let total: u64 = self.cadence.iter().map(|&d| u64::from(d)).sum();
        let mut t = (now - cadence_start) % total.max(1);
        for (i, &d) in self.cadence.iter().enumerate() {
            if t < u64::from(d) {
                return i % 2 == 0;
            }
            t -= u64::from(d);
        }
        false
    }

    fn line_view(&self, now: Millis, off_hook: bool) -> LineView {
        if !self.battery {
            return LineView::default();
        }
        let magnitude = if off_hook { 8 } else { self.config.battery_v };
        let voltage = if self.polarity { magnitude } else { -magnitude };
        let mut v = LineView {
            voltage,
            current: if off_hook { 23 } else { 0 },
            ..LineView::default()
        };
        if !off_hook && self.ring_on(now) {
            // 20 Hz: positive detector for 20 ms, negative for 20 ms, 5 ms gaps.
            let phase = now % 50;
            v.ring_positive = phase < 20;
            v.ring_negative = (25..45).contains(&phase);
        }
        v
    }

    fn on_hook(&mut self, e: HookEvent, now: Millis) {
        match e {
            HookEvent::OffHook => match self.state {
                ExchangeState::Ringing { .. } => {
                    self.events.push(ExchangeEvent::GatewayAnswered);
                    self.cid_audio.clear();
                    self.restore_polarity_at = None;
                    self.polarity = true;
                    self.state = ExchangeState::Connected;
                }
                ExchangeState::Idle => {
                    self.state = ExchangeState::DialTone;
                    self.tone = tone(&self.config.zone, ToneKind::Dial);
                    self.dtmf.reset();
                }
                _ => {}
            },
            HookEvent::OnHook => {
                if self.state != ExchangeState::Idle {
                    self.events.push(ExchangeEvent::GatewayHungUp);
                }
                self.state = ExchangeState::Idle;
                self.tone = None;
                self.polarity = true;
                self.battery = true;
                self.battery_back_at = None;
                self.far_end.clear();
            }
            HookEvent::Flash => self.events.push(ExchangeEvent::GatewayFlash),
            HookEvent::Digit(d) => self.digit(d, now),
        }
    }

    fn digit(&mut self, d: char, now: Millis) {
        match &mut self.state {
            ExchangeState::DialTone => {
                self.tone = None;
                self.state = ExchangeState::Collecting {
                    digits: d.to_string(),
                    last: now,
                };
            }
            ExchangeState::Collecting { digits, last } => {
                digits.push(d);
                *last = now;
            }
            _ => {}
        }
    }

    /// One 20 ms frame: `from_gateway` is what the DAA transmits; returns what it receives.
    pub fn frame(&mut self, daa: &SimSi3050, from_gateway: &[i16]) -> Vec<i16> {
        let now = self.now;
        let off_hook = daa.off_hook();
        let mut out = vec![0i16; from_gateway.len()];
        // On-hook, the DAA passes audio only with the line monitor on.
        let hears = off_hook || daa.monitoring();
        if now >= self.cid_at && !self.cid_audio.is_empty() {
            for o in &mut out {
                match self.cid_audio.pop_front() {
                    Some(s) => *o = s,
                    None => break,
                }
            }
        } else if off_hook {
            if let Some(g) = &mut self.tone {
                g.fill(&mut out);
            } else if self.state == ExchangeState::Connected {
                for o in &mut out {
                    match self.far_end.pop_front() {
                        Some(s) => *o = s,
                        None => break,
                    }
                }
            }
        }
        if !hears {
            out.fill(0);
        }
        if off_hook {
            match self.state {
                ExchangeState::DialTone | ExchangeState::Collecting { .. } => {
                    let mut digits = Vec::new();
                    self.dtmf.process_with(from_gateway, |e| {
                        if let DtmfEvent::Start { digit, .. } = e {
                            digits.push(digit.to_char());
                        }
                    });
                    for d in digits {
                        self.digit(d, now);
                    }
                }
                ExchangeState::Connected => self.heard.extend_from_slice(from_gateway),
                _ => {}
            }
        }
        out
    }
}
