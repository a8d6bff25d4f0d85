//! Request limits: body size, image pixels, and rate per API key.
//!
//! Failed credential attempts (a PIN, a portal code, a card) are not
//! counted here: the store counts them before each check
//! (`facegate_store::Attempt`), so a lock-out holds across restarts and on
//! every instance sharing the store.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::ApiError;

/// Limits a deployment can tune.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body in bytes (images arrive base64 in JSON).
    pub max_body_bytes: usize,
    /// Largest decoded image, in pixels (width × height).
    pub max_image_pixels: u64,
    /// Requests per minute per API key.
    pub per_key_per_minute: u32,
    /// Failed attempts per credential (PIN of a person, portal codes) per 15 minutes.
    pub credential_failures: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 8 * 1024 * 1024,
            max_image_pixels: 4096 * 4096,
            per_key_per_minute: 6000,
            credential_failures: 5,
        }
    }
}

/// Token buckets keyed by string.
pub struct RateLimiter {
    per_minute: u32,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Take one token for `key`, or say how long to wait.
    pub fn check(&self, key: &str) -> Result<(), ApiError> {
        let cap = self.per_minute as f64;
        let rate = cap / 60.0;
        let now = Instant::now();
        let mut b = self.buckets.lock().unwrap();
        if b.len() > 100_000 {
            b.retain(|_, (_, t)| now.duration_since(*t) < Duration::from_secs(120));
        }
        let (tokens, last) = b.entry(key.to_string()).or_insert((cap, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * rate).min(cap);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(ApiError::RateLimited {
                retry_after_s: ((1.0 - *tokens) / rate).ceil().max(1.0) as u64,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_runs_out() {
        let r = RateLimiter::new(3);
        for _ in 0..3 {
            r.check("k").unwrap();
        }
        assert!(matches!(r.check("k"), Err(ApiError::RateLimited { .. })));
        r.check("other").unwrap();
    }
}
