//! Residents at the front desk: short resident and room numbers a kiosk
//! keypad can take (a device learns only which person a number names,
//! never a name or a date of birth), and the console's find / correct.

use facegate_store as store;
use uuid::Uuid;

use crate::{Core, CoreError, CoreResult};

/// How many persons a name search decrypts at most (newest first).
pub const NAME_SEARCH_SCAN: i64 = 5000;
/// How many persons a search returns at most.
pub const SEARCH_LIMIT: usize = 50;

/// What a kiosk learns from a number: the person it names, nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResidentMatch {
    pub person_id: Uuid,
    /// `resident_no` or `room`: what the number matched.
    pub matched: &'static str,
}

/// A person found in the console, with their numbers.
#[derive(Debug, Clone)]
pub struct Found {
    pub person: store::Person,
    pub resident: Option<store::Resident>,
}

/// Corrections to a person's record (each `None` leaves it as it is).
#[derive(Debug, Clone, Default)]
pub struct Correction<'a> {
    pub display_name: Option<&'a str>,
    pub contact: Option<&'a str>,
    pub date_of_birth: Option<chrono::NaiveDate>,
    pub resident_no: Option<&'a str>,
    pub room: Option<&'a str>,
}

fn digits(number: &str) -> CoreResult<&str> {
    let n = number;
    if n.is_empty() || n.len() > 8 || !n.chars().all(|c| c.is_ascii_digit()) {
        return Err(CoreError::bad(
            "住户号或房号应为 1 到 8 位数字。",
            "a resident or room number is 1 to 8 digits",
        ));
    }
    Ok(n)
}

impl Core {
    /// Give a person a resident number (a free six-digit one unless
    /// `resident_no` is given) and a room; audited.
    pub async fn number_resident(
        &self,
        person: Uuid,
        resident_no: Option<&str>,
        room: Option<&str>,
        actor: &str,
    ) -> CoreResult<store::Resident> {
        if let Some(n) = resident_no {
            self.number_free(n, Some(person)).await?;
        }
        Ok(self
            .store
            .set_resident(person, resident_no, room, actor)
            .await?)
    }

    /// `409` when another person already has resident number `n`.
    async fn number_free(&self, n: &str, for_person: Option<Uuid>) -> CoreResult<()> {
        let n = digits(n)?;
        let taken = self
            .store
            .residents_by_number(n)
            .await?
            .iter()
            .any(|r| r.resident_no == n && Some(r.person_id) != for_person);
        if taken {
            return Err(CoreError::Conflict(format!(
                "resident number {n} is already taken / 住户号 {n} 已被占用"
            )));
        }
        Ok(())
    }

    /// The person a kiosk keypad number names: a resident number, else a
    /// room with exactly one resident. A room with several asks for the
    /// resident number.
    pub async fn lookup_resident(&self, number: &str) -> CoreResult<ResidentMatch> {
        let n = digits(number)?;
        let found = self.store.residents_by_number(n).await?;
        if let Some(r) = found.iter().find(|r| r.resident_no == n) {
            return Ok(ResidentMatch {
                person_id: r.person_id,
                matched: "resident_no",
            });
        }
        match found.as_slice() {
            [] => Err(CoreError::NotFound("resident".into())),
            [one] => Ok(ResidentMatch {
                person_id: one.person_id,
                matched: "room",
            }),
            _ => Err(CoreError::Conflict(
                "several residents live in this room; type your resident number / 这个房号有多位住户，请输入您的住户号".into(),
            )),
        }
    }

