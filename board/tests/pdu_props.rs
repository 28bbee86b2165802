//! Property tests for the SMS PDU codec: text → parts → PDUs → decode → reassemble gives back
//! the text for arbitrary Unicode at and around every part-size boundary, parts are filled to
//! the last septet / code unit without splitting escapes or surrogate pairs, and decoding
//! arbitrary or mutated bytes never panics and re-encodes losslessly.
//!
//! Deeper run: `PROPTEST_CASES=20000 cargo test --release -p flowgate-board --test pdu_props`.

use std::time::Duration;

use chrono::DateTime;
use flowgate_board::modem::pdu::{
    Address, Alphabet, Body, ConcatRef, DeliverOptions, GSM7_PART, GSM7_SINGLE, Pdu, Pushed,
    Reassembler, SubmitOptions, Timestamp, Tpdu, UCS2_PART, UCS2_SINGLE, UserData, encode_deliver,
    encode_submit, from_hex, gsm7, split_text, ussd,
};
use proptest::prelude::*;

/// Characters by what they cost.
const GSM_BASIC: &[char] = &[
    '@', '£', 'a', 'Z', '0', ' ', '\n', 'Δ', 'é', 'Ñ', '§', '¿', 'à', '!', '\r', 'ß',
];
const GSM_EXT: &[char] = &['€', '[', ']', '{', '}', '~', '^', '\\', '|', '\u{0C}'];
const BMP_NON_GSM: &[char] = &['я', 'Ж', '你', 'ç', '`', 'ę', 'ก', '\u{FFFD}'];
const ASTRAL: &[char] = &['😀', '😃', '🎉', '𝄞', '🇺'];

/// Which alphabet a generated text exercises.
#[derive(Debug, Clone, Copy)]
enum Mix {
    /// Basic GSM7 characters only.
    Gsm7,
    /// GSM7 with extension characters (2 septets each).
    Gsm7Ext,
    /// UCS2 text from the BMP.
    Bmp,
    /// UCS2 text with surrogate pairs.
    Astral,
    /// Everything.
    Any,
}

fn pool(mix: Mix) -> Vec<char> {
    match mix {
        Mix::Gsm7 => GSM_BASIC.to_vec(),
        Mix::Gsm7Ext => [GSM_BASIC, GSM_EXT].concat(),
        Mix::Bmp => [GSM_BASIC, BMP_NON_GSM].concat(),
        Mix::Astral => [BMP_NON_GSM, ASTRAL].concat(),
        Mix::Any => [GSM_BASIC, GSM_EXT, BMP_NON_GSM, ASTRAL].concat(),
    }
}

/// Builds a text whose cost (septets for GSM7 mixes, UTF-16 units otherwise) is exactly
/// `target`: characters are drawn from the pool by `picks`, and a 1-cost filler closes the gap
/// when a 2-cost character would overshoot. A `tail` 2-cost character can be forced to sit
/// across the part boundary.
fn text_of_cost(mix: Mix, target: usize, picks: &[u16], tail: Option<char>) -> String {
    let pool = pool(mix);
    let gsm = matches!(mix, Mix::Gsm7 | Mix::Gsm7Ext);
    let cost = |c: char| {
        if gsm {
            gsm7::encode_char(c).map_or(1, gsm7::Gsm7Char::septets)
        } else {
            c.len_utf16()
        }
    };
    // Non-GSM mixes must stay UCS2 whatever is drawn, so the filler is a non-GSM character.
    let filler = if gsm { 'a' } else { 'я' };
    let mut out = String::new();
    let mut used = 0;
    let budget = target.saturating_sub(tail.map_or(0, cost));
    if !gsm && budget > 0 {
        // Start with a non-GSM character so the text is UCS2 whatever else is drawn.
        out.push(filler);
        used = 1;
    }
    for (i, &p) in picks.iter().cycle().enumerate() {
        if used >= budget || i > 4 * target + 4 {
            break;
        }
        let c = pool[usize::from(p) % pool.len()];
        if used + cost(c) > budget {
            out.push(filler);
            used += 1;
        } else {
            out.push(c);
            used += cost(c);
        }
    }
    while used < budget {
        out.push(filler);
        used += 1;
    }
    if let Some(t) = tail {
        out.push(t);
    }
    out
}

