//! Fuzz target for TZif parsing (`flowgate_flows::tz::Zone::from_tzif`, the image's tzdata
//! files read for `condition_datetime`): whatever bytes a zoneinfo file holds, parsing answers
//! a zone or an error, and a zone answers an offset for any instant, never a panic.

#![no_main]

use chrono::DateTime;
use flowgate_flows::tz::Zone;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(zone) = Zone::from_tzif(data) else {
        return;
    };
    // Instants before, inside and far after any transition table, and at the extremes.
    for seconds in [
        i64::MIN / 4,
        -2_208_988_800,
        0,
        1_700_000_000,
        4_102_444_800,
        253_402_300_799,
    ] {
        if let Some(at) = DateTime::from_timestamp(seconds, 0) {
            let _ = zone.local(at);
        }
    }
});
