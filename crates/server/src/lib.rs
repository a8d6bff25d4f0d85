//! facegate-server: the HTTP API (`/v1`, with roles) and the kiosk, portal
//! and console web UI, composing `vision`, `gallery`, `policy` and `store`.
//!
//! One verification runs: authenticate the device → `policy::authorize` →
//! `vision` analyze → `gallery` verify/identify → `store` audit record →
//! response with a receipt id. A refusal at any step returns the rule that
//! refused (`rule`, `article`, `message_zh`, `message_en`), always as `403`.
//!
//! Start with [`serve`]; build the router alone with [`routes::router`] (tests
//! drive it in process).

pub mod api;
pub mod assets;
pub mod auth;
/// Scenario deployment lives in the core; re-exported for callers of the server.
pub use facegate_core::deploy;
pub mod error;
pub mod extract;
pub mod limits;
pub mod loadgen;
pub mod metrics;
pub mod openapi;
pub mod pipeline;
pub mod routes;
pub mod state;

pub use auth::{BoundDevice, Caller, IssuedKey, Role};
/// Re-exported so the CLI can call handlers in process without its own axum dependency.
pub use axum::extract::State;
pub use error::{ApiError, ErrorBody};
pub use extract::Json;
pub use limits::Limits;
pub use state::{AppState, ServerConfig};

/// Bind, print nothing, and serve until the process ends. A retention sweep
/// (R12) runs at start and then every hour.
pub async fn serve(state: AppState, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    serve_with(state, listener, None).await
}

/// [`serve`], with extra routes of another crate beside the API (the hub's
/// site-issued portal token under `facegate serve --hub`).
pub async fn serve_with(
    state: AppState,
    listener: tokio::net::TcpListener,
    extra: Option<axum::Router>,
) -> std::io::Result<()> {
    let sweeper = tokio::spawn(sweep_forever(state.clone()));
    let app = match extra {
        Some(x) => x.merge(routes::router(state)),
        None => routes::router(state),
    };
    // The peer address reaches handlers (portal-code limits per source).
    let r = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .await;
    sweeper.abort();
    r
}

async fn sweep_forever(state: AppState) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        every.tick().await;
        if let Err(e) = sweep_once(&state).await {
            tracing::error!(error = %e, "retention sweep failed; will retry next hour");
        }
    }
}

/// Delete what retention says has expired (R12), minors' rules included,
/// and drop it from the in-memory galleries too (the core does both).
/// Returns the number of templates deleted.
pub async fn sweep_once(state: &AppState) -> Result<u64, ApiError> {
    let n = state.core.sweep().await?;
    state.metrics.inc("facegate_sweeps_total", &[]);
    Ok(n)
}

/// [`sweep_once`] as of `now`.
pub async fn sweep_at(
    state: &AppState,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<u64, ApiError> {
    let n = state.core.sweep_at(now).await?;
    state.metrics.inc("facegate_sweeps_total", &[]);
    Ok(n)
}
