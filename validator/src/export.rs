//! `validator export-preferences`: the label track's majority-labelled pairs as a preference
//! dataset, one JSON object per line:
//!
//! ```json
//! {"prompt":"12+7=","chosen":"19","rejected":"17","votes":3,"agreement":0.75,"reliability":0.91,"epoch":42}
//! ```
//!
//! Only open pairs count (known-answer pairs are the validator's own test questions), and only
//! labels of miners whose batch was collected (`ok`). Each miner has one vote per pair: its
//! labelers' majority ([`crate::tracks::labels::collect::miner_choice`]). A pair is exported when
//! one answer has strictly more miner votes than the other and at least `--min-votes`; `votes` is
//! that count and `agreement` its share of the votes for either answer. Ties (a miner's "tie" or
//! a miner's labelers split evenly) vote for neither side; pairs with equal votes, or none, are
//! skipped. `reliability` is the mean estimated accuracy of the miners that voted for `chosen`
//! (their known-answer accuracy over the scoring window, as stored with the epoch's label
//! scores), so a trainer can weigh or filter single-vote pairs. Pairs whose text holds U+FFFD (a
//! model answer that was not valid UTF-8) are left out. Lines are ordered by epoch, then pair.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use subnet_common::protocol::Label;

use crate::cli::ExportPreferencesArgs;
use crate::db::{self, OpenLabelRow};
use crate::tracks::labels::batch::Vote;
use crate::tracks::labels::collect::miner_choice;
use crate::tracks::labels::score::majority;

/// One line of the export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preference {
    /// The prompt.
    pub prompt: String,
    /// The answer the majority preferred.
    pub chosen: String,
    /// The other answer.
    pub rejected: String,
    /// Label miners that preferred `chosen`.
    pub votes: u32,
    /// `votes / (votes for either answer)`, in (0.5, 1].
    pub agreement: f64,
    /// Mean estimated accuracy of the miners that voted for `chosen`, in [0, 1].
    #[serde(default)]
    pub reliability: f64,
    /// Epoch the pair was labelled in.
    pub epoch: u64,
}

/// One pair's canonical answers and each miner's labels on it.
struct PairVotes<'a> {
    prompt: &'a str,
    first: &'a str,
    second: &'a str,
    /// Per miner: whether the first answer was shown as B, its estimated accuracy, and its
    /// labelers' labels.
    miners: BTreeMap<&'a str, (bool, f64, Vec<Label>)>,
}

/// The preference lines of `rows` (pure; see the module docs for the rule).
pub fn preferences(rows: &[OpenLabelRow], min_votes: u32) -> Vec<Preference> {
    let mut pairs: BTreeMap<(i64, &str), PairVotes<'_>> = BTreeMap::new();
    for row in rows {
        let Some(choice) = db::parse_choice(&row.choice) else {
            continue;
        };
        let (first, second) = if row.swapped {
            (&row.b, &row.a)
        } else {
            (&row.a, &row.b)
        };
        let pair = pairs
            .entry((row.epoch, row.pair_id.as_str()))
            .or_insert_with(|| PairVotes {
                prompt: &row.prompt,
                first,
                second,
                miners: BTreeMap::new(),
            });
        pair.miners
            .entry(row.hotkey.as_str())
            .or_insert_with(|| (row.swapped, row.accuracy, Vec::new()))
            .2
            .push(Label {
                task_id: String::new(),
                choice,
                labeler: String::new(),
                seconds: 0.0,
            });
    }
    let mut out = Vec::new();
    for ((epoch, _), pair) in pairs {
        if [pair.prompt, pair.first, pair.second]
            .iter()
            .any(|text| text.contains('\u{FFFD}'))
        {
            continue;
        }
        let (mut first, mut second) = (0u32, 0u32);
        let (mut first_accuracy, mut second_accuracy) = (0.0, 0.0);
        for (swapped, accuracy, labels) in pair.miners.values() {
            match miner_choice(labels).map(|choice| Vote::of(choice, *swapped)) {
                Some(Vote::First) => {
                    first += 1;
                    first_accuracy += accuracy;
                }
                Some(Vote::Second) => {
                    second += 1;
                    second_accuracy += accuracy;
                }
                _ => {}
            }
        }
        let (chosen, rejected, votes, accuracy) = match majority((first, second)) {
            Some(Vote::First) => (pair.first, pair.second, first, first_accuracy),
            Some(Vote::Second) => (pair.second, pair.first, second, second_accuracy),
            _ => continue,
        };
        if votes < min_votes.max(1) {
            continue;
        }
        out.push(Preference {
            prompt: pair.prompt.to_owned(),
            chosen: chosen.to_owned(),
            rejected: rejected.to_owned(),
            votes,
            agreement: f64::from(votes) / f64::from(first + second),
            reliability: accuracy / f64::from(votes),
            epoch: u64::try_from(epoch).unwrap_or(0),
        });
    }
    out
}

