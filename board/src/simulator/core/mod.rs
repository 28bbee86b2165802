//! The simulated modem's brain, sans-IO: bytes from the gateway in, [`Out`] actions (bytes to
//! write, pauses, timers, reboots) out; control operations mutate the same state.
//!
//! It keeps what a real modem keeps — settings a reboot resets (echo, `CMEE`, `CSCS`, `CNMI`,
//! enabled URCs, audio routing, calls) and what survives one (SMS storage, the SIM) — and
//! records what the gateway did (SMS sent with decoded text and raw PDU, numbers dialled,
//! DTMF sent, answers and hang-ups, USSD requests).
//!
//! # Layout
//!
//! - [`line`]: the line discipline — bytes into command lines, echo, the `> ` prompt of
//!   `AT+CMGS`/`AT+CMGW`, splitting a line into its commands (V.250 §5.2), result codes.
//! - [`commands`]: one command as a handler sees it, its reply, and the table each family
//!   contributes its commands to (the dispatcher and `AT+CLAC` read the same table).
//! - One module per command family, each owning its state (a field of [`SimCore`]) and its
//!   commands: [`general`] (V.250 basics, `CMEE`, `CSCS`, `CFUN`, `CLAC`), [`network`] (SIM,
//!   identity, registration, signal, operator, vendor URC switches), [`sms`] (storage,
//!   delivery, PDU mode and text mode), [`calls`] (dialling, answering, hold, transfer, the call
//!   URCs of each dialect), [`ussd`], [`audio`] (voice port, DTMF both ways, audio routing).
//! - [`faults`]: failures injected on purpose.

pub(super) mod audio;
pub(super) mod calls;
mod commands;
mod faults;
mod general;
mod line;
mod network;
pub(super) mod sms;
pub(super) mod ussd;

use std::time::Duration;

use tokio::sync::broadcast;

use self::audio::Audio;
use self::calls::Calls;
use self::commands::{Cmd, Failure, Final, Reply};
use self::faults::Faults;
use self::general::General;
use self::line::{LineDiscipline, LineEvent};
use self::network::Network;
use self::sms::Sms;
use self::ussd::Ussd;
use super::dialect::{Dialect, SimulatedModel};
use super::{SimulatorConfig, SimulatorEvent};

pub use self::audio::MAX_QUEUED_SAMPLES;
pub use self::calls::SimulatedCallRecord;
pub use self::faults::FaultAction;
pub use self::sms::SentSmsRecord;
pub use self::ussd::UssdScript;

/// Samples per 20 ms frame at 8 kHz.
pub(crate) const FRAME_SAMPLES: usize = 160;

/// What the I/O shell must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Out {
    /// Write these bytes to the AT port.
    Bytes(Vec<u8>),
    /// Pause before the following outputs (delayed replies).
    Sleep(Duration),
    /// The modem rebooted: wait this long, then send the boot URCs.
    Reboot(Duration),
    /// Run this action after the delay.
    Schedule(Duration, Scheduled),
    /// Drop stale bytes on the voice port (a call's audio starts).
    FlushAudio,
}

/// Timed actions (call progress, ring repetition, status reports).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scheduled {
    /// The outgoing call `call` starts alerting.
    Alert(u64),
    /// The far end answers `call`.
    Answer(u64),
    /// The far end is busy.
    Busy(u64),
    /// The far end does not answer.
    NoAnswer(u64),
    /// Ring again for incoming `call`.
    Ring(u64),
    /// Deliver a status report for a sent message.
    StatusReport {
        /// Message reference.
        mr: u8,
        /// Recipient.
        to: String,
        /// TP-ST.
        status: u8,
    },
}

/// `\r\n<text>\r\n`: an information line, a final result code or a URC.
pub(crate) fn crlf(text: &str) -> Vec<u8> {
    format!("\r\n{text}\r\n").into_bytes()
}

/// An information line or URC as an output.
pub(crate) fn line_out(text: &str) -> Out {
    Out::Bytes(crlf(text))
}

