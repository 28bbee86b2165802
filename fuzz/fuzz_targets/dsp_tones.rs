//! Fuzz target for the call-progress tone notation and table parser: any
//! text must parse or fail cleanly, and whatever parses must generate at
//! both rates without panicking.

#![no_main]

use flowgate_dsp::{ToneGenerator, ToneSpec, ToneTable};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(spec) = ToneSpec::parse(text) {
        for rate in [8000, 16000] {
            if let Ok(mut g) = ToneGenerator::new(&spec, rate, -10.0) {
                let mut buf = [0i16; 333];
                for _ in 0..8 {
                    g.fill(&mut buf);
                }
            }
        }
    }
    if let Ok(table) = ToneTable::from_toml(text) {
        for zone in table.zones() {
            let _ = table.zone(&zone.code);
        }
    }
});
