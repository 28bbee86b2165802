//! The three TPDUs a gateway meets (TS 23.040 §9.2.2): SMS-DELIVER, SMS-SUBMIT and
//! SMS-STATUS-REPORT, with the SMSC field in front as AT+CMGR / +CMT / +CDS return it.
//!
//! The message type indicator is read the way a terminal's storage holds messages: 00 is an
//! SMS-DELIVER, 01 an SMS-SUBMIT and 10 an SMS-STATUS-REPORT. (The same bits mean
//! DELIVER-REPORT / SUBMIT-REPORT / COMMAND in the other direction; modems never return those
//! over AT, and the simulator only ever decodes SUBMITs.)

use serde::{Deserialize, Serialize};

use super::address::Address;
use super::dcs::DataCoding;
use super::error::{Field, PduError};
use super::octets::{Reader, from_hex, to_hex};
use super::time::{Timestamp, ValidityPeriod};
use super::user_data::{Concat, UserData};

const MTI_DELIVER: u8 = 0b00;
const MTI_SUBMIT: u8 = 0b01;
const MTI_STATUS_REPORT: u8 = 0b10;
const MMS_NO_MORE: u8 = 0x04;
const LP: u8 = 0x08;
const SRI_SRR_SRQ: u8 = 0x20;
const UDHI: u8 = 0x40;
const RP: u8 = 0x80;
const RD: u8 = 0x04;

/// SMS-DELIVER: a message from the network to us.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Deliver {
    /// TP-MMS inverted: more messages are waiting at the service centre.
    pub more_messages: bool,
    /// TP-LP: loop prevention.
    pub loop_prevention: bool,
    /// TP-SRI: the sender asked for a status report.
    pub status_report_indication: bool,
    /// TP-RP: a reply path exists.
    pub reply_path: bool,
    /// TP-OA: the sender.
    pub originator: Address,
    /// TP-PID.
    pub pid: u8,
    /// TP-DCS.
    pub dcs: DataCoding,
    /// TP-SCTS: when the service centre received it.
    pub timestamp: Timestamp,
    /// TP-UD.
    pub user_data: UserData,
}

/// SMS-SUBMIT: a message from us to the network.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Submit {
    /// TP-RD: reject duplicates.
    pub reject_duplicates: bool,
    /// TP-SRR: a status report is requested.
    pub status_report_request: bool,
    /// TP-RP: reply path.
    pub reply_path: bool,
    /// TP-MR (0 lets the modem choose; the modem returns the real one in `+CMGS: <mr>`).
    pub message_reference: u8,
    /// TP-DA: the recipient.
    pub destination: Address,
    /// TP-PID.
    pub pid: u8,
    /// TP-DCS.
    pub dcs: DataCoding,
    /// TP-VP (its form sets TP-VPF).
    pub validity: Option<ValidityPeriod>,
    /// TP-UD.
    pub user_data: UserData,
}

/// How a status report's TP-ST reads (TS 23.040 §9.2.3.15).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusClass {
    /// 0x00–0x1F: the message was delivered (or replaced / forwarded).
    Delivered,
    /// 0x20–0x3F: temporary error, the service centre is still trying.
    TemporaryRetrying,
    /// 0x40–0x5F: permanent error, the service centre gave up.
    PermanentError,
    /// 0x60–0x7F: temporary error, the service centre stopped trying.
    TemporaryStopped,
}

/// TP-ST, kept raw with its classification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Status(pub u8);

impl Status {
    /// Which of the four outcomes this status is. Values with bit 7 set are reserved; they are
    /// read as "the service centre stopped trying", the safe reading for a sender that waits
    /// for a final outcome (never "delivered", never "still trying").
    pub fn class(self) -> StatusClass {
        match self.0 {
            0x00..=0x1F => StatusClass::Delivered,
            0x20..=0x3F => StatusClass::TemporaryRetrying,
            0x40..=0x5F => StatusClass::PermanentError,
            _ => StatusClass::TemporaryStopped,
        }
    }

    /// Whether the message reached the recipient.
    pub fn is_delivered(self) -> bool {
        self.class() == StatusClass::Delivered
    }

