//! Liveness the server decides (issue 15): challenges it issues (a nonce,
//! a random ordered sequence of actions, a deadline, bound to the scenario,
//! the device and the person claimed), the level each scenario requires
//! (`policy::check_liveness`), and refusal of replayed frames. The state
//! lives in the store, so a restart or a second instance decides the same.
//!
//! Every refusal here names R20 (Art. 14: the security measures the
//! processor must take against intrusion), in Chinese and English.

use chrono::{DateTime, Duration, Utc};
use facegate_policy as policy;
use facegate_store as store;
use facegate_vision::challenge::Action;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{Core, CoreError, CoreResult, Deployed};

/// How long a person has to perform an issued challenge, from issue to the
/// capture request arriving.
pub const CHALLENGE_SECONDS: i64 = 60;
/// How long the (keyed) hashes of a capture's frames are kept: an exact
/// replay of any of them within this window is refused.
pub const REPLAY_WINDOW_SECONDS: i64 = 15 * 60;

/// A challenge as the client receives it. The nonce is shown once; the
/// store keeps only its hash.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IssuedChallenge {
    pub nonce: String,
    pub actions: Vec<Action>,
    pub expires_at: DateTime<Utc>,
    /// The liveness level the scenario requires at this device.
    pub required: policy::LivenessLevel,
}

/// What the engine must check for one capture, once the server has decided.
#[derive(Debug, Clone)]
pub struct LivenessPlan {
    /// The level that holds at this device (see [`policy::required_liveness`]).
    pub required: policy::LivenessLevel,
    /// The actions the frames must show, in order (an issued challenge).
    pub actions: Option<Vec<Action>>,
}

pub(crate) fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// An R20 refusal (Art. 14) about liveness.
pub fn refusal(en: impl Into<String>, zh: impl Into<String>) -> CoreError {
    CoreError::Refused(policy::Refusal::new(policy::RuleId::R20, en, zh))
}

pub(crate) fn device_of<'a>(
    d: &'a Deployed,
    device: Option<&str>,
) -> CoreResult<Option<&'a policy::Device>> {
    match device {
        Some(id) => {
            Ok(Some(d.scenario.device(id).ok_or_else(|| {
                CoreError::NotFound(format!("device {id}"))
            })?))
        }
        None => Ok(None),
    }
}

impl Core {
    /// Issue a challenge for a capture at `device` in `d`, about `person`
    /// (the person claimed, for enrolment and 1:1; `None` for 1:N, bound to
    /// the device only).
    pub async fn issue_challenge(
        &self,
        d: &Deployed,
        device: Option<&str>,
        person: Option<Uuid>,
    ) -> CoreResult<IssuedChallenge> {
        let dev = device_of(d, device)?;
        if let Some(p) = person {
            crate::pipeline::live_person(self, p).await?;
        }
        let actions = Action::random_sequence(&mut rand::thread_rng());
        let nonce = {
            use rand::RngCore;
            let mut b = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut b);
            hex::encode(b)
        };
        let now = self.now();
        let expires_at = now + Duration::seconds(CHALLENGE_SECONDS);
        self.store
            .put_liveness_challenge(&store::LivenessChallenge {
                nonce_sha256: sha256_hex(nonce.as_bytes()),
                scenario_id: d.store_id,
                device: device.unwrap_or_default().to_string(),
                person_id: person,
                actions: serde_json::to_string(&actions).map_err(CoreError::internal)?,
                issued_at: now,
                expires_at,
            })
            .await?;
        Ok(IssuedChallenge {
            nonce,
            actions,
            expires_at,
            required: policy::required_liveness(&d.scenario, dev),
        })
    }

    /// Decide what a capture must show before any pixel is analysed: the
    /// level the scenario requires at this device (a request without a
    /// challenge is passive-only and refused where `active` is required,
    /// whichever key sent it); the challenge, taken once, within its
    /// deadline, issued for this scenario, device and person; and no frame
    /// seen in a recent capture.
    pub async fn plan_liveness(
        &self,
        d: &Deployed,
        device: Option<&str>,
        person: Option<Uuid>,
        images: &[Vec<u8>],
        nonce: Option<&str>,
    ) -> CoreResult<LivenessPlan> {
        let dev = device_of(d, device)?;
        let performed = match nonce {
            Some(_) => policy::LivenessLevel::Active,
            None => policy::LivenessLevel::Passive,
        };
        let required = policy::check_liveness(&d.scenario, dev, performed)?;
        let now = self.now();
        let actions = match nonce {
            None => None,
            Some(n) => {
                let c = self
                    .store
                    .take_liveness_challenge(&sha256_hex(n.trim().as_bytes()))
                    .await?
                    .ok_or_else(|| {
                        refusal(
                            "the liveness challenge is unknown or was already used; ask for a new one",
                            "活体检测指令无效或已被使用，请重新获取",
                        )
                    })?;
                if c.expires_at <= now {
                    return Err(refusal(
                        "the liveness challenge's deadline has passed; ask for a new one",
                        "活体检测指令已超时，请重新获取",
                    ));
                }
                if c.scenario_id != d.store_id
                    || c.device != device.unwrap_or_default()
                    || c.person_id != person
                {
                    return Err(refusal(
                        "the liveness challenge was issued for another device, scenario or person",
                        "该活体检测指令是为其他设备、场景或人员签发的",
                    ));
                }
                Some(serde_json::from_str::<Vec<Action>>(&c.actions).map_err(CoreError::internal)?)
            }
        };
        self.refuse_replay(images).await?;
        Ok(LivenessPlan { required, actions })
    }

    /// The level a capture without a challenge (passive-only) must meet at
    /// this device: the part of [`Core::plan_liveness`] that reads no store
    /// and takes no challenge, for a single frame sent without a nonce.
    pub fn passive_plan(&self, d: &Deployed, device: Option<&str>) -> CoreResult<LivenessPlan> {
        let dev = device_of(d, device)?;
        let required = policy::check_liveness(&d.scenario, dev, policy::LivenessLevel::Passive)?;
        Ok(LivenessPlan {
            required,
            actions: None,
        })
    }

    /// Remember the frames' hashes for the replay window and refuse the
    /// capture if one of them was sent in a recent capture (an exact replay).
    pub async fn refuse_replay(&self, images: &[Vec<u8>]) -> CoreResult<()> {
        let now = self.now();
        let hashes: Vec<String> = images.iter().map(|b| sha256_hex(b)).collect();
        let replay = self
            .store
            .remember_capture_frames(&hashes, now, now + Duration::seconds(REPLAY_WINDOW_SECONDS))
            .await?;
        if replay {
            self.observe("facegate_capture_replays_total", &[]);
            return Err(refusal(
                "a frame of this capture was already sent in a recent capture: a replay is refused",
                "本次采集的图像与近期已提交的图像完全相同，疑似重放攻击，已拒绝",
            ));
        }
        Ok(())
    }
}
