//! Typed unsolicited result codes.
//!
//! [`classify`] tells the codec whether a line is a URC the gateway knows (and whether a PDU
//! line follows it); [`parse_urc`] turns a URC line into an [`Urc`] value or a [`UrcError`]
//! naming the field that was malformed. Two-line URCs (`+CMT`, `+CDS`) are assembled by the
//! codec, which calls [`parse_pdu_urc`] with both lines.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::args::{ArgError, Args, is_hex, split_name};
use super::types::AccessTech;
use super::types::{
    CallInfo, CallStat, Direction, DtmfSource, RegStatus, Registration, SignalQuality, SimState,
    is_dtmf_digit,
};

/// A parsed unsolicited result code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "urc", rename_all = "snake_case")]
pub enum Urc {
    /// `RING`.
    Ring,
    /// `+CRING: <type>` (e.g. `VOICE`).
    CRing {
        /// Call type text.
        kind: String,
    },
    /// `+CLIP: "<number>",<type>[,...,<CLI validity>]`.
    Clip {
        /// Caller number (`None` when withheld/empty).
        number: Option<String>,
        /// Type of address.
        toa: Option<u8>,
        /// CLI validity (0 valid, 1 withheld, 2 unavailable).
        validity: Option<u8>,
    },
    /// `+CCWA: "<number>",<type>,<class>` (call waiting).
    Ccwa {
        /// Waiting caller's number.
        number: Option<String>,
    },
    /// `+CLCC: ...` as a URC (SIMCom with `AT+CLCC=1`).
    Clcc(CallInfo),
    /// `+QIND: "ccinfo",...` (Quectel).
    Ccinfo(CallInfo),
    /// `^DSCI: ...` (Quectel / Huawei call state).
    Dsci(CallInfo),
    /// `^ORIG:<idx>,<type>` (Huawei: our ATD was accepted).
    Orig {
        /// Call index.
        index: u8,
        /// Call type.
        call_type: u8,
    },
    /// `^CONF:<idx>` (Huawei: alerting).
    Conf {
        /// Call index.
        index: u8,
    },
    /// `^CONN:<idx>,<type>` (Huawei: connected).
    Conn {
        /// Call index.
        index: u8,
        /// Call type.
        call_type: u8,
    },
    /// `^CEND:<idx>,<duration>,<end_status>[,<cc_cause>]` (Huawei: call ended).
    Cend {
        /// Call index.
        index: u8,
        /// Duration in seconds.
        duration: u32,
        /// Huawei end status.
        end_status: u16,
        /// 24.008 call-control cause (16 normal, 17 busy, 19 no answer, 21 rejected).
        cc_cause: Option<u16>,
    },
    /// `VOICE CALL: BEGIN` (SIMCom).
    VoiceCallBegin,
    /// `VOICE CALL: END[: <duration>]` (SIMCom).
    VoiceCallEnd {
        /// Duration text as reported.
        duration: Option<String>,
    },
    /// `MISSED_CALL: <time> <number>` (SIMCom).
    MissedCall {
        /// Caller number, when present.
        number: Option<String>,
    },
    /// `NO CARRIER` while no dial command is pending: the call ended.
    NoCarrier,
    /// `BUSY` while no dial command is pending.
    Busy,
    /// `NO ANSWER` while no dial command is pending.
    NoAnswer,
    /// `+CMTI: "<mem>",<index>`: an SMS was stored. `index` is `None` when the modem reports a
    /// negative index (not stored, some SIMCom firmwares on a full memory).
    Cmti {
        /// Storage name.
        mem: String,
        /// Storage index.
        index: Option<u32>,
    },
    /// `+CMT: [<alpha>],<length>` + PDU line: an SMS delivered directly.
    Cmt {
        /// Alpha tag, if any.
        alpha: Option<String>,
        /// TPDU length in octets.
        length: usize,
        /// The PDU hex (SMSC + TPDU).
        pdu: String,
    },
    /// `+CDS: <length>` + PDU line: a status report delivered directly.
    Cds {
        /// TPDU length in octets.
        length: usize,
        /// The PDU hex.
        pdu: String,
    },
    /// `+CDSI: "<mem>",<index>`: a status report was stored.
    Cdsi {
        /// Storage name.
        mem: String,
        /// Storage index.
        index: Option<u32>,
    },
    /// `+CUSD: <m>[,"<str>",<dcs>]`: USSD result or network-initiated USSD.
    Cusd {
        /// 0 done, 1 further action, 2 network terminated, 3 other client, 4 not supported,
        /// 5 timeout.
        status: u8,
        /// The string as sent by the modem (still encoded: text, packed GSM7 hex or UCS2 hex).
        text: Option<String>,
        /// Data coding scheme.
        dcs: Option<u8>,
    },
    /// `+CREG: <stat>[,...]` (URC form, no `<n>`).
    Creg(Registration),
    /// `+CEREG: <stat>[,...]` (URC form).
    Cereg(Registration),
    /// `+CGREG: <stat>[,...]` (URC form).
    Cgreg(Registration),
    /// `+CSQ: <rssi>,<ber>` as a URC (SIMCom `AT+AUTOCSQ`).
    Csq(SignalQuality),
    /// `+QIND: "csq",<rssi>,<ber>` (Quectel).
    QindCsq(SignalQuality),
    /// `+QIND: "act","<tech>"` (Quectel).
    QindAct {
        /// Technology name (`LTE`, `WCDMA`, ...).
        tech: String,
    },
    /// Another `+QIND:` (`SMS DONE`, `PB DONE`, `"FOTA",...`).
    Qind {
        /// The text after `+QIND:`.
        value: String,
    },
    /// `^RSSI:<n>` (Huawei; same scale as `+CSQ` rssi).
    Rssi {
        /// Raw rssi 0-31, 99 unknown.
        rssi: u8,
    },
    /// `^HCSQ:"<sysmode>",<v1>,...` (Huawei).
    Hcsq {
        /// System mode (`LTE`, `WCDMA`, `GSM`, `NOSERVICE`).
        sysmode: String,
        /// Raw values.
        values: Vec<i32>,
    },
    /// A DTMF digit the far end pressed.
    Dtmf {
        /// The digit (`0-9`, `*`, `#`, `A-D`).
        digit: char,
        /// Which URC reported it.
        source: DtmfSource,
        /// Duration in ms (SIM800 reports it).
        duration_ms: Option<u32>,
    },
    /// `RDY`: the modem (Quectel, SIMCom) has booted.
    Ready,
    /// `^BOOT:...` (Huawei; also sent periodically by some firmwares).
    Boot {
        /// The raw arguments.
        raw: String,
    },
    /// `^SMMEMFULL: "<mem>"` (Huawei): SMS memory full.
    SmMemFull {
        /// Storage name.
        mem: String,
    },
    /// `+CPIN: <code>` as a URC (SIM state change).
    Cpin(SimState),
    /// `+CFUN: <fun>` (after boot).
    Cfun {
        /// Functionality level.
        level: u8,
    },
    /// A known informational line the driver does not act on (`SMS DONE`, `Call Ready`,
    /// `^MODE`, `^SRVST`, `+QUSIM`, ...), or an unknown `+NAME:`/`^NAME:` line.
    Other {
        /// Line name (`+QUSIM`, `^MODE`, or the whole line for bare words).
        name: String,
        /// The rest of the line.
        value: String,
    },
}

