//! The simulated modem's brain, sans-IO: bytes from the gateway in, [`Out`] actions (bytes to
//! write, pauses, timers, reboots) out; control operations mutate the same state.
//!
//! It keeps what a real modem keeps — settings reset by a reboot (echo, `CMEE`, `CNMI`,
//! enabled URCs, audio routing, calls) and what survives one (SMS storage, the SIM) — and
//! records what the gateway did (SMS sent with decoded text and raw PDU, numbers dialled,
//! DTMF sent, answers and hang-ups, USSD requests).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use super::dialect::{CallUrcs, Dialect, DtmfUrc, SimProfile};
use super::{DialOutcome, SimConfig, SimError, SimEvent, UssdCoding};
use crate::modem::at::args::Args;
use crate::modem::at::types::{CallStat, Direction, is_dtmf_digit};
use crate::modem::pdu::ussd::{gsm7_pack_hex, gsm7_unpack_hex, ucs2_hex_encode};
use crate::modem::pdu::{
    Address, ConcatRef, DeliverOptions, Pdu, Status, StatusReport, Submit, Timestamp, Tpdu,
    encode_deliver, from_hex,
};

/// Samples per 20 ms frame at 8 kHz.
pub(crate) const FRAME_SAMPLES: usize = 160;

/// Longest command line accepted (longer input is discarded, as modems do).
const MAX_LINE: usize = 1024;

/// Longest SMS body accepted at the prompt (hex of a 176-octet PDU plus slack).
const MAX_BODY: usize = 600;

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

/// One SMS part the gateway sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentSmsRecord {
    /// Message reference the simulator assigned (`+CMGS: <mr>`).
    pub mr: u8,
    /// Recipient.
    pub to: String,
    /// Decoded text of this part (`None` for 8-bit data).
    pub text: Option<String>,
    /// The PDU hex as sent (SMSC field included).
    pub pdu: String,
    /// The `AT+CMGS` length.
    pub tpdu_len: usize,
    /// A status report was requested.
    pub status_report: bool,
    /// Concatenation: (reference, total, sequence).
    pub concat: Option<(u16, u8, u8)>,
}

/// A call as the simulator saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimCallRecord {
    /// Simulator-unique id.
    pub id: u64,
    /// Direction as seen by the modem.
    pub direction: Direction,
    /// The other party.
    pub number: String,
    /// Whether it was ever active.
    pub answered: bool,
    /// Who or what ended it (`gateway`, `remote`, `busy`, `no-answer`, `rejected`,
    /// `transferred`, `reboot`), if ended.
    pub ended_by: Option<String>,
    /// The call this one was joined to by an explicit call transfer (`AT+CHLD=4`).
    #[serde(default)]
    pub transferred_with: Option<u64>,
}

/// A scripted USSD reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UssdScript {
    /// Reply text.
    pub text: String,
    /// How the network coded it.
    pub coding: UssdCoding,
    /// `<m>` of the reply (0 done, 1 further action).
    pub status: u8,
    /// Send the reply before the `OK` of `AT+CUSD` (some modems do).
    pub before_ok: bool,
    /// Put an unrelated URC between `OK` and the reply.
    pub interleave_urc: bool,
}

impl UssdScript {
    /// A final reply after `OK`.
    pub fn new(text: impl Into<String>, coding: UssdCoding) -> Self {
        Self {
            text: text.into(),
            coding,
            status: 0,
            before_ok: false,
            interleave_urc: false,
        }
    }
}

/// What can go wrong on purpose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FaultAction {
    /// Reboot (RDY / ^BOOT after the boot delay) instead of answering.
    Reboot,
    /// Say nothing and do nothing (the command was lost on the way in).
    Drop,
    /// Carry the command out but lose its reply (the modem acted; the gateway never hears
    /// about it): an `AT+CMSS` whose message went out but whose `+CMSS:` never arrived.
    NoReply,
    /// Answer with this final line (e.g. `+CMS ERROR: 500`).
    Error(String),
    /// Answer with these bytes before the normal reply.
    Garbage(Vec<u8>),
}

#[derive(Debug, Clone)]
struct Trigger {
    prefix: String,
    action: FaultAction,
    /// Matching commands to let through before the fault applies.
    skip: u32,
    remaining: u32,
}

#[derive(Debug, Clone)]
pub(crate) struct Faults {
    pub(crate) reply_delay: Duration,
    pub(crate) drop_replies: u32,
    pub(crate) unresponsive: bool,
    pub(crate) sim_busy: u32,
    pub(crate) memory_full: bool,
    /// The network refuses explicit call transfer (`AT+CHLD=4`).
    pub(crate) ect_refused: bool,
    triggers: Vec<Trigger>,
}

#[derive(Debug, Clone)]
struct Stored {
    stat: u8,
    pdu: String,
    tpdu_len: usize,
}

#[derive(Debug, Clone)]
struct SimCall {
    id: u64,
    index: u8,
    dir: Direction,
    state: CallStat,
    number: String,
    started: Instant,
}

/// What the `> ` prompt collects a PDU for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PromptFor {
    /// `AT+CMGS=<length>`: send it.
    Send {
        /// TPDU length.
        len: usize,
    },
    /// `AT+CMGW=<length>[,<stat>]`: store it.
    Write {
        /// TPDU length.
        len: usize,
        /// Storage status to give it.
        stat: u8,
    },
}

impl PromptFor {
    /// The command prefix fault triggers are keyed by.
    fn trigger_prefix(self) -> &'static str {
        match self {
            PromptFor::Send { .. } => "AT+CMGS=",
            PromptFor::Write { .. } => "AT+CMGW=",
        }
    }
}

/// Keeps what is not a reply (timers, audio flushes) of `outs`: the modem acted, its answer
/// was lost.
fn without_reply(outs: Vec<Out>) -> Vec<Out> {
    outs.into_iter()
        .filter(|o| !matches!(o, Out::Bytes(_)))
        .collect()
}

/// Settings a reboot resets.
#[derive(Debug, Clone)]
struct Settings {
    echo: bool,
    cmee: u8,
    cnmi: [u8; 5],
    csms: u8,
    clip: bool,
    crc: bool,
    creg: u8,
    cereg: u8,
    ccinfo: bool,
    clcc_urc: bool,
    qtonedet: bool,
    ddtmf: bool,
    audio_routed: bool,
    sim_unlocked: bool,
}

impl Settings {
    fn boot(pin: bool) -> Self {
        Self {
            echo: true,
            cmee: 0,
            cnmi: [0; 5],
            csms: 0,
            clip: false,
            crc: false,
            creg: 0,
            cereg: 0,
            ccinfo: false,
            clcc_urc: false,
            qtonedet: false,
            ddtmf: false,
            audio_routed: false,
            sim_unlocked: !pin,
        }
    }
}

/// Voice port state shared with the PCM task.
#[derive(Debug, Default)]
pub(crate) struct Audio {
    active: bool,
    queue: VecDeque<i16>,
    recorded: Vec<i16>,
    /// A byte of an incomplete sample read from the port.
    odd: Option<u8>,
}

/// The simulated modem state.
pub(crate) struct SimCore {
    profile: SimProfile,
    d: Dialect,
    cfg: SimConfig,
    events: broadcast::Sender<SimEvent>,
    s: Settings,
    line: Vec<u8>,
    discarding: bool,
    /// `AT+CMGS`/`AT+CMGW` waiting for its body.
    prompt: Option<PromptFor>,
    body: Vec<u8>,
    storage: Vec<Option<Stored>>,
    network_queue: VecDeque<(String, usize)>,
    memfull_reported: bool,
    unacked_direct: u32,
    calls: Vec<SimCall>,
    next_call_id: u64,
    next_mr: u8,
    next_ref: u8,
    ussd_queue: VecDeque<UssdScript>,
    pub(crate) faults: Faults,
    pub(crate) audio: Audio,
    // Records.
    pub(crate) sent: Vec<SentSmsRecord>,
    pub(crate) dialled: Vec<String>,
    pub(crate) dtmf_sent: Vec<char>,
    pub(crate) ussd_requests: Vec<String>,
    pub(crate) call_log: Vec<SimCallRecord>,
    pub(crate) commands: Vec<String>,
    pub(crate) reboots: u32,
}

fn crlf(text: &str) -> Vec<u8> {
    format!("\r\n{text}\r\n").into_bytes()
}

fn toa(number: &str) -> u8 {
    if number.starts_with('+') { 145 } else { 129 }
}

fn stat_code(s: CallStat) -> i8 {
    match s {
        CallStat::Active => 0,
        CallStat::Held => 1,
        CallStat::Dialing => 2,
        CallStat::Alerting => 3,
        CallStat::Incoming => 4,
        CallStat::Waiting => 5,
        CallStat::Released => -1,
    }
}

fn dir_code(d: Direction) -> u8 {
    match d {
        Direction::Outgoing => 0,
        Direction::Incoming => 1,
    }
}

impl SimCore {
    pub(crate) fn new(cfg: SimConfig, events: broadcast::Sender<SimEvent>) -> Self {
        let d = cfg.profile.dialect();
        let slots = usize::try_from(cfg.storage_slots.max(1)).unwrap_or(1);
        Self {
            profile: cfg.profile,
            s: Settings::boot(cfg.pin.is_some()),
            d,
            events,
            line: Vec::new(),
            discarding: false,
            prompt: None,
            body: Vec::new(),
            storage: vec![None; slots],
            network_queue: VecDeque::new(),
            memfull_reported: false,
            unacked_direct: 0,
            calls: Vec::new(),
            next_call_id: 1,
            next_mr: 0,
            next_ref: 0,
            ussd_queue: VecDeque::new(),
            faults: Faults {
                reply_delay: Duration::ZERO,
                drop_replies: 0,
                unresponsive: false,
                sim_busy: 0,
                memory_full: false,
                ect_refused: false,
                triggers: Vec::new(),
            },
            audio: Audio::default(),
            sent: Vec::new(),
            dialled: Vec::new(),
            dtmf_sent: Vec::new(),
            ussd_requests: Vec::new(),
            call_log: Vec::new(),
            commands: Vec::new(),
            reboots: 0,
            cfg,
        }
    }

