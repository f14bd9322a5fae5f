//! Who is calling: the tenant, the caller's name and role. Handlers take a `Principal` and pass
//! its tenant and name on; they never read credentials themselves.
//!
//! The `access::guard` middleware authenticates the request and puts the `Principal` into the
//! request extensions. With authentication off (`ApiConfig.auth`, for tests that build the
//! state themselves) a request acts as the `X-Actor` header's actor, or the server's default
//! actor, in the tenant `default`, with the role the actors table gives it.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::AppState;
use super::error::ApiError;

pub use crate::tracking::DEFAULT_TENANT;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Every record belongs to one tenant; a caller sees only its own.
    pub tenant: String,
    /// The actor name written in events and audit lines (never a secret).
    pub name: String,
    /// clinician, supervisor, finance, billing or admin.
    pub role: Option<String>,
}

impl FromRequestParts<Arc<AppState>> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        if let Some(p) = parts.extensions.get::<Principal>() {
            return Ok(p.clone());
        }
        if state.config.auth {
            return Err(ApiError::new(
                axum::http::StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "authentication required: send Authorization: Bearer <API key or access token>",
            ));
        }
        let name = super::api::actor_of(state, &parts.headers)?;
        Ok(Principal {
            tenant: DEFAULT_TENANT.to_owned(),
            name,
            role: None,
        })
    }
}
