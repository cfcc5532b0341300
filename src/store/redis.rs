//! `session.store = "redis://…"`: conversations in Redis, shared by every replica.

use super::ConvKey;
use super::backend::{Backend, Begin, Commit, Limits, StoreError, Stored, Write};

pub struct RedisStore {}

impl RedisStore {
    pub async fn connect(
        url: &str,
        prefix: &str,
        timeout: std::time::Duration,
    ) -> Result<Self, StoreError> {
        let _ = (url, prefix, timeout);
        Err(StoreError::Unavailable("not built yet".into()))
    }
}

impl Backend for RedisStore {
    async fn begin(
        &self,
        _: &ConvKey,
        _: &str,
        _: u64,
        _: u64,
        _: &Limits,
    ) -> Result<Begin, StoreError> {
        unimplemented!()
    }
    async fn commit(
        &self,
        _: &ConvKey,
        _: &str,
        _: u64,
        _: Write<'_>,
        _: u64,
        _: &Limits,
    ) -> Result<Commit, StoreError> {
        unimplemented!()
    }
    async fn release(&self, _: &ConvKey, _: u64) -> Result<(), StoreError> {
        unimplemented!()
    }
    async fn peek(&self, _: &ConvKey) -> Result<Option<Stored>, StoreError> {
        unimplemented!()
    }
    async fn delete(&self, _: &ConvKey) -> Result<(), StoreError> {
        unimplemented!()
    }
    async fn ping(&self) -> Result<(), StoreError> {
        unimplemented!()
    }
}