    pub(crate) fn profile(&self) -> SimProfile {
        self.profile
    }

    fn emit(&self, ev: SimEvent) {
        let _ = self.events.send(ev);
    }

    /// First storage index (EC25 "ME" counts from 0, SIM storage from 1).
    fn base(&self) -> u32 {
        u32::from(self.d.memory == "SM")
    }

    fn slot_of(&self, index: u32) -> Option<usize> {
        usize::try_from(index.checked_sub(self.base())?)
            .ok()
            .filter(|i| *i < self.storage.len())
    }

    fn index_of(&self, slot: usize) -> u32 {
        u32::try_from(slot)
            .unwrap_or(u32::MAX)
            .saturating_add(self.base())
    }

    fn storage_used(&self) -> usize {
        self.storage.iter().filter(|s| s.is_some()).count()
    }

    fn storage_full(&self) -> bool {
        self.faults.memory_full || self.storage.iter().all(Option::is_some)
    }

    fn error(&self, cme: u16) -> Vec<u8> {
        if self.s.cmee > 0 {
            crlf(&format!("+CME ERROR: {cme}"))
        } else {
            crlf("ERROR")
        }
    }

    fn cms(&self, code: u16) -> Vec<u8> {
        if self.s.cmee > 0 {
            crlf(&format!("+CMS ERROR: {code}"))
        } else {
            crlf("ERROR")
        }
    }

    // ---------------------------------------------------------------- input

    /// Bytes from the gateway.
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> Vec<Out> {
        let mut out = Vec::new();
        for &b in bytes {
            if let Some(p) = self.prompt {
                match b {
                    0x1A => {
                        self.prompt = None;
                        let body = String::from_utf8_lossy(&self.body).trim().to_owned();
                        self.body.clear();
                        out.extend(self.prompt_body(p, &body));
                    }
                    0x1B => {
                        self.prompt = None;
                        self.body.clear();
                        out.push(Out::Bytes(crlf("OK")));
                    }
                    b'\r' | b'\n' => {}
                    _ => {
                        if self.body.len() < MAX_BODY {
                            self.body.push(b);
                        }
                        if self.s.echo {
                            out.push(Out::Bytes(vec![b]));
                        }
                    }
                }
                continue;
            }
            match b {
                b'\r' => {
                    let line = String::from_utf8_lossy(&self.line).trim().to_owned();
                    self.line.clear();
                    if std::mem::take(&mut self.discarding) || line.is_empty() {
                        continue;
                    }
                    out.extend(self.command(&line));
                }
                b'\n' | 0x00..=0x1F | 0x7F => {}
                _ => {
                    if self.line.len() >= MAX_LINE {
                        self.discarding = true;
                        self.line.clear();
                    } else if !self.discarding {
                        self.line.push(b);
                    }
                }
            }
        }
        out
    }

    fn take_trigger(&mut self, upper: &str) -> Option<FaultAction> {
        let i = self
            .faults
            .triggers
            .iter()
            .position(|t| upper.starts_with(&t.prefix))?;
        let t = self.faults.triggers.get_mut(i)?;
        if t.skip > 0 {
            t.skip -= 1;
            return None;
        }
        let action = t.action.clone();
        t.remaining = t.remaining.saturating_sub(1);
        if t.remaining == 0 {
            self.faults.triggers.remove(i);
        }
        Some(action)
    }

    fn command(&mut self, line: &str) -> Vec<Out> {
        if self.faults.unresponsive {
            return Vec::new();
        }
        if self.faults.drop_replies > 0 {
            self.faults.drop_replies -= 1;
            return Vec::new();
        }
        self.commands.push(line.to_owned());
        self.emit(SimEvent::Command {
            line: line.to_owned(),
        });
        let mut out = Vec::new();
        if self.s.echo {
            out.push(Out::Bytes(format!("{line}\r").into_bytes()));
        }
        let upper = line.to_ascii_uppercase();
        // Faults of prompt commands apply when their body arrives.
        let is_prompt = upper.starts_with("AT+CMGS=") || upper.starts_with("AT+CMGW=");
        let mut mute = false;
        if !is_prompt && let Some(action) = self.take_trigger(&upper) {
            match action {
                FaultAction::Reboot => {
                    out.extend(self.reboot());
                    return out;
                }
                FaultAction::Drop => return out,
                FaultAction::NoReply => mute = true,
                FaultAction::Error(f) => {
                    out.push(Out::Bytes(crlf(&f)));
                    return out;
                }
                FaultAction::Garbage(g) => out.push(Out::Bytes(g)),
            }
        }
        if !self.faults.reply_delay.is_zero() {
            out.push(Out::Sleep(self.faults.reply_delay));
        }
        let Some(rest) = upper.strip_prefix("AT") else {
            return out; // not a command: modems ignore it
        };
        let orig_rest = line.get(2..).unwrap_or("");
        let reply = self.dispatch(rest, orig_rest);
        out.extend(if mute { without_reply(reply) } else { reply });
        out
    }

    // ------------------------------------------------------------ commands

