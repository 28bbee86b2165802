//! PDU mode (`AT+CMGF=0`, 27.005 §4): messages travel as hex TPDUs with their SMSC field.
//! `+CMGR: <stat>,[<alpha>],<length>` and `+CMGL: <index>,<stat>,[<alpha>],<length>` each
//! followed by the PDU; `AT+CMGS=<length>` / `AT+CMGW=<length>[,<stat>]` take one after the
//! prompt.

use super::super::commands::Reply;
use super::super::{Out, SimCore, line_out, network};
use super::storage::Stored;
use super::transmit;
use crate::modem::at::args::Args;
use crate::modem::pdu::{Pdu, Submit, Tpdu};

/// The TPDU length argument of `AT+CMGS`/`AT+CMGW` (7..=176 octets).
pub(super) fn length(args: &Args) -> Option<usize> {
    args.int::<usize>(0, "length")
        .ok()
        .filter(|len| (7..=176).contains(len))
}

/// The SUBMIT in `hex` (with a TPDU of `len` octets), if it is one.
pub(super) fn decode_submit(hex: &str, len: usize) -> Option<Submit> {
    match Pdu::from_hex_with_tpdu_len(hex, len).ok()?.tpdu {
        Tpdu::Submit(s) => Some(s),
        _ => None,
    }
}

/// A SUBMIT as PDU hex (no SMSC: the modem's) and its TPDU length.
pub(super) fn encode_submit(sub: &Submit) -> Option<(String, usize)> {
    let e = Pdu {
        smsc: None,
        tpdu: Tpdu::Submit(sub.clone()),
    }
    .encode()
    .ok()?;
    Some((e.hex(), e.tpdu_len))
}

/// `+CMGR` of the message at `index` (nothing for an empty slot).
pub(super) fn read(c: &SimCore, index: u32) -> Vec<Out> {
    match c.sms.read_mem().get(index) {
        Some(m) => vec![
            line_out(&format!("+CMGR: {},,{}", m.stat, m.tpdu_len)),
            Out::Bytes(format!("{}\r\n", m.pdu).into_bytes()),
        ],
        None => Vec::new(),
    }
}

/// `+CMGL` lines of the messages at `indexes`.
pub(super) fn list(c: &SimCore, indexes: &[u32]) -> Vec<Out> {
    let mut body = String::new();
    for &i in indexes {
        if let Some(m) = c.sms.read_mem().get(i) {
            body.push_str(&format!(
                "\r\n+CMGL: {i},{},,{}\r\n{}",
                m.stat, m.tpdu_len, m.pdu
            ));
        }
    }
    if body.is_empty() {
        return Vec::new();
    }
    body.push_str("\r\n");
    vec![Out::Bytes(body.into_bytes())]
}

/// The hex body of a prompt, trimmed.
fn hex_of(body: &[u8]) -> String {
    String::from_utf8_lossy(body).trim().to_owned()
}

/// `AT+CMGS` body: the network takes the message.
pub(super) fn send_body(c: &mut SimCore, len: usize, body: &[u8]) -> Reply {
    let hex = hex_of(body);
    let Some(sub) = decode_submit(&hex, len) else {
        return Reply::cms(304);
    };
    if !network::registered(c) {
        return Reply::cms(331);
    }
    let (mr, later) = transmit(c, &hex, len, &sub);
    c.sms.cmgs_sends += 1;
    Reply::line(format!("+CMGS: {mr}")).then(later)
}

/// `AT+CMGW` body: stores the PDU with `stat` (SUBMITs as 2/3, DELIVERs as 0/1).
pub(super) fn write_body(c: &mut SimCore, len: usize, stat: u8, body: &[u8]) -> Reply {
    let hex = hex_of(body);
    let Ok(pdu) = Pdu::from_hex_with_tpdu_len(&hex, len) else {
        return Reply::cms(304);
    };
    let fits = match pdu.tpdu {
        Tpdu::Submit(_) => stat >= 2,
        Tpdu::Deliver(_) => stat <= 1,
        Tpdu::StatusReport(_) => false,
    };
    if !fits {
        return Reply::cms(304);
    }
    store_written(
        c,
        Stored {
            stat,
            pdu: hex.to_ascii_uppercase(),
            tpdu_len: len,
        },
    )
}

