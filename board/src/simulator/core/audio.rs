//! Voice and DTMF: the serial PCM port (opened by the model's routing command — Quectel
//! `+QPCMV=1,0`, Huawei `^DDSETEX=2`, SIMCom `+CPCMREG=1` — and live while a call is active),
//! DTMF the gateway sends (`+VTS`, Huawei `^DTMF`, duration `+VTD`), DTMF the far end presses
//! (reported with the model's URC once the gateway enabled detection: Quectel
//! `+QTONEDET=1`, Huawei `^DDTMFCFG=0,1`, SIMCom `+DDET=1`), and the speaker and microphone
//! settings (`+CLVL`, `+CMUT`, Huawei `^CVOICE`).

use std::collections::VecDeque;

use super::commands::{Cmd, Models, Reply, Spec};
use super::line::Op;
use super::{FRAME_SAMPLES, Out, SimCore, line_out};
use crate::modem::at::types::is_dtmf_digit;
use crate::simulator::dialect::DtmfUrc;
use crate::simulator::{SimulatorError, SimulatorEvent};

/// The most caller audio queued at once: ten minutes at 8 kHz (9.6 MB).
pub const MAX_QUEUED_SAMPLES: usize = 8000 * 600;

/// The voice port, shared with the PCM task through the core.
#[derive(Debug, Default)]
pub(crate) struct VoicePort {
    active: bool,
    queue: VecDeque<i16>,
    recorded: Vec<i16>,
    /// A byte of an incomplete sample read from the port.
    odd: Option<u8>,
}

/// The audio family's state.
#[derive(Debug)]
pub(crate) struct Audio {
    pub(crate) port: VoicePort,
    /// The routing command switched call audio to the PCM port.
    pub(super) routed: bool,
    /// DTMF detection reports enabled.
    detect: bool,
    /// SIMCom `+DDET` parameters after the mode: interval, report mode, single-tone detection.
    ddet: (u16, u8, u8),
    vtd: u8,
    clvl: u8,
    cmut: bool,
    /// DTMF digits the gateway sent.
    pub(crate) dtmf_sent: Vec<char>,
}

impl Default for Audio {
    fn default() -> Self {
        Self {
            port: VoicePort::default(),
            routed: false,
            detect: false,
            ddet: (0, 0, 0),
            vtd: 1,
            clvl: 3,
            cmut: false,
            dtmf_sent: Vec::new(),
        }
    }
}

impl Audio {
    /// A reboot: routing, detection and levels to power-on values; the recording stays.
    pub(super) fn reboot(&mut self) {
        let port = std::mem::take(&mut self.port);
        let sent = std::mem::take(&mut self.dtmf_sent);
        *self = Self {
            port: VoicePort {
                active: false,
                odd: None,
                ..port
            },
            dtmf_sent: sent,
            ..Self::default()
        };
    }

    /// One 20 ms tick of the voice port: the frame to send (caller audio, or silence), and
    /// whether the port is active. `input` is what the gateway sent since the last tick.
    pub(crate) fn tick(&mut self, input: &[u8], frame: &mut Vec<u8>) -> bool {
        frame.clear();
        let p = &mut self.port;
        if !p.active {
            return false;
        }
        let mut bytes = input.iter().copied();
        if let Some(lo) = p.odd.take()
            && let Some(hi) = bytes.next()
        {
            p.recorded.push(i16::from_le_bytes([lo, hi]));
        }
        loop {
            match (bytes.next(), bytes.next()) {
                (Some(lo), Some(hi)) => p.recorded.push(i16::from_le_bytes([lo, hi])),
                (Some(lo), None) => {
                    p.odd = Some(lo);
                    break;
                }
                _ => break,
            }
        }
        for _ in 0..FRAME_SAMPLES {
            let s = p.queue.pop_front().unwrap_or(0);
            frame.extend_from_slice(&s.to_le_bytes());
        }
        true
    }

