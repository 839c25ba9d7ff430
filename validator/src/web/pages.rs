//! HTML pages, rendered with askama templates from `validator/templates/` (every value is
//! HTML-escaped by the engine; only the SVG charts, drawn here by plotters, go in unescaped).

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use super::charts::{self, Series};
use super::error::ApiError;
use super::views::{self, RankedRow};
use super::{ChainStatus, DashboardState};
use crate::db::{MinerEpochRow, WeightCommitRecord};

/// A page handler's error: the HTML error page with the API error's status.
pub struct PageError(ApiError);

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        Self(e)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        self.0.log();
        let (status, _) = self.0.status_and_code();
        let message = match &self.0 {
            ApiError::NotFound(m) => m.clone(),
            _ => "Internal error; see the validator's log.".to_string(),
        };
        not_found_page(status, &message)
    }
}

fn render(template: &impl Template) -> Result<Html<String>, PageError> {
    template
        .render()
        .map(Html)
        .map_err(|e| PageError(ApiError::Render(e.to_string())))
}

/// `x` with `digits` decimals; `–` for none or a non-finite value.
fn num(x: Option<f64>, digits: usize) -> String {
    match x {
        Some(v) if v.is_finite() => format!("{v:.digits$}"),
        _ => "–".to_string(),
    }
}

/// Rao as TAO (`1 TAO = 10⁹ rao`).
fn tao(rao: Option<u64>) -> String {
    rao.map_or_else(
        || "–".to_string(),
        |r| format!("{}.{:09} τ", r / 1_000_000_000, r % 1_000_000_000),
    )
}

