//! The FXS port: Si3210/Si3215 driver + [`FxsLine`] + the audio path towards the phone (tones
//! from the tone table, caller-ID bursts, the DTMF receiver for dialled digits).

use std::collections::VecDeque;
use std::fmt::Debug;

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{InputPin, OutputPin};
use embedded_hal::spi::SpiDevice;
use flowgate_dsp::{
    DtmfConfig, DtmfDetector, DtmfEvent, ToneGenerator, ToneKind, ToneSpec, ToneTable,
};

use super::cid::CidSender;
use super::{
    Alarms, AnalogPort, HookState, LineCommand, PortError, PortKind, PortStatus, chip_err,
};
use crate::Millis;
use crate::cid::{CidError, Layout};
use crate::line::fxs::{
    CidMode, Feed, FxsAudio, FxsCommand, FxsCommandError, FxsConfig, FxsLine, FxsOutput,
};
use crate::line::{LineEvent, Tone};
use crate::si321x::Si321x;
use crate::si321x::regs::Linefeed;

/// How often the chip's health (power alarms, self-reset) and line voltages are read.
const HEALTH_EVERY_MS: Millis = 1000;
/// One power alarm is forgiven this often.
const FORGIVE_EVERY_MS: Millis = 10_000;

/// Settings of an FXS port.
#[derive(Debug, Clone, PartialEq)]
pub struct FxsPortConfig {
    /// Line logic (ring cadence, caller ID, dial plan, timers).
    pub line: FxsConfig,
    /// Zone of the tone table for dial, ringback, busy and congestion tones.
    pub tone_zone: String,
    /// The howler (receiver off-hook) tone, in the tone table's notation.
    pub howler: String,
    /// Level of the call-progress tones.
    pub tone_level_dbm0: f32,
}

impl FxsPortConfig {
    /// Defaults for a tone zone whose ring cadence the line takes from the table.
    ///
    /// # Errors
    /// [`PortError::Dsp`] for an unknown zone.
    pub fn for_zone(zone: &str) -> Result<Self, PortError> {
        let table = ToneTable::builtin().map_err(|e| PortError::Dsp(e.to_string()))?;
        let z = table
            .zone(zone)
            .map_err(|e| PortError::Dsp(e.to_string()))?;
        let mut line = FxsConfig::default();
        line.ring_cadence.clear();
        for &ms in z.ring_cadence_ms.iter().take(8) {
            let _ = line
                .ring_cadence
                .push(u16::try_from(ms).unwrap_or(u16::MAX));
        }
        Ok(Self {
            line,
            tone_zone: zone.to_owned(),
            // The North American receiver-off-hook tone's two lower frequencies, loud and
            // fast so it is heard across a room.
            howler: "1400+2060/100,0/100".to_owned(),
            tone_level_dbm0: -13.0,
        })
    }
}

enum Mode {
    Silence,
    Tone(ToneGenerator, bool),
    Collect,
    Cid(CidSender),
    Connected,
}

/// An FXS port.
pub struct FxsPort<SPI, RST, INT, D> {
    chip: Si321x<SPI, RST, INT, D>,
    line: FxsLine,
    config: FxsPortConfig,
    howler: ToneSpec,
    dtmf: DtmfDetector,
    mode: Mode,
    events: VecDeque<LineEvent>,
    started: bool,
    chip_name: Option<String>,
    alarms: Alarms,
    battery_mv: Option<u32>,
    loop_current_raw: Option<u8>,
    last_health: Millis,
    last_forgive: Millis,
}

impl<SPI, RST, INT, D> Debug for FxsPort<SPI, RST, INT, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FxsPort")
            .field("chip", &self.chip_name)
            .field("started", &self.started)
            .finish_non_exhaustive()
    }
}

