//! Binding and serving a service's HTTP routes the same way everywhere.

use std::future::Future;
use std::net::SocketAddr;

use axum::Router;
use tokio::net::TcpListener;

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

    /// Serves `router` until `shutdown` completes, letting requests in flight finish.
    pub async fn serve(
        self,
        service: &'static str,
        router: Router,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        tracing::info!(address = %self.0.local_addr()?, "{service} listening");
        axum::serve(self.0, router).with_graceful_shutdown(shutdown).await
    }
}