/// A URC line that looked like a known URC but could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize, Deserialize)]
#[error("malformed {name} URC `{line}`: {reason}")]
pub struct UrcError {
    /// The URC name.
    pub name: String,
    /// The offending line.
    pub line: String,
    /// What was wrong.
    pub reason: String,
}

/// How the codec should treat a line, decided by its name alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrcKind {
    /// A one-line URC.
    Single,
    /// A URC whose next line is a PDU (`+CMT`, `+CDS`).
    WithPdu,
}

/// Bare-word URCs (no `NAME:` form).
const BARE_URCS: &[&str] = &[
    "RING",
    "RDY",
    "NO CARRIER",
    "BUSY",
    "NO ANSWER",
    "SMS DONE",
    "PB DONE",
    "CALL READY",
    "SMS READY",
    "NORMAL POWER DOWN",
    "POWERED DOWN",
];

/// `+NAME`/`^NAME` URCs the gateway recognises even while a command is pending.
const NAMED_URCS: &[&str] = &[
    "+CRING",
    "+CLIP",
    "+CCWA",
    "+CLCC",
    "+QIND",
    "^DSCI",
    "^ORIG",
    "^CONF",
    "^CONN",
    "^CEND",
    "+CMTI",
    "+CMT",
    "+CDS",
    "+CDSI",
    "+CUSD",
    "+CREG",
    "+CEREG",
    "+CGREG",
    "+CSQ",
    "^RSSI",
    "^HCSQ",
    "^MODE",
    "^SRVST",
    "^SYSSTART",
    "+QTONEDET",
    "+RXDTMF",
    "+DTMF",
    "^DDTMF",
    "^BOOT",
    "^SMMEMFULL",
    "+CPIN",
    "+CFUN",
    "+QUSIM",
    "+CSSI",
    "+CSSU",
    "+CTZV",
    "+CTZE",
    "+CIEV",
    "^SIMST",
    "^STIN",
    "+QSTK",
    "^CVOICE",
];