    /// Whether the outcome is final (anything but "still trying").
    pub fn is_final(self) -> bool {
        self.class() != StatusClass::TemporaryRetrying
    }
}

/// SMS-STATUS-REPORT: the fate of a message we sent with TP-SRR.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StatusReport {
    /// TP-MMS inverted: more messages are waiting.
    pub more_messages: bool,
    /// TP-LP: loop prevention.
    pub loop_prevention: bool,
    /// TP-SRQ: this reports on an SMS-COMMAND rather than an SMS-SUBMIT.
    pub command_report: bool,
    /// TP-MR of the submitted message (matches `+CMGS: <mr>`).
    pub message_reference: u8,
    /// TP-RA: the recipient of the submitted message.
    pub recipient: Address,
    /// TP-SCTS: when the service centre received the submitted message.
    pub timestamp: Timestamp,
    /// TP-DT: when it was delivered, or when the status was last changed.
    pub discharge_time: Timestamp,
    /// TP-ST.
    pub status: Status,
    /// TP-PID, if the optional parameters carry one.
    pub pid: Option<u8>,
    /// TP-DCS, if the optional parameters carry one.
    pub dcs: Option<DataCoding>,
    /// TP-UD, if the optional parameters carry it.
    pub user_data: Option<UserData>,
}

/// A transfer protocol data unit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Tpdu {
    /// SMS-DELIVER.
    Deliver(Deliver),
    /// SMS-SUBMIT.
    Submit(Submit),
    /// SMS-STATUS-REPORT.
    StatusReport(StatusReport),
}

/// A TPDU with the SMSC field in front: the form `AT+CMGR`, `+CMGL`, `+CMT`, `+CDS` return and
/// `AT+CMGS` takes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Pdu {
    /// The SMSC address; `None` is the empty field `00` (the modem's default SMSC).
    pub smsc: Option<Address>,
    /// The TPDU.
    pub tpdu: Tpdu,
}

/// An encoded PDU ready for `AT+CMGS=<tpdu_len>` followed by `hex()` and Ctrl-Z.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EncodedPdu {
    /// SMSC field followed by the TPDU.
    pub octets: Vec<u8>,
    /// Length of the TPDU in octets, i.e. excluding the SMSC field: the `AT+CMGS` argument.
    pub tpdu_len: usize,
}

impl EncodedPdu {
    /// Upper-case hex of the whole PDU (SMSC field included).
    pub fn hex(&self) -> String {
        to_hex(&self.octets)
    }

    /// The TPDU octets alone.
    pub fn tpdu(&self) -> &[u8] {
        let start = self.octets.len().saturating_sub(self.tpdu_len);
        self.octets.get(start..).unwrap_or_default()
    }
}

impl Pdu {
    /// Decodes octets that start with the SMSC field.
    ///
    /// # Errors
    /// A [`PduError`] naming the field and octet offset that failed.
    pub fn decode(octets: &[u8]) -> Result<Self, PduError> {
        let mut r = Reader::new(octets);
        let smsc = Address::decode_smsc(&mut r)?;
        let tpdu = Tpdu::decode_from(&mut r)?;
        Ok(Self { smsc, tpdu })
    }

    /// Decodes a hex PDU that starts with the SMSC field.
    ///
    /// # Errors
    /// As [`Pdu::decode`], plus hex errors.
    pub fn from_hex(hex: &str) -> Result<Self, PduError> {
        Self::decode(&from_hex(hex)?)
    }

    /// Decodes a hex PDU given the length from the AT response (`+CMGR: <stat>,,<len>`,
    /// `+CMT: ,<len>`, `+CDS: <len>`), which counts the TPDU only: if the hex is exactly that
    /// long there is no SMSC field (some modems omit it), otherwise it starts with one.
    ///
    /// Modems are known to print wrong lengths (Gammu's `tests/at-sms/10.dump` says 23 for a
    /// 29-octet TPDU), so when the PDU does not decode the way the length suggests, the other
    /// way is tried before giving up; the error returned is the one of the first attempt.
    ///
    /// # Errors
    /// As [`Pdu::decode`].
    pub fn from_hex_with_tpdu_len(hex: &str, tpdu_len: usize) -> Result<Self, PduError> {
        let octets = from_hex(hex)?;
        let bare = || Tpdu::decode(&octets).map(|tpdu| Self { smsc: None, tpdu });
        if octets.len() == tpdu_len {
            bare().or_else(|e| Self::decode(&octets).map_err(|_| e))
        } else {
            Self::decode(&octets).or_else(|e| bare().map_err(|_| e))
        }
    }

