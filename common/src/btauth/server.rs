//! axum integration: the [`require`] middleware, its [`Guard`] state, the [`Authorize`] hook and
//! the [`VerifiedCaller`] extractor.
//!
//! ```text
//! request ─▶ headers: shape, receiver, freshness ──401──▶ {"error": "<kind>", "message": …}
//!         ─▶ Authorize::authorize(claimed hotkey, method, path) ─403──▶ {"error": "forbidden", …}
//!         ─▶ body read up to the limit and timeout ─413/408─▶ {"error": "payload_too_large", …}
//!         ─▶ signature, replay ─────────────────────401
//!         ─▶ handler, with Caller and VerifiedCaller in the request extensions
//! ```
//! Header checks and the authorization of the hotkey the headers claim run before the body is
//! read, so neither malformed nor unregistered callers can make us buffer bodies (a claim is
//! proven by the signature over the body right after; a forged claim costs at most one body
//! limit and gets 401). The request is passed on with its body rebuilt from the verified bytes. Handlers that
//! extract `Json`/`Bytes` still apply axum's own `DefaultBodyLimit` (2 MiB): raise both together.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{FromRequestParts, OptionalFromRequestParts, OriginalUri, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{Method, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use super::{AuthError, Caller, Verifier, unix_now_ns};
use crate::keys::AccountId;

/// Default largest body accepted on signed routes: 2 MiB, axum's `DefaultBodyLimit`.
pub const DEFAULT_BODY_LIMIT: usize = 2 * 1024 * 1024;

/// Default time a signed request's body gets to arrive once its headers have: 30 s.
pub const DEFAULT_BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// A verified signer was refused by the [`Authorize`] hook (HTTP 403).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Forbidden {
    /// Why, for the caller: e.g. "hotkey is not registered on subnet 1".
    pub message: String,
}

impl Forbidden {
    /// A refusal with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// Decides whether an authenticated caller may use a route; runs after verification.
///
/// `path` is the request path without the query. Implement it with `async fn`:
/// ```
/// use subnet_common::btauth::{Authorize, Caller, Forbidden};
/// struct OnlyRegistered(std::collections::HashSet<subnet_common::keys::AccountId>);
/// impl Authorize for OnlyRegistered {
///     async fn authorize(&self, caller: &Caller, _: &http::Method, _: &str) -> Result<(), Forbidden> {
///         if self.0.contains(&caller.hotkey) { Ok(()) } else { Err(Forbidden::new("not registered")) }
///     }
/// }
/// ```
/// Plain closures `Fn(&Caller, &Method, &str) -> Result<(), Forbidden>` implement it too.
pub trait Authorize: Send + Sync + 'static {
    /// `Ok` lets the request through; `Err` answers 403 with its message.
    fn authorize(
        &self,
        caller: &Caller,
        method: &Method,
        path: &str,
    ) -> impl Future<Output = Result<(), Forbidden>> + Send;
}

impl<F> Authorize for F
where
    F: Fn(&Caller, &Method, &str) -> Result<(), Forbidden> + Send + Sync + 'static,
{
    fn authorize(
        &self,
        caller: &Caller,
        method: &Method,
        path: &str,
    ) -> impl Future<Output = Result<(), Forbidden>> + Send {
        std::future::ready(self(caller, method, path))
    }
}

/// Lets every correctly signed request through (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAnySigner;

impl Authorize for AllowAnySigner {
    async fn authorize(&self, _: &Caller, _: &Method, _: &str) -> Result<(), Forbidden> {
        Ok(())
    }
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Object-safe form of [`Authorize`], so [`Guard`] needs no type parameter.
trait DynAuthorize: Send + Sync {
    fn authorize_boxed<'a>(
        &'a self,
        caller: &'a Caller,
        method: &'a Method,
        path: &'a str,
    ) -> BoxFuture<'a, Result<(), Forbidden>>;
}

impl<A: Authorize> DynAuthorize for A {
    fn authorize_boxed<'a>(
        &'a self,
        caller: &'a Caller,
        method: &'a Method,
        path: &'a str,
    ) -> BoxFuture<'a, Result<(), Forbidden>> {
        Box::pin(self.authorize(caller, method, path))
    }
}

/// State of the [`require`] middleware: the verifier, the authorization hook, the body limit and
/// the clock. Cheap to clone.
#[derive(Clone)]
pub struct Guard {
    verifier: Arc<Verifier>,
    authorizer: Arc<dyn DynAuthorize>,
    body_limit: usize,
    body_timeout: std::time::Duration,
    clock: Arc<dyn Fn() -> u64 + Send + Sync>,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("receiver", &self.verifier.self_ss58())
            .field("body_limit", &self.body_limit)
            .finish_non_exhaustive()
    }
}

impl Guard {
    /// Verifies with `verifier`, lets any signer through, bodies up to [`DEFAULT_BODY_LIMIT`].
    pub fn new(verifier: Verifier) -> Self {
        Self::from_shared(Arc::new(verifier))
    }

    /// Like [`Guard::new`] with a verifier shared with other guards (one replay memory).
    pub fn from_shared(verifier: Arc<Verifier>) -> Self {
        Self {
            verifier,
            authorizer: Arc::new(AllowAnySigner),
            body_limit: DEFAULT_BODY_LIMIT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            clock: Arc::new(unix_now_ns),
        }
    }

