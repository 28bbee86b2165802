//! V.250 basics and the general 27.007 commands: echo (`E`), result-code form (`V`, `Q`),
//! profiles (`Z`, `&F`, `&W`), identity banner (`I`, `+GCAP`), error reporting (`+CMEE`), the TE
//! character set (`+CSCS`), phone functionality (`+CFUN`) and the command list (`+CLAC`).
//!
//! The character set matters beyond `+CSCS?`: text-mode SMS, the SMSC address and USSD strings
//! travel in it ([`Charset::encode`], [`Charset::decode`]).

use super::commands::{Cmd, Reply, Spec};
use super::line::Op;
use super::{SimCore, commands};
use crate::modem::pdu::{gsm7, to_hex, ucs2};
use crate::simulator::dialect::{AtiStyle, Dialect};

/// The TE character set (27.007 §5.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Charset {
    /// The GSM 7-bit default alphabet, one byte per septet (`@` is 0x00).
    Gsm,
    /// International Reference Alphabet (ASCII).
    Ira,
    /// UTF-16BE as hex (`"0041"` is `A`).
    Ucs2,
}

impl Charset {
    fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_uppercase().as_str() {
            "GSM" => Some(Self::Gsm),
            "IRA" => Some(Self::Ira),
            "UCS2" => Some(Self::Ucs2),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Gsm => "GSM",
            Self::Ira => "IRA",
            Self::Ucs2 => "UCS2",
        }
    }

    /// `text` as the modem writes it in this character set (characters the set lacks become
    /// `?`).
    pub(super) fn encode(self, text: &str) -> String {
        match self {
            Self::Ucs2 => to_hex(&ucs2::encode(text)),
            Self::Ira => text
                .chars()
                .map(|c| if c.is_ascii() { c } else { '?' })
                .collect(),
            Self::Gsm => {
                let mut out = String::with_capacity(text.len());
                for c in text.chars() {
                    match gsm7::encode_char(c) {
                        Some(gsm7::Gsm7Char::Basic(s)) => out.push(char::from(s)),
                        Some(gsm7::Gsm7Char::Extended(s)) => {
                            out.push('\u{1B}');
                            out.push(char::from(s));
                        }
                        None => out.push('?'),
                    }
                }
                out
            }
        }
    }

    /// Bytes the gateway wrote in this character set, as text; `None` when they are not valid
    /// in it (a byte above 0x7F, or bad UCS2 hex).
    pub(super) fn decode(self, bytes: &[u8]) -> Option<String> {
        match self {
            Self::Ucs2 => {
                let hex = std::str::from_utf8(bytes).ok()?;
                if hex.len() % 4 != 0 {
                    return None;
                }
                crate::modem::pdu::from_hex(hex)
                    .ok()
                    .map(|o| ucs2::decode(&o))
            }
            Self::Ira => bytes
                .iter()
                .all(u8::is_ascii)
                .then(|| String::from_utf8_lossy(bytes).into_owned()),
            Self::Gsm => bytes
                .iter()
                .all(u8::is_ascii)
                .then(|| gsm7::septets_to_text(bytes)),
        }
    }
}

/// What `&W` stores and `Z` restores (V.250 §6.1.1, §6.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Profile {
    echo: bool,
    cmee: u8,
    charset: Charset,
}

impl Profile {
    /// The factory defaults (`AT&F`).
    pub(super) fn factory(d: &Dialect) -> Self {
        Self {
            echo: true,
            cmee: 0,
            charset: Charset::parse(d.default_charset).unwrap_or(Charset::Ira),
        }
    }
}

/// Settings of this family (a reboot restores the stored profile).
#[derive(Debug, Clone)]
pub(super) struct General {
    pub(super) echo: bool,
    pub(super) cmee: u8,
    pub(super) charset: Charset,
    /// `+CFUN` level: 1 full, 0 minimum, 4 radio off.
    pub(super) fun: u8,
    /// Stored by `&W`; survives reboots (non-volatile on a real modem).
    saved: Profile,
}

impl General {
    pub(super) fn boot(d: &Dialect) -> Self {
        Self::from_profile(Profile::factory(d))
    }

    /// After a reboot: the stored profile again.
    pub(super) fn reboot(&self) -> Self {
        Self::from_profile(self.saved)
    }

    fn from_profile(p: Profile) -> Self {
        Self {
            echo: p.echo,
            cmee: p.cmee,
            charset: p.charset,
            fun: 1,
            saved: p,
        }
    }

    fn apply(&mut self, p: Profile) {
        self.echo = p.echo;
        self.cmee = p.cmee;
        self.charset = p.charset;
    }

    /// The radio is on (`+CFUN: 1`).
    pub(super) fn radio_on(&self) -> bool {
        self.fun == 1
    }
}

