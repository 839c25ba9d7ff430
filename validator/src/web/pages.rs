//! HTML pages, rendered with askama templates from `validator/templates/` (every value is
//! HTML-escaped by the engine; only the SVG charts, drawn here by plotters, go in unescaped).

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use super::alerts::Alert;
use super::charts::{self, Series};
use super::error::ApiError;
use super::views::{self, Header, Landing, NeuronStats, RankedRow, Role, WeightRow};
use super::{ChainStatus, DashboardState, NeuronStatus};
use crate::db::MinerEpochRow;

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

/// Rao as TAO (`1 τ = 10⁹ rao`), rounded for reading: 4 decimals from 1 τ up, 3 significant
/// digits below (`12.5 τ`, `0.000123 τ`); trailing zeros dropped.
fn tao(rao: Option<u64>) -> String {
    const RAO_PER_TAO: u64 = 1_000_000_000;
    let Some(rao) = rao else {
        return "–".to_string();
    };
    if rao == 0 {
        return "0 τ".to_string();
    }
    let decimals: u32 = if rao >= RAO_PER_TAO {
        4
    } else {
        // Digits of the fraction before its first non-zero one, plus 3.
        let leading_zeros = 9 - (rao.ilog10() + 1);
        (leading_zeros + 3).min(9)
    };
    let unit = 10u64.pow(9 - decimals);
    let rounded = rao / unit + u64::from(rao % unit >= unit.div_ceil(2));
    let scale = 10u64.pow(decimals);
    let (whole, fraction) = (rounded / scale, rounded % scale);
    let fraction = format!("{fraction:0width$}", width = decimals as usize);
    let fraction = fraction.trim_end_matches('0');
    if fraction.is_empty() {
        format!("{whole} τ")
    } else {
        format!("{whole}.{fraction} τ")
    }
}

/// A percentage with one decimal (`75.0%`); `<0.1%` for a small non-zero one.
fn percent(x: f64) -> String {
    if x > 0.0 && x < 0.05 {
        "<0.1%".to_string()
    } else if x.is_finite() {
        format!("{x:.1}%")
    } else {
        "–".to_string()
    }
}

/// `secs` as a person says it: `42 s ago`, `7 min ago`, `3 h 5 min ago`, `2 d ago`; a negative
/// `secs` is still to come (`in 7 min`).
fn ago(secs: i64) -> String {
    let n = secs.unsigned_abs();
    let span = match n {
        0..60 => format!("{n} s"),
        60..3600 => format!("{} min", n / 60),
        3600..86400 if (n % 3600) / 60 == 0 => format!("{} h", n / 3600),
        3600..86400 => format!("{} h {} min", n / 3600, (n % 3600) / 60),
        _ => format!("{} d", n / 86400),
    };
    if secs < 0 {
        format!("in {span}")
    } else {
        format!("{span} ago")
    }
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

/// When a weight extrinsic landed, formatted for the header.
pub struct LandingLine {
    /// `block 57`, or `never`.
    block: String,
    /// `20 blocks ago · 4 min ago`.
    when: String,
    /// `epoch 5 · committed`.
    what: String,
    /// `commit_reveal`, `set_weights` or `timelocked`.
    mode: String,
    /// `bad` when the row failed or expired after landing.
    class: &'static str,
}

impl LandingLine {
    fn new(landing: Option<&Landing>) -> Self {
        let Some(l) = landing else {
            return Self {
                block: "never".into(),
                when: String::new(),
                what: "no weights on chain yet".into(),
                mode: String::new(),
                class: "muted",
            };
        };
        let blocks = l.blocks_ago.map(|b| match b {
            0 => "this block".to_string(),
            1 => "1 block ago".to_string(),
            b if b < 0 => format!("in {} blocks", b.unsigned_abs()),
            b => format!("{b} blocks ago"),
        });
        let when = [blocks, l.secs_ago.map(ago)]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" · ");
        Self {
            block: format!("block {}", l.row.block),
            when,
            what: format!("epoch {} · {}", l.row.epoch, l.row.status),
            mode: l.row.mode.clone(),
            class: if matches!(l.row.status.as_str(), "failed" | "expired") {
                "bad"
            } else {
                ""
            },
        }
    }
}