    fn dispatch(&mut self, upper: &str, orig: &str) -> Vec<Out> {
        let ok = || Out::Bytes(crlf("OK"));
        let (name, arg) = match upper.find(['=', '?']) {
            Some(i) if upper.starts_with('+') || upper.starts_with('^') => {
                (upper.get(..i).unwrap_or(""), orig.get(i..).unwrap_or(""))
            }
            _ => (upper, ""),
        };
        let set = arg.strip_prefix('=').map(str::trim);
        let query = arg == "?";
        let args = Args::parse(set.unwrap_or(""));
        let mut out = Vec::new();
        let info = |out: &mut Vec<Out>, t: &str| out.push(Out::Bytes(crlf(t)));
        match name {
            "" => out.push(ok()),
            "E0" | "E1" => {
                self.s.echo = name == "E1";
                out.push(ok());
            }
            "Z" | "&F" | "V1" | "Q0" | "&W" => out.push(ok()),
            "I" => {
                info(&mut out, self.d.manufacturer);
                info(&mut out, self.d.model);
                info(&mut out, &format!("Revision: {}", self.d.revision));
                out.push(ok());
            }
            "+CGMI" => {
                info(&mut out, self.d.manufacturer);
                out.push(ok());
            }
            "+CGMM" => {
                info(&mut out, self.d.model);
                out.push(ok());
            }
            "+CGMR" => {
                let r = if self.profile == SimProfile::QuectelEc25 {
                    format!("Revision: {}", self.d.revision)
                } else {
                    self.d.revision.to_owned()
                };
                info(&mut out, &r);
                out.push(ok());
            }
            "+CGSN" => {
                info(&mut out, &self.cfg.imei);
                out.push(ok());
            }
            "+CMEE" if query => {
                info(&mut out, &format!("+CMEE: {}", self.s.cmee));
                out.push(ok());
            }
            "+CMEE" => {
                self.s.cmee = args.int(0, "n").unwrap_or(0);
                out.push(ok());
            }
            "+CPIN" if query => {
                if self.faults.sim_busy > 0 {
                    self.faults.sim_busy -= 1;
                    out.push(Out::Bytes(self.error(14)));
                } else {
                    let st = if self.s.sim_unlocked {
                        "READY"
                    } else {
                        "SIM PIN"
                    };
                    info(&mut out, &format!("+CPIN: {st}"));
                    out.push(ok());
                }
            }
            "+CPIN" => {
                let given = args.opt_text(0).unwrap_or("");
                if self.cfg.pin.as_deref() == Some(given) {
                    self.s.sim_unlocked = true;
                    out.push(ok());
                    info(&mut out, "+CPIN: READY");
                } else {
                    out.push(Out::Bytes(self.error(16)));
                }
            }
            _ if !self.s.sim_unlocked
                && (SIM_COMMANDS.contains(&name) || name.starts_with('D')) =>
            {
                out.push(Out::Bytes(self.error(11)));
            }
            "+CIMI" => {
                info(&mut out, &self.cfg.imsi);
                out.push(ok());
            }
            "+CCID" | "+QCCID" | "^ICCID" | "+CICCID" => {
                let prefix = if upper.starts_with(self.d.iccid_command.trim_start_matches("AT")) {
                    self.d.iccid_prefix
                } else {
                    "+CCID: "
                };
                info(&mut out, &format!("{prefix}{}", self.cfg.iccid));
                out.push(ok());
            }
            "+CNUM" => {
                info(
                    &mut out,
                    &format!(
                        "+CNUM: \"\",\"{}\",{}",
                        self.cfg.own_number,
                        toa(&self.cfg.own_number)
                    ),
                );
                out.push(ok());
            }
            "+CMGF" | "+CSCS" | "+CLVL" | "+CMUT" | "+VTD" | "+QURCCFG" | "^CURC" | "+CNSMOD"
            | "+AUTOCSQ" | "+CVHU" | "+CSSN" | "+CCWA" => out.push(ok()),
            "+CSCA" if query => {
                info(&mut out, "+CSCA: \"+15550000000\",145");
                out.push(ok());
            }
            "+CFUN" if query => {
                info(&mut out, "+CFUN: 1");
                out.push(ok());
            }
            "+CFUN" => {
                out.push(ok());
                if args.opt_int::<u8>(1, "rst").ok().flatten() == Some(1) {
                    out.extend(self.reboot());
                }
            }
            "+CNMI" => {
                for (i, v) in self.s.cnmi.iter_mut().enumerate() {
                    *v = args.opt_int(i, "cnmi").ok().flatten().unwrap_or(0);
                }
                out.push(ok());
            }
            "+CSMS" => {
                self.s.csms = args.int(0, "service").unwrap_or(0);
                info(&mut out, "+CSMS: 1,1,1");
                out.push(ok());
            }
            "+CLIP" => {
                self.s.clip = args.int::<u8>(0, "n").unwrap_or(0) == 1;
                out.push(ok());
            }
            "+CRC" => {
                self.s.crc = args.int::<u8>(0, "n").unwrap_or(0) == 1;
                out.push(ok());
            }
            "+CREG" | "+CGREG" if query => {
                let n = self.s.creg;
                let tail = if n >= 2 { ",\"4CA\",\"81DE445\"" } else { "" };
                let act = if n >= 2 && self.d.lte { ",7" } else { "" };
                info(
                    &mut out,
                    &format!("{name}: {n},{}{tail}{act}", self.cfg.registration),
                );
                out.push(ok());
            }
            "+CREG" | "+CGREG" => {
                self.s.creg = args.int(0, "n").unwrap_or(0);
                out.push(ok());
            }
            "+CEREG" if self.d.lte && query => {
                let n = self.s.cereg;
                let tail = if n >= 2 { ",\"4CA\",\"81DE445\",7" } else { "" };
                info(
                    &mut out,
                    &format!("+CEREG: {n},{}{tail}", self.cfg.registration),
                );
                out.push(ok());
            }
            "+CEREG" if self.d.lte => {
                self.s.cereg = args.int(0, "n").unwrap_or(0);
                out.push(ok());
            }
            "+CSQ" => {
                info(&mut out, &format!("+CSQ: {},99", self.cfg.rssi));
                out.push(ok());
            }
            "+COPS" if query => {
                let act = if self.d.lte { 7 } else { 2 };
                info(
                    &mut out,
                    &format!("+COPS: 0,0,\"{}\",{act}", self.cfg.operator),
                );
                out.push(ok());
            }
            "+COPS" => out.push(ok()),
            "+CPMS" => out.extend(self.cpms(query, &args)),
            "+CMGR" => out.extend(self.cmgr(&args)),
            "+CMGL" => out.extend(self.cmgl(&args)),
            "+CMGD" => out.extend(self.cmgd(&args)),
            "+CMGS" => out.extend(self.cmgs(&args)),
            "+CMGW" => out.extend(self.cmgw(&args)),
            "+CMSS" => out.extend(self.cmss(&args)),
            "+CNMA" => {
                if self.unacked_direct > 0 {
                    self.unacked_direct -= 1;
                    out.push(ok());
                } else {
                    out.push(Out::Bytes(self.cms(340)));
                }
            }
            "+CLCC" if set.is_some() => {
                self.s.clcc_urc = args.int::<u8>(0, "n").unwrap_or(0) == 1;
                out.push(ok());
            }
            "+CLCC" => {
                for c in &self.calls {
                    let l = format!(
                        "+CLCC: {},{},{},0,0,\"{}\",{}",
                        c.index,
                        dir_code(c.dir),
                        stat_code(c.state),
                        c.number,
                        toa(&c.number)
                    );
                    info(&mut out, &l);
                }
                out.push(ok());
            }
            "+QINDCFG" => {
                if args
                    .opt_text(0)
                    .is_some_and(|k| k.eq_ignore_ascii_case("ccinfo"))
                {
                    self.s.ccinfo = args.int::<u8>(1, "enable").unwrap_or(0) == 1;
                }
                out.push(ok());
            }
            "^DSCI" => out.push(ok()),
            "+QTONEDET" => {
                self.s.qtonedet = args.int::<u8>(0, "enable").unwrap_or(0) == 1;
                out.push(ok());
            }
            "^DDTMFCFG" => {
                self.s.ddtmf = true;
                out.push(ok());
            }
            "+DDET" => out.push(ok()),
            "^CVOICE" if query => {
                info(&mut out, "^CVOICE: 0,8000,16,20");
                out.push(ok());
            }
            "+QPCMV" if query => {
                info(
                    &mut out,
                    &format!("+QPCMV: {},0", u8::from(self.s.audio_routed)),
                );
                out.push(ok());
            }
            n if n == self.d.audio_command.trim_start_matches("AT") => {
                let v: u8 = args.int(0, "mode").unwrap_or(0);
                self.s.audio_routed = v != 0;
                out.push(ok());
                out.extend(self.update_audio());
            }
            "+VTS" | "^DTMF" => out.extend(self.vts(name, &args)),
            "A" => out.extend(self.answer()),
            "H" | "H0" | "+CHUP" => out.extend(self.local_hangup(None)),
            // AT+QHUP=<cause>[,<idx>]
            "+QHUP" => out.extend(self.local_hangup(args.opt_int::<u8>(1, "idx").ok().flatten())),
            "+CHLD" if arg == "=?" => {
                info(&mut out, "+CHLD: (0,1,1x,2,2x,4)");
                out.push(ok());
            }
            "+CHLD" => {
                let v = args.text(0, "n").unwrap_or("").trim().to_owned();
                out.extend(self.chld(&v));
            }
            "+CUSD" => out.extend(self.cusd(&args)),
            d if d.starts_with('D') => out.extend(self.dial(orig.get(1..).unwrap_or(""))),
            _ => out.push(Out::Bytes(crlf(self.d.unknown))),
        }
        out
    }

    fn cpms(&mut self, query: bool, args: &Args) -> Vec<Out> {
        let used = self.storage_used();
        let total = self.storage.len();
        let mem = self.d.memory;
        let line = if query {
            format!(
                "+CPMS: \"{mem}\",{used},{total},\"{mem}\",{used},{total},\"{mem}\",{used},{total}"
            )
        } else {
            let known = ["ME", "SM", "MT", "SR"];
            for i in 0..3 {
                if let Some(m) = args.opt_text(i)
                    && !known.contains(&m.to_ascii_uppercase().as_str())
                {
                    return vec![Out::Bytes(self.cms(302))];
                }
            }
            format!("+CPMS: {used},{total},{used},{total},{used},{total}")
        };
        vec![Out::Bytes(crlf(&line)), Out::Bytes(crlf("OK"))]
    }

    fn cmgr(&mut self, args: &Args) -> Vec<Out> {
        let Ok(index) = args.int::<u32>(0, "index") else {
            return vec![Out::Bytes(self.cms(302))];
        };
        let Some(slot) = self.slot_of(index) else {
            return vec![Out::Bytes(self.cms(321))];
        };
        let mut out = Vec::new();
        if let Some(Some(m)) = self.storage.get_mut(slot) {
            out.push(Out::Bytes(crlf(&format!(
                "+CMGR: {},,{}",
                m.stat, m.tpdu_len
            ))));
            out.push(Out::Bytes(format!("{}\r\n", m.pdu).into_bytes()));
            if m.stat == 0 {
                m.stat = 1;
            }
        }
        out.push(Out::Bytes(crlf("OK")));
        out
    }

    fn cmgl(&mut self, args: &Args) -> Vec<Out> {
        let which: u8 = args.int(0, "stat").unwrap_or(4);
        let mut out = Vec::new();
        let mut body = String::new();
        let base = self.base();
        for (i, m) in self.storage.iter_mut().enumerate() {
            let Some(m) = m else { continue };
            if which != 4 && m.stat != which {
                continue;
            }
            let idx = u32::try_from(i).unwrap_or(u32::MAX).saturating_add(base);
            body.push_str(&format!(
                "\r\n+CMGL: {idx},{},,{}\r\n{}",
                m.stat, m.tpdu_len, m.pdu
            ));
            if m.stat == 0 {
                m.stat = 1;
            }
        }
        if !body.is_empty() {
            body.push_str("\r\n");
            out.push(Out::Bytes(body.into_bytes()));
        }
        out.push(Out::Bytes(crlf("OK")));
        out
    }

    fn cmgd(&mut self, args: &Args) -> Vec<Out> {
        let Ok(index) = args.int::<u32>(0, "index") else {
            return vec![Out::Bytes(self.cms(302))];
        };
        let flag: u8 = args.opt_int(1, "delflag").ok().flatten().unwrap_or(0);
        if flag == 4 {
            for s in &mut self.storage {
                *s = None;
            }
        } else {
            let Some(slot) = self.slot_of(index) else {
                return vec![Out::Bytes(self.cms(321))];
            };
            if let Some(s) = self.storage.get_mut(slot)
                && s.take().is_some()
            {
                self.emit(SimEvent::SmsDeleted { index });
            }
        }
        let mut out = vec![Out::Bytes(crlf("OK"))];
        // Space again: the network delivers what it held back.
        while !self.storage_full() {
            let Some((pdu, len)) = self.network_queue.pop_front() else {
                break;
            };
            out.extend(self.deliver(pdu, len));
        }
        if !self.storage_full() {
            self.memfull_reported = false;
        }
        out
    }

    /// Opens the `> ` prompt for `AT+CMGS=<len>` / `AT+CMGW=<len>[,<stat>]`.
    fn open_prompt(&mut self, p: PromptFor) -> Vec<Out> {
        self.prompt = Some(p);
        self.body.clear();
        vec![Out::Bytes(b"\r\n> ".to_vec())]
    }

