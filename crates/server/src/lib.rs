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

/// Bind, print nothing, and serve until the process ends. A retention sweep
/// (R12) runs at start and then every hour.
pub async fn serve(state: AppState, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    let sweeper = tokio::spawn(sweep_forever(state.clone()));
    let app = routes::router(state);
    let r = axum::serve(listener, app).await;
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

/// Delete what retention says has expired (R12) and drop it from the
/// in-memory galleries too. Returns the number of templates deleted.
pub async fn sweep_once(state: &AppState) -> Result<u64, ApiError> {
    sweep_at(state, chrono::Utc::now()).await
}

/// [`sweep_once`] as of `now` (the clock is a value, so tests and the
/// model-based test can move it). Besides the store's retention and
/// inactivity rules, each scenario's `[minors]` retention (R10, R12) applies
/// to every person who is under 14 **at the time of the sweep**, computed
/// from the date of birth.
pub async fn sweep_at(
    state: &AppState,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<u64, ApiError> {
    let days = state
        .scenarios
        .read()
        .unwrap()
        .iter()
        .map(|d| d.scenario.log_retention_days() as i64)
        .max()
        .unwrap_or(1095);
    let r = state.store.sweep(now, 1000, days, "server:sweep").await?;
    let mut deleted = r.expired_templates + r.inactive_templates;
    deleted += sweep_minors(state, now).await?;
    if deleted > 0 {
        let ids: Vec<uuid::Uuid> = state.galleries.read().unwrap().keys().copied().collect();
        for id in ids {
            let g = deploy::load_gallery(&state.store, &state.keyring, id).await?;
            state.galleries.write().unwrap().insert(id, g);
        }
    }
    state.metrics.inc("facegate_sweeps_total", &[]);
    Ok(deleted)
}

/// The `[minors]` template retention: templates of persons under 14 at
/// `now` older than `minors.template_days` are deleted (with a receipt in
/// the audit chain, reason `minor_retention`).
async fn sweep_minors(
    state: &AppState,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<u64, ApiError> {
    let scenarios: Vec<_> = state.scenarios.read().unwrap().iter().cloned().collect();
    let mut deleted = 0;
    for d in scenarios {
        let Some(days) = d.scenario.minors.as_ref().and_then(|m| m.template_days) else {
            continue;
        };
        let cutoff = now - chrono::Duration::days(i64::from(days));
        let mut expired = std::collections::BTreeSet::new();
        for (_, person, created) in state.store.scenario_template_links(d.store_id).await? {
            if created < cutoff {
                expired.insert(person);
            }
        }
        for person in expired {
            let p = state.store.person(person).await?;
            let minor = p
                .identity
                .as_ref()
                .and_then(|i| i.date_of_birth)
                .is_some_and(|dob| facegate_policy::is_under_14(dob, now));
            if minor {
                let r = state
                    .store
                    .delete_templates(person, Some(d.store_id), "minor_retention", "server:sweep")
                    .await?;
                deleted += r.templates_deleted;
            }
        }
    }
    Ok(deleted)
}
