//! Liveness (presentation-attack detection, PAD) level per scenario.
//!
//! A printed photo or a phone screen held to a gate defeats face
//! recognition unless the system checks the face is live. The level is part
//! of the security measures the application system must take (R20 / Art. 14:
//! access control and intrusion prevention; GB/T 41819 asks for protection
//! against photo and video attacks), so the manifest declares it and the
//! server, not the client, enforces it:
//!
//! - `active` (default): the passive model **and** a server-issued,
//!   randomised challenge (turn, blink, nod…) bound to the device and the
//!   person claimed. People who cannot do the motions are offered the
//!   alternative at once (R6).
//! - `passive`: the passive model alone (for a counter where staff watch
//!   every capture); the linter warns.
//! - `none`: the server does no liveness check; allowed only when **every**
//!   device of the scenario declares its own certified PAD sensor with a
//!   certificate reference (`[devices.pad_sensor]`). A device without one
//!   falls back to `active`.

use crate::manifest::{Device, Lang, Scenario};
use crate::rules::{Refusal, RuleId};
use serde::{Deserialize, Serialize};

/// How strongly a face capture must be shown to be live. Ordered weakest
/// first, so `performed >= required` is the test.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "snake_case")]
pub enum LivenessLevel {
    /// No check by facegate: the device's own certified PAD sensor vouches.
    None,
    /// The passive liveness model on the frame.
    Passive,
    /// Passive model plus a server-issued challenge sequence.
    #[default]
    Active,
}

impl LivenessLevel {
    /// The manifest spelling.
    pub fn key(self) -> &'static str {
        match self {
            LivenessLevel::None => "none",
            LivenessLevel::Passive => "passive",
            LivenessLevel::Active => "active",
        }
    }

    /// Plain name in `lang`.
    pub fn name(self, lang: Lang) -> &'static str {
        match (self, lang) {
            (LivenessLevel::None, Lang::Zh) => "由设备自带的经认证活体检测传感器完成",
            (LivenessLevel::Passive, Lang::Zh) => "静默活体检测",
            (LivenessLevel::Active, Lang::Zh) => "静默活体检测加服务器随机动作指令（转头、眨眼等）",
            (LivenessLevel::None, Lang::En) => "by the device's own certified PAD sensor",
            (LivenessLevel::Passive, Lang::En) => "passive liveness model",
            (LivenessLevel::Active, Lang::En) => {
                "passive model plus a server-issued random challenge (turn, blink…)"
            }
        }
    }
}

/// A device's own presentation-attack-detection sensor (3D / infrared /
/// structured light), certified by a test lab.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PadSensor {
    /// Sensor or module model.
    #[serde(default)]
    pub model: String,
    /// Certificate reference (lab, number), e.g. an ISO/IEC 30107-3 or
    /// GA/T 1093 test report. Required.
    #[serde(default)]
    pub certificate: String,
    /// The standard it was certified against, e.g. "ISO/IEC 30107-3".
    pub standard: Option<String>,
}

impl PadSensor {
    /// True when a certificate reference is recorded.
    pub fn is_certified(&self) -> bool {
        !self.certificate.trim().is_empty()
    }
}

impl Device {
    /// The device's certified PAD sensor, if it declares one with a
    /// certificate reference.
    pub fn certified_pad(&self) -> Option<&PadSensor> {
        self.pad_sensor.as_ref().filter(|p| p.is_certified())
    }
}

/// The liveness level a face capture at `device` must pass in `scenario`:
/// the scenario's level, except that `none` holds only at a device with its
/// own certified PAD sensor; anywhere else (or with no device known) it is
/// `active`.
pub fn required_liveness(scenario: &Scenario, device: Option<&Device>) -> LivenessLevel {
    match scenario.liveness {
        LivenessLevel::None if device.and_then(Device::certified_pad).is_some() => {
            LivenessLevel::None
        }
        LivenessLevel::None => LivenessLevel::Active,
        level => level,
    }
}

/// Refuses (R20 / Art. 14) a face capture whose liveness check was weaker
/// than [`required_liveness`], e.g. a passive-only request where the
/// scenario requires an active challenge, whichever device key sent it.
pub fn check_liveness(
    scenario: &Scenario,
    device: Option<&Device>,
    performed: LivenessLevel,
) -> Result<LivenessLevel, Refusal> {
    let required = required_liveness(scenario, device);
    if performed >= required {
        return Ok(required);
    }
    Err(Refusal::new(
        RuleId::R20,
        format!(
            "this scenario requires {} liveness ({}); a {} check is not enough against photo and screen attacks",
            required.key(),
            required.name(Lang::En),
            performed.key()
        ),
        format!(
            "本场景要求的活体检测为：{}；仅{}不足以防范照片、屏幕翻拍等攻击",
            required.name(Lang::Zh),
            match performed {
                LivenessLevel::None => "未做活体检测",
                LivenessLevel::Passive => "静默活体检测",
                LivenessLevel::Active => "动作活体检测",
            }
        ),
    ))
}

/// Why the scenario's level was chosen and what it means, in Chinese and
/// English, for the linter's note and the PIA.
pub fn explain_liveness(scenario: &Scenario) -> (String, String) {
    let level = scenario.liveness;
    match level {
        LivenessLevel::Active => (
            "liveness = active: every face capture must pass the passive model and a random, ordered challenge the server issues for this device and person (turn, blink, nod) within a deadline, once; people who cannot do the motions use the alternative at once (R6)".to_string(),
            "活体检测为动作活体：每次人脸采集须通过静默活体检测，并在时限内一次性完成服务器针对本设备和本人随机下发的有序动作（转头、眨眼、点头）；无法完成动作的人可立即改用其他方式（R6）".to_string(),
        ),
        LivenessLevel::Passive => (
            "liveness = passive: only the passive model guards against printed photos and screen replays; no challenge is asked".to_string(),
            "活体检测为静默活体：仅由静默活体模型防范打印照片和屏幕翻拍，不要求做动作".to_string(),
        ),
        LivenessLevel::None => {
            let certs: Vec<String> = scenario
                .devices
                .iter()
                .filter_map(|d| d.certified_pad().map(|p| format!("{}: {} ({})", d.id, p.model, p.certificate)))
                .collect();
            (
                format!(
                    "liveness = none: facegate does no liveness check; each device's own certified PAD sensor does ({}); a device without one is held to active",
                    certs.join("; ")
                ),
                format!(
                    "活体检测为不做：本系统不做活体检测，由各设备自带的经认证活体检测传感器完成（{}）；未声明传感器的设备按动作活体执行",
                    certs.join("；")
                ),
            )
        }
    }
}
