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
pub mod deploy;
pub mod error;
pub mod limits;
pub mod loadgen;
pub mod metrics;
pub mod openapi;
pub mod pipeline;
pub mod routes;
pub mod state;

pub use auth::{Caller, IssuedKey, Role};
/// Re-exported so the CLI can call handlers in process without its own axum dependency.
pub use axum::{extract::State, Json};
pub use error::{ApiError, ErrorBody};
pub use limits::Limits;
pub use state::{AppState, ServerConfig};

/// Bind, print nothing, and serve until the process ends.
pub async fn serve(state: AppState, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    let app = routes::router(state);
    axum::serve(listener, app).await
}
