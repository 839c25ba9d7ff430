//! The worse side of a known-answer pair: a real model answer, corrupted.
//!
//! A known pair is one of the validator's own fresh model answers against a corrupted copy of
//! it, so it comes from the same prompts and the same models as the open pairs, and nothing
//! about it can be looked up. The corruptions are the failures a person notices and a shallow
//! program cannot rank, balanced so that no surface rule wins:
//!
//! | kind | what | the worse side is |
//! |---|---|---|
//! | [`Corruption::Truncated`] | the answer cut after 40–70% of its words | shorter |
//! | [`Corruption::Looped`] | a span of its own words repeated at the end, as a looping model does | longer |
//! | [`Corruption::Replaced`] | an answer to another prompt | either |
//! | [`Corruption::Spliced`] | its second half replaced by another answer's second half | either |
//! | [`Corruption::NumberChanged`] | one number changed, same number of digits | same length |
//! | [`Corruption::WordsSwapped`] | two of its words swapped | same length, same words |
//! | [`Corruption::Parroted`] | its second half replaced by the prompt, echoed back | more of the prompt's words |
//!
//! A corruption keeps the answer's final punctuation. "Prefer the longer", "the shorter", "the
//! one with more of the prompt's words", "the one ending in a full stop", "the one with fewer
//! repeated words" each hold for some kinds and fail for others: none is right on much more than
//! half the known pairs (measured in `batch`'s tests). Another prompt's answers ("material") come from
//! prompts the validator answered but sent to nobody, so no batch shows the same text twice.
//!
//! Words are whitespace-separated; an answer with fewer than three words (a byte-level model's
//! output can have none) is corrupted character by character instead.

use rand::RngCore;
use serde::{Deserialize, Serialize};
use subnet_model::tasks::{shuffle, uniform_below};

/// How a known pair's worse answer was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Corruption {
    /// Cut short.
    Truncated,
    /// A span of itself repeated at the end.
    Looped,
    /// Another prompt's answer.
    Replaced,
    /// Its second half from another prompt's answer.
    Spliced,
    /// One number changed.
    NumberChanged,
    /// Two words swapped.
    WordsSwapped,
    /// Its second half replaced by the prompt.
    Parroted,
}

impl Corruption {
    /// Every kind, in the order tried.
    pub const ALL: [Corruption; 7] = [
        Corruption::Truncated,
        Corruption::Looped,
        Corruption::Replaced,
        Corruption::Spliced,
        Corruption::NumberChanged,
        Corruption::WordsSwapped,
        Corruption::Parroted,
    ];
}

/// An answer cut into units: words when it has at least three, else characters.
struct Units {
    parts: Vec<String>,
    sep: &'static str,
}

impl Units {
    fn of(text: &str) -> Self {
        let words: Vec<String> = text.split_whitespace().map(str::to_owned).collect();
        if words.len() >= 3 {
            Self {
                parts: words,
                sep: " ",
            }
        } else {
            Self {
                parts: text.chars().map(String::from).collect(),
                sep: "",
            }
        }
    }

    fn join(parts: &[String], sep: &str) -> String {
        parts.join(sep)
    }
}

/// Sentence endings, kept as the answer has them.
const ENDINGS: &[char] = &['.', '!', '?'];

/// `lo..=hi` percent of `n`, at least 1 and at most `n − 1` (needs `n ≥ 2`).
fn share<R: RngCore + ?Sized>(rng: &mut R, n: usize, lo: u64, hi: u64) -> usize {
    let percent = lo + uniform_below(rng, hi - lo + 1);
    ((n as u64 * percent).div_ceil(100) as usize).clamp(1, n - 1)
}

