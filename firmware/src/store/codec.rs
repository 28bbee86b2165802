//! How values are stored: JSON, LZ4-compressed when that saves space.
//!
//! Why: flash wear and the disk budget. An activeflow record (the engine state) and the
//! `activeflow_*` events (the public view, with every executed action) are JSON that repeats
//! field names and action ids; LZ4 takes them to a third or less at ~1 µs per KB, far below
//! what sled spends writing them. Small values (under [`MIN_PACKED`]) stay plain JSON.
//!
//! Format: plain JSON, or `0x00`, the uncompressed length (u32, little endian), then one LZ4
//! block. No JSON document starts with a zero byte, so both forms live side by side: records
//! written before compression existed still read, and a reader never guesses.

use std::borrow::Cow;

/// Values shorter than this are stored as they are (the header and LZ4's literals would eat
/// most of the gain).
pub const MIN_PACKED: usize = 256;

/// The first byte of a compressed value.
const PACKED: u8 = 0x00;

/// Largest uncompressed size accepted when reading (a corrupt header must not make the store
/// allocate gigabytes): far above any record the gateway writes.
const MAX_UNPACKED: usize = 64 * 1024 * 1024;

/// The stored form of `json`: compressed when that is smaller.
pub fn pack(json: Vec<u8>) -> Vec<u8> {
    if json.len() < MIN_PACKED {
        return json;
    }
    let Ok(len) = u32::try_from(json.len()) else {
        return json;
    };
    let mut out = Vec::with_capacity(5 + lz4_flex::block::get_maximum_output_size(json.len()));
    out.push(PACKED);
    out.extend_from_slice(&len.to_le_bytes());
    out.resize(out.capacity(), 0);
    match lz4_flex::block::compress_into(&json, &mut out[5..]) {
        Ok(n) if 5 + n < json.len() => {
            out.truncate(5 + n);
            out
        }
        _ => json,
    }
}

/// The JSON of a stored value (borrowed when it was stored plain).
///
/// # Errors
/// A compressed value whose header or block is damaged, said in words.
pub fn unpack(stored: &[u8]) -> Result<Cow<'_, [u8]>, String> {
    let Some((&PACKED, rest)) = stored.split_first() else {
        return Ok(Cow::Borrowed(stored));
    };
    let (len, block) = rest
        .split_first_chunk::<4>()
        .ok_or_else(|| "compressed value shorter than its header".to_owned())?;
    let len = usize::try_from(u32::from_le_bytes(*len)).unwrap_or(usize::MAX);
    if len > MAX_UNPACKED {
        return Err(format!(
            "compressed value claims {len} bytes, more than the {MAX_UNPACKED} allowed"
        ));
    }
    let mut out = vec![0; len];
    match lz4_flex::block::decompress_into(block, &mut out) {
        Ok(n) if n == len => Ok(Cow::Owned(out)),
        Ok(n) => Err(format!(
            "compressed value holds {n} bytes, its header says {len}"
        )),
        Err(e) => Err(format!("damaged compressed value: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_values_stay_json_and_large_ones_shrink_and_round_trip() {
        let small = br#"{"a":1}"#.to_vec();
        assert_eq!(pack(small.clone()), small);
        assert_eq!(unpack(&small).unwrap().as_ref(), small.as_slice());

        let large = serde_json::to_vec(&serde_json::json!({
            "actions": (0..50).map(|i| serde_json::json!({"id": format!("action-{i}"), "type": "talk"}))
                .collect::<Vec<_>>()
        }))
        .unwrap();
        let packed = pack(large.clone());
        assert_eq!(packed[0], PACKED);
        assert!(
            packed.len() * 3 < large.len(),
            "{} vs {}",
            packed.len(),
            large.len()
        );
        assert_eq!(unpack(&packed).unwrap().as_ref(), large.as_slice());
    }

    #[test]
    fn incompressible_values_stay_as_they_are() {
        // 300 bytes of a simple generator's output: LZ4 finds nothing to share.
        let mut x: u32 = 1;
        let noise: Vec<u8> = (0..300)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x.to_le_bytes()[0] | 1
            })
            .collect();
        assert_eq!(pack(noise.clone()), noise);
    }

    #[test]
    fn damaged_values_are_errors_not_panics() {
        assert!(unpack(&[PACKED]).is_err());
        assert!(unpack(&[PACKED, 1, 0]).is_err());
        assert!(unpack(&[PACKED, 0xff, 0xff, 0xff, 0xff, 1, 2]).is_err());
        assert!(unpack(&[PACKED, 10, 0, 0, 0, 0xf0, 1, 2]).is_err());
        let mut packed = pack(vec![b'a'; 1000]);
        packed.truncate(packed.len() - 1);
        assert!(unpack(&packed).is_err());
        assert!(unpack(&[]).unwrap().is_empty());
    }
}
