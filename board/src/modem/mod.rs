//! GSM/LTE modems: codecs, driver and vendor profiles.

pub mod pdu;
