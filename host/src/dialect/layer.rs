//! The WHEP layer extension as Live777 serves it (specs/dialects.md §2.1), on both session
//! families: `GET …/session/{stream}/{id}/layer` lists the publisher's simulcast layers as
//! `[{"encodingId": rid}]`, `POST` `{"encodingId": rid}` switches the subscriber to one (from
//! its next keyframe), `DELETE` stops its video. The session URL is the capability, as for the
//! session's PATCH and DELETE.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};

use crate::gate::{Gate, GateError};
use crate::media::{LayerChoice, MediaError};

pub fn routes(gate: Gate) -> Router {
    let layer = || get(list).post(select).delete(video_off);
    Router::new()
        .route("/session/{stream}/{session}/layer", layer())
        .route("/v1/session/{stream}/{session}/layer", layer())
        .with_state(gate)
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Encoding {
    encoding_id: String,
}

/// A layer request that failed: a status and a short text, as the session routes answer.
struct LayerError(StatusCode, String);

impl From<GateError> for LayerError {
    fn from(e: GateError) -> Self {
        let status = match &e {
            GateError::StreamNotFound(_)
            | GateError::Media(MediaError::SessionNotFound(_) | MediaError::RoomNotFound(_)) => {
                StatusCode::NOT_FOUND
            }
            GateError::Media(MediaError::UnusableOffer(_)) => StatusCode::BAD_REQUEST,
            GateError::Denied(d) => StatusCode::from_u16(d.status).unwrap_or(StatusCode::FORBIDDEN),
            _ => StatusCode::SERVICE_UNAVAILABLE,
        };
        Self(status, e.to_string())
    }
}

impl IntoResponse for LayerError {
    fn into_response(self) -> Response {
        (self.0, format!("{}\n", self.1)).into_response()
    }
}

async fn list(
    State(gate): State<Gate>,
    Path((stream, session)): Path<(String, String)>,
) -> Result<Json<Vec<Encoding>>, LayerError> {
    let rids = gate.session_layers(&stream, &session).await?;
    Ok(Json(
        rids.into_iter()
            .map(|encoding_id| Encoding { encoding_id })
            .collect(),
    ))
}

async fn select(
    State(gate): State<Gate>,
    Path((stream, session)): Path<(String, String)>,
    body: Bytes,
) -> Result<StatusCode, LayerError> {
    let wanted: Encoding = serde_json::from_slice(&body).map_err(|e| {
        LayerError(
            StatusCode::BAD_REQUEST,
            format!("body must be {{\"encodingId\": \"<rid>\"}}: {e}"),
        )
    })?;
    gate.select_layer(&stream, &session, LayerChoice::Rid(wanted.encoding_id))
        .await?;
    Ok(StatusCode::OK)
}

async fn video_off(
    State(gate): State<Gate>,
    Path((stream, session)): Path<(String, String)>,
) -> Result<StatusCode, LayerError> {
    gate.select_layer(&stream, &session, LayerChoice::Off)
        .await?;
    Ok(StatusCode::OK)
}
