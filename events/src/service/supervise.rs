//! Keeping a connection-bound loop alive: the relay and the projection workers each run
//! "sessions" that last as long as their connections hold, and start a new one when they break.

use std::fmt::Display;
use std::future::Future;
use std::time::{Duration, Instant};

use tokio::sync::watch;

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A session that lasted this long was healthy: the next failure starts from the first backoff.
const HEALTHY_SESSION: Duration = Duration::from_secs(30);

/// Runs `session` again and again until `shutdown` turns true. Each session returns why it ended;
/// `ended` runs after each (to clear readiness flags), then the next one starts after a backoff
/// that doubles up to 5 s while sessions keep failing fast.
pub async fn supervise<S, F, E>(
    what: &'static str,
    mut shutdown: watch::Receiver<bool>,
    mut session: S,
    mut ended: impl FnMut(),
) where
    S: FnMut() -> F,
    F: Future<Output = E>,
    E: Display,
{
    let mut backoff = FIRST_BACKOFF;
    loop {
        let started = Instant::now();
        tokio::select! {
            reason = session() => tracing::warn!(error = format!("{reason:#}"), "{what} session ended; reconnecting"),
            _ = shutdown.changed() => return,
        }
        ended();
        if started.elapsed() > HEALTHY_SESSION {
            backoff = FIRST_BACKOFF;
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.changed() => return,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Completes on Ctrl-C or SIGTERM, whichever comes first.
pub async fn shutdown_signal() {
    let interrupt = async {
        tokio::signal::ctrl_c().await.ok();
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        _ = terminate => {}
    }
    tracing::info!("shutting down");
}

/// A spawned task that ends with its owner: dropping this (the owner returned, or was itself
/// cancelled) aborts the task, so no part of a service outlives the service.
pub struct Scoped<T>(tokio::task::JoinHandle<T>);

impl<T> Scoped<T> {
    pub fn spawn<F>(future: F) -> Self
    where
        F: std::future::Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        Scoped(tokio::spawn(future))
    }

    /// Waits for the task to end on its own.
    pub async fn join(mut self) -> Result<T, tokio::task::JoinError> {
        (&mut self.0).await
    }
}

impl<T> Drop for Scoped<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