/// The header of every page, formatted.
pub struct HeaderLine {
    connection: &'static str,
    connection_class: &'static str,
    head: String,
    block_time: String,
    chain_epoch: String,
    last_epoch: String,
    /// `bad` when the scoring is more than one epoch behind the chain.
    epoch_class: &'static str,
    /// Said when the validator's epoch numbers differ from the chain's index (a tempo change).
    renumbered: String,
    next_epoch: String,
    commit: LandingLine,
    reveal: LandingLine,
    permit: &'static str,
    permit_class: &'static str,
    hotkey: String,
    hotkey_short: String,
    alerts: Vec<Alert>,
}

impl From<Header> for HeaderLine {
    fn from(h: Header) -> Self {
        let opt = |v: Option<u64>| v.map_or_else(|| "–".to_string(), |b| b.to_string());
        let (connection, connection_class) = match (h.chain_known, h.connected) {
            (false, _) => ("not read", "muted"),
            (true, true) => ("connected", "ok"),
            (true, false) => ("unreachable", "bad"),
        };
        let (permit, permit_class) = match h.permit {
            "yes" => ("permit held", "ok"),
            "no" => ("no permit", "bad"),
            "not_registered" => ("not registered", "bad"),
            _ => ("unknown", "muted"),
        };
        // The scored epoch's chain index, not its number, which a tempo change shifts.
        let behind = matches!(
            (h.chain_epoch, h.scored_chain_epoch),
            (Some(now), Some(scored)) if now > scored + 1
        );
        let renumbered = match (h.last_epoch, h.scored_chain_epoch) {
            (Some(number), Some(index)) if number != index => {
                format!("epoch {number} is chain epoch {index} (renumbered after a tempo change)")
            }
            _ => String::new(),
        };
        let hotkey = h.validator_hotkey.unwrap_or_default();
        Self {
            connection,
            connection_class,
            head: h.head.map_or_else(|| "–".to_string(), |b| format!("#{b}")),
            block_time: h
                .block_time_ms
                .map(|ms| format!("{:.1} s/block", ms as f64 / 1000.0))
                .unwrap_or_default(),
            chain_epoch: opt(h.chain_epoch),
            last_epoch: opt(h.last_epoch),
            epoch_class: if behind { "bad" } else { "" },
            renumbered,
            next_epoch: h
                .next_epoch_block
                .map(|b| format!("next epoch at block {b}"))
                .unwrap_or_default(),
            commit: LandingLine::new(h.last_commit.as_ref()),
            reveal: LandingLine::new(h.last_reveal.as_ref()),
            permit,
            permit_class,
            hotkey_short: if hotkey.is_empty() {
                "no hotkey given".into()
            } else {
                short(&hotkey)
            },
            hotkey,
            alerts: h.alerts,
        }
    }
}

/// The header, read and formatted.
async fn header(state: &DashboardState) -> Result<HeaderLine, PageError> {
    Ok(views::header(state).await?.into())
}

