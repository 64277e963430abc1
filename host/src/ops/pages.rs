//! The browser pages (publish, play, index), embedded in the binary so a fresh install serves
//! them with no files on disk.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

const INDEX: &str = include_str!("../../web/index.html");
const PUBLISH: &str = include_str!("../../web/publish.html");
const PLAY: &str = include_str!("../../web/play.html");
const CLIENT: &str = include_str!("../../web/whip-client.js");
const STYLE: &str = include_str!("../../web/style.css");

fn page(body: &'static str, content_type: &'static str) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, content_type)], body)
}

/// `/`, `/index.html`, `/publish.html`, `/play.html`, `/whip-client.js`, `/style.css`, `/healthz`.
pub fn routes() -> Router {
    const HTML: &str = "text/html; charset=utf-8";
    Router::new()
        .route("/", get(|| async { page(INDEX, HTML) }))
        .route("/index.html", get(|| async { page(INDEX, HTML) }))
        .route("/publish.html", get(|| async { page(PUBLISH, HTML) }))
        .route("/play.html", get(|| async { page(PLAY, HTML) }))
        .route(
            "/whip-client.js",
            get(|| async { page(CLIENT, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/style.css",
            get(|| async { page(STYLE, "text/css; charset=utf-8") }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
}
