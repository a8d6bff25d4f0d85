//! The central portal: a person withdraws, asks for deletion or access, or
//! complains **once**, for every site of the processor, and sees each
//! site's progress and receipt and the processor's answer.
//!
//! **How a person signs in without the hub knowing who they are.** The hub
//! holds no face and no identity in the clear, so it cannot check a person
//! itself. A site can: the person signs in to any site's own portal (a
//! one-time code after a face check at a gate or an identity check at the
//! desk — the site's existing portal code), and that site issues a
//! **hub access token**: the person's hub pseudonym (HMAC under the
//! processor key, computed at the site from the identity it holds), the
//! site id, issue and expiry times (at most [`TOKEN_MAX_SECS`] apart) and a
//! random id, signed with the **site's Ed25519 key** that the hub already
//! knows. The hub checks the signature against the registered key, the
//! expiry, and spends the token id once (a table, so a replay at another
//! instance is refused too), then opens a **session** bound to the
//! pseudonym, stored (hashed) in PostgreSQL so any hub instance serves it.
//! No new secret is shared, no password exists at the hub, and a token is
//! useless after minutes or after one use. The portal page is
//! `GET /portal#token=…` (the site links to it).
//!
//! **Requests and complaints.** A withdrawal, deletion or access request
//! is routed to every site that holds the person's face information
//! through the existing ordered, applied-once inbox
//! ([`crate::db::HubDb::add_request`]). An access request becomes a request
//! in each site's own queue (due in 15 working days there), answered at
//! that site, where the person reads the export in the site's portal; the
//! hub only learns "received" then "answered" (with the time), never the
//! data. Complaints stay with the processor's operator at the hub, who
//! lists them with their due date (15 working days on the official calendar, the
//! policy crate's [`facegate_policy::filing::WorkCalendar`]), answers and
//! closes them; the person reads the answer in the portal.
//!
//! Free text (a complaint, an answer) is bounded and refused when it looks
//! like encoded data, so the hub cannot become a place where a face is
//! kept (R11).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::Row;
use uuid::Uuid;

use crate::db::{Case, Cases, Raised};
use crate::keys::{self, PseudonymKey, SiteKey};
use crate::proto::{ConsentRecord, Hash32};
use crate::server::{admin, log_body, HubConfig, HubState};
use crate::{ts, HubError, Result};

/// Longest life of a site-issued hub access token.
pub const TOKEN_MAX_SECS: i64 = 300;
/// How long a portal session at the hub lasts.
pub const SESSION_MINUTES: i64 = 30;
/// Longest complaint, request note or answer, in characters.
pub const MAX_TEXT_CHARS: usize = 1000;

const TOKEN_PREFIX: &str = "fght_";
const SESSION_PREFIX: &str = "fghs_";
/// The signed "method" and "path" of a token: not an HTTP request, so a
/// token's signature can never stand for a sync's, nor the reverse.
const SIGN_METHOD: &str = "PORTAL-TOKEN";
const SIGN_PATH: &str = "/portal/v1/session";

/// What a site vouches for in a hub access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenClaims {
    pub site: Uuid,
    pub pseudonym: Hash32,
    pub iat: i64,
    pub exp: i64,
    pub jti: Uuid,
}

/// Issue a hub access token at a site (valid `secs`, at most
/// [`TOKEN_MAX_SECS`]).
pub fn issue_token(key: &SiteKey, site: Uuid, pseudonym: Hash32, secs: i64) -> String {
    let now = Utc::now().timestamp();
    let claims = TokenClaims {
        site,
        pseudonym,
        iat: now,
        exp: now + secs.clamp(1, TOKEN_MAX_SECS),
        jti: Uuid::new_v4(),
    };
    sign_claims(key, &claims)
}

/// Sign any claims (tests use it to make expired or odd tokens).
pub fn sign_claims(key: &SiteKey, claims: &TokenClaims) -> String {
    let payload = serde_json::to_vec(claims).expect("serialises");
    let sig = key.sign(SIGN_METHOD, SIGN_PATH, claims.iat, &payload);
    format!("{TOKEN_PREFIX}{}.{sig}", hex::encode(&payload))
}

fn unauthorized(why: &str) -> HubError {
    HubError::Unauthorized(format!("hub access token refused: {why}"))
}

/// Check a token's form, signature and times (not its single use).
async fn check_token(s: &HubState, token: &str) -> Result<TokenClaims> {
    let body = token
        .trim()
        .strip_prefix(TOKEN_PREFIX)
        .ok_or_else(|| unauthorized("not a hub access token"))?;
    let (payload_hex, sig) = body
        .split_once('.')
        .ok_or_else(|| unauthorized("malformed"))?;
    if payload_hex.len() > 1024 {
        return Err(unauthorized("malformed"));
    }
    let payload = hex::decode(payload_hex).map_err(|_| unauthorized("malformed"))?;
    let claims: TokenClaims =
        serde_json::from_slice(&payload).map_err(|_| unauthorized("malformed"))?;
    let pk =
        s.db.site_key(claims.site)
            .await?
            .ok_or_else(|| unauthorized("unknown site"))?;
    if !keys::verify_signature(&pk, SIGN_METHOD, SIGN_PATH, claims.iat, &payload, sig) {
        return Err(unauthorized("bad signature"));
    }
    let now = Utc::now().timestamp();
    if claims.exp <= now {
        return Err(unauthorized("expired"));
    }
    if claims.exp - claims.iat > TOKEN_MAX_SECS || claims.iat > now + keys::MAX_SKEW_SECS {
        return Err(unauthorized("lifetime out of range"));
    }
    Ok(claims)
}