/// The CSS class and the text of a stored outcome code (`None`: not recorded).
type Shown = (&'static str, String);

/// A model outcome: `ok` green; `no_commitment` (validators, label miners, idle neurons) muted
/// as "no model"; anything else is the miner's problem, red.
fn model_outcome(outcome: Option<&str>) -> Shown {
    match outcome {
        None => ("muted", "–".into()),
        Some("ok") => ("ok", "ok".into()),
        Some("no_commitment") => ("muted", "no model".into()),
        Some(other) => ("bad", other.into()),
    }
}

/// A label outcome: `ok` green; `no_tasks` (the validator had nothing to send) muted; a failure
/// red only for a neuron that labels, muted for one that does not (a model miner's 404).
fn label_outcome(outcome: Option<&str>, labels: bool) -> Shown {
    match outcome {
        None => ("muted", "–".into()),
        Some("ok") => ("ok", "ok".into()),
        Some("no_tasks") => ("muted", "no_tasks".into()),
        Some(other) if labels => ("bad", other.into()),
        Some(other) => ("muted", other.into()),
    }
}

/// A neuron's chain values, formatted (`–` when the chain was not read or it left).
struct ChainCells {
    stake: String,
    incentive: String,
    dividends: String,
    trust: String,
    vtrust: String,
}

impl ChainCells {
    fn new(stats: Option<&NeuronStats>) -> Self {
        let pct = |f: fn(&NeuronStats) -> f64| stats.map_or_else(|| "–".into(), |s| percent(f(s)));
        Self {
            stake: tao(stats.map(|s| s.stake_rao)),
            incentive: pct(|s| s.incentive_percent),
            dividends: pct(|s| s.dividends_percent),
            trust: pct(|s| s.trust_percent),
            vtrust: pct(|s| s.validator_trust_percent),
        }
    }
}

/// A leaderboard line, formatted.
pub struct LeaderLine {
    rank: usize,
    uid: i32,
    hotkey: String,
    hotkey_short: String,
    role: &'static str,
    role_label: &'static str,
    model_score: String,
    label_score: String,
    label_accuracy: String,
    label_outcome: String,
    label_outcome_class: &'static str,
    /// Shown under the outcome (for a neuron that labels).
    label_reason: String,
    /// The outcome and reason as a tooltip (for one that does not, the only place they show).
    label_title: String,
    mean_loss: String,
    win_rate: String,
    following: String,
    outcome: String,
    outcome_class: &'static str,
    reason: String,
    /// The one outcome that matters for its role (narrow screens show only this).
    status: String,
    status_class: &'static str,
    status_reason: String,
    ema: String,
    weight: String,
    stake: String,
    emission: String,
    emission_rao: String,
    incentive: String,
    dividends: String,
    vtrust: String,
}

impl From<&RankedRow> for LeaderLine {
    fn from(r: &RankedRow) -> Self {
        let row = &r.row;
        let (outcome_class, outcome) = model_outcome(row.outcome.as_deref());
        let reason = match row.reason.as_deref() {
            // The plain reason of a neuron without a model says nothing "no model" does not.
            Some("no commitment on chain") | None => String::new(),
            Some(reason) => reason.to_string(),
        };
        let (label_outcome_class, label_outcome) =
            label_outcome(row.label_outcome.as_deref(), r.role.labels());
        let stored_label_reason = row.label_reason.clone().unwrap_or_default();
        let label_title = match (&row.label_outcome, r.role.labels()) {
            (Some(code), false) if !stored_label_reason.is_empty() => {
                format!("does not label: {code}: {stored_label_reason}")
            }
            (Some(code), false) => format!("does not label: {code}"),
            _ => String::new(),
        };
        let cells = ChainCells::new(r.chain.as_ref());
        let model = (outcome_class, outcome.clone(), reason.clone());
        let label = (
            label_outcome_class,
            label_outcome.clone(),
            if r.role.labels() {
                stored_label_reason.clone()
            } else {
                String::new()
            },
        );
        let (status_class, status, status_reason) = match r.role {
            Role::ModelMiner => model,
            Role::LabelMiner => label,
            Role::ModelAndLabelMiner if model.0 != "ok" => model,
            Role::ModelAndLabelMiner => label,
            Role::Validator | Role::Idle => ("muted", "–".to_string(), String::new()),
        };
        Self {
            rank: r.rank,
            status,
            status_class,
            status_reason,
            uid: row.uid,
            hotkey: row.hotkey.clone(),
            hotkey_short: short(&row.hotkey),
            role: r.role.code(),
            role_label: r.role.label(),
            model_score: num(Some(row.model_score), 4),
            label_score: num(Some(row.label_score), 4),
            label_accuracy: num(row.label_accuracy, 3),
            label_outcome,
            label_outcome_class,
            label_reason: if r.role.labels() {
                stored_label_reason
            } else {
                String::new()
            },
            label_title,
            mean_loss: num(row.mean_loss, 4),
            win_rate: num(row.win_rate, 3),
            following: num(row.following, 3),
            outcome,
            outcome_class,
            reason,
            ema: num(Some(row.ema), 4),
            weight: percent(r.weight_percent),
            stake: cells.stake,
            emission: tao(r.last_emission_rao),
            emission_rao: r
                .last_emission_rao
                .map(|rao| format!("{rao} rao"))
                .unwrap_or_default(),
            incentive: cells.incentive,
            dividends: cells.dividends,
            vtrust: cells.vtrust,
        }
    }
}

/// `/`.
#[derive(Template)]
#[template(path = "leaderboard.html")]
pub struct LeaderboardPage {
    netuid: u16,
    header: HeaderLine,
    epoch: Option<i64>,
    start_block: i64,
    competition: String,
    competition_short: String,
    /// The pinned base model's mean loss, formatted; empty when none is pinned.
    base_loss: String,
    rows: Vec<LeaderLine>,
}

/// `GET /`.
pub async fn leaderboard(State(state): State<DashboardState>) -> Result<Html<String>, PageError> {
    let data = views::leaderboard(&state).await?;
    let header = header(&state).await?;
    let competition = data
        .epoch
        .as_ref()
        .map(|e| e.competition_sha256.clone())
        .unwrap_or_default();
    render(&LeaderboardPage {
        netuid: data.netuid,
        header,
        epoch: data.epoch.as_ref().map(|e| e.epoch),
        start_block: data.epoch.as_ref().map_or(0, |e| e.start_block),
        competition_short: short(&competition),
        competition,
        base_loss: data
            .base_mean_loss
            .map(|loss| num(Some(loss), 4))
            .unwrap_or_default(),
        rows: data.rows.iter().map(LeaderLine::from).collect(),
    })
}

/// One epoch of a miner's history, formatted.
pub struct HistoryLine {
    epoch: i64,
    uid: i32,
    mean_loss: String,
    win_rate: String,
    following: String,
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
            following: num(row.following, 3),
            model_score: num(Some(row.model_score), 4),
            label_score: num(Some(row.label_score), 4),
            ema: num(Some(row.ema), 4),
            weight: percent(row.weight * 100.0),
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
    header: HeaderLine,
    hotkey: String,
    uid: String,
    coldkey: String,
    registered: String,
    emission: String,
    stake: String,
    incentive: String,
    dividends: String,
    trust: String,
    vtrust: String,
    permit: &'static str,
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
    let cells = ChainCells::new(data.chain.as_ref());
    render(&MinerPage {
        netuid: data.netuid,
        header: header(&state).await?,
        hotkey: data.hotkey.clone(),
        uid: m.map_or_else(|| "–".into(), |m| m.uid.to_string()),
        coldkey: m.map_or_else(|| "–".into(), |m| m.coldkey.clone()),
        registered: m.map_or_else(|| "–".into(), |m| m.block_at_registration.to_string()),
        emission: tao(data.last_emission_rao),
        stake: cells.stake,
        incentive: cells.incentive,
        dividends: cells.dividends,
        trust: cells.trust,
        vtrust: cells.vtrust,
        permit: match data.chain.as_ref().map(|c| c.validator_permit) {
            Some(true) => "yes",
            Some(false) => "no",
            None => "–",
        },
        loss_chart,
        score_chart,
        ema_chart,
        rows: data.history.iter().rev().map(HistoryLine::from).collect(),
    })
}

/// One uid's share of a weight row, formatted.
pub struct ShareLine {
    uid: u16,
    hotkey: String,
    hotkey_short: String,
    percent: String,
    raw: u16,
}

/// A weight row, formatted.
pub struct WeightLine {
    epoch: i64,
    status: String,
    /// `bad` for `failed`/`expired`, `ok` on chain, `muted` still on its way.
    status_class: &'static str,
    mode: String,
    shares: Vec<ShareLine>,
    hash: String,
    hash_short: String,
    commit_block: String,
    commit_tx: String,
    reveal_block: String,
    reveal_tx: String,
    error: String,
}

impl From<&WeightRow> for WeightLine {
    fn from(row: &WeightRow) -> Self {
        use crate::db::WeightStatus;
        let w = &row.commit;
        let opt = |v: Option<u64>| v.map_or_else(|| "–".to_string(), |b| b.to_string());
        let hash = w.commit_hash().map(hex::encode).unwrap_or_default();
        let mut shares: Vec<ShareLine> = row
            .shares
            .iter()
            .map(|s| ShareLine {
                uid: s.uid,
                hotkey_short: s.hotkey.as_deref().map(short).unwrap_or_default(),
                hotkey: s.hotkey.clone().unwrap_or_default(),
                percent: percent(s.percent),
                raw: s.weight,
            })
            .collect();
        // Largest share first; the JSON keeps the row's order.
        shares.sort_by(|a, b| b.raw.cmp(&a.raw).then(a.uid.cmp(&b.uid)));
        Self {
            epoch: w.epoch,
            status: w.status.to_string(),
            status_class: match w.status {
                WeightStatus::Failed | WeightStatus::Expired => "bad",
                WeightStatus::Pending | WeightStatus::Committed => "muted",
                WeightStatus::Revealed | WeightStatus::Set => "ok",
            },
            mode: w.mode.as_str().to_string(),
            shares,
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
    header: HeaderLine,
    rows: Vec<WeightLine>,
}

/// `GET /weights`.
pub async fn weights(State(state): State<DashboardState>) -> Result<Html<String>, PageError> {
    let data = views::weights(&state).await?;
    render(&WeightsPage {
        netuid: data.netuid,
        header: header(&state).await?,
        rows: data.commits.iter().map(WeightLine::from).collect(),
    })
}

/// A neuron of the metagraph, formatted.
pub struct NeuronLine {
    uid: u16,
    hotkey: String,
    hotkey_short: String,
    stake: String,
    emission: String,
    incentive: String,
    dividends: String,
    consensus: String,
    vtrust: String,
    permit: bool,
    serving: bool,
    own: bool,
}

impl NeuronLine {
    fn new(n: &NeuronStatus, own: Option<&str>) -> Self {
        let pct = |x: u16| percent(NeuronStatus::percent(x));
        Self {
            uid: n.uid,
            hotkey: n.hotkey.clone(),
            hotkey_short: short(&n.hotkey),
            stake: tao(Some(n.stake_rao)),
            emission: tao(Some(n.emission_rao)),
            incentive: pct(n.incentive),
            dividends: pct(n.dividends),
            consensus: pct(n.consensus),
            vtrust: pct(n.validator_trust),
            permit: n.validator_permit,
            serving: n.serving,
            own: own == Some(n.hotkey.as_str()),
        }
    }
}

/// `/chain`.
#[derive(Template)]
#[template(path = "chain.html")]
pub struct ChainPage {
    netuid: u16,
    header: HeaderLine,
    known: bool,
    connected: bool,
    head: u64,
    head_hash: String,
    head_lag: String,
    last_epoch: String,
    next_epoch_block: String,
    validator_hotkey: String,
    error: String,
    neurons: Vec<NeuronLine>,
}

/// `GET /chain`.
pub async fn chain(State(state): State<DashboardState>) -> Result<Html<String>, PageError> {
    let s: ChainStatus = views::chain(&state);
    let opt = |v: Option<u64>| v.map_or_else(|| "–".to_string(), |b| b.to_string());
    render(&ChainPage {
        netuid: state.netuid,
        header: header(&state).await?,
        neurons: s
            .neurons
            .iter()
            .map(|n| NeuronLine::new(n, s.validator_hotkey.as_deref()))
            .collect(),
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
        assert_eq!(tao(Some(1_500_000_000)), "1.5 τ");
        assert_eq!(tao(Some(12_500_000_000)), "12.5 τ");
        assert_eq!(tao(Some(12_345_678_901)), "12.3457 τ");
        assert_eq!(tao(Some(1_000_000_000)), "1 τ");
        assert_eq!(tao(Some(999_999_999)), "1 τ");
        assert_eq!(tao(Some(123_456)), "0.000123 τ");
        assert_eq!(tao(Some(250_000_000)), "0.25 τ");
        assert_eq!(tao(Some(1)), "0.000000001 τ");
        assert_eq!(tao(Some(0)), "0 τ");
        assert_eq!(tao(None), "–");
        assert_eq!(percent(75.0), "75.0%");
        assert_eq!(percent(0.01), "<0.1%");
        assert_eq!(percent(0.0), "0.0%");
        assert_eq!(ago(42), "42 s ago");
        assert_eq!(ago(250), "4 min ago");
        assert_eq!(ago(3 * 3600 + 300), "3 h 5 min ago");
        assert_eq!(ago(7200), "2 h ago");
        assert_eq!(ago(2 * 86400 + 5), "2 d ago");
        assert_eq!(ago(-120), "in 2 min");
        assert_eq!(
            short("5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty"),
            "5FHneW…94ty"
        );
        assert_eq!(short("abc"), "abc");
    }

    fn header(chain_epoch: u64, last_epoch: u64, scored_chain_epoch: u64) -> HeaderLine {
        HeaderLine::from(Header {
            netuid: 1,
            chain_known: true,
            connected: true,
            head: Some(500),
            chain_epoch: Some(chain_epoch),
            last_epoch: Some(last_epoch),
            scored_chain_epoch: Some(scored_chain_epoch),
            next_epoch_block: None,
            block_time_ms: None,
            validator_hotkey: None,
            permit: "yes",
            last_commit: None,
            last_reveal: None,
            alerts: Vec::new(),
        })
    }

    #[test]
    fn the_epoch_box_compares_chain_indexes_not_the_validators_numbers() {
        // In step, by the chain's numbers.
        let line = header(12, 11, 11);
        assert_eq!((line.epoch_class, line.renumbered.as_str()), ("", ""));
        // After a tempo change: the chain at 16, the last scored epoch numbered 42, which is the
        // chain's epoch 15: in step, and said.
        let line = header(16, 42, 15);
        assert_eq!(line.epoch_class, "");
        assert_eq!(
            line.renumbered,
            "epoch 42 is chain epoch 15 (renumbered after a tempo change)"
        );
        // Two epochs behind the chain, however numbered: the loop is not keeping up.
        assert_eq!(header(18, 42, 15).epoch_class, "bad");
        assert_eq!(header(13, 11, 11).epoch_class, "bad");
    }
}