    /// Queues caller audio, refusing more than [`MAX_QUEUED_SAMPLES`] in all (the queue is
    /// filled from API requests, so its size is bounded by what one gateway can hold, not by
    /// what a client sends).
    pub(crate) fn queue(&mut self, samples: &[i16]) -> Result<(), SimulatorError> {
        let queued = self.port.queue.len();
        if queued.saturating_add(samples.len()) > MAX_QUEUED_SAMPLES {
            return Err(SimulatorError::Invalid(format!(
                "{} samples of caller audio would exceed the queue's {MAX_QUEUED_SAMPLES} \
                 ({queued} queued)",
                samples.len()
            )));
        }
        self.port.queue.extend(samples.iter().copied());
        Ok(())
    }

    /// Drops the caller audio not yet played; returns how many samples were dropped.
    pub(crate) fn clear_queue(&mut self) -> usize {
        let dropped = self.port.queue.len();
        self.port.queue.clear();
        dropped
    }

    /// Samples of caller audio not yet played.
    pub(crate) fn queued(&self) -> usize {
        self.port.queue.len()
    }

    /// The recording of what the gateway sent.
    pub(crate) fn recorded(&self) -> &[i16] {
        &self.port.recorded
    }

    /// Takes the recording.
    pub(crate) fn take_recorded(&mut self) -> Vec<i16> {
        std::mem::take(&mut self.port.recorded)
    }

    /// Whether the voice port is active.
    pub(crate) fn active(&self) -> bool {
        self.port.active
    }
}

/// Opens or closes the voice port after a change of routing or calls.
pub(super) fn update(c: &mut SimCore) -> Vec<Out> {
    let active = c.audio.routed && c.calls.any_active();
    if active == c.audio.port.active {
        return Vec::new();
    }
    c.audio.port.active = active;
    c.audio.port.odd = None;
    if !active {
        // Caller audio belongs to the call it was queued for: what is left when the last
        // call ends would otherwise play into the next call.
        let dropped = c.audio.clear_queue();
        if dropped > 0 {
            tracing::debug!(dropped, "caller audio left at the end of the call dropped");
        }
    }
    c.emit(SimulatorEvent::AudioActive { active });
    if active {
        vec![Out::FlushAudio]
    } else {
        Vec::new()
    }
}

const QUECTEL: Models = Models::QUECTEL;
const HUAWEI: Models = Models::HUAWEI;
const SIMCOM: Models = Models::SIMCOM;

pub(super) const COMMANDS: &[Spec] = &[
    Spec::only("+VTS", QUECTEL.or(SIMCOM), vts),
    Spec::only("^DTMF", HUAWEI, huawei_dtmf),
    Spec::all("+VTD", vtd),
    Spec::only("+QTONEDET", QUECTEL, qtonedet),
    Spec::only("^DDTMFCFG", HUAWEI, ddtmfcfg),
    Spec::only("+DDET", SIMCOM, ddet),
    Spec::only("+QPCMV", QUECTEL, qpcmv),
    Spec::only("^DDSETEX", HUAWEI, ddsetex),
    Spec::only("+CPCMREG", SIMCOM, cpcmreg),
    Spec::only("^CVOICE", HUAWEI, cvoice),
    Spec::all("+CLVL", clvl),
    Spec::all("+CMUT", cmut),
];

/// Records DTMF digits the gateway sent; they need an active call.
fn send_digits(c: &mut SimCore, digits: &str) -> Reply {
    let digits: Vec<char> = digits
        .chars()
        .filter(|d| *d != ',')
        .map(|d| d.to_ascii_uppercase())
        .collect();
    if digits.is_empty() || digits.len() > 31 || !digits.iter().all(|d| is_dtmf_digit(*d)) {
        return Reply::cme(3);
    }
    if !c.calls.any_active() {
        return Reply::cme(3);
    }
    for d in digits {
        c.audio.dtmf_sent.push(d);
        c.emit(SimulatorEvent::DtmfSent { digit: d });
    }
    Reply::ok()
}

