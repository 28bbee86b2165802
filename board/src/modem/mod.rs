//! GSM/LTE modems: codecs, driver and vendor profiles.
//!
//! - [`at`]: the sans-IO AT codec, typed URCs and reply parsers.
//! - [`pdu`]: the sans-IO SMS PDU codec.
//! - [`driver`]: the async driver ([`Modem::spawn`] → [`ModemHandle`]).
//! - [`profile`]: vendor profiles (data); [`config`]: per-modem configuration.
//! - [`calls`]: the sans-IO call tracker; [`recovery`]: the sans-IO recovery policy.
//! - [`events`]: events and the observable status; [`error`]: [`ModemError`].
//! - [`power`]: GPIO power control for the last recovery rungs.

pub mod at;
pub mod calls;
pub mod config;
pub mod driver;
pub mod error;
pub mod events;
pub mod line;
pub mod pdu;
pub mod power;
pub mod profile;
pub mod recovery;

pub use config::{AudioTransport, ModemConfig, SmsMode};
pub use driver::{
    DiscardReport, InboundReport, InboundSms, Modem, ModemHandle, OutboundReport, OutgoingSms,
    PartOutcome, PreparedPart, PreparedSms, SentSms, SmsAck, SmsMessage, StorageSlot,
    StoredOutbound,
};
pub use error::ModemError;
pub use events::{CallEndCause, CallEndReason, CallId, ModemEvent, ModemState, ModemStatus};
pub use line::ModemLine;
pub use profile::VendorProfile;
