//! The labeler form's pages: askama templates from `miner/templates/label/`. Every value is
//! HTML-escaped by askama, so prompts and answers show as text whatever they contain.

use askama::Template;
use axum::{
    http::StatusCode,
    response::{Html, IntoResponse, Response},
};

/// One task to answer.
#[derive(Debug, Template)]
#[template(path = "label/task.html")]
pub struct TaskPage {
    /// Signed-in labeler.
    pub labeler: String,
    /// Tasks answered in open batches.
    pub done: i64,
    /// Tasks in open batches.
    pub total: i64,
    /// The batch's deadline.
    pub deadline_block: i64,
    /// Blocks until the deadline, when the current block is known.
    pub blocks_left: Option<u64>,
    /// The same, approximately, as a duration ("≈ 4 min").
    pub seconds_left: String,
    /// Validator's task id: not shown, an attribute of the form for tools (the simulation).
    pub task_id: String,
    /// The prompt.
    pub prompt: String,
    /// Answer A.
    pub a: String,
    /// Answer B.
    pub b: String,
    /// One-time CSRF token of the answer form.
    pub csrf: String,
    /// Longest note accepted, in characters.
    pub max_note: usize,
    /// Whether the previous answer was just saved.
    pub saved: bool,
}

/// Nothing left to answer.
#[derive(Debug, Template)]
#[template(path = "label/done.html")]
pub struct DonePage {
    /// Signed-in labeler.
    pub labeler: String,
    /// Tasks answered in open batches.
    pub done: i64,
    /// Tasks in open batches.
    pub total: i64,
    /// Whether the previous answer was just saved.
    pub saved: bool,
}

/// The page a sign-in link opens: a button, so that link previews cannot spend the token.
#[derive(Debug, Template)]
#[template(path = "label/login.html")]
pub struct LoginPage {
    /// The one-time token from the link.
    pub token: String,
}

/// A problem explained to the labeler, with what to do next.
#[derive(Debug, Template)]
#[template(path = "label/message.html")]
pub struct MessagePage {
    /// Heading.
    pub title: String,
    /// What happened.
    pub message: String,
    /// What to do about it (may be empty).
    pub hint: String,
    /// A link to go on with (empty: none).
    pub link_href: String,
    /// Its text.
    pub link_text: String,
}

/// How to get a new sign-in link, for every page about a missing or bad session.
pub const NEW_LINK_HINT: &str = "Ask the miner's operator for a new sign-in link: they run \
`miner labelers link YOUR_NAME` and send you the link it prints. Each link works once.";

impl MessagePage {
    /// A message page with no link.
    pub fn new(title: &str, message: &str, hint: &str) -> Self {
        Self {
            title: title.into(),
            message: message.into(),
            hint: hint.into(),
            link_href: String::new(),
            link_text: String::new(),
        }
    }

    /// Adds a link to go on with.
    pub fn with_link(mut self, href: &str, text: &str) -> Self {
        self.link_href = href.into();
        self.link_text = text.into();
        self
    }

    /// Rendered with `status`.
    pub fn respond(&self, status: StatusCode) -> Response {
        let mut response = render(self);
        if response.status() == StatusCode::OK {
            *response.status_mut() = status;
        }
        response
    }
}

/// Renders a page as `text/html`; a rendering failure is logged and answered 500 (plain text).
pub fn render(page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "labeler page rendering failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

/// "≈ 90 s", "≈ 4 min", "≈ 2 h 5 min".
pub fn approx_duration(seconds: u64) -> String {
    match seconds {
        s if s < 120 => format!("≈ {s} s"),
        s if s < 3600 => format!("≈ {} min", s / 60),
        s => format!("≈ {} h {} min", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(approx_duration(36), "≈ 36 s");
        assert_eq!(approx_duration(600), "≈ 10 min");
        assert_eq!(approx_duration(7500), "≈ 2 h 5 min");
    }

    #[test]
    fn task_text_is_escaped() {
        let page = TaskPage {
            labeler: "ann".into(),
            done: 0,
            total: 1,
            deadline_block: 10,
            blocks_left: Some(3),
            seconds_left: approx_duration(36),
            task_id: "t".into(),
            prompt: "<script>alert(1)</script>".into(),
            a: "a & b".into(),
            b: "\"quoted\"".into(),
            csrf: "x".into(),
            max_note: 10,
            saved: false,
        };
        let html = page.render().expect("render");
        assert!(
            html.contains("&#60;script&#62;alert(1)&#60;/script&#62;")
                || html.contains("&lt;script&gt;"),
            "{html}"
        );
        assert!(!html.contains("<script>alert(1)"));
        assert!(html.contains("3 blocks left (≈ 36 s)"));
    }
}