fn boundary_costs() -> impl Strategy<Value = usize> {
    prop_oneof![
        3 => prop::sample::select(vec![
            0usize, 1, 66, 67, 68, 69, 70, 71, 132, 133, 134, 135, 152, 153, 154, 159, 160,
            161, 200, 201, 202, 304, 305, 306, 307, 308, 459, 460
        ]),
        1 => 0usize..700,
    ]
}

fn mixes() -> impl Strategy<Value = Mix> {
    prop::sample::select(vec![
        Mix::Gsm7,
        Mix::Gsm7Ext,
        Mix::Bmp,
        Mix::Astral,
        Mix::Any,
    ])
}

fn refs() -> impl Strategy<Value = ConcatRef> {
    prop_oneof![
        any::<u8>().prop_map(ConcatRef::Eight),
        any::<u16>().prop_map(ConcatRef::Sixteen),
    ]
}

/// Cost of a text in the alphabet the encoder chose.
fn cost_in(alphabet: Alphabet, text: &str) -> usize {
    match alphabet {
        Alphabet::Gsm7 => gsm7::septet_len(text).unwrap_or(usize::MAX),
        _ => text.chars().map(char::len_utf16).sum(),
    }
}

fn texts() -> impl Strategy<Value = String> {
    (
        mixes(),
        boundary_costs(),
        prop::collection::vec(any::<u16>(), 1..64),
        prop::option::of(prop::sample::select(vec!['€', '[', '😀', '🎉'])),
    )
        .prop_map(|(mix, target, picks, tail)| {
            // A 2-cost tail only makes sense in an alphabet where it costs 2.
            let tail = tail.filter(|&t| match mix {
                Mix::Gsm7Ext => gsm7::encode_char(t).is_some(),
                Mix::Astral | Mix::Any => gsm7::encode_char(t).is_none(),
                _ => false,
            });
            text_of_cost(mix, target, &picks, tail)
        })
}

/// A tiny deterministic shuffle (the permutation comes from proptest's seed).
fn shuffle<T>(v: &mut [T], mut seed: u64) {
    for i in (1..v.len()).rev() {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let j = usize::try_from((seed >> 33) % u64::try_from(i + 1).unwrap_or(1)).unwrap_or(0);
        v.swap(i, j);
    }
}

fn ts() -> Timestamp {
    Timestamp {
        year: 2024,
        month: 2,
        day: 29,
        hour: 23,
        minute: 59,
        second: 58,
        offset_quarters: -14,
    }
}

