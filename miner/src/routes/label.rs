//! `/label`: the labeler web form's handlers (the label track itself is [`crate::labeling`]).
//!
//! - `GET /label/login?token=…` shows a "Sign in" button (so link previews cannot spend the token);
//!   `POST /label/login` trades the one-time token for a session: an `HttpOnly; SameSite=Strict`
//!   cookie whose value is stored only as a hash.
//! - `GET /label` shows the next open task (deadline not passed) with progress and the deadline.
//!   Each rendering issues a one-time CSRF token bound to the session and the task shown.
//! - `POST /label/answer` stores the answer once per (task, labeler) and redirects to `/label`
//!   (post/redirect/get, so a reload never re-submits). A reused token or a double submit gets
//!   a page saying so and changes nothing. Seconds spent are server time from the first showing.
//!
//! Every problem (no session, expired session, bad token) is a page saying what to do next.

use axum::{
    Form,
    extract::{Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use crate::{
    db::{self, AnswerOutcome, SessionLookup},
    error::ApiError,
    labeling::{
        Labeling, MAX_NOTE_CHARS, NO_LABELS, SESSION_COOKIE, new_secret,
        pages::{
            DonePage, LoginPage, MessagePage, NEW_LINK_HINT, TaskPage, approx_duration, render,
        },
    },
    metrics,
    state::AppState,
};

/// Query of `GET /label/login` and form of `POST /label/login`.
#[derive(Debug, Deserialize)]
pub struct LoginToken {
    /// The one-time token from the link.
    pub token: Option<String>,
}

/// Query of `GET /label`.
#[derive(Debug, Deserialize)]
pub struct TaskQuery {
    /// Set after a saved answer, to say so.
    pub saved: Option<String>,
}

/// Form of `POST /label/answer`. Every field is optional so that a bad post gets our page, not a
/// framework rejection.
#[derive(Debug, Deserialize)]
pub struct AnswerForm {
    /// The form's one-time CSRF token.
    pub csrf: Option<String>,
    /// `a`, `b` or `tie`.
    pub choice: Option<String>,
    /// Optional note.
    pub note: Option<String>,
}

/// The 404 of a miner without a database.
fn no_labels() -> Response {
    ApiError::NotFound(NO_LABELS.into()).into_response()
}

/// A database failure: logged once, a generic page for the labeler.
fn internal(e: db::DbError) -> Response {
    tracing::error!(error = %e, "labeler form: database failure");
    MessagePage::new(
        "Something went wrong",
        "The miner could not reach its database. Nothing was saved.",
        "Try again in a minute.",
    )
    .with_link("/label", "Try again")
    .respond(StatusCode::INTERNAL_SERVER_ERROR)
}

/// `GET /label/login?token=…`.
pub async fn login_page(
    State(state): State<AppState>,
    Query(query): Query<LoginToken>,
) -> Response {
    if state.labeling.is_none() {
        return no_labels();
    }
    match query.token.filter(|t| !t.is_empty()) {
        Some(token) => render(&LoginPage { token }),
        None => MessagePage::new(
            "No sign-in token",
            "This address lacks its token: open the whole link you were sent.",
            NEW_LINK_HINT,
        )
        .respond(StatusCode::BAD_REQUEST),
    }
}

/// Whether a browser's `Origin` header, when sent, names this host (another site must not sign a
/// labeler into someone else's session: login CSRF).
pub fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin_host = origin.split_once("://").map(|(_, rest)| rest);
    origin_host.is_some() && origin_host == host
}

/// `POST /label/login`: spends the token, starts a session, redirects to `/label`.
pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<LoginToken>,
) -> Response {
    let Some(labeling) = state.labeling.as_deref() else {
        return no_labels();
    };
    if !same_origin(&headers) {
        return MessagePage::new(
            "Sign in from the link itself",
            "This sign-in was sent from another site, so it was refused.",
            NEW_LINK_HINT,
        )
        .respond(StatusCode::FORBIDDEN);
    }
    let token = form.token.unwrap_or_default();
    let session = new_secret();
    let ttl = labeling.config.session_ttl.as_secs();
    let redeemed = db::redeem_token(
        &labeling.pool,
        &db::hash_secret(&token),
        &db::hash_secret(&session),
        i64::try_from(ttl).unwrap_or(i64::MAX),
    )
    .await;
    match redeemed {
        Ok(Some(name)) => {
            tracing::info!(labeler = %name, "labeler signed in");
            let cookie = format!(
                "{SESSION_COOKIE}={session}; Path=/label; HttpOnly; SameSite=Strict; Max-Age={ttl}"
            );
            let mut response = Redirect::to("/label").into_response();
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            response
        }
        Ok(None) => MessagePage::new(
            "This sign-in link does not work",
            "The link is unknown, was used already, or has expired.",
            NEW_LINK_HINT,
        )
        .respond(StatusCode::UNAUTHORIZED),
        Err(e) => internal(e),
    }
}

