//! Per-modem configuration: port, timeouts, SMS handling, recovery policy, GPIO lines and
//! the voice transport handed to the audio layer.
//!
//! Serde structs with millisecond integer fields (TOML-friendly) and defaults taken from the
//! reference's §1.10 timeouts. Board profiles produce these; tests shorten the timeouts.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use flowgate_line::AudioTransport;

use super::profile::{AudioKind, VendorProfile};
use super::recovery::BackoffPolicy;

/// Command timeouts in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Timeouts {
    /// `AT` ping (1 s).
    pub short_ms: u64,
    /// Most commands (5 s).
    pub default_ms: u64,
    /// Waiting for the `> ` prompt (5 s).
    pub prompt_ms: u64,
    /// SMS body after the prompt, `ATD`, `ATA`, hang-up (40 s).
    pub long_ms: u64,
    /// `AT+CMGL`, `AT+CPMS` on a full memory (120 s).
    pub list_ms: u64,
    /// `AT+CPIN?` (15 s).
    pub sim_ms: u64,
    /// USSD reply after `OK` (30 s: answers may take over 10 s).
    pub ussd_ms: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            short_ms: 1_000,
            default_ms: 5_000,
            prompt_ms: 5_000,
            long_ms: 40_000,
            list_ms: 120_000,
            sim_ms: 15_000,
            ussd_ms: 30_000,
        }
    }
}

/// How incoming SMS reach the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SmsMode {
    /// Stored in modem memory, announced by `+CMTI`, read with `AT+CMGR`, deleted after the
    /// caller acknowledged (persist-then-delete). The default.
    #[default]
    Stored,
    /// Delivered as `+CMT` and acknowledged with `AT+CNMA` after the caller acknowledged.
    /// Parts of a multipart message are acknowledged on arrival (the modem holds back the
    /// next `+CMT` until then), so only stored mode keeps parts safe across a crash.
    Direct,
}

/// SMS settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmsSettings {
    /// Delivery mode.
    pub mode: SmsMode,
    /// Give up waiting for missing parts after this long (10 min, as gammu/chan_dongle).
    pub multipart_timeout_ms: u64,
    /// Re-scan the memory with `AT+CMGL=4` this often, so a missed `+CMTI` never strands a
    /// message (5 min).
    pub sweep_interval_ms: u64,
    /// Attempts per part when the modem reboots, times out or vanishes mid-send.
    pub send_attempts: u32,
    /// Ask for status reports on sent messages.
    pub status_reports: bool,
    /// How long `send_sms` waits for the modem to become ready (after a reboot) before failing.
    pub ready_wait_ms: u64,
    /// `prepare_sms` writes messages to modem storage (`AT+CMGW`) so that `send_prepared`
    /// can send them exactly once across gateway crashes (`AT+CMSS`, checked with
    /// `AT+CMGR`). Off: prepared messages go out with `AT+CMGS` (at least once).
    pub store_and_send: bool,
    /// Most storage slots prepared outgoing messages may hold at once (this driver's and
    /// those left by earlier runs). A message that would exceed it goes out with `AT+CMGS`,
    /// so outgoing traffic never fills the memory incoming messages need.
    pub outbound_slots: u32,
}

impl Default for SmsSettings {
    fn default() -> Self {
        Self {
            mode: SmsMode::Stored,
            multipart_timeout_ms: 600_000,
            sweep_interval_ms: 300_000,
            send_attempts: 3,
            status_reports: true,
            ready_wait_ms: 120_000,
            store_and_send: true,
            outbound_slots: 6,
        }
    }
}

/// Recovery policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecoveryPolicy {
    /// `AT` pings in the resync step.
    pub resync_attempts: u32,
    /// After `AT+CFUN=1,1` or a power cycle: how long to wait for the modem to come back.
    pub boot_wait_ms: u64,
    /// Reopening a vanished port.
    pub reopen_backoff: BackoffPolicy,
    /// Retrying init while the SIM is busy / not ready / missing.
    pub sim_backoff: BackoffPolicy,
    /// After giving up, start the ladder again after this long (`None`: stay given up).
    pub retry_after_give_up_ms: Option<u64>,
}

impl Default for RecoveryPolicy {
    fn default() -> Self {
        Self {
            resync_attempts: 3,
            boot_wait_ms: 45_000,
            reopen_backoff: BackoffPolicy::doubling(500, 30_000),
            sim_backoff: BackoffPolicy::doubling(1_000, 30_000),
            retry_after_give_up_ms: Some(600_000),
        }
    }
}

