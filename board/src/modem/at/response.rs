//! Typed parsers for the replies of the commands the driver sends.
//!
//! Each takes a complete [`Response`] and returns the value or a [`ResponseError`] naming
//! the command and what was wrong. They ignore lines they do not expect (a stray echo of an
//! SMS body, a vendor line), because a modem's extra line must never fail a command.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::args::{Args, is_hex};
use super::codec::Response;
use super::types::{CallInfo, Registration, SignalQuality, SimState};
use super::urc::{parse_clcc_args, parse_csq_args, parse_registration};

/// A reply that did not have the expected shape.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unexpected reply to `{command}`: {reason}")]
pub struct ResponseError {
    /// The command.
    pub command: String,
    /// What was wrong.
    pub reason: String,
}

fn rerr(r: &Response, reason: impl Into<String>) -> ResponseError {
    ResponseError {
        command: r.command.clone(),
        reason: reason.into(),
    }
}

/// A message read with `AT+CMGR` or listed with `AT+CMGL` in PDU mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredPdu {
    /// Storage index (`AT+CMGL` only; `AT+CMGR` callers know the index they asked for).
    pub index: Option<u32>,
    /// `<stat>`: 0 received unread, 1 received read, 2 stored unsent, 3 stored sent.
    pub stat: u8,
    /// TPDU length in octets.
    pub length: usize,
    /// PDU hex (SMSC + TPDU).
    pub pdu: String,
}

/// Parses `+CMGR: <stat>,[<alpha>],<length>` + PDU. `Ok(None)`: the slot is empty (some
/// modems answer a bare `OK`, others `+CMGR: 0,,0` without a PDU).
pub fn cmgr(r: &Response) -> Result<Option<StoredPdu>, ResponseError> {
    let mut it = r.lines.iter().map(|l| l.trim());
    while let Some(line) = it.next() {
        let Some(rest) = strip_name(line, "+CMGR") else {
            continue;
        };
        let a = Args::parse(rest);
        let stat = a.int(0, "stat").map_err(|e| rerr(r, e.to_string()))?;
        let length = a
            .int(a.len().saturating_sub(1), "length")
            .map_err(|e| rerr(r, e.to_string()))?;
        return match it.next() {
            Some(pdu) if is_hex(pdu) => Ok(Some(StoredPdu {
                index: None,
                stat,
                length,
                pdu: pdu.to_owned(),
            })),
            _ if length == 0 => Ok(None),
            _ => Err(rerr(r, "+CMGR header without a PDU line")),
        };
    }
    Ok(None)
}

/// Parses `AT+CMGL` pairs: `+CMGL: <index>,<stat>,[<alpha>],<length>` + PDU. Malformed
/// entries are returned as errors alongside the good ones, so one bad slot never hides the
/// others.
pub fn cmgl(r: &Response) -> (Vec<StoredPdu>, Vec<ResponseError>) {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    let mut it = r.lines.iter().map(|l| l.trim()).peekable();
    while let Some(line) = it.next() {
        let Some(rest) = strip_name(line, "+CMGL") else {
            continue;
        };
        let a = Args::parse(rest);
        let header = (|| -> Result<(u32, u8, usize), String> {
            let index = a.int(0, "index").map_err(|e| e.to_string())?;
            let stat = a.int(1, "stat").map_err(|e| e.to_string())?;
            let length = a
                .int(a.len().saturating_sub(1), "length")
                .map_err(|e| e.to_string())?;
            Ok((index, stat, length))
        })();
        let pdu = match it.peek() {
            Some(p) if is_hex(p) => it.next(),
            _ => None,
        };
        match (header, pdu) {
            (Ok((index, stat, length)), Some(pdu)) => {
                good.push(StoredPdu {
                    index: Some(index),
                    stat,
                    length,
                    pdu: pdu.to_owned(),
                });
            }
            (Ok((index, ..)), None) => bad.push(rerr(r, format!("entry {index} has no PDU line"))),
            (Err(e), _) => bad.push(rerr(r, format!("`{line}`: {e}"))),
        }
    }
    (good, bad)
}

/// Parses `AT+CLCC` lines. Malformed lines are skipped (returned in the error list).
pub fn clcc(r: &Response) -> (Vec<CallInfo>, Vec<ResponseError>) {
    let mut calls = Vec::new();
    let mut bad = Vec::new();
    for v in r.values("+CLCC") {
        match parse_clcc_args(&Args::parse(v)) {
            Ok(c) => calls.push(c),
            Err(e) => bad.push(rerr(r, format!("`{v}`: {e}"))),
        }
    }
    (calls, bad)
}

