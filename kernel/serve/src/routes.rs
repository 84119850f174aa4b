//! The HTTP surface. Raters authenticate with their token as a bearer header (the page takes it
//! from its URL), never a cookie: a cross-site page cannot set that header without a CORS
//! preflight this server never grants, and a cross-site form cannot send JSON, so forged
//! submissions fail before they reach the campaign. The admin API takes the admin token the
//! same way.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next as Middleware};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use sandwich_core::feedback::{Campaign, Next, Submitted};
use serde::Deserialize;
use serde_json::json;

use crate::page;

/// The largest request body accepted (a free-text answer is at most 10,000 characters).
pub(crate) const MAX_BODY: usize = 64 * 1024;

#[derive(Clone)]
struct AppState {
    campaign: Arc<Campaign>,
    page: Arc<String>,
    /// The origin (`scheme://host[:port]`) of the public URL, when behind a proxy that
    /// rewrites `Host`.
    public_origin: Option<Arc<String>>,
}

pub(crate) fn router(campaign: Arc<Campaign>, public_url: Option<&str>) -> Router {
    let page = Arc::new(page::render(&campaign));
    let public_origin = public_url.map(|u| {
        let (scheme, rest) = u.split_once("://").unwrap_or(("http", u));
        Arc::new(format!(
            "{scheme}://{}",
            rest.split('/').next().unwrap_or("")
        ))
    });
    Router::new()
        .route("/r/{token}", get(rater_page))
        .route(
            "/assets/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", page::APP_JS) }),
        )
        .route(
            "/assets/app.css",
            get(|| async { asset("text/css; charset=utf-8", page::APP_CSS) }),
        )
        .route("/api/next", get(next))
        .route("/api/judgments", post(submit))
        .route("/api/admin/judgments", get(admin_judgments))
        .route("/api/admin/quality", get(admin_quality))
        .route("/healthz", get(|| async { "ok" }))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn(headers))
        .with_state(AppState {
            campaign,
            page,
            public_origin,
        })
}

/// Headers on every response: no framing, no sniffing, scripts and styles from this server
/// only, and no referrer (the page's URL holds the rater's token).
async fn headers(req: Request, next: Middleware) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    let set = [
        ("content-security-policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'none'; base-uri 'none'"),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("cache-control", "no-store"),
    ];
    for (k, v) in set {
        h.insert(k, HeaderValue::from_static(v));
    }
    res
}

fn asset(kind: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({"status": code, "message": message}))).into_response()
}

fn bearer(h: &HeaderMap) -> Option<&str> {
    h.get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// A browser names the page that sent a request in `Origin`: it must be this server — as the
/// request's `Host` names it, or as its public URL does behind a proxy. (Defence in depth: a
/// cross-site page cannot send the bearer token anyway.)
fn cross_site(h: &HeaderMap, public_origin: Option<&str>) -> bool {
    let Some(origin) = h.get(header::ORIGIN) else {
        return false;
    };
    let origin = origin.to_str().unwrap_or("");
    if public_origin == Some(origin) {
        return false;
    }
    let origin_host = origin.split_once("://").map(|(_, rest)| rest);
    let named = |name: &str| h.get(name).and_then(|v| v.to_str().ok());
    origin_host.is_none_or(|o| named("host") != Some(o) && named("x-forwarded-host") != Some(o))
}

fn internal(e: impl std::fmt::Display) -> Response {
    eprintln!("sandwich serve: {e}");
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "error",
        "the server could not complete the request",
    )
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Response> {
    tokio::task::spawn_blocking(f).await.map_err(internal)
}

async fn rater_page(State(s): State<AppState>, Path(token): Path<String>) -> Response {
    let c = s.campaign.clone();
    match blocking(move || c.is_rater(&token)).await {
        Ok(Ok(true)) => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            Body::from(s.page.as_str().to_owned()),
        )
            .into_response(),
        Ok(Ok(false)) => error(StatusCode::NOT_FOUND, "unknown", "no such page"),
        Ok(Err(e)) => internal(e),
        Err(r) => r,
    }
}

