//! USSD (27.007 §7.15): `AT+CUSD=[<n>[,<str>[,<dcs>]]]` sends a request and sets the
//! presentation of `+CUSD` results (`<n>` 1 shows them, 0 hides them, 2 cancels the session);
//! Huawei's `AT^USSDMODE` picks how strings travel.
//!
//! Strings: in text form the request and GSM 7-bit replies are in the `+CSCS` character set,
//! UCS2 replies (DCS 72) are hex whatever the set. Huawei sticks start "transparent"
//! (`^USSDMODE: 1`): requests and GSM 7-bit replies as packed GSM7 hex (chan_dongle, the
//! reference's §1.9); `AT^USSDMODE=0` switches them to text as python-gsmmodem does for the
//! E1752.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::commands::{Cmd, Models, Reply, Spec};
use super::line::Op;
use super::{Out, SimCore, line_out};
use crate::modem::pdu::ussd::{gsm7_pack_hex, gsm7_unpack_hex, ucs2_hex_decode, ucs2_hex_encode};
use crate::simulator::dialect::Dialect;
use crate::simulator::{SimulatorEvent, UssdCoding};

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

/// The USSD family's state.
#[derive(Debug)]
pub(crate) struct Ussd {
    /// `+CUSD` result presentation.
    present: bool,
    /// Huawei transparent mode: strings as packed GSM7 hex.
    packed: bool,
    queue: VecDeque<UssdScript>,
    /// USSD codes the gateway sent, decoded.
    pub(crate) requests: Vec<String>,
}

impl Ussd {
    pub(super) fn boot(d: &Dialect) -> Self {
        Self {
            present: false,
            packed: d.ussd_packed,
            queue: VecDeque::new(),
            requests: Vec::new(),
        }
    }

    /// After a reboot: settings to power-on values; queued replies and the record stay.
    pub(super) fn reboot(&mut self, d: &Dialect) {
        self.present = false;
        self.packed = d.ussd_packed;
    }
}

pub(super) const COMMANDS: &[Spec] = &[
    Spec::sim("+CUSD", cusd),
    Spec::only("^USSDMODE", Models::HUAWEI, ussdmode),
];

fn ussdmode(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    match cmd.op {
        Op::Read => Reply::line(format!("^USSDMODE: {}", u8::from(c.ussd.packed))),
        Op::Test => Reply::line("^USSDMODE: (0-1)"),
        Op::Set => match cmd.args.int::<u8>(0, "mode") {
            Ok(m @ 0..=1) => {
                c.ussd.packed = m == 1;
                Reply::ok()
            }
            _ => Reply::error(),
        },
        Op::Exec => Reply::error(),
    }
}

/// The request string as text, or `None` when it is not valid in the current coding.
fn decode_request(c: &SimCore, raw: &str, dcs: u8) -> Option<String> {
    if dcs == 72 {
        return ucs2_hex_decode(raw).ok();
    }
    if c.ussd.packed {
        return gsm7_unpack_hex(raw).ok();
    }
    c.general.charset.decode(raw.as_bytes())
}

fn cusd(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    match cmd.op {
        Op::Read => Reply::line(format!("+CUSD: {}", u8::from(c.ussd.present))),
        Op::Test => Reply::line("+CUSD: (0-2)"),
        Op::Exec => {
            c.ussd.present = false;
            Reply::ok()
        }
        Op::Set => {
            let n = match cmd.args.opt_int::<u8>(0, "n") {
                Ok(n @ (None | Some(0..=2))) => n.unwrap_or(0),
                _ => return Reply::error(),
            };
            if n == 2 {
                return Reply::ok();
            }
            c.ussd.present = n == 1;
            let Some(raw) = cmd.args.opt_text(1) else {
                return Reply::ok();
            };
            let dcs = match cmd.args.opt_int::<u8>(2, "dcs") {
                Ok(d) => d.unwrap_or(15),
                Err(_) => return Reply::error(),
            };
            let Some(code) = decode_request(c, raw, dcs) else {
                return Reply::cme(4);
            };
            c.ussd.requests.push(code.clone());
            c.emit(SimulatorEvent::UssdRequest { code: code.clone() });
            let script = c.ussd.queue.pop_front().unwrap_or_else(|| {
                UssdScript::new(
                    c.cfg.ussd_default_reply.replace("{code}", &code),
                    UssdCoding::Gsm7,
                )
            });
            if !c.ussd.present {
                // The network answers; the gateway asked not to be told.
                return Reply::ok();
            }
            let reply = line_out(&ussd_line(c, &script));
            if script.before_ok {
                Reply::ok().before([reply])
            } else {
                let mut after = Vec::new();
                if script.interleave_urc {
                    after.push(line_out(&format!("+CSQ: {},99", c.cfg.rssi)));
                }
                after.push(reply);
                Reply::ok().then(after)
            }
        }
    }
}

