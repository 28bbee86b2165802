//! Vendor profiles: what differs between Quectel EC2x, SIMCom SIM7600/SIM800, Huawei
//! E1550/E173 and a plain 3GPP modem, kept as data.
//!
//! A profile says which extra init commands to send, how to hang up, how to send DTMF, how to
//! switch a call's audio to the modem's voice port and which transport that port is, how USSD
//! strings are encoded, and which SMS memory to use. The sources are the reference's §1
//! tables (chan_quectel, chan_dongle, ModemManager behaviour). Built-in profiles are looked up
//! by id ([`VendorProfile::builtin`]); board profiles name them.

use serde::{Deserialize, Serialize};

/// The modem family; decides the few behaviours that are code, not data (URC dialects are
/// all parsed anyway).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Vendor {
    /// Quectel EC2x / EG2x.
    Quectel,
    /// SIMCom SIM7600 series.
    Sim7600,
    /// SIMCom SIM800 / SIM900 series.
    Sim800,
    /// Huawei E1550 / E173 / K3715 voice sticks.
    Huawei,
    /// Plain 3GPP TS 27.007 behaviour.
    Generic,
}

/// One command of the vendor init block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InitCommand {
    /// Command text without `\r`.
    pub command: String,
    /// Init fails when this command fails; otherwise a failure is logged and ignored (many
    /// firmwares lack one optional feature or another).
    #[serde(default)]
    pub required: bool,
}

impl InitCommand {
    fn optional(c: &str) -> Self {
        Self {
            command: c.to_owned(),
            required: false,
        }
    }
}

/// How a call is hung up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HangupStyle {
    /// `AT+CHUP` (`AT+CHLD=1<idx>` for one of several calls).
    Chup,
    /// Quectel `AT+QHUP=16,<idx>` (carries the release cause and the call).
    Qhup,
    /// `ATH` (SIM800 with `AT+CVHU=0`).
    Ath,
}

/// How DTMF digits are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DtmfSendStyle {
    /// `AT+VTS=<d>`.
    Vts,
    /// `AT+VTS="<d>"` (Quectel).
    VtsQuoted,
    /// Huawei `AT^DTMF=<idx>,<d>`.
    HuaweiDtmf,
}

impl DtmfSendStyle {
    /// The command that sends `digit` on call `index`.
    pub fn command(self, index: u8, digit: char) -> String {
        match self {
            DtmfSendStyle::Vts => format!("AT+VTS={digit}"),
            DtmfSendStyle::VtsQuoted => format!("AT+VTS=\"{digit}\""),
            DtmfSendStyle::HuaweiDtmf => format!("AT^DTMF={index},{digit}"),
        }
    }
}

/// How the USSD string of `AT+CUSD=1,"<str>",15` is encoded, and how replies come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UssdEncoding {
    /// Plain text in the `AT+CSCS="GSM"` character set (Quectel, SIMCom).
    Text,
    /// GSM7-packed hex (Huawei sticks).
    Gsm7PackedHex,
    /// UCS2 hex (modems kept in `AT+CSCS="UCS2"`).
    Ucs2Hex,
}

/// Kind of voice transport a modem offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AudioKind {
    /// Raw PCM (8 kHz s16le mono, 20 ms frames) on a tty (Huawei `^DDSETEX=2`, Quectel
    /// `+QPCMV=1,0`, SIMCom `+CPCMREG=1`).
    SerialPcm,
    /// USB Audio Class: an ALSA card (Quectel `+QPCMV=1,2`).
    UsbAudio,
    /// Analog MIC/SPK pins wired to an external sound card (SIM800).
    Analog,
    /// No voice path (data-only sticks).
    None,
}

/// What a profile says about voice audio.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AudioProfile {
    /// The transport the modem offers by default (the board may choose another the modem
    /// supports, e.g. Quectel UAC).
    pub kind: AudioKind,
    /// Sample rate of the voice port.
    pub sample_rate: u32,
    /// Commands that route a call's audio to the voice port, sent once per call.
    pub enable: Vec<String>,
    /// Send [`AudioProfile::enable`] right after `ATD`/`ATA` succeed (Huawei) instead of when
    /// the call becomes active.
    pub enable_early: bool,
    /// Commands sent after a call ended (SIMCom `AT+CPCMREG=0`).
    pub disable: Vec<String>,
}

