//! SMS (3GPP TS 27.005): the settings commands (`+CMGF`, `+CSCA`, `+CSMP`, `+CSDH`, `+CSMS`,
//! `+CNMI`, `+CNMA`, `+CPMS`), the message commands (`+CMGR`, `+CMGL`, `+CMGS`, `+CMGW`,
//! `+CMSS`, `+CMGD`) in PDU mode ([`pdu`]) and text mode ([`text`]), the storage
//! ([`storage`]), and what the network does ([`inbound`]: delivering messages and status
//! reports, holding them back while the memory is full).
//!
//! The storage holds PDUs whatever the mode; text mode renders and parses them (27.005 §3-4).
//! Storage and the SMSC address live on the SIM: they survive reboots, the settings do not.

mod inbound;
mod pdu;
mod storage;
mod text;

use std::collections::VecDeque;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::commands::{Cmd, Reply, Spec};
use super::line::Op;
use super::{Out, Scheduled, SimCore, line_out, network};
use crate::modem::pdu::{Submit, ValidityPeriod};
use crate::simulator::SimulatorEvent;
use crate::simulator::dialect::Dialect;

pub(crate) use self::inbound::status_report;
pub(super) use self::storage::Memories;

/// One SMS part the gateway sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentSmsRecord {
    /// Message reference the simulator assigned (`+CMGS: <mr>`).
    pub mr: u8,
    /// Recipient.
    pub to: String,
    /// Decoded text of this part (`None` for 8-bit data).
    pub text: Option<String>,
    /// The PDU hex as sent (SMSC field included; in text mode the PDU the modem built).
    pub pdu: String,
    /// The TPDU length (the `AT+CMGS` argument in PDU mode).
    pub tpdu_len: usize,
    /// A status report was requested.
    pub status_report: bool,
    /// Concatenation: (reference, total, sequence).
    pub concat: Option<(u16, u8, u8)>,
}

/// What the `> ` prompt collects a body for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Prompt {
    /// `AT+CMGS=<length>` (PDU mode): send it.
    SendPdu {
        /// TPDU length.
        len: usize,
    },
    /// `AT+CMGW=<length>[,<stat>]` (PDU mode): store it.
    WritePdu {
        /// TPDU length.
        len: usize,
        /// Storage status to give it.
        stat: u8,
    },
    /// `AT+CMGS="<da>"[,<toda>]` (text mode): build a SUBMIT from the text and send it.
    SendText {
        /// Destination, decoded from the TE character set.
        to: String,
        /// Its type of address.
        toa: u8,
    },
    /// `AT+CMGW="<da>"[,<toda>[,<stat>]]` (text mode): build a SUBMIT and store it.
    WriteText {
        /// Destination.
        to: String,
        /// Its type of address.
        toa: u8,
        /// Storage status (2 or 3).
        stat: u8,
    },
}

impl Prompt {
    /// A text-mode body (a `<CR>` in it is a line break).
    pub(super) fn is_text(&self) -> bool {
        matches!(self, Self::SendText { .. } | Self::WriteText { .. })
    }

    /// The command prefix fault triggers are keyed by.
    fn trigger_prefix(&self) -> &'static str {
        match self {
            Self::SendPdu { .. } | Self::SendText { .. } => "AT+CMGS=",
            Self::WritePdu { .. } | Self::WriteText { .. } => "AT+CMGW=",
        }
    }
}

/// `+CSMP` text-mode parameters of outgoing messages (27.005 §3.3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Csmp {
    /// First octet of the SMS-SUBMIT (17: relative validity; 49: and a status report).
    pub(super) fo: u8,
    /// Validity period (relative, or absolute; none when `<fo>` has no TP-VPF).
    pub(super) vp: Option<ValidityPeriod>,
    pub(super) pid: u8,
    pub(super) dcs: u8,
}

