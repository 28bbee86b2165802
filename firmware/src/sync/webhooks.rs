//! Event delivery over HTTP.
//!
//! - [`TargetWorker`]: one per configured `[[webhooks]]` target. It follows the persistent
//!   event log from its own cursor (kept in the store's meta tree, so it survives restarts),
//!   POSTs each matching event as JSON `{seq, time, type, resource_id, data}` (the log entry
//!   as it is) with the target's secret as a bearer token, and advances the cursor only after
//!   a 2xx. Failures are retried with capped exponential backoff, forever: the log is the
//!   outbox, and retention keeps every event the target has not received. Delivery is in
//!   order and at least once (a crash between the 2xx and the cursor write repeats one
//!   event; receivers de-duplicate by `seq`).
//! - [`ActiveflowHooks`]: VoIPBIN's per-activeflow `webhook_uri`. One follower reads the log
//!   and hands `activeflow_*` events of activeflows that have a `webhook_uri` to a small
//!   queue per URI; each queue has its own task with a bounded number of attempts, so a slow
//!   or dead receiver delays nobody else. This is best effort: a full queue drops the event
//!   (logged), and attempts in flight at shutdown are not resumed.
//!
//! A target that has never run starts at the end of the log: it receives what happens from
//! then on, not the whole history.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::config::WebhookTarget;
use crate::metrics::Metrics;
use crate::store::{Db, Event, Store, StoreError};

/// Tuning of event delivery. The defaults suit a LAN controller.
#[derive(Debug, Clone)]
pub struct DeliveryOptions {
    /// First retry delay.
    pub initial_backoff: Duration,
    /// Longest retry delay (the delay doubles per failure up to this).
    pub max_backoff: Duration,
    /// Events read from the log at a time.
    pub batch: usize,
    /// Attempts per event for per-activeflow webhooks.
    pub hook_attempts: u32,
    /// Events queued per per-activeflow webhook URI before new ones are dropped.
    pub hook_queue: usize,
    /// A per-URI task with nothing to do for this long exits.
    pub hook_idle: Duration,
}

impl Default for DeliveryOptions {
    fn default() -> Self {
        Self {
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(60),
            batch: 256,
            hook_attempts: 5,
            hook_queue: 256,
            hook_idle: Duration::from_secs(60),
        }
    }
}

/// Capped exponential backoff (sans-IO: it only computes delays).
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// Starts at `initial`, doubles per failure, never exceeds `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        let initial = initial.min(max);
        Self {
            initial,
            max,
            next: initial,
        }
    }

    /// The delay before the next attempt; the one after is twice as long (capped).
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        delay
    }

    /// After a success: the next failure waits `initial` again.
    pub fn reset(&mut self) {
        self.next = self.initial;
    }
}

/// Meta-tree key of the delivery cursor of the `index`-th target; a URL listed twice gets a
/// distinct key for its second entry so the two never share a cursor.
pub fn cursor_key(targets: &[WebhookTarget], index: usize) -> String {
    let url = targets.get(index).map_or("", |t| t.url.as_str());
    let earlier = targets.iter().take(index).filter(|t| t.url == url).count();
    if earlier == 0 {
        format!("webhook_cursor:{url}")
    } else {
        format!("webhook_cursor:{url}#{earlier}")
    }
}

/// Meta-tree key of the per-activeflow webhook follower's cursor.
pub const ACTIVEFLOW_HOOKS_CURSOR: &str = "activeflow_webhooks_cursor";

/// Reads a cursor, or starts one at the end of the log (and stores it).
fn load_cursor(store: &Store, key: &str) -> Result<u64, StoreError> {
    match store.meta_get::<u64>(key)? {
        Some(cursor) => Ok(cursor),
        None => {
            let end = store.last_seq();
            store.meta_put(key, &end)?;
            Ok(end)
        }
    }
}

/// Waits until the log has an event after `cursor`; false on cancellation.
async fn wait_for_events(store: &Store, cursor: u64, cancel: &CancellationToken) -> bool {
    let mut seq = store.watch_seq();
    tokio::select! {
        _ = cancel.cancelled() => false,
        changed = seq.wait_for(|s| *s > cursor) => changed.is_ok(),
    }
}

/// Sleeps `delay`; false on cancellation.
async fn pause(delay: Duration, cancel: &CancellationToken) -> bool {
    tokio::select! {
        _ = cancel.cancelled() => false,
        _ = tokio::time::sleep(delay) => true,
    }
}