pub(super) const COMMANDS: &[Spec] = &[
    Spec::all("E", echo),
    Spec::all("V", verbose),
    Spec::all("Q", quiet),
    Spec::all("Z", reset),
    Spec::all("&F", factory),
    Spec::all("&W", store),
    Spec::all("I", identify),
    Spec::all("+GCAP", gcap),
    Spec::all("+CMEE", cmee),
    Spec::all("+CSCS", cscs),
    Spec::all("+CFUN", cfun),
    Spec::all("+CLAC", clac),
];

/// Reads a basic command's 0/1 value.
fn flag(cmd: &Cmd<'_>) -> Option<bool> {
    match cmd.basic_value()? {
        0 => Some(false),
        1 => Some(true),
        _ => None,
    }
}

fn echo(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    match flag(cmd) {
        Some(on) => {
            c.general.echo = on;
            Reply::ok()
        }
        None => Reply::error(),
    }
}

/// Only verbose result codes (`V1`) are simulated; `V0` is refused rather than ignored.
fn verbose(_: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    match flag(cmd) {
        Some(true) => Reply::ok(),
        _ => Reply::error(),
    }
}

/// Result codes are always sent (`Q0`); `Q1` is refused rather than ignored.
fn quiet(_: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    match flag(cmd) {
        Some(false) => Reply::ok(),
        _ => Reply::error(),
    }
}

fn reset(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    if cmd.basic_value() != Some(0) {
        return Reply::error();
    }
    let saved = c.general.saved;
    c.general.apply(saved);
    Reply::ok()
}

fn factory(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    if cmd.basic_value() != Some(0) {
        return Reply::error();
    }
    c.general.apply(Profile::factory(&c.d));
    Reply::ok()
}

fn store(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    if cmd.basic_value() != Some(0) {
        return Reply::error();
    }
    let g = &mut c.general;
    g.saved = Profile {
        echo: g.echo,
        cmee: g.cmee,
        charset: g.charset,
    };
    Reply::ok()
}

fn identify(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    if cmd.basic_value() != Some(0) {
        return Reply::error();
    }
    let d = &c.d;
    match d.ati {
        AtiStyle::Plain => Reply::lines([
            d.manufacturer.to_owned(),
            d.model.to_owned(),
            format!("Revision: {}", d.revision),
        ]),
        AtiStyle::Labelled => Reply::lines([
            format!("Manufacturer: {}", d.manufacturer),
            format!("Model: {}", d.model),
            format!("Revision: {}", d.revision),
            format!("IMEI: {}", c.cfg.imei),
            gcap_line(c),
        ]),
    }
}

fn gcap_line(c: &SimCore) -> String {
    if c.d.ati == AtiStyle::Labelled && !c.d.lte {
        "+GCAP: +CGSM,+DS,+ES".to_owned()
    } else {
        "+GCAP: +CGSM".to_owned()
    }
}

fn gcap(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    match cmd.op {
        Op::Exec => Reply::line(gcap_line(c)),
        Op::Test => Reply::ok(),
        _ => Reply::error(),
    }
}

fn cmee(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    match cmd.op {
        Op::Read => Reply::line(format!("+CMEE: {}", c.general.cmee)),
        Op::Test => Reply::line("+CMEE: (0-2)"),
        Op::Exec => {
            c.general.cmee = 0;
            Reply::ok()
        }
        Op::Set => match cmd.args.int::<u8>(0, "n") {
            Ok(n @ 0..=2) => {
                c.general.cmee = n;
                Reply::ok()
            }
            _ => Reply::error(),
        },
    }
}

fn cscs(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    match cmd.op {
        Op::Read => Reply::line(format!("+CSCS: \"{}\"", c.general.charset.name())),
        Op::Test => {
            let list: Vec<String> = c.d.charsets.iter().map(|s| format!("\"{s}\"")).collect();
            Reply::line(format!("+CSCS: ({})", list.join(",")))
        }
        Op::Exec => Reply::error(),
        Op::Set => {
            let name = cmd.args.opt_text(0).unwrap_or("");
            match Charset::parse(name).filter(|_| {
                c.d.charsets
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(name.trim()))
            }) {
                Some(cs) => {
                    c.general.charset = cs;
                    Reply::ok()
                }
                None => Reply::error(),
            }
        }
    }
}

fn cfun(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    match cmd.op {
        Op::Read => Reply::line(format!("+CFUN: {}", c.general.fun)),
        Op::Test => Reply::line("+CFUN: (0,1,4),(0,1)"),
        Op::Exec => Reply::error(),
        Op::Set => {
            let fun = cmd.args.int::<u8>(0, "fun");
            let rst = cmd.args.opt_int::<u8>(1, "rst");
            match (fun, rst) {
                (Ok(fun @ (0 | 1 | 4)), Ok(rst @ (None | Some(0 | 1)))) => {
                    if rst == Some(1) {
                        // Reset: OK first, then the modem goes away and boots again.
                        return Reply::ok().then(c.reboot());
                    }
                    let before = c.general.radio_on();
                    c.general.fun = fun;
                    let urcs = if before == c.general.radio_on() {
                        Vec::new()
                    } else {
                        super::network::registration_urcs(c)
                    };
                    Reply::ok().then(urcs)
                }
                _ => Reply::error(),
            }
        }
    }
}