proptest! {

    /// Splitting picks the right alphabet, fills every part but the last to the limit (a
    /// 2-cost character that would straddle moves whole), and joins back to the text.
    #[test]
    fn split_fills_parts_exactly(text in texts(), reference in refs()) {
        let split = split_text(&text, reference).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let gsm = gsm7::septet_len(&text).is_some();
        prop_assert_eq!(split.alphabet == Alphabet::Gsm7, gsm);
        let (single, mut per_part) = if gsm { (GSM7_SINGLE, GSM7_PART) } else { (UCS2_SINGLE, UCS2_PART) };
        if matches!(reference, ConcatRef::Sixteen(_)) {
            per_part -= 1;
        }
        let total = cost_in(split.alphabet, &text);
        let bodies: Vec<&str> = split.parts.iter().filter_map(|p| p.body.text()).collect();
        prop_assert_eq!(bodies.len(), split.parts.len());
        prop_assert_eq!(bodies.concat(), text.clone());
        if total <= single {
            prop_assert_eq!(split.parts.len(), 1);
            prop_assert!(split.parts[0].header.is_none());
        } else {
            prop_assert!(split.parts.len() >= 2);
            for (i, body) in bodies.iter().enumerate() {
                let c = cost_in(split.alphabet, body);
                prop_assert!(c <= per_part, "part {} costs {}", i, c);
                if let Some(next) = bodies.get(i + 1) {
                    let first = next.chars().next().map_or(0, |ch| cost_in(split.alphabet, &ch.to_string()));
                    prop_assert!(c == per_part || c + first > per_part,
                        "part {} not full: {} + {}", i, c, first);
                }
            }
        }
    }

    /// SUBMIT parts decode back to the same text, with a correct TPDU length, and no UCS2
    /// part ends in a high surrogate.
    #[test]
    fn submit_round_trips(text in texts(), reference in refs(), srr: bool, class in prop::option::of(0u8..4)) {
        let to = Address::parse("+4915112345678").map_err(|e| TestCaseError::fail(e.to_string()))?;
        let options = SubmitOptions {
            status_report: srr,
            reference,
            class: class.map(|c| match c {
                0 => flowgate_board::modem::pdu::MessageClass::Class0,
                1 => flowgate_board::modem::pdu::MessageClass::Class1,
                2 => flowgate_board::modem::pdu::MessageClass::Class2,
                _ => flowgate_board::modem::pdu::MessageClass::Class3,
            }),
            ..SubmitOptions::default()
        };
        let parts = encode_submit(&to, &text, &options).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut joined = String::new();
        for (i, part) in parts.iter().enumerate() {
            prop_assert_eq!(part.tpdu_len + 1, part.octets.len());
            let pdu = Pdu::from_hex_with_tpdu_len(&part.hex(), part.tpdu_len)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let Tpdu::Submit(s) = pdu.tpdu else {
                return Err(TestCaseError::fail("not a SUBMIT"));
            };
            prop_assert_eq!(s.status_report_request, srr);
            prop_assert_eq!(s.dcs.class(), options.class);
            if parts.len() > 1 {
                let c = s.user_data.concat().ok_or_else(|| TestCaseError::fail("no concat"))?;
                prop_assert_eq!(usize::from(c.seq), i + 1);
                prop_assert_eq!(usize::from(c.total), parts.len());
                prop_assert_eq!(c.wide, matches!(reference, ConcatRef::Sixteen(_)));
            }
            if s.dcs.alphabet() == Alphabet::Ucs2 {
                let tpdu = part.tpdu();
                let last = tpdu.len().checked_sub(2).and_then(|n| tpdu.get(n..))
                    .map(|u| u16::from_be_bytes([u[0], u[1]]));
                prop_assert!(!last.is_some_and(|u| (0xD800..0xDC00).contains(&u)), "split surrogate pair");
            }
            joined.push_str(s.user_data.body.text().unwrap_or("<data>"));
        }
        prop_assert_eq!(joined, text);
    }

    /// DELIVER parts, shuffled, reassemble into the text; duplicates are absorbed and their
    /// tokens kept for deletion.
    #[test]
    fn deliver_parts_reassemble_in_any_order(text in texts(), reference in refs(), seed: u64, dup in any::<prop::sample::Index>()) {
        let from = Address::parse("+447700900123").map_err(|e| TestCaseError::fail(e.to_string()))?;
        let options = DeliverOptions {
            smsc: None,
            timestamp: ts(),
            reference,
            class: None,
            status_report_indication: false,
        };
        let encoded = encode_deliver(&from, &text, &options).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut parts: Vec<(usize, _)> = encoded
            .iter()
            .map(|p| match Pdu::decode(&p.octets).map(|p| p.tpdu) {
                Ok(Tpdu::Deliver(d)) => Ok(d),
                other => Err(TestCaseError::fail(format!("{other:?}"))),
            })
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .enumerate()
            .collect();
        shuffle(&mut parts, seed);
        // A copy of a random part arrives right after the original (token usize::MAX). A
        // single-part message has no reference, so a copy of it is just another message.
        let at = dup.index(parts.len());
        let multipart = parts.len() > 1;
        if multipart {
            let copy = (usize::MAX, parts[at].1.clone());
            parts.insert(at + 1, copy);
        }
        let now = DateTime::UNIX_EPOCH;
        let mut r = Reassembler::new(Duration::from_secs(600));
        let mut done = None;
        let mut late_duplicate = None;
        for (token, d) in &parts {
            match r.push(d, *token, now) {
                Pushed::Complete(m) => {
                    prop_assert!(done.is_none(), "completed twice");
                    done = Some(m);
                }
                Pushed::Pending { .. } => prop_assert!(done.is_none(), "pending after completion"),
                Pushed::Duplicate { token } => {
                    prop_assert!(done.is_some(), "duplicate before completion");
                    late_duplicate = Some(token);
                }
            }
        }
        let m = done.ok_or_else(|| TestCaseError::fail("never completed"))?;
        prop_assert_eq!(m.text(), Some(text.as_str()));
        prop_assert!(m.is_complete());
        // The copy's token is either in the message (absorbed while pending) or handed back.
        let last = at + 1 == parts.len() - 1;
        if !multipart {
            prop_assert_eq!(m.tokens.len(), 1);
        } else if last {
            prop_assert_eq!(late_duplicate, Some(usize::MAX));
            prop_assert_eq!(m.tokens.len(), parts.len() - 1);
        } else {
            prop_assert_eq!(late_duplicate, None);
            prop_assert_eq!(m.tokens.len(), parts.len());
            prop_assert!(m.tokens.contains(&usize::MAX));
        }
        prop_assert_eq!(m.sender.to_string(), "+447700900123");
        prop_assert_eq!(r.pending().count(), 0);
    }

    /// Arbitrary bytes never panic any decoder; whatever decodes re-encodes and decodes to the
    /// same value.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200), len in 0usize..200) {
        check_bytes(&bytes, len)?;
    }

    /// Mutations of valid PDUs (byte flips, truncation) reach deep into the decoder.
    #[test]
    fn mutated_vectors_never_panic(
        which in any::<prop::sample::Index>(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        cut in any::<prop::sample::Index>(),
        truncate: bool,
    ) {
        let mut bytes = from_hex(VECTORS[which.index(VECTORS.len())]).unwrap_or_default();
        for (pos, b) in flips {
            let i = pos.index(bytes.len());
            bytes[i] = b;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len() + 1));
        }
        let len = bytes.len().saturating_sub(8);
        check_bytes(&bytes, len)?;
    }

    /// The USSD helpers accept any string without panicking, and packed GSM7 round-trips.
    #[test]
    fn ussd_helpers(s in ".{0,80}", dcs: u8, text in "[A-Za-z0-9 *#@£$.,:-]{0,90}") {
        let _ = ussd::gsm7_unpack_hex(&s);
        let _ = ussd::ucs2_hex_decode(&s);
        for charset in [ussd::UssdCharset::RawHex, ussd::UssdCharset::Ucs2Hex, ussd::UssdCharset::Text] {
            let _ = ussd::decode_ussd(&s, dcs, charset);
        }
        let packed = ussd::gsm7_pack_hex(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(ussd::gsm7_unpack_hex(&packed).map_err(|e| TestCaseError::fail(e.to_string()))?, text.clone());
        prop_assert_eq!(ussd::ucs2_hex_decode(&ussd::ucs2_hex_encode(&text)).ok(), Some(text));
    }
}

