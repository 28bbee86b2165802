//! Prints the caller-ID decoding figures for the README: errors per level and per S/N, our
//! receiver side by side with spandsp's ADSI receiver on the same signals, bursts from
//! spandsp's ADSI transmitter (and from ours).
//!
//! ```text
//! cargo run --release -p flowgate-analog --example cid_report                               # ours only
//! cargo run --release -p flowgate-analog --features spandsp-compare --example cid_report    # side by side
//! ```

#[path = "../tests/common/cid_suite.rs"]
mod cid_suite;
#[cfg(feature = "spandsp-compare")]
#[path = "../tests/common/spandsp.rs"]
mod spandsp;

use cid_suite::{Decoder, Ours, Standard, callers, errors, ours_tx};

const TRIALS: usize = 200;

fn main() {
    let callers = callers(TRIALS, 42);
    for standard in Standard::ALL {
        #[cfg_attr(
            not(feature = "spandsp-compare"),
            expect(unused_mut, reason = "spandsp adds a source")
        )]
        let mut sources: Vec<(&str, Vec<_>)> = vec![(
            "flowgate tx",
            callers
                .iter()
                .map(|c| (c.clone(), ours_tx(c, standard)))
                .collect(),
        )];
        #[cfg(feature = "spandsp-compare")]
        sources.insert(
            0,
            (
                "spandsp tx",
                callers
                    .iter()
                    .map(|c| (c.clone(), spandsp::spandsp_tx(c, standard)))
                    .collect(),
            ),
        );
        for (source, bursts) in &sources {
            let mut decoders: Vec<Box<dyn Decoder>> = vec![Box::new(Ours::new(standard))];
            #[cfg(feature = "spandsp-compare")]
            decoders.push(Box::new(spandsp::SpandspRx::new(standard)));
            let names: Vec<String> = decoders.iter().map(|d| d.name()).collect();
            println!(
                "\n{} from {source}, {TRIALS} messages per cell (wrong or missed)\n",
                standard.name()
            );
            println!("| condition | {} |", names.join(" | "));
            println!("|---|{}", "---|".repeat(names.len()));
            for level in [0.0, -10.0, -20.0, -30.0, -40.0, -45.0, -50.0, -55.0] {
                let e = errors(&mut decoders, bursts, level, None, 1);
                println!("| {level} dBm0 | {} |", cells(&e));
            }
            for snr in [20.0, 15.0, 12.0, 10.0, 8.0, 6.0, 4.0] {
                let e = errors(&mut decoders, bursts, -13.0, Some(snr), 2);
                println!("| S/N {snr} dB at −13 dBm0 | {} |", cells(&e));
            }
        }
    }
}

fn cells(e: &[usize]) -> String {
    e.iter()
        .map(|n| format!("{n}/{TRIALS}"))
        .collect::<Vec<_>>()
        .join(" | ")
}
