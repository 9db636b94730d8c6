//! What requests act on: the in-memory store and, when the server is
//! durable, the batch of this loop turn's puts waiting to be logged; and
//! what the server counts about itself, for `stats`.

use crate::journal::Batch;
use crate::rate_limit::RateLimitedWarning;
use crate::stats::{Counters, Gauges};
use crate::store::Store;

pub struct Db {
    pub store: Store,
    pub counters: Counters,
    pub gauges: Gauges,
    /// Invalid requests are logged, at most once a second.
    pub warn_bad_request: RateLimitedWarning,
    /// None when the server keeps nothing on disk.
    log: Option<Pending>,
}

struct Pending {
    batch: Batch,
    /// Set between turns when puts cannot be made durable: they are refused
    /// with this reason instead of being applied.
    refusal: Option<String>,
}

impl Db {
    /// A store whose puts are not logged.
    pub fn in_memory(store: Store) -> Db {
        Db {
            store,
            counters: Counters::default(),
            gauges: Gauges::default(),
            warn_bad_request: RateLimitedWarning::default(),
            log: None,
        }
    }

    /// A store whose puts are also collected for the log.
    pub fn logged(store: Store) -> Db {
        Db {
            log: Some(Pending {
                batch: Batch::default(),
                refusal: None,
            }),
            ..Db::in_memory(store)
        }
    }

    /// Applies a put, or says why it is refused.
    #[inline]
    pub fn put(&mut self, key: &str, timestamp: i64, value: f64) -> Result<(), &str> {
        if let Some(log) = &mut self.log {
            if let Some(reason) = &log.refusal {
                return Err(reason);
            }
            let replaced = self.store.put(key, timestamp, value);
            log.batch.push(key, timestamp, value, replaced);
        } else {
            self.store.put(key, timestamp, value);
        }
        Ok(())
    }

    /// Takes the batch's puts back out of the store, last first, after the
    /// log failed to take them: the store must never hold what the log does
    /// not, or a later snapshot would make a refused put permanent.
    pub fn roll_back(&mut self) {
        if let Some(log) = &self.log {
            for (key, timestamp, replaced) in log.batch.undo() {
                match replaced {
                    Some(value) => {
                        self.store.put(key, timestamp, value);
                    }
                    None => self.store.remove(key, timestamp),
                }
            }
        }
    }

    /// Empties the batch once the turn's commit is over.
    pub fn clear_batch(&mut self) {
        if let Some(log) = &mut self.log {
            log.batch.clear();
        }
    }

    /// Puts waiting to be logged: grows by one with every logged put, so a
    /// connection can tell which of its answers wait for the commit.
    #[inline]
    pub fn unlogged(&self) -> usize {
        self.log.as_ref().map_or(0, |log| log.batch.len())
    }

    /// The batch to commit, when puts are logged.
    pub fn batch_mut(&mut self) -> Option<&mut Batch> {
        self.log.as_mut().map(|log| &mut log.batch)
    }

    /// Sets (or lifts) the reason puts are refused from now on.
    pub fn set_refusal(&mut self, refusal: Option<String>) {
        if let Some(log) = &mut self.log {
            log.refusal = refusal;
        }
    }
}