/// Decides whether `line` is a URC by its name. `None`: not a known URC.
pub fn classify(line: &str) -> Option<UrcKind> {
    let upper_start = line
        .get(..line.len().min(16))
        .unwrap_or(line)
        .to_ascii_uppercase();
    if BARE_URCS.iter().any(|w| line.eq_ignore_ascii_case(w))
        || upper_start.starts_with("VOICE CALL:")
        || upper_start.starts_with("MISSED_CALL:")
    {
        return Some(UrcKind::Single);
    }
    let (name, _) = split_name(line);
    if name.len() == line.len() {
        return None;
    }
    let upper = name.to_ascii_uppercase();
    if upper == "+CMT" || upper == "+CDS" {
        return Some(UrcKind::WithPdu);
    }
    NAMED_URCS
        .iter()
        .any(|n| *n == upper)
        .then_some(UrcKind::Single)
}

fn err(name: &str, line: &str, reason: impl Into<String>) -> UrcError {
    UrcError {
        name: name.to_owned(),
        line: line.to_owned(),
        reason: reason.into(),
    }
}

fn arg_err(name: &str, line: &str) -> impl Fn(ArgError) -> UrcError {
    move |e| err(name, line, e.to_string())
}

/// Parses a one-line URC. `None` when the line is not a URC this module knows (callers then
/// report it as stray); two-line URC headers are handled by [`parse_pdu_urc`].
pub fn parse_urc(line: &str) -> Option<Result<Urc, UrcError>> {
    let trimmed = line.trim();
    let upper = trimmed.to_ascii_uppercase();
    match upper.as_str() {
        "RING" => return Some(Ok(Urc::Ring)),
        "RDY" => return Some(Ok(Urc::Ready)),
        "NO CARRIER" => return Some(Ok(Urc::NoCarrier)),
        "BUSY" => return Some(Ok(Urc::Busy)),
        "NO ANSWER" => return Some(Ok(Urc::NoAnswer)),
        "VOICE CALL: BEGIN" => return Some(Ok(Urc::VoiceCallBegin)),
        _ => {}
    }
    if BARE_URCS.iter().any(|w| upper == *w) {
        return Some(Ok(Urc::Other {
            name: trimmed.to_owned(),
            value: String::new(),
        }));
    }
    if upper.starts_with("VOICE CALL: END") {
        let rest = trimmed.get("VOICE CALL: END".len()..).unwrap_or("");
        let d = rest.trim_start_matches(':').trim();
        return Some(Ok(Urc::VoiceCallEnd {
            duration: (!d.is_empty()).then(|| d.to_owned()),
        }));
    }
    if upper.starts_with("MISSED_CALL:") {
        let rest = trimmed.get("MISSED_CALL:".len()..).unwrap_or("");
        let number = rest
            .split_whitespace()
            .last()
            .filter(|t| t.chars().any(|c| c.is_ascii_digit()) && !t.contains(':'))
            .map(str::to_owned);
        return Some(Ok(Urc::MissedCall { number }));
    }
    let (name, rest) = split_name(trimmed);
    if name.len() == trimmed.len() {
        return None;
    }
    let uname = name.to_ascii_uppercase();
    let a = Args::parse(rest);
    let e = arg_err(&uname, trimmed);
    let result = match uname.as_str() {
        "+CRING" => Ok(Urc::CRing {
            kind: rest.trim().to_owned(),
        }),
        "+CLIP" => (|| {
            Ok(Urc::Clip {
                number: a.opt_text(0).map(str::to_owned),
                toa: a.opt_int(1, "type").map_err(&e)?,
                validity: a.opt_int(5, "CLI validity").map_err(&e)?,
            })
        })(),
        "+CCWA" => Ok(Urc::Ccwa {
            number: a.opt_text(0).map(str::to_owned),
        }),
        "+CLCC" => parse_clcc_args(&a).map(Urc::Clcc).map_err(&e),
        "+QIND" => parse_qind(&a, rest, trimmed),
        "^DSCI" => parse_dsci(&a).map(Urc::Dsci).map_err(&e),
        "^ORIG" => (|| {
            Ok(Urc::Orig {
                index: a.int(0, "index").map_err(&e)?,
                call_type: a.int(1, "type").map_err(&e)?,
            })
        })(),
        "^CONF" => a
            .int(0, "index")
            .map(|index| Urc::Conf { index })
            .map_err(&e),
        "^CONN" => (|| {
            Ok(Urc::Conn {
                index: a.int(0, "index").map_err(&e)?,
                call_type: a.opt_int(1, "type").map_err(&e)?.unwrap_or(0),
            })
        })(),
        "^CEND" => (|| {
            Ok(Urc::Cend {
                index: a.int(0, "index").map_err(&e)?,
                duration: a.opt_int(1, "duration").map_err(&e)?.unwrap_or(0),
                end_status: a.opt_int(2, "end_status").map_err(&e)?.unwrap_or(0),
                cc_cause: a.opt_int(3, "cc_cause").map_err(&e)?,
            })
        })(),
        "+CMTI" | "+CDSI" => (|| {
            let mem = a.text(0, "mem").map_err(&e)?.to_owned();
            let idx: i64 = a.int(1, "index").map_err(&e)?;
            let index = u32::try_from(idx).ok();
            Ok(if uname == "+CMTI" {
                Urc::Cmti { mem, index }
            } else {
                Urc::Cdsi { mem, index }
            })
        })(),
        "+CUSD" => (|| {
            Ok(Urc::Cusd {
                status: a.int(0, "m").map_err(&e)?,
                text: a
                    .get(1)
                    .map(|t| t.text().to_owned())
                    .filter(|_| a.len() > 1),
                dcs: a.opt_int(2, "dcs").map_err(&e)?,
            })
        })(),
        "+CREG" => parse_registration(&a, false).map(Urc::Creg).map_err(&e),
        "+CEREG" => parse_registration(&a, false).map(Urc::Cereg).map_err(&e),
        "+CGREG" => parse_registration(&a, false).map(Urc::Cgreg).map_err(&e),
        "+CSQ" => parse_csq_args(&a, 0).map(Urc::Csq).map_err(&e),
        "^RSSI" => a.int(0, "rssi").map(|rssi| Urc::Rssi { rssi }).map_err(&e),
        "^HCSQ" => (|| {
            let sysmode = a.text(0, "sysmode").map_err(&e)?.to_owned();
            let mut values = Vec::new();
            for i in 1..a.len() {
                if let Some(v) = a.opt_int::<i32>(i, "value").map_err(&e)? {
                    values.push(v);
                }
            }
            Ok(Urc::Hcsq { sysmode, values })
        })(),
        "+QTONEDET" => (|| {
            let code: u32 = a.int(0, "ascii code").map_err(&e)?;
            let digit = char::from_u32(code)
                .filter(|c| is_dtmf_digit(*c))
                .ok_or_else(|| {
                    err(
                        &uname,
                        trimmed,
                        format!("{code} is not the ASCII code of a DTMF digit"),
                    )
                })?;
            Ok(Urc::Dtmf {
                digit,
                source: DtmfSource::Qtonedet,
                duration_ms: None,
            })
        })(),
        "+RXDTMF" | "+DTMF" | "^DDTMF" => (|| {
            let t = a.text(0, "digit").map_err(&e)?.trim();
            let mut chars = t.chars();
            let digit = match (chars.next(), chars.next()) {
                (Some(c), None) if is_dtmf_digit(c.to_ascii_uppercase()) => c.to_ascii_uppercase(),
                _ => return Err(err(&uname, trimmed, format!("`{t}` is not a DTMF digit"))),
            };
            let source = match uname.as_str() {
                "+RXDTMF" => DtmfSource::Rxdtmf,
                "+DTMF" => DtmfSource::Ddet,
                _ => DtmfSource::Ddtmf,
            };
            Ok(Urc::Dtmf {
                digit,
                source,
                duration_ms: a.opt_int(1, "duration").map_err(&e)?,
            })
        })(),
        "^BOOT" => Ok(Urc::Boot {
            raw: rest.to_owned(),
        }),
        "^SMMEMFULL" => Ok(Urc::SmMemFull {
            mem: a.opt_text(0).unwrap_or("").to_owned(),
        }),
        "+CPIN" => Ok(Urc::Cpin(SimState::from_cpin(rest))),
        "+CFUN" => a.int(0, "fun").map(|level| Urc::Cfun { level }).map_err(&e),
        "+CMT" | "+CDS" => Err(err(&uname, trimmed, "PDU line missing")),
        _ => Ok(Urc::Other {
            name: name.to_owned(),
            value: rest.to_owned(),
        }),
    };
    Some(result)
}