/// The first integer of the `name` information line (`+CMGS: <mr>`, `+CMSS: <mr>[,<scts>]`,
/// `+CMGW: <index>`).
fn first_int<T: std::str::FromStr>(
    r: &Response,
    name: &str,
    what: &'static str,
) -> Result<T, ResponseError> {
    let v = r
        .value(name)
        .ok_or_else(|| rerr(r, format!("no {name} line")))?;
    Args::parse(v)
        .int(0, what)
        .map_err(|e| rerr(r, e.to_string()))
}

/// Parses the `+CMGS: <mr>` message reference.
pub fn cmgs(r: &Response) -> Result<u8, ResponseError> {
    first_int(r, "+CMGS", "mr")
}

/// Parses the `+CMSS: <mr>[,<scts>]` message reference of a message sent from storage.
pub fn cmss(r: &Response) -> Result<u8, ResponseError> {
    first_int(r, "+CMSS", "mr")
}

/// Parses the `+CMGW: <index>` storage index of a written message.
pub fn cmgw(r: &Response) -> Result<u32, ResponseError> {
    first_int(r, "+CMGW", "index")
}

/// Parses `+CSQ: <rssi>,<ber>`.
pub fn csq(r: &Response) -> Result<SignalQuality, ResponseError> {
    let v = r.value("+CSQ").ok_or_else(|| rerr(r, "no +CSQ line"))?;
    parse_csq_args(&Args::parse(v), 0).map_err(|e| rerr(r, e.to_string()))
}

/// Parses the query form `+CREG: <n>,<stat>[,...]` (also `+CEREG`, `+CGREG`: pass the name).
pub fn registration(r: &Response, name: &str) -> Result<Registration, ResponseError> {
    let v = r
        .value(name)
        .ok_or_else(|| rerr(r, format!("no {name} line")))?;
    let a = Args::parse(v);
    // A modem that answers the query with the URC form (no `<n>`) has a quoted LAC in field 1.
    let query = !matches!(a.get(1), Some(super::args::Arg::Quoted(_))) && a.len() >= 2;
    parse_registration(&a, query).map_err(|e| rerr(r, e.to_string()))
}

/// Parses `+CPIN: <code>`.
pub fn cpin(r: &Response) -> Result<SimState, ResponseError> {
    r.value("+CPIN")
        .map(SimState::from_cpin)
        .ok_or_else(|| rerr(r, "no +CPIN line"))
}

/// Parses `+COPS: <mode>[,<format>,"<oper>"[,<AcT>]]` into the operator name.
pub fn cops(r: &Response) -> Result<Option<String>, ResponseError> {
    let v = r.value("+COPS").ok_or_else(|| rerr(r, "no +COPS line"))?;
    Ok(Args::parse(v).opt_text(2).map(str::to_owned))
}

/// Parses `+CNUM: [<alpha>],"<number>",<type>` into the first number.
pub fn cnum(r: &Response) -> Option<String> {
    r.values("+CNUM")
        .find_map(|v| Args::parse(v).opt_text(1).map(str::to_owned))
}

/// Parses `+CMEE: <n>`.
pub fn cmee(r: &Response) -> Result<u8, ResponseError> {
    let v = r.value("+CMEE").ok_or_else(|| rerr(r, "no +CMEE line"))?;
    Args::parse(v)
        .int(0, "n")
        .map_err(|e| rerr(r, e.to_string()))
}

/// Storage usage from `+CPMS: "<mem1>",<used1>,<total1>,...` (query or set form).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageUsage {
    /// Messages stored in the read/delete memory.
    pub used: u32,
    /// Its capacity.
    pub total: u32,
}

/// Parses `+CPMS`: the set form starts with counts, the query form with a memory name.
pub fn cpms(r: &Response) -> Result<StorageUsage, ResponseError> {
    let v = r.value("+CPMS").ok_or_else(|| rerr(r, "no +CPMS line"))?;
    let a = Args::parse(v);
    let base = usize::from(matches!(a.get(0), Some(super::args::Arg::Quoted(_))));
    Ok(StorageUsage {
        used: a.int(base, "used").map_err(|e| rerr(r, e.to_string()))?,
        total: a
            .int(base + 1, "total")
            .map_err(|e| rerr(r, e.to_string()))?,
    })
}