impl<SPI, RST, INT, D, PinE> FxsPort<SPI, RST, INT, D>
where
    SPI: SpiDevice,
    SPI::Error: Debug,
    RST: OutputPin<Error = PinE>,
    INT: InputPin<Error = PinE>,
    PinE: Debug,
    D: DelayNs,
{
    /// A port over `chip`.
    ///
    /// # Errors
    /// [`PortError::Dsp`] for an unknown tone zone or a bad howler spec.
    pub fn new(chip: Si321x<SPI, RST, INT, D>, config: FxsPortConfig) -> Result<Self, PortError> {
        let howler = ToneSpec::parse(&config.howler).map_err(|e| PortError::Dsp(e.to_string()))?;
        // Fail now, not at the first off-hook, when the zone is unknown.
        ToneGenerator::call_progress(&config.tone_zone, ToneKind::Dial, 8000)
            .map_err(|e| PortError::Dsp(e.to_string()))?;
        if config.line.ring_cadence.is_empty() || config.line.ring_cadence.contains(&0) {
            return Err(PortError::Config(
                "ring cadence needs non-zero durations".into(),
            ));
        }
        let dtmf =
            DtmfDetector::new(DtmfConfig::new(8000)).map_err(|e| PortError::Dsp(e.to_string()))?;
        Ok(Self {
            line: FxsLine::new(config.line.clone()),
            chip,
            howler,
            config,
            dtmf,
            mode: Mode::Silence,
            events: VecDeque::new(),
            started: false,
            chip_name: None,
            alarms: Alarms::default(),
            battery_mv: None,
            loop_current_raw: None,
            last_health: 0,
            last_forgive: 0,
        })
    }

    /// The chip driver (for diagnostics).
    pub fn chip(&mut self) -> &mut Si321x<SPI, RST, INT, D> {
        &mut self.chip
    }

    /// Hands the driver back.
    pub fn into_chip(self) -> Si321x<SPI, RST, INT, D> {
        self.chip
    }

    /// The line state machine (read-only).
    pub fn line(&self) -> &FxsLine {
        &self.line
    }

    fn feed(&self, feed: Feed) -> Linefeed {
        let idle = self.chip.idle_active();
        let flip = |lf: Linefeed| lf.reversed().unwrap_or(lf);
        match feed {
            Feed::Active => idle,
            Feed::Reversed => flip(idle),
            Feed::OnHookTransmission { reversed } => {
                let oht = if idle.is_reversed() {
                    Linefeed::OhtRev
                } else {
                    Linefeed::OhtFwd
                };
                if reversed { flip(oht) } else { oht }
            }
            Feed::Ringing => Linefeed::Ringing,
        }
    }

    fn tone(&self, t: Tone) -> Result<ToneGenerator, PortError> {
        let kind = match t {
            Tone::Dial => ToneKind::Dial,
            Tone::Ringback => ToneKind::Ringback,
            Tone::Busy => ToneKind::Busy,
            Tone::Congestion => ToneKind::Congestion,
            Tone::Howler => {
                return ToneGenerator::new(&self.howler, 8000, self.config.tone_level_dbm0 + 10.0)
                    .map_err(|e| PortError::Dsp(e.to_string()));
            }
        };
        let table = ToneTable::builtin().map_err(|e| PortError::Dsp(e.to_string()))?;
        let zone = table
            .zone(&self.config.tone_zone)
            .map_err(|e| PortError::Dsp(e.to_string()))?;
        ToneGenerator::new(zone.tone(kind), 8000, self.config.tone_level_dbm0)
            .map_err(|e| PortError::Dsp(e.to_string()))
    }

    fn drain(&mut self, now: Millis) -> Result<(), PortError> {
        while let Some(o) = self.line.pop() {
            match o {
                FxsOutput::Feed(f) => {
                    let lf = self.feed(f);
                    self.chip.set_linefeed(lf).map_err(chip_err)?;
                }
                FxsOutput::Audio(a) => self.set_mode(a, now),
                FxsOutput::Event(e) => {
                    #[cfg(feature = "std")]
                    tracing::debug!(port = "fxs", event = ?e, "line event");
                    self.events.push_back(e);
                }
            }
        }
        Ok(())
    }

    fn set_mode(&mut self, a: FxsAudio, now: Millis) {
        // Dial tone → digit collection must not restart the receiver mid-digit (the first
        // digit would be heard twice); any other change starts it afresh.
        let listening = matches!(self.mode, Mode::Tone(_, true) | Mode::Collect);
        if !(listening && a == FxsAudio::CollectDigits) {
            self.dtmf.reset();
        }
        self.mode = match a {
            FxsAudio::Silence => Mode::Silence,
            FxsAudio::Tone(t) => match self.tone(t) {
                Ok(g) => Mode::Tone(g, t == Tone::Dial),
                Err(e) => {
                    tracing::warn!(port = "fxs", error = %e, "tone unavailable; silence");
                    Mode::Silence
                }
            },
            FxsAudio::CollectDigits => Mode::Collect,
            FxsAudio::CallerId { caller, mode } => match CidSender::new(&caller, mode, 8000) {
                Ok(s) => Mode::Cid(s),
                Err(e) => {
                    // SDMF without a date: send MDMF instead rather than no caller ID.
                    let fallback = match (e.clone(), mode) {
                        (
                            PortError::CallerId(CidError::MissingDate),
                            CidMode::Bell(Layout::Sdmf),
                        ) => CidSender::new(&caller, CidMode::Bell(Layout::Mdmf), 8000).ok(),
                        _ => None,
                    };
                    match fallback {
                        Some(s) => Mode::Cid(s),
                        None => {
                            tracing::warn!(port = "fxs", error = %e, "caller ID not sent");
                            self.line.audio_done(now);
                            Mode::Silence
                        }
                    }
                }
            },
            FxsAudio::Connected => Mode::Connected,
        };
    }

    fn map_command(cmd: LineCommand) -> Result<FxsCommand, PortError> {
        Ok(match cmd {
            LineCommand::Ring { caller } => FxsCommand::Ring { caller },
            LineCommand::Ringback => FxsCommand::Ringback,
            LineCommand::Answer => FxsCommand::Answer,
            LineCommand::Hangup { tone } => FxsCommand::Hangup { tone },
            LineCommand::DialTone => FxsCommand::DialTone,
            LineCommand::HangupConsult { tone } => FxsCommand::HangupConsult { tone },
            other => {
                return Err(PortError::Unsupported {
                    command: other.name(),
                    kind: PortKind::Fxs,
                });
            }
        })
    }
}