/// `AT+VTS=<d>` / `AT+VTS="<digits>"` (Quectel sends a string; SIMCom separates by commas).
fn vts(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    match cmd.op {
        Op::Test => Reply::line("+VTS: (0-9,*,#,A-D),(0-255)"),
        Op::Set => {
            let d = cmd.raw.trim().trim_matches('"').to_owned();
            // `AT+VTS=5,<duration>` (unquoted): the digit is the first field.
            let d = if cmd.raw.trim_start().starts_with('"') {
                d
            } else {
                cmd.args.opt_text(0).unwrap_or("").to_owned()
            };
            send_digits(c, &d)
        }
        _ => Reply::error(),
    }
}

/// Huawei `AT^DTMF=<call index>,<digit>`.
fn huawei_dtmf(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    match cmd.op {
        Op::Test => Reply::line("^DTMF: (1-7),(0-9,*,#,A-D)"),
        Op::Set => {
            let Ok(index) = cmd.args.int::<u8>(0, "call") else {
                return Reply::cme(3);
            };
            if !c.calls.is_active_index(index) {
                return Reply::cme(3);
            }
            let d = cmd.args.opt_text(1).unwrap_or("").to_owned();
            if d.chars().count() != 1 {
                return Reply::cme(3);
            }
            send_digits(c, &d)
        }
        _ => Reply::error(),
    }
}

fn vtd(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    match cmd.op {
        Op::Read => Reply::line(format!("+VTD: {}", c.audio.vtd)),
        Op::Test => Reply::line("+VTD: (0-255)"),
        Op::Set => match cmd.args.int::<u8>(0, "n") {
            Ok(n) => {
                c.audio.vtd = n;
                Reply::ok()
            }
            Err(_) => Reply::error(),
        },
        Op::Exec => Reply::error(),
    }
}

/// Quectel `AT+QTONEDET=<enable>`.
fn qtonedet(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    match cmd.op {
        Op::Read => Reply::line(format!("+QTONEDET: {}", u8::from(c.audio.detect))),
        Op::Test => Reply::line("+QTONEDET: (0,1)"),
        Op::Set => match cmd.args.int::<u8>(0, "enable") {
            Ok(v @ 0..=1) if cmd.args.len() == 1 => {
                c.audio.detect = v == 1;
                Reply::ok()
            }
            _ => Reply::error(),
        },
        Op::Exec => Reply::error(),
    }
}

/// Huawei `AT^DDTMFCFG=<mode>,<report>` (ModemManager sends `0,1` to get `^DDTMF`).
fn ddtmfcfg(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    match cmd.op {
        Op::Read => Reply::line(format!("^DDTMFCFG: 0,{}", u8::from(c.audio.detect))),
        Op::Test => Reply::line("^DDTMFCFG: (0,1),(0,1)"),
        Op::Set => match (
            cmd.args.int::<u8>(0, "mode"),
            cmd.args.int::<u8>(1, "report"),
        ) {
            (Ok(0..=1), Ok(r @ 0..=1)) => {
                c.audio.detect = r == 1;
                Reply::ok()
            }
            _ => Reply::error(),
        },
        Op::Exec => Reply::error(),
    }
}

/// SIMCom `AT+DDET=<mode>[,<interval>[,<reportMode>[,<ssdet>]]]`.
fn ddet(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    match cmd.op {
        Op::Read => {
            let (i, r, s) = c.audio.ddet;
            Reply::line(format!("+DDET: {},{i},{r},{s}", u8::from(c.audio.detect)))
        }
        Op::Test => Reply::line("+DDET: (0,1),(0-10000),(0,1),(0,1)"),
        Op::Set => {
            let mode = cmd.args.int::<u8>(0, "mode");
            let interval = cmd.args.opt_int::<u16>(1, "interval");
            let report = cmd.args.opt_int::<u8>(2, "reportMode");
            let ss = cmd.args.opt_int::<u8>(3, "ssdet");
            match (mode, interval, report, ss) {
                (Ok(m @ 0..=1), Ok(i), Ok(r), Ok(s))
                    if i.is_none_or(|i| i <= 10_000)
                        && r.is_none_or(|r| r <= 1)
                        && s.is_none_or(|s| s <= 1) =>
                {
                    c.audio.detect = m == 1;
                    let now = c.audio.ddet;
                    c.audio.ddet = (i.unwrap_or(now.0), r.unwrap_or(now.1), s.unwrap_or(now.2));
                    Reply::ok()
                }
                _ => Reply::error(),
            }
        }
        Op::Exec => Reply::error(),
    }
}