fn sha(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// A portal session: the pseudonym it is bound to, and the session's key
/// (the SHA-256 of its bearer token, as stored).
struct Person {
    pseudonym: Hash32,
    session_sha256: String,
}

async fn person(s: &HubState, h: &HeaderMap) -> Result<Person> {
    let tok = h
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .filter(|t| t.starts_with(SESSION_PREFIX) && t.len() <= 128)
        .ok_or_else(|| HubError::Unauthorized("portal session required".into()))?;
    let session_sha256 = sha(tok);
    let p: Option<String> = sqlx::query_scalar(
        "SELECT pseudonym FROM hub_portal_sessions WHERE token_sha256 = $1 AND expires_at > $2",
    )
    .bind(&session_sha256)
    .bind(ts(Utc::now()))
    .fetch_optional(&s.db.pool)
    .await?;
    let p = p.ok_or_else(|| HubError::Unauthorized("no such session, or it expired".into()))?;
    Ok(Person {
        pseudonym: Hash32::parse(&p).expect("hex column"),
        session_sha256,
    })
}

/// Refuse text that is too long or looks like encoded data (an image or a
/// template in base64 or hex): the hub keeps words, not face information.
pub fn check_text(t: &str) -> Result<String> {
    let t = t.trim();
    if t.chars().count() > MAX_TEXT_CHARS {
        return Err(HubError::Bad(format!(
            "text longer than {MAX_TEXT_CHARS} characters / 文字超过 {MAX_TEXT_CHARS} 字"
        )));
    }
    let mut run = 0;
    let mut longest = 0;
    for c in t.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '-' | '_') {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    if longest >= 64 || t.contains("data:") || t.chars().any(|c| c.is_control() && c != '\n') {
        // A refusal from the Measures (R11): the rule and its article in
        // each language, like every other refusal.
        let r = facegate_policy::RuleId::R11;
        return Err(HubError::Refused {
            rule: Some(r.to_string()),
            zh: format!(
                "{r} / {}：中心不保存人脸信息，疑似编码数据的文字不予接收。",
                r.article_zh()
            ),
            en: format!(
                "{r} / {}: the hub keeps no face information; text that looks like encoded data is refused",
                r.article()
            ),
        });
    }
    Ok(t.to_string())
}

/// The routes of the portal (person) and the operator's request desk.
pub fn routes() -> Router<HubState> {
    Router::new()
        .route("/portal", get(page))
        .route("/portal/v1/session", post(open_session))
        .route("/portal/v1/logout", post(logout))
        .route("/portal/v1/me", get(me))
        .route("/portal/v1/requests", post(person_request))
        .route("/v1/desk/requests", get(desk_list))
        .route("/v1/desk/requests/{id}/answer", post(desk_answer))
}

async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            ),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        Html(PAGE),
    )
        .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OpenSession {
    token: String,
}

async fn open_session(State(s): State<HubState>, body: Bytes) -> Result<Json<Value>> {
    log_body(&s, "/portal/v1/session", &body);
    let b: OpenSession = serde_json::from_slice(&body).map_err(|e| HubError::Bad(e.to_string()))?;
    let c = check_token(&s, &b.token).await?;
    let session = format!(
        "{SESSION_PREFIX}{}",
        hex::encode(rand::random::<[u8; 32]>())
    );
    let now = Utc::now();
    let expires = now + chrono::Duration::minutes(SESSION_MINUTES);
    let mut tx = s.db.pool.begin().await?;
    let fresh = sqlx::query(
        "INSERT INTO hub_portal_token_uses (jti, site_id, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(c.jti.to_string())
    .bind(c.site.to_string())
    .bind(ts(DateTime::from_timestamp(c.exp, 0).unwrap_or(now)))
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if fresh == 0 {
        return Err(unauthorized("already used"));
    }
    sqlx::query(
        "INSERT INTO hub_portal_sessions (token_sha256, pseudonym, site_id, created_at, expires_at) VALUES ($1,$2,$3,$4,$5)",
    )
    .bind(sha(&session))
    .bind(c.pseudonym.hex())
    .bind(c.site.to_string())
    .bind(ts(now))
    .bind(ts(expires))
    .execute(&mut *tx)
    .await?;
    // Spent token ids and sessions are kept only while they could matter.
    sqlx::query("DELETE FROM hub_portal_token_uses WHERE expires_at < $1")
        .bind(ts(now
            - chrono::Duration::seconds(
                keys::MAX_SKEW_SECS + TOKEN_MAX_SECS,
            )))
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM hub_portal_sessions WHERE expires_at < $1")
        .bind(ts(now))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Json(
        json!({ "session": session, "expires_at": ts(expires) }),
    ))
}

async fn logout(State(s): State<HubState>, h: HeaderMap) -> Result<Json<Value>> {
    let p = person(&s, &h).await?;
    sqlx::query("DELETE FROM hub_portal_sessions WHERE token_sha256 = $1")
        .bind(&p.session_sha256)
        .execute(&s.db.pool)
        .await?;
    Ok(Json(json!({ "ended": true })))
}

/// A request with its case (text, answer, closing) and each site's progress.
async fn case_view(s: &HubConfig, id: Uuid) -> Result<Value> {
    Ok(case_json(&s.db.case(id).await?))
}