impl<SPI, RST, INT, D, PinE> AnalogPort for FxsPort<SPI, RST, INT, D>
where
    SPI: SpiDevice + Send,
    SPI::Error: Debug,
    RST: OutputPin<Error = PinE> + Send,
    INT: InputPin<Error = PinE> + Send,
    PinE: Debug,
    D: DelayNs + Send,
{
    fn kind(&self) -> PortKind {
        PortKind::Fxs
    }

    fn start(&mut self, now: Millis) -> Result<(), PortError> {
        let info = self.chip.init().map_err(chip_err)?;
        self.chip_name = Some(format!("{} rev {}", info.part.name(), info.revision));
        tracing::info!(port = "fxs", chip = %info.part.name(), revision = info.revision, "ProSLIC initialised");
        self.line = FxsLine::new(self.config.line.clone());
        self.mode = Mode::Silence;
        self.started = true;
        self.last_health = now;
        self.last_forgive = now;
        Ok(())
    }

    fn poll(&mut self, now: Millis) -> Result<(), PortError> {
        if !self.started {
            return Err(PortError::NotStarted);
        }
        let closed = self.chip.loop_closed().map_err(chip_err)?;
        self.line.hook_sample(closed, now);
        self.drain(now)?;
        if now.saturating_sub(self.last_forgive) >= FORGIVE_EVERY_MS {
            self.last_forgive = now;
            self.chip.forgive_power_alarm();
        }
        if now.saturating_sub(self.last_health) >= HEALTH_EVERY_MS {
            self.last_health = now;
            let h = self.chip.check_health().map_err(chip_err)?;
            if h.chip_reset {
                tracing::warn!(port = "fxs", "ProSLIC reset itself; initialising again");
                // Fast re-init: the calibration of this chip is still valid.
                self.chip.reuse_calibration();
                let in_call = self.line.in_call();
                let consulting = self.line.consulting();
                self.start(now)?;
                // Both calls of a consultation are over, the consultation's first (an
                // `Ended` alone would leave it as the phone's call).
                if consulting {
                    self.events.push_back(LineEvent::ConsultEnded {
                        reason: crate::line::EndReason::LineFault,
                        answered: false,
                    });
                }
                if in_call {
                    self.events.push_back(LineEvent::Ended {
                        reason: crate::line::EndReason::LineFault,
                        answered: false,
                    });
                }
                return Ok(());
            }
            if h.power_alarm {
                self.alarms.power += 1;
                tracing::warn!(
                    port = "fxs",
                    alarms = self.alarms.power,
                    "power alarm: line restored"
                );
            }
            if h.thermal_alarms != 0 {
                self.alarms.thermal += 1;
                tracing::warn!(
                    port = "fxs",
                    transistors = h.thermal_alarms,
                    "transistor power alarm"
                );
            }
            if h.gave_up {
                self.alarms.line_open = true;
                tracing::error!(port = "fxs", "too many power alarms: line left open");
            }
            let m = self.chip.measurements().map_err(chip_err)?;
            self.battery_mv = Some(m.battery_mv);
            self.loop_current_raw = Some(m.loop_current_raw);
        }
        Ok(())
    }

    fn audio(
        &mut self,
        now: Millis,
        from_line: &[i16],
        to_line: &mut [i16],
        from_call: Option<&[i16]>,
    ) -> bool {
        let mut digits: Vec<char> = Vec::new();
        let connected = match &mut self.mode {
            Mode::Silence => {
                to_line.fill(0);
                false
            }
            Mode::Tone(g, listen) => {
                g.fill(to_line);
                if *listen {
                    self.dtmf.process_with(from_line, |e| {
                        if let DtmfEvent::Start { digit, .. } = e {
                            digits.push(digit.to_char());
                        }
                    });
                }
                false
            }
            Mode::Collect => {
                to_line.fill(0);
                self.dtmf.process_with(from_line, |e| {
                    if let DtmfEvent::Start { digit, .. } = e {
                        digits.push(digit.to_char());
                    }
                });
                false
            }
            Mode::Cid(s) => {
                // The frame that finishes the burst still goes out in on-hook transmission;
                // the line hears "done" at the next frame, after the last bits were sent.
                if s.is_done() {
                    to_line.fill(0);
                    self.line.audio_done(now);
                } else {
                    s.fill(to_line);
                }
                false
            }
            Mode::Connected => {
                match from_call {
                    Some(f) if f.len() == to_line.len() => to_line.copy_from_slice(f),
                    _ => to_line.fill(0),
                }
                true
            }
        };
        for d in digits {
            self.line.dtmf(d, now);
        }
        if let Err(e) = self.drain(now) {
            tracing::warn!(port = "fxs", error = %e, "applying line decision failed");
        }
        connected
    }

    fn command(&mut self, command: LineCommand, now: Millis) -> Result<(), PortError> {
        if !self.started {
            return Err(PortError::NotStarted);
        }
        let name = command.name();
        let cmd = Self::map_command(command)?;
        self.line
            .command(cmd, now)
            .map_err(|e| PortError::Refused {
                command: name,
                reason: match e {
                    FxsCommandError::Busy => "the phone is in use",
                    FxsCommandError::NoCall => "no call",
                },
            })?;
        self.drain(now)
    }

    fn next_event(&mut self) -> Option<LineEvent> {
        self.events.pop_front()
    }

    fn status(&self) -> PortStatus {
        PortStatus {
            kind: PortKind::Fxs,
            chip: self.chip_name.clone(),
            hook: if self.line.off_hook() {
                HookState::OffHook
            } else {
                HookState::OnHook
            },
            ringing: self.line.ringing(),
            in_call: self.line.in_call(),
            loop_current_ma: self.loop_current_raw.map(|r| f32::from(r) * 1.1),
            #[expect(clippy::cast_precision_loss, reason = "millivolts of a battery")]
            line_voltage_v: self.battery_mv.map(|mv| mv as f32 / 1000.0),
            alarms: self.alarms,
        }
    }
}
