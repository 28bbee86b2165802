//! Analog telephone ports on a Linux board: what a board profile says about each FXS/FXO
//! port ([`AnalogPortProfile`]: SPI bus and chip select, reset and interrupt GPIO lines, chip,
//! country, PCM timeslot, audio device), the chip and port configurations that follow from it,
//! and opening a real port over spidev and the GPIO character device ([`open_port`]).
//!
//! The drivers, line logic and audio path are `flowgate-analog`'s; this module is the thin
//! Linux shell. A simulated port (`simulated = true`) is built on
//! `flowgate_analog::sim::SimBoard` by whoever runs the simulated board.

mod line;
mod linux;
mod side;

use serde::{Deserialize, Serialize};

pub use self::line::{AlarmsView, AnalogLine, AnalogLineConfig, AnalogLineStatus};
pub use self::linux::{
    AnalogOpenError, BoardPin, GpioError, IrqWaiter, LinuxPort, open_port, open_port_with,
};
#[cfg(feature = "simulator")]
pub use self::side::SimPortIo;
pub use self::side::{CallAudio, DevicePortIo, PortIo, SilentPortIo};
use crate::modem::config::AudioTransport;
use flowgate_analog::country::{Country, country};
use flowgate_analog::port::{FxoPortConfig, FxsPortConfig, PortError, PortKind};
use flowgate_analog::si321x::{Companding, FxsChipConfig, Part};
use flowgate_analog::si3050::{FxoChipConfig, LineSide};

/// The chip of an analog port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AnalogChip {
    /// Si3210 ProSLIC (FXS).
    Si3210,
    /// Si3215 ProSLIC (FXS).
    Si3215,
    /// Si3050 with an Si3018 line side (FXO).
    Si3050Si3018,
    /// Si3050 with an Si3019 line side (FXO).
    Si3050Si3019,
}

impl AnalogChip {
    /// FXS for a ProSLIC, FXO for a DAA.
    #[must_use]
    pub fn kind(self) -> PortKind {
        match self {
            AnalogChip::Si3210 | AnalogChip::Si3215 => PortKind::Fxs,
            AnalogChip::Si3050Si3018 | AnalogChip::Si3050Si3019 => PortKind::Fxo,
        }
    }
}

/// The SPI device of a port: `/dev/spidev<bus>.<chip_select>` (kernel-managed chip select).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpiLocation {
    /// SPI bus (controller) number.
    pub bus: u8,
    /// Chip select on that bus.
    pub chip_select: u8,
    /// Clock in Hz (ProSLIC and DAA accept up to 16 MHz; long ribbon cables want less).
    #[serde(default = "default_spi_hz")]
    pub max_speed_hz: u32,
}

fn default_spi_hz() -> u32 {
    1_000_000
}

impl SpiLocation {
    /// The spidev path.
    #[must_use]
    pub fn path(&self) -> String {
        format!("/dev/spidev{}.{}", self.bus, self.chip_select)
    }
}

/// A GPIO line on a GPIO character device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpioLine {
    /// The chip (`gpiochip0`, or a path under `/dev`).
    pub chip: String,
    /// Line offset on that chip.
    pub line: u32,
}

impl GpioLine {
    /// The character device path.
    #[must_use]
    pub fn path(&self) -> String {
        if self.chip.starts_with('/') {
            self.chip.clone()
        } else {
            format!("/dev/{}", self.chip)
        }
    }
}

/// One analog port of a board.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalogPortProfile {
    /// Port id (`fxs0`): letters, digits, `-`, `_`.
    pub id: String,
    /// The chip fitted.
    pub chip: AnalogChip,
    /// Country code (`us`, `uk`, `de`, … `tbr21`): termination, ringing, tones, caller ID.
    pub country: String,
    /// SPI device (absent for a simulated port).
    #[serde(default)]
    pub spi: Option<SpiLocation>,
    /// Reset line (active low), if wired.
    #[serde(default)]
    pub reset: Option<GpioLine>,
    /// Interrupt line (active low, falling-edge events), if wired; otherwise the port is
    /// polled.
    #[serde(default)]
    pub interrupt: Option<GpioLine>,
    /// PCM timeslot of the chip on the board's PCM/I2S bus.
    #[serde(default)]
    pub timeslot: u8,
    /// A-law on the PCM bus instead of µ-law.
    #[serde(default)]
    pub alaw: bool,
    /// The port's audio device (8 kHz ALSA PCM of the codec behind the chip's PCM bus).
    #[serde(default)]
    pub audio: Option<AudioTransport>,
    /// FXS: the port's own extension number (the caller of calls from this phone).
    #[serde(default)]
    pub extension: Option<String>,
    /// Simulated port (the simulated board's Si3215/Si3050).
    #[serde(default)]
    pub simulated: bool,
}

impl AnalogPortProfile {
    /// FXS or FXO.
    #[must_use]
    pub fn kind(&self) -> PortKind {
        self.chip.kind()
    }

