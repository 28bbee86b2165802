//! The FXO port: Si3050 driver + [`FxoLine`] + the audio path from the exchange (caller-ID
//! receivers, dial-tone, busy and congestion detection, silence, DTMF dialling).

use std::collections::VecDeque;
use std::fmt::Debug;

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{InputPin, OutputPin};
use embedded_hal::spi::SpiDevice;
use flowgate_dsp::{
    DtmfGenConfig, DtmfGenerator, ProgressConfig, ProgressDetector, ToneKind, ToneTable,
    level::rms_dbm0,
};

use super::cid::{CidReceiver, CidReceiverConfig, CidResult};
use super::{
    Alarms, AnalogPort, HookState, LineCommand, PortError, PortKind, PortStatus, chip_err,
};
use crate::Millis;
use crate::cid::Message;
use crate::line::fxo::{FxoAudio, FxoCommand, FxoCommandError, FxoConfig, FxoLine, FxoOutput};
use crate::line::{Disconnect, LineEvent};
use crate::si3050::Si3050;

/// Received audio above this level counts as activity for the silence timeout.
const ACTIVITY_DBM0: f32 = -45.0;

/// Settings of an FXO port.
#[derive(Debug, Clone, PartialEq)]
pub struct FxoPortConfig {
    /// Line logic.
    pub line: FxoConfig,
    /// Zone of the tone table whose dial, busy and congestion tones the exchange sends.
    pub tone_zone: String,
}

impl FxoPortConfig {
    /// Defaults for a tone zone.
    #[must_use]
    pub fn for_zone(zone: &str) -> Self {
        Self {
            line: FxoConfig::default(),
            tone_zone: zone.to_owned(),
        }
    }
}

enum Mode {
    Monitor,
    AwaitDialTone,
    Dialling(DtmfGenerator),
    Connected,
}

/// An FXO port.
pub struct FxoPort<SPI, RST, INT, D> {
    chip: Si3050<SPI, RST, INT, D>,
    line: FxoLine,
    config: FxoPortConfig,
    cid: CidReceiver,
    progress: ProgressDetector,
    dial_tone: ProgressDetector,
    in_call_dtmf: Option<DtmfGenerator>,
    mode: Mode,
    events: VecDeque<LineEvent>,
    started: bool,
    chip_name: Option<String>,
    line_voltage: Option<i8>,
    loop_current_raw: Option<u8>,
}

impl<SPI, RST, INT, D> Debug for FxoPort<SPI, RST, INT, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FxoPort")
            .field("chip", &self.chip_name)
            .field("started", &self.started)
            .finish_non_exhaustive()
    }
}

fn dsp(e: flowgate_dsp::DspError) -> PortError {
    PortError::Dsp(e.to_string())
}

