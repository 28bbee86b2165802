//! Text mode (`AT+CMGF=1`, 27.005 §3): headers as parameters, the body as text.
//!
//! - Status as strings (`"REC UNREAD"` … `"ALL"`), time stamps as `"yy/MM/dd,hh:mm:ss±zz"`
//!   (quarters of an hour), addresses and GSM 7-bit text in the `+CSCS` character set; UCS2 and
//!   8-bit bodies, and any body with a user data header, as hex of the octets (27.005 §3.1
//!   `<data>`, EC25 manual §14.8).
//! - `+CSDH=1` adds the header values to `+CMGR`, `+CMGL` and `+CMT`.
//! - Sending (`AT+CMGS="<da>"[,<toda>]`) and writing (`AT+CMGW`) build an SMS-SUBMIT from the
//!   text with the `+CSMP` first octet, validity, PID and DCS; a first octet with TP-UDHI is
//!   refused (`+CMS ERROR: 303`): a header cannot be typed in text mode here.

use super::super::commands::Reply;
use super::super::{Out, SimCore, crlf, network};
use super::Csmp;
use super::pdu::{encode_submit, store_written};
use super::storage::Stored;
use super::transmit;
use crate::modem::at::args::Args;
use crate::modem::pdu::{
    Address, Alphabet, Body, DataCoding, Pdu, Submit, Timestamp, Tpdu, UserData, ValidityPeriod,
    from_hex, gsm7, to_hex, ucs2,
};

const STATS: [&str; 5] = ["REC UNREAD", "REC READ", "STO UNSENT", "STO SENT", "ALL"];

/// The status code of a text-mode status string.
pub(super) fn stat_code(s: &str) -> Option<u8> {
    STATS
        .iter()
        .position(|n| n.eq_ignore_ascii_case(s.trim()))
        .and_then(|i| u8::try_from(i).ok())
}

fn stat_name(stat: u8) -> &'static str {
    STATS
        .get(usize::from(stat))
        .copied()
        .unwrap_or("REC UNREAD")
}

/// A time stamp as text mode writes it: `yy/MM/dd,hh:mm:ss±zz`.
pub(super) fn scts(t: &Timestamp) -> String {
    let sign = if t.offset_quarters < 0 { '-' } else { '+' };
    format!(
        "{:02}/{:02}/{:02},{:02}:{:02}:{:02}{sign}{:02}",
        t.year % 100,
        t.month,
        t.day,
        t.hour,
        t.minute,
        t.second,
        t.offset_quarters.unsigned_abs()
    )
}