impl Default for Csmp {
    fn default() -> Self {
        Self {
            fo: 17,
            vp: Some(ValidityPeriod::Relative(167)),
            pid: 0,
            dcs: 0,
        }
    }
}

/// Settings a reboot resets.
#[derive(Debug, Clone)]
pub(super) struct SmsSettings {
    pub(super) text_mode: bool,
    pub(super) cnmi: [u8; 5],
    pub(super) csms: u8,
    pub(super) csmp: Csmp,
    pub(super) csdh: bool,
    /// `+CPMS` memories: read/delete, write/send, receive.
    pub(super) mems: [&'static str; 3],
}

impl SmsSettings {
    fn boot(d: &Dialect) -> Self {
        Self {
            text_mode: false,
            cnmi: [0; 5],
            csms: 0,
            csmp: Csmp::default(),
            csdh: false,
            mems: [d.memory; 3],
        }
    }
}

/// The SMS family's state.
#[derive(Debug)]
pub(crate) struct Sms {
    pub(super) cfg: SmsSettings,
    /// Every memory (they survive reboots; `cfg.mems` says which is used for what).
    pub(super) storage: Memories,
    /// `+CSCA`: address and type (on the SIM).
    csca: (String, u8),
    /// Messages the network holds back while the memory is full.
    pub(super) network_queue: VecDeque<(String, usize)>,
    /// Status reports the network holds back while their memory is full.
    pub(super) report_queue: VecDeque<storage::Stored>,
    memfull_reported: bool,
    /// Direct deliveries (`+CMT`, `+CDS`) waiting for `AT+CNMA`.
    unacked_direct: u32,
    /// SMS URCs held while `+CNMI` mode is 0 (27.005 §3.4.1).
    buffered: Vec<Out>,
    next_mr: u8,
    pub(super) next_ref: u8,
    /// SMS parts the gateway sent.
    pub(crate) sent: Vec<SentSmsRecord>,
    /// How many of them went out with `AT+CMGS` (at least once across gateway crashes).
    pub(super) cmgs_sends: usize,
    /// Status reports the modem dropped (`<ds>` asked for none; a full memory makes the
    /// network hold them back instead): a test waiting for a delivery that can never be
    /// reported says so.
    pub(super) reports_lost: Vec<u8>,
}

impl Sms {
    pub(super) fn new(d: &Dialect, slots: u32) -> Self {
        Self {
            cfg: SmsSettings::boot(d),
            storage: Memories::new(d, slots),
            csca: ("+15550000000".to_owned(), 145),
            network_queue: VecDeque::new(),
            report_queue: VecDeque::new(),
            memfull_reported: false,
            unacked_direct: 0,
            buffered: Vec::new(),
            next_mr: 0,
            next_ref: 0,
            sent: Vec::new(),
            cmgs_sends: 0,
            reports_lost: Vec::new(),
        }
    }

    pub(super) fn reboot(&mut self, d: &Dialect) {
        self.cfg = SmsSettings::boot(d);
        self.unacked_direct = 0;
        self.buffered.clear();
    }

    /// Stored messages of every memory (index, stat, PDU hex).
    pub(crate) fn stored(&self) -> Vec<(u32, u8, String)> {
        self.storage
            .list_all()
            .into_iter()
            .map(|(_, i, s, p)| (i, s, p))
            .collect()
    }

    /// Stored messages with their memory (memory, index, stat, PDU hex).
    pub(crate) fn stored_by_memory(&self) -> Vec<(String, u32, u8, String)> {
        self.storage
            .list_all()
            .into_iter()
            .map(|(m, i, s, p)| (m.to_owned(), i, s, p))
            .collect()
    }

    /// Parts the gateway sent with `AT+CMGS` (not from storage).
    pub(crate) fn cmgs_sends(&self) -> usize {
        self.cmgs_sends
    }

    /// Message references of the status reports the modem dropped.
    pub(crate) fn reports_lost(&self) -> &[u8] {
        &self.reports_lost
    }

