//! What the network does towards the modem: delivering SMS-DELIVER PDUs (stored and announced
//! with `+CMTI`, or routed straight to the gateway with `+CMT`, per `+CNMI` `<mt>`), delivering
//! status reports (`+CDS` or stored and announced with `+CDSI`, per `<ds>`), and holding
//! messages back while the memory is full (announced with the model's memory-full URC) until a
//! deletion makes room.
//!
//! With `+CNMI` mode 0 these URCs stay in the modem until the gateway picks a forwarding mode
//! (27.005 §3.4.1).

use chrono::Utc;

use super::super::{Out, SimCore, crlf, line_out};
use super::storage::Stored;
use super::text;
use crate::modem::pdu::{
    Address, ConcatRef, DeliverOptions, Pdu, Status, StatusReport, Timestamp, Tpdu, encode_deliver,
    from_hex,
};
use crate::simulator::dialect::CallUrcs;
use crate::simulator::{SimulatorError, SimulatorEvent};

/// The service centre the simulated network stamps on what it delivers.
const SMSC: &str = "15550000000";

/// An SMS URC: written now, or held while `+CNMI` mode is 0.
fn urc(c: &mut SimCore, bytes: Vec<u8>) -> Vec<Out> {
    if c.sms.cfg.cnmi[0] == 0 {
        c.sms.buffered.push(Out::Bytes(bytes));
        Vec::new()
    } else {
        vec![Out::Bytes(bytes)]
    }
}

/// Encodes `text` from `from` as SMS-DELIVER PDU(s) (multipart when long).
pub(super) fn encode(
    c: &mut SimCore,
    from: &str,
    text: &str,
) -> Result<Vec<String>, SimulatorError> {
    let originator =
        Address::parse(from).map_err(|e| SimulatorError::Invalid(format!("sender: {e}")))?;
    c.sms.next_ref = c.sms.next_ref.wrapping_add(1);
    let now = Utc::now().fixed_offset();
    let options = DeliverOptions {
        smsc: Some(
            Address::international(SMSC).map_err(|e| SimulatorError::Invalid(e.to_string()))?,
        ),
        timestamp: Timestamp::from_datetime(&now)
            .map_err(|e| SimulatorError::Invalid(e.to_string()))?,
        reference: ConcatRef::Eight(c.sms.next_ref),
        class: None,
        status_report_indication: false,
    };
    let pdus = encode_deliver(&originator, text, &options)
        .map_err(|e| SimulatorError::Invalid(e.to_string()))?;
    Ok(pdus.iter().map(|p| p.hex()).collect())
}

/// Delivers a PDU (hex, SMSC field first) as the network would.
pub(super) fn inject(c: &mut SimCore, hex: &str) -> Result<Vec<Out>, SimulatorError> {
    let hex = hex.trim().to_ascii_uppercase();
    let octets = from_hex(&hex).map_err(|e| SimulatorError::Invalid(format!("PDU: {e}")))?;
    let smsc_len = usize::from(
        *octets
            .first()
            .ok_or_else(|| SimulatorError::Invalid("empty PDU".to_owned()))?,
    );
    let tpdu_len = octets
        .len()
        .checked_sub(1 + smsc_len)
        .filter(|n| *n > 0)
        .ok_or_else(|| SimulatorError::Invalid("PDU shorter than its SMSC field".to_owned()))?;
    Ok(deliver(c, hex, tpdu_len))
}

/// One message from the network.
fn deliver(c: &mut SimCore, pdu: String, tpdu_len: usize) -> Vec<Out> {
    let mt = c.sms.cfg.cnmi[1];
    if mt == 2 {
        if c.sms.cfg.csms == 1 {
            c.sms.unacked_direct += 1;
        }
        c.emit(SimulatorEvent::SmsDelivered { index: None });
        let bytes = if c.sms.cfg.text_mode {
            text::cmt(c, &pdu, tpdu_len)
        } else {
            format!("\r\n+CMT: ,{tpdu_len}\r\n{pdu}\r\n").into_bytes()
        };
        return urc(c, bytes);
    }
    store(
        c,
        Stored {
            stat: 0,
            pdu,
            tpdu_len,
        },
        mt != 0,
        false,
    )
}

/// The memory a received message goes to: `<mem3>`; a status report goes to `SR` when the
/// model has it.
fn mem_for(c: &SimCore, report: bool) -> &'static str {
    if report && c.sms.storage.has("SR") {
        "SR"
    } else {
        c.sms.cfg.mems[2]
    }
}

