//! Caller-ID decoding accuracy: our receiver's floor across levels and noise (asserted), and
//! with `--features spandsp-compare` the cross-check against spandsp's ADSI transmitter and
//! receiver on the same signals.

mod common;

use common::cid_suite::{Decoder, Ours, Standard, callers, errors, ours_tx};

#[test]
fn our_decoder_reads_our_bursts_across_levels_and_noise() {
    let callers = callers(40, 7);
    for standard in Standard::ALL {
        let bursts: Vec<_> = callers
            .iter()
            .map(|c| (c.clone(), ours_tx(c, standard)))
            .collect();
        let mut d: Vec<Box<dyn Decoder>> = vec![Box::new(Ours::new(standard))];
        for level in [0.0, -13.0, -30.0, -40.0, -45.0] {
            let e = errors(&mut d, &bursts, level, None, 1)[0];
            assert_eq!(e, 0, "{} at {level} dBm0: {e} errors", standard.name());
        }
        // The floor: nothing lost at 12 dB S/N and above; at most 5 % at 10 dB and 20 % at
        // 8 dB (spandsp's receiver loses 6…35 % and 50…90 % there; see the README).
        for (snr, allowed) in [(20.0, 0), (15.0, 0), (12.0, 0), (10.0, 2), (8.0, 8)] {
            let e = errors(&mut d, &bursts, -13.0, Some(snr), 2)[0];
            assert!(
                e <= allowed,
                "{} at S/N {snr} dB: {e} of 40 lost",
                standard.name()
            );
        }
    }
}

#[cfg(feature = "spandsp-compare")]
#[test]
fn spandsp_transmitter_is_read_and_we_do_no_worse_than_its_receiver() {
    use common::spandsp::{SpandspRx, spandsp_tx};
    let callers = callers(30, 11);
    for standard in Standard::ALL {
        let bursts: Vec<_> = callers
            .iter()
            .map(|c| (c.clone(), spandsp_tx(c, standard)))
            .collect();
        let mut d: Vec<Box<dyn Decoder>> = vec![
            Box::new(Ours::new(standard)),
            Box::new(SpandspRx::new(standard)),
        ];
        for level in [-13.0, -30.0, -40.0] {
            let e = errors(&mut d, &bursts, level, None, 3);
            assert_eq!(e[0], 0, "{} from spandsp at {level} dBm0", standard.name());
            assert!(e[0] <= e[1], "{} at {level} dBm0: {e:?}", standard.name());
        }
        for snr in [15.0, 10.0, 8.0] {
            let e = errors(&mut d, &bursts, -13.0, Some(snr), 4);
            assert!(e[0] <= e[1], "{} at S/N {snr}: {e:?}", standard.name());
        }
    }
}
