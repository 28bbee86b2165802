//! Board profiles: which modems a board has, on which ports, with which GPIO lines and audio
//! devices. Loaded from TOML (`board/boards/*.toml`, compiled in as built-ins, or a file the
//! daemon's config names) and validated with errors that name the offending key.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::analog::AnalogPortProfile;
use crate::modem::config::{AudioTransport, GpioLineConfig, ModemConfig, PowerConfig, SmsMode};
use crate::modem::profile::VendorProfile;
#[cfg(feature = "simulator")]
use crate::simulator::{SimulatedModel, Simulator, SimulatorConfig};

/// Built-in board profiles (name, TOML).
const BUILTIN: &[(&str, &str)] = &[
    ("simulated", include_str!("../boards/simulated.toml")),
    (
        "simulated-dual",
        include_str!("../boards/simulated-dual.toml"),
    ),
    (
        "rpi4-quectel-ec25",
        include_str!("../boards/rpi4-quectel-ec25.toml"),
    ),
    (
        "huawei-e1550-usb",
        include_str!("../boards/huawei-e1550-usb.toml"),
    ),
    ("rpi-fxs-fxo", include_str!("../boards/rpi-fxs-fxo.toml")),
];

/// Board profile errors.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BoardError {
    /// The file could not be read.
    #[error("cannot read board profile {path}: {reason}")]
    Io {
        /// File.
        path: String,
        /// Why.
        reason: String,
    },
    /// The TOML is malformed or has unknown/mistyped keys (the message names key and line).
    #[error("board profile {source_name}: {message}")]
    Parse {
        /// File or built-in name.
        source_name: String,
        /// The parser's message.
        message: String,
    },
    /// A value is invalid.
    #[error("board profile {source_name}: `{key}`: {reason}")]
    Invalid {
        /// File or built-in name.
        source_name: String,
        /// The key, e.g. `modem[0].port`.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// No built-in board and no file of that name.
    #[error(
        "unknown board `{0}` (built-in: simulated, rpi4-quectel-ec25, huawei-e1550-usb, rpi-fxs-fxo; or a path to a TOML file)"
    )]
    Unknown(String),
}

/// A simulated modem's settings in a board profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SimulatedModem {
    /// The SIM's number.
    #[serde(default)]
    pub own_number: Option<String>,
    /// SMS storage slots.
    #[serde(default)]
    pub storage_slots: Option<u32>,
    /// SIM PIN (the simulated SIM starts locked).
    #[serde(default)]
    pub pin: Option<String>,
    /// Registration `<stat>` the network reports (1 home, 5 roaming, 2 searching, 3
    /// denied): a SIM that is not registered shows how calls fail over to another line.
    #[serde(default)]
    pub registration: Option<u8>,
    /// What happens to numbers this modem dials (default: answered after 2 s of ringing).
    #[serde(default)]
    pub dial: Option<crate::simulator::DialPolicy>,
}

/// One modem of a board.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoardModem {
    /// Modem id (`modem0`): letters, digits, `-`, `_`.
    pub id: String,
    /// Vendor profile id (`quectel-ec25`, `huawei-e1550`, `simcom-sim7600`, `simcom-sim800`,
    /// `generic`).
    pub profile: String,
    /// AT port; a stable path (`/dev/flowgate/<model>-<slot>-at` from the udev rules). Not used for simulated modems.
    #[serde(default)]
    pub port: Option<PathBuf>,
    /// Baud rate.
    #[serde(default = "default_baud")]
    pub baud: u32,
    /// SIM PIN.
    #[serde(default)]
    pub pin: Option<String>,
    /// SMS delivery mode.
    #[serde(default)]
    pub sms_mode: SmsMode,
    /// Voice transport.
    #[serde(default)]
    pub audio: Option<AudioTransport>,
    /// Power control GPIOs.
    #[serde(default)]
    pub power: PowerConfig,
    /// This modem is simulated (a pty the gateway starts itself).
    #[serde(default)]
    pub simulated: Option<SimulatedModem>,
}

fn default_baud() -> u32 {
    115_200
}