/// Stores what `AT+CMGW` wrote: `+CMGW: <index>`, or `+CMS ERROR: 322` when full.
pub(super) fn store_written(c: &mut SimCore, m: Stored) -> Reply {
    let index = if c.faults.memory_full {
        None
    } else {
        c.sms.write_mem_mut().put(m)
    };
    match index {
        Some(i) => Reply::line(format!("+CMGW: {i}")),
        None => Reply::cms(322),
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::faults::FaultAction;
    use super::super::super::testing::{core, run, text};
    use super::*;
    use crate::modem::pdu::{Address, SubmitOptions, encode_submit as encode};
    use crate::simulator::SimulatedModel;

    fn submit(text: &str) -> (String, usize) {
        let to = Address::parse("+15551234567").unwrap_or_else(|e| panic!("{e}"));
        let p = encode(&to, text, &SubmitOptions::default()).unwrap_or_else(|e| panic!("{e}"));
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
        let mut c = core(SimulatedModel::QuectelEc25);
        let (hex, len) = submit("from storage");
        let r = write(&mut c, &hex, len, None);
        assert!(r.contains("+CMGW: 0") && r.contains("OK"), "{r:?}");
        assert_eq!(
            c.sms.stored(),
            vec![(0, 2, hex.clone())],
            "stored unsent by default"
        );
        assert!(run(&mut c, "AT+CMGL=2").contains("+CMGL: 0,2,,"));
        assert!(!run(&mut c, "AT+CMGL=0").contains("+CMGL"));
        assert!(c.sms.sent.is_empty());

        let r = run(&mut c, "AT+CMSS=0");
        assert!(r.contains("+CMSS: 0") && r.contains("OK"), "{r:?}");
        assert_eq!(c.sms.sent.len(), 1);
        assert_eq!(c.sms.sent[0].text.as_deref(), Some("from storage"));
        assert_eq!(c.sms.stored()[0].1, 3, "stored sent");
        assert!(run(&mut c, "AT+CMGL=3").contains("+CMGL: 0,3,,"));
        assert!(run(&mut c, "AT+CMGR=0").contains("+CMGR: 3,,"));
        // Sending it again is the gateway's choice: the modem does it; to another number too.
        assert!(run(&mut c, "AT+CMSS=0").contains("+CMSS: 1"));
        assert!(run(&mut c, "AT+CMSS=0,\"+15550009999\"").contains("+CMSS: 2"));
        assert_eq!(c.sms.sent[2].to, "+15550009999");
        assert_eq!(c.sms.sent[2].text.as_deref(), Some("from storage"));
        assert!(run(&mut c, "AT+CMGD=0").contains("OK"));
        assert!(run(&mut c, "AT+CMSS=0").contains("+CMS ERROR: 321"));
        assert!(run(&mut c, "AT+CMSS=99").contains("+CMS ERROR: 321"));
    }

    #[test]
    fn write_checks_stat_pdu_and_space() {
        let mut c = core(SimulatedModel::HuaweiE1550);
        let (hex, len) = submit("x");
        // A SUBMIT is not a received message.
        assert!(write(&mut c, &hex, len, Some(1)).contains("+CMS ERROR: 304"));
        assert!(run(&mut c, &format!("AT+CMGW={len},7")).contains("+CMS ERROR: 304"));
        assert!(write(&mut c, "ZZ", len, Some(2)).contains("+CMS ERROR: 304"));
        // SIM storage counts from 1; a full memory refuses the write.
        assert!(write(&mut c, &hex, len, Some(3)).contains("+CMGW: 1"));
        let _ = super::super::set_memory_full(&mut c, true);
        assert!(write(&mut c, &hex, len, Some(2)).contains("+CMS ERROR: 322"));
        // ESC at the prompt stores nothing.
        assert!(run(&mut c, &format!("AT+CMGW={len}")).contains("> "));
        assert!(text(&c.feed(b"0011\x1b")).contains("OK"));
        assert_eq!(c.sms.stored().len(), 1);
    }

    #[test]
    fn lost_reply_still_sends() {
        let mut c = core(SimulatedModel::QuectelEc25);
        let (hex, len) = submit("reply lost");
        write(&mut c, &hex, len, None);
        c.faults.add_trigger("AT+CMSS", FaultAction::NoReply, 0, 1);
        assert_eq!(run(&mut c, "AT+CMSS=0"), "");
        assert_eq!(c.sms.sent.len(), 1);
        assert_eq!(c.sms.stored()[0].1, 3);
        // The trigger skipped the first matching command.
        c.faults
            .add_trigger("AT+CMSS", FaultAction::Error("ERROR".into()), 1, 1);
        assert!(run(&mut c, "AT+CMSS=0").contains("+CMSS:"));
        assert!(run(&mut c, "AT+CMSS=0").contains("ERROR"));
    }

    #[test]
    fn storage_commands_answer_their_information_lines() {
        let mut c = core(SimulatedModel::QuectelEc25);
        for (cmd, want) in [
            (
                "AT+CPMS=?",
                "+CPMS: (\"SM\",\"ME\",\"MT\",\"SR\"),(\"SM\",\"ME\",\"MT\"),(\"SM\",\"ME\",\"MT\")",
            ),
            ("AT+CPMS?", "+CPMS: \"ME\",0,50,\"ME\",0,50,\"ME\",0,50"),
            ("AT+CPMS=\"SM\",\"SM\",\"SM\"", "+CPMS: 0,50,0,50,0,50"),
            ("AT+CPMS?", "+CPMS: \"SM\",0,50,\"SM\",0,50,\"SM\",0,50"),
            ("AT+CMGF?", "+CMGF: 0"),
            ("AT+CMGF=?", "+CMGF: (0,1)"),
            ("AT+CNMI=?", "+CNMI: (0-2),(0-3),(0,2),(0-2),(0,1)"),
            ("AT+CNMI?", "+CNMI: 0,0,0,0,0"),
            ("AT+CSMS?", "+CSMS: 0,1,1,1"),
            ("AT+CSMS=?", "+CSMS: (0,1)"),
            ("AT+CSCA?", "+CSCA: \"+15550000000\",145"),
            ("AT+CSMP?", "+CSMP: 17,167,0,0"),
            ("AT+CSDH?", "+CSDH: 0"),
            ("AT+CMGL=?", "+CMGL: (0-4)"),
            ("AT+CMGD=?", "+CMGD: (),(0-4)"),
            ("AT+CNMA=?", "+CNMA: (0-2)"),
        ] {
            let r = run(&mut c, cmd);
            assert!(r.contains(&format!("\r\n{want}\r\n")), "{cmd}: {r:?}");
            assert!(r.ends_with("\r\nOK\r\n"), "{cmd}: {r:?}");
        }
        assert!(run(&mut c, "AT+CPMS=\"XX\"").contains("+CMS ERROR: 302"));
        assert!(run(&mut c, "AT+CMGS=?").ends_with("\r\nOK\r\n"));
    }

    #[test]
    fn cmgd_flags_delete_by_status() {
        let mut c = core(SimulatedModel::Sim7600);
        run(&mut c, "AT+CNMI=2,1,0,0,0");
        for t in ["a", "b", "c"] {
            let pdus = super::super::encode_sms(&mut c, "+1555", t).unwrap_or_default();
            for p in pdus {
                let _ = super::super::inject_pdu(&mut c, &p);
            }
        }
        let (hex, len) = submit("out");
        write(&mut c, &hex, len, None);
        run(&mut c, "AT+CMGR=0");
        assert_eq!(c.sms.read_mem().indexes_with(1), vec![0]);
        run(&mut c, "AT+CMGD=0,1");
        assert_eq!(c.sms.stored().len(), 3, "only the read message went");
        run(&mut c, "AT+CMGD=0,3");
        assert_eq!(
            c.sms.stored().len(),
            2,
            "the unsent one went, unread ones stay"
        );
        run(&mut c, "AT+CMGD=0,4");
        assert!(c.sms.stored().is_empty());
    }
}
