//! Fuzz target for the simulated modem's input side: arbitrary bytes from "the gateway" — the
//! line discipline, V.250 command-line splitting, every command's argument parsing, the `> `
//! prompt bodies of PDU and text mode — must never panic, whatever model and whatever
//! settings the bytes set up along the way.

#![no_main]

use flowgate_board::simulator::{SimulatedModel, feed_fresh};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&sel, input)) = data.split_first() else {
        return;
    };
    let model = SimulatedModel::ALL[usize::from(sel) % SimulatedModel::ALL.len()];
    let _ = feed_fresh(model, input);
});
