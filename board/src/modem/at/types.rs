//! Value types that AT lines carry: SIM state, registration, signal, call entries, DTMF and
//! final-result error codes with their 3GPP TS 27.007 / 27.005 meanings.
//!
//! They are shared by the URC parser, the response parsers and the driver's `ModemStatus`, so
//! they are serde-serializable and carry no parsing logic beyond `from_code` style mappings.

use serde::{Deserialize, Serialize};

/// SIM state as reported by `+CPIN` (or inferred from `+CME ERROR` codes 10-15).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SimState {
    /// Not yet queried.
    Unknown,
    /// `READY`: unlocked and usable.
    Ready,
    /// `SIM PIN`: waiting for the PIN.
    PinRequired,
    /// `SIM PUK`: blocked, needs the PUK.
    PukRequired,
    /// `+CME ERROR: 14`/`515` or `NOT READY`: initialising, try again later.
    Busy,
    /// `+CME ERROR: 10` / `NOT INSERTED`.
    NotInserted,
    /// `+CME ERROR: 13` or another state the gateway cannot use; the text says which.
    Error(String),
}

impl SimState {
    /// Maps the text of a `+CPIN: <code>` line.
    pub fn from_cpin(code: &str) -> Self {
        match code.trim().trim_matches('"').to_ascii_uppercase().as_str() {
            "READY" => SimState::Ready,
            "SIM PIN" => SimState::PinRequired,
            "SIM PUK" => SimState::PukRequired,
            "NOT READY" => SimState::Busy,
            "NOT INSERTED" | "SIM REMOVED" => SimState::NotInserted,
            other => SimState::Error(other.to_owned()),
        }
    }
}

/// Network registration state (`<stat>` of `+CREG`/`+CEREG`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegStatus {
    /// 0: not registered, not searching.
    NotRegistered,
    /// 1: registered, home network.
    Home,
    /// 2: not registered, searching.
    Searching,
    /// 3: registration denied.
    Denied,
    /// 4: unknown.
    Unknown,
    /// 5: registered, roaming.
    Roaming,
    /// Any other value (SMS-only / emergency-only states of newer specs).
    Other(u8),
}

impl RegStatus {
    /// Maps the numeric `<stat>`.
    pub fn from_code(code: u8) -> Self {
        match code {
            0 => RegStatus::NotRegistered,
            1 => RegStatus::Home,
            2 => RegStatus::Searching,
            3 => RegStatus::Denied,
            4 => RegStatus::Unknown,
            5 => RegStatus::Roaming,
            n => RegStatus::Other(n),
        }
    }

    /// True when calls and SMS can work (home or roaming).
    pub fn is_registered(self) -> bool {
        matches!(self, RegStatus::Home | RegStatus::Roaming)
    }
}

/// Access technology (`<AcT>` of 27.007 §7.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessTech {
    /// 0, 1, 3: GSM / GPRS / EDGE.
    Gsm,
    /// 2, 4, 5, 6: UMTS / HSPA.
    Umts,
    /// 7: LTE.
    Lte,
    /// Other codes.
    Other(u8),
}

impl AccessTech {
    /// Maps the numeric `<AcT>`.
    pub fn from_code(code: u8) -> Self {
        match code {
            0 | 1 | 3 => AccessTech::Gsm,
            2 | 4 | 5 | 6 => AccessTech::Umts,
            7 => AccessTech::Lte,
            n => AccessTech::Other(n),
        }
    }
}

/// One registration report: `+CREG: [<n>,]<stat>[,<lac>,<ci>[,<AcT>]]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    /// Registration state.
    pub status: RegStatus,
    /// Location (or tracking) area code.
    pub lac: Option<u32>,
    /// Cell id.
    pub cell_id: Option<u32>,
    /// Access technology, when reported.
    pub act: Option<AccessTech>,
}

/// A signal report `+CSQ: <rssi>,<ber>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalQuality {
    /// Raw `<rssi>` 0-31, 99 unknown.
    pub rssi: u8,
    /// Raw `<ber>` 0-7, 99 unknown.
    pub ber: u8,
}

impl SignalQuality {
    /// Signal strength in dBm (`-113 + 2·rssi`), `None` when unknown (99) or out of range.
    pub fn dbm(self) -> Option<i16> {
        if self.rssi <= 31 {
            Some(-113 + 2 * i16::from(self.rssi))
        } else {
            None
        }
    }
}

/// Call direction (`<dir>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// 0: mobile originated (we dialled).
    Outgoing,
    /// 1: mobile terminated (they called).
    Incoming,
}

/// Call state (`<stat>` of `+CLCC`; `-1` of `+QIND: "ccinfo"` and `6` of `^DSCI` = released).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallStat {
    /// 0: active (talking).
    Active,
    /// 1: held.
    Held,
    /// 2: dialing (MO).
    Dialing,
    /// 3: alerting (MO, the far end rings).
    Alerting,
    /// 4: incoming (MT, ringing here).
    Incoming,
    /// 5: waiting (MT, another call is active).
    Waiting,
    /// Released (ccinfo `-1`, DSCI `6`).
    Released,
}

impl CallStat {
    /// Maps `+CLCC`/ccinfo `<stat>`; `-1` and `6` mean released.
    pub fn from_code(code: i16) -> Option<Self> {
        Some(match code {
            0 => CallStat::Active,
            1 => CallStat::Held,
            2 => CallStat::Dialing,
            3 => CallStat::Alerting,
            4 => CallStat::Incoming,
            5 => CallStat::Waiting,
            -1 | 6 | 7 => CallStat::Released,
            _ => return None,
        })
    }
}