/// Parses a two-line URC: the `+CMT:`/`+CDS:` header and its PDU line.
pub fn parse_pdu_urc(header: &str, pdu: &str) -> Result<Urc, UrcError> {
    let (name, rest) = split_name(header.trim());
    let uname = name.to_ascii_uppercase();
    let e = arg_err(&uname, header);
    let pdu = pdu.trim();
    if !is_hex(pdu) {
        return Err(err(
            &uname,
            header,
            "the line after the header is not a hex PDU",
        ));
    }
    let a = Args::parse(rest);
    match uname.as_str() {
        "+CMT" => {
            // `+CMT: [<alpha>],<length>`; some modems omit the alpha field entirely.
            let (alpha, length) = if a.len() >= 2 {
                (
                    a.opt_text(0).map(str::to_owned),
                    a.int(1, "length").map_err(&e)?,
                )
            } else {
                (None, a.int(0, "length").map_err(&e)?)
            };
            Ok(Urc::Cmt {
                alpha,
                length,
                pdu: pdu.to_owned(),
            })
        }
        "+CDS" => Ok(Urc::Cds {
            length: a.int(0, "length").map_err(&e)?,
            pdu: pdu.to_owned(),
        }),
        _ => Err(err(&uname, header, "not a two-line URC")),
    }
}