/// `129` (unknown) or `145` (international) for a number as written.
pub(crate) fn toa(number: &str) -> u8 {
    if number.starts_with('+') { 145 } else { 129 }
}

/// What the gateway did outside any family: command lines and reboots.
#[derive(Debug, Default)]
pub(crate) struct Log {
    /// Command lines received, as sent.
    pub(crate) commands: Vec<String>,
    /// Reboots so far.
    pub(crate) reboots: u32,
}

/// The simulated modem state.
pub(crate) struct SimCore {
    model: SimulatedModel,
    d: Dialect,
    cfg: SimulatorConfig,
    events: broadcast::Sender<SimulatorEvent>,
    line: LineDiscipline,
    general: General,
    net: Network,
    pub(crate) sms: Sms,
    pub(crate) calls: Calls,
    pub(crate) ussd: Ussd,
    pub(crate) audio: Audio,
    pub(crate) faults: Faults,
    pub(crate) log: Log,
}

impl SimCore {
    pub(crate) fn new(cfg: SimulatorConfig, events: broadcast::Sender<SimulatorEvent>) -> Self {
        let d = cfg.model.dialect();
        Self {
            model: cfg.model,
            general: General::boot(&d),
            net: Network::boot(cfg.pin.is_some()),
            sms: Sms::new(&d, cfg.storage_slots),
            calls: Calls::default(),
            ussd: Ussd::boot(&d),
            audio: Audio::default(),
            faults: Faults::default(),
            log: Log::default(),
            line: LineDiscipline::default(),
            d,
            events,
            cfg,
        }
    }

    pub(crate) fn model(&self) -> SimulatedModel {
        self.model
    }

    fn emit(&self, ev: SimulatorEvent) {
        let _ = self.events.send(ev);
    }

    /// The final result code of a failure, as `AT+CMEE` asks for it.
    fn failure(&self, f: Failure) -> Vec<u8> {
        let verbose = self.general.cmee == 2;
        match f {
            Failure::Plain => crlf("ERROR"),
            Failure::Unknown => crlf(self.d.unknown),
            Failure::Cme(_) | Failure::Cms(_) if self.general.cmee == 0 => crlf("ERROR"),
            Failure::Cme(code) => match general::cme_text(code).filter(|_| verbose) {
                Some(t) => crlf(&format!("+CME ERROR: {t}")),
                None => crlf(&format!("+CME ERROR: {code}")),
            },
            Failure::Cms(code) => match general::cms_text(code).filter(|_| verbose) {
                Some(t) => crlf(&format!("+CMS ERROR: {t}")),
                None => crlf(&format!("+CMS ERROR: {code}")),
            },
        }
    }

    // ---------------------------------------------------------------- input

    /// Bytes from the gateway.
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> Vec<Out> {
        let mut out = Vec::new();
        for &b in bytes {
            let echo = self.general.echo;
            match self.line.push(b, echo) {
                None => {}
                Some(LineEvent::Echo(e)) => out.push(Out::Bytes(e)),
                Some(LineEvent::Line(l)) => out.extend(self.command_line(&l)),
                Some(LineEvent::Body(p, body)) => out.extend(sms::prompt_body(self, p, &body)),
                Some(LineEvent::Aborted) => out.push(line_out("OK")),
            }
        }
        out
    }

    /// One command line (without its `\r`).
    fn command_line(&mut self, line: &str) -> Vec<Out> {
        if self.faults.unresponsive {
            return Vec::new();
        }
        if self.faults.drop_replies > 0 {
            self.faults.drop_replies -= 1;
            return Vec::new();
        }
        self.log.commands.push(line.to_owned());
        self.emit(SimulatorEvent::Command {
            line: line.to_owned(),
        });
        let mut out = Vec::new();
        if self.general.echo {
            out.push(Out::Bytes(format!("{line}\r").into_bytes()));
        }
        let upper = line.to_ascii_uppercase();
        // Faults of prompt commands apply when their body arrives.
        let is_prompt = upper.starts_with("AT+CMGS=") || upper.starts_with("AT+CMGW=");
        let fault = if is_prompt {
            None
        } else {
            self.faults.take_trigger(&upper)
        };
        self.reply_with_fault(fault, out, |c| {
            if upper.starts_with("AT") {
                c.execute(line.get(2..).unwrap_or(""))
            } else {
                Vec::new() // not a command: modems ignore it
            }
        })
    }