/// One HTTP delivery; `Err` carries why it failed (transport error or non-2xx status).
async fn send(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    secret: Option<&str>,
    body: Vec<u8>,
) -> Result<(), String> {
    crate::tls::Roots::get()
        .check_url(url)
        .map_err(|e| e.to_string())?;
    let mut request = http
        .request(method, url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body);
    if let Some(secret) = secret {
        request = request.bearer_auth(secret);
    }
    match request.send().await {
        Ok(response) if response.status().is_success() => Ok(()),
        Ok(response) => Err(format!("HTTP {}", response.status())),
        Err(e) => Err(e.to_string()),
    }
}

/// Delivers the event log to one configured target.
pub struct TargetWorker {
    store: Store,
    http: reqwest::Client,
    target: WebhookTarget,
    key: String,
    options: DeliveryOptions,
    metrics: Arc<Metrics>,
}

impl TargetWorker {
    /// A worker for `target` whose cursor lives under `key` (see [`cursor_key`]).
    pub fn new(
        store: Store,
        http: reqwest::Client,
        target: WebhookTarget,
        key: String,
        options: DeliveryOptions,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            store,
            http,
            target,
            key,
            options,
            metrics,
        }
    }

    /// The stored cursor: the last event delivered (or skipped by the filter).
    pub fn cursor(&self) -> Result<Option<u64>, StoreError> {
        self.store.meta_get(&self.key)
    }

    fn wants(&self, event: &Event) -> bool {
        self.target.events.is_empty() || self.target.events.contains(&event.kind)
    }

    /// Runs until `cancel`.
    pub async fn run(self, cancel: CancellationToken) {
        let mut backoff = Backoff::new(self.options.initial_backoff, self.options.max_backoff);
        let mut cursor = loop {
            match load_cursor(&self.store, &self.key) {
                Ok(c) => break c,
                Err(e) => {
                    warn!(url = %self.target.url, cause = %e, "webhook cursor unreadable; retrying");
                    if !pause(backoff.next_delay(), &cancel).await {
                        return;
                    }
                }
            }
        };
        backoff.reset();
        info!(url = %self.target.url, cursor, "webhook delivery started");
        while !cancel.is_cancelled() {
            let events = match self.store.events_after(cursor, self.options.batch) {
                Ok(events) => events,
                Err(e) => {
                    warn!(url = %self.target.url, cause = %e, "reading the event log failed; retrying");
                    if !pause(backoff.next_delay(), &cancel).await {
                        return;
                    }
                    continue;
                }
            };
            if events.is_empty() {
                if !wait_for_events(&self.store, cursor, &cancel).await {
                    return;
                }
                continue;
            }
            for event in events {
                if event.seq > cursor.saturating_add(1) {
                    warn!(url = %self.target.url, lost = event.seq - cursor - 1, "events were pruned before delivery");
                }
                if self.wants(&event) && !self.deliver(&event, &mut backoff, &cancel).await {
                    return; // cancelled: the cursor stays before this event
                }
                cursor = event.seq;
                if let Err(e) = self.store.meta_put(&self.key, &cursor) {
                    // Delivery goes on; a restart may repeat events up to here.
                    warn!(url = %self.target.url, cause = %e, "storing the webhook cursor failed");
                }
            }
        }
    }

    /// Delivers one event, retrying until it succeeds; false when cancelled first (between
    /// attempts).
    async fn deliver(
        &self,
        event: &Event,
        backoff: &mut Backoff,
        cancel: &CancellationToken,
    ) -> bool {
        let body = match serde_json::to_vec(event) {
            Ok(body) => body,
            Err(e) => {
                // Cannot happen for a value that came out of the log; skip rather than loop.
                warn!(url = %self.target.url, seq = event.seq, cause = %e, "event not encodable; skipped");
                return true;
            }
        };
        loop {
            if cancel.is_cancelled() {
                return false;
            }
            // An attempt in flight is finished (the HTTP client's timeout bounds it) so a
            // clean shutdown never leaves a delivered event behind the stored cursor.
            let result = send(
                &self.http,
                reqwest::Method::POST,
                &self.target.url,
                self.target.secret.as_deref(),
                body.clone(),
            )
            .await;
            match result {
                Ok(()) => {
                    Metrics::inc(&self.metrics.webhook_deliveries_total);
                    debug!(url = %self.target.url, seq = event.seq, kind = %event.kind, "event delivered");
                    backoff.reset();
                    return true;
                }
                Err(cause) => {
                    Metrics::inc(&self.metrics.webhook_failures_total);
                    let delay = backoff.next_delay();
                    warn!(url = %self.target.url, seq = event.seq, %cause, retry_in_ms = delay.as_millis(), "webhook delivery failed");
                    if !pause(delay, cancel).await {
                        return false;
                    }
                }
            }
        }
    }
}