impl<SPI, RST, INT, D, PinE> FxoPort<SPI, RST, INT, D>
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
    /// [`PortError::Dsp`] for an unknown tone zone.
    pub fn new(chip: Si3050<SPI, RST, INT, D>, config: FxoPortConfig) -> Result<Self, PortError> {
        let table = ToneTable::builtin().map_err(dsp)?;
        let zone = table.zone(&config.tone_zone).map_err(dsp)?;
        let progress = ProgressDetector::new(
            zone,
            &[ToneKind::Busy, ToneKind::Congestion],
            ProgressConfig::new(8000),
        )
        .map_err(dsp)?;
        let dial_tone = ProgressDetector::new(zone, &[ToneKind::Dial], ProgressConfig::new(8000))
            .map_err(dsp)?;
        Ok(Self {
            line: FxoLine::new(config.line.clone()),
            chip,
            cid: CidReceiver::new(CidReceiverConfig::all(8000))?,
            progress,
            dial_tone,
            in_call_dtmf: None,
            config,
            mode: Mode::Monitor,
            events: VecDeque::new(),
            started: false,
            chip_name: None,
            line_voltage: None,
            loop_current_raw: None,
        })
    }

    /// The chip driver (for diagnostics).
    pub fn chip(&mut self) -> &mut Si3050<SPI, RST, INT, D> {
        &mut self.chip
    }

    /// Hands the driver back.
    pub fn into_chip(self) -> Si3050<SPI, RST, INT, D> {
        self.chip
    }

    /// The line state machine (read-only).
    pub fn line(&self) -> &FxoLine {
        &self.line
    }

    fn drain(&mut self) -> Result<(), PortError> {
        while let Some(o) = self.line.pop() {
            match o {
                FxoOutput::Hook(off) => self.chip.set_off_hook(off).map_err(chip_err)?,
                FxoOutput::Audio(a) => self.set_mode(a)?,
                FxoOutput::Event(e) => {
                    tracing::debug!(port = "fxo", event = ?e, "line event");
                    self.events.push_back(e);
                }
            }
        }
        Ok(())
    }

    fn set_mode(&mut self, a: FxoAudio) -> Result<(), PortError> {
        self.mode = match a {
            FxoAudio::Monitor => {
                self.cid.reset();
                self.in_call_dtmf = None;
                Mode::Monitor
            }
            FxoAudio::AwaitDialTone => {
                self.dial_tone.reset();
                Mode::AwaitDialTone
            }
            FxoAudio::SendDtmf(digits) => {
                let mut g = DtmfGenerator::new(DtmfGenConfig::new(8000)).map_err(dsp)?;
                g.queue(&digits).map_err(dsp)?;
                Mode::Dialling(g)
            }
            FxoAudio::Connected => {
                self.progress.reset();
                Mode::Connected
            }
        };
        Ok(())
    }

    fn map_command(
        &mut self,
        cmd: LineCommand,
        now: Millis,
    ) -> Result<Option<FxoCommand>, PortError> {
        Ok(Some(match cmd {
            LineCommand::Answer => FxoCommand::Answer,
            LineCommand::Dial(d) => FxoCommand::Dial(d),
            LineCommand::Hangup { .. } => FxoCommand::Hangup,
            LineCommand::Flash => FxoCommand::Flash,
            LineCommand::SendDtmf(digits) => {
                if !matches!(self.mode, Mode::Connected) {
                    return Err(PortError::Refused {
                        command: "send DTMF",
                        reason: "no connected call",
                    });
                }
                let g = self
                    .in_call_dtmf
                    .get_or_insert(DtmfGenerator::new(DtmfGenConfig::new(8000)).map_err(dsp)?);
                g.queue(&digits).map_err(dsp)?;
                let _ = now;
                return Ok(None);
            }
            other => {
                return Err(PortError::Unsupported {
                    command: other.name(),
                    kind: PortKind::Fxo,
                });
            }
        }))
    }
}

