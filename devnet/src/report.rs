//! The live table and the final summary: the chain's metagraph (incentive, dividends,
//! emission) joined with a validator's leaderboard (track scores). Pure functions of their inputs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use subnet_common::chain::types::Metagraph;

/// Rao per TAO.
const RAO_PER_TAO: f64 = 1e9;

/// The part of a validator's `GET /api/leaderboard` the table shows.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Leaderboard {
    /// Latest epoch's rows.
    #[serde(default)]
    pub rows: Vec<LeaderboardRow>,
}

/// One miner's scores at a validator's latest epoch.
#[derive(Debug, Clone, Deserialize)]
pub struct LeaderboardRow {
    /// SS58 hotkey.
    pub hotkey: String,
    /// Model-track score.
    pub model_score: f64,
    /// Label-track score.
    pub label_score: f64,
    /// Model-track outcome code, when evaluated.
    #[serde(default)]
    pub outcome: Option<String>,
}

/// One line of the table and of `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NeuronRow {
    /// Uid on the subnet.
    pub uid: u16,
    /// The devnet role (`owner` for the subnet owner's uid, `-` for strangers).
    pub role: String,
    /// SS58 hotkey.
    pub hotkey: String,
    /// Stake in rao.
    pub stake_rao: u64,
    /// Incentive at the last epoch, in [0, 1].
    pub incentive: f64,
    /// Dividends at the last epoch, in [0, 1].
    pub dividends: f64,
    /// Emission at the last epoch, in rao.
    pub emission_rao: u64,
    /// Emission summed over the epochs the devnet watched, in rao.
    pub total_emission_rao: u64,
    /// Whether it holds a validator permit.
    pub validator_permit: bool,
    /// Model-track score from the first validator's leaderboard.
    pub model_score: Option<f64>,
    /// Label-track score from the first validator's leaderboard.
    pub label_score: Option<f64>,
    /// Model-track outcome from the first validator's leaderboard.
    pub outcome: Option<String>,
}

/// Joins the metagraph with roles (by SS58 hotkey), emission totals and a leaderboard.
pub fn rows(
    metagraph: &Metagraph,
    roles: &BTreeMap<String, String>,
    totals: &BTreeMap<String, u64>,
    leaderboard: Option<&Leaderboard>,
) -> Vec<NeuronRow> {
    metagraph
        .neurons
        .iter()
        .map(|n| {
            let hotkey = n.hotkey.to_ss58();
            let scores = leaderboard.and_then(|l| l.rows.iter().find(|r| r.hotkey == hotkey));
            let role = roles
                .get(&hotkey)
                .cloned()
                .unwrap_or_else(|| if n.uid == 0 { "owner" } else { "-" }.to_owned());
            NeuronRow {
                uid: n.uid,
                role,
                stake_rao: n.stake,
                incentive: proportion(n.incentive),
                dividends: proportion(n.dividends),
                emission_rao: n.emission,
                total_emission_rao: totals.get(&hotkey).copied().unwrap_or(0),
                validator_permit: n.validator_permit,
                model_score: scores.map(|s| s.model_score),
                label_score: scores.map(|s| s.label_score),
                outcome: scores.and_then(|s| s.outcome.clone()),
                hotkey,
            }
        })
        .collect()
}

/// Adds each hotkey's emission of `metagraph` to `totals` (call once per epoch).
pub fn add_emissions(totals: &mut BTreeMap<String, u64>, metagraph: &Metagraph) {
    for n in &metagraph.neurons {
        let total = totals.entry(n.hotkey.to_ss58()).or_insert(0);
        *total = total.saturating_add(n.emission);
    }
}