/// One GPIO output driven through a value file (`/sys/class/gpio/gpioN/value`, or any file a
/// udev rule or helper exposes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpioLineConfig {
    /// The value file: `1`/`0` is written to it.
    pub value_file: PathBuf,
    /// The line is active low (write `0` to assert).
    #[serde(default)]
    pub active_low: bool,
    /// How long to hold the line asserted (EC25 PWRKEY: ≥ 500 ms).
    #[serde(default = "default_pulse_ms")]
    pub pulse_ms: u64,
}

fn default_pulse_ms() -> u64 {
    600
}

/// Power control lines from the board profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct PowerConfig {
    /// Reset line (preferred: one pulse restarts the modem).
    pub reset: Option<GpioLineConfig>,
    /// Power key (a pulse toggles power: off, wait, on).
    pub power_key: Option<GpioLineConfig>,
    /// Time between the two power-key pulses.
    pub off_wait_ms: u64,
}

/// Configuration of one modem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModemConfig {
    /// Id used in events, logs and the API (`modem0`).
    pub id: String,
    /// AT port; prefer a stable path (`/dev/serial/by-id/...`, a udev symlink) so a
    /// re-enumerated modem is found again.
    pub port: PathBuf,
    /// Baud rate (ignored by USB CDC ports, needed by real UARTs).
    #[serde(default = "default_baud")]
    pub baud: u32,
    /// SIM PIN, if the SIM has one.
    #[serde(default)]
    pub pin: Option<String>,
    /// SMS settings.
    #[serde(default)]
    pub sms: SmsSettings,
    /// Command timeouts.
    #[serde(default)]
    pub timeouts: Timeouts,
    /// Recovery policy.
    #[serde(default)]
    pub recovery: RecoveryPolicy,
    /// Refresh signal/registration/operator this often (ms).
    #[serde(default = "default_refresh_ms")]
    pub refresh_interval_ms: u64,
    /// Poll `AT+CLCC` this often while a call exists (ms), as the truth behind URCs.
    #[serde(default = "default_call_poll_ms")]
    pub call_poll_interval_ms: u64,
    /// Voice transport; `None` derives nothing (the board must say where the port is).
    #[serde(default)]
    pub audio: Option<AudioTransport>,
    /// Power control lines.
    #[serde(default)]
    pub power: PowerConfig,
}

fn default_baud() -> u32 {
    115_200
}

fn default_refresh_ms() -> u64 {
    30_000
}

fn default_call_poll_ms() -> u64 {
    2_000
}

impl ModemConfig {
    /// A configuration with defaults for everything but the id and port.
    pub fn new(id: impl Into<String>, port: impl Into<PathBuf>) -> Self {
        Self {
            id: id.into(),
            port: port.into(),
            baud: default_baud(),
            pin: None,
            sms: SmsSettings::default(),
            timeouts: Timeouts::default(),
            recovery: RecoveryPolicy::default(),
            refresh_interval_ms: default_refresh_ms(),
            call_poll_interval_ms: default_call_poll_ms(),
            audio: None,
            power: PowerConfig::default(),
        }
    }

    /// The audio transport for calls: the configured one; [`AudioTransport::None`] when the
    /// board did not say where the voice port is or the profile has no voice path.
    pub fn audio_transport(&self, profile: &VendorProfile) -> AudioTransport {
        match &self.audio {
            Some(a) if profile.audio.kind != AudioKind::None => a.clone(),
            _ => AudioTransport::None,
        }
    }
}

/// Milliseconds to a [`Duration`].
pub(crate) fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_with_defaults() {
        let c: ModemConfig = toml::from_str(
            r#"
            id = "modem0"
            port = "/dev/ttyUSB2"
            [audio]
            kind = "serial-pcm"
            device = "/dev/ttyUSB1"
            [power.reset]
            value_file = "/sys/class/gpio/gpio27/value"
            "#,
        )
        .unwrap();
        assert_eq!(c.timeouts.long_ms, 40_000);
        assert_eq!(c.power.reset.as_ref().map(|r| r.pulse_ms), Some(600));
        assert_eq!(
            c.audio,
            Some(AudioTransport::SerialPcm {
                device: "/dev/ttyUSB1".into(),
                sample_rate: 8000
            })
        );
        let e =
            toml::from_str::<ModemConfig>("id = \"x\"\nport = \"/dev/x\"\nbogus = 1").unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
    }
}
