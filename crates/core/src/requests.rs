//! Persons' requests (access, copy, delete, correct; PIPL Arts. 44–47) and
//! complaints (R25, PIPL Art. 50): opened, answered and closed here, with
//! due dates counted in working days on the official calendar, each step
//! audited by the store.

use chrono::{DateTime, NaiveDate, Utc};
use facegate_gallery::PersonId;
use facegate_policy as policy;
use facegate_store as store;
use uuid::Uuid;

use crate::ops::Acting;
use crate::{Core, CoreError, CoreResult};

/// Working days the operator has to answer a request or complaint that is
/// not answered at once (a deployment choice, shorter than the statutory
/// limits; counted on the official calendar, the day received excluded).
pub const ANSWER_WORKING_DAYS: u32 = 15;
/// Longest complaint or reply, in characters.
pub const MAX_TEXT_CHARS: usize = 10_000;

/// When a request is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Answered in the same step (export, erasure, correction at the desk).
    Today,
    /// [`ANSWER_WORKING_DAYS`] working days after today.
    WorkingDays,
}

/// The last day to answer something received at `at`: the
/// [`ANSWER_WORKING_DAYS`]th working day after that day (Asia/Shanghai),
/// and whether the calendar had to be extrapolated.
pub fn answer_due(at: DateTime<Utc>) -> (NaiveDate, bool) {
    policy::WorkCalendar::official()
        .add_working_days(policy::shanghai_date(at), ANSWER_WORKING_DAYS)
}

/// Everything held about a person (access / copy request). Templates are
/// counted, never exported (R11).
#[derive(Debug, Clone)]
pub struct PersonExport {
    pub request_id: Uuid,
    pub exported_at: DateTime<Utc>,
    pub person: store::Person,
    pub resident: Option<store::Resident>,
    pub guardians: Vec<store::Guardian>,
    pub consents: Vec<store::Consent>,
    pub credentials: Vec<store::Credential>,
    pub events: Vec<store::VerificationEvent>,
    pub complaints: Vec<store::Complaint>,
    pub templates: usize,
}

fn text(s: &str, zh: &str, en: &str) -> CoreResult<String> {
    let t = s.trim();
    if t.is_empty() || t.chars().count() > MAX_TEXT_CHARS {
        return Err(CoreError::bad(zh, en));
    }
    Ok(t.to_string())
}

impl Core {
    /// Log a person's request.
    pub async fn open_request(
        &self,
        person: Uuid,
        kind: store::RequestKind,
        channel: &str,
        actor: &str,
        due: Due,
    ) -> CoreResult<store::SubjectRequest> {
        let now = self.now();
        let due_date = match due {
            Due::Today => policy::shanghai_date(now),
            Due::WorkingDays => answer_due(now).0,
        };
        Ok(self
            .store
            .add_request(
                &store::NewRequest {
                    person_id: Some(person),
                    kind,
                    channel: channel.into(),
                    due_date,
                },
                actor,
            )
            .await?)
    }

    /// Close a request: `done` or `rejected`, with what was done (the
    /// person sees it).
    pub async fn close_request(
        &self,
        id: Uuid,
        status: &str,
        outcome: &str,
        actor: &str,
    ) -> CoreResult<store::SubjectRequest> {
        let outcome = text(
            outcome,
            "请写明处理结果（不超过 10000 字）。",
            "write the outcome (at most 10,000 characters)",
        )?;
        if !matches!(status, "done" | "rejected") {
            return Err(CoreError::bad(
                "状态应为 done（已办结）或 rejected（不予办理）。",
                "status is done or rejected",
            ));
        }
        let r = self.request(id).await?;
        if r.status != "open" {
            return Err(CoreError::Conflict("this request is already closed".into()));
        }
        self.store
            .complete_request(id, status, &outcome, actor)
            .await?;
        self.request(id).await
    }

    /// One request.
    pub async fn request(&self, id: Uuid) -> CoreResult<store::SubjectRequest> {
        self.store
            .requests()
            .await?
            .into_iter()
            .find(|r| r.id == id)
            .ok_or_else(|| CoreError::NotFound("request".into()))
    }

