//! The HTTP API: Toxiproxy's routes, status codes and JSON bodies.

use crate::error::ApiError;
use crate::registry::Registry;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE, USER_AGENT};
use hyper::{Method, Request, Response, StatusCode};
use percent_encoding::percent_decode_str;
use serde_json::{json, Value};
use std::convert::Infallible;
use std::sync::Arc;
use tokio::sync::Mutex;

/// API calls are applied one at a time, as Toxiproxy's collection lock does.
pub type SharedRegistry = Arc<Mutex<Registry>>;

const MAX_BODY_BYTES: usize = 1024 * 1024;
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "-noxious-1.0.4");

type Answer = Response<Full<Bytes>>;

pub async fn handle(request: Request<Incoming>, registry: SharedRegistry) -> Result<Answer, Infallible> {
    // Toxiproxy refuses browsers so that a web page cannot drive the API (a CSRF guard).
    let from_browser = request
        .headers()
        .get(USER_AGENT)
        .and_then(|agent| agent.to_str().ok())
        .is_some_and(|agent| agent.starts_with("Mozilla/"));
    if from_browser {
        return Ok(text(StatusCode::FORBIDDEN, "User agent not allowed\n"));
    }
    let method = request.method().clone();
    let segments: Vec<String> = request
        .uri()
        .path()
        .split('/')
        .filter(|segment| !segment.is_empty())
        .map(|segment| percent_decode_str(segment).decode_utf8_lossy().into_owned())
        .collect();
    let body = match Limited::new(request.into_body(), MAX_BODY_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(err) => return Ok(error(&ApiError::bad_body(err))),
    };
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    Ok(route(&method, &segments, &body, &registry).await)
}

async fn route(method: &Method, segments: &[&str], body: &[u8], registry: &SharedRegistry) -> Answer {
    let is = |expected: &Method| method == expected;
    let update = is(&Method::POST) || is(&Method::PATCH);
    let outcome = match segments {
        ["version"] if is(&Method::GET) => Ok(version()),
        ["reset"] if is(&Method::POST) => registry.lock().await.reset().await.map(|()| no_content()),
        ["populate"] if is(&Method::POST) => Ok(populate(registry, body).await),
        ["proxies"] if is(&Method::GET) => Ok(ok_json(StatusCode::OK, &registry.lock().await.list())),
        ["proxies"] if is(&Method::POST) => {
            let created = registry.lock().await.create(body).await;
            created.map(|shown| ok_json(StatusCode::CREATED, &shown))
        }
        ["proxies", proxy] if is(&Method::GET) => {
            let shown = registry.lock().await.show(proxy);
            shown.map(|shown| ok_json(StatusCode::OK, &shown))
        }
        ["proxies", proxy] if update => {
            let updated = registry.lock().await.update(proxy, body).await;
            updated.map(|shown| ok_json(StatusCode::OK, &shown))
        }
        ["proxies", proxy] if is(&Method::DELETE) => {
            registry.lock().await.delete(proxy).await.map(|()| no_content())
        }
        ["proxies", proxy, "toxics"] if is(&Method::GET) => {
            let listed = registry.lock().await.toxics(proxy);
            listed.map(|shown| ok_json(StatusCode::OK, &shown))
        }
        // Toxiproxy answers a created toxic with 200, not 201.
        ["proxies", proxy, "toxics"] if is(&Method::POST) => {
            let added = registry.lock().await.add_toxic(proxy, body).await;
            added.map(|shown| ok_json(StatusCode::OK, &shown))
        }
        ["proxies", proxy, "toxics", toxic] if is(&Method::GET) => {
            let shown = registry.lock().await.toxic(proxy, toxic);
            shown.map(|shown| ok_json(StatusCode::OK, &shown))
        }
        ["proxies", proxy, "toxics", toxic] if update => {
            let updated = registry.lock().await.update_toxic(proxy, toxic, body).await;
            updated.map(|shown| ok_json(StatusCode::OK, &shown))
        }
        ["proxies", proxy, "toxics", toxic] if is(&Method::DELETE) => registry
            .lock()
            .await
            .delete_toxic(proxy, toxic)
            .await
            .map(|()| no_content()),
        ["version"]
        | ["reset"]
        | ["populate"]
        | ["proxies"]
        | ["proxies", _]
        | ["proxies", _, "toxics"]
        | ["proxies", _, "toxics", _] => Err(ApiError::method_not_allowed()),
        _ => Err(ApiError::not_found()),
    };
    outcome.unwrap_or_else(|err| error(&err))
}

fn version() -> Answer {
    let mut answer = Response::new(Full::new(Bytes::from(format!(
        "{{\"version\": \"{VERSION}\"}}\n"
    ))));
    answer.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=utf-8"),
    );
    answer
}

/// 201 with `{"proxies": [...]}`, or the error's status with the error fields beside the proxies
/// created before it.
async fn populate(registry: &SharedRegistry, body: &[u8]) -> Answer {
    let (proxies, failure) = registry.lock().await.populate(body).await;
    match failure {
        None => ok_json(StatusCode::CREATED, &json!({"proxies": proxies})),
        Some(err) => {
            eprintln!("toxiproxy-server: populate failed: {}", err.message);
            let shown = json!({"error": err.message, "status": err.status, "proxies": proxies});
            ok_json(status_code(err.status), &shown)
        }
    }
}

fn status_code(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn ok_json(status: StatusCode, value: &Value) -> Answer {
    let mut answer = Response::new(Full::new(Bytes::from(value.to_string())));
    *answer.status_mut() = status;
    answer
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    answer
}

fn error(err: &ApiError) -> Answer {
    ok_json(status_code(err.status), &err.to_json())
}

fn no_content() -> Answer {
    let mut answer = Response::new(Full::new(Bytes::new()));
    *answer.status_mut() = StatusCode::NO_CONTENT;
    answer
}

fn text(status: StatusCode, message: &'static str) -> Answer {
    let mut answer = Response::new(Full::new(Bytes::from_static(message.as_bytes())));
    *answer.status_mut() = status;
    answer.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    answer
}
