//! Devices added and revoked from the console (or any caller), without
//! hand-editing a manifest.
//!
//! The deployed manifest stays the one record of what is deployed: adding
//! a device appends a `[[devices]]` table to the scenario's current
//! manifest, revoking one sets its `active = false`, and either goes
//! through the linter and [`Core::deploy_scenario`] like an uploaded
//! manifest. So every rule (R19's private places, R18/R20 and the rest) is
//! checked on the server for every caller, the change is a new audited
//! scenario version, and the notice, PIA and filing pack (all made from the
//! manifest) list exactly the devices in force. Revoking also revokes the
//! device's API keys in the store (that scenario's keys for that device
//! only), so they stop working at once on every instance (each request
//! reads its key from the store).

use std::sync::Arc;

use facegate_policy as policy;

use crate::{Core, CoreError, CoreResult, Deployed};

/// A device to add: its manifest id, where it is, and how the place is
/// classed (`non_public`, `public_area`, …; R18/R19).
#[derive(Debug, Clone)]
pub struct NewDevice<'a> {
    pub id: &'a str,
    pub placement: &'a str,
    pub location_zh: &'a str,
    pub location_en: Option<&'a str>,
}

/// The comment a console-amended manifest carries: the SHA-256 of the
/// manifest it was first amended from (the configured file, or an upload).
pub const BASE_MARK: &str = "# facegate-console-base-sha256: ";

/// The manifest with its base mark (added on the first amendment, kept on
/// later ones).
fn marked(manifest: &str) -> String {
    if manifest.lines().any(|l| l.starts_with(BASE_MARK)) {
        manifest.to_string()
    } else {
        format!(
            "{BASE_MARK}{}\n{manifest}",
            crate::liveness::sha256_hex(manifest.as_bytes())
        )
    }
}

/// What to deploy at start-up for the configured manifest `file`: the
/// latest stored version of its scenario when that version amends this
/// very file in the console (devices added or revoked), so a restart keeps
/// them; otherwise the file (an edited file supersedes the amendments).
pub async fn startup_manifest(
    store: &facegate_store::Store,
    processor_id: uuid::Uuid,
    file: &str,
) -> CoreResult<String> {
    let Some(latest) = stored_latest(store, processor_id, file).await? else {
        return Ok(file.to_string());
    };
    let want = format!(
        "{BASE_MARK}{}",
        crate::liveness::sha256_hex(file.as_bytes())
    );
    Ok(if latest.manifest.lines().any(|l| l == want) {
        latest.manifest
    } else {
        file.to_string()
    })
}

/// The other scenarios to deploy again at start-up (every scenario of this
/// processor but the configured one, `configured`), as `(name, manifest)`:
/// the latest stored version of each, so a scenario uploaded in the console
/// or through the API runs after a restart as it ran before. A scenario a
/// hub governs runs as the hub's newest manifest that verifies under the
/// pinned key, and not at all if none does
/// ([`crate::hub_trust::HubTrust::at_start`]); once the site is detached
/// from its hub, its scenarios run as the operator's own.
pub async fn startup_others(
    store: &facegate_store::Store,
    processor_id: uuid::Uuid,
    configured: &str,
) -> CoreResult<Vec<(String, String)>> {
    let hub = crate::hub_trust::HubTrust::load(store).await?;
    let mut out = Vec::new();
    for v in store.scenarios().await? {
        if v.processor_id != processor_id || v.name == configured {
            continue;
        }
        match hub.at_start(&v.name, &v.manifest) {
            Some(text) => out.push((v.name, text)),
            None => tracing::warn!(
                scenario = v.name,
                "no hub manifest of this hub-governed scenario verifies under the pinned key; not deployed"
            ),
        }
    }
    Ok(out)
}

/// An operator's upload with the base mark of the version it replaces
/// (that version's own mark, or its hash if it has none): an upload of the
/// configured scenario is an amendment of the configured file like a device
/// added in the console, so a restart keeps it rather than reverting to the
/// file ([`startup_manifest`]); an edited file still supersedes it. A
/// manifest already marked, or a new scenario, is deployed as it is.
pub async fn with_base_mark(
    store: &facegate_store::Store,
    processor_id: uuid::Uuid,
    manifest: &str,
) -> CoreResult<String> {
    if manifest.lines().any(|l| l.starts_with(BASE_MARK)) {
        return Ok(manifest.to_string());
    }
    let Some(latest) = stored_latest(store, processor_id, manifest).await? else {
        return Ok(manifest.to_string());
    };
    let prior = marked(&latest.manifest);
    let mark = prior
        .lines()
        .find(|l| l.starts_with(BASE_MARK))
        .unwrap_or_default();
    Ok(format!("{mark}\n{manifest}"))
}

/// The latest stored version of the scenario `manifest` declares, for this
/// processor (none when the manifest does not parse or the scenario is new).
async fn stored_latest(
    store: &facegate_store::Store,
    processor_id: uuid::Uuid,
    manifest: &str,
) -> CoreResult<Option<facegate_store::ScenarioVersion>> {
    let Some(sc) = policy::lint(manifest, "scenario.toml").scenario else {
        return Ok(None);
    };
    Ok(store.scenario_named(processor_id, &sc.id).await?)
}

