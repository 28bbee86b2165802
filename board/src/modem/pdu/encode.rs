//! Text → PDUs: choose the coding (GSM7 when every character is in the default alphabet or its
//! extension table, else UCS2), split long text into concatenated parts filled to the last
//! septet / code unit without splitting an escape sequence or a surrogate pair, and build
//! SMS-SUBMIT (for `AT+CMGS`) or SMS-DELIVER (for the simulator) PDUs.

use serde::{Deserialize, Serialize};

use super::address::Address;
use super::dcs::{Alphabet, DataCoding, MessageClass};
use super::error::PduError;
use super::gsm7;
use super::time::{Timestamp, ValidityPeriod};
use super::tpdu::{Deliver, EncodedPdu, Pdu, Submit, Tpdu};
use super::user_data::{Body, Concat, UserData, UserDataHeader};

/// Septets of a single GSM7 message.
pub const GSM7_SINGLE: usize = 160;
/// Septets per part with an 8-bit reference (6-octet header = 7 septets).
pub const GSM7_PART: usize = 153;
/// Septets per part with a 16-bit reference (7-octet header = 8 septets).
pub const GSM7_PART_WIDE: usize = 152;
/// UTF-16 units of a single UCS2 message.
pub const UCS2_SINGLE: usize = 70;
/// UTF-16 units per part with an 8-bit reference.
pub const UCS2_PART: usize = 67;
/// UTF-16 units per part with a 16-bit reference.
pub const UCS2_PART_WIDE: usize = 66;

/// The concatenation reference to put in multipart messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConcatRef {
    /// IEI 0x00, the common form (153 septets / 67 units per part).
    Eight(u8),
    /// IEI 0x08 (152 septets / 66 units per part), for callers that want 65536 references.
    Sixteen(u16),
}

impl Default for ConcatRef {
    fn default() -> Self {
        Self::Eight(0)
    }
}

/// The result of splitting a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// The coding every part uses.
    pub alphabet: Alphabet,
    /// One user data per part (with a concatenation header when there is more than one).
    pub parts: Vec<UserData>,
}

/// Splits `text` into the user data of as few SMS as possible.
///
/// A text that fits one SMS (160 septets / 70 units) gets no header. Otherwise every part but
/// the last is filled to exactly 153 (152 with a 16-bit reference) septets or 67 (66) units;
/// an extension character (ESC + code) or a surrogate pair that would straddle the boundary
/// moves whole to the next part.
///
/// # Errors
/// [`PduError::TooManyParts`] if more than 255 parts are needed.
pub fn split_text(text: &str, reference: ConcatRef) -> Result<Split, PduError> {
    let (alphabet, single, per_part) = match gsm7::septet_len(text) {
        Some(_) => (Alphabet::Gsm7, GSM7_SINGLE, part_size(reference, GSM7_PART)),
        None => (Alphabet::Ucs2, UCS2_SINGLE, part_size(reference, UCS2_PART)),
    };
    let cost = |c: char| match alphabet {
        Alphabet::Gsm7 => gsm7::encode_char(c).map_or(1, gsm7::Gsm7Char::septets),
        _ => c.len_utf16(),
    };
    let total: usize = text.chars().map(cost).sum();
    if total <= single {
        return Ok(Split {
            alphabet,
            parts: vec![UserData::text(text)],
        });
    }
    let mut chunks = Vec::new();
    let (mut start, mut used) = (0, 0);
    for (i, c) in text.char_indices() {
        let n = cost(c);
        if used + n > per_part {
            chunks.push(text.get(start..i).unwrap_or_default());
            start = i;
            used = 0;
        }
        used += n;
    }
    chunks.push(text.get(start..).unwrap_or_default());
    let count = u8::try_from(chunks.len()).map_err(|_| PduError::TooManyParts {
        parts: chunks.len(),
    })?;
    let (reference, wide) = match reference {
        ConcatRef::Eight(r) => (u16::from(r), false),
        ConcatRef::Sixteen(r) => (r, true),
    };
    let parts = (1..=count)
        .zip(chunks)
        .map(|(seq, chunk)| UserData {
            header: Some(UserDataHeader::concat(Concat {
                reference,
                wide,
                total: count,
                seq,
            })),
            body: Body::Text(chunk.to_owned()),
        })
        .collect();
    Ok(Split { alphabet, parts })
}