/// The memories `AT+CPMS=?` offers for each use (27.005 §3.2.2):
/// `+CPMS: (<mem1 list>),(<mem2 list>),(<mem3 list>)` — read/delete, write/send, receive.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageChoices {
    /// Memories that can be read and deleted from (`<mem1>`).
    pub read: Vec<String>,
    /// Memories that can be written and sent from (`<mem2>`).
    pub write: Vec<String>,
    /// Memories received messages can be stored in (`<mem3>`).
    pub receive: Vec<String>,
}

/// Parses the test form of `+CPMS`. A list that is missing (older modems give one or two)
/// repeats the last one given, as those modems use one list for every memory.
pub fn cpms_test(r: &Response) -> Result<StorageChoices, ResponseError> {
    let v = r.value("+CPMS").ok_or_else(|| rerr(r, "no +CPMS line"))?;
    let mut lists: Vec<Vec<String>> = Vec::new();
    let mut rest = v.trim();
    while let Some(open) = rest.find('(') {
        let after = rest.get(open + 1..).unwrap_or_default();
        let Some(close) = after.find(')') else {
            return Err(rerr(r, "unclosed `(` in +CPMS"));
        };
        let inner = after.get(..close).unwrap_or_default();
        let names: Vec<String> = inner
            .split(',')
            .map(|m| m.trim().trim_matches('"').to_ascii_uppercase())
            .filter(|m| !m.is_empty() && m.chars().all(|c| c.is_ascii_alphanumeric()))
            .collect();
        lists.push(names);
        rest = after.get(close + 1..).unwrap_or_default();
        if lists.len() == 3 {
            break;
        }
    }
    let Some(first) = lists.first().cloned() else {
        return Err(rerr(r, "no memory list in +CPMS"));
    };
    let second = lists.get(1).cloned().unwrap_or_else(|| first.clone());
    let third = lists.get(2).cloned().unwrap_or_else(|| second.clone());
    Ok(StorageChoices {
        read: first,
        write: second,
        receive: third,
    })
}

/// The ICCID from `+QCCID:`/`+CCID:`/`+ICCID:`/`^ICCID:`/bare replies: the first run of
/// 18-22 hex digits (some SIMs end in `F`).
pub fn iccid(r: &Response) -> Option<String> {
    r.lines.iter().find_map(|l| {
        l.split(|c: char| !c.is_ascii_hexdigit())
            .find(|t| (18..=22).contains(&t.len()))
            .map(|t| t.trim_end_matches(['F', 'f']).to_owned())
    })
}

/// The first run of 14-17 digits (IMEI from `AT+CGSN`, IMSI from `AT+CIMI`), tolerating
/// prefixes like `+CGSN:`.
pub fn digits(r: &Response) -> Option<String> {
    r.lines.iter().find_map(|l| {
        l.split(|c: char| !c.is_ascii_digit())
            .find(|t| (6..=17).contains(&t.len()))
            .map(str::to_owned)
    })
}