    /// Runs the commands of one line in order (V.250 §5.2.1): their information text, one final
    /// result code (the first failure stops the line), then what follows it (URCs, timers).
    fn execute(&mut self, body: &str) -> Vec<Out> {
        let pieces = match line::split(body) {
            Ok(p) => p,
            Err(()) => return vec![Out::Bytes(crlf("ERROR"))],
        };
        let mut info = Vec::new();
        let mut after = Vec::new();
        let mut fin = Final::Ok;
        for p in &pieces {
            let cmd = Cmd::new(p);
            let reply = self.run(&cmd);
            info.extend(reply.info);
            after.extend(reply.after);
            if !matches!(reply.fin, Final::Ok) {
                fin = reply.fin;
                break;
            }
        }
        let mut out = info;
        match fin {
            Final::Ok => out.push(line_out("OK")),
            Final::Text(t) => out.push(line_out(t)),
            Final::Error(f) => out.push(Out::Bytes(self.failure(f))),
            Final::Prompt => {}
        }
        out.extend(after);
        out
    }

    /// One command: looked up in this model's table, refused while the SIM is locked when it
    /// needs the SIM.
    fn run(&mut self, cmd: &Cmd<'_>) -> Reply {
        let Some(spec) = commands::find(self.model, cmd.name) else {
            return Reply::fail(Failure::Unknown);
        };
        if spec.sim && !self.net.sim_unlocked {
            return Reply::fail(Failure::Cme(11));
        }
        (spec.run)(self, cmd)
    }

    // ------------------------------------------------------------ lifecycle

    /// Reboots: settings and calls are lost, storage survives.
    pub(crate) fn reboot(&mut self) -> Vec<Out> {
        self.general = self.general.reboot();
        self.net = Network::boot(self.cfg.pin.is_some());
        self.sms.reboot(&self.d);
        self.ussd.reboot(&self.d);
        self.audio.reboot();
        calls::reboot(self);
        self.line = LineDiscipline::default();
        self.log.reboots += 1;
        self.emit(SimulatorEvent::Rebooted);
        vec![Out::Reboot(Duration::from_millis(self.cfg.boot_delay_ms))]
    }

    /// Reboots with no boot delay ([`FaultAction::RebootAfter`]): the boot URCs come at
    /// once, after whatever precedes them in the same output.
    pub(crate) fn reboot_now(&mut self) -> Vec<Out> {
        let _delayed = self.reboot();
        self.boot_urcs()
    }

    /// The boot URCs (after the boot delay). Input that arrived while "booting" is dropped.
    pub(crate) fn boot_urcs(&mut self) -> Vec<Out> {
        self.line = LineDiscipline::default();
        let mut s = String::new();
        for l in self.d.boot {
            s.push_str(&format!("\r\n{l}\r\n"));
        }
        vec![Out::Bytes(s.into_bytes())]
    }