/// The rows as an aligned text table.
pub fn render(rows: &[NeuronRow]) -> String {
    let header = [
        "UID",
        "ROLE",
        "HOTKEY",
        "STAKE τ",
        "MODEL",
        "LABEL",
        "OUTCOME",
        "INCENTIVE",
        "DIVIDENDS",
        "EMISSION τ",
        "TOTAL τ",
    ];
    let score = |s: Option<f64>| s.map_or_else(|| "-".to_owned(), |s| format!("{s:.3}"));
    let mut table: Vec<Vec<String>> = vec![header.iter().map(|h| (*h).to_owned()).collect()];
    for r in rows {
        table.push(vec![
            r.uid.to_string(),
            format!("{}{}", r.role, if r.validator_permit { "*" } else { "" }),
            short(&r.hotkey),
            tao(r.stake_rao),
            score(r.model_score),
            score(r.label_score),
            r.outcome.clone().unwrap_or_else(|| "-".to_owned()),
            format!("{:.4}", r.incentive),
            format!("{:.4}", r.dividends),
            tao(r.emission_rao),
            tao(r.total_emission_rao),
        ]);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            table
                .iter()
                .map(|row| row[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in &table {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// A u16 proportion of the metagraph as a fraction of 1.
fn proportion(x: u16) -> f64 {
    f64::from(x) / f64::from(u16::MAX)
}

/// Rao as TAO with 3 decimals.
fn tao(rao: u64) -> String {
    // Display only: the f64 rounding of large balances does not matter here.
    #[allow(clippy::cast_precision_loss)]
    let tao = rao as f64 / RAO_PER_TAO;
    format!("{tao:.3}")
}

/// `5Grw…utQY`.
fn short(ss58: &str) -> String {
    let chars: Vec<char> = ss58.chars().collect();
    if chars.len() <= 9 {
        return ss58.to_owned();
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

#[cfg(test)]
mod tests {
    use subnet_common::chain::types::{AxonInfo, NeuronInfo};
    use subnet_common::keys::Keypair;

    use super::*;

    fn neuron(uid: u16, uri: &str, incentive: u16, emission: u64) -> NeuronInfo {
        let hotkey = Keypair::from_uri(uri).unwrap().account_id();
        let axon = AxonInfo {
            ip_type: 4,
            ..AxonInfo::default()
        };
        NeuronInfo {
            stake: 2_500_000_000,
            emission,
            incentive,
            ..NeuronInfo::registered(1, uid, hotkey, hotkey, axon)
        }
    }

    #[test]
    fn rows_join_roles_scores_and_emission_totals() {
        let metagraph = Metagraph {
            netuid: 1,
            block: 40,
            neurons: vec![
                neuron(0, "//Alice", 0, 0),
                neuron(1, "//Miner1//devnet", u16::MAX, 7),
            ],
        };
        let strong = Keypair::from_uri("//Miner1//devnet")
            .unwrap()
            .account_id()
            .to_ss58();
        let roles = BTreeMap::from([(strong.clone(), "strong".to_owned())]);
        let mut totals = BTreeMap::new();
        add_emissions(&mut totals, &metagraph);
        add_emissions(&mut totals, &metagraph);
        let leaderboard = Leaderboard {
            rows: vec![LeaderboardRow {
                hotkey: strong.clone(),
                model_score: 0.75,
                label_score: 0.0,
                outcome: Some("ok".into()),
            }],
        };
        let rows = rows(&metagraph, &roles, &totals, Some(&leaderboard));
        assert_eq!(rows[0].role, "owner");
        assert_eq!(rows[0].model_score, None);
        assert_eq!(rows[1].role, "strong");
        assert_eq!(rows[1].incentive, 1.0);
        assert_eq!(rows[1].total_emission_rao, 14);
        assert_eq!(rows[1].model_score, Some(0.75));

        let table = render(&rows);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3, "{table}");
        assert!(lines[0].starts_with("UID"), "{table}");
        for cell in ["strong", "0.750", "1.0000", "2.500", "ok"] {
            assert!(lines[2].contains(cell), "{cell} missing in {table}");
        }
    }

    #[test]
    fn leaderboard_json_with_extra_fields_parses() {
        let json = r#"{"netuid":1,"epoch":null,"rows":[{"rank":1,"uid":2,"hotkey":"5X",
            "model_score":0.5,"label_score":0.25,"combined":0.4,"ema":0.3,"weight":0.3,
            "mean_loss":1.2,"win_rate":0.5,"outcome":null,"reason":null,"last_emission_rao":null}]}"#;
        let board: Leaderboard = serde_json::from_str(json).unwrap();
        assert_eq!(board.rows[0].label_score, 0.25);
        assert_eq!(board.rows[0].outcome, None);
    }
}
