//! Fuzz target for the store's value codec (`flowgate::store::codec`): whatever bytes are read
//! back from disk, unpacking must answer a value or an error, never panic or allocate without
//! bound; and whatever is packed must unpack to exactly the same bytes.

#![no_main]

use flowgate::store::codec::{pack, unpack};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = unpack(data);
    // The store packs only JSON, which never starts with the marker byte (zero).
    if data.first() == Some(&0) {
        return;
    }
    let packed = pack(data.to_vec());
    let back = unpack(&packed).expect("a packed value unpacks");
    assert_eq!(back.as_ref(), data, "pack/unpack changed the value");
});