    /// The TPDU length argument of `AT+CMGS`/`AT+CMGW` (7..=176 octets).
    fn pdu_len(args: &Args) -> Option<usize> {
        args.int::<usize>(0, "length")
            .ok()
            .filter(|len| (7..=176).contains(len))
    }

    fn cmgs(&mut self, args: &Args) -> Vec<Out> {
        match Self::pdu_len(args) {
            Some(len) => self.open_prompt(PromptFor::Send { len }),
            None => vec![Out::Bytes(self.cms(304))],
        }
    }

    /// `AT+CMGW=<length>[,<stat>]` (PDU mode): `<stat>` defaults to 2 (stored unsent).
    fn cmgw(&mut self, args: &Args) -> Vec<Out> {
        let stat = match args.opt_int::<u8>(1, "stat") {
            Ok(s) => s.unwrap_or(2),
            Err(_) => return vec![Out::Bytes(self.cms(304))],
        };
        match Self::pdu_len(args) {
            Some(len) if stat <= 3 => self.open_prompt(PromptFor::Write { len, stat }),
            _ => vec![Out::Bytes(self.cms(304))],
        }
    }

    /// The PDU body after the prompt arrived (Ctrl-Z): apply the command's fault trigger,
    /// then send or store it.
    fn prompt_body(&mut self, p: PromptFor, hex: &str) -> Vec<Out> {
        let mut out = Vec::new();
        let mut mute = false;
        if let Some(action) = self.take_trigger(p.trigger_prefix()) {
            match action {
                FaultAction::Reboot => return self.reboot(),
                FaultAction::Drop => return out,
                FaultAction::NoReply => mute = true,
                FaultAction::Error(f) => return vec![Out::Bytes(crlf(&f))],
                FaultAction::Garbage(g) => out.push(Out::Bytes(g)),
            }
        }
        if !self.faults.reply_delay.is_zero() {
            out.push(Out::Sleep(self.faults.reply_delay));
        }
        let reply = match p {
            PromptFor::Send { len } => self.send_body(len, hex),
            PromptFor::Write { len, stat } => self.write_body(len, stat, hex),
        };
        out.extend(if mute { without_reply(reply) } else { reply });
        out
    }

    /// `AT+CMGS` body: the network takes the message.
    fn send_body(&mut self, len: usize, hex: &str) -> Vec<Out> {
        let Some(sub) = decode_submit(hex, len) else {
            return vec![Out::Bytes(self.cms(304))];
        };
        let (mr, mut later) = self.transmit(hex, len, &sub);
        let mut out = vec![
            Out::Bytes(crlf(&format!("+CMGS: {mr}"))),
            Out::Bytes(crlf("OK")),
        ];
        out.append(&mut later);
        out
    }

    /// `AT+CMGW` body: store the PDU with `stat` (SUBMITs as 2/3, DELIVERs as 0/1).
    fn write_body(&mut self, len: usize, stat: u8, hex: &str) -> Vec<Out> {
        let pdu = match Pdu::from_hex_with_tpdu_len(hex, len) {
            Ok(p) => p,
            Err(_) => return vec![Out::Bytes(self.cms(304))],
        };
        let fits = match pdu.tpdu {
            Tpdu::Submit(_) => stat >= 2,
            Tpdu::Deliver(_) => stat <= 1,
            Tpdu::StatusReport(_) => false,
        };
        if !fits {
            return vec![Out::Bytes(self.cms(304))];
        }
        let free = if self.faults.memory_full {
            None
        } else {
            self.storage.iter().position(Option::is_none)
        };
        let Some(slot) = free else {
            return vec![Out::Bytes(self.cms(322))];
        };
        if let Some(s) = self.storage.get_mut(slot) {
            *s = Some(Stored {
                stat,
                pdu: hex.to_ascii_uppercase(),
                tpdu_len: len,
            });
        }
        let index = self.index_of(slot);
        vec![
            Out::Bytes(crlf(&format!("+CMGW: {index}"))),
            Out::Bytes(crlf("OK")),
        ]
    }

    /// `AT+CMSS=<index>[,<da>[,<toda>]]`: send a stored SUBMIT (the stored destination is
    /// used) and mark it stored-sent (stat 3).
    fn cmss(&mut self, args: &Args) -> Vec<Out> {
        let Ok(index) = args.int::<u32>(0, "index") else {
            return vec![Out::Bytes(self.cms(302))];
        };
        let Some(m) = self
            .slot_of(index)
            .and_then(|slot| self.storage.get(slot))
            .and_then(Clone::clone)
        else {
            return vec![Out::Bytes(self.cms(321))];
        };
        // A received message cannot be sent from storage in PDU mode.
        let Some(sub) = decode_submit(&m.pdu, m.tpdu_len) else {
            return vec![Out::Bytes(self.cms(302))];
        };
        let (mr, mut later) = self.transmit(&m.pdu, m.tpdu_len, &sub);
        if let Some(Some(stored)) = self.slot_of(index).and_then(|s| self.storage.get_mut(s)) {
            stored.stat = 3;
        }
        let mut out = vec![
            Out::Bytes(crlf(&format!("+CMSS: {mr}"))),
            Out::Bytes(crlf("OK")),
        ];
        out.append(&mut later);
        out
    }

    /// The network takes a SUBMIT (from `AT+CMGS` or `AT+CMSS`): it is recorded as sent and
    /// gets a message reference; a status report is scheduled when one was asked for.
    fn transmit(&mut self, hex: &str, len: usize, sub: &Submit) -> (u8, Vec<Out>) {
        let mr = self.next_mr;
        self.next_mr = self.next_mr.wrapping_add(1);
        let rec = SentSmsRecord {
            mr,
            to: sub.destination.to_string(),
            text: sub.user_data.body.text().map(str::to_owned),
            pdu: hex.to_ascii_uppercase(),
            tpdu_len: len,
            status_report: sub.status_report_request,
            concat: sub
                .user_data
                .concat()
                .map(|c| (c.reference, c.total, c.seq)),
        };
        self.sent.push(rec.clone());
        self.emit(SimEvent::SmsSent { record: rec });
        let mut later = Vec::new();
        if sub.status_report_request
            && let Some(status) = self.cfg.auto_status_report
        {
            later.push(Out::Schedule(
                Duration::from_millis(self.cfg.status_report_delay_ms),
                Scheduled::StatusReport {
                    mr,
                    to: sub.destination.to_string(),
                    status,
                },
            ));
        }
        (mr, later)
    }