async fn next(State(s): State<AppState>, h: HeaderMap) -> Response {
    let Some(token) = bearer(&h).map(str::to_owned) else {
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a rater token is required",
        );
    };
    let c = s.campaign.clone();
    match blocking(move || c.next(&token)).await {
        Ok(Ok(Some(n))) => {
            let body = match n {
                Next::Item(a) => json!({"status": "item", "item": a}),
                other => serde_json::to_value(other).unwrap_or_default(),
            };
            Json(body).into_response()
        }
        Ok(Ok(None)) => error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "unknown rater token",
        ),
        Ok(Err(e)) => internal(e),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Submission {
    item: String,
    answer: serde_json::Value,
    /// The client's idempotency key: a retried submission carries the same key and is written
    /// once.
    key: String,
}

async fn submit(
    State(s): State<AppState>,
    h: HeaderMap,
    body: Result<Json<Submission>, axum::extract::rejection::JsonRejection>,
) -> Response {
    if cross_site(&h, s.public_origin.as_deref().map(String::as_str)) {
        return error(
            StatusCode::FORBIDDEN,
            "cross_site",
            "requests must come from this server's pages",
        );
    }
    let Some(token) = bearer(&h).map(str::to_owned) else {
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a rater token is required",
        );
    };
    let Json(sub) = match body {
        Ok(b) => b,
        Err(e) => return error(e.status(), "bad_request", &e.body_text()),
    };
    if sub.key.is_empty() || sub.key.len() > 128 || !sub.key.bytes().all(|b| b.is_ascii_graphic()) {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "key: expected 1 to 128 printable ASCII characters",
        );
    }
    let c = s.campaign.clone();
    let result = blocking(move || c.submit(&token, &sub.item, &sub.answer, &sub.key)).await;
    let outcome = match result {
        Ok(Ok(Some(o))) => o,
        Ok(Ok(None)) => {
            return error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "unknown rater token",
            )
        }
        Ok(Err(e)) => return internal(e),
        Err(r) => return r,
    };
    let status = match &outcome {
        Submitted::Saved { .. } => StatusCode::OK,
        Submitted::NotAssigned | Submitted::Paused => StatusCode::FORBIDDEN,
        Submitted::AlreadyJudged | Submitted::KeyReused | Submitted::Expired => {
            StatusCode::CONFLICT
        }
        Submitted::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
    };
    (status, Json(outcome)).into_response()
}

fn admin(s: &AppState, h: &HeaderMap) -> Option<Response> {
    match bearer(h) {
        Some(t) if s.campaign.is_admin(t) => None,
        _ => Some(error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the admin token is required",
        )),
    }
}

async fn admin_table(s: AppState, h: HeaderMap, quality: bool) -> Response {
    if let Some(r) = admin(&s, &h) {
        return r;
    }
    let c = s.campaign.clone();
    let table = blocking(move || if quality { c.quality() } else { c.judgments() }).await;
    match table {
        Ok(Ok(mut df)) => {
            let mut buf = Vec::new();
            use polars::prelude::SerWriter;
            match polars::prelude::JsonWriter::new(&mut buf)
                .with_json_format(polars::prelude::JsonFormat::Json)
                .finish(&mut df)
            {
                Ok(()) => ([(header::CONTENT_TYPE, "application/json")], buf).into_response(),
                Err(e) => internal(e),
            }
        }
        Ok(Err(e)) => internal(e),
        Err(r) => r,
    }
}

async fn admin_judgments(State(s): State<AppState>, h: HeaderMap) -> Response {
    admin_table(s, h, false).await
}

async fn admin_quality(State(s): State<AppState>, h: HeaderMap) -> Response {
    admin_table(s, h, true).await
}