/// First 6 and last 4 characters of a long key or hash.
fn short(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= 12 {
        return s.to_string();
    }
    let head: String = chars[..6].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

/// A leaderboard line, formatted.
pub struct LeaderLine {
    rank: usize,
    uid: i32,
    hotkey: String,
    hotkey_short: String,
    model_score: String,
    label_score: String,
    label_accuracy: String,
    label_outcome: String,
    label_reason: String,
    mean_loss: String,
    win_rate: String,
    outcome: String,
    reason: String,
    ema: String,
    weight: String,
    emission: String,
}

impl From<&RankedRow> for LeaderLine {
    fn from(r: &RankedRow) -> Self {
        let row = &r.row;
        Self {
            rank: r.rank,
            uid: row.uid,
            hotkey: row.hotkey.clone(),
            hotkey_short: short(&row.hotkey),
            model_score: num(Some(row.model_score), 4),
            label_score: num(Some(row.label_score), 4),
            label_accuracy: num(row.label_accuracy, 3),
            label_outcome: row.label_outcome.clone().unwrap_or_else(|| "–".into()),
            label_reason: row.label_reason.clone().unwrap_or_default(),
            mean_loss: num(row.mean_loss, 4),
            win_rate: num(row.win_rate, 3),
            outcome: row.outcome.clone().unwrap_or_else(|| "–".into()),
            reason: row.reason.clone().unwrap_or_default(),
            ema: num(Some(row.ema), 4),
            weight: num(Some(row.weight), 4),
            emission: tao(r.last_emission_rao),
        }
    }
}

/// `/`.
#[derive(Template)]
#[template(path = "leaderboard.html")]
pub struct LeaderboardPage {
    netuid: u16,
    alerts: Vec<super::alerts::Alert>,
    epoch: Option<i64>,
    start_block: i64,
    competition: String,
    rows: Vec<LeaderLine>,
}

/// `GET /`.
pub async fn leaderboard(State(state): State<DashboardState>) -> Result<Html<String>, PageError> {
    let data = views::leaderboard(&state).await?;
    let alerts = super::alerts::current(&state.pool, state.netuid, &views::chain(&state))
        .await
        .map_err(ApiError::from)?;
    render(&LeaderboardPage {
        netuid: data.netuid,
        alerts,
        epoch: data.epoch.as_ref().map(|e| e.epoch),
        start_block: data.epoch.as_ref().map_or(0, |e| e.start_block),
        competition: data.epoch.map(|e| e.competition_sha256).unwrap_or_default(),
        rows: data.rows.iter().map(LeaderLine::from).collect(),
    })
}

/// One epoch of a miner's history, formatted.
pub struct HistoryLine {
    epoch: i64,
    uid: i32,
    mean_loss: String,
    win_rate: String,
    model_score: String,
    label_score: String,
    ema: String,
    weight: String,
    outcome: String,
    reason: String,
}

impl From<&MinerEpochRow> for HistoryLine {
    fn from(row: &MinerEpochRow) -> Self {
        Self {
            epoch: row.epoch,
            uid: row.uid,
            mean_loss: num(row.mean_loss, 4),
            win_rate: num(row.win_rate, 3),
            model_score: num(Some(row.model_score), 4),
            label_score: num(Some(row.label_score), 4),
            ema: num(Some(row.ema), 4),
            weight: num(Some(row.weight), 4),
            outcome: row.outcome.clone().unwrap_or_else(|| "–".into()),
            reason: row.reason.clone().unwrap_or_default(),
        }
    }
}

/// `/miner/{hotkey}`.
#[derive(Template)]
#[template(path = "miner.html")]
pub struct MinerPage {
    netuid: u16,
    hotkey: String,
    uid: String,
    coldkey: String,
    registered: String,
    emission: String,
    loss_chart: String,
    score_chart: String,
    ema_chart: String,
    /// Newest first.
    rows: Vec<HistoryLine>,
}

/// `GET /miner/{hotkey}`.
pub async fn miner(
    State(state): State<DashboardState>,
    Path(hotkey): Path<String>,
) -> Result<Html<String>, PageError> {
    let data = views::miner(&state, &hotkey).await?;
    let points = |f: fn(&MinerEpochRow) -> Option<f64>| -> Vec<(i64, f64)> {
        data.history
            .iter()
            .filter_map(|r| f(r).map(|y| (r.epoch, y)))
            .collect()
    };
    let chart_err = |e: charts::ChartError| PageError(ApiError::Render(e.to_string()));
    let loss_chart = charts::line_chart(
        "mean loss (nats)",
        &[Series {
            label: "mean loss",
            points: points(|r| r.mean_loss),
            color: charts::BLUE,
        }],
    )
    .map_err(chart_err)?;
    let score_chart = charts::line_chart(
        "scores",
        &[
            Series {
                label: "model",
                points: points(|r| Some(r.model_score)),
                color: charts::BLUE,
            },
            Series {
                label: "labels",
                points: points(|r| Some(r.label_score)),
                color: charts::GREEN,
            },
        ],
    )
    .map_err(chart_err)?;
    let ema_chart = charts::line_chart(
        "EMA and weight",
        &[
            Series {
                label: "ema",
                points: points(|r| Some(r.ema)),
                color: charts::ORANGE,
            },
            Series {
                label: "weight",
                points: points(|r| Some(r.weight)),
                color: charts::BLUE,
            },
        ],
    )
    .map_err(chart_err)?;
    let m = data.miner.as_ref();
    render(&MinerPage {
        netuid: data.netuid,
        hotkey: data.hotkey.clone(),
        uid: m.map_or_else(|| "–".into(), |m| m.uid.to_string()),
        coldkey: m.map_or_else(|| "–".into(), |m| m.coldkey.clone()),
        registered: m.map_or_else(|| "–".into(), |m| m.block_at_registration.to_string()),
        emission: tao(data.last_emission_rao),
        loss_chart,
        score_chart,
        ema_chart,
        rows: data.history.iter().rev().map(HistoryLine::from).collect(),
    })
}

/// A weight row, formatted.
pub struct WeightLine {
    epoch: i64,
    status: String,
    mode: String,
    weights: String,
    hash: String,
    hash_short: String,
    commit_block: String,
    commit_tx: String,
    reveal_block: String,
    reveal_tx: String,
    error: String,
}

impl From<&WeightCommitRecord> for WeightLine {
    fn from(w: &WeightCommitRecord) -> Self {
        let opt = |v: Option<u64>| v.map_or_else(|| "–".to_string(), |b| b.to_string());
        let hash = w.commit_hash().map(hex::encode).unwrap_or_default();
        Self {
            epoch: w.epoch,
            status: w.status.to_string(),
            mode: w.mode.as_str().to_string(),
            weights: w
                .uids
                .iter()
                .zip(&w.weights)
                .map(|(u, v)| format!("{u}:{v}"))
                .collect::<Vec<_>>()
                .join(" "),
            hash_short: short(&hash),
            hash,
            commit_block: opt(w.commit_block),
            commit_tx: w
                .commit_tx
                .map(|tx| short(&tx.to_string()))
                .unwrap_or_default(),
            reveal_block: opt(w.reveal_block),
            reveal_tx: w
                .reveal_tx
                .map(|tx| short(&tx.to_string()))
                .unwrap_or_default(),
            error: w.error.clone().unwrap_or_default(),
        }
    }
}

/// `/weights`.
#[derive(Template)]
#[template(path = "weights.html")]
pub struct WeightsPage {
    netuid: u16,
    rows: Vec<WeightLine>,
}

/// `GET /weights`.
pub async fn weights(State(state): State<DashboardState>) -> Result<Html<String>, PageError> {
    let data = views::weights(&state).await?;
    render(&WeightsPage {
        netuid: data.netuid,
        rows: data.commits.iter().map(WeightLine::from).collect(),
    })
}

/// `/chain`.
#[derive(Template)]
#[template(path = "chain.html")]
pub struct ChainPage {
    netuid: u16,
    known: bool,
    connected: bool,
    head: u64,
    head_hash: String,
    head_lag: String,
    last_epoch: String,
    next_epoch_block: String,
    validator_hotkey: String,
    error: String,
}

/// `GET /chain`.
pub async fn chain(State(state): State<DashboardState>) -> Result<Html<String>, PageError> {
    let s: ChainStatus = views::chain(&state);
    let opt = |v: Option<u64>| v.map_or_else(|| "–".to_string(), |b| b.to_string());
    render(&ChainPage {
        netuid: state.netuid,
        known: s.is_known(),
        connected: s.connected,
        head: s.head,
        head_hash: s.head_hash.unwrap_or_default(),
        head_lag: format!("{:.1} s", s.head_lag_secs),
        last_epoch: opt(s.last_epoch),
        next_epoch_block: opt(s.next_epoch_block),
        validator_hotkey: s.validator_hotkey.unwrap_or_else(|| "–".into()),
        error: s.error.unwrap_or_default(),
    })
}

/// The error page.
#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    status: u16,
    message: &'a str,
}

/// An HTML page saying `message` with `status`.
pub fn not_found_page(status: StatusCode, message: &str) -> Response {
    let page = ErrorPage {
        status: status.as_u16(),
        message,
    };
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(_) => (status, message.to_string()).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_numbers_keys_and_rao() {
        assert_eq!(num(Some(0.123456), 3), "0.123");
        assert_eq!(num(None, 3), "–");
        assert_eq!(num(Some(f64::NAN), 3), "–");
        assert_eq!(tao(Some(1_500_000_000)), "1.500000000 τ");
        assert_eq!(
            short("5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty"),
            "5FHneW…94ty"
        );
        assert_eq!(short("abc"), "abc");
    }
}
