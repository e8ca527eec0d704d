//! Binding and serving a service's HTTP routes the same way everywhere, with the limits that keep
//! slow or greedy clients from holding the service ([`HttpLimits`]): a client must send its
//! request head within `header_read_seconds` (the connection is closed otherwise) and its whole
//! request within `request_seconds` (408), and each bearer token gets its own request rate
//! ([`crate::service::rate_limit`]).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use super::rate_limit::RateLimiter;

/// How long clients may take and how often each token may ask.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct HttpLimits {
    /// Requests per second each bearer token may sustain.
    #[arg(long, env = "CSTRACK_RATE_LIMIT_PER_SECOND", default_value_t = 200.0)]
    pub rate_limit_per_second: f64,
    /// Requests a token may send at once above that rate.
    #[arg(long, env = "CSTRACK_RATE_LIMIT_BURST", default_value_t = 400.0)]
    pub rate_limit_burst: f64,
    /// Seconds a client has to send a request's line and headers once its connection is open
    /// (or, on a kept-alive connection, once it starts the next request).
    #[arg(long, env = "CSTRACK_HEADER_READ_SECONDS", default_value_t = 10)]
    pub header_read_seconds: u64,
    /// Seconds one request may take, body included, before it is answered 408: enough for the
    /// largest request (a 2 MiB batch) on a slow link. Streamed exports answer within it and
    /// then stream on.
    #[arg(long, env = "CSTRACK_REQUEST_SECONDS", default_value_t = 60)]
    pub request_seconds: u64,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            rate_limit_per_second: 200.0,
            rate_limit_burst: 400.0,
            header_read_seconds: 10,
            request_seconds: 60,
        }
    }
}

/// Time requests in flight get to finish once the service is asked to stop.
const DRAIN: Duration = Duration::from_secs(10);

pub struct HttpListener(TcpListener);

impl HttpListener {
    /// Binds `address` (port 0 picks a free port, as the tests do).
    pub async fn bind(address: SocketAddr) -> std::io::Result<Self> {
        TcpListener::bind(address)
            .await
            .map(HttpListener)
            .map_err(|error| std::io::Error::new(error.kind(), format!("binding {address}: {error}")))
    }

    pub fn port(&self) -> u16 {
        self.0.local_addr().map(|address| address.port()).unwrap_or_default()
    }

    /// Serves `router` with the default rate limit; see [`HttpListener::serve_limited`].
    pub async fn serve(
        self,
        service: &'static str,
        router: Router,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        self.serve_limited(service, router, HttpLimits::default(), shutdown)
            .await
    }

    /// Serves `router` until `shutdown` completes, letting requests in flight finish, with the
    /// header and request timeouts and `limits` per bearer token.
    pub async fn serve_limited(
        self,
        service: &'static str,
        router: Router,
        limits: HttpLimits,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        tracing::info!(address = %self.0.local_addr()?, "{service} listening");
        let limiter = Arc::new(RateLimiter::new(limits));
        let router = router
            .layer(axum::middleware::from_fn_with_state(limiter, super::rate_limit::limit))
            .layer(tower_http::timeout::TimeoutLayer::with_status_code(
                axum::http::StatusCode::REQUEST_TIMEOUT,
                Duration::from_secs(limits.request_seconds.max(1)),
            ));
        // Each connection task holds a clone of `open`; once the listener stops, `drained` ends
        // when the last of them has. Connections are served with upgrades (the query API's
        // GraphQL subscriptions are WebSockets); an upgraded connection leaves hyper's hands, so
        // shutting down waits for HTTP requests in flight, not for open WebSockets.
        let (stop_connections, _) = tokio::sync::watch::channel(false);
        let (open, mut drained) = tokio::sync::mpsc::channel::<()>(1);
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(limits.header_read_seconds.max(1)));
        tokio::pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                accepted = self.0.accept() => accepted,
                () = &mut shutdown => break,
            };
            let stream = match accepted {
                Ok((stream, _peer)) => stream,
                Err(error) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            stream.set_nodelay(true).ok();
            let router = router.clone();
            let handler = hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                tower::ServiceExt::oneshot(router.clone(), request.map(Body::new))
            });
            let connection = builder.serve_connection(TokioIo::new(stream), handler).with_upgrades();
            let mut stopping = stop_connections.subscribe();
            let open = open.clone();
            tokio::spawn(async move {
                tokio::pin!(connection);
                let ended = tokio::select! {
                    ended = connection.as_mut() => ended,
                    _ = stopping.changed() => {
                        connection.as_mut().graceful_shutdown();
                        connection.await
                    }
                };
                if let Err(error) = ended {
                    tracing::debug!(%error, "connection ended with an error");
                }
                drop(open);
            });
        }
        drop(self.0);
        stop_connections.send_replace(true);
        drop(open);
        if tokio::time::timeout(DRAIN, drained.recv()).await.is_err() {
            tracing::warn!("{service}: requests still running after the drain period were cut off");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use axum::routing::get;
    use tokio::io::AsyncWriteExt;

    use super::*;

    /// Sets its flag when dropped: the handler's future was dropped.
    struct Dropped(Arc<AtomicBool>);

    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn a_request_whose_client_goes_away_stops_running() {
        let (started, dropped) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let router = Router::new().route(
            "/slow",
            get({
                let (started, dropped) = (started.clone(), dropped.clone());
                move || async move {
                    let _guard = Dropped(dropped);
                    started.store(true, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    "done"
                }
            }),
        );
        let listener = HttpListener::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let port = listener.port();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(listener.serve("test", router, async move {
            stopped.await.ok();
        }));
        let mut client = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        client
            .write_all(b"GET /slow HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        for _ in 0..100 {
            if started.load(Ordering::SeqCst) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(started.load(Ordering::SeqCst), "the handler started");
        drop(client);
        for _ in 0..100 {
            if dropped.load(Ordering::SeqCst) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(
            dropped.load(Ordering::SeqCst),
            "the handler was cancelled when its client left"
        );
        stop.send(()).ok();
        server.await.unwrap().unwrap();
    }
}