/// Writes the preferences of `netuid` from `since_epoch` on to `out` as JSONL; returns how many.
pub async fn export(
    pool: &sqlx::PgPool,
    netuid: u16,
    since_epoch: u64,
    min_votes: u32,
    out: &mut impl Write,
) -> anyhow::Result<usize> {
    let since = i64::try_from(since_epoch).unwrap_or(i64::MAX);
    let rows = db::open_labels_since(pool, i32::from(netuid), since)
        .await
        .context("while reading labels")?;
    let lines = preferences(&rows, min_votes);
    for line in &lines {
        serde_json::to_writer(&mut *out, line).context("while writing a line")?;
        out.write_all(b"\n").context("while writing a line")?;
    }
    out.flush().context("while writing")?;
    Ok(lines.len())
}

/// `validator export-preferences`: connects, exports to a temporary file next to `--out`, then
/// renames it into place, so `--out` is never left half-written.
pub async fn run(args: &ExportPreferencesArgs) -> anyhow::Result<()> {
    let pool = db::connect(&args.db_url).await?;
    let dir = match args.out.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let tmp = tempfile::NamedTempFile::new_in(&dir)
        .with_context(|| format!("while creating a file in {}", dir.display()))?;
    let mut writer = std::io::BufWriter::new(tmp);
    let count = export(
        &pool,
        args.netuid,
        args.since_epoch,
        args.min_votes,
        &mut writer,
    )
    .await?;
    let tmp = writer
        .into_inner()
        .map_err(|e| e.into_error())
        .context("while writing")?;
    tmp.persist(&args.out)
        .with_context(|| format!("while writing {}", args.out.display()))?;
    tracing::info!(count, out = %args.out.display(), since_epoch = args.since_epoch, "preferences exported");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(epoch: i64, hotkey: &str, pair: &str, swapped: bool, choice: &str) -> OpenLabelRow {
        let (a, b) = if swapped {
            ("bad", "good")
        } else {
            ("good", "bad")
        };
        OpenLabelRow {
            epoch,
            hotkey: hotkey.into(),
            pair_id: pair.into(),
            prompt: format!("prompt of {pair}"),
            a: a.into(),
            b: b.into(),
            swapped,
            choice: choice.into(),
            accuracy: 0.9,
        }
    }

    #[test]
    fn the_majority_of_miners_decides_across_shuffled_positions() {
        let rows = vec![
            row(1, "m1", "o1", false, "a"),
            row(1, "m2", "o1", true, "b"),
            row(1, "m3", "o1", true, "a"),
        ];
        let p = preferences(&rows, 1);
        assert_eq!(p.len(), 1);
        assert_eq!(
            (p[0].chosen.as_str(), p[0].rejected.as_str()),
            ("good", "bad")
        );
        assert_eq!(p[0].votes, 2);
        assert!((p[0].agreement - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(p[0].epoch, 1);
    }

    #[test]
    fn ties_and_split_pairs_are_skipped() {
        let rows = vec![
            // Even split between two miners.
            row(1, "m1", "o1", false, "a"),
            row(1, "m2", "o1", false, "b"),
            // Only ties.
            row(1, "m1", "o2", false, "tie"),
            // One miner whose two labelers disagree: a tie for that miner.
            row(1, "m1", "o3", false, "a"),
            row(1, "m1", "o3", false, "b"),
        ];
        assert!(preferences(&rows, 1).is_empty());
    }

    #[test]
    fn min_votes_filters_thin_majorities() {
        let rows = vec![row(2, "m1", "o1", false, "b")];
        assert_eq!(preferences(&rows, 1).len(), 1);
        assert_eq!(preferences(&rows, 1)[0].chosen, "bad");
        assert!(preferences(&rows, 2).is_empty());
    }

    #[test]
    fn reliability_is_the_mean_accuracy_of_the_chosen_side_and_broken_text_is_left_out() {
        let mut rows = vec![
            row(1, "m1", "o1", false, "a"),
            row(1, "m2", "o1", false, "a"),
            row(1, "m3", "o1", false, "b"),
        ];
        rows[0].accuracy = 0.95;
        rows[1].accuracy = 0.75;
        rows[2].accuracy = 0.99;
        let p = preferences(&rows, 1);
        assert_eq!(p.len(), 1);
        assert!((p[0].reliability - 0.85).abs() < 1e-12, "{p:?}");

        let mut broken = row(2, "m1", "o2", false, "a");
        broken.a = "good \u{FFFD}".into();
        assert!(preferences(&[broken], 1).is_empty());
    }
}
