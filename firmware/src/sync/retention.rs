//! Event-log retention: keep at most `data.event_retention` events, but never prune an event
//! a webhook target has not received yet (its cursor is the limit).

use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::store::{Store, StoreError};

/// The highest sequence number that may be pruned: everything but the newest `retention`
/// events, and nothing after the lowest delivery cursor.
pub fn prune_bound(last_seq: u64, retention: u64, cursors: &[u64]) -> u64 {
    let by_size = last_seq.saturating_sub(retention);
    cursors.iter().copied().fold(by_size, u64::min)
}

/// Prunes once; returns how many events went. Cursors not stored yet impose no limit (their
/// worker starts at the end of the log).
pub fn prune_once(
    store: &Store,
    retention: u64,
    cursor_keys: &[String],
) -> Result<usize, StoreError> {
    let mut cursors = Vec::with_capacity(cursor_keys.len());
    for key in cursor_keys {
        if let Some(cursor) = store.meta_get::<u64>(key)? {
            cursors.push(cursor);
        }
    }
    let bound = prune_bound(store.last_seq(), retention, &cursors);
    if bound == 0 {
        return Ok(0);
    }
    store.prune_events(bound)
}

/// Prunes at start, then each time the log has grown by a tenth of `retention`.
pub async fn run(
    store: Store,
    retention: u64,
    cursor_keys: Vec<String>,
    cancel: CancellationToken,
) {
    let step = (retention / 10).max(1);
    let mut seq = store.watch_seq();
    loop {
        let checked = store.last_seq();
        match prune_once(&store, retention, &cursor_keys) {
            Ok(0) => {}
            Ok(n) => debug!(pruned = n, "event log pruned"),
            Err(e) => warn!(cause = %e, "event log retention failed"),
        }
        let next = checked.saturating_add(step);
        tokio::select! {
            _ = cancel.cancelled() => return,
            changed = seq.wait_for(|s| *s >= next) => if changed.is_err() { return },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Batch;

    #[test]
    fn bound_keeps_the_newest_and_undelivered_events() {
        assert_eq!(prune_bound(1000, 100, &[]), 900);
        assert_eq!(prune_bound(1000, 100, &[950, 500]), 500);
        assert_eq!(prune_bound(50, 100, &[]), 0);
        assert_eq!(prune_bound(1000, 100, &[999]), 900);
    }

    #[test]
    fn prune_once_respects_a_cursor() {
        let store = Store::temporary().unwrap();
        for _ in 0..30 {
            let mut batch = Batch::new();
            batch.event("x", uuid::Uuid::nil(), serde_json::Value::Null);
            store.commit(batch).unwrap();
        }
        store.meta_put("cursor", &5u64).unwrap();
        assert_eq!(prune_once(&store, 10, &["cursor".to_owned()]).unwrap(), 5);
        store.meta_put("cursor", &30u64).unwrap();
        assert_eq!(
            prune_once(&store, 10, &["cursor".to_owned(), "never-set".to_owned()]).unwrap(),
            15
        );
        assert_eq!(
            store.events_after(0, 100).unwrap().first().map(|e| e.seq),
            Some(21)
        );
    }
}
