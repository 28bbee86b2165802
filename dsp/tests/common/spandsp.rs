//! spandsp's DTMF receiver (`dtmf_rx`, vendored C through `spandsp-sys`)
//! behind the suite's [`Detector`] trait, for the side-by-side figures and
//! the benchmark. Only built with the `spandsp-compare` feature.
#![allow(unsafe_code)]

use std::ffi::c_int;
use std::ptr::{NonNull, null_mut};

use spandsp_sys as sys;

use super::suite::Detector;

/// Largest digit buffer spandsp keeps (`MAX_DTMF_DIGITS`).
const MAX_DIGITS: usize = 128;

/// One spandsp DTMF receiver with its default settings.
pub(crate) struct Spandsp {
    state: NonNull<sys::dtmf_rx_state_t>,
    digits: [std::ffi::c_char; MAX_DIGITS + 1],
}

impl Spandsp {
    pub(crate) fn new() -> Self {
        // SAFETY: a null state asks spandsp to allocate one; no callback.
        let raw = unsafe { sys::dtmf_rx_init(null_mut(), None, null_mut()) };
        let state = NonNull::new(raw).expect("spandsp dtmf_rx_init returned NULL");
        Self {
            state,
            digits: [0; MAX_DIGITS + 1],
        }
    }

    /// Feeds samples without collecting digits (the benchmark's hot loop).
    pub(crate) fn rx(&mut self, samples: &[i16]) {
        let n = c_int::try_from(samples.len()).expect("chunk fits c_int");
        // SAFETY: state is live; the pointer/length pair describes `samples`.
        unsafe { sys::dtmf_rx(self.state.as_ptr(), samples.as_ptr(), n) };
    }
}

impl Drop for Spandsp {
    fn drop(&mut self) {
        // SAFETY: allocated by dtmf_rx_init, freed once.
        unsafe { sys::dtmf_rx_free(self.state.as_ptr()) };
    }
}

impl Detector for Spandsp {
    fn name(&self) -> String {
        "spandsp".into()
    }

    fn reset(&mut self) {
        // SAFETY: re-initialising an existing state in place is spandsp's
        // documented way to reset it.
        unsafe { sys::dtmf_rx_init(self.state.as_ptr(), None, null_mut()) };
    }

    fn feed(&mut self, samples: &[i16], out: &mut String) {
        self.rx(samples);
        let max = c_int::try_from(MAX_DIGITS).expect("small");
        // SAFETY: the buffer holds MAX_DIGITS + 1 bytes; spandsp writes at most
        // `max` digits plus a terminator.
        let n = unsafe { sys::dtmf_rx_get(self.state.as_ptr(), self.digits.as_mut_ptr(), max) };
        for &c in self.digits.iter().take(n.min(MAX_DIGITS)) {
            out.push(char::from(c.to_ne_bytes()[0]));
        }
    }
}