fn parse_qind(a: &Args, rest: &str, line: &str) -> Result<Urc, UrcError> {
    let e = arg_err("+QIND", line);
    let kind = a.text(0, "type").map_err(&e)?.to_ascii_lowercase();
    match kind.as_str() {
        "ccinfo" => {
            // `+QIND: "ccinfo",<idx>,<dir>,<state>,<mode>,<mpty>,"<num>",<toa>` — the CLCC
            // layout shifted by one.
            let shifted = Args::parse(rest.split_once(',').map_or("", |(_, r)| r));
            parse_clcc_args(&shifted).map(Urc::Ccinfo).map_err(&e)
        }
        "csq" => parse_csq_args(a, 1).map(Urc::QindCsq).map_err(&e),
        "act" => Ok(Urc::QindAct {
            tech: a.text(1, "act").map_err(&e)?.to_owned(),
        }),
        _ => Ok(Urc::Qind {
            value: rest.trim().to_owned(),
        }),
    }
}

/// Parses the arguments of a `+CLCC:` line (also the ccinfo tail).
pub fn parse_clcc_args(a: &Args) -> Result<CallInfo, ArgError> {
    let stat: i16 = a.int(2, "stat")?;
    let dir: u8 = a.int(1, "dir")?;
    Ok(CallInfo {
        index: a.int(0, "id")?,
        direction: match dir {
            0 => Direction::Outgoing,
            1 => Direction::Incoming,
            n => {
                return Err(ArgError {
                    field: "dir",
                    problem: format!("{n} is not 0 or 1"),
                });
            }
        },
        state: CallStat::from_code(stat).ok_or_else(|| ArgError {
            field: "stat",
            problem: format!("unknown call state {stat}"),
        })?,
        mode: a.opt_int(3, "mode")?.unwrap_or(0),
        multiparty: a.opt_int::<u8>(4, "mpty")?.unwrap_or(0) == 1,
        number: a.opt_text(5).map(str::to_owned),
        toa: a.opt_int(6, "type")?,
    })
}