/// A vendor profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VendorProfile {
    /// Profile id (`quectel-ec25`).
    pub id: String,
    /// Family.
    pub vendor: Vendor,
    /// Human description.
    pub description: String,
    /// Command that reads the ICCID (`AT+QCCID`, `AT+CICCID`, `AT+CCID`, `AT^ICCID?`).
    pub iccid_command: String,
    /// Also configure and query LTE registration (`AT+CEREG`).
    pub lte: bool,
    /// SMS memory used for all three `AT+CPMS` memories.
    pub sms_memory: String,
    /// `AT+CNMI` for stored delivery (`+CMTI`).
    pub cnmi_stored: String,
    /// `AT+CNMI` for direct delivery (`+CMT` + `AT+CNMA`).
    pub cnmi_direct: String,
    /// Vendor init block, sent after the 3GPP part.
    pub init: Vec<InitCommand>,
    /// Hang-up style.
    pub hangup: HangupStyle,
    /// DTMF sending style.
    pub dtmf_send: DtmfSendStyle,
    /// USSD encoding.
    pub ussd: UssdEncoding,
    /// Voice audio.
    pub audio: AudioProfile,
    /// `^BOOT` is also a periodic heartbeat on this modem: verify with `AT+CMEE?` before
    /// re-initialising (RDY always means a reboot).
    pub boot_is_heartbeat: bool,
    /// The modem writes and sends stored messages (`AT+CMGW` / `AT+CMSS`, 27.005 §3.5.3-4):
    /// the crash-safe send path. When the modem refuses them anyway the driver falls back
    /// to `AT+CMGS` for the rest of its life.
    #[serde(default = "yes")]
    pub sms_store_send: bool,
    /// Call hold and explicit call transfer (`AT+CHLD=2`, `=2x`, `=4`, 27.007 §7.13).
    #[serde(default = "yes")]
    pub call_hold: bool,
    /// `AT+CHLD` must wait until a dialled call alerts: chan_dongle records that `AT+CHLD`
    /// before `^CONF` after `ATD` wedges the E1550 (no more replies, only `^BOOT`/`^RSSI`).
    #[serde(default)]
    pub chld_after_alerting: bool,
}

fn yes() -> bool {
    true
}

/// Ids of the built-in profiles (first is the canonical id; aliases map to it).
pub const BUILTIN_PROFILES: &[&str] = &[
    "quectel-ec25",
    "simcom-sim7600",
    "simcom-sim800",
    "huawei-e1550",
    "generic",
];

impl VendorProfile {
    /// A built-in profile by id or alias (`quectel-ec21`, `quectel-ec2x`, `huawei-e173`,
    /// `sim7600`, `sim800`).
    pub fn builtin(id: &str) -> Option<Self> {
        Some(match id.to_ascii_lowercase().as_str() {
            "quectel-ec25" | "quectel-ec21" | "quectel-ec2x" | "quectel-eg25" | "quectel" => {
                Self::quectel_ec25()
            }
            "simcom-sim7600" | "sim7600" => Self::sim7600(),
            "simcom-sim800" | "sim800" | "simcom-sim900" => Self::sim800(),
            "huawei-e1550" | "huawei-e173" | "huawei" => Self::huawei_e1550(),
            "generic" | "3gpp" => Self::generic(),
            _ => return None,
        })
    }

    fn base(id: &str, vendor: Vendor, description: &str) -> Self {
        Self {
            id: id.to_owned(),
            vendor,
            description: description.to_owned(),
            iccid_command: "AT+CCID".to_owned(),
            lte: false,
            sms_memory: "SM".to_owned(),
            cnmi_stored: "AT+CNMI=2,1,0,2,0".to_owned(),
            cnmi_direct: "AT+CNMI=2,2,0,1,0".to_owned(),
            init: Vec::new(),
            hangup: HangupStyle::Chup,
            dtmf_send: DtmfSendStyle::Vts,
            ussd: UssdEncoding::Text,
            audio: AudioProfile {
                kind: AudioKind::None,
                sample_rate: 8000,
                enable: Vec::new(),
                enable_early: false,
                disable: Vec::new(),
            },
            boot_is_heartbeat: false,
            sms_store_send: true,
            call_hold: true,
            chld_after_alerting: false,
        }
    }

