//! SMS PDU codec (3GPP TS 23.040 / 23.038, AT framing TS 27.005), sans-IO.
//!
//! # What the driver calls
//!
//! - Received PDUs (`+CMGR`, `+CMGL`, `+CMT`, `+CDS`): [`Pdu::from_hex_with_tpdu_len`] with the
//!   length the modem printed (it tells whether the SMSC field is there), or
//!   [`Pdu::from_hex`] when the SMSC field is known to be present. The result's
//!   [`Pdu::tpdu`] is a [`Tpdu::Deliver`], [`Tpdu::StatusReport`] or (stored outgoing
//!   messages) [`Tpdu::Submit`].
//! - Multipart messages: feed every [`Deliver`] to a [`Reassembler`] with the storage index as
//!   token; delete the [`Message::tokens`] once the message is stored. Call
//!   [`Reassembler::expire`] at [`Reassembler::next_expiry`] to get incomplete messages out.
//! - Sending: [`encode_submit`] → one [`EncodedPdu`] per part; send each with
//!   `AT+CMGS=<tpdu_len>`, then [`EncodedPdu::hex`] and Ctrl-Z.
//! - Status reports: [`StatusReport::message_reference`] matches `+CMGS: <mr>`;
//!   [`Status::class`] says delivered / still trying / failed.
//! - USSD: [`ussd::decode_ussd`] for `+CUSD` replies, [`ussd::gsm7_pack_hex`] /
//!   [`ussd::ucs2_hex_encode`] for requests.
//!
//! # What the simulator calls
//!
//! [`Pdu::from_hex_with_tpdu_len`] on what follows `AT+CMGS=<n>`, [`encode_deliver`] for
//! injected text, and [`Pdu::encode`] with a [`Tpdu::StatusReport`] for reports.
//!
//! # Scope and limits
//!
//! - GSM7 with the extension table, UCS2 as UTF-16BE, 8-bit data kept as bytes. Compressed
//!   user data (TS 23.042) is delivered as bytes, not decompressed.
//! - National language shift tables (UDH IEI 0x24/0x25) are recognised and reported in the
//!   header, but the text is decoded with the default tables.
//! - The message type is read as stored on a terminal (00 DELIVER, 01 SUBMIT,
//!   10 STATUS-REPORT); reports and commands of the opposite direction are not decoded.
//! - Octets after the last field are ignored: some modems pad PDUs.
//! - Decoding never panics; every failure is a [`PduError`] naming the field and octet offset.

mod address;
mod dcs;
mod encode;
mod error;
pub mod gsm7;
mod octets;
mod reassembly;
mod time;
mod tpdu;
pub mod ucs2;
mod user_data;
pub mod ussd;

pub use address::{Address, MAX_ALPHANUMERIC_SEPTETS, MAX_DIGITS, NPI_ISDN, TypeOfNumber};
pub use dcs::{Alphabet, DataCoding, MessageClass, MessageWaiting};
pub use encode::{
    ConcatRef, DeliverOptions, GSM7_PART, GSM7_PART_WIDE, GSM7_SINGLE, Split, SubmitOptions,
    UCS2_PART, UCS2_PART_WIDE, UCS2_SINGLE, encode_deliver, encode_submit, split_text,
};
pub use error::{Field, PduError};
pub use octets::{from_hex, to_hex};
pub use reassembly::{GAP_MARKER, Message, PartKey, Pushed, Reassembler};
pub use time::{Timestamp, ValidityPeriod};
pub use tpdu::{Deliver, EncodedPdu, Pdu, Status, StatusClass, StatusReport, Submit, Tpdu};
pub use user_data::{
    Body, Concat, InformationElement, MAX_OCTETS, MAX_SEPTETS, UserData, UserDataHeader,
};