/// The session cookie's value, if the request carries one.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value)
        .filter(|v| !v.is_empty())
}

/// Why a request has no usable session.
enum NoSession {
    /// No cookie.
    Missing,
    /// The session's time is up.
    Expired,
    /// Unknown session (forged, ended, or its labeler disabled).
    Unknown,
}

impl NoSession {
    /// The page explaining it, with how to get a new link.
    fn respond(self) -> Response {
        let (title, message) = match self {
            Self::Missing => (
                "You are not signed in",
                "This page needs a sign-in; open the sign-in link you were sent.",
            ),
            Self::Expired => (
                "Your session has expired",
                "You were signed in too long ago; sign in again with a new link.",
            ),
            Self::Unknown => (
                "Your session is not valid",
                "This browser's session is unknown to the miner (it may have been ended by the operator).",
            ),
        };
        MessagePage::new(title, message, NEW_LINK_HINT).respond(StatusCode::UNAUTHORIZED)
    }
}

/// The hash of the session cookie's value (what the database knows the session by). Whether
/// the session is live is checked by the statement that does the request's work.
fn session_hash(headers: &HeaderMap) -> Result<String, NoSession> {
    session_cookie(headers)
        .map(db::hash_secret)
        .ok_or(NoSession::Missing)
}

/// `GET /label`: the next open task, or the "all done" page.
pub async fn task_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<TaskQuery>,
) -> Response {
    let Some(labeling) = state.labeling.as_deref() else {
        return no_labels();
    };
    let session = match session_hash(&headers) {
        Ok(s) => s,
        Err(problem) => return problem.respond(),
    };
    match show_task(labeling, &session, query.saved.is_some()).await {
        Ok(r) => r,
        Err(e) => internal(e),
    }
}

async fn show_task(
    labeling: &Labeling,
    session_hash: &str,
    saved: bool,
) -> Result<Response, db::DbError> {
    let block = labeling.clock.current_block();
    let csrf = new_secret();
    let (name, form) =
        match db::next_form(&labeling.pool, session_hash, &db::hash_secret(&csrf), block).await? {
            SessionLookup::Valid { name, value } => (name, value),
            SessionLookup::Expired => return Ok(NoSession::Expired.respond()),
            SessionLookup::Unknown => return Ok(NoSession::Unknown.respond()),
        };
    let db::NextForm { done, total, task } = form;
    let Some(task) = task else {
        return Ok(no_store(render(&DonePage {
            labeler: name,
            done,
            total,
            saved,
        })));
    };
    let blocks_left = block.map(|b| {
        u64::try_from(task.deadline_block)
            .unwrap_or(0)
            .saturating_sub(b)
    });
    let block_time = labeling
        .clock
        .block_time()
        .unwrap_or(labeling.config.block_time);
    let seconds_left = blocks_left.map_or_else(String::new, |blocks| {
        approx_duration(
            u64::try_from(block_time.as_millis().saturating_mul(u128::from(blocks)) / 1000)
                .unwrap_or(u64::MAX),
        )
    });
    Ok(no_store(render(&TaskPage {
        labeler: name,
        done,
        total,
        deadline_block: task.deadline_block,
        blocks_left,
        seconds_left,
        task_id: task.task_id,
        prompt: task.prompt,
        a: task.a,
        b: task.b,
        csrf,
        max_note: MAX_NOTE_CHARS,
        saved,
    })))
}

