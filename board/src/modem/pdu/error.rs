//! The one error type of the PDU codec, with enough context (octet offset, field) to find the
//! fault in a logged PDU without re-decoding it by hand.

use std::fmt;

use thiserror::Error;

/// The PDU field being read or written when an error happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Field {
    /// The SMSC length octet in front of the TPDU (TS 24.011 RP address).
    SmscLength,
    /// The SMSC address (type of address and digits).
    SmscAddress,
    /// The TPDU first octet (TP-MTI and flags).
    FirstOctet,
    /// TP-MR, the message reference.
    MessageReference,
    /// The address length octet of TP-OA / TP-DA / TP-RA.
    AddressLength,
    /// The type-of-address octet of TP-OA / TP-DA / TP-RA.
    AddressType,
    /// The digits (or packed alphanumeric text) of TP-OA / TP-DA / TP-RA.
    AddressValue,
    /// TP-PID, the protocol identifier.
    ProtocolId,
    /// TP-DCS, the data coding scheme.
    DataCoding,
    /// TP-SCTS, the service-centre time stamp.
    Timestamp,
    /// TP-DT, the discharge time of a status report.
    DischargeTime,
    /// TP-VP, the validity period.
    ValidityPeriod,
    /// TP-UDL, the user data length.
    UserDataLength,
    /// TP-UDH, the user data header.
    UserDataHeader,
    /// TP-UD, the user data.
    UserData,
    /// TP-ST, the status of a status report.
    Status,
    /// TP-PI, the parameter indicator of a status report.
    ParameterIndicator,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::SmscLength => "SMSC length",
            Self::SmscAddress => "SMSC address",
            Self::FirstOctet => "first octet",
            Self::MessageReference => "TP-MR",
            Self::AddressLength => "address length",
            Self::AddressType => "type of address",
            Self::AddressValue => "address digits",
            Self::ProtocolId => "TP-PID",
            Self::DataCoding => "TP-DCS",
            Self::Timestamp => "TP-SCTS",
            Self::DischargeTime => "TP-DT",
            Self::ValidityPeriod => "TP-VP",
            Self::UserDataLength => "TP-UDL",
            Self::UserDataHeader => "TP-UDH",
            Self::UserData => "TP-UD",
            Self::Status => "TP-ST",
            Self::ParameterIndicator => "TP-PI",
        })
    }
}

/// Everything that can go wrong while decoding or encoding a PDU.
///
/// Offsets are octet offsets from the start of the buffer handed to the decoder (so they
/// include the SMSC field when it was part of the input).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PduError {
    /// A character of the hex string is not a hex digit.
    #[error("bad hex at character {index}: {found:?} is not a hex digit")]
    BadHexDigit {
        /// Character index in the hex string.
        index: usize,
        /// The offending character.
        found: char,
    },
    /// The hex string has an odd number of digits.
    #[error("bad hex: odd number of digits ({len})")]
    OddHexLength {
        /// Number of hex digits.
        len: usize,
    },
    /// The input ended in the middle of a field.
    #[error("truncated at octet {offset} while reading {field} ({needed} more octet(s) needed)")]
    Truncated {
        /// Octet offset where the field (or its missing part) starts.
        offset: usize,
        /// The field being read.
        field: Field,
        /// How many octets were missing.
        needed: usize,
    },
    /// A type-of-address octet that TS 23.040 does not allow.
    #[error("bad type of address 0x{toa:02X} at octet {offset}: {reason}")]
    BadToa {
        /// Octet offset of the type-of-address octet.
        offset: usize,
        /// The octet.
        toa: u8,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An address field whose length or digits are invalid.
    #[error("bad address at octet {offset}: {reason}")]
    BadAddress {
        /// Octet offset of the address (its length octet).
        offset: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A time stamp (SCTS, discharge time, absolute validity) with non-decimal digits.
    #[error("bad {field} at octet {offset}: {reason}")]
    BadTimestamp {
        /// Octet offset of the time stamp.
        offset: usize,
        /// Which time stamp.
        field: Field,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The TP-MTI bits of the first octet are the reserved value 0b11.
    #[error("reserved message type indicator in first octet 0x{first_octet:02X}")]
    ReservedMessageType {
        /// The first octet.
        first_octet: u8,
    },
    /// A data coding scheme that cannot be used for what was asked.
    #[error("invalid data coding scheme 0x{dcs:02X}: {reason}")]
    InvalidDcs {
        /// The DCS octet.
        dcs: u8,
        /// Why it cannot be used.
        reason: &'static str,
    },
    /// TP-UDL announces more user data than the PDU carries.
    #[error(
        "TP-UDL {udl} at octet {offset} needs {needed} octet(s) of user data but only {available} remain"
    )]
    UdlTooLong {
        /// Octet offset of TP-UDL.
        offset: usize,
        /// The announced length (septets for GSM7, octets otherwise).
        udl: usize,
        /// Octets the announced length needs.
        needed: usize,
        /// Octets left in the PDU.
        available: usize,
    },
    /// TP-UDL is above what one SMS can carry (160 septets / 140 octets).
    #[error("TP-UDL {udl} at octet {offset} exceeds the maximum of {max}")]
    UdlAboveMaximum {
        /// Octet offset of TP-UDL.
        offset: usize,
        /// The announced length.
        udl: usize,
        /// The maximum for this alphabet.
        max: usize,
    },
    /// The user data header is malformed (length overruns, bad information element length).
    #[error("malformed user data header at octet {offset}: {reason}")]
    BadUdh {
        /// Octet offset of the offending part of the header.
        offset: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Text to encode in GSM7 contains a character outside the default alphabet and its
    /// extension table.
    #[error("character {ch:?} is not in the GSM 7-bit default alphabet")]
    NotGsm7 {
        /// The character.
        ch: char,
    },
    /// An address to encode is not a phone number nor a valid alphanumeric sender.
    #[error("invalid address {address:?}: {reason}")]
    InvalidAddress {
        /// The address as given.
        address: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A time stamp to encode is outside what the 7-octet form can express.
    #[error("time stamp cannot be encoded: {reason}")]
    TimestampOutOfRange {
        /// What is out of range.
        reason: &'static str,
    },
    /// User data to encode does not fit one SMS.
    #[error("user data too long: {len} {unit} (maximum {max})")]
    UserDataTooLong {
        /// Length needed.
        len: usize,
        /// Maximum allowed.
        max: usize,
        /// "septets" or "octets".
        unit: &'static str,
    },
    /// A text needs more than 255 parts.
    #[error("text needs {parts} parts but a concatenated message has at most 255")]
    TooManyParts {
        /// Parts the text would need.
        parts: usize,
    },
}