    /// The country's data.
    ///
    /// # Errors
    /// [`PortError::Config`] for an unknown country.
    pub fn country(&self) -> Result<&'static Country, PortError> {
        country(&self.country)
            .ok_or_else(|| PortError::Config(format!("unknown country {:?}", self.country)))
    }

    fn companding(&self) -> Companding {
        if self.alaw {
            Companding::Alaw
        } else {
            Companding::Ulaw
        }
    }

    /// The ProSLIC and FXS port configuration (ring frequency, impedance, cadence, tones and
    /// caller ID from the country).
    ///
    /// # Errors
    /// [`PortError::Config`] for a DAA chip or an unknown country.
    pub fn fxs_config(&self) -> Result<(FxsChipConfig, FxsPortConfig), PortError> {
        let part = match self.chip {
            AnalogChip::Si3210 => Part::Si3210,
            AnalogChip::Si3215 => Part::Si3215,
            _ => return Err(PortError::Config(format!("{}: not an FXS chip", self.id))),
        };
        let c = self.country()?;
        let mut chip = FxsChipConfig::new(part);
        chip.companding = self.companding();
        chip.timeslot = self.timeslot;
        chip.ring_frequency = c.ring_frequency;
        chip.impedance = Some(c.daa.fxs_impedance());
        let mut port = FxsPortConfig::for_zone(c.tone_zone)?;
        port.line.cid = fxs_cid_mode(c);
        Ok((chip, port))
    }

    /// The DAA and FXO port configuration.
    ///
    /// # Errors
    /// [`PortError::Config`] for a ProSLIC or an unknown country.
    pub fn fxo_config(&self) -> Result<(FxoChipConfig, FxoPortConfig), PortError> {
        let line_side = match self.chip {
            AnalogChip::Si3050Si3018 => LineSide::Si3018,
            AnalogChip::Si3050Si3019 => LineSide::Si3019,
            _ => return Err(PortError::Config(format!("{}: not an FXO chip", self.id))),
        };
        let c = self.country()?;
        let mut chip = FxoChipConfig::new(line_side, c.daa);
        chip.companding = self.companding();
        chip.timeslot = self.timeslot;
        let mut port = FxoPortConfig::for_zone(c.tone_zone);
        port.line.supervision.battery = c.battery;
        Ok((chip, port))
    }
}

/// The caller-ID signalling an FXS port uses for a country.
#[must_use]
pub fn fxs_cid_mode(c: &Country) -> flowgate_analog::line::fxs::CidMode {
    use flowgate_analog::cid::Layout;
    use flowgate_analog::country::CidSignalling;
    use flowgate_analog::line::fxs::CidMode;
    match c.cid {
        CidSignalling::Bell => CidMode::Bell(Layout::Mdmf),
        CidSignalling::EtsiPreRing => CidMode::EtsiPreRing(Layout::Etsi),
        CidSignalling::EtsiAfterRing => CidMode::EtsiAfterRing(Layout::Etsi),
        CidSignalling::Dtmf => CidMode::Dtmf(c.dtmf_clip),
    }
}

/// The chip and port configuration of a port, which the gateway's configuration may adjust
/// (dial plan, timers, auto-answer) before the port is built.
#[derive(Debug, Clone, PartialEq)]
pub enum PortSettings {
    /// A ProSLIC port (boxed: its dial plan makes it the larger by far).
    Fxs(FxsChipConfig, Box<FxsPortConfig>),
    /// A DAA port.
    Fxo(FxoChipConfig, FxoPortConfig),
}

impl AnalogPortProfile {
    /// The port's settings as the profile and its country give them.
    ///
    /// # Errors
    /// [`PortError::Config`] for an unknown country.
    pub fn settings(&self) -> Result<PortSettings, PortError> {
        Ok(match self.kind() {
            PortKind::Fxs => {
                let (chip, port) = self.fxs_config()?;
                PortSettings::Fxs(chip, Box::new(port))
            }
            PortKind::Fxo => {
                let (chip, port) = self.fxo_config()?;
                PortSettings::Fxo(chip, port)
            }
        })
    }
}