/// A TOML basic string (JSON string escapes are a subset of TOML's).
fn toml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The manifest with device `id` marked inactive, or `None` if no
/// `[[devices]]` table has that id.
pub fn deactivate(manifest: &str, id: &str) -> Option<String> {
    let lines: Vec<&str> = manifest.lines().collect();
    let is_header = |l: &str| l.trim_start().starts_with('[');
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim() == "[[devices]]" {
            let end = (i + 1..lines.len())
                .find(|&j| is_header(lines[j]))
                .unwrap_or(lines.len());
            let id_line = (i + 1..end).find(|&j| {
                let l = lines[j].split('#').next().unwrap_or("").trim();
                l.strip_prefix("id")
                    .map(|r| r.trim_start())
                    .and_then(|r| r.strip_prefix('='))
                    .map(|r| r.trim() == toml_str(id))
                    .unwrap_or(false)
            });
            if let Some(at) = id_line {
                let mut out: Vec<String> = vec![];
                for (j, l) in lines.iter().enumerate() {
                    let in_block = j > i && j < end;
                    if in_block && l.trim_start().starts_with("active") {
                        let rest = l.trim_start()["active".len()..].trim_start();
                        if rest.starts_with('=') {
                            continue;
                        }
                    }
                    out.push(l.to_string());
                    if j == at {
                        out.push("active = false".into());
                    }
                }
                return Some(out.join("\n") + "\n");
            }
            i = end;
        } else {
            i += 1;
        }
    }
    None
}

impl Core {
    /// Add a device to a scenario: the manifest is amended, linted (R19's
    /// private places and every other rule, refused with the rule and its
    /// article) and deployed as a new version.
    pub async fn add_device(
        &self,
        scenario: &str,
        dev: NewDevice<'_>,
    ) -> CoreResult<Arc<Deployed>> {
        if !valid_id(dev.id) {
            return Err(CoreError::bad(
                "设备编号应为 1 到 64 个字母、数字、- 或 _。",
                "a device id is 1 to 64 letters, digits, - or _",
            ));
        }
        let place = dev.placement.trim();
        if place.is_empty() || place.len() > 40 {
            return Err(CoreError::bad(
                "请选择安装场所类型。",
                "choose the placement",
            ));
        }
        let zh = dev.location_zh.trim();
        let en = dev.location_en.map(str::trim).filter(|s| !s.is_empty());
        if zh.is_empty() || zh.chars().count() > 200 || en.is_some_and(|e| e.chars().count() > 200)
        {
            return Err(CoreError::bad(
                "请填写设备安装位置（不超过 200 字）。",
                "give where the device is (at most 200 characters)",
            ));
        }
        let d = self.scenario(Some(scenario))?;
        if d.scenario.devices.iter().any(|x| x.id == dev.id) {
            return Err(CoreError::Conflict(format!(
                "device {} is already in scenario {scenario}",
                dev.id
            )));
        }
        let location = match en {
            Some(en) => format!("{{ zh = {}, en = {} }}", toml_str(zh), toml_str(en)),
            None => format!("{{ zh = {} }}", toml_str(zh)),
        };
        let mut src = marked(&d.manifest).trim_end().to_string();
        src.push_str(&format!(
            "\n\n[[devices]]\nid = {}\nplacement = {}\nlocation = {location}\n",
            toml_str(dev.id),
            toml_str(place)
        ));
        // Linted by the deploy (R19's private places refused there).
        self.deploy_local(&src).await
    }

    /// Revoke a device: marked inactive in a new manifest version (so it
    /// may not capture, and the documents list it as such) and its API
    /// keys (bound to this scenario's device) revoked in the store.
    pub async fn revoke_device(
        &self,
        scenario: &str,
        id: &str,
        actor: &str,
    ) -> CoreResult<Arc<Deployed>> {
        let d = self.scenario(Some(scenario))?;
        let dev = d
            .scenario
            .devices
            .iter()
            .find(|x| x.id == id)
            .ok_or_else(|| CoreError::NotFound(format!("device {id}")))?;
        if !dev.active {
            return Err(CoreError::Conflict(format!(
                "device {id} is already revoked"
            )));
        }
        let src = deactivate(&marked(&d.manifest), id).ok_or_else(|| {
            CoreError::Conflict(format!(
                "device {id} is not a [[devices]] table of the manifest; upload an edited manifest"
            ))
        })?;
        // Linted and deployed first: if the deploy is refused (a site attached to a
        // hub) or fails, the device keeps its keys and stays as it was,
        // never half revoked.
        let deployed = self.deploy_local(&src).await?;
        // This scenario's keys for the device only: a device of the same
        // name in another scenario is another device and keeps its keys.
        self.store.revoke_device_keys(d.store_id, id, actor).await?;
        Ok(deployed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deactivate_marks_only_that_device() {
        let m = "id = \"s\"\n[[devices]]\nid = \"a\"\nactive = true\n[[devices]]\nid = \"b\" # x\nplacement = \"non_public\"\n[filing]\nx = 1\n";
        let out = deactivate(m, "b").unwrap();
        assert_eq!(
            out,
            "id = \"s\"\n[[devices]]\nid = \"a\"\nactive = true\n[[devices]]\nid = \"b\" # x\nactive = false\nplacement = \"non_public\"\n[filing]\nx = 1\n"
        );
        let out = deactivate(m, "a").unwrap();
        assert!(
            out.contains("id = \"a\"\nactive = false\n[[devices]]"),
            "{out}"
        );
        assert!(deactivate(m, "c").is_none());
    }
}