/// Sets the routing and opens or closes the port.
fn route(c: &mut SimCore, on: bool) -> Reply {
    c.audio.routed = on;
    Reply::ok().then(update(c))
}

/// Quectel `AT+QPCMV=<enable>[,<port>]`: port 0 (the USB serial port) is the simulated PCM
/// port; UART (1) and USB audio (2) do not exist here.
fn qpcmv(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    match cmd.op {
        Op::Read => Reply::line(format!("+QPCMV: {},0", u8::from(c.audio.routed))),
        Op::Test => Reply::line("+QPCMV: (0,1),(0-2)"),
        Op::Set => match (
            cmd.args.int::<u8>(0, "enable"),
            cmd.args.opt_int::<u8>(1, "port"),
        ) {
            (Ok(0), Ok(_)) => route(c, false),
            (Ok(1), Ok(None | Some(0))) => route(c, true),
            (Ok(1), Ok(Some(1..=2))) => Reply::cme(4),
            _ => Reply::error(),
        },
        Op::Exec => Reply::error(),
    }
}

/// Huawei `AT^DDSETEX=2`: this call's audio to the serial voice port.
fn ddsetex(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    match cmd.op {
        Op::Test => Reply::line("^DDSETEX: (2)"),
        Op::Set => match cmd.args.int::<u8>(0, "port") {
            Ok(2) => route(c, true),
            _ => Reply::error(),
        },
        _ => Reply::error(),
    }
}

/// SIMCom `AT+CPCMREG=<0|1>`.
fn cpcmreg(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    match cmd.op {
        Op::Read => Reply::line(format!("+CPCMREG: {}", u8::from(c.audio.routed))),
        Op::Test => Reply::line("+CPCMREG: (0,1)"),
        Op::Set => match cmd.args.int::<u8>(0, "enable") {
            Ok(v @ 0..=1) => route(c, v == 1),
            _ => Reply::error(),
        },
        Op::Exec => Reply::error(),
    }
}

/// Huawei `^CVOICE`: voice is supported, 8 kHz, 16 bit, 20 ms frames (chan_dongle's check);
/// mode 0 is the only one.
fn cvoice(_: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    match cmd.op {
        Op::Read => Reply::line("^CVOICE: 0,8000,16,20"),
        Op::Test => Reply::line("^CVOICE: (0)"),
        Op::Set => match cmd.args.int::<u8>(0, "mode") {
            Ok(0) => Reply::ok(),
            _ => Reply::error(),
        },
        Op::Exec => Reply::error(),
    }
}

fn clvl(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    match cmd.op {
        Op::Read => Reply::line(format!("+CLVL: {}", c.audio.clvl)),
        Op::Test => Reply::line("+CLVL: (0-5)"),
        Op::Set => match cmd.args.int::<u8>(0, "level") {
            Ok(v @ 0..=5) => {
                c.audio.clvl = v;
                Reply::ok()
            }
            _ => Reply::error(),
        },
        Op::Exec => Reply::error(),
    }
}

fn cmut(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    match cmd.op {
        Op::Read => Reply::line(format!("+CMUT: {}", u8::from(c.audio.cmut))),
        Op::Test => Reply::line("+CMUT: (0,1)"),
        Op::Set => match cmd.args.int::<u8>(0, "n") {
            Ok(v @ 0..=1) => {
                c.audio.cmut = v == 1;
                Reply::ok()
            }
            _ => Reply::error(),
        },
        Op::Exec => Reply::error(),
    }
}