/// One call as `+CLCC`, `+QIND: "ccinfo"` or `^DSCI` report it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallInfo {
    /// The modem's call index (`<id>`), 1-based.
    pub index: u8,
    /// Who called.
    pub direction: Direction,
    /// State.
    pub state: CallStat,
    /// `<mode>`: 0 voice, 1 data, 2 fax (9 = unknown).
    pub mode: u8,
    /// Part of a multiparty call.
    pub multiparty: bool,
    /// The other party's number, when known (withheld numbers are `None`).
    pub number: Option<String>,
    /// Type of address (145 international).
    pub toa: Option<u8>,
}

/// Where a DTMF digit report came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DtmfSource {
    /// Quectel `+QTONEDET: <ascii>`.
    Qtonedet,
    /// SIMCom SIM7600 `+RXDTMF: <d>`.
    Rxdtmf,
    /// SIMCom SIM800 `+DTMF: <d>[,<ms>]`.
    Ddet,
    /// Huawei `^DDTMF: <d>`.
    Ddtmf,
}

/// True for the 16 DTMF symbols.
pub fn is_dtmf_digit(c: char) -> bool {
    matches!(c, '0'..='9' | '*' | '#' | 'A'..='D')
}

/// A `+CME ERROR` / `+CMS ERROR` payload: numeric with `AT+CMEE=1`, verbose with `=2`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Numeric code.
    Code(u16),
    /// Verbose text (`AT+CMEE=2`).
    Text(String),
}

impl ErrorCode {
    /// Parses the text after `+CME ERROR:`.
    pub fn parse(s: &str) -> Self {
        let t = s.trim();
        t.parse::<u16>()
            .map_or_else(|_| ErrorCode::Text(t.to_owned()), ErrorCode::Code)
    }

    /// The numeric code, if any.
    pub fn code(&self) -> Option<u16> {
        match self {
            ErrorCode::Code(c) => Some(*c),
            ErrorCode::Text(_) => None,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ErrorCode::Code(c) => write!(f, "{c}"),
            ErrorCode::Text(t) => f.write_str(t),
        }
    }
}

/// Meaning of a `+CME ERROR` code (27.007 §9.2), for messages and logs.
pub fn cme_meaning(code: &ErrorCode) -> &str {
    match code {
        ErrorCode::Text(t) => t,
        ErrorCode::Code(c) => match c {
            0 => "phone failure",
            1 => "no connection to phone",
            3 => "operation not allowed",
            4 => "operation not supported",
            5 => "PH-SIM PIN required",
            10 => "SIM not inserted",
            11 => "SIM PIN required",
            12 => "SIM PUK required",
            13 => "SIM failure",
            14 => "SIM busy",
            15 => "SIM wrong",
            16 => "incorrect password",
            17 => "SIM PIN2 required",
            18 => "SIM PUK2 required",
            20 => "memory full",
            21 => "invalid index",
            22 => "not found",
            23 => "memory failure",
            30 => "no network service",
            31 => "network timeout",
            32 => "network not allowed - emergency calls only",
            100 => "unknown error",
            515 => "device busy (initialising)",
            _ => "unknown CME error",
        },
    }
}

/// Meaning of a `+CMS ERROR` code (27.005 §3.2.5; network causes < 128 from 24.011).
pub fn cms_meaning(code: &ErrorCode) -> &str {
    match code {
        ErrorCode::Text(t) => t,
        ErrorCode::Code(c) => match c {
            1 => "unassigned (unallocated) number",
            8 => "operator determined barring",
            10 => "call barred",
            21 => "short message transfer rejected",
            27 => "destination out of service",
            28 => "unidentified subscriber",
            29 => "facility rejected",
            30 => "unknown subscriber",
            38 => "network out of order",
            41 => "temporary failure",
            42 => "congestion",
            47 => "resources unavailable",
            50 => "requested facility not subscribed",
            69 => "requested facility not implemented",
            81 => "invalid short message reference value",
            95 => "invalid message, unspecified",
            96 => "invalid mandatory information",
            97 => "message type non-existent or not implemented",
            111 => "protocol error, unspecified",
            127 => "interworking, unspecified",
            300 => "ME failure",
            301 => "SMS service of ME reserved",
            302 => "operation not allowed",
            303 => "operation not supported",
            304 => "invalid PDU mode parameter",
            305 => "invalid text mode parameter",
            310 => "SIM not inserted",
            311 => "SIM PIN required",
            312 => "PH-SIM PIN required",
            313 => "SIM failure",
            314 => "SIM busy",
            315 => "SIM wrong",
            316 => "SIM PUK required",
            320 => "memory failure",
            321 => "invalid memory index",
            322 => "memory full",
            330 => "SMSC address unknown",
            331 => "no network service",
            332 => "network timeout",
            340 => "no +CNMA acknowledgement expected",
            500 => "unknown error",
            512..=u16::MAX => "manufacturer specific error",
            _ => "unknown CMS error",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dbm_and_codes() {
        assert_eq!(SignalQuality { rssi: 20, ber: 99 }.dbm(), Some(-73));
        assert_eq!(SignalQuality { rssi: 99, ber: 99 }.dbm(), None);
        assert_eq!(SimState::from_cpin("SIM PIN"), SimState::PinRequired);
        assert_eq!(CallStat::from_code(-1), Some(CallStat::Released));
        assert_eq!(cms_meaning(&ErrorCode::Code(322)), "memory full");
        assert_eq!(
            ErrorCode::parse("SIM busy"),
            ErrorCode::Text("SIM busy".into())
        );
    }
}