fn parse_dsci(a: &Args) -> Result<CallInfo, ArgError> {
    // `^DSCI: <id>,<dir>,<stat>,<type>,<number>,<num_type>[,...]`
    let stat: i16 = a.int(2, "stat")?;
    let dir: u8 = a.int(1, "dir")?;
    Ok(CallInfo {
        index: a.int(0, "id")?,
        direction: if dir == 0 {
            Direction::Outgoing
        } else {
            Direction::Incoming
        },
        state: CallStat::from_code(stat).ok_or_else(|| ArgError {
            field: "stat",
            problem: format!("unknown call state {stat}"),
        })?,
        mode: a.opt_int(3, "type")?.unwrap_or(0),
        multiparty: false,
        number: a.opt_text(4).map(str::to_owned),
        toa: a.opt_int(5, "num_type")?,
    })
}

/// Parses `+CSQ`-style `<rssi>,<ber>` starting at field `first`.
pub fn parse_csq_args(a: &Args, first: usize) -> Result<SignalQuality, ArgError> {
    Ok(SignalQuality {
        rssi: a.int(first, "rssi")?,
        ber: a.opt_int(first + 1, "ber")?.unwrap_or(99),
    })
}

/// Parses a registration line. `query` selects the `AT+CREG?` form, which has `<n>` first.
/// The URC form is ambiguous only for `<n>,<stat>` vs `<stat>,<lac>`; the LAC is quoted,
/// which tells them apart.
pub fn parse_registration(a: &Args, query: bool) -> Result<Registration, ArgError> {
    let base = usize::from(query);
    let stat: u8 = a.int(base, "stat")?;
    Ok(Registration {
        status: RegStatus::from_code(stat),
        lac: a.opt_hex(base + 1, "lac")?,
        cell_id: a.opt_hex(base + 2, "ci")?,
        act: a.opt_int::<u8>(base + 3, "AcT")?.map(AccessTech::from_code),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: &str) -> Urc {
        match parse_urc(line) {
            Some(Ok(u)) => u,
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn call_urcs() {
        assert_eq!(p("RING"), Urc::Ring);
        assert_eq!(
            p("+CRING: VOICE"),
            Urc::CRing {
                kind: "VOICE".into()
            }
        );
        assert_eq!(
            p(r#"+CLIP: "+4912345",145,,,,0"#),
            Urc::Clip {
                number: Some("+4912345".into()),
                toa: Some(145),
                validity: Some(0)
            }
        );
        let Urc::Ccinfo(c) = p(r#"+QIND: "ccinfo",1,1,4,0,0,"+15551234",145"#) else {
            panic!()
        };
        assert_eq!(
            (c.index, c.direction, c.state),
            (1, Direction::Incoming, CallStat::Incoming)
        );
        assert_eq!(c.number.as_deref(), Some("+15551234"));
        let Urc::Ccinfo(c) = p(r#"+QIND: "ccinfo",2,0,-1,0,0,"123",129"#) else {
            panic!()
        };
        assert_eq!(c.state, CallStat::Released);
        let Urc::Dsci(c) = p("^DSCI: 1,1,6,0,+15551234,145").clone() else {
            panic!()
        };
        assert_eq!(c.state, CallStat::Released);
        assert_eq!(
            p("^ORIG:1,0"),
            Urc::Orig {
                index: 1,
                call_type: 0
            }
        );
        assert_eq!(p("^CONF:1"), Urc::Conf { index: 1 });
        assert_eq!(
            p("^CONN:1,0"),
            Urc::Conn {
                index: 1,
                call_type: 0
            }
        );
        assert_eq!(
            p("^CEND:1,5,29,16"),
            Urc::Cend {
                index: 1,
                duration: 5,
                end_status: 29,
                cc_cause: Some(16)
            }
        );
        assert_eq!(
            p("^CEND:1,0,104"),
            Urc::Cend {
                index: 1,
                duration: 0,
                end_status: 104,
                cc_cause: None
            }
        );
        assert_eq!(p("VOICE CALL: BEGIN"), Urc::VoiceCallBegin);
        assert_eq!(
            p("VOICE CALL: END: 000012"),
            Urc::VoiceCallEnd {
                duration: Some("000012".into())
            }
        );
        assert_eq!(
            p("MISSED_CALL: 02:27PM +15551234567"),
            Urc::MissedCall {
                number: Some("+15551234567".into())
            }
        );
        let Urc::Clcc(c) = p(r#"+CLCC: 1,0,3,0,0,"+15550001",145"#) else {
            panic!()
        };
        assert_eq!(c.state, CallStat::Alerting);
    }

    #[test]
    fn dtmf_urcs() {
        assert_eq!(
            p("+QTONEDET: 35"),
            Urc::Dtmf {
                digit: '#',
                source: DtmfSource::Qtonedet,
                duration_ms: None
            }
        );
        assert_eq!(
            p("+QTONEDET: 49"),
            Urc::Dtmf {
                digit: '1',
                source: DtmfSource::Qtonedet,
                duration_ms: None
            }
        );
        assert_eq!(
            p("+RXDTMF: *"),
            Urc::Dtmf {
                digit: '*',
                source: DtmfSource::Rxdtmf,
                duration_ms: None
            }
        );
        assert_eq!(
            p("+DTMF: 5,120"),
            Urc::Dtmf {
                digit: '5',
                source: DtmfSource::Ddet,
                duration_ms: Some(120)
            }
        );
        assert_eq!(
            p("^DDTMF: a"),
            Urc::Dtmf {
                digit: 'A',
                source: DtmfSource::Ddtmf,
                duration_ms: None
            }
        );
        assert!(matches!(parse_urc("+QTONEDET: 20"), Some(Err(_))));
        assert!(matches!(parse_urc("+RXDTMF: 12"), Some(Err(_))));
    }

    #[test]
    fn sms_and_network_urcs() {
        assert_eq!(
            p(r#"+CMTI: "ME",3"#),
            Urc::Cmti {
                mem: "ME".into(),
                index: Some(3)
            }
        );
        assert_eq!(
            p("+CMTI: ,-1"),
            Urc::Cmti {
                mem: String::new(),
                index: None
            }
        );
        assert_eq!(
            p(r#"+CDSI: "SR",0"#),
            Urc::Cdsi {
                mem: "SR".into(),
                index: Some(0)
            }
        );
        assert_eq!(
            p(r#"+CUSD: 0,"CF2135487D2E4130572D0682BB1A",0"#),
            Urc::Cusd {
                status: 0,
                text: Some("CF2135487D2E4130572D0682BB1A".into()),
                dcs: Some(0)
            }
        );
        assert_eq!(
            p("+CUSD: 2"),
            Urc::Cusd {
                status: 2,
                text: None,
                dcs: None
            }
        );
        let Urc::Creg(r) = p(r#"+CREG: 1,"4CA","81DE445",7"#) else {
            panic!()
        };
        assert_eq!(r.lac, Some(0x4CA));
        assert_eq!(r.cell_id, Some(0x81DE445));
        assert_eq!(r.act, Some(AccessTech::Lte));
        assert_eq!(
            p("+QIND: \"csq\",20,99"),
            Urc::QindCsq(SignalQuality { rssi: 20, ber: 99 })
        );
        assert_eq!(
            p("+QIND: \"act\",\"LTE\""),
            Urc::QindAct { tech: "LTE".into() }
        );
        assert_eq!(
            p("+QIND: SMS DONE"),
            Urc::Qind {
                value: "SMS DONE".into()
            }
        );
        assert_eq!(p("^RSSI:17"), Urc::Rssi { rssi: 17 });
        assert_eq!(
            p("^HCSQ:\"LTE\",50,40,120,20"),
            Urc::Hcsq {
                sysmode: "LTE".into(),
                values: vec![50, 40, 120, 20]
            }
        );
        assert_eq!(p("RDY"), Urc::Ready);
        assert_eq!(p("^SMMEMFULL: \"SM\""), Urc::SmMemFull { mem: "SM".into() });
        assert_eq!(p("+CPIN: READY"), Urc::Cpin(SimState::Ready));
        assert!(matches!(p("^BOOT:20952548,0,0,0,75"), Urc::Boot { .. }));
    }

    #[test]
    fn malformed_urcs_name_the_field() {
        let Some(Err(e)) = parse_urc("+CMTI: \"SM\",x") else {
            panic!()
        };
        assert!(e.reason.contains("index"), "{e}");
        let Some(Err(e)) = parse_urc("+CLCC: 1,7,0,0,0") else {
            panic!()
        };
        assert!(e.reason.contains("dir"), "{e}");
        assert!(parse_urc("hello").is_none());
    }

    #[test]
    fn two_line() {
        assert_eq!(
            parse_pdu_urc("+CMT: ,24", "07911326").unwrap(),
            Urc::Cmt {
                alpha: None,
                length: 24,
                pdu: "07911326".into()
            }
        );
        assert_eq!(
            parse_pdu_urc("+CDS: 25", "0006D6").unwrap(),
            Urc::Cds {
                length: 25,
                pdu: "0006D6".into()
            }
        );
        assert!(parse_pdu_urc("+CMT: ,24", "OK").is_err());
        assert_eq!(classify("+CMT: ,24"), Some(UrcKind::WithPdu));
        assert_eq!(classify("+CMTI: \"SM\",1"), Some(UrcKind::Single));
        assert_eq!(classify("Quectel"), None);
    }
}
