//! Tenant scoping: every record belongs to one tenant, and a caller acting for a tenant reaches
//! only that tenant's records. `Tracker::scope(tenant)` gives a `Scoped` view whose by-id
//! methods answer `NotFound` for another tenant's record with exactly the message of a missing
//! one, so a caller never learns that it exists. Handlers go through a `Scoped`, never through
//! the `Tracker`'s unscoped by-id methods.

use std::collections::HashSet;

use super::ledger::{Delivered, Recorded};
use super::{RecordView, Result, State, Tracker, TrackingError};
use crate::domain::AuthorizationRequest;
use crate::payers::PayerConfig;
use crate::store::{AlertRow, OutboxRow, RequestFilter, RequestRow};

/// The tenant records belong to when nobody says otherwise (and before tenants existed).
pub const DEFAULT_TENANT: &str = "default";

/// The tracker as seen by one tenant.
#[derive(Clone, Copy)]
pub struct Scoped<'a> {
    pub tracker: &'a Tracker,
    pub tenant: &'a str,
}

impl Tracker {
    pub fn scope<'a>(&'a self, tenant: &'a str) -> Scoped<'a> {
        Scoped {
            tracker: self,
            tenant,
        }
    }

    /// The record when it belongs to `tenant`; otherwise the same NotFound as a missing one.
    pub async fn record_in(&self, tenant: &str, id: &str) -> Result<RequestRow> {
        match self.store.request(id).await? {
            Some(row) if row.tenant == tenant => Ok(row),
            _ => Err(TrackingError::NotFound(format!("no record {id}"))),
        }
    }
}

impl<'a> Scoped<'a> {
    /// The record, when it is this tenant's.
    pub async fn record(&self, id: &str) -> Result<RequestRow> {
        self.tracker.record_in(self.tenant, id).await
    }

    /// Whether the record is this tenant's (without saying more).
    pub async fn owns(&self, id: &str) -> Result<bool> {
        match self.record(id).await {
            Ok(_) => Ok(true),
            Err(TrackingError::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub async fn create(&self, request: &AuthorizationRequest, actor: &str) -> Result<String> {
        self.tracker
            .create_linked(self.tenant, request, actor, None, None, None)
            .await
    }

    pub async fn create_once(
        &self,
        request: &AuthorizationRequest,
        actor: &str,
        key: &str,
    ) -> Result<(String, bool)> {
        self.tracker
            .create_once_in(self.tenant, request, actor, key)
            .await
    }

    pub async fn body(&self, id: &str) -> Result<AuthorizationRequest> {
        self.record(id).await?;
        self.tracker.body(id).await
    }

    pub async fn show(&self, id: &str) -> Result<RecordView> {
        self.record(id).await?;
        self.tracker.show(id).await
    }

    pub async fn modify(
        &self,
        id: &str,
        request: &AuthorizationRequest,
        actor: &str,
    ) -> Result<i64> {
        self.record(id).await?;
        self.tracker.modify(id, request, actor).await
    }

    pub async fn send_to_review(&self, id: &str, actor: &str) -> Result<State> {
        self.record(id).await?;
        self.tracker.send_to_review(id, actor).await
    }

    pub async fn approve(&self, id: &str, actor: &str, reason: Option<String>) -> Result<State> {
        self.record(id).await?;
        self.tracker.approve(id, actor, reason).await
    }

    pub async fn deny(&self, id: &str, actor: &str, reason: &str) -> Result<State> {
        self.record(id).await?;
        self.tracker.deny(id, actor, reason).await
    }

    pub async fn cancel(&self, id: &str, actor: &str, reason: &str) -> Result<()> {
        self.record(id).await?;
        self.tracker.cancel(id, actor, reason).await
    }

    pub async fn submit_to(&self, id: &str, actor: &str, payer: &PayerConfig) -> Result<i64> {
        self.record(id).await?;
        self.tracker.submit_to(id, actor, payer).await
    }

    pub async fn record_service(
        &self,
        id: &str,
        service: &Delivered,
        actor: &str,
        corrects: Option<i64>,
    ) -> Result<Recorded> {
        self.record(id).await?;
        if let Some(c) = corrects {
            // The corrected service must be one of this record's.
            match self.tracker.store.service(c).await? {
                Some(s) if s.request_id == id => {}
                _ => return Err(TrackingError::NotFound(format!("no service {c} on {id}"))),
            }
        }
        self.tracker
            .record_service(id, service, actor, corrects)
            .await
    }

    /// This tenant's records, optionally of one status, oldest first.
    pub async fn list(&self, status: Option<State>) -> Result<Vec<RequestRow>> {
        Ok(self
            .tracker
            .store
            .list_requests(&RequestFilter {
                status: status.map(|s| s.as_str().to_owned()),
                tenant: Some(self.tenant.to_owned()),
                ..Default::default()
            })
            .await?)
    }

    async fn ids(&self) -> Result<HashSet<String>> {
        Ok(self.list(None).await?.into_iter().map(|r| r.id).collect())
    }

    /// Keeps the alerts about this tenant's records (and, with `unowned`, those about no
    /// record, such as unmatched answers).
    pub async fn filter_alerts(
        &self,
        alerts: Vec<AlertRow>,
        unowned: bool,
    ) -> Result<Vec<AlertRow>> {
        let ids = self.ids().await?;
        Ok(alerts
            .into_iter()
            .filter(|a| match &a.request_id {
                Some(id) => ids.contains(id),
                None => unowned,
            })
            .collect())
    }

    /// Keeps the outbox messages of this tenant's records.
    pub async fn filter_outbox(&self, rows: Vec<OutboxRow>) -> Result<Vec<OutboxRow>> {
        let ids = self.ids().await?;
        Ok(rows
            .into_iter()
            .filter(|r| r.request_id.as_ref().is_some_and(|id| ids.contains(id)))
            .collect())
    }

    /// A person sends a dead letter of this tenant's again.
    pub async fn outbox_retry(&self, outbox_id: i64, actor: &str) -> Result<()> {
        let mine = self
            .tracker
            .store
            .outbox_list(None)
            .await?
            .into_iter()
            .find(|r| r.id == outbox_id)
            .and_then(|r| r.request_id);
        match mine {
            Some(rid) if self.owns(&rid).await? => {
                self.tracker.outbox_retry(outbox_id, actor).await
            }
            _ => Err(TrackingError::NotFound(format!(
                "no outbox message {outbox_id}"
            ))),
        }
    }
}