/// Checks one analog port of a profile; the error is `(key, reason)` for the board error.
pub(crate) fn validate(p: &AnalogPortProfile, i: usize) -> Result<(), (String, String)> {
    let k = |f: &str| format!("analog[{i}].{f}");
    if p.id.is_empty()
        || !p
            .id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err((
            k("id"),
            "must be non-empty letters, digits, `-` or `_`".into(),
        ));
    }
    if country(&p.country).is_none() {
        let known: Vec<&str> = flowgate_analog::country::COUNTRIES
            .iter()
            .map(|c| c.code)
            .collect();
        return Err((
            k("country"),
            format!("unknown country (known: {})", known.join(", ")),
        ));
    }
    match (&p.spi, p.simulated) {
        (None, false) => return Err((k("spi"), "required (or mark the port `simulated`)".into())),
        (Some(_), true) => return Err((k("spi"), "a simulated port has no SPI device".into())),
        (Some(s), false) if !(100_000..=16_000_000).contains(&s.max_speed_hz) => {
            return Err((k("spi.max_speed_hz"), "must be 100000-16000000".into()));
        }
        _ => {}
    }
    if p.simulated && (p.reset.is_some() || p.interrupt.is_some()) {
        return Err((k("reset"), "a simulated port has no GPIO lines".into()));
    }
    if p.timeslot > 31 {
        return Err((k("timeslot"), "must be 0-31".into()));
    }
    if let Some(e) = &p.extension {
        if p.kind() != PortKind::Fxs {
            return Err((k("extension"), "only FXS ports have an extension".into()));
        }
        if e.is_empty() || e.len() > 8 || !e.chars().all(|c| c.is_ascii_digit()) {
            return Err((k("extension"), "must be 1-8 digits".into()));
        }
    }
    match &p.audio {
        Some(AudioTransport::Alsa {
            sample_rate,
            playback,
            capture,
            ..
        }) => {
            if *sample_rate != 8000 {
                return Err((k("audio.sample_rate"), "analog ports run at 8000 Hz".into()));
            }
            if playback.is_empty() || capture.is_empty() {
                return Err((k("audio"), "playback and capture must not be empty".into()));
            }
        }
        Some(AudioTransport::SerialPcm { .. }) => {
            return Err((
                k("audio"),
                "analog ports use an ALSA device (the PCM codec)".into(),
            ));
        }
        Some(AudioTransport::None) | None => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(chip: AnalogChip) -> AnalogPortProfile {
        AnalogPortProfile {
            id: "p".into(),
            chip,
            country: "de".into(),
            spi: Some(SpiLocation {
                bus: 0,
                chip_select: 1,
                max_speed_hz: 1_000_000,
            }),
            reset: Some(GpioLine {
                chip: "gpiochip0".into(),
                line: 17,
            }),
            interrupt: None,
            timeslot: 2,
            alaw: true,
            audio: None,
            extension: None,
            simulated: false,
        }
    }

    #[test]
    fn configs_follow_the_country() {
        let (chip, port_cfg) = port(AnalogChip::Si3215).fxs_config().expect("fxs");
        assert_eq!(
            chip.ring_frequency,
            flowgate_analog::si321x::RingFrequency::Hz25
        );
        assert_eq!(chip.impedance, Some(0x5)); // Germany's ACIM 3 → TISS 5
        assert_eq!(chip.timeslot, 2);
        assert_eq!(chip.companding, Companding::Alaw);
        assert_eq!(port_cfg.tone_zone, "de");
        assert_eq!(port_cfg.line.ring_cadence.as_slice(), [1000, 4000]);
        assert!(port(AnalogChip::Si3215).fxo_config().is_err());
        let (daa, _) = port(AnalogChip::Si3050Si3019).fxo_config().expect("fxo");
        assert_eq!(daa.termination.acim, 3);
        assert_eq!(daa.line_side, LineSide::Si3019);
        assert_eq!(
            port(AnalogChip::Si3050Si3018)
                .spi
                .map(|s| s.path())
                .as_deref(),
            Some("/dev/spidev0.1")
        );
        assert_eq!(
            GpioLine {
                chip: "gpiochip4".into(),
                line: 1
            }
            .path(),
            "/dev/gpiochip4"
        );
    }

    #[test]
    fn validation_names_the_key() {
        let mut p = port(AnalogChip::Si3050Si3019);
        p.extension = Some("200".into());
        assert_eq!(
            validate(&p, 1).expect_err("fxo extension").0,
            "analog[1].extension"
        );
        let mut p = port(AnalogChip::Si3215);
        p.country = "xx".into();
        assert_eq!(validate(&p, 0).expect_err("country").0, "analog[0].country");
        let mut p = port(AnalogChip::Si3215);
        p.spi = None;
        assert_eq!(validate(&p, 0).expect_err("spi").0, "analog[0].spi");
        p.simulated = true;
        p.reset = None;
        assert!(validate(&p, 0).is_ok());
    }
}

#[cfg(test)]
mod open_tests {
    use super::*;

    #[test]
    fn opening_a_missing_device_names_port_and_path() {
        let p = AnalogPortProfile {
            id: "fxs9".into(),
            chip: AnalogChip::Si3215,
            country: "us".into(),
            spi: Some(SpiLocation {
                bus: 9,
                chip_select: 7,
                max_speed_hz: 1_000_000,
            }),
            reset: None,
            interrupt: None,
            timeslot: 0,
            alaw: false,
            audio: None,
            extension: None,
            simulated: false,
        };
        let Err(e) = open_port(&p) else {
            panic!("/dev/spidev9.7 does not exist here");
        };
        let text = e.to_string();
        assert!(text.starts_with("fxs9: SPI /dev/spidev9.7"), "{text}");
        let sim = AnalogPortProfile {
            spi: None,
            simulated: true,
            ..p
        };
        assert!(matches!(
            open_port(&sim),
            Err(AnalogOpenError::Profile { .. })
        ));
    }
}