/// One queued per-activeflow delivery.
struct HookDelivery {
    seq: u64,
    body: Vec<u8>,
}

/// Delivers activeflow events to the activeflows' own `webhook_uri`.
pub struct ActiveflowHooks {
    db: Db,
    http: reqwest::Client,
    options: DeliveryOptions,
    metrics: Arc<Metrics>,
}

impl ActiveflowHooks {
    /// The follower over `db`.
    pub fn new(
        db: Db,
        http: reqwest::Client,
        options: DeliveryOptions,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            db,
            http,
            options,
            metrics,
        }
    }

    /// Runs until `cancel`, then waits for the per-URI tasks to stop.
    pub async fn run(self, cancel: CancellationToken) {
        let store = self.db.store.clone();
        let tasks = TaskTracker::new();
        let mut queues: HashMap<(String, reqwest::Method), mpsc::Sender<HookDelivery>> =
            HashMap::new();
        let mut backoff = Backoff::new(self.options.initial_backoff, self.options.max_backoff);
        let mut cursor = None;
        while !cancel.is_cancelled() {
            let at = match cursor {
                Some(at) => at,
                None => match load_cursor(&store, ACTIVEFLOW_HOOKS_CURSOR) {
                    Ok(at) => *cursor.insert(at),
                    Err(e) => {
                        warn!(cause = %e, "activeflow webhook cursor unreadable; retrying");
                        if !pause(backoff.next_delay(), &cancel).await {
                            break;
                        }
                        continue;
                    }
                },
            };
            // Only events of an activeflow with a webhook are decoded: on a gateway where no
            // flow has one, this task must not parse every event of every call again.
            let read = store.events_after_filtered(at, self.options.batch, has_activeflow_hook);
            let (events, last) = match read {
                Ok(read) => read,
                Err(e) => {
                    warn!(cause = %e, "reading the event log failed; retrying");
                    if !pause(backoff.next_delay(), &cancel).await {
                        break;
                    }
                    continue;
                }
            };
            backoff.reset();
            let Some(last) = last else {
                if !wait_for_events(&store, at, &cancel).await {
                    break;
                }
                continue;
            };
            for event in events {
                self.dispatch(event, &mut queues, &tasks, &cancel);
            }
            cursor = Some(last);
            if let Err(e) = store.meta_put(ACTIVEFLOW_HOOKS_CURSOR, &last) {
                warn!(cause = %e, "storing the activeflow webhook cursor failed");
            }
        }
        drop(queues);
        tasks.close();
        tasks.wait().await;
    }

    /// Queues `event` for its activeflow's webhook, if it has one.
    ///
    /// [`has_activeflow_hook`] picked the events; the checks stay here as well, so this
    /// function says on its own what it delivers.
    fn dispatch(
        &self,
        event: Event,
        queues: &mut HashMap<(String, reqwest::Method), mpsc::Sender<HookDelivery>>,
        tasks: &TaskTracker,
        cancel: &CancellationToken,
    ) {
        if !event.kind.starts_with("activeflow_") {
            return;
        }
        let uri = match event.data.get("webhook_uri") {
            Some(Value::String(uri)) if !uri.is_empty() => uri.clone(),
            _ => return,
        };
        let method = self.method_of(&event);
        let Ok(body) = serde_json::to_vec(&event) else {
            return;
        };
        let mut delivery = HookDelivery {
            seq: event.seq,
            body,
        };
        let key = (uri, method);
        // At most two tries: the existing queue, then a fresh one if the old task went idle.
        for _ in 0..2 {
            let sender = queues.entry(key.clone()).or_insert_with(|| {
                let (tx, rx) = mpsc::channel(self.options.hook_queue.max(1));
                tasks.spawn(hook_queue_task(
                    self.http.clone(),
                    key.0.clone(),
                    key.1.clone(),
                    rx,
                    self.options.clone(),
                    Arc::clone(&self.metrics),
                    cancel.clone(),
                ));
                tx
            });
            match sender.try_send(delivery) {
                Ok(()) => return,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    warn!(uri = %key.0, seq = event.seq, "activeflow webhook queue full; event dropped");
                    Metrics::inc(&self.metrics.webhook_failures_total);
                    return;
                }
                Err(mpsc::error::TrySendError::Closed(back)) => {
                    delivery = back;
                    queues.remove(&key);
                }
            }
        }
    }

    /// The activeflow's `webhook_method` (POST when unset or the record is gone).
    fn method_of(&self, event: &Event) -> reqwest::Method {
        let stored = self
            .db
            .activeflows
            .get(event.resource_id)
            .ok()
            .flatten()
            .map(|r| r.webhook_method);
        match stored.as_deref().map(str::to_ascii_uppercase).as_deref() {
            Some("GET") => reqwest::Method::GET,
            Some("PUT") => reqwest::Method::PUT,
            Some("DELETE") => reqwest::Method::DELETE,
            _ => reqwest::Method::POST,
        }
    }
}