    /// Runs `authorizer` after verification (403 when it refuses).
    pub fn with_authorizer(mut self, authorizer: impl Authorize) -> Self {
        self.authorizer = Arc::new(authorizer);
        self
    }

    /// Refuses bodies larger than `limit` bytes with 413.
    pub fn with_body_limit(mut self, limit: usize) -> Self {
        self.body_limit = limit;
        self
    }

    /// Answers 408 when the body has not fully arrived `timeout` after the headers (a registered
    /// caller trickling its body cannot hold a connection and its buffer for long).
    pub fn with_body_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.body_timeout = timeout;
        self
    }

    /// Reads the time (Unix ns) from `clock` instead of the system clock; for tests.
    pub fn with_clock(mut self, clock: impl Fn() -> u64 + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The verifier (its replay memory, its receiver address).
    pub fn verifier(&self) -> &Arc<Verifier> {
        &self.verifier
    }
}

/// The authenticated sender, extracted in handlers behind [`require`].
///
/// Extracting it on a route without the middleware is a wiring bug: it answers 500 and logs.
/// `Option<VerifiedCaller>` works on routes that are sometimes unsigned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedCaller(pub AccountId);

impl<S: Send + Sync> FromRequestParts<S> for VerifiedCaller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<Caller>() {
            Some(caller) => Ok(Self(caller.hotkey)),
            None => {
                tracing::error!(path = %parts.uri.path(), "VerifiedCaller used on a route without the btauth middleware");
                Err(error_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal server error",
                ))
            }
        }
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for VerifiedCaller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Caller>()
            .map(|caller| Self(caller.hotkey)))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let VerifiedCaller(_) =
            <VerifiedCaller as FromRequestParts<S>>::from_request_parts(parts, state).await?;
        parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
            error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal server error",
            )
        })
    }
}

/// The btauth/1 middleware: use with `axum::middleware::from_fn_with_state(guard, require)`,
/// preferably as a `route_layer` so unknown paths still answer 404.
///
/// On success the handler sees the request with its body intact and a [`Caller`] and a
/// [`VerifiedCaller`] in its extensions. Refusals answer JSON `{"error": code, "message": text}`:
/// 401 with the [`AuthError`] code, 413 `payload_too_large`, 400 `bad_request` when the body
/// cannot be read, 403 `forbidden` from the [`Authorize`] hook.
pub async fn require(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let target = parts
        .extensions
        .get::<OriginalUri>()
        .map_or(&parts.uri, |original| &original.0)
        .path_and_query()
        .map_or_else(|| "/".to_owned(), |pq| pq.as_str().to_owned());
    let path = target.split('?').next().unwrap_or("/").to_owned();

    let pending = match guard
        .verifier
        .check_headers(&parts.headers, (guard.clock)())
    {
        Ok(pending) => pending,
        Err(error) => return refuse(&parts.method, &path, &error),
    };
    // Authorize the hotkey the headers claim before reading anything more: an unregistered (or
    // otherwise refused) caller never makes us buffer a body. The signature over the body,
    // checked below, then proves the claim; a forged claim of a registered hotkey is refused
    // there, after at most `body_limit` bytes.
    let claimed = match pending.claimed() {
        Ok(claimed) => claimed,
        Err(error) => return refuse(&parts.method, &path, &error),
    };
    if let Err(forbidden) = guard
        .authorizer
        .authorize_boxed(&claimed, &parts.method, &path)
        .await
    {
        tracing::debug!(hotkey = %claimed.hotkey, %path, reason = %forbidden, "btauth caller forbidden");
        return error_response(StatusCode::FORBIDDEN, "forbidden", &forbidden.message);
    }
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > guard.body_limit as u64) {
        return too_large(guard.body_limit);
    }
    let read = tokio::time::timeout(
        guard.body_timeout,
        Limited::new(body, guard.body_limit).collect(),
    );
    let Ok(read) = read.await else {
        return error_response(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            &format!(
                "the request body did not arrive within {:?} of its headers",
                guard.body_timeout
            ),
        );
    };
    let bytes = match read {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => {
            return too_large(guard.body_limit);
        }
        Err(error) => {
            tracing::debug!(%error, "could not read a signed request's body");
            return error_response(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "could not read the request body",
            );
        }
    };
    let caller = match guard.verifier.check_body(
        pending,
        parts.method.as_str(),
        &target,
        &bytes,
        (guard.clock)(),
    ) {
        Ok(caller) => caller,
        Err(error) => return refuse(&parts.method, &path, &error),
    };
    debug_assert_eq!(
        caller.hotkey, claimed.hotkey,
        "the signature proves the claimed hotkey"
    );
    parts.extensions.insert(VerifiedCaller(caller.hotkey));
    parts.extensions.insert(caller);
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn refuse(method: &Method, path: &str, error: &AuthError) -> Response {
    tracing::debug!(%method, %path, code = error.code(), %error, "btauth refused a request");
    error_response(StatusCode::UNAUTHORIZED, error.code(), &error.to_string())
}

fn too_large(limit: usize) -> Response {
    error_response(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        &format!("request body is larger than {limit} bytes"),
    )
}

fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(serde_json::json!({ "error": code, "message": message })),
    )
        .into_response()
}
