//! Power control of a modem through GPIO lines (reset, power key), the last rungs of the
//! recovery ladder.
//!
//! [`GpioOutput`] is the small trait the driver uses; [`ValueFileGpio`] writes `1`/`0` to a
//! configured value file (sysfs `/sys/class/gpio/gpioN/value` or any file a board helper
//! watches), so no sysfs export logic or character-device ioctl is needed here. When the board
//! profile configures no line, [`PowerControl`] returns an error saying exactly that.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::config::{GpioLineConfig, PowerConfig, ms};
use super::error::ModemError;

/// One GPIO output line.
pub trait GpioOutput: Send + Sync + fmt::Debug {
    /// Drives the line to its active (`true`) or inactive level.
    fn set(&self, active: bool) -> Result<(), ModemError>;
}

/// A GPIO line driven by writing `1`/`0` to a value file.
#[derive(Debug, Clone)]
pub struct ValueFileGpio {
    path: PathBuf,
    active_low: bool,
}

impl ValueFileGpio {
    /// A line on `path`; `active_low` inverts the written level.
    pub fn new(path: impl Into<PathBuf>, active_low: bool) -> Self {
        Self {
            path: path.into(),
            active_low,
        }
    }
}

impl GpioOutput for ValueFileGpio {
    fn set(&self, active: bool) -> Result<(), ModemError> {
        let level = if active != self.active_low { "1" } else { "0" };
        std::fs::write(&self.path, level).map_err(|e| {
            ModemError::Power(format!("writing {level} to {}: {e}", self.path.display()))
        })
    }
}

/// The power lines of one modem, with their pulse lengths.
#[derive(Debug, Clone, Default)]
pub struct PowerControl {
    reset: Option<(Arc<dyn GpioOutput>, Duration)>,
    power_key: Option<(Arc<dyn GpioOutput>, Duration)>,
    off_wait: Duration,
}

impl PowerControl {
    /// Lines from the board configuration (value files).
    pub fn from_config(c: &PowerConfig) -> Self {
        let line = |l: &GpioLineConfig| -> (Arc<dyn GpioOutput>, Duration) {
            (
                Arc::new(ValueFileGpio::new(&l.value_file, l.active_low)),
                ms(l.pulse_ms),
            )
        };
        Self {
            reset: c.reset.as_ref().map(line),
            power_key: c.power_key.as_ref().map(line),
            off_wait: ms(c.off_wait_ms.max(1)),
        }
    }

    /// Custom lines (tests, boards with other GPIO access).
    pub fn with_lines(
        reset: Option<(Arc<dyn GpioOutput>, Duration)>,
        power_key: Option<(Arc<dyn GpioOutput>, Duration)>,
        off_wait: Duration,
    ) -> Self {
        Self {
            reset,
            power_key,
            off_wait,
        }
    }

    /// True when at least one line is configured.
    pub fn is_configured(&self) -> bool {
        self.reset.is_some() || self.power_key.is_some()
    }

    /// Power-cycles the modem: one reset pulse if a reset line exists, else power key off,
    /// wait, power key on. Errors when no line is configured or a write fails.
    pub async fn power_cycle(&self) -> Result<&'static str, ModemError> {
        if let Some((line, pulse)) = &self.reset {
            pulse_line(line, *pulse).await?;
            return Ok("reset line pulsed");
        }
        if let Some((line, pulse)) = &self.power_key {
            pulse_line(line, *pulse).await?;
            tokio::time::sleep(self.off_wait).await;
            pulse_line(line, *pulse).await?;
            return Ok("power key pulsed twice (off, on)");
        }
        Err(ModemError::Power(
            "no reset or power-key GPIO configured for this modem (board profile `power`)"
                .to_owned(),
        ))
    }
}

async fn pulse_line(line: &Arc<dyn GpioOutput>, pulse: Duration) -> Result<(), ModemError> {
    // The writes are tiny but blocking file I/O: keep them off the async workers.
    let l = Arc::clone(line);
    run_blocking(move || l.set(true)).await?;
    tokio::time::sleep(pulse).await;
    let l = Arc::clone(line);
    run_blocking(move || l.set(false)).await
}

async fn run_blocking(
    f: impl FnOnce() -> Result<(), ModemError> + Send + 'static,
) -> Result<(), ModemError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ModemError::Power(format!("GPIO write task failed: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn value_file_pulses_and_missing_lines_error() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("value");
        let cfg = PowerConfig {
            reset: Some(GpioLineConfig {
                value_file: f.clone(),
                active_low: true,
                pulse_ms: 1,
            }),
            power_key: None,
            off_wait_ms: 1,
        };
        let p = PowerControl::from_config(&cfg);
        assert!(p.is_configured());
        p.power_cycle().await.unwrap();
        // Active low: released = "1".
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "1");
        let e = PowerControl::from_config(&PowerConfig::default())
            .power_cycle()
            .await
            .unwrap_err();
        assert!(e.to_string().contains("no reset or power-key GPIO"), "{e}");
        let bad = PowerControl::from_config(&PowerConfig {
            reset: Some(GpioLineConfig {
                value_file: dir.path().join("no/such/dir"),
                active_low: false,
                pulse_ms: 1,
            }),
            ..PowerConfig::default()
        });
        assert!(bad.power_cycle().await.is_err());
    }
}