    /// A timer fired.
    pub(crate) fn fire(&mut self, action: Scheduled) -> Vec<Out> {
        match action {
            Scheduled::StatusReport { mr, to, status } => {
                sms::status_report(self, mr, &to, status).unwrap_or_default()
            }
            call => calls::fire(self, call),
        }
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Helpers for the families' unit tests: a core after `ATE0` and `AT+CMEE=1`, and the
    //! text it writes.

    use super::*;

    pub(crate) fn core(model: SimulatedModel) -> SimCore {
        let (events, _) = broadcast::channel(256);
        let mut c = SimCore::new(SimulatorConfig::new(model), events);
        run(&mut c, "ATE0");
        run(&mut c, "AT+CMEE=1");
        c
    }

    /// What the modem wrote, as text (timers and pauses left out).
    pub(crate) fn text(outs: &[Out]) -> String {
        outs.iter()
            .filter_map(|o| match o {
                Out::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
                _ => None,
            })
            .collect()
    }

    pub(crate) fn run(c: &mut SimCore, line: &str) -> String {
        text(&c.feed(format!("{line}\r").as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{core, run, text};
    use super::*;

    #[test]
    fn a_line_runs_its_commands_in_order_and_stops_at_the_first_error() {
        let mut c = core(SimulatedModel::QuectelEc25);
        let r = run(&mut c, "AT+CMGF=1;+CMGF?;+CSCS?");
        assert_eq!(r, "\r\n+CMGF: 1\r\n\r\n+CSCS: \"GSM\"\r\n\r\nOK\r\n");
        let r = run(&mut c, "AT+CMGF=0;+NOPE;+CMGF=1");
        assert_eq!(r, "\r\nERROR\r\n");
        assert!(
            run(&mut c, "AT+CMGF?").contains("+CMGF: 0"),
            "stopped at +NOPE"
        );
        // Basic commands run together (V.250 §5.2.1); echo applies from the next line.
        assert_eq!(run(&mut c, "ATE1V1"), "\r\nOK\r\n");
        assert_eq!(run(&mut c, "ATE0"), "ATE0\r\r\nOK\r\n");
        assert_eq!(run(&mut c, "AT"), "\r\nOK\r\n");
    }

    #[test]
    fn errors_follow_cmee() {
        let mut c = core(SimulatedModel::QuectelEc25);
        assert!(run(&mut c, "AT+CMGR=999").contains("+CMS ERROR: 321"));
        run(&mut c, "AT+CMEE=2");
        assert!(run(&mut c, "AT+CMGR=999").contains("+CMS ERROR: invalid memory index"));
        run(&mut c, "AT+CMEE=0");
        assert_eq!(run(&mut c, "AT+CMGR=999"), "\r\nERROR\r\n");
        let mut h = core(SimulatedModel::HuaweiE1550);
        assert_eq!(run(&mut h, "AT+QTONEDET=1"), "\r\nCOMMAND NOT SUPPORT\r\n");
        assert_eq!(run(&mut h, "AT+CMGF=\"x"), "\r\nERROR\r\n");
    }

    proptest::proptest! {
        /// Command-line fragments in any order (plausible lines, broken ones, prompt bodies)
        /// never make the simulator panic.
        #[test]
        fn fragments_never_panic(
            model in 0usize..3,
            parts in proptest::collection::vec(proptest::sample::select(vec![
                "AT", "+CMGF=1", "+CMGF=0", "+CSCS=\"UCS2\"", "+CMGS=", "+CMGW=", "\"+1555\"",
                "\"", ",", ";", "=?", "?", "\r", "\x1a", "\x1b", "0011000B91", "D+1;", "A", "H",
                "+CMGL=\"ALL\"", "+CMGR=0", "+CNMI=2,2,0,1,0", "+CSMP=49,167,0,8", "+CUSD=1,",
                "^USSDMODE=0", "+CHLD=2", "+VTS=", "é", "00D83D", "E1", "&W", "+CPMS=\"SM\"",
            ]), 0..64),
        ) {
            let model = SimulatedModel::ALL[model];
            let bytes: String = parts.concat();
            let _ = crate::simulator::feed_fresh(model, bytes.as_bytes());
        }
    }

    #[test]
    fn garbage_never_panics() {
        let mut c = core(SimulatedModel::Sim7600);
        for junk in [
            &b"AT+\r"[..],
            b"AT=?\r",
            b"AT+CMGS=\r",
            b"AT+CMGF=1\rAT+CMGS=\"\r\x1a",
            b"AT+CMGW=\"+1\",,\"STO\"\r\xff\xfe\x1a",
            b"AT&\r",
            b"AT\"\r",
            b"ATD\r",
            b"AT+CLCC=?;;\r",
            b"\x00\x01AT\r",
        ] {
            let _ = text(&c.feed(junk));
        }
        assert!(run(&mut c, "AT").contains("OK"));
    }
}
