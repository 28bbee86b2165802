//! Fuzz target for the media layer's audio decoding (`play` downloads and
//! files, simulator uploads): arbitrary bytes must give audio or a
//! `Decode`/`TooLong` error, never a panic nor an allocation the bytes do not
//! justify, and decoded audio must resample to the call rate (or refuse cleanly).

#![no_main]

use flowgate::media::MediaError;
use flowgate::media::audio::decode_bytes;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    match decode_bytes(data.to_vec(), "fuzz", 5) {
        Ok(d) => {
            assert!(d.rate > 0);
            // Rates the resampler refuses are a clean error too.
            let _ = d.into_rate(8000);
        }
        Err(MediaError::Decode { .. } | MediaError::TooLong { .. }) => {}
        Err(other) => panic!("unexpected error kind: {other}"),
    }
});