    /// Find persons (not erased) for the console: by resident or room
    /// number (digits), by id, or by a part of the name (the names of the
    /// newest [`NAME_SEARCH_SCAN`] persons are decrypted to compare). An
    /// empty query lists the newest.
    pub async fn find_residents(&self, q: &str) -> CoreResult<Vec<Found>> {
        let q = q.trim();
        if q.chars().count() > 100 {
            return Err(CoreError::bad("查询过长。", "the query is too long"));
        }
        let mut ids: Vec<Uuid> = Vec::new();
        if !q.is_empty() && q.len() <= 8 && q.chars().all(|c| c.is_ascii_digit()) {
            ids.extend(
                self.store
                    .residents_by_number(q)
                    .await?
                    .into_iter()
                    .map(|r| r.person_id),
            );
        } else if let Ok(id) = Uuid::parse_str(q) {
            ids.push(id);
        }
        let mut out = Vec::new();
        for id in ids {
            match self.store.person(id).await {
                Ok(p) if p.erased_at.is_none() => out.push(p),
                Ok(_) | Err(store::StoreError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if out.is_empty() {
            let needle = q.to_lowercase();
            for id in self.store.live_person_ids(NAME_SEARCH_SCAN).await? {
                let p = self.store.person(id).await?;
                let hit = p
                    .identity
                    .as_ref()
                    .is_some_and(|i| i.display_name.to_lowercase().contains(&needle));
                if hit {
                    out.push(p);
                    if out.len() >= SEARCH_LIMIT {
                        break;
                    }
                }
            }
        }
        out.truncate(SEARCH_LIMIT);
        let mut found = Vec::with_capacity(out.len());
        for person in out {
            let resident = self.store.resident(person.id).await?;
            found.push(Found { person, resident });
        }
        Ok(found)
    }

    /// Correct a person's record (name, contact, date of birth, numbers),
    /// as a correction request answered at once (PIPL Art. 46).
    pub async fn correct_person(
        &self,
        person: Uuid,
        c: Correction<'_>,
        channel: &str,
        actor: &str,
    ) -> CoreResult<Found> {
        let p = self.store.person(person).await?;
        let Some(mut identity) = p.identity.clone().filter(|_| p.erased_at.is_none()) else {
            return Err(CoreError::NotFound("person".into()));
        };
        // Everything is checked before anything is written.
        if c.display_name.is_some_and(|n| n.trim().is_empty()) {
            return Err(CoreError::bad("请填写姓名。", "display_name is empty"));
        }
        if let Some(n) = c.resident_no {
            self.number_free(n, Some(person)).await?;
        }
        if c.room
            .is_some_and(|r| r.chars().count() > 32 || store::room_key(r).is_empty())
        {
            return Err(CoreError::bad(
                "房号应含数字，且不超过 32 个字符。",
                "a room has digits and at most 32 characters",
            ));
        }
        let req = self
            .open_request(
                person,
                store::RequestKind::Correct,
                channel,
                actor,
                crate::requests::Due::Today,
            )
            .await?;
        if let Some(n) = c.display_name {
            identity.display_name = n.trim().into();
        }
        if let Some(x) = c.contact {
            identity.contact = Some(x.trim().to_string()).filter(|x| !x.is_empty());
        }
        if let Some(d) = c.date_of_birth {
            identity.date_of_birth = Some(d);
        }
        self.store
            .update_person_identity(person, &identity, actor)
            .await?;
        if c.resident_no.is_some() || c.room.is_some() {
            let old = self.store.resident(person).await?;
            let room = c
                .room
                .or_else(|| old.as_ref().and_then(|o| o.room.as_deref()));
            self.number_resident(person, c.resident_no, room, actor)
                .await?;
        }
        self.store
            .complete_request(req.id, "done", "corrected at once", actor)
            .await?;
        Ok(Found {
            person: self.store.person(person).await?,
            resident: self.store.resident(person).await?,
        })
    }
}

impl Core {
    /// Register a person (identity encrypted at rest) with a resident
    /// number (a free one unless given) and, optionally, a room.
    pub async fn add_resident(
        &self,
        identity: &store::PersonIdentity,
        resident_no: Option<&str>,
        room: Option<&str>,
        actor: &str,
    ) -> CoreResult<Found> {
        if identity.display_name.trim().is_empty() {
            return Err(CoreError::bad("请填写姓名。", "display_name is empty"));
        }
        if let Some(n) = resident_no {
            self.number_free(n, None).await?;
        }
        let person = self
            .store
            .add_person(self.processor_id, identity, actor)
            .await?;
        let resident = self
            .number_resident(person.id, resident_no, room, actor)
            .await?;
        Ok(Found {
            person,
            resident: Some(resident),
        })
    }
}