/// Whether an event of type `kind` with data `data` goes to an activeflow's own webhook: an
/// `activeflow_*` event whose data names a `webhook_uri`. Reads the JSON text without
/// building it (most events are not such).
fn has_activeflow_hook(kind: &str, data: &serde_json::value::RawValue) -> bool {
    #[derive(serde::Deserialize)]
    struct Hook<'a> {
        #[serde(default, borrow)]
        webhook_uri: std::borrow::Cow<'a, str>,
    }
    kind.starts_with("activeflow_")
        && serde_json::from_str::<Hook<'_>>(data.get()).is_ok_and(|h| !h.webhook_uri.is_empty())
}

/// Delivers one URI's queue in order, with bounded attempts per event; exits when idle.
async fn hook_queue_task(
    http: reqwest::Client,
    uri: String,
    method: reqwest::Method,
    mut rx: mpsc::Receiver<HookDelivery>,
    options: DeliveryOptions,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
) {
    loop {
        let next = tokio::select! {
            _ = cancel.cancelled() => return,
            next = rx.recv() => next,
            _ = tokio::time::sleep(options.hook_idle) => {
                // Refuse new work, then finish what is already queued.
                rx.close();
                rx.recv().await
            }
        };
        let Some(delivery) = next else { return };
        let mut backoff = Backoff::new(options.initial_backoff, options.max_backoff);
        for attempt in 1..=options.hook_attempts.max(1) {
            let result = tokio::select! {
                _ = cancel.cancelled() => return,
                result = send(&http, method.clone(), &uri, None, delivery.body.clone()) => result,
            };
            match result {
                Ok(()) => {
                    Metrics::inc(&metrics.webhook_deliveries_total);
                    break;
                }
                Err(cause) => {
                    Metrics::inc(&metrics.webhook_failures_total);
                    if attempt == options.hook_attempts.max(1) {
                        warn!(%uri, seq = delivery.seq, %cause, attempts = attempt, "activeflow webhook gave up");
                    } else if !pause(backoff.next_delay(), &cancel).await {
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_activeflow_events_naming_a_webhook_are_picked() {
        let raw = |json: &str| serde_json::value::RawValue::from_string(json.into()).unwrap();
        let hook = raw(r#"{"id":"x","webhook_uri":"http://h.test/a\/b","variables":{}}"#);
        assert!(has_activeflow_hook("activeflow_updated", &hook));
        assert!(!has_activeflow_hook("call_updated", &hook));
        for data in [
            r#"{"webhook_uri":""}"#,
            r#"{"id":"x"}"#,
            "null",
            "[1]",
            r#""s""#,
        ] {
            assert!(
                !has_activeflow_hook("activeflow_created", &raw(data)),
                "{data}"
            );
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
        let delays: Vec<u128> = (0..5).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(delays, [100, 200, 350, 350, 350]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(100));
    }

    #[test]
    fn cursor_keys_are_distinct_for_repeated_urls() {
        let t = |url: &str| WebhookTarget {
            url: url.into(),
            events: vec![],
            secret: None,
        };
        let targets = [t("http://a/"), t("http://b/"), t("http://a/")];
        assert_eq!(cursor_key(&targets, 0), "webhook_cursor:http://a/");
        assert_eq!(cursor_key(&targets, 1), "webhook_cursor:http://b/");
        assert_eq!(cursor_key(&targets, 2), "webhook_cursor:http://a/#1");
    }
}