/// A board profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoardProfile {
    /// Board name.
    pub name: String,
    /// What the board is.
    #[serde(default)]
    pub description: String,
    /// Its modems.
    #[serde(default, rename = "modem")]
    pub modems: Vec<BoardModem>,
    /// Its analog telephone ports (FXS and FXO).
    #[serde(default, rename = "analog")]
    pub analog: Vec<AnalogPortProfile>,
}

impl BoardProfile {
    /// Names of the built-in profiles.
    pub fn builtin_names() -> Vec<&'static str> {
        BUILTIN.iter().map(|(n, _)| *n).collect()
    }

    /// A built-in profile.
    pub fn builtin(name: &str) -> Result<Self, BoardError> {
        let (n, text) = BUILTIN
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| BoardError::Unknown(name.to_owned()))?;
        Self::parse(text, n)
    }

    /// A built-in name, or else a path to a TOML file.
    pub fn resolve(name_or_path: &str) -> Result<Self, BoardError> {
        if BUILTIN.iter().any(|(n, _)| *n == name_or_path) {
            return Self::builtin(name_or_path);
        }
        let p = Path::new(name_or_path);
        if p.exists() {
            Self::load(p)
        } else {
            Err(BoardError::Unknown(name_or_path.to_owned()))
        }
    }

    /// Loads and validates a TOML file.
    pub fn load(path: &Path) -> Result<Self, BoardError> {
        let text = std::fs::read_to_string(path).map_err(|e| BoardError::Io {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses and validates TOML text; `source_name` appears in errors.
    pub fn parse(text: &str, source_name: &str) -> Result<Self, BoardError> {
        let b: Self = toml::from_str(text).map_err(|e| BoardError::Parse {
            source_name: source_name.to_owned(),
            message: e.to_string(),
        })?;
        b.validate(source_name)?;
        Ok(b)
    }

    /// Checks every value; the error names the key.
    pub fn validate(&self, source_name: &str) -> Result<(), BoardError> {
        let bad = |key: String, reason: &str| BoardError::Invalid {
            source_name: source_name.to_owned(),
            key,
            reason: reason.to_owned(),
        };
        if self.name.trim().is_empty() {
            return Err(bad("name".to_owned(), "must not be empty"));
        }
        let mut ids = HashSet::new();
        for (i, m) in self.modems.iter().enumerate() {
            let k = |f: &str| format!("modem[{i}].{f}");
            if m.id.is_empty()
                || !m
                    .id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(bad(
                    k("id"),
                    "must be non-empty letters, digits, `-` or `_`",
                ));
            }
            if !ids.insert(m.id.as_str()) {
                return Err(bad(k("id"), "duplicate modem id"));
            }
            if VendorProfile::builtin(&m.profile).is_none() {
                return Err(bad(
                    k("profile"),
                    "unknown vendor profile (quectel-ec25, simcom-sim7600, simcom-sim800, huawei-e1550, generic)",
                ));
            }
            match (&m.simulated, &m.port) {
                (Some(_), Some(_)) => return Err(bad(k("port"), "a simulated modem has no port")),
                (Some(_), None) => {
                    // Without the simulator the profile still parses; the daemon refuses
                    // to start its simulated modems (a build for real hardware).
                    #[cfg(feature = "simulator")]
                    if SimulatedModel::from_id(&m.profile).is_none() {
                        return Err(bad(
                            k("profile"),
                            "the simulator speaks quectel-ec25, huawei-e1550 and simcom-sim7600 only",
                        ));
                    }
                    if m.audio.is_some() {
                        return Err(bad(
                            k("audio"),
                            "a simulated modem's voice port is the simulator's",
                        ));
                    }
                }
                (None, None) => {
                    return Err(bad(k("port"), "required (or mark the modem `simulated`)"));
                }
                (None, Some(p)) => {
                    if !p.is_absolute() {
                        return Err(bad(k("port"), "must be an absolute path"));
                    }
                }
            }
            if !(1_200..=4_000_000).contains(&m.baud) {
                return Err(bad(k("baud"), "must be 1200-4000000"));
            }
            if let Some(pin) = &m.pin
                && !(pin.len() >= 4 && pin.len() <= 8 && pin.chars().all(|c| c.is_ascii_digit()))
            {
                return Err(bad(k("pin"), "must be 4-8 digits"));
            }
            match &m.audio {
                Some(AudioTransport::SerialPcm {
                    device,
                    sample_rate,
                }) => {
                    if !device.is_absolute() {
                        return Err(bad(k("audio.device"), "must be an absolute path"));
                    }
                    if ![8_000, 16_000].contains(sample_rate) {
                        return Err(bad(k("audio.sample_rate"), "must be 8000 or 16000"));
                    }
                }
                Some(AudioTransport::Alsa {
                    playback,
                    capture,
                    sample_rate,
                    ..
                }) => {
                    if playback.is_empty() {
                        return Err(bad(k("audio.playback"), "must not be empty"));
                    }
                    if capture.is_empty() {
                        return Err(bad(k("audio.capture"), "must not be empty"));
                    }
                    if ![8_000, 16_000, 48_000].contains(sample_rate) {
                        return Err(bad(k("audio.sample_rate"), "must be 8000, 16000 or 48000"));
                    }
                }
                Some(AudioTransport::None) | None => {}
            }
            let line = |name: &str, l: &Option<GpioLineConfig>| -> Result<(), BoardError> {
                if let Some(l) = l {
                    if !l.value_file.is_absolute() {
                        return Err(bad(
                            k(&format!("power.{name}.value_file")),
                            "must be an absolute path",
                        ));
                    }
                    if !(1..=10_000).contains(&l.pulse_ms) {
                        return Err(bad(k(&format!("power.{name}.pulse_ms")), "must be 1-10000"));
                    }
                }
                Ok(())
            };
            line("reset", &m.power.reset)?;
            line("power_key", &m.power.power_key)?;
        }
        let mut spi = HashSet::new();
        for (i, a) in self.analog.iter().enumerate() {
            crate::analog::validate(a, i).map_err(|(key, reason)| BoardError::Invalid {
                source_name: source_name.to_owned(),
                key,
                reason,
            })?;
            if !ids.insert(a.id.as_str()) {
                return Err(bad(format!("analog[{i}].id"), "duplicate port id"));
            }
            if let Some(s) = a.spi
                && !spi.insert((s.bus, s.chip_select))
            {
                return Err(bad(
                    format!("analog[{i}].spi"),
                    "two ports on one chip select",
                ));
            }
        }
        Ok(())
    }
}

impl BoardModem {
    /// The vendor profile this modem uses.
    pub fn vendor_profile(&self) -> VendorProfile {
        VendorProfile::builtin(&self.profile).unwrap_or_else(VendorProfile::generic)
    }

    /// The driver configuration of a real modem (`None` for a simulated one: start it with
    /// [`BoardModem::sim_config`] and use [`BoardModem::config_for_sim`]).
    pub fn modem_config(&self) -> Option<ModemConfig> {
        let port = self.port.as_ref()?;
        let mut c = ModemConfig::new(&self.id, port);
        c.baud = self.baud;
        c.pin.clone_from(&self.pin);
        c.sms.mode = self.sms_mode;
        c.audio.clone_from(&self.audio);
        c.power = self.power.clone();
        Some(c)
    }

    /// The simulator configuration of a simulated modem; `link_dir` gets stable symlinks
    /// `<id>-at` and `<id>-pcm` so the driver can reopen the port by path.
    #[cfg(feature = "simulator")]
    pub fn sim_config(&self, link_dir: Option<&Path>) -> Option<SimulatorConfig> {
        let s = self.simulated.as_ref()?;
        let mut c = SimulatorConfig::new(SimulatedModel::from_id(&self.profile)?);
        if let Some(n) = &s.own_number {
            c.own_number.clone_from(n);
        }
        if let Some(n) = s.storage_slots {
            c.storage_slots = n;
        }
        c.pin.clone_from(&s.pin);
        if let Some(r) = s.registration {
            c.registration = r;
        }
        if let Some(dial) = &s.dial {
            c.dial = dial.clone();
        }
        if let Some(d) = link_dir {
            c.link = Some(d.join(format!("{}-at", self.id)));
            c.pcm_link = Some(d.join(format!("{}-pcm", self.id)));
        }
        Some(c)
    }

    /// The driver configuration for a started simulator of this modem.
    #[cfg(feature = "simulator")]
    pub fn config_for_sim(&self, sim: &Simulator) -> ModemConfig {
        let mut c = sim.modem_config(&self.id);
        c.pin
            .clone_from(&self.simulated.as_ref().and_then(|s| s.pin.clone()));
        c.sms.mode = self.sms_mode;
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_parse_and_validate() {
        for n in BoardProfile::builtin_names() {
            let b = BoardProfile::builtin(n).unwrap_or_else(|e| panic!("{n}: {e}"));
            assert_eq!(b.name, n);
            assert!(
                !b.modems.is_empty() || !b.analog.is_empty(),
                "{n}: no lines"
            );
        }
        let sim = BoardProfile::builtin("simulated").unwrap();
        assert!(sim.modems[0].simulated.is_some());
        assert!(sim.modems[0].sim_config(None).is_some());
        let rpi = BoardProfile::builtin("rpi4-quectel-ec25").unwrap();
        let c = rpi.modems[0].modem_config().unwrap();
        assert!(matches!(c.audio, Some(AudioTransport::SerialPcm { .. })));
        assert!(c.power.power_key.is_some());
        // The analog board: one FXS and one FXO, each on its own chip select, configured
        // from the country; the simulated board has the same pair, simulated.
        let analog = BoardProfile::builtin("rpi-fxs-fxo").unwrap();
        let kinds: Vec<_> = analog.analog.iter().map(|a| a.kind()).collect();
        use flowgate_analog::port::PortKind;
        assert_eq!(kinds, [PortKind::Fxs, PortKind::Fxo]);
        assert!(analog.analog[0].fxs_config().is_ok());
        assert!(analog.analog[1].fxo_config().is_ok());
        assert_eq!(
            analog.analog[1].spi.map(|s| s.path()).as_deref(),
            Some("/dev/spidev0.1")
        );
        let sim_kinds: Vec<_> = sim.analog.iter().map(|a| (a.kind(), a.simulated)).collect();
        assert_eq!(sim_kinds, [(PortKind::Fxs, true), (PortKind::Fxo, true)]);
    }

    #[test]
    fn errors_name_the_key() {
        let e = BoardProfile::parse(
            "name = \"x\"\n[[modem]]\nid = \"m\"\nprofile = \"nokia\"\nport = \"/dev/x\"\n",
            "t",
        )
        .unwrap_err();
        assert!(e.to_string().contains("modem[0].profile"), "{e}");
        let e = BoardProfile::parse(
            "name = \"x\"\n[[modem]]\nid = \"m\"\nprofile = \"generic\"\n",
            "t",
        )
        .unwrap_err();
        assert!(e.to_string().contains("modem[0].port"), "{e}");
        let e = BoardProfile::parse("name = \"x\"\n[[modem]]\nid = \"m\"\nprofile = \"generic\"\nport = \"/d\"\nbogus = 1\n", "t")
            .unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
        let e = BoardProfile::parse(
            "name = \"x\"\n[[modem]]\nid = \"m\"\nprofile = \"generic\"\nport = \"/d\"\n[modem.power.reset]\nvalue_file = \"rel\"\n",
            "t",
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("modem[0].power.reset.value_file"),
            "{e}"
        );
        let e = BoardProfile::parse(
            "name = \"x\"\n[[modem]]\nid = \"m\"\nprofile = \"generic\"\nport = \"/d\"\n[[modem]]\nid = \"m\"\nprofile = \"generic\"\nport = \"/e\"\n",
            "t",
        )
        .unwrap_err();
        assert!(e.to_string().contains("modem[1].id"), "{e}");
        assert!(matches!(
            BoardProfile::resolve("no-such-board"),
            Err(BoardError::Unknown(_))
        ));
    }
}