    fn vts(&mut self, name: &str, args: &Args) -> Vec<Out> {
        // AT+VTS=<d> / AT+VTS="<d>" / AT^DTMF=<idx>,<d>
        let field = if name == "^DTMF" { 1 } else { 0 };
        let d = args
            .text(field, "digit")
            .unwrap_or("")
            .trim()
            .to_ascii_uppercase();
        let mut chars = d.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None)
                if is_dtmf_digit(c) && self.calls.iter().any(|c| c.state == CallStat::Active) =>
            {
                self.dtmf_sent.push(c);
                self.emit(SimEvent::DtmfSent { digit: c });
                vec![Out::Bytes(crlf("OK"))]
            }
            _ => vec![Out::Bytes(self.error(3))],
        }
    }

    fn cusd(&mut self, args: &Args) -> Vec<Out> {
        let n: u8 = args.opt_int(0, "n").ok().flatten().unwrap_or(0);
        if n == 2 {
            return vec![Out::Bytes(crlf("OK"))];
        }
        let Some(raw) = args.opt_text(1) else {
            return vec![Out::Bytes(crlf("OK"))];
        };
        let code = if self.d.ussd_packed {
            match gsm7_unpack_hex(raw) {
                Ok(c) => c,
                Err(_) => return vec![Out::Bytes(self.error(4))],
            }
        } else {
            raw.to_owned()
        };
        self.ussd_requests.push(code.clone());
        self.emit(SimEvent::UssdRequest { code: code.clone() });
        let script = self.ussd_queue.pop_front().unwrap_or_else(|| {
            UssdScript::new(
                self.cfg.ussd_default_reply.replace("{code}", &code),
                UssdCoding::Gsm7,
            )
        });
        let reply = self.ussd_line(&script);
        let mut out = Vec::new();
        if script.before_ok {
            out.push(Out::Bytes(crlf(&reply)));
            out.push(Out::Bytes(crlf("OK")));
        } else {
            out.push(Out::Bytes(crlf("OK")));
            if script.interleave_urc {
                out.push(Out::Bytes(crlf(&format!("+CSQ: {},99", self.cfg.rssi))));
            }
            out.push(Out::Bytes(crlf(&reply)));
        }
        out
    }

    fn ussd_line(&self, s: &UssdScript) -> String {
        match s.coding {
            UssdCoding::Ucs2 => format!("+CUSD: {},\"{}\",72", s.status, ucs2_hex_encode(&s.text)),
            UssdCoding::Gsm7 if self.d.ussd_packed => {
                let hex = gsm7_pack_hex(&s.text).unwrap_or_default();
                format!("+CUSD: {},\"{hex}\",15", s.status)
            }
            UssdCoding::Gsm7 => format!("+CUSD: {},\"{}\",15", s.status, s.text),
        }
    }

    // --------------------------------------------------------------- calls

    fn free_index(&self) -> u8 {
        (1..=7u8)
            .find(|i| !self.calls.iter().any(|c| c.index == *i))
            .unwrap_or(7)
    }

    fn call_pos(&self, id: u64) -> Option<usize> {
        self.calls.iter().position(|c| c.id == id)
    }

    /// State URCs for a call entering `state` (the dialect's call reporting).
    fn state_urcs(&self, c: &SimCall, state: CallStat, cc: u16) -> Vec<Out> {
        let mut out = Vec::new();
        match self.d.calls {
            CallUrcs::Ccinfo => {
                if self.s.ccinfo {
                    out.push(Out::Bytes(crlf(&format!(
                        "+QIND: \"ccinfo\",{},{},{},0,0,\"{}\",{}",
                        c.index,
                        dir_code(c.dir),
                        stat_code(state),
                        c.number,
                        toa(&c.number)
                    ))));
                }
            }
            CallUrcs::Clcc => {
                if self.s.clcc_urc {
                    let st = if state == CallStat::Released {
                        6
                    } else {
                        stat_code(state)
                    };
                    out.push(Out::Bytes(crlf(&format!(
                        "+CLCC: {},{},{st},0,0,\"{}\",{}",
                        c.index,
                        dir_code(c.dir),
                        c.number,
                        toa(&c.number)
                    ))));
                }
            }
            CallUrcs::Huawei => {
                let line = match (state, c.dir) {
                    (CallStat::Dialing, _) => Some(format!("^ORIG:{},0", c.index)),
                    (CallStat::Alerting, _) => Some(format!("^CONF:{}", c.index)),
                    (CallStat::Active, _) => Some(format!("^CONN:{},0", c.index)),
                    (CallStat::Released, _) => {
                        let secs = c.started.elapsed().as_secs();
                        Some(format!("^CEND:{},{secs},104,{cc}", c.index))
                    }
                    _ => None,
                };
                if let Some(l) = line {
                    out.push(Out::Bytes(crlf(&l)));
                }
            }
        }
        out
    }

    fn set_call_state(&mut self, id: u64, state: CallStat) -> Vec<Out> {
        let Some(i) = self.call_pos(id) else {
            return Vec::new();
        };
        let Some(c) = self.calls.get_mut(i) else {
            return Vec::new();
        };
        // A held call taken back was answered long ago.
        let answering = state == CallStat::Active && c.state != CallStat::Held;
        c.state = state;
        let c = c.clone();
        let mut out = self.state_urcs(&c, state, 0);
        if answering {
            if let Some(r) = self.call_log.iter_mut().find(|r| r.id == id) {
                r.answered = true;
            }
            if self.d.calls == CallUrcs::Clcc {
                out.push(Out::Bytes(crlf("VOICE CALL: BEGIN")));
            }
        }
        out.extend(self.update_audio());
        self.emit(SimEvent::CallState { call: id, state });
        out
    }

    /// Ends a call: `text` is the call-progress line (`NO CARRIER`, `BUSY`, `NO ANSWER`) sent
    /// before the state URC, `cc` the cause Huawei puts in `^CEND`.
    fn end_call(&mut self, id: u64, text: Option<&str>, cc: u16, by: &str) -> Vec<Out> {
        let Some(i) = self.call_pos(id) else {
            return Vec::new();
        };
        let c = self.calls.remove(i);
        let mut out = Vec::new();
        if self.d.calls != CallUrcs::Huawei
            && let Some(t) = text
        {
            if self.d.calls == CallUrcs::Clcc && c.state == CallStat::Active {
                let secs = c.started.elapsed().as_secs();
                out.push(Out::Bytes(crlf(&format!("VOICE CALL: END: {:06}", secs))));
            }
            out.push(Out::Bytes(crlf(t)));
        }
        if self.d.calls == CallUrcs::Clcc && c.state == CallStat::Incoming && by == "remote" {
            out.push(Out::Bytes(crlf(&format!(
                "MISSED_CALL: 12:00AM {}",
                c.number
            ))));
        }
        out.extend(self.state_urcs(&c, CallStat::Released, cc));
        if let Some(r) = self.call_log.iter_mut().find(|r| r.id == id) {
            r.ended_by = Some(by.to_owned());
        }
        if self.profile == SimProfile::HuaweiE1550 {
            // ^DDSETEX routes one call's audio.
            self.s.audio_routed = false;
        }
        self.emit(SimEvent::CallEnded {
            call: id,
            by: by.to_owned(),
        });
        out.extend(self.update_audio());
        out
    }

    fn update_audio(&mut self) -> Vec<Out> {
        let active = self.s.audio_routed && self.calls.iter().any(|c| c.state == CallStat::Active);
        if active == self.audio.active {
            return Vec::new();
        }
        self.audio.active = active;
        self.audio.odd = None;
        self.emit(SimEvent::AudioActive { active });
        if active {
            vec![Out::FlushAudio]
        } else {
            Vec::new()
        }
    }

    fn dial(&mut self, rest: &str) -> Vec<Out> {
        let number: String = rest.trim().trim_end_matches(';').trim().to_owned();
        if number.is_empty() || !rest.trim().ends_with(';') {
            return vec![Out::Bytes(crlf("NO CARRIER"))];
        }
        // One call set-up at a time; a ringing incoming call must be answered or rejected.
        if self.calls.iter().any(|c| {
            matches!(
                c.state,
                CallStat::Dialing | CallStat::Alerting | CallStat::Incoming | CallStat::Waiting
            )
        }) {
            return vec![Out::Bytes(self.error(3))];
        }
        // Dialling with a call in progress puts that call on hold first (24.083).
        let mut held = Vec::new();
        for id in self.ids_in(&[CallStat::Active]) {
            held.extend(self.set_call_state(id, CallStat::Held));
        }
        self.dialled.push(number.clone());
        self.emit(SimEvent::Dialled {
            number: number.clone(),
        });
        let id = self.next_call_id;
        self.next_call_id += 1;
        let c = SimCall {
            id,
            index: self.free_index(),
            dir: Direction::Outgoing,
            state: CallStat::Dialing,
            number: number.clone(),
            started: Instant::now(),
        };
        self.call_log.push(SimCallRecord {
            id,
            direction: Direction::Outgoing,
            number: number.clone(),
            answered: false,
            ended_by: None,
            transferred_with: None,
        });
        let mut out = held;
        out.push(Out::Bytes(crlf("OK")));
        out.extend(self.state_urcs(&c, CallStat::Dialing, 0));
        self.calls.push(c);
        let outcome = self.cfg.dial.outcome_for(&number);
        let ms = Duration::from_millis;
        match outcome {
            DialOutcome::Answer { ring_ms } => {
                out.push(Out::Schedule(ms(ring_ms / 2), Scheduled::Alert(id)));
                out.push(Out::Schedule(ms(ring_ms), Scheduled::Answer(id)));
            }
            DialOutcome::Busy { after_ms } => {
                out.push(Out::Schedule(ms(after_ms), Scheduled::Busy(id)))
            }
            DialOutcome::NoAnswer { after_ms } => {
                out.push(Out::Schedule(ms(after_ms / 2), Scheduled::Alert(id)));
                out.push(Out::Schedule(ms(after_ms), Scheduled::NoAnswer(id)));
            }
            DialOutcome::Manual => out.push(Out::Schedule(ms(0), Scheduled::Alert(id))),
        }
        out
    }

    fn answer(&mut self) -> Vec<Out> {
        let Some(id) = self
            .calls
            .iter()
            .find(|c| c.dir == Direction::Incoming && c.state == CallStat::Incoming)
            .map(|c| c.id)
        else {
            return vec![Out::Bytes(crlf("NO CARRIER"))];
        };
        self.emit(SimEvent::Answered { call: id });
        let mut out = vec![Out::Bytes(crlf("OK"))];
        out.extend(self.set_call_state(id, CallStat::Active));
        out
    }

    /// Ids of the calls in one of `states`.
    fn ids_in(&self, states: &[CallStat]) -> Vec<u64> {
        self.calls
            .iter()
            .filter(|c| states.contains(&c.state))
            .map(|c| c.id)
            .collect()
    }

    /// `AT+CHLD=<n>` (27.007 §7.13, 22.030 §6.5.5): 0 releases held calls (or rejects a
    /// waiting one), 1 releases active calls and takes the other one, 1x releases call x,
    /// 2 holds the active calls and takes the held or waiting one (a swap), 2x keeps only
    /// call x active, 4 is explicit call transfer. Conferences (3) are not simulated.
    fn chld(&mut self, v: &str) -> Vec<Out> {
        let ok = || Out::Bytes(crlf("OK"));
        let setup = self.ids_in(&[CallStat::Dialing, CallStat::Alerting]);
        let ringing = self.ids_in(&[CallStat::Incoming, CallStat::Waiting]);
        let active = self.ids_in(&[CallStat::Active]);
        let held = self.ids_in(&[CallStat::Held]);
        match v {
            "0" => {
                let (targets, by) = if held.is_empty() {
                    (ringing, "rejected")
                } else {
                    (held, "gateway")
                };
                if targets.is_empty() {
                    return vec![Out::Bytes(self.error(3))];
                }
                let mut out = vec![ok()];
                for id in targets {
                    out.extend(self.end_call(id, None, 16, by));
                }
                out
            }
            "1" => {
                let mut out = vec![ok()];
                for id in active {
                    out.extend(self.end_call(id, None, 16, "gateway"));
                }
                if let Some(&id) = ringing.first().or(held.first()) {
                    out.extend(self.take_call(id));
                }
                out
            }
            "2" => {
                // A held call cannot be taken back while another call is being set up.
                if !setup.is_empty() || (active.is_empty() && held.is_empty() && ringing.is_empty())
                {
                    return vec![Out::Bytes(self.error(3))];
                }
                let mut out = vec![ok()];
                for id in active {
                    out.extend(self.set_call_state(id, CallStat::Held));
                }
                if let Some(&id) = ringing.first().or(held.first()) {
                    out.extend(self.take_call(id));
                }
                out
            }
            "4" => self.ect(&setup, &active, &held),
            _ => match (v.strip_prefix('1'), v.strip_prefix('2')) {
                (Some(x), _) if !x.is_empty() => match x.parse::<u8>() {
                    Ok(idx) => self.local_hangup(Some(idx)),
                    Err(_) => vec![Out::Bytes(self.error(3))],
                },
                (_, Some(x)) if !x.is_empty() => {
                    let Some(id) = x
                        .parse::<u8>()
                        .ok()
                        .and_then(|idx| self.calls.iter().find(|c| c.index == idx))
                        .filter(|c| matches!(c.state, CallStat::Active | CallStat::Held))
                        .map(|c| c.id)
                    else {
                        return vec![Out::Bytes(self.error(3))];
                    };
                    if !setup.is_empty() {
                        return vec![Out::Bytes(self.error(3))];
                    }
                    let mut out = vec![ok()];
                    for other in active.into_iter().filter(|a| *a != id) {
                        out.extend(self.set_call_state(other, CallStat::Held));
                    }
                    if held.contains(&id) {
                        out.extend(self.set_call_state(id, CallStat::Active));
                    }
                    out
                }
                _ => vec![Out::Bytes(self.error(4))],
            },
        }
    }

    /// Makes a held or ringing call the active one.
    fn take_call(&mut self, id: u64) -> Vec<Out> {
        if self
            .calls
            .iter()
            .any(|c| c.id == id && matches!(c.state, CallStat::Incoming | CallStat::Waiting))
        {
            self.emit(SimEvent::Answered { call: id });
        }
        self.set_call_state(id, CallStat::Active)
    }

    /// `AT+CHLD=4`: explicit call transfer (24.091). The network joins the held call to the
    /// other one when that one is active or alerting, and both leave this modem.
    fn ect(&mut self, setup: &[u64], active: &[u64], held: &[u64]) -> Vec<Out> {
        let alerting: Vec<u64> = setup
            .iter()
            .copied()
            .filter(|id| {
                self.calls
                    .iter()
                    .any(|c| c.id == *id && c.state == CallStat::Alerting)
            })
            .collect();
        let other = match (active, alerting.as_slice()) {
            ([a], []) | ([], [a]) => *a,
            _ => return vec![Out::Bytes(self.error(3))],
        };
        let ([held], 2) = (held, self.calls.len()) else {
            return vec![Out::Bytes(self.error(3))];
        };
        let held = *held;
        if self.faults.ect_refused {
            return vec![Out::Bytes(self.error(3))];
        }
        let mut out = vec![Out::Bytes(crlf("OK"))];
        for (id, with) in [(held, other), (other, held)] {
            if let Some(r) = self.call_log.iter_mut().find(|r| r.id == id) {
                r.transferred_with = Some(with);
            }
            out.extend(self.end_call(id, None, 16, "transferred"));
        }
        out
    }

    fn local_hangup(&mut self, index: Option<u8>) -> Vec<Out> {
        let ids: Vec<u64> = self
            .calls
            .iter()
            .filter(|c| index.is_none_or(|i| c.index == i))
            .map(|c| c.id)
            .collect();
        let mut out = vec![Out::Bytes(crlf("OK"))];
        for id in ids {
            out.extend(self.end_call(id, None, 16, "gateway"));
        }
        out
    }

    /// A timer fired.
    pub(crate) fn fire(&mut self, action: Scheduled) -> Vec<Out> {
        match action {
            Scheduled::Alert(id) => match self.calls.iter().find(|c| c.id == id) {
                Some(c) if c.state == CallStat::Dialing => {
                    self.set_call_state(id, CallStat::Alerting)
                }
                _ => Vec::new(),
            },
            Scheduled::Answer(id) => match self.calls.iter().find(|c| c.id == id) {
                Some(c) if matches!(c.state, CallStat::Dialing | CallStat::Alerting) => {
                    self.set_call_state(id, CallStat::Active)
                }
                _ => Vec::new(),
            },
            Scheduled::Busy(id) => self.end_call(id, Some("BUSY"), 17, "busy"),
            Scheduled::NoAnswer(id) => self.end_call(id, Some("NO ANSWER"), 19, "no-answer"),
            Scheduled::Ring(id) => match self.calls.iter().find(|c| c.id == id) {
                Some(c) if c.state == CallStat::Incoming => {
                    let c = c.clone();
                    let mut out = self.ring_urcs(&c);
                    if let Some(every) = self.cfg.ring_interval_ms {
                        out.push(Out::Schedule(
                            Duration::from_millis(every),
                            Scheduled::Ring(id),
                        ));
                    }
                    out
                }
                _ => Vec::new(),
            },
            Scheduled::StatusReport { mr, to, status } => {
                self.status_report(mr, &to, status).unwrap_or_default()
            }
        }
    }

    fn ring_urcs(&self, c: &SimCall) -> Vec<Out> {
        let mut out = Vec::new();
        out.push(Out::Bytes(crlf(if self.s.crc {
            "+CRING: VOICE"
        } else {
            "RING"
        })));
        if self.s.clip {
            out.push(Out::Bytes(crlf(&format!(
                "+CLIP: \"{}\",{},,,,0",
                c.number,
                toa(&c.number)
            ))));
        }
        out
    }

    // ------------------------------------------------------------ control

    /// An incoming call from `number`.
    pub(crate) fn incoming_call(&mut self, number: &str) -> Result<Vec<Out>, SimError> {
        if number.is_empty() || number.len() > 32 {
            return Err(SimError::Invalid(format!(
                "`{number}` is not a caller number"
            )));
        }
        if self.calls.len() >= 7 {
            return Err(SimError::Invalid("too many calls".to_owned()));
        }
        let id = self.next_call_id;
        self.next_call_id += 1;
        let c = SimCall {
            id,
            index: self.free_index(),
            dir: Direction::Incoming,
            state: CallStat::Incoming,
            number: number.to_owned(),
            started: Instant::now(),
        };
        self.call_log.push(SimCallRecord {
            id,
            direction: Direction::Incoming,
            number: number.to_owned(),
            answered: false,
            ended_by: None,
            transferred_with: None,
        });
        let mut out = self.state_urcs(&c, CallStat::Incoming, 0);
        out.extend(self.ring_urcs(&c));
        if let Some(every) = self.cfg.ring_interval_ms {
            out.push(Out::Schedule(
                Duration::from_millis(every),
                Scheduled::Ring(id),
            ));
        }
        self.calls.push(c);
        self.emit(SimEvent::IncomingCall {
            call: id,
            number: number.to_owned(),
        });
        Ok(out)
    }

    /// The far end hangs up (the most recent call).
    pub(crate) fn remote_hangup(&mut self) -> Result<Vec<Out>, SimError> {
        let c = self.calls.last().cloned().ok_or(SimError::NoCall)?;
        let text = if c.state == CallStat::Incoming {
            None
        } else {
            Some("NO CARRIER")
        };
        Ok(self.end_call(c.id, text, 16, "remote"))
    }

    /// The far end of call `id` hangs up (a ringing call stops ringing).
    pub(crate) fn remote_hangup_call(&mut self, id: u64) -> Result<Vec<Out>, SimError> {
        let c = self
            .calls
            .iter()
            .find(|c| c.id == id)
            .cloned()
            .ok_or(SimError::NoCall)?;
        let text = if c.state == CallStat::Incoming {
            None
        } else {
            Some("NO CARRIER")
        };
        Ok(self.end_call(c.id, text, 16, "remote"))
    }

    fn outgoing(&self) -> Result<u64, SimError> {
        self.calls
            .iter()
            .find(|c| {
                c.dir == Direction::Outgoing
                    && matches!(c.state, CallStat::Dialing | CallStat::Alerting)
            })
            .map(|c| c.id)
            .ok_or(SimError::NoCall)
    }

    /// The far end answers the outgoing call.
    pub(crate) fn remote_answer(&mut self) -> Result<Vec<Out>, SimError> {
        let id = self.outgoing()?;
        Ok(self.set_call_state(id, CallStat::Active))
    }

    /// The far end is busy.
    pub(crate) fn remote_busy(&mut self) -> Result<Vec<Out>, SimError> {
        let id = self.outgoing()?;
        Ok(self.end_call(id, Some("BUSY"), 17, "busy"))
    }

    /// The far end does not answer.
    pub(crate) fn remote_no_answer(&mut self) -> Result<Vec<Out>, SimError> {
        let id = self.outgoing()?;
        Ok(self.end_call(id, Some("NO ANSWER"), 19, "no-answer"))
    }

    /// DTMF digits from the far end, as the dialect's URCs.
    pub(crate) fn dtmf(&mut self, digits: &str) -> Result<Vec<Out>, SimError> {
        if !self.calls.iter().any(|c| c.state == CallStat::Active) {
            return Err(SimError::NoCall);
        }
        let mut out = Vec::new();
        for d in digits.chars().map(|c| c.to_ascii_uppercase()) {
            if !is_dtmf_digit(d) {
                return Err(SimError::Invalid(format!("`{d}` is not a DTMF digit")));
            }
            let line = match self.d.dtmf {
                DtmfUrc::Qtonedet => format!("+QTONEDET: {}", u32::from(d)),
                DtmfUrc::Ddtmf => format!("^DDTMF: {d}"),
                DtmfUrc::Rxdtmf => format!("+RXDTMF: {d}"),
            };
            out.push(Out::Bytes(crlf(&line)));
        }
        Ok(out)
    }

    /// Queues a scripted reply for the next USSD request.
    pub(crate) fn queue_ussd(&mut self, s: UssdScript) {
        self.ussd_queue.push_back(s);
    }

    /// A network-initiated USSD message.
    pub(crate) fn ussd_now(&mut self, s: &UssdScript) -> Vec<Out> {
        vec![Out::Bytes(crlf(&self.ussd_line(s)))]
    }

    /// Encodes `text` from `from` as SMS-DELIVER PDU(s) (multipart when long).
    pub(crate) fn encode_sms(&mut self, from: &str, text: &str) -> Result<Vec<String>, SimError> {
        let originator =
            Address::parse(from).map_err(|e| SimError::Invalid(format!("sender: {e}")))?;
        self.next_ref = self.next_ref.wrapping_add(1);
        let now = Utc::now().fixed_offset();
        let options = DeliverOptions {
            smsc: Some(
                Address::international("15550000000")
                    .map_err(|e| SimError::Invalid(e.to_string()))?,
            ),
            timestamp: Timestamp::from_datetime(&now)
                .map_err(|e| SimError::Invalid(e.to_string()))?,
            reference: ConcatRef::Eight(self.next_ref),
            class: None,
            status_report_indication: false,
        };
        let pdus = encode_deliver(&originator, text, &options)
            .map_err(|e| SimError::Invalid(e.to_string()))?;
        Ok(pdus.iter().map(|p| p.hex()).collect())
    }

    /// Delivers a PDU (hex, SMSC field first) as the network would.
    pub(crate) fn inject_pdu(&mut self, hex: &str) -> Result<Vec<Out>, SimError> {
        let hex = hex.trim().to_ascii_uppercase();
        let octets = from_hex(&hex).map_err(|e| SimError::Invalid(format!("PDU: {e}")))?;
        let smsc_len = usize::from(
            *octets
                .first()
                .ok_or_else(|| SimError::Invalid("empty PDU".to_owned()))?,
        );
        let tpdu_len = octets
            .len()
            .checked_sub(1 + smsc_len)
            .filter(|n| *n > 0)
            .ok_or_else(|| SimError::Invalid("PDU shorter than its SMSC field".to_owned()))?;
        Ok(self.deliver(hex, tpdu_len))
    }

    fn deliver(&mut self, pdu: String, tpdu_len: usize) -> Vec<Out> {
        let mt = self.s.cnmi.get(1).copied().unwrap_or(0);
        if mt == 2 {
            self.unacked_direct += 1;
            self.emit(SimEvent::SmsDelivered { index: None });
            return vec![Out::Bytes(
                format!("\r\n+CMT: ,{tpdu_len}\r\n{pdu}\r\n").into_bytes(),
            )];
        }
        self.store(
            Stored {
                stat: 0,
                pdu,
                tpdu_len,
            },
            mt != 0,
            false,
        )
    }

    fn store(&mut self, m: Stored, announce: bool, report: bool) -> Vec<Out> {
        let free = if self.faults.memory_full {
            None
        } else {
            self.storage.iter().position(Option::is_none)
        };
        let Some(slot) = free else {
            let mut out = Vec::new();
            if !report {
                self.network_queue.push_back((m.pdu, m.tpdu_len));
            }
            if !self.memfull_reported {
                self.memfull_reported = true;
                self.emit(SimEvent::MemoryFull);
                if let Some(u) = self.d.memfull_urc {
                    out.push(Out::Bytes(crlf(u)));
                }
            }
            return out;
        };
        if let Some(s) = self.storage.get_mut(slot) {
            *s = Some(m);
        }
        let index = self.index_of(slot);
        self.emit(SimEvent::SmsDelivered { index: Some(index) });
        if !announce {
            return Vec::new();
        }
        let urc = if report { "+CDSI" } else { "+CMTI" };
        vec![Out::Bytes(crlf(&format!(
            "{urc}: \"{}\",{index}",
            self.d.memory
        )))]
    }

    /// A status report for message reference `mr`.
    pub(crate) fn status_report(
        &mut self,
        mr: u8,
        to: &str,
        status: u8,
    ) -> Result<Vec<Out>, SimError> {
        let now = Timestamp::from_datetime(&Utc::now().fixed_offset())
            .map_err(|e| SimError::Invalid(e.to_string()))?;
        let recipient =
            Address::parse(to).map_err(|e| SimError::Invalid(format!("recipient: {e}")))?;
        let pdu = Pdu {
            smsc: Some(
                Address::international("15550000000")
                    .map_err(|e| SimError::Invalid(e.to_string()))?,
            ),
            tpdu: Tpdu::StatusReport(StatusReport {
                more_messages: false,
                loop_prevention: false,
                command_report: false,
                message_reference: mr,
                recipient,
                timestamp: now,
                discharge_time: now,
                status: Status(status),
                pid: None,
                dcs: None,
                user_data: None,
            }),
        }
        .encode()
        .map_err(|e| SimError::Invalid(e.to_string()))?;
        self.emit(SimEvent::StatusReportSent { mr });
        let ds = self.s.cnmi.get(3).copied().unwrap_or(0);
        Ok(match ds {
            1 => vec![Out::Bytes(
                format!("\r\n+CDS: {}\r\n{}\r\n", pdu.tpdu_len, pdu.hex()).into_bytes(),
            )],
            2 => self.store(
                Stored {
                    stat: 0,
                    pdu: pdu.hex(),
                    tpdu_len: pdu.tpdu_len,
                },
                true,
                true,
            ),
            _ => Vec::new(),
        })
    }

    /// Forces (or clears) a full SMS memory.
    pub(crate) fn set_memory_full(&mut self, full: bool) -> Vec<Out> {
        self.faults.memory_full = full;
        let mut out = Vec::new();
        if !full {
            self.memfull_reported = false;
            while !self.storage_full() {
                let Some((pdu, len)) = self.network_queue.pop_front() else {
                    break;
                };
                out.extend(self.deliver(pdu, len));
            }
        }
        out
    }

    /// Adds a fault trigger for commands starting with `prefix`, applied to `times`
    /// commands after `skip` matching ones went through.
    pub(crate) fn add_trigger(&mut self, prefix: &str, action: FaultAction, skip: u32, times: u32) {
        self.faults.triggers.push(Trigger {
            prefix: prefix.to_ascii_uppercase(),
            action,
            skip,
            remaining: times.max(1),
        });
    }

    /// Reboots: settings and calls are lost, storage survives.
    pub(crate) fn reboot(&mut self) -> Vec<Out> {
        self.s = Settings::boot(self.cfg.pin.is_some());
        for c in std::mem::take(&mut self.calls) {
            if let Some(r) = self.call_log.iter_mut().find(|r| r.id == c.id) {
                r.ended_by = Some("reboot".to_owned());
            }
        }
        self.prompt = None;
        self.body.clear();
        self.line.clear();
        self.unacked_direct = 0;
        self.reboots += 1;
        self.audio.active = false;
        self.emit(SimEvent::Rebooted);
        vec![Out::Reboot(Duration::from_millis(self.cfg.boot_delay_ms))]
    }

    /// The boot URCs (after the boot delay). Input that arrived while "booting" is dropped.
    pub(crate) fn boot_urcs(&mut self) -> Vec<Out> {
        self.line.clear();
        let mut s = String::new();
        for l in self.d.boot {
            s.push_str(&format!("\r\n{l}\r\n"));
        }
        vec![Out::Bytes(s.into_bytes())]
    }

    // -------------------------------------------------------------- audio

    /// One 20 ms tick of the voice port: the frame to send (caller audio, or silence), and
    /// whether the port is active. `input` is what the gateway sent since the last tick.
    pub(crate) fn audio_tick(&mut self, input: &[u8], frame: &mut Vec<u8>) -> bool {
        frame.clear();
        if !self.audio.active {
            return false;
        }
        let mut bytes = input.iter().copied();
        if let Some(lo) = self.audio.odd.take()
            && let Some(hi) = bytes.next()
        {
            self.audio.recorded.push(i16::from_le_bytes([lo, hi]));
        }
        loop {
            match (bytes.next(), bytes.next()) {
                (Some(lo), Some(hi)) => self.audio.recorded.push(i16::from_le_bytes([lo, hi])),
                (Some(lo), None) => {
                    self.audio.odd = Some(lo);
                    break;
                }
                _ => break,
            }
        }
        for _ in 0..FRAME_SAMPLES {
            let s = self.audio.queue.pop_front().unwrap_or(0);
            frame.extend_from_slice(&s.to_le_bytes());
        }
        true
    }

    /// Queues caller audio.
    pub(crate) fn queue_audio(&mut self, samples: &[i16]) {
        self.audio.queue.extend(samples.iter().copied());
    }

    /// Samples of caller audio not yet played.
    pub(crate) fn audio_queued(&self) -> usize {
        self.audio.queue.len()
    }

    /// The recording of what the gateway sent.
    pub(crate) fn recorded(&self) -> &[i16] {
        &self.audio.recorded
    }

    /// Takes the recording.
    pub(crate) fn take_recorded(&mut self) -> Vec<i16> {
        std::mem::take(&mut self.audio.recorded)
    }

    /// Whether the voice port is active.
    pub(crate) fn audio_active(&self) -> bool {
        self.audio.active
    }

    /// Stored messages (index, stat, PDU hex).
    pub(crate) fn stored(&self) -> Vec<(u32, u8, String)> {
        self.storage
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                s.as_ref()
                    .map(|m| (self.index_of(i), m.stat, m.pdu.clone()))
            })
            .collect()
    }

    /// Messages the network holds back because the memory is full.
    pub(crate) fn network_queue_len(&self) -> usize {
        self.network_queue.len()
    }

    /// Current calls as (id, direction, state, number).
    pub(crate) fn calls(&self) -> Vec<(u64, Direction, CallStat, String)> {
        self.calls
            .iter()
            .map(|c| (c.id, c.dir, c.state, c.number.clone()))
            .collect()
    }
}

