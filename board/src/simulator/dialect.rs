//! What the simulated modem says, per vendor: identity strings, boot URCs, the call-state
//! URCs it sends, its DTMF URC, which audio command opens the voice port, how USSD strings
//! travel, the character sets and SMS memories it offers, and how it reports an unknown command
//! or a full SMS memory.
//!
//! Which commands each model knows is not here but in the command tables of the families
//! (`core/*.rs`), so `AT+CLAC` and the dispatcher read one list.

use serde::{Deserialize, Serialize};

/// The simulated modem model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SimulatedModel {
    /// Quectel EC25: ccinfo call URCs, `+QTONEDET`, `+QPCMV=1,0`, `RDY`, memory `ME`.
    QuectelEc25,
    /// Huawei E1550: `^ORIG/^CONF/^CONN/^CEND`, `^DDTMF`, `^DDSETEX=2`, packed-GSM7 USSD
    /// (plain text after `AT^USSDMODE=0`), `^SMMEMFULL`, `COMMAND NOT SUPPORT`, memory `SM`.
    HuaweiE1550,
    /// SIMCom SIM7600: unsolicited `+CLCC` and `VOICE CALL:` lines, `+RXDTMF`, `+CPCMREG=1`.
    Sim7600,
}

impl SimulatedModel {
    /// Every model.
    pub const ALL: [SimulatedModel; 3] = [Self::QuectelEc25, Self::HuaweiE1550, Self::Sim7600];

    /// Parses a model id (`quectel-ec25`, `huawei-e1550`, `simcom-sim7600`, and the vendor
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
                ati: AtiStyle::Plain,
                iccid_command: "AT+QCCID",
                iccid_prefix: "+QCCID: ",
                memory: "ME",
                // EC25 manual §8 (AT+CPMS): SM, ME and MT; status reports are kept in SR
                // (which the EC25 then mis-announces as "SM",0: IchthysMaranatha PR #75).
                memories: &["SM", "ME", "MT", "SR"],
                // Quectel forum (EC21, `AT+CSCS=?`): ("IRA","GSM","UCS2"); GSM at power-on.
                charsets: &["IRA", "GSM", "UCS2"],
                default_charset: "GSM",
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
                ussd_packed: false,
                unknown: "ERROR",
                memfull_urc: None,
                lte: true,
            },
            Self::HuaweiE1550 => Dialect {
                manufacturer: "huawei",
                model: "E1550",
                revision: "11.608.12.02.143",
                ati: AtiStyle::Labelled,
                iccid_command: "AT^ICCID?",
                iccid_prefix: "^ICCID: ",
                memory: "SM",
                memories: &["ME", "MT", "SM", "SR"],
                charsets: &["IRA", "GSM", "UCS2"],
                default_charset: "IRA",
                boot: &["^BOOT:20952548,0,0,0,75", "+CPIN: READY"],
                calls: CallUrcs::Huawei,
                dtmf: DtmfUrc::Ddtmf,
                ussd_packed: true,
                unknown: "COMMAND NOT SUPPORT",
                memfull_urc: Some("^SMMEMFULL: \"SM\""),
                lte: false,
            },
            Self::Sim7600 => Dialect {
                manufacturer: "SIMCOM INCORPORATED",
                model: "SIMCOM_SIM7600E-H",
                revision: "LE20B04SIM7600M22",
                ati: AtiStyle::Labelled,
                iccid_command: "AT+CICCID",
                iccid_prefix: "+ICCID: ",
                memory: "ME",
                memories: &["ME", "MT", "SM", "SR"],
                charsets: &["IRA", "GSM", "UCS2"],
                default_charset: "IRA",
                boot: &["RDY", "+CPIN: READY", "SMS DONE", "PB DONE"],
                calls: CallUrcs::Clcc,
                dtmf: DtmfUrc::Rxdtmf,
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
    /// `+QIND: "ccinfo",...` (after `AT+QINDCFG="ccinfo",1`) or `^DSCI:` (after
    /// `AT^DSCI=1`), plus `NO CARRIER`/`BUSY`.
    Ccinfo,
    /// `^ORIG`, `^CONF`, `^CONN`, `^CEND`.
    Huawei,
    /// Unsolicited `+CLCC:` (after `AT+CLCC=1`), `VOICE CALL: BEGIN/END`, `MISSED_CALL:`.
    Clcc,
}

/// Which URC reports a received DTMF digit (once the gateway enabled detection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DtmfUrc {
    /// `+QTONEDET: <ascii code>` after `AT+QTONEDET=1`.
    Qtonedet,
    /// `^DDTMF: <d>` after `AT^DDTMFCFG=0,1`.
    Ddtmf,
    /// `+RXDTMF: <d>` after `AT+DDET=1`.
    Rxdtmf,
}

/// How `ATI` presents the identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AtiStyle {
    /// Quectel: manufacturer, model and `Revision: …` on three lines.
    Plain,
    /// Huawei and SIMCom: `Manufacturer: …`, `Model: …`, `Revision: …`, `IMEI: …`,
    /// `+GCAP: …`.
    Labelled,
}

/// Vendor data of the simulated modem.
#[derive(Debug, Clone)]
pub(crate) struct Dialect {
    pub(crate) manufacturer: &'static str,
    pub(crate) model: &'static str,
    pub(crate) revision: &'static str,
    pub(crate) ati: AtiStyle,
    pub(crate) iccid_command: &'static str,
    pub(crate) iccid_prefix: &'static str,
    /// The memory the modem stores received messages in at power-on (and names in `+CMTI`
    /// until `AT+CPMS` selects another); its indexes count from 1 for `SM`, from 0 for `ME`.
    pub(crate) memory: &'static str,
    /// The memories `AT+CPMS` accepts (all are the one storage of the simulator).
    pub(crate) memories: &'static [&'static str],
    /// The TE character sets `AT+CSCS` offers.
    pub(crate) charsets: &'static [&'static str],
    pub(crate) default_charset: &'static str,
    pub(crate) boot: &'static [&'static str],
    pub(crate) calls: CallUrcs,
    pub(crate) dtmf: DtmfUrc,
    /// USSD strings travel as packed GSM7 hex by default (Huawei `AT^USSDMODE=1`).
    pub(crate) ussd_packed: bool,
    /// The final result of a command the model does not know.
    pub(crate) unknown: &'static str,
    pub(crate) memfull_urc: Option<&'static str>,
    pub(crate) lte: bool,
}
