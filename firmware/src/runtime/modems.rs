//! The gateway's modems, by id, with the choices the runtime makes among them (which modem
//! sends a message, which one dials).

use std::sync::Arc;

use flowgate_board::modem::ModemHandle;
use flowgate_board::modem::events::ModemState;

use crate::model::same_number;

/// Every modem of the board. Cheap to clone.
#[derive(Clone, Default)]
pub struct Modems {
    list: Arc<Vec<ModemHandle>>,
}

impl Modems {
    /// The modems of a board.
    pub fn new(list: Vec<ModemHandle>) -> Self {
        Self {
            list: Arc::new(list),
        }
    }

    /// All modems.
    pub fn iter(&self) -> impl Iterator<Item = &ModemHandle> {
        self.list.iter()
    }

    /// The modem with this id.
    pub fn get(&self, id: &str) -> Option<&ModemHandle> {
        self.list.iter().find(|m| m.id() == id)
    }

    /// Whether the board has no modem.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The modem's own number: what the SIM reports (`AT+CNUM`), if anything.
    pub fn own_number(modem: &ModemHandle) -> Option<String> {
        modem.status().identity.own_number.filter(|n| !n.is_empty())
    }

    /// The modem to send through: the preferred one if it exists, else the one whose own
    /// number is `source`, else the first ready one, else the first one (it may become ready;
    /// the send is retried).
    pub fn pick(&self, preferred: &str, source: &str) -> Option<&ModemHandle> {
        if !preferred.is_empty()
            && let Some(m) = self.get(preferred)
        {
            return Some(m);
        }
        if !source.is_empty()
            && let Some(m) = self
                .list
                .iter()
                .find(|m| Self::own_number(m).is_some_and(|n| same_number(&n, source)))
        {
            return Some(m);
        }
        self.list
            .iter()
            .find(|m| m.status().state == ModemState::Ready)
            .or_else(|| self.list.first())
    }
}
