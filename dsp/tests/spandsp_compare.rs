//! Our detector against spandsp's on the same signals: it must miss no more
//! digits and raise no more false digits (conformance scorecard and
//! talk-off). Only with `--features spandsp-compare`, so plain `cargo test`
//! never builds spandsp.
#![cfg(feature = "spandsp-compare")]

mod common;

use common::signal::Munge;
use common::spandsp::Spandsp;
use common::speech;
use common::suite::{self, Flowgate};

#[test]
fn no_worse_than_spandsp() {
    for munge in [Munge::Linear, Munge::Ulaw] {
        let ours = suite::scorecard(&mut Flowgate::standard(8000), munge);
        let theirs = suite::scorecard(&mut Spandsp::new(), munge);
        println!(
            "{}: flowgate {ours:?}\n{}: spandsp {theirs:?}",
            munge.name(),
            munge.name()
        );
        assert!(ours.missed + ours.wrong <= theirs.missed + theirs.wrong);
        assert!(ours.false_digits <= theirs.false_digits);
    }
    let corpus = speech::corpus(8000, usize::MAX).unwrap_or_else(|e| panic!("{e}"));
    let signals = speech::at_all_levels(&corpus);
    let (ours, _) = suite::talk_off(&mut Flowgate::standard(8000), &signals);
    let (theirs, _) = suite::talk_off(&mut Spandsp::new(), &signals);
    println!("talk-off: flowgate {ours}, spandsp {theirs}");
    assert!(ours <= theirs);
}