/// One `kind` of corruption of `answer` to `prompt`, with `material` (answers to other prompts)
/// for the kinds that need it; `None` when the kind cannot apply (too short, no digit, no
/// material) or would give the answer back.
pub fn apply<R: RngCore + ?Sized>(
    kind: Corruption,
    prompt: &str,
    answer: &str,
    material: &[String],
    rng: &mut R,
) -> Option<String> {
    // The final punctuation is set aside and put back: a model that stops early still ends its
    // sentence, so the ending is no tell.
    let ending: String = {
        let trimmed = answer.trim_end();
        let body = trimmed.trim_end_matches(ENDINGS);
        trimmed[body.len()..].to_owned()
    };
    let answer = answer.trim_end().trim_end_matches(ENDINGS);
    let units = Units::of(answer);
    let n = units.parts.len();
    let pick_material = |rng: &mut R| -> Option<&String> {
        let usable: Vec<&String> = material
            .iter()
            .filter(|m| m.trim().trim_end_matches(ENDINGS) != answer.trim() && !m.trim().is_empty())
            .collect();
        (!usable.is_empty()).then(|| usable[uniform_below(rng, usable.len() as u64) as usize])
    };
    let out = match kind {
        Corruption::Truncated => {
            if n < 3 {
                return None;
            }
            let keep = share(rng, n, 40, 70);
            Units::join(&units.parts[..keep], units.sep)
        }
        Corruption::Looped => {
            if n < 3 {
                return None;
            }
            let len = share(rng, n, 30, 60);
            let start = uniform_below(rng, (n - len + 1) as u64) as usize;
            let mut parts = units.parts.clone();
            parts.extend_from_slice(&units.parts[start..start + len]);
            Units::join(&parts, units.sep)
        }
        Corruption::Replaced => pick_material(rng)?.trim_end_matches(ENDINGS).to_owned(),
        Corruption::Spliced => {
            let other = Units::of(pick_material(rng)?);
            if n < 2 || other.parts.len() < 2 {
                return None;
            }
            let keep = n / 2;
            let from = other.parts.len() / 2;
            let head = Units::join(&units.parts[..keep], units.sep);
            let tail = Units::join(&other.parts[from..], other.sep);
            if units.sep.is_empty() {
                format!("{head}{tail}")
            } else {
                format!("{head} {tail}")
            }
        }
        Corruption::NumberChanged => change_number(answer, rng)?,
        Corruption::WordsSwapped => {
            if n < 4 {
                return None;
            }
            let mut order: Vec<usize> = (0..n).collect();
            shuffle(&mut order, rng);
            let (i, j) = order
                .iter()
                .flat_map(|&i| order.iter().map(move |&j| (i, j)))
                .find(|&(i, j)| i < j && units.parts[i] != units.parts[j])?;
            let mut parts = units.parts.clone();
            parts.swap(i, j);
            Units::join(&parts, units.sep)
        }
        Corruption::Parroted => {
            let echo = prompt.trim().trim_end_matches(ENDINGS);
            if n < 2 || echo.is_empty() {
                return None;
            }
            let keep = share(rng, n, 30, 60);
            let head = Units::join(&units.parts[..keep], units.sep);
            format!("{head}{}{echo}", units.sep)
        }
    };
    let out = out
        .trim_end()
        .trim_end_matches(ENDINGS)
        .trim_end()
        .to_owned();
    (out.trim() != answer.trim() && !out.trim().is_empty()).then(|| format!("{out}{ending}"))
}

/// `answer` with one of its digit runs (chosen at random) replaced by another number of as many
/// digits (no new leading zero); `None` when it has no digit.
fn change_number<R: RngCore + ?Sized>(answer: &str, rng: &mut R) -> Option<String> {
    let chars: Vec<char> = answer.chars().collect();
    let mut runs = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_digit() {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            runs.push((start, i));
        } else {
            i += 1;
        }
    }
    if runs.is_empty() {
        return None;
    }
    let (start, end) = runs[uniform_below(rng, runs.len() as u64) as usize];
    let old: String = chars[start..end].iter().collect();
    let digits = end - start;
    let new = loop {
        let candidate: String = (0..digits)
            .map(|k| {
                let lo = if k == 0 && digits > 1 { 1 } else { 0 };
                char::from(b'0' + (lo + uniform_below(rng, 10 - lo)) as u8)
            })
            .collect();
        if candidate != old {
            break candidate;
        }
    };
    let mut out: String = chars[..start].iter().collect();
    out.push_str(&new);
    out.extend(&chars[end..]);
    Some(out)
}

