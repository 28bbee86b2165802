//! Typed views over sled trees: one [`Table`] per record type, keyed by UUID.
//!
//! Values are JSON so records written by an older build still parse when fields
//! are added (every record type uses `#[serde(default)]` for new fields); large
//! ones are stored LZ4-compressed (see [`super::codec`]: flash wear). Keys are the 16 raw
//! bytes of the UUID: gateway-created ids are UUIDv7, so key order is creation
//! order and paging by key gives VoIPBIN's "newest last" listing for free.

use std::marker::PhantomData;

use serde::{Serialize, de::DeserializeOwned};
use uuid::Uuid;

use super::{StoreError, codec};

/// A typed sled tree of `V` records keyed by [`Uuid`].
pub struct Table<V> {
    pub(super) tree: sled::Tree,
    pub(super) name: &'static str,
    _marker: PhantomData<fn() -> V>,
}

impl<V> Clone for Table<V> {
    fn clone(&self) -> Self {
        Self {
            tree: self.tree.clone(),
            name: self.name,
            _marker: PhantomData,
        }
    }
}

/// One page of a listing: the records and the token for the next page.
#[derive(Debug, Clone)]
pub struct Page<V> {
    /// The records of this page, in key order.
    pub items: Vec<V>,
    /// The id to pass as `after` for the next page; `None` on the last page.
    pub next: Option<Uuid>,
}

impl<V: Serialize + DeserializeOwned> Table<V> {
    pub(super) fn open(db: &sled::Db, name: &'static str) -> Result<Self, StoreError> {
        let tree = db.open_tree(name).map_err(|source| StoreError::Sled {
            op: "open tree",
            source,
        })?;
        Ok(Self {
            tree,
            name,
            _marker: PhantomData,
        })
    }

    /// The record stored under `id`.
    pub fn get(&self, id: Uuid) -> Result<Option<V>, StoreError> {
        match self
            .tree
            .get(id.as_bytes())
            .map_err(|source| StoreError::Sled { op: "get", source })?
        {
            Some(bytes) => self.decode(id, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// The size of the record under `id` as stored (what a write of it costs), if any.
    pub fn stored_len(&self, id: Uuid) -> Result<Option<usize>, StoreError> {
        Ok(self
            .tree
            .get(id.as_bytes())
            .map_err(|source| StoreError::Sled { op: "get", source })?
            .map(|bytes| bytes.len()))
    }

    /// Whether a record exists under `id`.
    pub fn contains(&self, id: Uuid) -> Result<bool, StoreError> {
        self.tree
            .contains_key(id.as_bytes())
            .map_err(|source| StoreError::Sled { op: "get", source })
    }

    /// Stores `value` under `id` outside any batch (no event is written).
    /// Use [`super::Batch`] when the change must be visible in the event log.
    pub fn put(&self, id: Uuid, value: &V) -> Result<(), StoreError> {
        let bytes = self.encode(value)?;
        self.tree
            .insert(id.as_bytes(), bytes)
            .map_err(|source| StoreError::Sled {
                op: "insert",
                source,
            })?;
        Ok(())
    }

    /// Removes the record under `id`, returning it.
    pub fn remove(&self, id: Uuid) -> Result<Option<V>, StoreError> {
        match self
            .tree
            .remove(id.as_bytes())
            .map_err(|source| StoreError::Sled {
                op: "remove",
                source,
            })? {
            Some(bytes) => self.decode(id, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.tree.len()
    }

    /// Whether the table holds no record.
    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }

    /// Records after `after` (exclusive) in key order, at most `limit` of them.
    pub fn page(&self, after: Option<Uuid>, limit: usize) -> Result<Page<V>, StoreError> {
        let limit = limit.max(1);
        let iter = match after {
            Some(id) => self.tree.range((
                std::ops::Bound::Excluded(id.as_bytes().to_vec()),
                std::ops::Bound::Unbounded,
            )),
            None => self.tree.iter(),
        };
        let mut items = Vec::with_capacity(limit.min(256));
        let mut last = None;
        for entry in iter {
            let (key, bytes) = entry.map_err(|source| StoreError::Sled { op: "scan", source })?;
            if items.len() == limit {
                return Ok(Page { items, next: last });
            }
            let id = key_to_uuid(self.name, &key)?;
            items.push(self.decode(id, &bytes)?);
            last = Some(id);
        }
        Ok(Page { items, next: None })
    }

    /// Every record in key order. Corrupt records are reported, not skipped.
    pub fn iter(&self) -> impl Iterator<Item = Result<(Uuid, V), StoreError>> + '_ {
        self.tree.iter().map(move |entry| {
            let (key, bytes) = entry.map_err(|source| StoreError::Sled { op: "scan", source })?;
            let id = key_to_uuid(self.name, &key)?;
            Ok((id, self.decode(id, &bytes)?))
        })
    }

    pub(super) fn encode(&self, value: &V) -> Result<Vec<u8>, StoreError> {
        serde_json::to_vec(value)
            .map(codec::pack)
            .map_err(|source| StoreError::Encode {
                table: self.name,
                source,
            })
    }

    fn decode(&self, id: Uuid, bytes: &[u8]) -> Result<V, StoreError> {
        let corrupt = |reason: String| StoreError::Corrupt {
            table: self.name,
            key: id.to_string(),
            reason,
        };
        let json = codec::unpack(bytes).map_err(corrupt)?;
        serde_json::from_slice(&json).map_err(|source| corrupt(source.to_string()))
    }
}

fn key_to_uuid(table: &'static str, key: &[u8]) -> Result<Uuid, StoreError> {
    Uuid::from_slice(key).map_err(|_| StoreError::Corrupt {
        table,
        key: hex::encode(key),
        reason: "key is not a 16-byte UUID".into(),
    })
}
