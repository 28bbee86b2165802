//! Time fields: the 7-octet swapped-BCD time stamp (TP-SCTS, TP-DT, absolute TP-VP; TS 23.040
//! §9.2.3.11) with its time zone in quarter hours and sign bit, and the validity period
//! (TS 23.040 §9.2.3.12) in its relative, absolute and enhanced forms.

use std::time::Duration;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, Timelike};
use serde::{Deserialize, Serialize};

use super::error::{Field, PduError};
use super::octets::{Reader, swapped_nibbles};

/// A TS 23.040 time stamp as sent: local time fields plus the offset from UTC.
///
/// Calendar validity is not checked on decode (a network with a broken clock must not make an
/// SMS undeliverable); [`Timestamp::to_datetime`] returns `None` for impossible dates.
/// The two-digit year is read as 2000–2099.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Timestamp {
    /// Full year (2000 + the two digits sent).
    pub year: u16,
    /// Month 1–12.
    pub month: u8,
    /// Day 1–31.
    pub day: u8,
    /// Hour 0–23.
    pub hour: u8,
    /// Minute 0–59.
    pub minute: u8,
    /// Second 0–59.
    pub second: u8,
    /// Offset from UTC in quarters of an hour (−79..=79; +8 = UTC+02:00).
    pub offset_quarters: i8,
}

impl Timestamp {
    /// The offset from UTC in seconds.
    pub fn offset_seconds(&self) -> i32 {
        i32::from(self.offset_quarters) * 15 * 60
    }

    /// The instant, or `None` if the fields are not a real date and time.
    pub fn to_datetime(&self) -> Option<DateTime<FixedOffset>> {
        let offset = FixedOffset::east_opt(self.offset_seconds())?;
        NaiveDate::from_ymd_opt(
            i32::from(self.year),
            u32::from(self.month),
            u32::from(self.day),
        )?
        .and_hms_opt(
            u32::from(self.hour),
            u32::from(self.minute),
            u32::from(self.second),
        )?
        .and_local_timezone(offset)
        .single()
    }

    /// Builds a time stamp from an instant (local fields in its own offset).
    ///
    /// # Errors
    /// [`PduError::TimestampOutOfRange`] if the year is outside 2000–2099 or the offset is not
    /// a whole number of quarter hours within ±19:45.
    pub fn from_datetime(dt: &DateTime<FixedOffset>) -> Result<Self, PduError> {
        let year = u16::try_from(dt.year())
            .ok()
            .filter(|y| (2000..=2099).contains(y))
            .ok_or(PduError::TimestampOutOfRange {
                reason: "year must be 2000-2099",
            })?;
        let secs = dt.offset().local_minus_utc();
        if secs % 900 != 0 || secs.abs() > 79 * 900 {
            return Err(PduError::TimestampOutOfRange {
                reason: "offset must be whole quarter hours within ±19:45",
            });
        }
        let small = |v: u32| u8::try_from(v).unwrap_or(0);
        Ok(Self {
            year,
            month: small(dt.month()),
            day: small(dt.day()),
            hour: small(dt.hour()),
            minute: small(dt.minute()),
            // A leap second (60) cannot be written in two BCD digits that phones accept.
            second: small(dt.second().min(59)),
            offset_quarters: i8::try_from(secs / 900).unwrap_or(0),
        })
    }