fn clac(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    match cmd.op {
        Op::Exec => Reply::lines(commands::names(c.model)),
        Op::Test => Reply::ok(),
        _ => Reply::error(),
    }
}

/// Verbose `+CME ERROR` text (27.007 §9.2.1) of the codes the simulator produces.
pub(super) fn cme_text(code: u16) -> Option<&'static str> {
    Some(match code {
        3 => "operation not allowed",
        4 => "operation not supported",
        10 => "SIM not inserted",
        11 => "SIM PIN required",
        14 => "SIM busy",
        16 => "incorrect password",
        30 => "no network service",
        _ => return None,
    })
}

/// Verbose `+CMS ERROR` text (27.005 §3.2.5) of the codes the simulator produces.
pub(super) fn cms_text(code: u16) -> Option<&'static str> {
    Some(match code {
        300 => "ME failure",
        302 => "operation not allowed",
        303 => "operation not supported",
        304 => "invalid PDU mode parameter",
        305 => "invalid text mode parameter",
        321 => "invalid memory index",
        322 => "memory full",
        331 => "no network service",
        340 => "no +CNMA acknowledgement expected",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::{core, run};
    use super::*;
    use crate::simulator::SimulatedModel;

    #[test]
    fn charsets_round_trip() {
        assert_eq!(Charset::Gsm.encode("@£$a€"), "\u{0}\u{1}\u{2}a\u{1B}e");
        assert_eq!(Charset::Gsm.decode(b"\x00\x01a").as_deref(), Some("@£a"));
        assert_eq!(Charset::Ucs2.encode("A😃"), "0041D83DDE03");
        assert_eq!(
            Charset::Ucs2.decode(b"0041D83DDE03").as_deref(),
            Some("A😃")
        );
        assert_eq!(Charset::Ucs2.decode(b"004"), None);
        assert_eq!(Charset::Ira.decode("é".as_bytes()), None);
        assert_eq!(Charset::Ira.encode("é"), "?");
    }

    #[test]
    fn identity_and_settings_answer_as_the_manuals_show() {
        let mut q = core(SimulatedModel::QuectelEc25);
        assert_eq!(
            run(&mut q, "ATI"),
            "\r\nQuectel\r\n\r\nEC25\r\n\r\nRevision: EC25EFAR06A06M4G\r\n\r\nOK\r\n"
        );
        assert!(run(&mut q, "AT+CSCS=?").contains("+CSCS: (\"IRA\",\"GSM\",\"UCS2\")\r\n"));
        assert!(run(&mut q, "AT+CSCS=\"UCS2\"").contains("OK"));
        assert!(run(&mut q, "AT+CSCS?").contains("+CSCS: \"UCS2\""));
        assert!(run(&mut q, "AT+CSCS=\"8859-1\"").contains("ERROR"));
        assert!(run(&mut q, "AT+CMEE?").contains("+CMEE: 1"));
        assert!(run(&mut q, "AT+CMEE=?").contains("+CMEE: (0-2)"));
        assert!(run(&mut q, "AT+CFUN=?").contains("+CFUN: (0,1,4),(0,1)"));
        let h = run(&mut core(SimulatedModel::HuaweiE1550), "ATI");
        assert!(h.contains("Manufacturer: huawei") && h.contains("+GCAP: +CGSM,+DS,+ES"));
    }

    #[test]
    fn profiles_store_and_restore() {
        let mut c = core(SimulatedModel::Sim7600);
        run(&mut c, "AT+CSCS=\"UCS2\"");
        assert!(run(&mut c, "AT&W").contains("OK"));
        run(&mut c, "AT&F");
        assert_eq!(
            run(&mut c, "AT+CSCS?"),
            "AT+CSCS?\r\r\n+CSCS: \"IRA\"\r\n\r\nOK\r\n"
        );
        run(&mut c, "ATE0");
        run(&mut c, "ATZ");
        assert!(
            run(&mut c, "AT+CSCS?").contains("+CSCS: \"UCS2\""),
            "ATZ restores &W"
        );
        let _ = c.reboot();
        assert!(run(&mut c, "AT+CMEE?").contains("+CMEE: 1"));
        assert!(
            run(&mut c, "AT+CSCS?").contains("UCS2"),
            "the stored profile survives"
        );
    }

    #[test]
    fn clac_lists_the_models_commands() {
        let mut h = core(SimulatedModel::HuaweiE1550);
        let r = run(&mut h, "AT+CLAC");
        for c in [
            "AT^USSDMODE",
            "AT^DTMF",
            "AT^CVOICE",
            "AT+CSCS",
            "AT+CNUM",
            "AT+CPMS",
        ] {
            assert!(r.contains(&format!("\r\n{c}\r\n")), "{c} in {r}");
        }
        assert!(!r.contains("QTONEDET"));
        assert!(r.ends_with("\r\nOK\r\n"));
    }
}
