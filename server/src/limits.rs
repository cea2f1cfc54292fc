//! Request bodies over a route's limit. The routes' `PayloadConfig`s refuse them (actix answers
//! 413 with a line of text, before reading the body when its length is declared); this
//! middleware turns that answer into MLflow's `{"error_code","message"}` shape and reads the
//! rest of the body first. Clients that send the whole body before they read the answer (the
//! mlflow client, requests, httpx) would otherwise see a reset connection instead of the 413:
//! the server closing a socket with unread data resets it.
//!
//! Draining is bounded: a body declared larger than [`DRAIN_LIMIT`], or a chunked one that
//! runs past it, is answered at once with `Connection: close`.

use std::cell::RefCell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header::{self, HeaderMap};
use actix_web::http::{ConnectionType, StatusCode};
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::{HttpMessage, HttpResponse};
use ferroflow_core::http::body_limit;
use futures_util::{Stream, StreamExt};
use serde_json::json;

/// At most this much of a refused body is read (and dropped) before the answer.
pub const DRAIN_LIMIT: u64 = 1 << 30;

/// The request's payload, read by the handler through [`Shared`] and kept here so what the
/// handler did not read can still be drained.
struct Shared(Rc<RefCell<Payload>>);

impl Stream for Shared {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.borrow_mut().poll_next_unpin(cx)
    }
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

fn has_body(req: &ServiceRequest) -> bool {
    match declared_length(req.headers()) {
        Some(n) => n > 0,
        None => req.headers().contains_key(header::TRANSFER_ENCODING),
    }
}

/// Reads and drops the rest of the body; false when it runs past [`DRAIN_LIMIT`] or fails
/// (the connection must then close).
async fn drain(payload: &Rc<RefCell<Payload>>) -> bool {
    let mut read = 0u64;
    loop {
        let chunk = std::future::poll_fn(|cx| payload.borrow_mut().poll_next_unpin(cx)).await;
        match chunk {
            None => return true,
            Some(Ok(bytes)) => {
                read += bytes.len() as u64;
                if read > DRAIN_LIMIT {
                    return false;
                }
            }
            Some(Err(_)) => return false,
        }
    }
}

pub async fn over_limit(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if !has_body(&req) {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let declared = declared_length(req.headers());
    let payload = Rc::new(RefCell::new(req.take_payload()));
    req.set_payload(Payload::from(Box::pin(Shared(payload.clone()))
        as Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>>));
    let mut res = next.call(req).await?;
    if res.status() != StatusCode::PAYLOAD_TOO_LARGE {
        return Ok(res.map_into_left_body());
    }
    let drained = match declared {
        Some(n) if n > DRAIN_LIMIT => false,
        _ => drain(&payload).await,
    };
    if !drained {
        res.response_mut()
            .head_mut()
            .set_connection_type(ConnectionType::Close);
    }
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return Ok(res.map_into_left_body());
    }
    let (req, _) = res.into_parts();
    let limit = body_limit(req.path());
    let size = declared.map_or_else(String::new, |n| format!(" ({n} bytes)"));
    let mut answer = HttpResponse::build(StatusCode::PAYLOAD_TOO_LARGE).json(json!({
        "error_code": "RESOURCE_LIMIT_EXCEEDED",
        "message": format!(
            "The request body{size} is larger than {} accepts: at most {limit} bytes ({} MiB).",
            req.path(),
            limit >> 20
        ),
    }));
    if !drained {
        answer.head_mut().set_connection_type(ConnectionType::Close);
    }
    Ok(ServiceResponse::new(req, answer).map_into_right_body())
}
