//! The OpenAPI document, generated from the handlers' annotations. The same
//! document is checked in at `crates/server/openapi.json`; a test fails when
//! the two differ (regenerate with `FACEGATE_UPDATE_OPENAPI=1 cargo test -p
//! facegate-server --test openapi`).

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::api;

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

#[derive(OpenApi)]
#[openapi(
    info(title = "facegate", description = "Face recognition under the Face Recognition Measures (人脸识别技术应用安全管理办法). Every refusal names its requirement ID and article."),
    modifiers(&Bearer),
    paths(
        api::system::health, api::system::metrics, api::system::openapi,
        api::keys::create, api::keys::list, api::keys::revoke, api::keys::redeem,
        api::frontline::notice, api::frontline::give_consent, api::frontline::decline_face, api::frontline::opt_in_face,
        api::frontline::enrol, api::frontline::verify, api::frontline::identify,
        api::frontline::add_credential, api::frontline::verify_credential,
        api::frontline::portal_code,
        api::people::create, api::people::get, api::people::consents, api::people::export,
        api::people::erase, api::people::withdraw, api::people::complain, api::people::me,
        api::console::dashboard, api::console::filing, api::console::filing_pack,
        api::console::pia, api::console::scenarios, api::console::upload_scenario,
        api::console::devices, api::console::requests, api::console::complaints,
        api::console::audit, api::console::audit_verify, api::console::audit_export,
    ),
    components(schemas(crate::ErrorBody))
)]
pub struct ApiDoc;

/// The document as pretty JSON (stable order, newline at the end).
pub fn document() -> String {
    let mut s = ApiDoc::openapi()
        .to_pretty_json()
        .expect("OpenAPI document serialises");
    s.push('\n');
    s
}