/// The `+CUSD: <m>,"<str>",<dcs>` line of a reply.
fn ussd_line(c: &SimCore, s: &UssdScript) -> String {
    match s.coding {
        UssdCoding::Ucs2 => format!("+CUSD: {},\"{}\",72", s.status, ucs2_hex_encode(&s.text)),
        UssdCoding::Gsm7 if c.ussd.packed => {
            let hex = gsm7_pack_hex(&s.text).unwrap_or_default();
            format!("+CUSD: {},\"{hex}\",15", s.status)
        }
        UssdCoding::Gsm7 => format!(
            "+CUSD: {},\"{}\",15",
            s.status,
            c.general.charset.encode(&s.text)
        ),
    }
}

/// Queues a scripted reply for the next USSD request.
pub(crate) fn queue(c: &mut SimCore, s: UssdScript) {
    c.ussd.queue.push_back(s);
}

/// A network-initiated USSD message (shown once the gateway enabled `+CUSD` results).
pub(crate) fn notify(c: &SimCore, s: &UssdScript) -> Vec<Out> {
    if c.ussd.present {
        vec![line_out(&ussd_line(c, s))]
    } else {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{core, run, text};
    use super::*;
    use crate::simulator::SimulatedModel;

    #[test]
    fn huawei_switches_between_packed_and_text() {
        let mut c = core(SimulatedModel::HuaweiE1550);
        assert!(run(&mut c, "AT^USSDMODE?").contains("^USSDMODE: 1"));
        assert!(run(&mut c, "AT^USSDMODE=?").contains("^USSDMODE: (0-1)"));
        // Transparent: plain text is not a packed string.
        assert!(run(&mut c, "AT+CUSD=1,\"*100#\",15").contains("+CME ERROR: 4"));
        let packed = gsm7_pack_hex("*100#").unwrap_or_default();
        let r = run(&mut c, &format!("AT+CUSD=1,\"{packed}\",15"));
        let want = gsm7_pack_hex("Your balance is 12.34 EUR").unwrap_or_default();
        assert!(r.contains(&format!("+CUSD: 0,\"{want}\",15")), "{r:?}");
        assert!(run(&mut c, "AT^USSDMODE=0").contains("OK"));
        let r = run(&mut c, "AT+CUSD=1,\"*101#\",15");
        assert_eq!(
            r,
            "\r\nOK\r\n\r\n+CUSD: 0,\"Your balance is 12.34 EUR\",15\r\n"
        );
        assert_eq!(c.ussd.requests, vec!["*100#", "*101#"]);
    }

    #[test]
    fn presentation_and_charsets() {
        let mut c = core(SimulatedModel::QuectelEc25);
        assert!(run(&mut c, "AT+CUSD?").contains("+CUSD: 0"));
        assert!(run(&mut c, "AT+CUSD=?").contains("+CUSD: (0-2)"));
        let script = UssdScript::new("Promo", UssdCoding::Gsm7);
        assert!(notify(&c, &script).is_empty(), "not presented yet");
        run(&mut c, "AT+CUSD=1");
        assert_eq!(text(&notify(&c, &script)), "\r\n+CUSD: 0,\"Promo\",15\r\n");
        run(&mut c, "AT+CSCS=\"UCS2\"");
        let r = run(&mut c, "AT+CUSD=1,\"002A0031002300\"");
        assert!(r.contains("+CME ERROR: 4"), "odd UCS2 hex: {r:?}");
        let r = run(&mut c, "AT+CUSD=1,\"002A00310023\"");
        assert!(r.contains("+CUSD: 0,\"0059006F00750072"), "{r:?}");
        assert_eq!(c.ussd.requests, vec!["*1#"]);
    }
}