/// DTMF digits from the far end: the model's URC per digit, once the gateway enabled
/// detection (a modem with detection off reports nothing).
pub(crate) fn far_end_dtmf(c: &mut SimCore, digits: &str) -> Result<Vec<Out>, SimulatorError> {
    if !c.calls.any_active() {
        return Err(SimulatorError::NoCall);
    }
    let digits: Vec<char> = digits.chars().map(|d| d.to_ascii_uppercase()).collect();
    if let Some(d) = digits.iter().find(|d| !is_dtmf_digit(**d)) {
        return Err(SimulatorError::Invalid(format!(
            "`{d}` is not a DTMF digit"
        )));
    }
    if !c.audio.detect {
        return Ok(Vec::new());
    }
    Ok(digits
        .into_iter()
        .map(|d| {
            line_out(&match c.d.dtmf {
                DtmfUrc::Qtonedet => format!("+QTONEDET: {}", u32::from(d)),
                DtmfUrc::Ddtmf => format!("^DDTMF: {d}"),
                DtmfUrc::Rxdtmf => format!("+RXDTMF: {d}"),
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{core, run, text};
    use super::*;
    use crate::simulator::SimulatedModel;

    #[test]
    fn dtmf_is_reported_only_once_detection_is_enabled() {
        let mut c = core(SimulatedModel::QuectelEc25);
        let _ = super::super::calls::incoming_call(&mut c, "+1555");
        run(&mut c, "ATA");
        assert!(text(&far_end_dtmf(&mut c, "1#").unwrap_or_default()).is_empty());
        assert!(run(&mut c, "AT+QTONEDET?").contains("+QTONEDET: 0"));
        run(&mut c, "AT+QTONEDET=1");
        let r = text(&far_end_dtmf(&mut c, "1#").unwrap_or_default());
        assert_eq!(r, "\r\n+QTONEDET: 49\r\n\r\n+QTONEDET: 35\r\n");
        assert!(far_end_dtmf(&mut c, "x").is_err());
        // Sending: a string of digits in one command.
        assert!(run(&mut c, "AT+VTS=\"12A\"").contains("OK"));
        assert!(run(&mut c, "AT+VTS=5").contains("OK"));
        assert_eq!(c.audio.dtmf_sent, vec!['1', '2', 'A', '5']);
        assert!(run(&mut c, "AT+VTS=\"x\"").contains("+CME ERROR: 3"));
        assert!(run(&mut c, "AT+VTS=?").contains("+VTS: (0-9,*,#,A-D),(0-255)"));
    }

    #[test]
    fn routing_commands_open_the_voice_port() {
        let mut c = core(SimulatedModel::Sim7600);
        let _ = super::super::calls::incoming_call(&mut c, "+1555");
        run(&mut c, "ATA");
        assert!(!c.audio.active());
        run(&mut c, "AT+CPCMREG=1");
        assert!(c.audio.active());
        assert!(run(&mut c, "AT+CPCMREG?").contains("+CPCMREG: 1"));
        run(&mut c, "AT+CPCMREG=0");
        assert!(!c.audio.active());
        let mut q = core(SimulatedModel::QuectelEc25);
        assert!(run(&mut q, "AT+QPCMV=1,2").contains("+CME ERROR: 4"));
        assert!(run(&mut q, "AT+QPCMV=1,0").contains("OK"));
        assert!(run(&mut q, "AT+QPCMV?").contains("+QPCMV: 1,0"));
        let mut h = core(SimulatedModel::HuaweiE1550);
        assert!(run(&mut h, "AT^CVOICE?").contains("^CVOICE: 0,8000,16,20"));
        assert!(run(&mut h, "AT^CVOICE=0").contains("OK"));
        assert!(run(&mut h, "AT^DDSETEX=?").contains("^DDSETEX: (2)"));
    }
}