const VECTORS: &[&str] = &[
    "07912143658709F1040B918100551512F20000111010214365000AE8329BFD4697D9EC37",
    "07919730071111F10414D04937BD2C7797E9D3E614000811309291024061080442043504410442",
    "07912160130320F6440B916171056429F5000021405291651569320500034C0202E9E8301D44479741F0B09C3E0785E56590BCCC0ED3CB6410FD0D7ABBCBA0B0FB4D4797E52E10",
    "07914356060013F1065A098136397339F7219011700463802190117004638030",
    "0006D60B911326880736F4111011719551401110117195714000",
    "0011000B915155551532F40008003A041404300020043704340440043004320441044204320443043504420020043A043E0440043E043B044C002C0020043404350442043A04300021",
    "038121431100048121430000FF0631D98C56B301",
    "07911326040000F0310D0B911326880736F40000A90FF7FBDD454E87CDE1B0DB357EB701",
    "0591721891F101000B917228214365F700040C48656C6C6F20776F726C6421",
    // STATUS-REPORT with TP-PI announcing PID, DCS and UD (UCS2 "A").
    "0006D60B911326880736F4111011719551401110117195714000070008020041",
    // DELIVER with ports + concat + unknown element, UCS2.
    "0791448720003023440C91539161617550000840203101644500100D050416230000000399020277000041",
];

