//! The torture corpus (`tests/torture/`, after RFC 4475's categories): valid messages
//! parse, invalid ones are refused cleanly (with a 400/505 reply when a request was
//! readable enough, else dropped), and no prefix or single-byte corruption of any of
//! them panics.

#![allow(
    clippy::unwrap_used,
    clippy::field_reassign_with_default,
    reason = "tests"
)]

use std::path::PathBuf;

use flowgate_sip::message::{Limits, Message, parse};

fn corpus(kind: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/torture")
        .join(kind);
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sip"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    v.sort();
    assert!(v.len() >= 10, "corpus {kind} too small");
    v
}

#[test]
fn valid_messages_parse() {
    for (name, bytes) in corpus("valid") {
        match parse(&bytes, &Limits::default()) {
            Ok(m) => {
                // What we parsed serializes and parses again to the same message.
                let again = parse(&m.to_bytes(), &Limits::default())
                    .unwrap_or_else(|e| panic!("{name}: re-parse: {:?}", e.error));
                // Serialization writes Content-Length last; compare everything else.
                let strip = |m: Message| match m {
                    Message::Request(mut r) => {
                        r.headers.remove("Content-Length");
                        Message::Request(r)
                    }
                    Message::Response(mut r) => {
                        r.headers.remove("Content-Length");
                        Message::Response(r)
                    }
                };
                assert_eq!(strip(again), strip(m), "{name}");
            }
            Err(e) => panic!("{name}: refused: {}", e.error),
        }
    }
}

#[test]
fn specific_valid_details() {
    let get = |n: &str| corpus("valid").into_iter().find(|(f, _)| f == n).unwrap().1;
    let Ok(Message::Request(r)) = parse(&get("tortuous_invite.sip"), &Limits::default()) else {
        panic!()
    };
    let k = r.key().unwrap();
    assert_eq!(k.cseq, 9);
    assert_eq!(k.from_tag, "98asjd8");
    assert_eq!(k.to_tag.as_deref(), Some("1918181833n"));
    assert_eq!(r.headers.get_all("Via").count(), 3);
    assert_eq!(
        r.headers.get("NewFangledHeader"),
        Some("newfangled value continued newfangled value")
    );
    let Ok(Message::Request(r)) = parse(&get("trailing_octets.sip"), &Limits::default()) else {
        panic!()
    };
    assert!(
        r.body.is_empty(),
        "the second message in the datagram is not a body"
    );
    let Ok(Message::Request(r)) = parse(&get("multipart_body.sip"), &Limits::default()) else {
        panic!()
    };
    assert!(r.body.ends_with(b"--boundary42--\r\n"));
    let Ok(Message::Response(r)) = parse(&get("empty_reason.sip"), &Limits::default()) else {
        panic!()
    };
    assert_eq!((r.status, r.reason.as_str()), (100, ""));
}

#[test]
fn invalid_messages_are_refused() {
    for (name, bytes) in corpus("invalid") {
        match parse(&bytes, &Limits::default()) {
            Ok(m) => panic!("{name}: accepted {m:?}"),
            Err(e) => {
                if let Some(r) = &e.reply {
                    assert!(matches!(r.status, 400 | 505), "{name}: reply {}", r.status);
                    // The reply echoes the request's headers (even a bad From), so it
                    // is only checked to be a framed status response.
                    let bytes = r.to_bytes();
                    assert!(
                        bytes.starts_with(format!("SIP/2.0 {} ", r.status).as_bytes()),
                        "{name}"
                    );
                    assert!(bytes.ends_with(b"Content-Length: 0\r\n\r\n"), "{name}");
                }
            }
        }
    }
    // Requests readable enough get an answer, responses never do.
    let get = |n: &str| {
        corpus("invalid")
            .into_iter()
            .find(|(f, _)| f == n)
            .unwrap()
            .1
    };
    assert_eq!(
        parse(&get("unknown_version.sip"), &Limits::default())
            .unwrap_err()
            .reply
            .unwrap()
            .status,
        505
    );
    assert_eq!(
        parse(&get("cseq_method_mismatch.sip"), &Limits::default())
            .unwrap_err()
            .reply
            .unwrap()
            .status,
        400
    );
    assert!(
        parse(&get("overlarge_response_code.sip"), &Limits::default())
            .unwrap_err()
            .reply
            .is_none()
    );
    assert!(
        parse(&get("missing_call_id.sip"), &Limits::default())
            .unwrap_err()
            .reply
            .is_none()
    );
}

#[test]
fn no_prefix_or_corruption_panics() {
    let limits = Limits::default();
    for kind in ["valid", "invalid"] {
        for (_, bytes) in corpus(kind) {
            for n in 0..bytes.len() {
                let _ = parse(&bytes[..n], &limits);
            }
            for i in (0..bytes.len()).step_by(5) {
                for b in [0u8, b'\r', b'\n', b':', b';', b'<', b'"', 0xff] {
                    let mut c = bytes.clone();
                    c[i] = b;
                    let _ = parse(&c, &limits);
                }
            }
        }
    }
}
