//! Health endpoints for SREs and orchestrators: `/healthz` (the process is up), `/readyz`
//! (partitions assigned and restored, producer ready, and the cluster not refusing the
//! client's credentials or TLS) and `/metrics` (Prometheus text of
//! [`crate::metrics`]), on the configured address.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::http::{header, StatusCode};
use axum::routing::get;
use axum::Router;

use crate::app::Status;

/// The router, separate from the listener so tests can drive it directly.
pub fn router(status: Arc<Status>) -> Router {
    let metrics = status.metrics.clone();
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/metrics",
            get(move || {
                let metrics = metrics.clone();
                async move {
                    (
                        [(
                            header::CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8",
                        )],
                        metrics.render(),
                    )
                }
            }),
        )
        .route(
            "/readyz",
            get(move || {
                let status = status.clone();
                async move {
                    let restored = status.restored_events.load(Ordering::Relaxed);
                    if let Some(refused) = status.refusals.unready() {
                        (
                            StatusCode::SERVICE_UNAVAILABLE,
                            format!("not ready: {refused}\n"),
                        )
                    } else if status.ready.load(Ordering::Relaxed) {
                        (
                            StatusCode::OK,
                            format!("ready; restore folded {restored} events\n"),
                        )
                    } else {
                        let why = "not ready: no partition assigned and restored yet";
                        (
                            StatusCode::SERVICE_UNAVAILABLE,
                            format!("{why}; restore folded {restored} events so far\n"),
                        )
                    }
                }
            }),
        )
}

/// Binds `addr` for the endpoints. Done before the processor starts, so an address that is
/// taken or malformed stops the start-up (it was only logged before, and the processor ran
/// without endpoints, its probes answered by whatever held the port).
///
/// # Errors
/// When `addr` cannot be bound: the message names it and the settings that give it.
pub async fn bind(addr: &str) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot serve the health endpoints on {addr} (--health-addr / HIRESTATE_HEALTH_ADDR): {e}"
        )
    })
}

/// Serves the endpoints on `listener` until the process ends.
///
/// # Errors
/// When serving fails.
pub async fn serve(listener: tokio::net::TcpListener, status: Arc<Status>) -> std::io::Result<()> {
    tracing::info!(addr = %listener.local_addr()?, "health endpoints up");
    axum::serve(listener, router(status)).await
}