    /// Everything held about `person`, logged as a copy request answered at
    /// once. A person exports only their own (the caller checked the role).
    pub async fn export_person(
        &self,
        person: Uuid,
        acting: Acting<'_>,
        channel: &str,
        actor: &str,
    ) -> CoreResult<PersonExport> {
        if let Acting::Person(me) = acting {
            if me != person {
                return Err(CoreError::NotFound("person".into()));
            }
        }
        let p = self.store.person(person).await?;
        let consents = self.store.consents(person).await?;
        let guardians = self.store.guardians(person).await?;
        let credentials = self.store.credentials(person).await?;
        let events = self.store.verification_events(person, 1000).await?;
        let complaints = self.complaints_of(person).await?;
        let resident = self.store.resident(person).await?;
        let templates = {
            let g = self.galleries.read().unwrap();
            g.values()
                .map(|g| g.templates_of(PersonId(person)).len())
                .sum::<usize>()
        };
        let req = self
            .open_request(person, store::RequestKind::Copy, channel, actor, Due::Today)
            .await?;
        self.store
            .complete_request(req.id, "done", "export delivered at once", actor)
            .await?;
        Ok(PersonExport {
            request_id: req.id,
            exported_at: self.now(),
            person: p,
            resident,
            guardians,
            consents,
            credentials,
            events,
            complaints,
            templates,
        })
    }

    /// Erase a person on their request (or an operator's): logged as a
    /// delete request, answered in the same step with the receipt.
    pub async fn erase_on_request(
        &self,
        person: Uuid,
        channel: &str,
        actor: &str,
    ) -> CoreResult<store::DeletionReceipt> {
        let req = self
            .open_request(
                person,
                store::RequestKind::Delete,
                channel,
                actor,
                Due::Today,
            )
            .await?;
        let r = self.erase_person(person, actor).await?;
        self.store
            .complete_request(
                req.id,
                "done",
                &format!("erased; receipt {}", r.receipt_id),
                actor,
            )
            .await?;
        Ok(r)
    }

    /// File a complaint (R25), the text encrypted at rest.
    pub async fn file_complaint(
        &self,
        person: Option<Uuid>,
        body: &str,
        channel: &str,
        actor: &str,
    ) -> CoreResult<store::Complaint> {
        let body = text(
            body,
            "请填写投诉内容（不超过 10000 字）。",
            "write the complaint (at most 10,000 characters)",
        )?;
        if let Some(p) = person {
            self.store.person(p).await?;
        }
        Ok(self
            .store
            .add_complaint(
                &store::NewComplaint {
                    person_id: person,
                    channel: channel.into(),
                    body,
                },
                actor,
            )
            .await?)
    }

    /// Answer a complaint and close it; the person sees the reply in the
    /// portal.
    pub async fn answer_complaint(
        &self,
        id: Uuid,
        response: &str,
        actor: &str,
    ) -> CoreResult<store::Complaint> {
        let response = text(
            response,
            "请填写答复（不超过 10000 字）。",
            "write the reply (at most 10,000 characters)",
        )?;
        let c = self.complaint(id).await?;
        if c.status != "open" {
            return Err(CoreError::Conflict(
                "this complaint is already answered".into(),
            ));
        }
        self.store.resolve_complaint(id, &response, actor).await?;
        self.complaint(id).await
    }

    /// One complaint.
    pub async fn complaint(&self, id: Uuid) -> CoreResult<store::Complaint> {
        self.store
            .complaints()
            .await?
            .into_iter()
            .find(|c| c.id == id)
            .ok_or_else(|| CoreError::NotFound("complaint".into()))
    }

    /// A person's complaints, newest first.
    pub async fn complaints_of(&self, person: Uuid) -> CoreResult<Vec<store::Complaint>> {
        Ok(self
            .store
            .complaints()
            .await?
            .into_iter()
            .filter(|c| c.person_id == Some(person))
            .collect())
    }
}