impl<SPI, RST, INT, D, PinE> AnalogPort for FxoPort<SPI, RST, INT, D>
where
    SPI: SpiDevice + Send,
    SPI::Error: Debug,
    RST: OutputPin<Error = PinE> + Send,
    INT: InputPin<Error = PinE> + Send,
    PinE: Debug,
    D: DelayNs + Send,
{
    fn kind(&self) -> PortKind {
        PortKind::Fxo
    }

    fn start(&mut self, _now: Millis) -> Result<(), PortError> {
        let part = self.chip.init().map_err(chip_err)?;
        self.chip_name = Some(format!("Si3050 + {}", part.name()));
        tracing::info!(port = "fxo", line_side = %part.name(), "DAA initialised");
        self.line = FxoLine::new(self.config.line.clone());
        self.mode = Mode::Monitor;
        self.cid.reset();
        self.started = true;
        Ok(())
    }

    fn poll(&mut self, now: Millis) -> Result<(), PortError> {
        if !self.started {
            return Err(PortError::NotStarted);
        }
        let s = self.chip.sample().map_err(chip_err)?;
        self.line_voltage = Some(s.line_voltage);
        self.loop_current_raw = Some(s.loop_current_raw);
        self.line.sample(&s, now);
        self.drain()
    }

    fn audio(
        &mut self,
        now: Millis,
        from_line: &[i16],
        to_line: &mut [i16],
        from_call: Option<&[i16]>,
    ) -> bool {
        let mut cids = Vec::new();
        let mut tones = Vec::new();
        let mut heard_dial_tone = false;
        let mut dialled = false;
        let connected = match &mut self.mode {
            Mode::Monitor => {
                to_line.fill(0);
                self.cid.process(from_line, |r| cids.push(r));
                false
            }
            Mode::AwaitDialTone => {
                to_line.fill(0);
                self.dial_tone
                    .process(from_line, |_| heard_dial_tone = true);
                false
            }
            Mode::Dialling(g) => {
                let n = g.fill(to_line);
                dialled = n < to_line.len() || g.is_idle();
                false
            }
            Mode::Connected => {
                match from_call {
                    Some(f) if f.len() == to_line.len() => to_line.copy_from_slice(f),
                    _ => to_line.fill(0),
                }
                if let Some(g) = &mut self.in_call_dtmf {
                    if g.is_idle() {
                        self.in_call_dtmf = None;
                    } else {
                        g.fill(to_line);
                    }
                }
                self.progress.process(from_line, |k| tones.push(k));
                true
            }
        };
        for r in cids {
            match r {
                CidResult::Message(Message::CallerId(c)) => {
                    tracing::debug!(port = "fxo", number = ?c.number, name = ?c.name, "caller ID");
                    self.line.caller_id(c, now);
                }
                CidResult::Message(Message::MessageWaiting(on)) => {
                    tracing::info!(port = "fxo", on, "message waiting indication");
                }
                CidResult::Error(e) => {
                    tracing::debug!(port = "fxo", error = %e, "caller ID damaged")
                }
            }
        }
        if heard_dial_tone {
            self.line.dial_tone(now);
        }
        if dialled {
            self.line.audio_done(now);
        }
        if connected && rms_dbm0(from_line) > ACTIVITY_DBM0 {
            self.line.audio_activity(now);
        }
        for k in tones {
            let kind = if k == ToneKind::Busy {
                Disconnect::BusyTone
            } else {
                Disconnect::CongestionTone
            };
            self.line.far_end_tone(kind, now);
        }
        if let Err(e) = self.drain() {
            tracing::warn!(port = "fxo", error = %e, "applying line decision failed");
        }
        connected
    }

    fn command(&mut self, command: LineCommand, now: Millis) -> Result<(), PortError> {
        if !self.started {
            return Err(PortError::NotStarted);
        }
        let name = command.name();
        let Some(cmd) = self.map_command(command, now)? else {
            return Ok(());
        };
        self.line
            .command(cmd, now)
            .map_err(|e| PortError::Refused {
                command: name,
                reason: match e {
                    FxoCommandError::Busy => "the line is in use",
                    FxoCommandError::NoCall => "no call",
                    FxoCommandError::BadNumber => "the number cannot be dialled in this mode",
                },
            })?;
        self.drain()
    }

    fn next_event(&mut self) -> Option<LineEvent> {
        self.events.pop_front()
    }

    fn status(&self) -> PortStatus {
        PortStatus {
            kind: PortKind::Fxo,
            chip: self.chip_name.clone(),
            hook: if self.chip.is_off_hook() {
                HookState::OffHook
            } else {
                HookState::OnHook
            },
            ringing: self.line.ringing(),
            in_call: self.line.in_call(),
            loop_current_ma: self.loop_current_raw.map(|r| f32::from(r) * 1.1),
            line_voltage_v: self.line_voltage.map(f32::from),
            alarms: Alarms {
                no_battery: self.started && !self.line.battery_present(),
                ..Alarms::default()
            },
        }
    }
}