    pub(crate) fn decode(r: &mut Reader<'_>, field: Field) -> Result<Self, PduError> {
        let offset = r.pos();
        let o = r.take(7, field)?;
        let bad = |reason| PduError::BadTimestamp {
            offset,
            field,
            reason,
        };
        let mut digits = [0u8; 6];
        for (d, &b) in digits.iter_mut().zip(o) {
            let (tens, units) = swapped_nibbles(b);
            if tens > 9 || units > 9 {
                return Err(bad("digit above 9"));
            }
            *d = tens * 10 + units;
        }
        let tz = o.get(6).copied().unwrap_or(0);
        let (tens, units) = swapped_nibbles(tz);
        // Bit 3 of the tens digit is the sign of the offset.
        let (negative, tens) = (tens & 0x08 != 0, tens & 0x07);
        if units > 9 {
            return Err(bad("time zone digit above 9"));
        }
        let quarters = i8::try_from(tens * 10 + units).unwrap_or(0);
        let [yy, month, day, hour, minute, second] = digits;
        Ok(Self {
            year: 2000 + u16::from(yy),
            month,
            day,
            hour,
            minute,
            second,
            offset_quarters: if negative { -quarters } else { quarters },
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), PduError> {
        let range = |v: u16, max: u16, reason| {
            if v > max {
                Err(PduError::TimestampOutOfRange { reason })
            } else {
                Ok(u8::try_from(v).unwrap_or(0))
            }
        };
        let fields = [
            range(self.year % 100, 99, "year")?,
            range(self.month.into(), 99, "month above 99")?,
            range(self.day.into(), 99, "day above 99")?,
            range(self.hour.into(), 99, "hour above 99")?,
            range(self.minute.into(), 99, "minute above 99")?,
            range(self.second.into(), 99, "second above 99")?,
        ];
        out.extend(fields.iter().map(|&v| swap_bcd(v)));
        let q = range(
            self.offset_quarters.unsigned_abs().into(),
            79,
            "offset above 79 quarter hours",
        )?;
        let sign = if self.offset_quarters < 0 { 0x08 } else { 0 };
        out.push(swap_bcd(q) | sign);
        Ok(())
    }
}

/// Two decimal digits as a swapped BCD octet (units in the high nibble).
fn swap_bcd(v: u8) -> u8 {
    (v / 10) | ((v % 10) << 4)
}

/// TP-VP. Which form is present is given by TP-VPF in the SMS-SUBMIT first octet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValidityPeriod {
    /// One octet, a duration in four ranges (see [`ValidityPeriod::duration`]).
    Relative(u8),
    /// An absolute expiry time.
    Absolute(Timestamp),
    /// The 7-octet enhanced format (TS 23.040 §9.2.3.12.3), kept as sent.
    Enhanced([u8; 7]),
}

impl ValidityPeriod {
    /// Validity of a relative octet: 0–143 → (v+1)×5 min; 144–167 → 12 h + (v−143)×30 min;
    /// 168–196 → (v−166) days; 197–255 → (v−192) weeks.
    pub fn relative_duration(v: u8) -> Duration {
        let v = u64::from(v);
        let minutes = match v {
            0..=143 => (v + 1) * 5,
            144..=167 => 12 * 60 + (v - 143) * 30,
            168..=196 => (v - 166) * 24 * 60,
            _ => (v - 192) * 7 * 24 * 60,
        };
        Duration::from_secs(minutes * 60)
    }

    /// The shortest relative period that is at least `d` (saturating at 63 weeks).
    pub fn relative_at_least(d: Duration) -> Self {
        let v = (0..=u8::MAX)
            .find(|&v| Self::relative_duration(v) >= d)
            .unwrap_or(u8::MAX);
        Self::Relative(v)
    }

    /// The period as a duration, for the relative form and for the enhanced forms that carry
    /// one (relative octet, seconds, or hh:mm:ss). `None` for absolute and other enhanced forms.
    pub fn duration(&self) -> Option<Duration> {
        match self {
            Self::Relative(v) => Some(Self::relative_duration(*v)),
            Self::Absolute(_) => None,
            Self::Enhanced(o) => {
                let [fi, a, b, c, ..] = *o;
                match fi & 0x07 {
                    1 => Some(Self::relative_duration(a)),
                    2 => Some(Duration::from_secs(u64::from(a))),
                    3 => {
                        let d = |x: u8| {
                            let (t, u) = swapped_nibbles(x);
                            u64::from(t) * 10 + u64::from(u)
                        };
                        Some(Duration::from_secs(d(a) * 3600 + d(b) * 60 + d(c)))
                    }
                    _ => None,
                }
            }
        }
    }