/// Stores a message or status report in its memory ([`mem_for`]),
/// announcing it when `announce`; a full memory makes the network hold the message or
/// report back (3GPP 23.040: the SC keeps what the MS refused for memory capacity and
/// retries once memory is available) and says so once.
fn store(c: &mut SimCore, m: Stored, announce: bool, report: bool) -> Vec<Out> {
    let mem = mem_for(c, report);
    let index = if c.faults.memory_full {
        None
    } else {
        c.sms.storage.get_mut(mem).put(m.clone())
    };
    let Some(index) = index else {
        let mut out = Vec::new();
        if report {
            c.sms.report_queue.push_back(m);
        } else {
            c.sms.network_queue.push_back((m.pdu, m.tpdu_len));
        }
        if !c.sms.memfull_reported {
            c.sms.memfull_reported = true;
            c.emit(SimulatorEvent::MemoryFull);
            if let Some(u) = c.d.memfull_urc {
                out.push(line_out(u));
            } else if c.d.calls == CallUrcs::Ccinfo && c.net.qind.on(c.net.qind.smsfull) {
                // EC25 manual (AT+QINDCFG): `+QIND: "smsfull",<storage>`.
                out.push(line_out(&format!(
                    "+QIND: \"smsfull\",\"{}\"",
                    c.sms.cfg.mems[2]
                )));
            }
        }
        return out;
    };
    c.emit(SimulatorEvent::SmsDelivered { index: Some(index) });
    if !announce {
        return Vec::new();
    }
    let name = if report { "+CDSI" } else { "+CMTI" };
    let bytes = crlf(&format!("{name}: \"{mem}\",{index}"));
    urc(c, bytes)
}

/// A status report for message reference `mr`, delivered per `+CNMI` `<ds>`.
pub(crate) fn status_report(
    c: &mut SimCore,
    mr: u8,
    to: &str,
    status: u8,
) -> Result<Vec<Out>, SimulatorError> {
    let now = Timestamp::from_datetime(&Utc::now().fixed_offset())
        .map_err(|e| SimulatorError::Invalid(e.to_string()))?;
    let recipient =
        Address::parse(to).map_err(|e| SimulatorError::Invalid(format!("recipient: {e}")))?;
    let pdu = Pdu {
        smsc: Some(
            Address::international(SMSC).map_err(|e| SimulatorError::Invalid(e.to_string()))?,
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
    .map_err(|e| SimulatorError::Invalid(e.to_string()))?;
    c.emit(SimulatorEvent::StatusReportSent { mr });
    Ok(match c.sms.cfg.cnmi[3] {
        1 => {
            if c.sms.cfg.csms == 1 {
                c.sms.unacked_direct += 1;
            }
            let bytes = if c.sms.cfg.text_mode {
                text::cds(c, &pdu.hex(), pdu.tpdu_len)
            } else {
                format!("\r\n+CDS: {}\r\n{}\r\n", pdu.tpdu_len, pdu.hex()).into_bytes()
            };
            urc(c, bytes)
        }
        2 => store(
            c,
            Stored {
                stat: 0,
                pdu: pdu.hex(),
                tpdu_len: pdu.tpdu_len,
            },
            true,
            true,
        ),
        _ => {
            c.sms.reports_lost.push(mr);
            Vec::new()
        }
    })
}

/// Forces (or clears) a full SMS memory.
pub(super) fn set_memory_full(c: &mut SimCore, full: bool) -> Vec<Out> {
    c.faults.memory_full = full;
    if full { Vec::new() } else { space_again(c) }
}

/// The memory may have room again: the network delivers what it held back.
pub(super) fn space_again(c: &mut SimCore) -> Vec<Out> {
    let mut out = Vec::new();
    while !full(c, false) {
        let Some((pdu, len)) = c.sms.network_queue.pop_front() else {
            break;
        };
        out.extend(deliver(c, pdu, len));
    }
    while !full(c, true) {
        let Some(report) = c.sms.report_queue.pop_front() else {
            break;
        };
        out.extend(store(c, report, true, true));
    }
    if !full(c, false) {
        c.sms.memfull_reported = false;
    }
    out
}

/// Whether the memory a message (or a status report) would go to is full.
fn full(c: &SimCore, report: bool) -> bool {
    c.faults.memory_full || c.sms.storage.get(mem_for(c, report)).is_full()
}