    /// `<mem1>`: where `+CMGR`, `+CMGL` and `+CMGD` look.
    pub(super) fn read_mem(&self) -> &storage::Storage {
        self.storage.get(self.cfg.mems[0])
    }

    pub(super) fn read_mem_mut(&mut self) -> &mut storage::Storage {
        self.storage.get_mut(self.cfg.mems[0])
    }

    /// `<mem2>`: where `+CMGW` writes and `+CMSS` sends from.
    pub(super) fn write_mem(&self) -> &storage::Storage {
        self.storage.get(self.cfg.mems[1])
    }

    pub(super) fn write_mem_mut(&mut self) -> &mut storage::Storage {
        self.storage.get_mut(self.cfg.mems[1])
    }

    /// Messages the network holds back because the memory is full.
    pub(crate) fn network_queue_len(&self) -> usize {
        self.network_queue.len()
    }
}

pub(super) const COMMANDS: &[Spec] = &[
    Spec::all("+CMGF", cmgf),
    Spec::all("+CSCA", csca),
    Spec::all("+CSMP", csmp),
    Spec::all("+CSDH", csdh),
    Spec::all("+CSMS", csms),
    Spec::all("+CNMI", cnmi),
    Spec::all("+CNMA", cnma),
    Spec::sim("+CPMS", storage::cpms),
    Spec::sim("+CMGR", cmgr),
    Spec::sim("+CMGL", cmgl),
    Spec::sim("+CMGS", cmgs),
    Spec::sim("+CMGW", cmgw),
    Spec::sim("+CMSS", cmss),
    Spec::sim("+CMGD", storage::cmgd),
];

fn cmgf(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    match cmd.op {
        Op::Read => Reply::line(format!("+CMGF: {}", u8::from(c.sms.cfg.text_mode))),
        Op::Test => Reply::line("+CMGF: (0,1)"),
        Op::Exec => {
            c.sms.cfg.text_mode = false;
            Reply::ok()
        }
        Op::Set => match cmd.args.int::<u8>(0, "mode") {
            Ok(m @ 0..=1) => {
                c.sms.cfg.text_mode = m == 1;
                Reply::ok()
            }
            _ => Reply::error(),
        },
    }
}

fn csca(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    match cmd.op {
        Op::Read => {
            let (sca, tosca) = &c.sms.csca;
            let sca = c.general.charset.encode(sca);
            Reply::line(format!("+CSCA: \"{sca}\",{tosca}"))
        }
        Op::Test => Reply::ok(),
        Op::Exec => Reply::error(),
        Op::Set => {
            let raw = cmd.args.opt_text(0).unwrap_or("");
            let Some(sca) = c.general.charset.decode(raw.as_bytes()) else {
                return Reply::cms(304);
            };
            let tosca = match cmd.args.opt_int::<u8>(1, "tosca") {
                Ok(t) => t.unwrap_or(if sca.starts_with('+') { 145 } else { 129 }),
                Err(_) => return Reply::error(),
            };
            c.sms.csca = (sca, tosca);
            Reply::ok()
        }
    }
}

fn csmp(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    match cmd.op {
        Op::Read => {
            let p = &c.sms.cfg.csmp;
            let vp = match &p.vp {
                Some(ValidityPeriod::Relative(v)) => v.to_string(),
                Some(ValidityPeriod::Absolute(t)) => format!("\"{}\"", text::scts(t)),
                _ => String::new(),
            };
            Reply::line(format!("+CSMP: {},{vp},{},{}", p.fo, p.pid, p.dcs))
        }
        Op::Test => Reply::ok(),
        Op::Exec => Reply::error(),
        Op::Set => match text::parse_csmp(&cmd.args, &c.sms.cfg.csmp) {
            Some(p) => {
                c.sms.cfg.csmp = p;
                Reply::ok()
            }
            None => Reply::cms(305),
        },
    }
}

fn csdh(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    match cmd.op {
        Op::Read => Reply::line(format!("+CSDH: {}", u8::from(c.sms.cfg.csdh))),
        Op::Test => Reply::line("+CSDH: (0,1)"),
        Op::Exec => {
            c.sms.cfg.csdh = false;
            Reply::ok()
        }
        Op::Set => match cmd.args.int::<u8>(0, "show") {
            Ok(v @ 0..=1) => {
                c.sms.cfg.csdh = v == 1;
                Reply::ok()
            }
            _ => Reply::error(),
        },
    }
}

fn csms(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    match cmd.op {
        Op::Read => Reply::line(format!("+CSMS: {},1,1,1", c.sms.cfg.csms)),
        Op::Test => Reply::line("+CSMS: (0,1)"),
        Op::Exec => Reply::error(),
        Op::Set => match cmd.args.int::<u8>(0, "service") {
            Ok(s @ 0..=1) => {
                c.sms.cfg.csms = s;
                Reply::line("+CSMS: 1,1,1")
            }
            _ => Reply::cms(303),
        },
    }
}

/// `+CNMI=<mode>[,<mt>[,<bm>[,<ds>[,<bfr>]]]]`: mode 0 holds the SMS URCs in the modem;
/// a later mode 1-3 flushes them after `OK` (`<bfr>` 0) or drops them (`<bfr>` 1).
fn cnmi(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    match cmd.op {
        Op::Read => {
            let v = c.sms.cfg.cnmi;
            Reply::line(format!(
                "+CNMI: {},{},{},{},{}",
                v[0], v[1], v[2], v[3], v[4]
            ))
        }
        Op::Test => Reply::line("+CNMI: (0-2),(0-3),(0,2),(0-2),(0,1)"),
        Op::Exec => Reply::error(),
        Op::Set => {
            const MAX: [u8; 5] = [2, 3, 2, 2, 1];
            let mut v = [0u8; 5];
            for (i, slot) in v.iter_mut().enumerate() {
                match cmd.args.opt_int::<u8>(i, "cnmi") {
                    Ok(x) => *slot = x.unwrap_or(0),
                    Err(_) => return Reply::cms(303),
                }
            }
            if v.iter().zip(MAX).any(|(x, max)| *x > max) || v[2] == 1 {
                return Reply::cms(303);
            }
            c.sms.cfg.cnmi = v;
            let held = std::mem::take(&mut c.sms.buffered);
            if v[0] != 0 && v[4] == 0 {
                Reply::ok().then(held)
            } else {
                if v[0] == 0 {
                    c.sms.buffered = held;
                }
                Reply::ok()
            }
        }
    }
}

fn cnma(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    match cmd.op {
        Op::Test if c.sms.cfg.text_mode => Reply::ok(),
        Op::Test => Reply::line("+CNMA: (0-2)"),
        Op::Read => Reply::error(),
        Op::Set if c.sms.cfg.text_mode => Reply::error(),
        Op::Set if !matches!(cmd.args.int::<u8>(0, "n"), Ok(0..=2)) => Reply::cms(304),
        Op::Exec | Op::Set => {
            if c.sms.unacked_direct > 0 {
                c.sms.unacked_direct -= 1;
                Reply::ok()
            } else {
                Reply::cms(340)
            }
        }
    }
}

fn cmgr(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    match cmd.op {
        Op::Test => Reply::ok(),
        Op::Set => {
            let Ok(index) = cmd.args.int::<u32>(0, "index") else {
                return Reply::cms(if c.sms.cfg.text_mode { 305 } else { 304 });
            };
            if c.sms.read_mem().slot_of(index).is_none() {
                return Reply::cms(321);
            }
            let lines = if c.sms.cfg.text_mode {
                text::read(c, index)
            } else {
                pdu::read(c, index)
            };
            c.sms.read_mem_mut().mark_read(index);
            Reply::ok().before(lines)
        }
        _ => Reply::error(),
    }
}

fn cmgl(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    let text_mode = c.sms.cfg.text_mode;
    match cmd.op {
        Op::Test if text_mode => {
            Reply::line("+CMGL: (\"REC UNREAD\",\"REC READ\",\"STO UNSENT\",\"STO SENT\",\"ALL\")")
        }
        Op::Test => Reply::line("+CMGL: (0-4)"),
        Op::Exec | Op::Set => {
            let stat = if text_mode {
                match cmd.args.opt_text(0) {
                    None => Some(0),
                    Some(s) => text::stat_code(s),
                }
            } else {
                match cmd.args.opt_int::<u8>(0, "stat") {
                    Ok(None) => Some(0),
                    Ok(Some(s @ 0..=4)) => Some(s),
                    _ => None,
                }
            };
            let Some(stat) = stat else {
                return Reply::cms(if text_mode { 305 } else { 304 });
            };
            let indexes = c.sms.read_mem().indexes_with(stat);
            let lines = if text_mode {
                text::list(c, &indexes)
            } else {
                pdu::list(c, &indexes)
            };
            for i in indexes {
                c.sms.read_mem_mut().mark_read(i);
            }
            Reply::ok().before(lines)
        }
        Op::Read => Reply::error(),
    }
}

fn cmgs(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    match cmd.op {
        Op::Test => Reply::ok(),
        Op::Set => {
            let p = if c.sms.cfg.text_mode {
                match text::destination(c, &cmd.args) {
                    Some((to, toa)) => Prompt::SendText { to, toa },
                    None => return Reply::cms(305),
                }
            } else {
                match pdu::length(&cmd.args) {
                    Some(len) => Prompt::SendPdu { len },
                    None => return Reply::cms(304),
                }
            };
            open_prompt(c, p)
        }
        _ => Reply::error(),
    }
}

fn cmgw(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    match cmd.op {
        Op::Test => Reply::ok(),
        Op::Set => {
            let p = if c.sms.cfg.text_mode {
                let Some((to, toa)) = text::destination(c, &cmd.args) else {
                    return Reply::cms(305);
                };
                let stat = match cmd.args.opt_text(2) {
                    None => Some(2),
                    Some(s) => text::stat_code(s).filter(|s| matches!(s, 2 | 3)),
                };
                match stat {
                    Some(stat) => Prompt::WriteText { to, toa, stat },
                    None => return Reply::cms(305),
                }
            } else {
                // `<stat>` defaults to 2 (stored unsent).
                let stat = match cmd.args.opt_int::<u8>(1, "stat") {
                    Ok(s) => s.unwrap_or(2),
                    Err(_) => return Reply::cms(304),
                };
                match pdu::length(&cmd.args) {
                    Some(len) if stat <= 3 => Prompt::WritePdu { len, stat },
                    _ => return Reply::cms(304),
                }
            };
            open_prompt(c, p)
        }
        _ => Reply::error(),
    }
}

/// Opens the `> ` prompt for `p`.
fn open_prompt(c: &mut SimCore, p: Prompt) -> Reply {
    c.line.open_prompt(p);
    Reply {
        info: vec![Out::Bytes(b"\r\n> ".to_vec())],
        fin: super::commands::Final::Prompt,
        after: Vec::new(),
    }
}

/// The body of a prompt arrived (Ctrl-Z): apply the command's fault trigger, then send or
/// store it.
pub(super) fn prompt_body(c: &mut SimCore, p: Prompt, body: &[u8]) -> Vec<Out> {
    let fault = c.faults.take_trigger(p.trigger_prefix());
    c.reply_with_fault(fault, Vec::new(), |c| {
        let reply = match p {
            Prompt::SendPdu { len } => pdu::send_body(c, len, body),
            Prompt::WritePdu { len, stat } => pdu::write_body(c, len, stat, body),
            Prompt::SendText { to, toa } => text::send_body(c, &to, toa, body),
            Prompt::WriteText { to, toa, stat } => text::write_body(c, &to, toa, stat, body),
        };
        let mut bytes = reply.info;
        bytes.push(match reply.fin {
            super::commands::Final::Error(f) => Out::Bytes(c.failure(f)),
            super::commands::Final::Text(t) => line_out(t),
            _ => line_out("OK"),
        });
        bytes.extend(reply.after);
        bytes
    })
}

/// `AT+CMSS=<index>[,<da>[,<toda>]]`: sends a stored SUBMIT (to `<da>` when given, else to its
/// own destination) and marks it stored-sent (stat 3).
fn cmss(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    match cmd.op {
        Op::Test => Reply::ok(),
        Op::Set => {
            let Ok(index) = cmd.args.int::<u32>(0, "index") else {
                return Reply::cms(302);
            };
            let Some(m) = c.sms.write_mem().get(index).cloned() else {
                return Reply::cms(321);
            };
            // A received message cannot be sent from storage.
            let Some(mut sub) = pdu::decode_submit(&m.pdu, m.tpdu_len) else {
                return Reply::cms(302);
            };
            let (hex, len) = match cmd.args.opt_text(1) {
                None => (m.pdu.clone(), m.tpdu_len),
                Some(da) => {
                    let toda = cmd.args.opt_int::<u8>(2, "toda").ok().flatten();
                    let Some(to) = c
                        .general
                        .charset
                        .decode(da.as_bytes())
                        .and_then(|d| text::address(&d, toda))
                    else {
                        return Reply::cms(if c.sms.cfg.text_mode { 305 } else { 304 });
                    };
                    sub.destination = to;
                    match pdu::encode_submit(&sub) {
                        Some(e) => e,
                        None => return Reply::cms(304),
                    }
                }
            };
            if !network::registered(c) {
                return Reply::cms(331);
            }
            let (mr, later) = transmit(c, &hex, len, &sub);
            c.sms.write_mem_mut().set_stat(index, 3);
            Reply::line(format!("+CMSS: {mr}")).then(later)
        }
        _ => Reply::error(),
    }
}

/// The network takes a SUBMIT (from `AT+CMGS` or `AT+CMSS`): it is recorded as sent and gets a
/// message reference; a status report is scheduled when one was asked for.
fn transmit(c: &mut SimCore, hex: &str, len: usize, sub: &Submit) -> (u8, Vec<Out>) {
    let mr = c.sms.next_mr;
    c.sms.next_mr = c.sms.next_mr.wrapping_add(1);
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
    c.sms.sent.push(rec.clone());
    c.emit(SimulatorEvent::SmsSent { record: rec });
    let mut later = Vec::new();
    if sub.status_report_request
        && let Some(status) = c.cfg.auto_status_report
    {
        later.push(Out::Schedule(
            Duration::from_millis(c.cfg.status_report_delay_ms),
            Scheduled::StatusReport {
                mr,
                to: sub.destination.to_string(),
                status,
            },
        ));
    }
    (mr, later)
}

/// Encodes `text` from `from` as SMS-DELIVER PDU(s) (multipart when long).
pub(crate) fn encode_sms(
    c: &mut SimCore,
    from: &str,
    text: &str,
) -> Result<Vec<String>, crate::simulator::SimulatorError> {
    inbound::encode(c, from, text)
}

/// Delivers a PDU (hex, SMSC field first) as the network would.
pub(crate) fn inject_pdu(
    c: &mut SimCore,
    hex: &str,
) -> Result<Vec<Out>, crate::simulator::SimulatorError> {
    inbound::inject(c, hex)
}

/// Forces (or clears) a full SMS memory.
pub(crate) fn set_memory_full(c: &mut SimCore, full: bool) -> Vec<Out> {
    inbound::set_memory_full(c, full)
}