    /// Encodes the SMSC field and the TPDU.
    ///
    /// # Errors
    /// A [`PduError`] if a field cannot be represented (bad address, text outside the coding,
    /// user data too long, …).
    pub fn encode(&self) -> Result<EncodedPdu, PduError> {
        let mut octets = Vec::with_capacity(176);
        Address::encode_smsc(self.smsc.as_ref(), &mut octets)?;
        let smsc_len = octets.len();
        self.tpdu.encode_into(&mut octets)?;
        Ok(EncodedPdu {
            tpdu_len: octets.len() - smsc_len,
            octets,
        })
    }
}

impl Tpdu {
    /// Decodes a TPDU without an SMSC field.
    ///
    /// # Errors
    /// A [`PduError`] naming the field and octet offset that failed.
    pub fn decode(octets: &[u8]) -> Result<Self, PduError> {
        Self::decode_from(&mut Reader::new(octets))
    }

    /// Decodes a hex TPDU without an SMSC field.
    ///
    /// # Errors
    /// As [`Tpdu::decode`], plus hex errors.
    pub fn from_hex(hex: &str) -> Result<Self, PduError> {
        Self::decode(&from_hex(hex)?)
    }

    /// Encodes the TPDU alone.
    ///
    /// # Errors
    /// As [`Pdu::encode`].
    pub fn encode(&self) -> Result<Vec<u8>, PduError> {
        let mut out = Vec::with_capacity(175);
        self.encode_into(&mut out)?;
        Ok(out)
    }

    /// The user data, if the TPDU carries any.
    pub fn user_data(&self) -> Option<&UserData> {
        match self {
            Self::Deliver(d) => Some(&d.user_data),
            Self::Submit(s) => Some(&s.user_data),
            Self::StatusReport(s) => s.user_data.as_ref(),
        }
    }

    /// The concatenation element of the user data header, if any.
    pub fn concat(&self) -> Option<Concat> {
        self.user_data().and_then(UserData::concat)
    }

    fn decode_from(r: &mut Reader<'_>) -> Result<Self, PduError> {
        let first = r.u8(Field::FirstOctet)?;
        let udhi = first & UDHI != 0;
        match first & 0x03 {
            MTI_DELIVER => {
                let originator = Address::decode(r)?;
                let pid = r.u8(Field::ProtocolId)?;
                let dcs = DataCoding(r.u8(Field::DataCoding)?);
                let timestamp = Timestamp::decode(r, Field::Timestamp)?;
                let user_data = UserData::decode(r, dcs, udhi)?;
                Ok(Self::Deliver(Deliver {
                    more_messages: first & MMS_NO_MORE == 0,
                    loop_prevention: first & LP != 0,
                    status_report_indication: first & SRI_SRR_SRQ != 0,
                    reply_path: first & RP != 0,
                    originator,
                    pid,
                    dcs,
                    timestamp,
                    user_data,
                }))
            }
            MTI_SUBMIT => {
                let message_reference = r.u8(Field::MessageReference)?;
                let destination = Address::decode(r)?;
                let pid = r.u8(Field::ProtocolId)?;
                let dcs = DataCoding(r.u8(Field::DataCoding)?);
                let validity = ValidityPeriod::decode(r, (first >> 3) & 0x03)?;
                let user_data = UserData::decode(r, dcs, udhi)?;
                Ok(Self::Submit(Submit {
                    reject_duplicates: first & RD != 0,
                    status_report_request: first & SRI_SRR_SRQ != 0,
                    reply_path: first & RP != 0,
                    message_reference,
                    destination,
                    pid,
                    dcs,
                    validity,
                    user_data,
                }))
            }
            MTI_STATUS_REPORT => Self::decode_status_report(r, first),
            _ => Err(PduError::ReservedMessageType { first_octet: first }),
        }
    }