/// Parses `yy/MM/dd,hh:mm:ss±zz`.
fn parse_scts(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    let (date, rest) = s.split_once(',')?;
    let sign_at = rest.rfind(['+', '-'])?;
    let (time, zone) = rest.split_at(sign_at);
    let num = |v: &str| v.parse::<u8>().ok();
    let d: Vec<u8> = date.split('/').map(num).collect::<Option<_>>()?;
    let t: Vec<u8> = time.split(':').map(num).collect::<Option<_>>()?;
    let (&[yy, month, day], &[hour, minute, second]) = (d.as_slice(), t.as_slice()) else {
        return None;
    };
    let quarters: i8 = zone.parse().ok()?;
    let ok = yy < 100
        && (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && hour < 24
        && minute < 60
        && second < 60
        && quarters.unsigned_abs() <= 79;
    ok.then_some(Timestamp {
        year: 2000 + u16::from(yy),
        month,
        day,
        hour,
        minute,
        second,
        offset_quarters: quarters,
    })
}

/// `+CSMP=<fo>[,<vp>[,<pid>[,<dcs>]]]`: omitted values keep their current setting; `<vp>` is
/// an integer for a relative, a quoted time for an absolute validity period (TP-VPF of `<fo>`).
pub(super) fn parse_csmp(args: &Args, now: &Csmp) -> Option<Csmp> {
    let fo = args.int::<u8>(0, "fo").ok()?;
    // Only an SMS-SUBMIT first octet makes sense for messages the gateway writes.
    if fo & 0x03 != 0x01 {
        return None;
    }
    let vp = match (fo & 0x18, args.opt_text(1)) {
        (0x00, _) => None,
        (0x10, None) => match now.vp {
            Some(ValidityPeriod::Relative(v)) => Some(ValidityPeriod::Relative(v)),
            _ => Some(ValidityPeriod::Relative(167)),
        },
        (0x10, Some(v)) => Some(ValidityPeriod::Relative(v.trim().parse().ok()?)),
        (0x18, Some(v)) => Some(ValidityPeriod::Absolute(parse_scts(v)?)),
        // Enhanced validity has no text-mode form, and an absolute one needs its time.
        _ => return None,
    };
    let pid = args.opt_int::<u8>(2, "pid").ok()?.unwrap_or(now.pid);
    let dcs = args.opt_int::<u8>(3, "dcs").ok()?.unwrap_or(now.dcs);
    Some(Csmp { fo, vp, pid, dcs })
}

/// An address as text mode gives it, with its type (`<toda>`): 145 international, 161
/// national, 208 alphanumeric, else unknown.
pub(super) fn address(da: &str, toda: Option<u8>) -> Option<Address> {
    let da = da.trim();
    if da.is_empty() {
        return None;
    }
    let digits = da.strip_prefix('+').unwrap_or(da);
    match toda {
        Some(145) => Address::international(digits).ok(),
        Some(161) => Address::national(digits).ok(),
        Some(208) => Address::alphanumeric(da).ok(),
        _ => Address::parse(da).ok(),
    }
}

/// The destination of `AT+CMGS`/`AT+CMGW` in text mode: `"<da>"[,<toda>]`, decoded from the
/// TE character set.
pub(super) fn destination(c: &SimCore, args: &Args) -> Option<(String, u8)> {
    let raw = args.opt_text(0)?;
    let da = c.general.charset.decode(raw.as_bytes())?;
    let toda = args.opt_int::<u8>(1, "toda").ok()?;
    let addr = address(&da, toda)?;
    Some((addr.to_string(), toda.unwrap_or_else(|| addr.toa())))
}

/// The `<data>` of a message: text in the TE character set for GSM 7-bit without a header,
/// hex of the user data octets otherwise.
fn data(c: &SimCore, dcs: DataCoding, ud: &UserData) -> String {
    let plain = ud.header.is_none() && dcs.alphabet() == Alphabet::Gsm7 && !dcs.is_compressed();
    match (&ud.body, plain) {
        (Body::Text(t), true) => c.general.charset.encode(t),
        _ => {
            let mut v = Vec::new();
            match ud.encode(dcs, &mut v) {
                Ok(()) => to_hex(v.get(1..).unwrap_or_default()),
                Err(_) => String::new(),
            }
        }
    }
}

/// `<length>`: characters of a GSM 7-bit text, else octets of the user data.
fn length(dcs: DataCoding, ud: &UserData) -> usize {
    match &ud.body {
        Body::Text(t) if dcs.alphabet() == Alphabet::Gsm7 => t.chars().count(),
        Body::Text(t) => ucs2::encode(t).len(),
        Body::Data(d) => d.len(),
    }
}

/// The first TPDU octet of a stored PDU (after its SMSC field).
fn first_octet(hex: &str) -> u8 {
    let Ok(o) = from_hex(hex) else { return 0 };
    let smsc = o.first().map_or(0, |n| usize::from(*n));
    o.get(smsc + 1).copied().unwrap_or(0)
}

fn smsc_of(c: &SimCore, p: &Pdu) -> (String, u8) {
    match &p.smsc {
        Some(a) => (c.general.charset.encode(&a.to_string()), a.toa()),
        None => (String::new(), 129),
    }
}

/// The header and data lines of one stored message, as `+CMGR` (`index` `None`) or `+CMGL`
/// shows them.
fn render(c: &SimCore, index: Option<u32>, m: &Stored) -> Vec<String> {
    let cs = c.general.charset;
    let stat = stat_name(m.stat);
    let head = match index {
        Some(i) => format!("+CMGL: {i},\"{stat}\""),
        None => format!("+CMGR: \"{stat}\""),
    };
    let Ok(pdu) = Pdu::from_hex_with_tpdu_len(&m.pdu, m.tpdu_len) else {
        // Not a PDU the modem can present as text: header without fields, the octets as hex.
        return vec![format!("{head},\"\","), m.pdu.clone()];
    };
    let fo = first_octet(&m.pdu);
    let (sca, tosca) = smsc_of(c, &pdu);
    let show = c.sms.cfg.csdh;
    match &pdu.tpdu {
        Tpdu::Deliver(d) => {
            let oa = cs.encode(&d.originator.to_string());
            let mut l = format!("{head},\"{oa}\",,\"{}\"", scts(&d.timestamp));
            if show {
                let len = length(d.dcs, &d.user_data);
                let tooa = d.originator.toa();
                if index.is_some() {
                    l.push_str(&format!(",{tooa},{len}"));
                } else {
                    l.push_str(&format!(
                        ",{tooa},{fo},{},{},\"{sca}\",{tosca},{len}",
                        d.pid,
                        d.dcs.octet()
                    ));
                }
            }
            vec![l, data(c, d.dcs, &d.user_data)]
        }
        Tpdu::Submit(s) => {
            let da = cs.encode(&s.destination.to_string());
            let mut l = format!("{head},\"{da}\",");
            if index.is_some() {
                l.push(',');
            }
            if show {
                let len = length(s.dcs, &s.user_data);
                let toda = s.destination.toa();
                if index.is_some() {
                    l.push_str(&format!(",{toda},{len}"));
                } else {
                    let vp = match s.validity {
                        Some(ValidityPeriod::Relative(v)) => v.to_string(),
                        Some(ValidityPeriod::Absolute(t)) => format!("\"{}\"", scts(&t)),
                        _ => String::new(),
                    };
                    l.push_str(&format!(
                        ",{toda},{fo},{},{},{vp},\"{sca}\",{tosca},{len}",
                        s.pid,
                        s.dcs.octet()
                    ));
                }
            }
            vec![l, data(c, s.dcs, &s.user_data)]
        }
        Tpdu::StatusReport(r) => vec![format!(
            "{head},{fo},{},\"{}\",{},\"{}\",\"{}\",{}",
            r.message_reference,
            cs.encode(&r.recipient.to_string()),
            r.recipient.toa(),
            scts(&r.timestamp),
            scts(&r.discharge_time),
            r.status.0
        )],
    }
}

/// `+CMGR` of the message at `index` (nothing for an empty slot).
pub(super) fn read(c: &SimCore, index: u32) -> Vec<Out> {
    let Some(m) = c.sms.read_mem().get(index) else {
        return Vec::new();
    };
    let lines = render(c, None, m);
    let mut s = String::new();
    for (i, l) in lines.iter().enumerate() {
        if i == 0 {
            s.push_str(&format!("\r\n{l}\r\n"));
        } else {
            s.push_str(&format!("{l}\r\n"));
        }
    }
    vec![Out::Bytes(s.into_bytes())]
}

/// `+CMGL` entries of the messages at `indexes`.
pub(super) fn list(c: &SimCore, indexes: &[u32]) -> Vec<Out> {
    let mut s = String::new();
    for &i in indexes {
        if let Some(m) = c.sms.read_mem().get(i) {
            for l in render(c, Some(i), m) {
                s.push_str(&format!("\r\n{l}"));
            }
        }
    }
    if s.is_empty() {
        return Vec::new();
    }
    s.push_str("\r\n");
    vec![Out::Bytes(s.into_bytes())]
}

/// `+CMT` in text mode: `+CMT: <oa>,[<alpha>],<scts>[,…]` and the data.
pub(super) fn cmt(c: &SimCore, hex: &str, len: usize) -> Vec<u8> {
    let Ok(pdu) = Pdu::from_hex_with_tpdu_len(hex, len) else {
        return format!("\r\n+CMT: \"\",,\"\"\r\n{hex}\r\n").into_bytes();
    };
    let Tpdu::Deliver(d) = &pdu.tpdu else {
        return format!("\r\n+CMT: \"\",,\"\"\r\n{hex}\r\n").into_bytes();
    };
    let oa = c.general.charset.encode(&d.originator.to_string());
    let mut head = format!("+CMT: \"{oa}\",,\"{}\"", scts(&d.timestamp));
    if c.sms.cfg.csdh {
        let (sca, tosca) = smsc_of(c, &pdu);
        head.push_str(&format!(
            ",{},{},{},{},\"{sca}\",{tosca},{}",
            d.originator.toa(),
            first_octet(hex),
            d.pid,
            d.dcs.octet(),
            length(d.dcs, &d.user_data)
        ));
    }
    format!("\r\n{head}\r\n{}\r\n", data(c, d.dcs, &d.user_data)).into_bytes()
}

/// `+CDS` in text mode: `+CDS: <fo>,<mr>,[<ra>],[<tora>],<scts>,<dt>,<st>`.
pub(super) fn cds(c: &SimCore, hex: &str, len: usize) -> Vec<u8> {
    match Pdu::from_hex_with_tpdu_len(hex, len).map(|p| p.tpdu) {
        Ok(Tpdu::StatusReport(r)) => crlf(&format!(
            "+CDS: {},{},\"{}\",{},\"{}\",\"{}\",{}",
            first_octet(hex),
            r.message_reference,
            c.general.charset.encode(&r.recipient.to_string()),
            r.recipient.toa(),
            scts(&r.timestamp),
            scts(&r.discharge_time),
            r.status.0
        )),
        _ => Vec::new(),
    }
}

/// Builds the SMS-SUBMIT a text-mode body stands for, or the `+CMS ERROR` code.
fn build(c: &SimCore, to: &str, toa: u8, body: &[u8]) -> Result<Submit, u16> {
    let p = c.sms.cfg.csmp.clone();
    if p.fo & 0x40 != 0 {
        return Err(303);
    }
    let destination = address(to, Some(toa)).ok_or(305u16)?;
    let dcs = DataCoding(p.dcs);
    if dcs.is_compressed() || dcs.is_reserved() {
        return Err(303);
    }
    let hex_body = || -> Option<Vec<u8>> {
        let h: String = String::from_utf8_lossy(body)
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        from_hex(&h).ok().filter(|o| o.len() <= 140)
    };
    let body = match dcs.alphabet() {
        Alphabet::Gsm7 => {
            let text = c.general.charset.decode(body).ok_or(305u16)?;
            if gsm7::septet_len(&text).is_none_or(|n| n > 160) {
                return Err(305);
            }
            Body::Text(text)
        }
        Alphabet::Ucs2 => Body::Text(ucs2::decode(&hex_body().ok_or(305u16)?)),
        _ => Body::Data(hex_body().ok_or(305u16)?),
    };
    let validity = match p.fo & 0x18 {
        0x00 => None,
        0x10 | 0x18 => p.vp,
        _ => return Err(303),
    };
    Ok(Submit {
        reject_duplicates: p.fo & 0x04 != 0,
        status_report_request: p.fo & 0x20 != 0,
        reply_path: p.fo & 0x80 != 0,
        message_reference: 0,
        destination,
        pid: p.pid,
        dcs,
        validity,
        user_data: UserData { header: None, body },
    })
}

/// `AT+CMGS="<da>"` body: the network takes the message.
pub(super) fn send_body(c: &mut SimCore, to: &str, toa: u8, body: &[u8]) -> Reply {
    let sub = match build(c, to, toa, body) {
        Ok(s) => s,
        Err(code) => return Reply::cms(code),
    };
    let Some((hex, len)) = encode_submit(&sub) else {
        return Reply::cms(305);
    };
    if !network::registered(c) {
        return Reply::cms(331);
    }
    let (mr, later) = transmit(c, &hex, len, &sub);
    c.sms.cmgs_sends += 1;
    Reply::line(format!("+CMGS: {mr}")).then(later)
}

/// `AT+CMGW="<da>"` body: the message is stored with `stat` (2 unsent, 3 sent).
pub(super) fn write_body(c: &mut SimCore, to: &str, toa: u8, stat: u8, body: &[u8]) -> Reply {
    let sub = match build(c, to, toa, body) {
        Ok(s) => s,
        Err(code) => return Reply::cms(code),
    };
    let Some((pdu, tpdu_len)) = encode_submit(&sub) else {
        return Reply::cms(305);
    };
    store_written(
        c,
        Stored {
            stat,
            pdu,
            tpdu_len,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::super::super::testing::{core, run, text};
    use super::*;
    use crate::simulator::SimulatedModel;

    #[test]
    fn time_stamps() {
        let t = Timestamp {
            year: 2024,
            month: 1,
            day: 2,
            hour: 3,
            minute: 4,
            second: 5,
            offset_quarters: -20,
        };
        assert_eq!(scts(&t), "24/01/02,03:04:05-20");
        assert_eq!(parse_scts("24/01/02,03:04:05-20"), Some(t));
        assert_eq!(parse_scts("24/13/02,03:04:05+00"), None);
        assert_eq!(parse_scts("garbage"), None);
    }

    fn deliver(c: &mut SimCore, from: &str, body: &str) {
        for p in super::super::encode_sms(c, from, body).unwrap_or_default() {
            let _ = super::super::inject_pdu(c, &p);
        }
    }

    #[test]
    fn send_read_list_and_write_in_text_mode() {
        let mut c = core(SimulatedModel::QuectelEc25);
        run(&mut c, "AT+CMGF=1");
        run(&mut c, "AT+CSMP=49,167,0,0");
        assert!(run(&mut c, "AT+CMGS=\"+15551234567\"").ends_with("\r\n> "));
        let r = text(&c.feed(b"Hello there\x1a"));
        assert_eq!(r, "\r\n+CMGS: 0\r\n\r\nOK\r\n");
        let s = &c.sms.sent[0];
        assert_eq!(s.to, "+15551234567");
        assert_eq!(s.text.as_deref(), Some("Hello there"));
        assert!(s.status_report, "fo 49 asks for a report");

        run(&mut c, "AT+CNMI=2,1,0,0,0");
        deliver(&mut c, "+15557654321", "Hi back");
        let r = run(&mut c, "AT+CMGR=0");
        assert!(
            r.starts_with("\r\n+CMGR: \"REC UNREAD\",\"+15557654321\",,\""),
            "{r:?}"
        );
        assert!(r.ends_with("\"\r\nHi back\r\n\r\nOK\r\n"), "{r:?}");
        assert!(run(&mut c, "AT+CMGR=0").contains("\"REC READ\""));

        assert!(run(&mut c, "AT+CMGW=\"5551\",129").ends_with("> "));
        let r = text(&c.feed(b"draft\x1a"));
        assert!(r.contains("+CMGW: 1"), "{r:?}");
        let r = run(&mut c, "AT+CMGL=\"ALL\"");
        assert!(
            r.contains("\r\n+CMGL: 0,\"REC READ\",\"+15557654321\",,\""),
            "{r:?}"
        );
        assert!(r.contains("\r\nHi back\r\n"), "{r:?}");
        assert!(
            r.contains("\r\n+CMGL: 1,\"STO UNSENT\",\"5551\",,\r\ndraft\r\n"),
            "{r:?}"
        );
        assert!(run(&mut c, "AT+CMGL=4").contains("+CMS ERROR: 305"));
        assert!(run(&mut c, "AT+CMSS=1").contains("+CMSS: 1"));
        assert_eq!(c.sms.sent[1].text.as_deref(), Some("draft"));
        assert!(run(&mut c, "AT+CMGL=\"STO SENT\"").contains("+CMGL: 1,\"STO SENT\""));

        run(&mut c, "AT+CSDH=1");
        let r = run(&mut c, "AT+CMGR=0");
        assert!(r.contains(",145,4,0,0,\"+15550000000\",145,7\r\n"), "{r:?}");
    }

    #[test]
    fn charsets_and_codings_in_text_mode() {
        let mut c = core(SimulatedModel::Sim7600);
        run(&mut c, "AT+CMGF=1");
        run(&mut c, "AT+CSCS=\"UCS2\"");
        // The number and the text in UCS2 hex.
        assert!(run(&mut c, "AT+CMGS=\"002B0031003500350035\"").ends_with("> "));
        let r = text(&c.feed(b"00480069\x1a"));
        assert!(r.contains("+CMGS: 0"), "{r:?}");
        assert_eq!(c.sms.sent[0].to, "+1555");
        assert_eq!(c.sms.sent[0].text.as_deref(), Some("Hi"));
        // A UCS2 message: hex whatever the character set.
        run(&mut c, "AT+CSCS=\"IRA\"");
        run(&mut c, "AT+CSMP=17,167,0,8");
        run(&mut c, "AT+CMGS=\"+1555\"");
        let r = text(&c.feed(b"041F04400438043201320033D83DDE03\x1a"));
        assert!(r.contains("+CMGS: 1"), "{r:?}");
        assert_eq!(c.sms.sent[1].text.as_deref(), Some("Прив\u{132}3😃"));
        // Not GSM 7-bit in IRA, and a header in text mode.
        run(&mut c, "AT+CSMP=17,167,0,0");
        run(&mut c, "AT+CMGS=\"+1555\"");
        assert!(text(&c.feed("é\x1a".as_bytes())).contains("+CMS ERROR: 305"));
        run(&mut c, "AT+CSMP=81,167,0,0");
        run(&mut c, "AT+CMGS=\"+1555\"");
        assert!(text(&c.feed(b"x\x1a")).contains("+CMS ERROR: 303"));
        assert!(run(&mut c, "AT+CSMP=0,167,0,0").contains("+CMS ERROR: 305"));
        // Reading a UCS2 message in text mode: hex.
        run(&mut c, "AT+CNMI=2,1,0,0,0");
        deliver(&mut c, "+1666", "😃");
        let r = run(&mut c, "AT+CMGR=0");
        assert!(r.contains("\r\nD83DDE03\r\n"), "{r:?}");
    }

    #[test]
    fn direct_delivery_and_reports_in_text_mode() {
        let mut c = core(SimulatedModel::QuectelEc25);
        run(&mut c, "AT+CMGF=1");
        run(&mut c, "AT+CSMS=1");
        run(&mut c, "AT+CNMI=2,2,0,1,0");
        let pdus = super::super::encode_sms(&mut c, "+15557654321", "direct").unwrap_or_default();
        let r = text(&super::super::inject_pdu(&mut c, &pdus[0]).unwrap_or_default());
        assert!(r.starts_with("\r\n+CMT: \"+15557654321\",,\""), "{r:?}");
        assert!(r.ends_with("\r\ndirect\r\n"), "{r:?}");
        assert!(run(&mut c, "AT+CNMA").contains("OK"));
        assert!(run(&mut c, "AT+CNMA").contains("+CMS ERROR: 340"));
        let r =
            text(&super::super::status_report(&mut c, 7, "+15551234567", 0).unwrap_or_default());
        assert!(
            r.starts_with("\r\n+CDS: 6,7,\"+15551234567\",145,\""),
            "{r:?}"
        );
        assert!(r.ends_with("\",0\r\n"), "{r:?}");
        // Stored reports read back in text mode.
        run(&mut c, "AT+CNMI=2,1,0,2,0");
        let r =
            text(&super::super::status_report(&mut c, 8, "+15551234567", 0).unwrap_or_default());
        assert_eq!(r, "\r\n+CDSI: \"SR\",0\r\n");
        // The EC25 keeps reports in their own memory: read it there.
        run(&mut c, "AT+CPMS=\"SR\"");
        let r = run(&mut c, "AT+CMGR=0");
        assert!(
            r.starts_with("\r\n+CMGR: \"REC UNREAD\",6,8,\"+15551234567\",145,\""),
            "{r:?}"
        );
    }

    #[test]
    fn cnmi_mode_zero_holds_the_urcs() {
        let mut c = core(SimulatedModel::QuectelEc25);
        run(&mut c, "AT+CNMI=0,1,0,0,0");
        deliver(&mut c, "+1555", "held");
        let r = run(&mut c, "AT+CNMI=2,1,0,0,0");
        assert_eq!(r, "\r\nOK\r\n\r\n+CMTI: \"ME\",0\r\n");
    }
}