fn part_size(reference: ConcatRef, eight_bit_size: usize) -> usize {
    match reference {
        ConcatRef::Eight(_) => eight_bit_size,
        // The 16-bit element is one octet longer: one septet / half a unit less, rounded.
        ConcatRef::Sixteen(_) => eight_bit_size - 1,
    }
}

/// Options for [`encode_submit`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitOptions {
    /// SMSC to put in the PDU; `None` writes `00` (the modem's configured SMSC).
    pub smsc: Option<Address>,
    /// TP-MR; 0 lets the modem assign one (it reports it in `+CMGS: <mr>`).
    pub message_reference: u8,
    /// TP-SRR: ask for a status report.
    pub status_report: bool,
    /// TP-VP; `None` omits it (the service centre's default applies).
    pub validity: Option<ValidityPeriod>,
    /// TP-RD: ask the service centre to reject duplicates.
    pub reject_duplicates: bool,
    /// Reference for multipart messages (ignored for single-part ones).
    pub reference: ConcatRef,
    /// Message class; `None` for a normal message.
    pub class: Option<MessageClass>,
}

/// Encodes `text` to `destination` as one SMS-SUBMIT per part, in part order.
///
/// Send each with `AT+CMGS=<tpdu_len>`, wait for `> `, then write `hex()` and Ctrl-Z.
///
/// # Errors
/// [`PduError::InvalidAddress`] for an unencodable address, [`PduError::TooManyParts`].
pub fn encode_submit(
    destination: &Address,
    text: &str,
    options: &SubmitOptions,
) -> Result<Vec<EncodedPdu>, PduError> {
    let split = split_text(text, options.reference)?;
    let dcs = DataCoding::new(split.alphabet, options.class);
    split
        .parts
        .into_iter()
        .map(|user_data| {
            Pdu {
                smsc: options.smsc.clone(),
                tpdu: Tpdu::Submit(Submit {
                    reject_duplicates: options.reject_duplicates,
                    status_report_request: options.status_report,
                    reply_path: false,
                    message_reference: options.message_reference,
                    destination: destination.clone(),
                    pid: 0,
                    dcs,
                    validity: options.validity,
                    user_data,
                }),
            }
            .encode()
        })
        .collect()
}

/// Options for [`encode_deliver`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliverOptions {
    /// SMSC to put in front of the TPDU; `None` writes `00`.
    pub smsc: Option<Address>,
    /// TP-SCTS of every part.
    pub timestamp: Timestamp,
    /// Reference for multipart messages.
    pub reference: ConcatRef,
    /// Message class; `None` for a normal message.
    pub class: Option<MessageClass>,
    /// TP-SRI: tell the recipient the sender asked for a status report.
    pub status_report_indication: bool,
}

/// Encodes `text` from `originator` as one SMS-DELIVER per part, in part order (what the
/// simulator hands out in `+CMGR` / `+CMT`).
///
/// # Errors
/// As [`encode_submit`], plus [`PduError::TimestampOutOfRange`].
pub fn encode_deliver(
    originator: &Address,
    text: &str,
    options: &DeliverOptions,
) -> Result<Vec<EncodedPdu>, PduError> {
    let split = split_text(text, options.reference)?;
    let dcs = DataCoding::new(split.alphabet, options.class);
    split
        .parts
        .into_iter()
        .map(|user_data| {
            Pdu {
                smsc: options.smsc.clone(),
                tpdu: Tpdu::Deliver(Deliver {
                    more_messages: false,
                    loop_prevention: false,
                    status_report_indication: options.status_report_indication,
                    reply_path: false,
                    originator: originator.clone(),
                    pid: 0,
                    dcs,
                    timestamp: options.timestamp,
                    user_data,
                }),
            }
            .encode()
        })
        .collect()
}