/// A case as the desk and the person's page show it.
fn case_json(c: &Case) -> Value {
    let r = &c.request;
    // Routed to the sites (every person's request but a complaint).
    let routed = crate::proto::CommandKind::parse(&r.kind).is_some();
    let today = facegate_policy::authorize::china_offset();
    let today = Utc::now().with_timezone(&today).date_naive().to_string();
    let open = if routed {
        !r.done
    } else {
        c.closed_at.is_none()
    };
    json!({
        "id": r.id,
        "kind": r.kind,
        "origin": c.origin,
        "created_at": r.created_at,
        "due_date": r.due_date,
        "overdue": open && r.due_date < today,
        "open": open,
        "text": c.text,
        "reply": c.reply,
        "replied_at": c.replied_at,
        "closed_at": c.closed_at,
        "sites": r.sites,
        "done": r.done,
    })
}

async fn me(State(s): State<HubState>, h: HeaderMap) -> Result<Json<Value>> {
    let p = person(&s, &h).await?;
    let holding = sqlx::query(
        "SELECT h.site_id, s.name, h.since FROM hub_holdings h JOIN hub_sites s ON s.id = h.site_id
         WHERE h.pseudonym = $1 ORDER BY s.name",
    )
    .bind(p.pseudonym.hex())
    .fetch_all(&s.db.pool)
    .await?
    .iter()
    .map(|r| {
        json!({"site_id": r.get::<String, _>(0), "site_name": r.get::<String, _>(1), "since": r.get::<String, _>(2)})
    })
    .collect::<Vec<_>>();
    let requests: Vec<Value> =
        s.db.cases(Cases::OfPerson(&p.pseudonym))
            .await?
            .iter()
            .map(case_json)
            .collect();
    Ok(Json(json!({ "sites": holding, "requests": requests })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PersonRequest {
    kind: String,
    #[serde(default)]
    text: Option<String>,
}

async fn person_request(
    State(s): State<HubState>,
    h: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>> {
    log_body(&s, "/portal/v1/requests", &body);
    let p = person(&s, &h).await?;
    let b: PersonRequest =
        serde_json::from_slice(&body).map_err(|e| HubError::Bad(e.to_string()))?;
    let text = match b.text.as_deref().map(check_text).transpose()? {
        Some(t) if t.is_empty() => None,
        t => t,
    };
    if b.kind == "complaint" && text.is_none() {
        return Err(HubError::Bad(
            "a complaint needs its text / 投诉需填写内容".into(),
        ));
    }
    let v =
        s.db.add_request(
            &b.kind,
            p.pseudonym,
            Raised::Portal {
                text: text.as_deref(),
            },
        )
        .await?;
    Ok(Json(case_view(&s, v.id).await?))
}

/// The operator's list of requests and complaints with their due dates,
/// oldest due first.
async fn desk_list(
    State(s): State<HubState>,
    h: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>> {
    admin(&s, &h)?;
    // Parsed here, so a bad query is the JSON error body too.
    let only_open = match q.as_deref().unwrap_or("") {
        "" | "open=false" => false,
        "open=true" => true,
        other => {
            return Err(HubError::Bad(format!(
                "query {other:?}: only open=true or open=false"
            )))
        }
    };
    let out: Vec<Value> =
        s.db.cases(Cases::DueFirst)
            .await?
            .iter()
            .map(case_json)
            .filter(|v| !only_open || v["open"] == true)
            .collect();
    Ok(Json(json!({ "requests": out })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Answer {
    reply: String,
    #[serde(default = "yes")]
    close: bool,
}

fn yes() -> bool {
    true
}

async fn desk_answer(
    State(s): State<HubState>,
    h: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>> {
    log_body(&s, "/v1/desk/requests/answer", &body);
    admin(&s, &h)?;
    let id = Uuid::parse_str(&id).map_err(|_| HubError::NotFound("request".into()))?;
    let a: Answer = serde_json::from_slice(&body).map_err(|e| HubError::Bad(e.to_string()))?;
    let reply = check_text(&a.reply)?;
    if reply.is_empty() {
        return Err(HubError::Bad("an empty answer / 答复为空".into()));
    }
    let now = ts(Utc::now());
    // The answer is written only for a request that exists (the statement
    // reads it), so nothing reads the request before.
    let written = sqlx::query(
        "INSERT INTO hub_request_cases (request_id, origin, reply, replied_at, closed_at)
         SELECT id, 'desk', $2, $3, CASE WHEN $4 THEN $3 END FROM hub_requests WHERE id = $1
         ON CONFLICT (request_id) DO UPDATE SET reply = EXCLUDED.reply, replied_at = EXCLUDED.replied_at,
           closed_at = COALESCE(hub_request_cases.closed_at, EXCLUDED.closed_at)",
    )
    .bind(id.to_string())
    .bind(&reply)
    .bind(&now)
    .bind(a.close)
    .execute(&s.db.pool)
    .await?
    .rows_affected();
    if written == 0 {
        return Err(HubError::NotFound("request".into()));
    }
    Ok(Json(case_view(&s, id).await?))
}

/// Keep the consent records a sync carried (inside the sync's
/// transaction; a record sent again only updates its withdrawal time).
pub(crate) async fn record_consents(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    sid: &str,
    consents: &[ConsentRecord],
    now: DateTime<Utc>,
) -> Result<()> {
    for c in consents {
        sqlx::query(
            "INSERT INTO hub_consents (site_id, consent_id, pseudonym, scenario_id, kind, notice_id, notice_version, notice_sha256, given_at, withdrawn_at, received_at)
             VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)
             ON CONFLICT (site_id, consent_id) DO UPDATE SET withdrawn_at = COALESCE(EXCLUDED.withdrawn_at, hub_consents.withdrawn_at),
               pseudonym = COALESCE(hub_consents.pseudonym, EXCLUDED.pseudonym)",
        )
        .bind(sid)
        .bind(c.consent_id.to_string())
        .bind(c.pseudonym.map(|p| p.hex()))
        .bind(c.scenario_id.to_string())
        .bind(c.kind.as_str())
        .bind(c.notice_id.map(|n| n.to_string()))
        .bind(c.notice_version)
        .bind(c.notice_sha256.map(|h| h.hex()))
        .bind(ts(c.given_at))
        .bind(c.withdrawn_at.map(ts))
        .bind(ts(now))
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// One site's processing records as the dossier lists them (JSON lines:
/// seq, what kind for the headcount, the site's event name, record hash,
/// time).
pub async fn record_lines(s: &HubConfig, site: Uuid) -> Result<String> {
    site_lines(
        s,
        "hub_events",
        &["seq", "kind", "event", "record_hash", "at"],
        "seq",
        site,
    )
    .await
}

/// One site's consent records as the dossier lists them (JSON lines).
pub async fn consent_lines(s: &HubConfig, site: Uuid) -> Result<String> {
    site_lines(
        s,
        "hub_consents",
        &[
            "consent_id",
            "pseudonym",
            "scenario_id",
            "kind",
            "notice_id",
            "notice_version",
            "notice_sha256",
            "given_at",
            "withdrawn_at",
        ],
        "given_at, consent_id",
        site,
    )
    .await
}

/// One site's rows of a hub table as JSON lines, one object of the named
/// columns per row (PostgreSQL builds each; it is written out again the
/// way every other JSON of the dossier is).
async fn site_lines(
    s: &HubConfig,
    table: &str,
    columns: &[&str],
    order: &str,
    site: Uuid,
) -> Result<String> {
    let object = columns
        .iter()
        .map(|c| format!("'{c}', {c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let rows: Vec<String> = sqlx::query_scalar(&format!(
        "SELECT json_build_object({object})::text FROM {table} WHERE site_id = $1 ORDER BY {order}"
    ))
    .bind(site.to_string())
    .fetch_all(&s.db.pool)
    .await?;
    let mut out = String::new();
    for r in rows {
        let v: Value = serde_json::from_str(&r).expect("PostgreSQL builds JSON");
        out.push_str(&v.to_string());
        out.push('\n');
    }
    Ok(out)
}

/// The requests and complaints of the processor for the dossier (no text:
/// kinds, dates, answers given and closing times).
pub async fn cases_for_dossier(s: &HubConfig) -> Result<Value> {
    let mut out = Vec::new();
    for c in s.db.cases(Cases::Oldest).await? {
        let v = case_json(&c);
        out.push(json!({
            "id": v["id"], "kind": v["kind"], "origin": v["origin"], "created_at": v["created_at"],
            "due_date": v["due_date"], "overdue": v["overdue"], "answered": !v["reply"].is_null(),
            "replied_at": v["replied_at"], "closed_at": v["closed_at"], "done": v["done"],
            "sites": v["sites"],
        }));
    }
    Ok(Value::Array(out))
}

// ---------------------------------------------------------------------
// The site side: `POST /v1/hub/portal-token`, for a person signed in to
// this site's own portal.

/// What a site needs to issue hub access tokens.
pub struct TokenIssuer {
    pub core: Arc<facegate_core::Core>,
    pub site_id: Uuid,
    pub key: SiteKey,
    pub pseudonym_key: PseudonymKey,
    /// The hub's base URL (`https://host:port`), for the portal link.
    pub hub: String,
}

/// A router with its state applied (the site merges it beside its API).
pub type SiteRouter = Router;

/// The site's extra route (merged into `facegate serve --hub`).
pub fn site_router(issuer: TokenIssuer) -> SiteRouter {
    Router::new()
        .route("/v1/hub/portal-token", post(site_issue))
        .route("/v1/hub", get(site_hub))
        .with_state(Arc::new(issuer))
}

/// Where this site's hub is (the site's portal shows the central portal
/// only when there is one).
async fn site_hub(State(i): State<Arc<TokenIssuer>>) -> Json<Value> {
    Json(json!({ "hub": i.hub, "portal": format!("{}/portal", i.hub.trim_end_matches('/')) }))
}

async fn site_issue(
    State(i): State<Arc<TokenIssuer>>,
    h: HeaderMap,
) -> std::result::Result<Json<Value>, Response> {
    let se =
        |e: &dyn std::fmt::Display| HubError::Transport(format!("site store: {e}")).into_response();
    let tok = h
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .filter(|t| t.starts_with("fgp_") && t.len() <= 128)
        .ok_or_else(|| {
            HubError::Unauthorized("a portal session of this site is required".into())
                .into_response()
        })?;
    let store = &i.core.store;
    let pid = store
        .portal_session(&sha(tok))
        .await
        .map_err(|e| se(&e))?
        .ok_or_else(|| {
            HubError::Unauthorized("no such portal session, or it expired".into()).into_response()
        })?;
    let pseudonym = crate::site::person_pseudonym(store, &i.pseudonym_key, pid)
        .await
        .map_err(|e| se(&e))?;
    let Some(pseudonym) = pseudonym else {
        return Err(HubError::Conflict(
            "this site holds no identity for the person, so the hub cannot know them / 本站点无此人的身份信息".into(),
        )
        .into_response());
    };
    let token = issue_token(&i.key, i.site_id, pseudonym, TOKEN_MAX_SECS);
    let expires = Utc::now() + chrono::Duration::seconds(TOKEN_MAX_SECS);
    Ok(Json(json!({
        "token": token,
        "expires_at": ts(expires),
        "portal_url": format!("{}/portal#token={token}", i.hub.trim_end_matches('/')),
    })))
}

const PAGE: &str = include_str!("portal.html");

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn r11_text_that_looks_like_an_image_or_template_is_refused() {
        assert!(check_text("门禁识别错了我，请删除 / the gate misread me").is_ok());
        assert!(check_text(&"a".repeat(MAX_TEXT_CHARS + 1)).is_err());
        assert!(
            check_text("/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDAoIChQNDAsLDA")
                .is_err()
        );
        assert!(check_text(&format!("x {}", hex::encode([0xa5u8; 40]))).is_err());
        assert!(check_text("see data:image/png;base64,AAAA").is_err());
    }

    /// The page tells the person where each kind of request goes: access
    /// answered at each site's own portal, complaints at the hub.
    #[test]
    fn r25_the_portal_says_complaints_stay_with_the_processor_at_the_hub() {
        assert!(PAGE.contains(
            "Complaints are handled and answered by the processor's operator here at the hub"
        ));
        assert!(PAGE.contains("投诉由处理者在本中心的经办人员处理并答复"));
        assert!(PAGE.contains("in that site's own portal"));
        assert!(PAGE.contains("received: \"received by the site\""));
    }

    #[test]
    fn a_token_is_signed_by_the_site_key_and_nothing_else() {
        let k = SiteKey::generate();
        let other = SiteKey::generate();
        let t = issue_token(&k, Uuid::now_v7(), Hash32([1; 32]), 60);
        let (p, sig) = t
            .strip_prefix(TOKEN_PREFIX)
            .unwrap()
            .split_once('.')
            .unwrap();
        let payload = hex::decode(p).unwrap();
        let c: TokenClaims = serde_json::from_slice(&payload).unwrap();
        assert!(c.exp - c.iat <= TOKEN_MAX_SECS);
        assert!(keys::verify_signature(
            &k.public_hex(),
            SIGN_METHOD,
            SIGN_PATH,
            c.iat,
            &payload,
            sig
        ));
        assert!(!keys::verify_signature(
            &other.public_hex(),
            SIGN_METHOD,
            SIGN_PATH,
            c.iat,
            &payload,
            sig
        ));
        // Not a sync signature either.
        assert!(!keys::verify_signature(
            &k.public_hex(),
            "POST",
            "/v1/sync",
            c.iat,
            &payload,
            sig
        ));
    }

    thread_local! {
        /// The statements counted on this thread since counting began,
        /// or `None` where nothing counts.
        static STATEMENTS: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
    }

    /// Counts the SQL statements sqlx runs (sqlx reports each one as a
    /// `sqlx::query` event) on the thread that asked to count. It is the
    /// process's one subscriber, installed before any test's first query:
    /// a scoped `set_default` per test raced with the callsites other tests
    /// registered at the same moment, so a statement's callsite could be
    /// cached as uninteresting and the count read 0 (seen in CI).
    struct Statements;

    impl tracing::Subscriber for Statements {
        fn enabled(&self, m: &tracing::Metadata<'_>) -> bool {
            m.target().starts_with("sqlx::query")
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, e: &tracing::Event<'_>) {
            if e.metadata().target().starts_with("sqlx::query") {
                STATEMENTS.with(|c| c.set(c.get().map(|n| n + 1)));
            }
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }

    /// Installs [`Statements`] once, before the caller's first query.
    fn count_statements_everywhere() {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            tracing::subscriber::set_global_default(Statements)
                .expect("no other subscriber in the hub's tests");
        });
    }

    /// Starts counting this thread's statements (a `tokio::test` runs its
    /// future on its own thread) and answers how many ran since the last
    /// call, resetting the count.
    fn statements() -> impl Fn() -> usize {
        STATEMENTS.with(|c| c.set(Some(0)));
        || STATEMENTS.with(|c| c.replace(Some(0)).unwrap_or(0))
    }

    /// A hub on a fresh database of the test server (dropped when it
    /// goes), or `None` with a printed skip.
    pub(crate) struct TestHub {
        base: String,
        name: String,
        pub(crate) s: HubState,
    }

    /// The admin token of a [`TestHub`].
    const ADMIN: &str = "admin-token-for-the-test";

    impl TestHub {
        pub(crate) async fn open() -> Option<TestHub> {
            count_statements_everywhere();
            let Ok(base) = std::env::var("FACEGATE_TEST_DATABASE_URL") else {
                println!(
                    "SKIP postgres: FACEGATE_TEST_DATABASE_URL is not set (scripts/test.sh sets it)"
                );
                return None;
            };
            let name = format!("fg_hubcases_{}", Uuid::new_v4().simple());
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect(&base).await.unwrap();
            sqlx::Executor::execute(&mut c, format!("CREATE DATABASE {name}").as_str())
                .await
                .unwrap();
            let (head, query) = base.split_once('?').unwrap_or((base.as_str(), ""));
            let at = head.rfind('/').unwrap();
            let url = format!("{}/{name}?{query}", &head[..at]);
            let db = crate::db::HubDb::open(&url).await.unwrap();
            let s = Arc::new(HubConfig {
                db,
                admin_token_sha256: hex::encode(Sha256::digest(ADMIN.as_bytes())),
                pseudonym_key: PseudonymKey::from_bytes([7; 32]),
                processor_name: "test".into(),
                body_log: None,
                manifest_key: None,
            });
            Some(TestHub { base, name, s })
        }

        /// Run one statement of the test's own (fixtures, faults).
        async fn exec(&self, sql: &str) {
            sqlx::Executor::execute(&self.s.db.pool, sql).await.unwrap();
        }

        async fn count(&self, table: &str) -> i64 {
            sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
                .fetch_one(&self.s.db.pool)
                .await
                .unwrap()
        }
    }

    /// The database goes when the test ends, failed or not (a thread of
    /// its own: the test's runtime may be the one dropping).
    impl Drop for TestHub {
        fn drop(&mut self) {
            let (base, name) = (self.base.clone(), self.name.clone());
            let _ = std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap()
                    .block_on(async move {
                        use sqlx::Connection;
                        if let Ok(mut c) = sqlx::PgConnection::connect(&base).await {
                            let _ = sqlx::Executor::execute(
                                &mut c,
                                format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str(),
                            )
                            .await;
                        }
                    })
            })
            .join();
        }
    }

    fn bearer(token: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        h
    }

    /// A site holding the person's face, and a portal session of theirs.
    pub(crate) async fn person_with_session(t: &TestHub, p: Hash32) -> (Uuid, HeaderMap) {
        let site =
            t.s.db
                .add_site("east", &hex::encode([1u8; 32]), &[])
                .await
                .unwrap();
        let now = Utc::now();
        sqlx::query("INSERT INTO hub_holdings (site_id, pseudonym, since) VALUES ($1, $2, $3)")
            .bind(site.to_string())
            .bind(p.hex())
            .bind(ts(now))
            .execute(&t.s.db.pool)
            .await
            .unwrap();
        let session = format!("{SESSION_PREFIX}{}", hex::encode([3u8; 32]));
        sqlx::query("INSERT INTO hub_portal_sessions (token_sha256, pseudonym, site_id, created_at, expires_at) VALUES ($1,$2,$3,$4,$5)")
            .bind(sha(&session))
            .bind(p.hex())
            .bind(site.to_string())
            .bind(ts(now))
            .bind(ts(now + chrono::Duration::minutes(5)))
            .execute(&t.s.db.pool)
            .await
            .unwrap();
        (site, bearer(&session))
    }

    /// A portal request and its case row (origin, text) are one
    /// transaction: when the case row cannot be written (a fault injected
    /// by a trigger, as a crash between the two would), no request and no
    /// command to a site is left behind. Before, the request was committed
    /// first and the case row written after it.
    #[tokio::test]
    async fn a_portal_request_and_its_case_row_are_written_together_or_not_at_all() {
        let Some(t) = TestHub::open().await else {
            return;
        };
        let (_, h) = person_with_session(&t, Hash32([9; 32])).await;
        let body = || Bytes::from_static(br#"{"kind":"withdraw","text":"please stop"}"#);
        t.exec(
            "CREATE FUNCTION fail_case() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN RAISE EXCEPTION 'fault injected before the case row'; END $$",
        )
        .await;
        t.exec("CREATE TRIGGER fail_case BEFORE INSERT ON hub_request_cases FOR EACH ROW EXECUTE FUNCTION fail_case()")
            .await;
        let r = person_request(State(t.s.clone()), h.clone(), body()).await;
        assert!(r.is_err(), "the case row's fault fails the request");
        assert_eq!(
            t.count("hub_requests").await,
            0,
            "no request without its case"
        );
        assert_eq!(
            t.count("hub_commands").await,
            0,
            "no command without its case"
        );

        t.exec("DROP TRIGGER fail_case ON hub_request_cases").await;
        let Json(v) = person_request(State(t.s.clone()), h, body()).await.unwrap();
        assert_eq!(v["origin"], "portal");
        assert_eq!(v["text"], "please stop");
        assert_eq!(v["sites"].as_array().unwrap().len(), 1);
        assert_eq!(t.count("hub_requests").await, 1);
        assert_eq!(t.count("hub_request_cases").await, 1);
    }

    /// Signing out ends the session it was called with (the key the
    /// session check found, the bearer header read once), and only it.
    #[tokio::test]
    async fn signing_out_ends_that_session_only() {
        let Some(t) = TestHub::open().await else {
            return;
        };
        let p = Hash32([6; 32]);
        let (site, h) = person_with_session(&t, p).await;
        let other = format!("{SESSION_PREFIX}{}", hex::encode([4u8; 32]));
        sqlx::query("INSERT INTO hub_portal_sessions (token_sha256, pseudonym, site_id, created_at, expires_at) VALUES ($1,$2,$3,$4,$5)")
            .bind(sha(&other))
            .bind(p.hex())
            .bind(site.to_string())
            .bind(ts(Utc::now()))
            .bind(ts(Utc::now() + chrono::Duration::minutes(5)))
            .execute(&t.s.db.pool)
            .await
            .unwrap();
        assert!(me(State(t.s.clone()), h.clone()).await.is_ok());
        let Json(v) = logout(State(t.s.clone()), h.clone()).await.unwrap();
        assert_eq!(v["ended"], true);
        let e = me(State(t.s.clone()), h.clone()).await.unwrap_err();
        assert!(matches!(e, HubError::Unauthorized(_)), "{e}");
        let e = logout(State(t.s.clone()), h).await.unwrap_err();
        assert!(matches!(e, HubError::Unauthorized(_)), "{e}");
        assert!(me(State(t.s.clone()), bearer(&other)).await.is_ok());
        assert_eq!(t.count("hub_portal_sessions").await, 1);
    }

    /// The dossier's processing and consent records: one JSON line per row
    /// of the site's own, in order, each the object the dossier wrote
    /// before (the same keys and values, nulls included, numbers as
    /// numbers); a column left out (the event's pseudonym) stays out.
    #[tokio::test]
    async fn the_dossiers_records_and_consents_are_one_line_per_row_of_the_site() {
        let Some(t) = TestHub::open().await else {
            return;
        };
        let site =
            t.s.db
                .add_site("east", &hex::encode([1u8; 32]), &[])
                .await
                .unwrap();
        let other =
            t.s.db
                .add_site("west", &hex::encode([2u8; 32]), &[])
                .await
                .unwrap();
        let (a, b) = (site.to_string(), other.to_string());
        let p = hex::encode([9u8; 32]);
        t.exec(&format!(
            "INSERT INTO hub_events (site_id, seq, kind, pseudonym, still_holds, record_hash, at, received_at, event) VALUES
             ('{a}', 2, 'face_stored', '{p}', false, 'h2', 't2', 'r', 'enrol'),
             ('{a}', 1, 'other', NULL, false, 'h1', 't1', 'r', NULL),
             ('{b}', 1, 'other', NULL, false, 'hb', 'tb', 'r', 'verify')"
        ))
        .await;
        t.exec(&format!(
            "INSERT INTO hub_consents (site_id, consent_id, pseudonym, scenario_id, kind, notice_id, notice_version, notice_sha256, given_at, withdrawn_at, received_at) VALUES
             ('{a}', 'c2', '{p}', 's', 'processing', 'n', 3, 'sha', 'g1', 'w', 'r'),
             ('{a}', 'c1', NULL, 's', 'image_retention', NULL, NULL, NULL, 'g1', NULL, 'r'),
             ('{b}', 'c3', NULL, 's', 'processing', NULL, NULL, NULL, 'g0', NULL, 'r')"
        ))
        .await;
        let lines = |v: Vec<Value>| v.iter().map(|x| format!("{x}\n")).collect::<String>();
        assert_eq!(
            record_lines(&t.s, site).await.unwrap(),
            lines(vec![
                json!({"seq": 1, "kind": "other", "event": null, "record_hash": "h1", "at": "t1"}),
                json!({"seq": 2, "kind": "face_stored", "event": "enrol", "record_hash": "h2", "at": "t2"}),
            ])
        );
        assert_eq!(
            consent_lines(&t.s, site).await.unwrap(),
            lines(vec![
                json!({"consent_id": "c1", "pseudonym": null, "scenario_id": "s", "kind": "image_retention",
                       "notice_id": null, "notice_version": null, "notice_sha256": null, "given_at": "g1", "withdrawn_at": null}),
                json!({"consent_id": "c2", "pseudonym": p, "scenario_id": "s", "kind": "processing",
                       "notice_id": "n", "notice_version": 3, "notice_sha256": "sha", "given_at": "g1", "withdrawn_at": "w"}),
            ])
        );
        assert_eq!(record_lines(&t.s, other).await.unwrap().lines().count(), 1);
        assert_eq!(consent_lines(&t.s, Uuid::now_v7()).await.unwrap(), "");
    }

    /// Answering reads the request once (the answer's own statement finds
    /// it, then the case is read back): two statements, where it was four
    /// (the request and its progress read first only to see it exists). An
    /// unknown request is still 404, and a second answer replaces the first
    /// but keeps the first closing time.
    #[tokio::test]
    async fn answering_a_request_reads_it_once() {
        let Some(t) = TestHub::open().await else {
            return;
        };
        let (_, h) = person_with_session(&t, Hash32([8; 32])).await;
        let body = Bytes::from_static(br#"{"kind":"complaint","text":"the gate misread me"}"#);
        let Json(c) = person_request(State(t.s.clone()), h, body).await.unwrap();
        let id = c["id"].as_str().unwrap().to_string();

        let counted = statements();
        let answer = |id: String, reply: &'static str| {
            desk_answer(
                State(t.s.clone()),
                bearer(ADMIN),
                Path(id),
                Bytes::from(format!(r#"{{"reply":"{reply}"}}"#)),
            )
        };
        counted();
        let Json(v) = answer(id.clone(), "we checked the gate").await.unwrap();
        assert_eq!(
            counted(),
            2,
            "one write that finds the request, one read back"
        );
        assert_eq!(v["reply"], "we checked the gate");
        assert_eq!(v["origin"], "portal", "the person's case keeps its origin");
        assert_eq!(v["text"], "the gate misread me");
        assert!(v["closed_at"].is_string());
        let closed = v["closed_at"].clone();

        let Json(v) = answer(id, "and fixed it").await.unwrap();
        assert_eq!(v["reply"], "and fixed it");
        assert_eq!(v["closed_at"], closed);

        let e = answer(Uuid::now_v7().to_string(), "to nobody")
            .await
            .unwrap_err();
        assert!(matches!(e, HubError::NotFound(_)), "{e}");
        assert_eq!(counted(), 3);
        assert_eq!(t.count("hub_request_cases").await, 1);
    }

    /// The case of one request read the way the desk read it before (its
    /// request, then its progress, then its case row: three queries).
    async fn case_one_by_one(s: &HubConfig, id: Uuid) -> Value {
        let request = s.db.request(id).await.unwrap();
        let c = sqlx::query(
            "SELECT origin, text, reply, replied_at, closed_at FROM hub_request_cases WHERE request_id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(&s.db.pool)
        .await
        .unwrap();
        let case = match c {
            Some(c) => Case {
                request,
                origin: c.get(0),
                text: c.get(1),
                reply: c.get(2),
                replied_at: c.get(3),
                closed_at: c.get(4),
            },
            None => Case {
                request,
                origin: "desk".into(),
                text: None,
                reply: None,
                replied_at: None,
                closed_at: None,
            },
        };
        case_json(&case)
    }

    #[tokio::test]
    async fn the_desk_list_and_the_dossiers_cases_are_one_query_each() {
        let Some(t) = TestHub::open().await else {
            return;
        };
        let s = t.s.clone();
        let token = ADMIN;
        // Two sites; three people holding at none, one or both; requests
        // of every kind, some with a case row, answered or closed, and
        // one site's command receipted.
        let mut sites = Vec::new();
        for (i, n) in ["east", "west"].iter().enumerate() {
            let key = hex::encode([i as u8 + 1; 32]);
            sites.push(s.db.add_site(n, &key, &[]).await.unwrap());
        }
        let people: Vec<Hash32> = (0..3u8).map(|i| Hash32([i + 10; 32])).collect();
        for (p, holds) in people.iter().zip([0usize, 1, 2]) {
            for site in &sites[..holds] {
                sqlx::query(
                    "INSERT INTO hub_holdings (site_id, pseudonym, since) VALUES ($1, $2, $3)",
                )
                .bind(site.to_string())
                .bind(p.hex())
                .bind(ts(Utc::now()))
                .execute(&s.db.pool)
                .await
                .unwrap();
            }
        }
        let mut ids = Vec::new();
        for (k, p) in [
            "withdraw",
            "complaint",
            "access",
            "erase",
            "complaint",
            "withdraw",
        ]
        .iter()
        .zip([1, 2, 2, 1, 0, 2].map(|i: usize| &people[i]))
        {
            ids.push(s.db.add_request(k, *p, Raised::Desk).await.unwrap().id);
        }
        sqlx::query("INSERT INTO hub_request_cases (request_id, origin, text) VALUES ($1, 'portal', 'the gate misread me')")
            .bind(ids[1].to_string())
            .execute(&s.db.pool)
            .await
            .unwrap();
        sqlx::query("INSERT INTO hub_request_cases (request_id, origin, reply, replied_at, closed_at) VALUES ($1, 'desk', 'answered', $2, $2)")
            .bind(ids[4].to_string())
            .bind(ts(Utc::now()))
            .execute(&s.db.pool)
            .await
            .unwrap();
        sqlx::query(
            "UPDATE hub_commands SET receipted_at = $1, status = 'applied' WHERE request_id = $2",
        )
        .bind(ts(Utc::now()))
        .bind(ids[0].to_string())
        .execute(&s.db.pool)
        .await
        .unwrap();
        let mut due_first: Vec<(String, String, Uuid)> = Vec::new();
        for id in &ids {
            let r = s.db.request(*id).await.unwrap();
            due_first.push((r.due_date, r.created_at, *id));
        }
        due_first.sort();
        let mut want = Vec::new();
        for (_, _, id) in &due_first {
            want.push(case_one_by_one(&s, *id).await);
        }
        assert!(want
            .iter()
            .any(|v| v["sites"].as_array().unwrap().len() == 2));

        let counted = statements();
        let h = bearer(token);
        counted();
        let Json(all) = desk_list(State(s.clone()), h.clone(), RawQuery(None))
            .await
            .unwrap();
        assert_eq!(counted(), 1, "the desk list is one query");
        assert_eq!(all["requests"], Value::Array(want.clone()));
        let Json(open) = desk_list(State(s.clone()), h, RawQuery(Some("open=true".into())))
            .await
            .unwrap();
        assert_eq!(counted(), 1);
        let open_want: Vec<Value> = want.iter().filter(|v| v["open"] == true).cloned().collect();
        assert!(open_want.len() < want.len());
        assert_eq!(open["requests"], Value::Array(open_want));

        let dossier = cases_for_dossier(&s).await.unwrap();
        assert_eq!(counted(), 1, "the dossier's cases are one query");
        let oldest: Vec<&Value> = {
            let mut v: Vec<&Value> = want.iter().collect();
            v.sort_by_key(|v| {
                (
                    v["created_at"].as_str().unwrap().to_string(),
                    v["id"].as_str().unwrap().to_string(),
                )
            });
            v
        };
        let got = dossier.as_array().unwrap();
        assert_eq!(got.len(), oldest.len());
        for (g, w) in got.iter().zip(oldest) {
            assert_eq!(g["id"], w["id"]);
            assert_eq!(g["sites"], w["sites"]);
            assert_eq!(g["done"], w["done"]);
            assert_eq!(g["answered"], !w["reply"].is_null());
        }

        // One person's cases, newest first, read the same way.
        let mine = s.db.cases(Cases::OfPerson(&people[1])).await.unwrap();
        assert_eq!(counted(), 1);
        let mut mine_want: Vec<&Value> = want
            .iter()
            .filter(|v| {
                let id = Uuid::parse_str(v["id"].as_str().unwrap()).unwrap();
                [0, 3].contains(&ids.iter().position(|x| *x == id).unwrap())
            })
            .collect();
        mine_want.sort_by_key(|v| {
            std::cmp::Reverse((
                v["created_at"].as_str().unwrap().to_string(),
                v["id"].as_str().unwrap().to_string(),
            ))
        });
        let mine: Vec<Value> = mine.iter().map(case_json).collect();
        assert_eq!(mine.iter().collect::<Vec<_>>(), mine_want);
    }
}