/// A corruption of `answer` to `prompt`: a kind drawn uniformly, then the others in a random
/// order until one applies; `None` when none does.
pub fn corrupt<R: RngCore + ?Sized>(
    prompt: &str,
    answer: &str,
    material: &[String],
    rng: &mut R,
) -> Option<(Corruption, String)> {
    let mut kinds = Corruption::ALL;
    shuffle(&mut kinds, rng);
    kinds
        .into_iter()
        .find_map(|kind| apply(kind, prompt, answer, material, rng).map(|text| (kind, text)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use subnet_model::tasks::seeded_rng;

    const PROMPT: &str = "A train leaves at 9:40 and arrives at 13:15. How long is the trip?";
    const ANSWER: &str = "The trip takes 3 hours and 35 minutes, from 9:40 to 13:15.";

    fn material() -> Vec<String> {
        vec!["Bees carry pollen from one flower to the next, so the plant can make fruit.".into()]
    }

    #[test]
    fn every_kind_changes_the_answer_the_way_it_says() {
        let mut rng = seeded_rng([3; 32]);
        for _ in 0..50 {
            let truncated =
                apply(Corruption::Truncated, PROMPT, ANSWER, &[], &mut rng).expect("applies");
            assert!(truncated.len() < ANSWER.len() && truncated.ends_with('.'));
            assert!(ANSWER.starts_with(truncated.trim_end_matches('.')));
            let looped = apply(Corruption::Looped, PROMPT, ANSWER, &[], &mut rng).expect("applies");
            assert!(
                looped.starts_with(ANSWER.trim_end_matches('.')) && looped.len() > ANSWER.len()
            );
            assert!(looped.ends_with('.'), "{looped}");
            let parroted =
                apply(Corruption::Parroted, PROMPT, ANSWER, &[], &mut rng).expect("applies");
            assert!(parroted.starts_with("The trip"));
            assert!(parroted.ends_with("How long is the trip."), "{parroted}");
            let replaced = apply(Corruption::Replaced, PROMPT, ANSWER, &material(), &mut rng)
                .expect("applies");
            assert_eq!(replaced, material()[0], "its ending is the answer's");
            let spliced =
                apply(Corruption::Spliced, PROMPT, ANSWER, &material(), &mut rng).expect("applies");
            assert!(spliced.starts_with("The trip takes 3 hours") && spliced.ends_with("fruit."));
            for text in [&replaced, &spliced] {
                assert!(text.ends_with('.'), "{text}");
            }
            let number =
                apply(Corruption::NumberChanged, PROMPT, ANSWER, &[], &mut rng).expect("applies");
            assert_eq!(number.len(), ANSWER.len());
            assert_ne!(number, ANSWER);
            assert!(number.ends_with('.'));
            assert_eq!(
                number.replace(|c: char| c.is_ascii_digit(), "#"),
                ANSWER.replace(|c: char| c.is_ascii_digit(), "#"),
                "only digits change"
            );
            let swapped =
                apply(Corruption::WordsSwapped, PROMPT, ANSWER, &[], &mut rng).expect("applies");
            assert!(swapped.ends_with('.'), "{swapped}");
            let mut a: Vec<&str> = swapped.trim_end_matches('.').split(' ').collect();
            let mut b: Vec<&str> = ANSWER.trim_end_matches('.').split(' ').collect();
            assert_ne!(a, b);
            a.sort_unstable();
            b.sort_unstable();
            assert_eq!(a, b, "the same words");
        }
    }

    #[test]
    fn kinds_that_cannot_apply_give_none_and_corrupt_falls_back() {
        let mut rng = seeded_rng([4; 32]);
        assert_eq!(
            apply(Corruption::Replaced, PROMPT, ANSWER, &[], &mut rng),
            None
        );
        assert_eq!(
            apply(
                Corruption::Replaced,
                PROMPT,
                ANSWER,
                &[ANSWER.to_string()],
                &mut rng
            ),
            None,
            "its own text is no material"
        );
        assert_eq!(
            apply(
                Corruption::NumberChanged,
                PROMPT,
                "no digits here",
                &[],
                &mut rng
            ),
            None
        );
        assert_eq!(
            apply(Corruption::Truncated, PROMPT, "ab", &[], &mut rng),
            None
        );
        assert_eq!(
            apply(Corruption::WordsSwapped, PROMPT, "aaaa", &[], &mut rng),
            None
        );
        // A short byte-level answer without spaces is corrupted by characters.
        let (_, text) = corrupt(PROMPT, "x7+q=", &[], &mut rng).expect("some kind applies");
        assert_ne!(text, "x7+q=");
        assert_eq!(corrupt(PROMPT, "", &[], &mut rng), None);
        assert_eq!(corrupt(PROMPT, "a", &[], &mut rng), None);
    }

    #[test]
    fn kinds_are_drawn_evenly() {
        let mut rng = seeded_rng([5; 32]);
        let mut counts = std::collections::BTreeMap::new();
        for _ in 0..5950 {
            let (kind, _) = corrupt(PROMPT, ANSWER, &material(), &mut rng).expect("applies");
            *counts.entry(kind).or_insert(0) += 1;
        }
        assert_eq!(counts.len(), 7);
        for (kind, n) in counts {
            assert!((700..1000).contains(&n), "{kind:?}: {n}");
        }
    }
}
