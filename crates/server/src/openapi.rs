//! The OpenAPI document: the contract of the HTTP API.
//!
//! It is made from the same list of handlers as the router
//! ([`crate::routes::api`]), each with its `#[utoipa::path]` annotation, so
//! no operation can be served without being documented or documented
//! without being served. The answers every operation shares because of
//! how it is called (no or a bad key, a body that is not JSON, a query that
//! does not parse, an internal error) are added here from the operation's
//! own shape, all with [`ErrorBody`]; an annotation lists only what its
//! handler decides (a refusal, a missing person, a lock-out).
//!
//! The same document is checked in at `crates/server/openapi.json`; a test
//! fails when the two differ (regenerate with `FACEGATE_UPDATE_OPENAPI=1
//! cargo test -p facegate-server --test api openapi`).

use std::sync::OnceLock;

use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::ErrorBody;

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let c = doc.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API key `fgk_…` (roles admin, operator, device, auditor) or a portal session `fgp_…`",
                    ))
                    .build(),
            ),
        );
    }
}

/// The document's header and shared components; the paths come from the
/// router ([`crate::routes::api`]).
#[derive(OpenApi)]
#[openapi(
    info(title = "facegate", description = "Face recognition under the Face Recognition Measures (人脸识别技术应用安全管理办法). Every refusal names its requirement ID and article. Every 4xx and 5xx answer has the body `ErrorBody`, except a manifest refused by the linter (`LintResult`)."),
    modifiers(&Bearer),
    components(schemas(ErrorBody))
)]
pub struct ApiDoc;

/// Answers shared by operations, by the shape of the operation:
/// `(status, component name, description)`.
const SHARED: &[(&str, &str, &str)] = &[
    ("400", "BadRequest", "The request is malformed: a body that is not valid JSON, a path or query value that does not parse, or a value the operation cannot use."),
    ("401", "Unauthorized", "No bearer token, or one that is unknown, revoked or expired."),
    ("403", "Forbidden", "The caller's role may not do this, or the Measures refuse it (`rule`, `article` and `article_zh` name the requirement)."),
    ("413", "TooLarge", "The body (or an image in it) is over the limit."),
    ("415", "UnsupportedMediaType", "The body is not sent as `application/json`."),
    ("422", "Unprocessable", "Valid JSON that is not what the operation takes: a missing field, a wrong type, a value out of range."),
    ("429", "RateLimited", "Too many requests from this key or session, or too many failed attempts; see `Retry-After`."),
    ("500", "Internal", "Internal error; nothing was lost."),
];

fn shared_ref(status: &str) -> RefOr<utoipa::openapi::Response> {
    let name = SHARED
        .iter()
        .find(|(s, _, _)| *s == status)
        .map(|(_, n, _)| *n)
        .expect("a shared answer");
    RefOr::Ref(Ref::from_response_name(name))
}

/// Add the answers an operation gives because of its shape, where its
/// annotation does not already document that status itself.
fn add_shared_answers(path: &str, op: &mut Operation) {
    // The document itself, health and metrics never fail in a way a
    // client can cause.
    if !path.starts_with("/v1/") || path == "/v1/openapi.json" {
        return;
    }
    let mut statuses: Vec<&str> = vec!["500"];
    if op.security.as_ref().is_some_and(|s| !s.is_empty()) {
        statuses.extend(["401", "403", "429"]);
    }
    if op.parameters.as_ref().is_some_and(|p| !p.is_empty()) {
        statuses.push("400");
    }
    if let Some(body) = &op.request_body {
        statuses.extend(["400", "413"]);
        if body.content.contains_key("application/json") {
            statuses.extend(["415", "422"]);
        }
    }
    for s in statuses {
        op.responses
            .responses
            .entry(s.to_string())
            .or_insert_with(|| shared_ref(s));
    }
}

fn build() -> utoipa::openapi::OpenApi {
    let (_, mut doc) = crate::routes::api().split_for_parts();
    let c = doc.components.get_or_insert_with(Default::default);
    for (_, name, description) in SHARED {
        c.responses.insert(
            name.to_string(),
            RefOr::T(
                ResponseBuilder::new()
                    .description(*description)
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("ErrorBody")))
                            .build(),
                    )
                    .build(),
            ),
        );
    }
    for (path, item) in doc.paths.paths.iter_mut() {
        for op in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            add_shared_answers(path, op);
        }
    }
    doc
}

/// The document, built once.
pub fn openapi() -> &'static utoipa::openapi::OpenApi {
    static DOC: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    DOC.get_or_init(build)
}

/// The document as pretty JSON (stable order, newline at the end).
pub fn document() -> String {
    let mut s = openapi()
        .to_pretty_json()
        .expect("OpenAPI document serialises");
    s.push('\n');
    s
}

/// Schemas of request fields whose Rust type says less than the server
/// checks (the handlers read them as plain strings).
pub mod schema {
    /// What a consent covers.
    #[derive(utoipa::ToSchema)]
    #[schema(rename_all = "snake_case")]
    #[allow(dead_code)]
    pub enum ConsentKindName {
        /// Face processing for the scenario's purpose (R7).
        Processing,
        /// Sending face information off the device (R11).
        Transmission,
        /// Keeping a captured image.
        ImageRetention,
    }

    /// An alternative credential.
    #[derive(utoipa::ToSchema)]
    #[schema(rename_all = "snake_case")]
    #[allow(dead_code)]
    pub enum CredentialKindName {
        Pin,
        Card,
        Qr,
        /// The same as `qr`.
        QrCode,
    }

    /// `POST /v1/credentials`'s body (read as `CredentialInput`): a PIN is
    /// 4 to 256 digits; a card number or QR token 4 to 256 bytes, counted
    /// after surrounding spaces are trimmed.
    pub struct NewCredential;

    impl utoipa::PartialSchema for NewCredential {
        fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
            let common = |kind: serde_json::Value, secret: serde_json::Value| {
                serde_json::json!({
                    "type": "object",
                    "required": ["person_id", "secret"],
                    "properties": {
                        "person_id": {"type": "string", "format": "uuid"},
                        "scenario": {"type": ["string", "null"]},
                        "device_id": {"type": ["string", "null"]},
                        "kind": kind,
                        "secret": secret,
                    }
                })
            };
            let mut other = common(
                serde_json::json!({"type": "string", "enum": ["card", "qr", "qr_code"]}),
                serde_json::json!({
                    "type": "string", "minLength": 4, "maxLength": 256, "pattern": "\\S",
                    "description": "A card number or QR token: 4 to 256 bytes once surrounding spaces are trimmed."
                }),
            );
            other["required"] = serde_json::json!(["person_id", "kind", "secret"]);
            serde_json::from_value(serde_json::json!({
                "description": "An alternative credential to register (R15).",
                "oneOf": [
                    common(
                        serde_json::json!({"type": ["string", "null"], "enum": ["pin", null], "description": "`pin` (the default)."}),
                        serde_json::json!({
                            "type": "string", "pattern": "^\\s*[0-9]{4,256}\\s*$",
                            "description": "A PIN: 4 to 256 digits."
                        }),
                    ),
                    other,
                ]
            }))
            .expect("NewCredential schema")
        }
    }

    impl utoipa::ToSchema for NewCredential {}
}
