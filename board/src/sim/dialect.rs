//! What the simulated modem says, per vendor: identity strings, boot URCs, the call-state
//! URCs it sends, its DTMF URC, which audio command opens the voice port, how USSD strings
//! travel, and how it reports an unknown command or a full SMS memory.

use serde::{Deserialize, Serialize};

/// The simulated modem model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SimProfile {
    /// Quectel EC25: ccinfo call URCs, `+QTONEDET`, `+QPCMV=1,0`, `RDY`, memory `ME`.
    QuectelEc25,
    /// Huawei E1550: `^ORIG/^CONF/^CONN/^CEND`, `^DDTMF`, `^DDSETEX=2`, packed-GSM7 USSD,
    /// `^SMMEMFULL`, `COMMAND NOT SUPPORT`, memory `SM`.
    HuaweiE1550,
    /// SIMCom SIM7600: unsolicited `+CLCC` and `VOICE CALL:` lines, `+RXDTMF`, `+CPCMREG=1`.
    Sim7600,
}

impl SimProfile {
    /// Parses a profile id (`quectel-ec25`, `huawei-e1550`, `simcom-sim7600`, and the vendor
    /// profile aliases).
    pub fn from_id(id: &str) -> Option<Self> {
        match id.to_ascii_lowercase().as_str() {
            "quectel-ec25" | "quectel-ec21" | "quectel-ec2x" | "quectel" => Some(Self::QuectelEc25),
            "huawei-e1550" | "huawei-e173" | "huawei" => Some(Self::HuaweiE1550),
            "simcom-sim7600" | "sim7600" => Some(Self::Sim7600),
            _ => None,
        }
    }

    /// The driver's vendor profile id for this model.
    pub fn vendor_profile_id(self) -> &'static str {
        match self {
            Self::QuectelEc25 => "quectel-ec25",
            Self::HuaweiE1550 => "huawei-e1550",
            Self::Sim7600 => "simcom-sim7600",
        }
    }

    pub(crate) fn dialect(self) -> Dialect {
        match self {
            Self::QuectelEc25 => Dialect {
                manufacturer: "Quectel",
                model: "EC25",
                revision: "EC25EFAR06A06M4G",
                iccid_command: "AT+QCCID",
                iccid_prefix: "+QCCID: ",
                memory: "ME",
                boot: &[
                    "RDY",
                    "+CFUN: 1",
                    "+CPIN: READY",
                    "+QUSIM: 1",
                    "+QIND: SMS DONE",
                    "+QIND: PB DONE",
                ],
                calls: CallUrcs::Ccinfo,
                dtmf: DtmfUrc::Qtonedet,
                audio_command: "AT+QPCMV",
                ussd_packed: false,
                unknown: "ERROR",
                memfull_urc: None,
                lte: true,
            },
            Self::HuaweiE1550 => Dialect {
                manufacturer: "huawei",
                model: "E1550",
                revision: "11.608.12.02.143",
                iccid_command: "AT^ICCID?",
                iccid_prefix: "^ICCID: ",
                memory: "SM",
                boot: &["^BOOT:20952548,0,0,0,75", "+CPIN: READY"],
                calls: CallUrcs::Huawei,
                dtmf: DtmfUrc::Ddtmf,
                audio_command: "AT^DDSETEX",
                ussd_packed: true,
                unknown: "COMMAND NOT SUPPORT",
                memfull_urc: Some("^SMMEMFULL: \"SM\""),
                lte: false,
            },
            Self::Sim7600 => Dialect {
                manufacturer: "SIMCOM INCORPORATED",
                model: "SIMCOM_SIM7600E-H",
                revision: "LE20B04SIM7600M22",
                iccid_command: "AT+CICCID",
                iccid_prefix: "+ICCID: ",
                memory: "ME",
                boot: &["RDY", "+CPIN: READY", "SMS DONE", "PB DONE"],
                calls: CallUrcs::Clcc,
                dtmf: DtmfUrc::Rxdtmf,
                audio_command: "AT+CPCMREG",
                ussd_packed: false,
                unknown: "ERROR",
                memfull_urc: None,
                lte: true,
            },
        }
    }
}

/// Which call-state URCs the modem sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallUrcs {
    /// `+QIND: "ccinfo",...` (after `AT+QINDCFG="ccinfo",1`), plus `NO CARRIER`/`BUSY`.
    Ccinfo,
    /// `^ORIG`, `^CONF`, `^CONN`, `^CEND`.
    Huawei,
    /// Unsolicited `+CLCC:` (after `AT+CLCC=1`), `VOICE CALL: BEGIN/END`.
    Clcc,
}

/// Which URC reports a received DTMF digit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DtmfUrc {
    /// `+QTONEDET: <ascii code>`.
    Qtonedet,
    /// `^DDTMF: <d>`.
    Ddtmf,
    /// `+RXDTMF: <d>`.
    Rxdtmf,
}

/// Vendor data of the simulated modem.
#[derive(Debug, Clone)]
pub(crate) struct Dialect {
    pub(crate) manufacturer: &'static str,
    pub(crate) model: &'static str,
    pub(crate) revision: &'static str,
    pub(crate) iccid_command: &'static str,
    pub(crate) iccid_prefix: &'static str,
    pub(crate) memory: &'static str,
    pub(crate) boot: &'static [&'static str],
    pub(crate) calls: CallUrcs,
    pub(crate) dtmf: DtmfUrc,
    /// The command (without `=`) that switches call audio to the serial PCM port.
    pub(crate) audio_command: &'static str,
    pub(crate) ussd_packed: bool,
    pub(crate) unknown: &'static str,
    pub(crate) memfull_urc: Option<&'static str>,
    pub(crate) lte: bool,
}