fn strip_name<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let head = line.get(..name.len())?;
    if head.eq_ignore_ascii_case(name) {
        line.get(name.len()..)?
            .strip_prefix(':')
            .map(str::trim_start)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::super::codec::FinalResult;
    use super::super::types::{AccessTech, RegStatus};
    use super::*;

    fn r(cmd: &str, lines: &[&str]) -> Response {
        Response {
            command: cmd.into(),
            lines: lines.iter().map(|s| (*s).to_owned()).collect(),
            result: FinalResult::Ok,
            dropped_lines: 0,
        }
    }

    #[test]
    fn cmgr_forms() {
        let x = cmgr(&r("AT+CMGR=1", &["+CMGR: 0,,24", "0791AB"]))
            .unwrap()
            .unwrap();
        assert_eq!((x.stat, x.length, x.pdu.as_str()), (0, 24, "0791AB"));
        assert_eq!(cmgr(&r("AT+CMGR=1", &[])).unwrap(), None);
        assert_eq!(cmgr(&r("AT+CMGR=1", &["+CMGR: 0,,0"])).unwrap(), None);
        assert!(cmgr(&r("AT+CMGR=1", &["+CMGR: 0,,24"])).is_err());
        let x = cmgr(&r("AT+CMGR=1", &["+CMGR: 1,\"alpha\",24", "00AA"]))
            .unwrap()
            .unwrap();
        assert_eq!(x.length, 24);
    }

    #[test]
    fn cmgl_keeps_good_entries() {
        let (g, b) = cmgl(&r(
            "AT+CMGL=4",
            &[
                "+CMGL: 1,0,,3",
                "00AA",
                "+CMGL: x,0,,3",
                "00BB",
                "+CMGL: 4,1,,3",
            ],
        ));
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].index, Some(1));
        assert_eq!(b.len(), 2);
    }

    #[test]
    fn registration_query_and_signal() {
        let x = registration(
            &r("AT+CREG?", &["+CREG: 2,1,\"4CA\",\"81DE445\",7"]),
            "+CREG",
        )
        .unwrap();
        assert_eq!(x.status, RegStatus::Home);
        assert_eq!(x.act, Some(AccessTech::Lte));
        let x = registration(&r("AT+CREG?", &["+CREG: 0,5"]), "+CREG").unwrap();
        assert_eq!(x.status, RegStatus::Roaming);
        let x = registration(&r("AT+CREG?", &["+CREG: 1,\"4CA\",\"81DE445\""]), "+CREG").unwrap();
        assert_eq!(x.status, RegStatus::Home);
        assert_eq!(
            csq(&r("AT+CSQ", &["+CSQ: 20,99"])).unwrap().dbm(),
            Some(-73)
        );
        assert_eq!(
            cops(&r("AT+COPS?", &["+COPS: 0,0,\"Sim Net\",7"]))
                .unwrap()
                .as_deref(),
            Some("Sim Net")
        );
        assert_eq!(cops(&r("AT+COPS?", &["+COPS: 0"])).unwrap(), None);
    }

    #[test]
    fn identity() {
        assert_eq!(
            iccid(&r("AT+QCCID", &["+QCCID: 89860318760215474835"])).as_deref(),
            Some("89860318760215474835")
        );
        assert_eq!(
            iccid(&r("AT+CCID", &["8944110068256270054F"])).as_deref(),
            Some("8944110068256270054")
        );
        assert_eq!(
            digits(&r("AT+CGSN", &["867962040123456"])).as_deref(),
            Some("867962040123456")
        );
        assert_eq!(
            cnum(&r("AT+CNUM", &["+CNUM: \"\",\"+15550001000\",145"])).as_deref(),
            Some("+15550001000")
        );
        assert_eq!(
            cmgs(&r("AT+CMGS=20", &["0011AA", "+CMGS: 42"])).unwrap(),
            42
        );
        assert_eq!(
            cmss(&r("AT+CMSS=3", &["+CMSS: 7,\"24/01/02,10:00:00+04\""])).unwrap(),
            7
        );
        assert_eq!(cmgw(&r("AT+CMGW=20,2", &["+CMGW: 12"])).unwrap(), 12);
        assert!(cmgw(&r("AT+CMGW=20,2", &[])).is_err());
        assert!(
            cmss(&r("AT+CMSS=3", &["+CMSS: 300"])).is_err(),
            "an MR is one octet"
        );
        assert_eq!(
            cpms(&r(
                "AT+CPMS?",
                &["+CPMS: \"ME\",3,255,\"ME\",3,255,\"ME\",3,255"]
            ))
            .unwrap(),
            StorageUsage {
                used: 3,
                total: 255
            }
        );
        assert_eq!(
            cpms(&r("AT+CPMS=\"ME\"", &["+CPMS: 3,255,3,255,3,255"]))
                .unwrap()
                .total,
            255
        );
        assert_eq!(cmee(&r("AT+CMEE?", &["+CMEE: 1"])).unwrap(), 1);
    }

    #[test]
    fn cpms_test_form_lists_each_use() {
        let c = cpms_test(&r(
            "AT+CPMS=?",
            &["+CPMS: (\"ME\",\"MT\",\"SM\",\"SR\"),(\"ME\",\"MT\",\"SM\"),(\"ME\",\"SM\")"],
        ))
        .unwrap();
        assert_eq!(c.read, ["ME", "MT", "SM", "SR"]);
        assert_eq!(c.write, ["ME", "MT", "SM"]);
        assert_eq!(c.receive, ["ME", "SM"]);
        // One list for everything (older modems), unquoted names.
        let one = cpms_test(&r("AT+CPMS=?", &["+CPMS: (SM,ME)"])).unwrap();
        assert_eq!(one.write, ["SM", "ME"]);
        assert_eq!(one.receive, ["SM", "ME"]);
        for bad in ["+CPMS: ", "+CPMS: (\"SM\"", "+CPMS: \"SM\""] {
            assert!(cpms_test(&r("AT+CPMS=?", &[bad])).is_err(), "{bad}");
        }
    }
}