/// Pages with one-time tokens must not come back from a cache.
fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `POST /label/answer`.
pub async fn answer(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<AnswerForm>,
) -> Response {
    let Some(labeling) = state.labeling.as_deref() else {
        return no_labels();
    };
    let session = match session_hash(&headers) {
        Ok(s) => s,
        Err(problem) => return problem.respond(),
    };
    let back = ("/label", "Go to the next task");
    let verdict = match form.choice.as_deref().and_then(db::Verdict::parse) {
        Some(v) => v,
        None => {
            return MessagePage::new(
                "No choice received",
                "The answer must be A, B, Tie, Both bad or Skip. Nothing was saved.",
                "",
            )
            .with_link(back.0, back.1)
            .respond(StatusCode::BAD_REQUEST);
        }
    };
    let note = form.note.unwrap_or_default();
    if note.chars().count() > MAX_NOTE_CHARS {
        return MessagePage::new(
            "Note too long",
            &format!("Notes may have at most {MAX_NOTE_CHARS} characters. Nothing was saved."),
            "Go back, shorten the note and answer again.",
        )
        .respond(StatusCode::BAD_REQUEST);
    }
    let token_hash = db::hash_secret(form.csrf.as_deref().unwrap_or_default());
    let outcome = db::submit_answer(
        &labeling.pool,
        &db::Answer {
            token_hash: &token_hash,
            session_hash: &session,
            verdict,
            note: note.trim(),
            current_block: labeling.clock.current_block(),
        },
    )
    .await;
    let (name, outcome) = match outcome {
        Ok(SessionLookup::Valid { name, value }) => (name, value),
        Ok(SessionLookup::Expired) => return NoSession::Expired.respond(),
        Ok(SessionLookup::Unknown) => return NoSession::Unknown.respond(),
        Err(e) => return internal(e),
    };
    metrics::record_label_answer(match outcome {
        AnswerOutcome::Stored { .. } => "stored",
        AnswerOutcome::TokenUsed => "token_used",
        AnswerOutcome::TokenUnknown => "token_unknown",
        AnswerOutcome::AlreadyLabeled => "already_labeled",
        AnswerOutcome::DeadlinePassed => "deadline_passed",
    });
    let (title, message, status) = match outcome {
        AnswerOutcome::Stored { seconds } => {
            tracing::info!(labeler = %name, verdict = verdict.as_str(), seconds, "label stored");
            return Redirect::to("/label?saved=1").into_response();
        }
        AnswerOutcome::TokenUsed => (
            "This answer was already submitted",
            "This form was sent before (a second click, a resubmission, or an old page). Your first answer counts; nothing was changed.",
            StatusCode::CONFLICT,
        ),
        AnswerOutcome::TokenUnknown => (
            "This form is not valid",
            "The form's security token does not belong to your session, so nothing was saved.",
            StatusCode::FORBIDDEN,
        ),
        AnswerOutcome::AlreadyLabeled => (
            "You already answered this task",
            "An answer from you for this task is stored already (perhaps from another tab). Nothing was changed.",
            StatusCode::CONFLICT,
        ),
        AnswerOutcome::DeadlinePassed => (
            "Not counted: the deadline has passed",
            "This task's deadline has passed, so your answer was not stored and will not count. The next task is waiting.",
            StatusCode::GONE,
        ),
    };
    MessagePage::new(title, message, "")
        .with_link(back.0, back.1)
        .respond(status)
}

#[cfg(test)]
mod tests {
    use subnet_common::protocol::Choice;

    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; miner_label_session=abc; b=2"),
        );
        assert_eq!(session_cookie(&headers), Some("abc"));
    }

    #[test]
    fn an_empty_or_missing_cookie_is_no_session() {
        let mut headers = HeaderMap::new();
        assert_eq!(session_cookie(&headers), None);
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("miner_label_session="),
        );
        assert_eq!(session_cookie(&headers), None);
    }

    #[test]
    fn only_a_missing_or_same_origin_may_sign_in() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("miner:8091"));
        assert!(same_origin(&headers));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://miner:8091"),
        );
        assert!(same_origin(&headers));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(!same_origin(&headers));
        headers.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(!same_origin(&headers));
    }

    #[test]
    fn choices_parse_from_the_form_values() {
        assert_eq!(db::parse_choice("tie"), Some(Choice::Tie));
    }
}