    /// Quectel EC25/EC21: ccinfo call URCs, `+QTONEDET`, `+QHUP`, serial PCM via
    /// `+QPCMV=1,0`, stored status reports read from the report memory (the EC25
    /// mis-announces them).
    pub fn quectel_ec25() -> Self {
        let mut p = Self::base(
            "quectel-ec25",
            Vendor::Quectel,
            "Quectel EC25/EC21 LTE Cat 1/4",
        );
        p.iccid_command = "AT+QCCID".to_owned();
        p.lte = true;
        p.sms_memory = "ME".to_owned();
        // ds=2: reports are stored, so those that arrive while the gateway is down are read
        // after it restarts (a +CDS nobody reads is lost). The EC25 stores them in "SR" but
        // announces "SM",0: the driver reads the report memory on every +CDSI and sweep.
        p.init = [
            "AT+QURCCFG=\"urcport\",\"usbat\"",
            "AT+QINDCFG=\"ccinfo\",1,0",
            "AT+QINDCFG=\"csq\",1,0",
            "AT+QINDCFG=\"act\",1,0",
            "AT+QINDCFG=\"ring\",0,0",
            "AT+QTONEDET=1",
            "AT+VTD=1",
        ]
        .iter()
        .map(|c| InitCommand::optional(c))
        .collect();
        p.hangup = HangupStyle::Qhup;
        p.dtmf_send = DtmfSendStyle::VtsQuoted;
        p.audio = AudioProfile {
            kind: AudioKind::SerialPcm,
            sample_rate: 8000,
            enable: vec!["AT+QPCMV=1,0".to_owned()],
            enable_early: false,
            disable: Vec::new(),
        };
        p
    }

    /// SIMCom SIM7600: unsolicited `+CLCC`, `+RXDTMF`, PCM on a vendor bulk port after
    /// `+CPCMREG=1`.
    pub fn sim7600() -> Self {
        let mut p = Self::base(
            "simcom-sim7600",
            Vendor::Sim7600,
            "SIMCom SIM7600 LTE Cat 1/4",
        );
        p.iccid_command = "AT+CICCID".to_owned();
        p.lte = true;
        p.sms_memory = "ME".to_owned();
        p.init = ["AT+CLCC=1", "AT+CNSMOD=1", "AT+AUTOCSQ=1,1", "AT+DDET=1"]
            .iter()
            .map(|c| InitCommand::optional(c))
            .collect();
        p.audio = AudioProfile {
            kind: AudioKind::SerialPcm,
            sample_rate: 8000,
            enable: vec!["AT+CPCMREG=1".to_owned()],
            enable_early: false,
            disable: vec!["AT+CPCMREG=0".to_owned()],
        };
        p
    }

    /// SIMCom SIM800/SIM900: 2G, analog audio to an external sound card, `+DTMF` via DDET.
    pub fn sim800() -> Self {
        let mut p = Self::base("simcom-sim800", Vendor::Sim800, "SIMCom SIM800/SIM900 GSM");
        p.init = ["AT+CLCC=1", "AT+DDET=1", "AT+CVHU=0"]
            .iter()
            .map(|c| InitCommand::optional(c))
            .collect();
        p.audio.kind = AudioKind::Analog;
        p
    }

    /// Huawei E1550/E173: `^ORIG/^CONF/^CONN/^CEND`, `^DDTMF`, `^DTMF` sending, serial PCM
    /// after `^DDSETEX=2`, GSM7-packed USSD, `^BOOT` heartbeats.
    pub fn huawei_e1550() -> Self {
        let mut p = Self::base(
            "huawei-e1550",
            Vendor::Huawei,
            "Huawei E1550/E173 UMTS voice stick",
        );
        p.iccid_command = "AT^ICCID?".to_owned();
        p.init = ["AT^DDTMFCFG=0,1", "AT^CVOICE?"]
            .iter()
            .map(|c| InitCommand::optional(c))
            .collect();
        p.dtmf_send = DtmfSendStyle::HuaweiDtmf;
        p.ussd = UssdEncoding::Gsm7PackedHex;
        p.audio = AudioProfile {
            kind: AudioKind::SerialPcm,
            sample_rate: 8000,
            enable: vec!["AT^DDSETEX=2".to_owned()],
            enable_early: true,
            disable: Vec::new(),
        };
        p.boot_is_heartbeat = true;
        p.chld_after_alerting = true;
        p
    }

    /// A plain 3GPP modem: RING/+CLIP with `+CLCC` polling, `+VTS`, no voice port known.
    pub fn generic() -> Self {
        Self::base("generic", Vendor::Generic, "Generic 3GPP TS 27.007 modem")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_resolve_and_roundtrip() {
        for id in BUILTIN_PROFILES {
            let p = VendorProfile::builtin(id).unwrap_or_else(|| panic!("{id}"));
            assert_eq!(p.id, *id);
            let json = serde_json::to_string(&p).unwrap();
            let back: VendorProfile = serde_json::from_str(&json).unwrap();
            assert_eq!(back, p);
        }
        assert_eq!(
            VendorProfile::builtin("huawei-e173").unwrap().vendor,
            Vendor::Huawei
        );
        assert!(VendorProfile::builtin("nokia").is_none());
        assert_eq!(DtmfSendStyle::HuaweiDtmf.command(1, '5'), "AT^DTMF=1,5");
    }
}