/// The SUBMIT in `hex` (with a TPDU of `len` octets), if it is one.
fn decode_submit(hex: &str, len: usize) -> Option<Submit> {
    match Pdu::from_hex_with_tpdu_len(hex, len).ok()?.tpdu {
        Tpdu::Submit(s) => Some(s),
        _ => None,
    }
}

/// Commands that need an unlocked SIM.
const SIM_COMMANDS: &[&str] = &[
    "+CIMI", "+CCID", "+QCCID", "^ICCID", "+CICCID", "+CNUM", "+CMGR", "+CMGL", "+CMGS", "+CMGD",
    "+CMGW", "+CMSS", "+CPMS", "+CUSD",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modem::pdu::{SubmitOptions, encode_submit};

    fn core(profile: SimProfile) -> SimCore {
        let (events, _) = broadcast::channel(64);
        let mut c = SimCore::new(SimConfig::new(profile), events);
        run(&mut c, "ATE0");
        run(&mut c, "AT+CMEE=1");
        c
    }

    /// What the modem wrote, as text (timers and pauses left out).
    fn text(outs: &[Out]) -> String {
        outs.iter()
            .filter_map(|o| match o {
                Out::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
                _ => None,
            })
            .collect()
    }

    fn run(c: &mut SimCore, line: &str) -> String {
        text(&c.feed(format!("{line}\r").as_bytes()))
    }

    fn submit(text: &str) -> (String, usize) {
        let to = Address::parse("+15551234567").unwrap_or_else(|e| panic!("{e}"));
        let p =
            encode_submit(&to, text, &SubmitOptions::default()).unwrap_or_else(|e| panic!("{e}"));
        let p = p.first().unwrap_or_else(|| panic!("no part"));
        (p.hex(), p.tpdu_len)
    }

    fn write(c: &mut SimCore, hex: &str, len: usize, stat: Option<u8>) -> String {
        let cmd = match stat {
            Some(s) => format!("AT+CMGW={len},{s}"),
            None => format!("AT+CMGW={len}"),
        };
        assert!(run(c, &cmd).contains("> "));
        text(&c.feed(format!("{hex}\x1a").as_bytes()))
    }

    #[test]
    fn write_send_from_storage_and_list_by_stat() {
        let mut c = core(SimProfile::QuectelEc25);
        let (hex, len) = submit("from storage");
        let r = write(&mut c, &hex, len, None);
        assert!(r.contains("+CMGW: 0") && r.contains("OK"), "{r:?}");
        assert_eq!(
            c.stored(),
            vec![(0, 2, hex.clone())],
            "stored unsent by default"
        );
        assert!(run(&mut c, "AT+CMGL=2").contains("+CMGL: 0,2,,"));
        assert!(!run(&mut c, "AT+CMGL=0").contains("+CMGL"));
        assert!(c.sent.is_empty());

        let r = run(&mut c, "AT+CMSS=0");
        assert!(r.contains("+CMSS: 0") && r.contains("OK"), "{r:?}");
        assert_eq!(c.sent.len(), 1);
        assert_eq!(c.sent[0].text.as_deref(), Some("from storage"));
        assert_eq!(c.stored()[0].1, 3, "stored sent");
        assert!(run(&mut c, "AT+CMGL=3").contains("+CMGL: 0,3,,"));
        assert!(run(&mut c, "AT+CMGR=0").contains("+CMGR: 3,,"));
        // Sending it again is the gateway's choice: the modem does it.
        assert!(run(&mut c, "AT+CMSS=0").contains("+CMSS: 1"));
        assert!(run(&mut c, "AT+CMGD=0").contains("OK"));
        assert!(run(&mut c, "AT+CMSS=0").contains("+CMS ERROR: 321"));
        assert!(run(&mut c, "AT+CMSS=99").contains("+CMS ERROR: 321"));
    }

    #[test]
    fn write_checks_stat_pdu_and_space() {
        let mut c = core(SimProfile::HuaweiE1550);
        let (hex, len) = submit("x");
        // A SUBMIT is not a received message.
        assert!(write(&mut c, &hex, len, Some(1)).contains("+CMS ERROR: 304"));
        assert!(run(&mut c, &format!("AT+CMGW={len},7")).contains("+CMS ERROR: 304"));
        assert!(write(&mut c, "ZZ", len, Some(2)).contains("+CMS ERROR: 304"));
        // SIM storage counts from 1; a full memory refuses the write.
        assert!(write(&mut c, &hex, len, Some(3)).contains("+CMGW: 1"));
        c.set_memory_full(true);
        assert!(write(&mut c, &hex, len, Some(2)).contains("+CMS ERROR: 322"));
        // ESC at the prompt stores nothing.
        assert!(run(&mut c, &format!("AT+CMGW={len}")).contains("> "));
        assert!(text(&c.feed(b"0011\x1b")).contains("OK"));
        assert_eq!(c.stored().len(), 1);
    }

    #[test]
    fn lost_reply_still_sends() {
        let mut c = core(SimProfile::QuectelEc25);
        let (hex, len) = submit("reply lost");
        write(&mut c, &hex, len, None);
        c.add_trigger("AT+CMSS", FaultAction::NoReply, 0, 1);
        assert_eq!(run(&mut c, "AT+CMSS=0"), "");
        assert_eq!(c.sent.len(), 1);
        assert_eq!(c.stored()[0].1, 3);
        // The trigger skipped the first matching command.
        c.add_trigger("AT+CMSS", FaultAction::Error("ERROR".into()), 1, 1);
        assert!(run(&mut c, "AT+CMSS=0").contains("+CMSS:"));
        assert!(run(&mut c, "AT+CMSS=0").contains("ERROR"));
    }

    fn states(c: &SimCore) -> Vec<(String, CallStat)> {
        let mut v: Vec<(String, CallStat)> =
            c.calls().into_iter().map(|(_, _, s, n)| (n, s)).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    #[test]
    fn hold_dial_swap_and_transfer() {
        let mut c = core(SimProfile::QuectelEc25);
        run(&mut c, "AT+QINDCFG=\"ccinfo\",1,0");
        assert!(
            run(&mut c, "AT+CHLD=2").contains("+CME ERROR: 3"),
            "no call"
        );
        c.incoming_call("+1001").unwrap_or_else(|e| panic!("{e}"));
        assert!(run(&mut c, "ATA").contains("OK"));
        assert!(run(&mut c, "AT+CHLD=2").contains("OK"));
        assert_eq!(states(&c), vec![("+1001".into(), CallStat::Held)]);
        assert!(run(&mut c, "ATD+1002;").contains("OK"));
        // No retrieve while the second call is being set up; ECT needs it alerting.
        assert!(run(&mut c, "AT+CHLD=2").contains("+CME ERROR: 3"));
        assert!(run(&mut c, "AT+CHLD=4").contains("+CME ERROR: 3"));
        let b = c.outgoing().unwrap_or_else(|e| panic!("{e}"));
        c.fire(Scheduled::Alert(b));
        c.remote_answer().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            states(&c),
            vec![
                ("+1001".into(), CallStat::Held),
                ("+1002".into(), CallStat::Active)
            ]
        );
        // Swap, refused transfer, swap back.
        assert!(run(&mut c, "AT+CHLD=2").contains("OK"));
        assert_eq!(
            states(&c),
            vec![
                ("+1001".into(), CallStat::Active),
                ("+1002".into(), CallStat::Held)
            ]
        );
        c.faults.ect_refused = true;
        assert!(run(&mut c, "AT+CHLD=4").contains("+CME ERROR: 3"));
        assert_eq!(c.calls().len(), 2);
        c.faults.ect_refused = false;
        let r = run(&mut c, "AT+CHLD=4");
        assert!(r.starts_with("\r\nOK\r\n"), "{r:?}");
        assert_eq!(r.matches("\"ccinfo\"").count(), 2, "both released: {r:?}");
        assert!(c.calls().is_empty());
        let ids: Vec<u64> = c.call_log.iter().map(|r| r.id).collect();
        for (r, other) in c.call_log.iter().zip(ids.iter().rev()) {
            assert_eq!(r.ended_by.as_deref(), Some("transferred"));
            assert_eq!(r.transferred_with, Some(*other));
        }
    }

    #[test]
    fn dial_holds_the_active_call_and_chld_releases() {
        let mut c = core(SimProfile::Sim7600);
        run(&mut c, "AT+CLCC=1");
        c.incoming_call("+2001").unwrap_or_else(|e| panic!("{e}"));
        assert!(
            run(&mut c, "ATD+2002;").contains("+CME ERROR: 3"),
            "ringing"
        );
        run(&mut c, "ATA");
        let r = run(&mut c, "ATD+2002;");
        assert!(
            r.contains("+CLCC: 1,1,1,"),
            "the active call is held first: {r:?}"
        );
        let b = c.outgoing().unwrap_or_else(|e| panic!("{e}"));
        c.fire(Scheduled::Answer(b));
        // 1: release the active call, take the held one back.
        assert!(run(&mut c, "AT+CHLD=1").contains("OK"));
        assert_eq!(states(&c), vec![("+2001".into(), CallStat::Active)]);
        // 0 with nothing held or waiting is refused; 1x releases by index.
        assert!(run(&mut c, "AT+CHLD=0").contains("+CME ERROR: 3"));
        assert!(run(&mut c, "AT+CHLD=11").contains("OK"));
        assert!(c.calls().is_empty());
        assert!(run(&mut c, "AT+CHLD=3").contains("+CME ERROR: 4"));
        assert!(run(&mut c, "AT+CHLD=?").contains("+CHLD: (0,1,1x,2,2x,4)"));
    }
}