    fn decode_status_report(r: &mut Reader<'_>, first: u8) -> Result<Self, PduError> {
        let message_reference = r.u8(Field::MessageReference)?;
        let recipient = Address::decode(r)?;
        let timestamp = Timestamp::decode(r, Field::Timestamp)?;
        let discharge_time = Timestamp::decode(r, Field::DischargeTime)?;
        let status = Status(r.u8(Field::Status)?);
        let mut report = StatusReport {
            more_messages: first & MMS_NO_MORE == 0,
            loop_prevention: first & LP != 0,
            command_report: first & SRI_SRR_SRQ != 0,
            message_reference,
            recipient,
            timestamp,
            discharge_time,
            status,
            pid: None,
            dcs: None,
            user_data: None,
        };
        // The optional part: TP-PI (with extension octets while bit 7 is set), then whatever
        // it announces. Some service centres pad with nothing or with a zero TP-PI.
        if r.remaining() == 0 {
            return Ok(Self::StatusReport(report));
        }
        let mut pi = r.u8(Field::ParameterIndicator)?;
        let announced = pi;
        while pi & 0x80 != 0 {
            pi = r.u8(Field::ParameterIndicator)?;
        }
        if announced & 0x01 != 0 {
            report.pid = Some(r.u8(Field::ProtocolId)?);
        }
        if announced & 0x02 != 0 {
            report.dcs = Some(DataCoding(r.u8(Field::DataCoding)?));
        }
        if announced & 0x04 != 0 {
            let dcs = report.dcs.unwrap_or(DataCoding::GSM7);
            report.user_data = Some(UserData::decode(r, dcs, first & UDHI != 0)?);
        }
        Ok(Self::StatusReport(report))
    }

    fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), PduError> {
        let flag = |on: bool, bit: u8| if on { bit } else { 0 };
        match self {
            Self::Deliver(d) => {
                out.push(
                    MTI_DELIVER
                        | flag(!d.more_messages, MMS_NO_MORE)
                        | flag(d.loop_prevention, LP)
                        | flag(d.status_report_indication, SRI_SRR_SRQ)
                        | flag(d.user_data.header.is_some(), UDHI)
                        | flag(d.reply_path, RP),
                );
                d.originator.encode(out)?;
                out.push(d.pid);
                out.push(d.dcs.octet());
                d.timestamp.encode(out)?;
                d.user_data.encode(d.dcs, out)
            }
            Self::Submit(s) => {
                out.push(
                    MTI_SUBMIT
                        | flag(s.reject_duplicates, RD)
                        | ValidityPeriod::vpf_bits(s.validity.as_ref())
                        | flag(s.status_report_request, SRI_SRR_SRQ)
                        | flag(s.user_data.header.is_some(), UDHI)
                        | flag(s.reply_path, RP),
                );
                out.push(s.message_reference);
                s.destination.encode(out)?;
                out.push(s.pid);
                out.push(s.dcs.octet());
                if let Some(vp) = &s.validity {
                    vp.encode(out)?;
                }
                s.user_data.encode(s.dcs, out)
            }
            Self::StatusReport(s) => {
                let udhi = s.user_data.as_ref().is_some_and(|u| u.header.is_some());
                out.push(
                    MTI_STATUS_REPORT
                        | flag(!s.more_messages, MMS_NO_MORE)
                        | flag(s.loop_prevention, LP)
                        | flag(s.command_report, SRI_SRR_SRQ)
                        | flag(udhi, UDHI),
                );
                out.push(s.message_reference);
                s.recipient.encode(out)?;
                s.timestamp.encode(out)?;
                s.discharge_time.encode(out)?;
                out.push(s.status.0);
                let pi = flag(s.pid.is_some(), 0x01)
                    | flag(s.dcs.is_some(), 0x02)
                    | flag(s.user_data.is_some(), 0x04);
                if pi != 0 {
                    out.push(pi);
                    out.extend(s.pid);
                    out.extend(s.dcs.map(DataCoding::octet));
                    if let Some(ud) = &s.user_data {
                        ud.encode(s.dcs.unwrap_or(DataCoding::GSM7), out)?;
                    }
                }
                Ok(())
            }
        }
    }
}