fn check_bytes(bytes: &[u8], len: usize) -> Result<(), TestCaseError> {
    let hex = flowgate_board::modem::pdu::to_hex(bytes);
    let _ = Pdu::from_hex_with_tpdu_len(&hex, len);
    let _ = Tpdu::decode(bytes);
    if let Ok(pdu) = Pdu::decode(bytes) {
        let again = pdu
            .encode()
            .map_err(|e| TestCaseError::fail(format!("decoded {hex} but cannot re-encode: {e}")))?;
        let back = Pdu::decode(&again.octets)
            .map_err(|e| TestCaseError::fail(format!("re-encoded {hex} does not decode: {e}")))?;
        prop_assert_eq!(back, pdu, "{}", hex);
    }
    Ok(())
}

#[test]
fn generator_hits_the_boundaries() {
    // The generator itself must produce the costs it is asked for.
    for mix in [Mix::Gsm7, Mix::Gsm7Ext, Mix::Bmp, Mix::Astral, Mix::Any] {
        for target in [0, 1, 67, 152, 153, 160, 306] {
            let t = text_of_cost(mix, target, &[3, 17, 250, 9], None);
            let alphabet = if gsm7::septet_len(&t).is_some() {
                Alphabet::Gsm7
            } else {
                Alphabet::Ucs2
            };
            assert_eq!(cost_in(alphabet, &t), target, "{mix:?} {target}: {t:?}");
        }
    }
    let t = text_of_cost(Mix::Astral, 67, &[1], Some('😀'));
    assert_eq!(cost_in(Alphabet::Ucs2, &t), 67);
    assert!(t.ends_with('😀'));
}

#[test]
fn surrogate_pair_at_the_ucs2_boundary_moves_whole() {
    // 66 units, then an emoji at units 67-68: part 1 must stop at 66 units.
    let text = format!("{}😀{}", "я".repeat(66), "я".repeat(10));
    let split = split_text(&text, ConcatRef::Eight(1)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(split.parts.len(), 2);
    assert_eq!(split.parts[0].body, Body::Text("я".repeat(66)));
    assert!(matches!(&split.parts[1].body, Body::Text(t) if t.starts_with('😀')));
    // Same for an escape pair at the GSM7 boundary.
    let text = format!("{}€{}", "a".repeat(152), "b".repeat(10));
    let split = split_text(&text, ConcatRef::Eight(1)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(split.parts[0].body, Body::Text("a".repeat(152)));
    // 161 septets do not fit one SMS; a 16-bit reference leaves 152 per part.
    let split =
        split_text(&"a".repeat(161), ConcatRef::Sixteen(1)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(split.parts[0].body, Body::Text("a".repeat(152)));
    assert_eq!(split.parts[1].body, Body::Text("a".repeat(9)));
}

#[test]
fn too_many_parts_is_an_error() {
    let text = "a".repeat(153 * 255 + 1);
    assert!(matches!(
        split_text(&text, ConcatRef::Eight(0)),
        Err(flowgate_board::modem::pdu::PduError::TooManyParts { parts: 256 })
    ));
    assert!(split_text(&"a".repeat(153 * 255), ConcatRef::Eight(0)).is_ok());
    // A single part without header is plain user data.
    assert_eq!(
        split_text("hi", ConcatRef::Eight(0)).map(|s| s.parts),
        Ok(vec![UserData::text("hi")])
    );
}
