//! Replays read a whole stream from the store (a customer folded as the system knew it at an
//! instant, a hash chain recomputed), far more than a field of a read model. They are priced by
//! that work in the complexity limit ([`REPLAY_COST`]: at most nine in one request), and each
//! caller runs at most [`PER_CALLER`] at once, so one user's burst cannot take the pool from the
//! others; a replay that finds no place within [`WAIT`] is refused as `TOO_MANY_REQUESTS`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_graphql::Result;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::schema::coded_error;

/// The complexity of one replay.
pub const REPLAY_COST: usize = 500;
/// Replays one caller runs at once.
pub const PER_CALLER: usize = 2;
/// How long a replay waits for one of its caller's places.
pub const WAIT: Duration = Duration::from_secs(5);
/// Callers remembered before idle ones are forgotten.
const CALLERS: usize = 10_000;

/// The cost of a field that replays when `replays` (a `knownAt` given), else one.
pub fn cost(replays: bool) -> usize {
    if replays {
        REPLAY_COST
    } else {
        1
    }
}

/// The places of each caller.
#[derive(Clone)]
pub struct Replays {
    callers: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
    wait: Duration,
}

impl Default for Replays {
    fn default() -> Self {
        Replays::waiting(WAIT)
    }
}

impl Replays {
    pub fn waiting(wait: Duration) -> Self {
        Replays {
            callers: Arc::default(),
            wait,
        }
    }

    /// A place for one replay of `caller`, held until dropped.
    pub async fn admit(&self, caller: &str) -> Result<OwnedSemaphorePermit> {
        let places = {
            let mut callers = self.callers.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if callers.len() >= CALLERS {
                callers.retain(|_, places| places.available_permits() < PER_CALLER);
            }
            callers
                .entry(caller.to_owned())
                .or_insert_with(|| Arc::new(Semaphore::new(PER_CALLER)))
                .clone()
        };
        match tokio::time::timeout(self.wait, places.acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(coded_error(
                "TOO_MANY_REQUESTS",
                format!(
                    "at most {PER_CALLER} replays (knownAt, history verification) run at once per user; retry shortly"
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_caller_runs_at_most_two_replays_at_once_and_others_are_not_held_back() {
        let replays = Replays::waiting(Duration::from_millis(50));
        let first = replays.admit("ana").await.unwrap();
        let _second = replays.admit("ana").await.unwrap();
        let refused = replays.admit("ana").await.unwrap_err();
        assert_eq!(
            refused
                .extensions
                .as_ref()
                .and_then(|e| e.get("code"))
                .map(|v| v.to_string()),
            Some("\"TOO_MANY_REQUESTS\"".into())
        );
        assert!(
            replays.admit("ben").await.is_ok(),
            "another caller has places of its own"
        );
        drop(first);
        assert!(replays.admit("ana").await.is_ok(), "a finished replay frees its place");
        assert_eq!(cost(true), REPLAY_COST);
        assert_eq!(cost(false), 1);
    }
}