    /// The TP-VPF bits (already shifted into place, 0x08/0x10/0x18) for the first octet.
    pub(crate) fn vpf_bits(v: Option<&Self>) -> u8 {
        match v {
            None => 0x00,
            Some(Self::Enhanced(_)) => 0x08,
            Some(Self::Relative(_)) => 0x10,
            Some(Self::Absolute(_)) => 0x18,
        }
    }

    pub(crate) fn decode(r: &mut Reader<'_>, vpf: u8) -> Result<Option<Self>, PduError> {
        Ok(match vpf & 0x03 {
            0 => None,
            2 => Some(Self::Relative(r.u8(Field::ValidityPeriod)?)),
            3 => Some(Self::Absolute(Timestamp::decode(r, Field::ValidityPeriod)?)),
            _ => {
                let o = r.take(7, Field::ValidityPeriod)?;
                let mut a = [0u8; 7];
                a.copy_from_slice(o);
                Some(Self::Enhanced(a))
            }
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), PduError> {
        match self {
            Self::Relative(v) => out.push(*v),
            Self::Absolute(t) => t.encode(out)?,
            Self::Enhanced(o) => out.extend_from_slice(o),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modem::pdu::octets::from_hex;

    fn ts(h: &str) -> Result<Timestamp, PduError> {
        let b = from_hex(h)?;
        Timestamp::decode(&mut Reader::new(&b), Field::Timestamp)
    }

    #[test]
    fn time_zones() {
        let q = |tz: &str| ts(&format!("111010214365{tz}")).map(|t| t.offset_quarters);
        assert_eq!(q("80"), Ok(8));
        assert_eq!(q("23"), Ok(32));
        assert_eq!(q("2B"), Ok(-32));
        assert_eq!(q("0A"), Ok(-20));
        assert_eq!(q("69"), Ok(-16));
        assert_eq!(q("00"), Ok(0));
    }

    #[test]
    fn round_trip_and_datetime() {
        let t = ts("1120821105050A").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            t.to_datetime().map(|d| d.to_rfc3339()),
            Some("2011-02-28T11:50:50-05:00".to_owned())
        );
        let mut out = Vec::new();
        assert_eq!(t.encode(&mut out), Ok(()));
        assert_eq!(out, from_hex("1120821105050A").unwrap_or_default());
        let dt = t.to_datetime().unwrap_or_default();
        assert_eq!(Timestamp::from_datetime(&dt), Ok(t));
        assert!(ts("11A0821105050A").is_err());
        // Impossible dates decode, but have no instant.
        assert_eq!(ts("11310000000000").map(|t| t.to_datetime()), Ok(None));
    }

    #[test]
    fn validity_ranges() {
        let m = |v| ValidityPeriod::relative_duration(v).as_secs() / 60;
        assert_eq!(m(0), 5);
        assert_eq!(m(143), 12 * 60);
        assert_eq!(m(0xA7), 24 * 60);
        assert_eq!(m(168), 2 * 24 * 60);
        assert_eq!(m(196), 30 * 24 * 60);
        assert_eq!(m(197), 5 * 7 * 24 * 60);
        assert_eq!(m(255), 441 * 24 * 60);
        assert_eq!(
            ValidityPeriod::relative_at_least(Duration::from_secs(86_400)),
            ValidityPeriod::Relative(0xA7)
        );
        let abs = from_hex("3170013193008017")
            .ok()
            .and_then(|b| ValidityPeriod::decode(&mut Reader::new(&b), 3).ok())
            .flatten();
        let Some(ValidityPeriod::Absolute(t)) = abs else {
            panic!("absolute VP expected, got {abs:?}");
        };
        assert_eq!(
            t.to_datetime().map(|d| d.to_rfc3339()),
            Some("2013-07-10T13:39:00+02:00".to_owned())
        );
        assert_eq!(
            ValidityPeriod::Enhanced([3, 0x10, 0x03, 0x00, 0, 0, 0]).duration(),
            Some(Duration::from_secs(3600 + 30 * 60))
        );
    }
}
