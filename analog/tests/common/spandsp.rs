//! spandsp's ADSI transmitter and receiver (vendored C through `spandsp-sys`) for the
//! side-by-side caller-ID figures. Only built with the `spandsp-compare` feature.
#![allow(unsafe_code, dead_code, unreachable_pub)]

use std::ffi::{c_int, c_void};
use std::ptr::{NonNull, null, null_mut};

use flowgate_analog::cid::{CallerId, Message, checksum, decode};
use spandsp_sys as sys;

use super::cid_suite::{Decoder, Standard};

/// spandsp's `ADSI_STANDARD_*` codes (adsi.h: CLASS = Bell 202, CLIP = V.23).
const ADSI_STANDARD_CLASS: c_int = 1;
const ADSI_STANDARD_CLIP: c_int = 2;
/// MDMF caller-ID message and parameter codes shared by CLASS and CLIP.
const MDMF_CALLERID: u8 = 0x80;
const DATETIME: u8 = 0x01;
const CALLER_NUMBER: u8 = 0x02;
const CALLER_NAME: u8 = 0x07;
const CALLTYPE: u8 = 0x11;

fn code(s: Standard) -> c_int {
    match s {
        Standard::Bell => ADSI_STANDARD_CLASS,
        Standard::V23 => ADSI_STANDARD_CLIP,
    }
}

/// spandsp's transmitter: the burst for `caller`.
pub fn spandsp_tx(caller: &CallerId, standard: Standard) -> Vec<i16> {
    // SAFETY: NULL asks spandsp to allocate; freed below.
    let tx = unsafe { sys::adsi_tx_init(null_mut(), code(standard)) };
    let tx = NonNull::new(tx).expect("adsi_tx_init");
    let mut msg = [0u8; 256];
    let add = |msg: &mut [u8; 256], len: c_int, t: u8, body: &[u8]| -> c_int {
        let n = c_int::try_from(body.len()).expect("short");
        let ptr = if body.is_empty() {
            null()
        } else {
            body.as_ptr()
        };
        // SAFETY: tx is live; msg has room for the short caller-ID fields added here.
        unsafe { sys::adsi_add_field(tx.as_ptr(), msg.as_mut_ptr(), len, t, ptr, n) }
    };
    let mut len = add(&mut msg, -1, MDMF_CALLERID, &[]);
    if standard == Standard::V23 {
        len = add(&mut msg, len, CALLTYPE, &[1]);
    }
    let dt = caller.datetime.expect("date");
    let date = format!("{:02}{:02}{:02}{:02}", dt.month, dt.day, dt.hour, dt.minute);
    len = add(&mut msg, len, DATETIME, date.as_bytes());
    len = add(
        &mut msg,
        len,
        CALLER_NUMBER,
        caller.number.as_deref().unwrap_or("").as_bytes(),
    );
    len = add(
        &mut msg,
        len,
        CALLER_NAME,
        caller.name.as_deref().unwrap_or("").as_bytes(),
    );
    // SAFETY: msg holds `len` valid bytes.
    let put = unsafe { sys::adsi_tx_put_message(tx.as_ptr(), msg.as_ptr(), len) };
    assert!(put > 0, "adsi_tx_put_message refused the message");
    let mut out = Vec::new();
    let mut buf = [0i16; 160];
    loop {
        // SAFETY: buf has 160 samples.
        let n = unsafe { sys::adsi_tx(tx.as_ptr(), buf.as_mut_ptr(), 160) };
        let n = usize::try_from(n).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    // SAFETY: allocated by adsi_tx_init, freed once.
    unsafe { sys::adsi_tx_free(tx.as_ptr()) };
    out
}

/// spandsp's receiver.
pub struct SpandspRx {
    standard: Standard,
}

impl SpandspRx {
    pub fn new(standard: Standard) -> SpandspRx {
        SpandspRx { standard }
    }
}

unsafe extern "C" fn put_msg(user: *mut c_void, msg: *const u8, len: c_int) {
    // SAFETY: user is the Vec passed to adsi_rx_init below, alive during adsi_rx; msg holds
    // len bytes (spandsp passes negative lengths for status reports, skipped).
    let out = unsafe { &mut *user.cast::<Vec<Vec<u8>>>() };
    if let Ok(n) = usize::try_from(len)
        && n > 0
    {
        out.push(unsafe { std::slice::from_raw_parts(msg, n) }.to_vec());
    }
}

impl Decoder for SpandspRx {
    fn name(&self) -> String {
        "spandsp".into()
    }

    fn decode(&mut self, audio: &[i16]) -> Vec<CallerId> {
        let mut msgs: Vec<Vec<u8>> = Vec::new();
        let user = (&mut msgs as *mut Vec<Vec<u8>>).cast::<c_void>();
        // SAFETY: NULL asks spandsp to allocate; the callback and its user pointer live
        // until the state is freed below.
        let rx = unsafe { sys::adsi_rx_init(null_mut(), code(self.standard), Some(put_msg), user) };
        let rx = NonNull::new(rx).expect("adsi_rx_init");
        for frame in audio.chunks(160) {
            let n = c_int::try_from(frame.len()).expect("short");
            // SAFETY: frame holds n samples.
            unsafe { sys::adsi_rx(rx.as_ptr(), frame.as_ptr(), n) };
        }
        // SAFETY: allocated by adsi_rx_init, freed once.
        unsafe { sys::adsi_rx_free(rx.as_ptr()) };
        msgs.iter()
            .filter_map(|m| {
                // spandsp delivers the message after checking its checksum, without the
                // checksum byte; our parser wants it back.
                let mut full = m.clone();
                if decode(&full).is_err() {
                    full.push(checksum(m));
                }
                match decode(&full) {
                    Ok((Message::CallerId(c), _)) => Some(c),
                    _ => None,
                }
            })
            .collect()
    }
}
