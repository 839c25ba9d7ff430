//! Open instructions: a request ("Write a short note to Ana about her bicycle.") with one to three
//! verifiable constraints that admit many correct answers (IFEval-style: at least 30 words, use
//! the word "lamp" twice, no commas, exactly 3 bullet points, end with a given sentence, …).
//!
//! A completion loss cannot judge these (it would favour one arbitrary wording of the many that
//! are right), so they are scored by generation: the model answers greedily within a token budget
//! and [`OpenTask::score`] counts the constraints the answer keeps. An answer cut off by the
//! budget scores 0 (a model must finish what it writes), and so does one that is not an answer
//! to the request: fewer than [`MIN_ANSWER_WORDS`] words, none of the request's own words (its
//! name, city or noun), mostly the prompt said back ([`OpenTask::echoed_share`]) or mostly its
//! own words said again ([`repeated_share`]). Without those floors a terse model won the checks
//! with nothing: "Thank you for reading." alone keeps "end with 'Thank you for reading.'" and
//! "no commas". Word lists pass them; the competition's base model judges those
//! ([`crate::follow::answer_losses`]).
//!
//! Requests and constraints are drawn from the seed like the other chat tasks: 6 requests over
//! names, cities and nouns, 12 constraints with their own draws (word counts, keywords, closing
//! sentences), combined one to three at a time from different groups, so that no two of them can
//! contradict each other.

use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::words::{CITIES, NAMES, NOUNS, between, pick};
use super::{index, seeded_rng};

/// One verifiable constraint on an answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Constraint {
    /// At least this many words.
    MinWords {
        /// Fewest words.
        words: u32,
    },
    /// At most this many words.
    MaxWords {
        /// Most words.
        words: u32,
    },
    /// A word used at least `times` times (whole words, any case).
    Keyword {
        /// The word.
        word: String,
        /// Fewest uses.
        times: u32,
    },
    /// A word never used (whole words, any case).
    Avoid {
        /// The word.
        word: String,
    },
    /// No `,` anywhere.
    NoCommas,
    /// No uppercase letter anywhere.
    Lowercase,
    /// No lowercase letter anywhere.
    Uppercase,
    /// Exactly this many lines that start with `- ` or `* `.
    Bullets {
        /// How many.
        count: u32,
    },
    /// The whole answer wrapped in double quotation marks.
    Quoted,
    /// A title wrapped in double angle brackets, `<<like this>>`, on one line.
    Title,
    /// A line that starts with `P.S.`.
    Postscript,
    /// The answer's last words are exactly this sentence.
    EndsWith {
        /// The closing sentence.
        sentence: String,
    },
}

/// Groups of constraints a task takes at most one of: within a group they contradict or repeat
/// each other; across groups they never do (the pairs that would are kept apart by
/// [`compatible`]).
const GROUPS: usize = 6;

/// Sentences an answer may be asked to end with.
const CLOSINGS: &[&str] = &[
    "Is there anything else I can help with?",
    "Thank you for reading.",
    "That is all for today.",
    "Let me know what you think.",
    "Have a wonderful day.",
    "I hope this helps.",
];

impl Constraint {
    /// The group of this constraint (length, case, words, format, ending, punctuation).
    fn group(&self) -> usize {
        match self {
            Constraint::MinWords { .. } | Constraint::MaxWords { .. } => 0,
            Constraint::Lowercase | Constraint::Uppercase => 1,
            Constraint::Keyword { .. } | Constraint::Avoid { .. } => 2,
            Constraint::Bullets { .. } | Constraint::Quoted | Constraint::Title => 3,
            Constraint::Postscript | Constraint::EndsWith { .. } => 4,
            Constraint::NoCommas => 5,
        }
    }

    /// A fresh constraint of `group`; `topic` is the request's own noun, which `Avoid` never
    /// names (the request would then contradict it).
    fn draw(group: usize, topic: &str, rng: &mut dyn RngCore) -> Constraint {
        let other_noun = |rng: &mut dyn RngCore| loop {
            let noun = pick(rng, NOUNS);
            if noun != topic {
                return noun.to_owned();
            }
        };
        match (group, index(rng, 2)) {
            (0, 0) => Constraint::MinWords {
                words: 10 * between(rng, 2, 5) as u32,
            },
            (0, _) => Constraint::MaxWords {
                words: 5 * between(rng, 3, 8) as u32,
            },
            (1, 0) => Constraint::Lowercase,
            (1, _) => Constraint::Uppercase,
            (2, 0) => Constraint::Keyword {
                word: other_noun(rng),
                times: between(rng, 1, 3) as u32,
            },
            (2, _) => Constraint::Avoid {
                word: ["the", "and", "is", "very", "you"][index(rng, 5)].to_owned(),
            },
            (3, _) => match index(rng, 3) {
                0 => Constraint::Bullets {
                    count: between(rng, 2, 5) as u32,
                },
                1 => Constraint::Quoted,
                _ => Constraint::Title,
            },
            (4, 0) => Constraint::Postscript,
            (4, _) => Constraint::EndsWith {
                sentence: pick(rng, CLOSINGS).to_owned(),
            },
            _ => Constraint::NoCommas,
        }
    }

    /// The instruction as the prompt states it.
    pub fn instruction(&self) -> String {
        match self {
            Constraint::MinWords { words } => format!("Answer in at least {words} words."),
            Constraint::MaxWords { words } => format!("Answer in at most {words} words."),
            Constraint::Keyword { word, times: 1 } => format!("Use the word \"{word}\"."),
            Constraint::Keyword { word, times } => {
                format!("Use the word \"{word}\" at least {times} times.")
            }
            Constraint::Avoid { word } => format!("Do not use the word \"{word}\"."),
            Constraint::NoCommas => "Do not use any commas.".into(),
            Constraint::Lowercase => "Write everything in lowercase letters.".into(),
            Constraint::Uppercase => "Write everything in capital letters.".into(),
            Constraint::Bullets { count } => format!(
                "Answer with exactly {count} bullet points, each on its own line starting with \
                 \"- \"."
            ),
            Constraint::Quoted => "Wrap your whole answer in double quotation marks.".into(),
            Constraint::Title => {
                "Give your answer a title wrapped in double angle brackets, like <<my title>>."
                    .into()
            }
            Constraint::Postscript => "End with a postscript starting with \"P.S.\"".into(),
            Constraint::EndsWith { sentence } => {
                format!("Finish your answer with the exact sentence \"{sentence}\"")
            }
        }
    }

    /// Whether `answer` keeps this constraint.
    pub fn holds(&self, answer: &str) -> bool {
        let answer = answer.trim();
        match self {
            Constraint::MinWords { words } => word_count(answer) >= *words as usize,
            Constraint::MaxWords { words } => {
                let count = word_count(answer);
                count > 0 && count <= *words as usize
            }
            Constraint::Keyword { word, times } => uses(answer, word) >= *times as usize,
            Constraint::Avoid { word } => !answer.is_empty() && uses(answer, word) == 0,
            Constraint::NoCommas => !answer.is_empty() && !answer.contains(','),
            Constraint::Lowercase => {
                answer.chars().any(char::is_alphabetic) && !answer.chars().any(char::is_uppercase)
            }
            Constraint::Uppercase => {
                answer.chars().any(char::is_alphabetic) && !answer.chars().any(char::is_lowercase)
            }
            Constraint::Bullets { count } => {
                let bullets = answer
                    .lines()
                    .filter(|line| {
                        let line = line.trim_start();
                        (line.starts_with("- ") || line.starts_with("* "))
                            && line[2..].trim().chars().any(char::is_alphanumeric)
                    })
                    .count();
                bullets == *count as usize
            }
            Constraint::Quoted => {
                answer.len() > 2
                    && answer.starts_with('"')
                    && answer.ends_with('"')
                    && answer[1..answer.len() - 1]
                        .chars()
                        .any(char::is_alphanumeric)
            }
            Constraint::Title => answer.lines().any(|line| {
                line.find("<<").is_some_and(|open| {
                    line[open + 2..].find(">>").is_some_and(|close| {
                        line[open + 2..open + 2 + close]
                            .chars()
                            .any(char::is_alphanumeric)
                    })
                })
            }),
            Constraint::Postscript => answer
                .lines()
                .any(|line| line.trim_start().starts_with("P.S.")),
            Constraint::EndsWith { sentence } => answer.ends_with(sentence.as_str()),
        }
    }
}

/// Whether two constraints can both hold and are not alternatives of one group: a lowercase answer cannot start
/// a line with `P.S.`; the closing sentences are capitalised (so neither an all-lowercase nor an
/// all-capitals answer can end with one), a quoted answer ends with its quote, and an answer
/// cannot end with a sentence that uses a word it must avoid.
fn compatible(a: &Constraint, b: &Constraint) -> bool {
    use Constraint::*;
    let clash = |x: &Constraint, y: &Constraint| match (x, y) {
        (Avoid { word }, EndsWith { sentence }) => uses(sentence, word) > 0,
        (Lowercase, Postscript) | (Lowercase | Uppercase | Quoted, EndsWith { .. }) => true,
        _ => false,
    };
    a.group() != b.group() && !clash(a, b) && !clash(b, a)
}

/// Fewest words an answer needs to be scored at all (the smallest `MaxWords` is 15). Echoing
/// the request ("Lucas and an old drum.", measured) is not an answer.
pub const MIN_ANSWER_WORDS: usize = 8;

/// Runs of this many words that an answer shares with its prompt's own wording count as copied
/// (see [`OpenTask::echoed_share`]).
pub const ECHO_RUN: usize = 4;

/// Above this share of copied words an answer repeats its instruction instead of answering it.
/// Echoing the whole prompt kept a mean 0.317 of the constraints of 500 drawn tasks (every one in
/// 60 of them), more than a fine-tune that learnt to stop (0.25, docs/scoring.md).
pub const MAX_ECHOED_SHARE: f64 = 0.5;

/// The share of `text`'s words that say again what it already said: words in a run of
/// [`ECHO_RUN`] words that occurred earlier in `text` (ignoring case and punctuation; the first
/// occurrence does not count). About 0 for prose, 0.5 for a text said twice, near 1 for a word
/// or phrase said over and over.
pub fn repeated_share(text: &str) -> f64 {
    let words = plain_words(text);
    let mut seen = std::collections::HashSet::new();
    let mut repeated = vec![false; words.len()];
    for (start, run) in words.windows(ECHO_RUN).enumerate() {
        if !seen.insert(run) {
            repeated[start..start + ECHO_RUN].fill(true);
        }
    }
    repeated.iter().filter(|&&r| r).count() as f64 / words.len().max(1) as f64
}

/// Above this share of repeated words ([`repeated_share`]) an answer fills its length with the
/// same words: "Ana lamp lamp lamp lamp lamp lamp lamp." keeps "at most 15 words", "no
/// commas" and "all lowercase" but is not an answer.
pub const MAX_REPEATED_SHARE: f64 = 0.5;

/// Words of `text`: whitespace-separated pieces holding a letter or digit.
pub fn word_count(text: &str) -> usize {
    text.split_whitespace()
        .filter(|piece| piece.chars().any(char::is_alphanumeric))
        .count()
}

/// The words of `text`, lowercased, punctuation trimmed from their ends.
fn plain_words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|piece| {
            piece
                .trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        })
        .filter(|word| !word.is_empty())
        .collect()
}

/// How often `word` appears in `text` as a whole word, ignoring case.
fn uses(text: &str, word: &str) -> usize {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|piece| piece.eq_ignore_ascii_case(word))
        .count()
}

/// Whether `text` mentions `word` (a name, city or noun), ignoring case, also in the plural
/// (`lamps`, `benches`) or possessive (`Lima's`).
fn mentions(text: &str, word: &str) -> bool {
    text.split(|c: char| !c.is_alphanumeric()).any(|piece| {
        let lower = piece.to_ascii_lowercase();
        let word = word.to_ascii_lowercase();
        lower == word
            || lower.strip_suffix('s') == Some(word.as_str())
            || lower.strip_suffix("es") == Some(word.as_str())
    })
}

/// The requests a task starts from; `{name}`, `{city}` and `{noun}` are drawn.
const REQUESTS: &[&str] = &[
    "Write a short note to {name} about the {noun} you borrowed.",
    "Describe a visit to {city}.",
    "Give some advice to someone who just bought a {noun}.",
    "Tell a short story about {name} and an old {noun}.",
    "Explain how to look after a {noun}.",
    "Write a short message inviting {name} to {city}.",
];

/// One open instruction: the user's message and the constraints its answer must keep.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenTask {
    /// The whole user message: the request, then each constraint's instruction.
    pub prompt: String,
    /// What the answer must keep, in the order the prompt states them.
    pub constraints: Vec<Constraint>,
    /// The request's drawn words (name, city, noun): an answer must mention one of them.
    pub subject: Vec<String>,
}

impl OpenTask {
    /// A fresh task from `rng`: a request and one to three constraints of different groups.
    pub fn draw(rng: &mut dyn RngCore) -> OpenTask {
        let request = REQUESTS[index(rng, REQUESTS.len())];
        let name = pick(rng, NAMES);
        let city = pick(rng, CITIES);
        let noun = pick(rng, NOUNS);
        let subject = [("{name}", name), ("{city}", city), ("{noun}", noun)]
            .into_iter()
            .filter(|(slot, _)| request.contains(slot))
            .map(|(_, word)| word.to_owned())
            .collect();
        let mut prompt = request
            .replace("{name}", name)
            .replace("{city}", city)
            .replace("{noun}", noun);
        let wanted = 1 + index(rng, 3);
        let mut groups: Vec<usize> = (0..GROUPS).collect();
        super::shuffle(&mut groups, rng);
        let mut constraints: Vec<Constraint> = Vec::new();
        for group in groups {
            if constraints.len() == wanted {
                break;
            }
            let candidate = Constraint::draw(group, noun, rng);
            if constraints.iter().all(|c| compatible(c, &candidate)) {
                constraints.push(candidate);
            }
        }
        for constraint in &constraints {
            prompt.push(' ');
            prompt.push_str(&constraint.instruction());
        }
        OpenTask {
            prompt,
            constraints,
            subject,
        }
    }

    /// Whether `answer` answers the request at all: at least [`MIN_ANSWER_WORDS`] words, one of
    /// them a word of the request's subject, not mostly the prompt said back
    /// ([`OpenTask::echoed_share`] at most [`MAX_ECHOED_SHARE`]) and not mostly itself said
    /// again ([`repeated_share`] at most [`MAX_REPEATED_SHARE`]).
    pub fn on_topic(&self, answer: &str) -> bool {
        word_count(answer) >= MIN_ANSWER_WORDS
            && self.subject.iter().any(|word| mentions(answer, word))
            && self.echoed_share(answer) <= MAX_ECHOED_SHARE
            && repeated_share(answer) <= MAX_REPEATED_SHARE
    }

    /// The share of `answer`'s words that lie in a run of [`ECHO_RUN`] or more words copied from
    /// the prompt (ignoring case and punctuation). What the prompt quotes is left out: a closing
    /// sentence, a title or a word to use is meant to be copied.
    pub fn echoed_share(&self, answer: &str) -> f64 {
        let mut runs = std::collections::HashSet::new();
        // Outside the quotes: the even pieces of a split at `"`.
        for own_wording in self.prompt.split('"').step_by(2) {
            runs.extend(
                plain_words(own_wording)
                    .windows(ECHO_RUN)
                    .map(<[String]>::to_vec),
            );
        }
        let words = plain_words(answer);
        let mut copied = vec![false; words.len()];
        for (start, run) in words.windows(ECHO_RUN).enumerate() {
            if runs.contains(run) {
                copied[start..start + ECHO_RUN].fill(true);
            }
        }
        copied.iter().filter(|&&c| c).count() as f64 / words.len().max(1) as f64
    }

    /// How many of the constraints `answer` keeps.
    pub fn kept(&self, answer: &str) -> usize {
        self.constraints.iter().filter(|c| c.holds(answer)).count()
    }

    /// The share of the constraints `answer` keeps, in [0, 1]; 0 when the answer was cut off
    /// (`finished` false) or is not [`OpenTask::on_topic`].
    pub fn score(&self, answer: &str, finished: bool) -> f64 {
        if !finished || !self.on_topic(answer) || self.constraints.is_empty() {
            return 0.0;
        }
        self.kept(answer) as f64 / self.constraints.len() as f64
    }
}

/// `n` open tasks drawn from `seed` (a ChaCha20 stream, the same on every machine).
pub fn generate(seed: [u8; 32], n: usize) -> Vec<OpenTask> {
    let mut rng = seeded_rng(seed);
    (0..n).map(|_| OpenTask::draw(&mut rng)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_constraint_tells_a_kept_answer_from_a_broken_one() {
        let cases: Vec<(Constraint, &str, &str)> = vec![
            (
                Constraint::MinWords { words: 5 },
                "one two three four five",
                "one two three, four",
            ),
            (
                Constraint::MaxWords { words: 4 },
                "one two - three",
                "one two three four five",
            ),
            (
                Constraint::Keyword {
                    word: "lamp".into(),
                    times: 2,
                },
                "The Lamp, and another lamp.",
                "The lamps glow; one lamp.",
            ),
            (
                Constraint::Avoid { word: "the".into() },
                "Then there was a lamp.",
                "So The lamp shone.",
            ),
            (Constraint::NoCommas, "No commas here.", "One, two."),
            (
                Constraint::Lowercase,
                "all lowercase here.",
                "Not lowercase.",
            ),
            (Constraint::Uppercase, "ALL CAPS 42!", "ALL CAPs"),
            (
                Constraint::Bullets { count: 2 },
                "Tips:\n- water it\n* keep it dry",
                "- one\n- two\n- three",
            ),
            (Constraint::Quoted, "\"Hello there.\"", "\"Hello\" there."),
            (
                Constraint::Title,
                "<<A day out>>\nWe went to sea.",
                "<< >>\nA << day\nout >>",
            ),
            (
                Constraint::Postscript,
                "Dear Ana,\nSee you.\nP.S. Bring the map.",
                "ps. bring the map",
            ),
            (
                Constraint::EndsWith {
                    sentence: "Have a wonderful day.".into(),
                },
                "See you soon. Have a wonderful day.",
                "Have a wonderful day. See you soon.",
            ),
        ];
        for (constraint, kept, broken) in cases {
            assert!(
                constraint.holds(kept),
                "{constraint:?} should hold for {kept:?}"
            );
            assert!(
                !constraint.holds(broken),
                "{constraint:?} should fail for {broken:?}"
            );
            assert!(!constraint.holds(""), "{constraint:?} holds for nothing");
        }
    }

    #[test]
    fn a_task_scores_the_share_of_constraints_an_on_topic_answer_keeps() {
        let task = OpenTask {
            prompt: String::new(),
            constraints: vec![
                Constraint::NoCommas,
                Constraint::Lowercase,
                Constraint::MinWords { words: 6 },
            ],
            subject: vec!["Lima".into(), "lamp".into()],
        };
        assert_eq!(
            task.score("we walked all over lima for the whole day", true),
            1.0
        );
        assert_eq!(
            task.score("We walked all over Lima for the whole day", true),
            2.0 / 3.0
        );
        // On topic and long enough, but with commas and capitals: one constraint of three.
        assert_eq!(
            task.score("Lamps, Lamps, Lamps, and more Lamps, Lamps, Lamps!", true),
            1.0 / 3.0
        );
        assert_eq!(
            task.score("we walked all over lima for the whole day", false),
            0.0,
            "a cut-off answer keeps nothing"
        );
        // Not an answer to the request: too short, or not about its subject.
        assert_eq!(task.score("lima is nice", true), 0.0);
        assert_eq!(task.score("a walk in lima.", true), 0.0);
        assert_eq!(
            task.score("we walked all over the old town for a day", true),
            0.0
        );
        assert_eq!(task.score("   ", true), 0.0);
        // Plurals and possessives count as mentions.
        assert!(task.on_topic("Two old lamps stood by the door of the inn"));
        assert!(task.on_topic("We loved Lima's old streets and its sunny parks"));
        assert!(!task.on_topic("We loved Limassol and its old streets and parks"));
    }

    #[test]
    fn a_terse_answer_that_keeps_the_form_and_says_nothing_scores_zero() {
        // Measured on a fine-tune that learnt to answer in a few words: "Thank you for reading."
        // kept both of these constraints.
        let task = OpenTask {
            prompt: "Write a short note to Felix about the bottle you borrowed. Finish your \
                     answer with the exact sentence \"Thank you for reading.\" Do not use any \
                     commas."
                .into(),
            constraints: vec![
                Constraint::EndsWith {
                    sentence: "Thank you for reading.".into(),
                },
                Constraint::NoCommas,
            ],
            subject: vec!["Felix".into(), "bottle".into()],
        };
        assert_eq!(task.kept("Thank you for reading."), 2);
        assert_eq!(task.score("Thank you for reading.", true), 0.0);
        let answer = "Dear Felix I will bring the bottle back on Monday. Thank you for reading.";
        assert_eq!(task.score(answer, true), 1.0);
    }

    #[test]
    fn saying_the_prompt_back_scores_zero_and_quoting_what_it_asks_for_does_not() {
        // Echoing the prompt used to keep a mean 0.317 of the constraints (every one in 60 of
        // 500 tasks), more than a fine-tune that learnt to stop.
        for task in generate([11; 32], 500) {
            let share = task.echoed_share(&task.prompt);
            // Every word outside the quotes, but for pieces between quotes too short for a run.
            assert!(share <= 1.0 - quoted_share(&task.prompt) + 1e-12);
            assert!(share > MAX_ECHOED_SHARE, "{share}: {}", task.prompt);
            assert_eq!(task.score(&task.prompt, true), 0.0, "{}", task.prompt);
        }
        let task = OpenTask {
            prompt: "Write a short message inviting Hana to Krakow. Finish your answer with the \
                     exact sentence \"That is all for today.\" Do not use any commas."
                .into(),
            constraints: vec![
                Constraint::EndsWith {
                    sentence: "That is all for today.".into(),
                },
                Constraint::NoCommas,
            ],
            subject: vec!["Hana".into(), "Krakow".into()],
        };
        // The closing sentence is quoted: copying it is doing as asked.
        let short = "Hana please visit me in Krakow soon. That is all for today.";
        assert_eq!(task.echoed_share(short), 0.0);
        assert_eq!(task.score(short, true), 1.0);
        // Restating the request before answering it is not an echo either.
        let restated = "A short message inviting Hana to Krakow: come in May and we will walk \
                        by the river every evening. That is all for today.";
        assert!(task.echoed_share(restated) < MAX_ECHOED_SHARE);
        assert_eq!(task.score(restated, true), 1.0);
        // The instructions said back with the closing sentence tacked on are.
        let echo = "Write a short message inviting Hana to Krakow. Do not use any commas. That \
                    is all for today.";
        assert!(task.echoed_share(echo) > MAX_ECHOED_SHARE);
        assert_eq!(task.score(echo, true), 0.0);
    }

    #[test]
    fn saying_the_same_words_over_and_over_scores_zero() {
        let task = OpenTask {
            prompt: "Explain how to look after a lamp. Answer in at most 15 words. Write \
                     everything in lowercase letters. Do not use any commas."
                .into(),
            constraints: vec![
                Constraint::MaxWords { words: 15 },
                Constraint::Lowercase,
                Constraint::NoCommas,
            ],
            subject: vec!["lamp".into()],
        };
        let honest = "dust the lamp once a week and keep its cord away from water and heat.";
        assert_eq!(repeated_share(honest), 0.0);
        assert_eq!(task.score(honest, true), 1.0);
        // Filler: one word, or one sentence, again and again.
        let filler = "ana lamp lamp lamp lamp lamp lamp lamp.";
        assert!(repeated_share(filler) > MAX_REPEATED_SHARE);
        assert_eq!(task.score(filler, true), 0.0);
        let cycle = "the lamp is good. the lamp is good. the lamp is good.";
        assert_eq!(repeated_share(cycle), 8.0 / 12.0);
        assert_eq!(task.score(cycle, true), 0.0);
        // A list that repeats one of its items once is flawed, not filler: it still scores.
        let list = "1. Clean the lamp with a damp cloth. 2. Use a glass cleaner on the shade. \
                    3. Keep the lamp dry. 4. Use a glass cleaner on the shade.";
        assert!(repeated_share(list) < 0.3, "{}", repeated_share(list));
        assert!(task.on_topic(list));
        assert_eq!(task.score(list, true), 1.0 / 3.0, "only no commas kept");
        // Using a word it asks for, or a phrase twice, stays far below the bar.
        let keyword = "Keep the lamp clean. A clean lamp is a bright lamp, and a bright lamp in \
                       a clean room is a joy; keep the lamp clean and dry.";
        assert!(
            repeated_share(keyword) < MAX_REPEATED_SHARE,
            "{}",
            repeated_share(keyword)
        );
        assert_eq!(repeated_share(""), 0.0);
    }

    /// The share of `prompt`'s words inside its quotes.
    fn quoted_share(prompt: &str) -> f64 {
        let quoted: usize = prompt
            .split('"')
            .skip(1)
            .step_by(2)
            .map(|piece| plain_words(piece).len())
            .sum();
        quoted as f64 / plain_words(prompt).len() as f64
    }

    #[test]
    fn draws_are_seeded_and_never_contradict_themselves() {
        let tasks = generate([7; 32], 2000);
        assert_eq!(tasks, generate([7; 32], 2000));
        assert_ne!(tasks[..50], generate([8; 32], 50)[..]);
        let mut counts = [0usize; 4];
        let mut prompts = std::collections::BTreeSet::new();
        for task in &tasks {
            assert!((1..=3).contains(&task.constraints.len()), "{task:?}");
            assert!(!task.subject.is_empty(), "{task:?}");
            for word in &task.subject {
                assert!(task.prompt.contains(word.as_str()), "{task:?}");
            }
            counts[task.constraints.len()] += 1;
            prompts.insert(task.prompt.clone());
            for (i, a) in task.constraints.iter().enumerate() {
                assert!(
                    task.prompt.contains(&a.instruction()),
                    "{} misses {a:?}",
                    task.prompt
                );
                for b in &task.constraints[i + 1..] {
                    assert!(compatible(a, b), "{task:?}");
                }
            }
        }
        assert!(
            counts[1] > 400 && counts[2] > 400 && counts[3] > 400,
            "{counts:?}"
        );
        assert!(
            prompts.len() > 1900,
            "only {} distinct prompts",
            prompts.len()
        );
    }

    #[test]
    fn every_drawn_task_has_an_answer_that_keeps_all_its_constraints() {
        // A constructive answer per task: if one exists, the constraints are satisfiable
        // together (the property the groups and `compatible` promise).
        for task in generate([3; 32], 500) {
            let answer = satisfying_answer(&task);
            assert_eq!(task.score(&answer, true), 1.0, "{task:?}\n{answer}");
        }
    }

    /// Builds an answer keeping every constraint of `task`, or panics when it cannot.
    fn satisfying_answer(task: &OpenTask) -> String {
        let has = |f: &dyn Fn(&Constraint) -> bool| task.constraints.iter().find(|c| f(c));
        let mut words: Vec<String> = Vec::new();
        if let Some(Constraint::Keyword { word, times }) =
            has(&|c| matches!(c, Constraint::Keyword { .. }))
        {
            words.extend((0..*times).map(|_| word.clone()));
        }
        let closing = match has(&|c| matches!(c, Constraint::EndsWith { .. })) {
            Some(Constraint::EndsWith { sentence }) => word_count(sentence),
            _ => 0,
        };
        let min = match has(&|c| matches!(c, Constraint::MinWords { .. })) {
            Some(Constraint::MinWords { words }) => *words as usize,
            _ => MIN_ANSWER_WORDS.saturating_sub(closing),
        };
        words.push(task.subject[0].clone());
        // Distinct words: an answer saying the same words again is not on topic.
        let mut filler = (1..).map(|i| format!("word{i}"));
        while words.len() < min {
            words.push(filler.next().unwrap());
        }
        let mut body = words.join(" ");
        if let Some(Constraint::Bullets { count }) =
            has(&|c| matches!(c, Constraint::Bullets { .. }))
        {
            body = (0..*count)
                .map(|i| format!("- {}", if i == 0 { &body } else { "more" }))
                .collect::<Vec<_>>()
                .join("\n");
        }
        if has(&|c| matches!(c, Constraint::Title)).is_some() {
            body = format!("<<a title>>\n{body}");
        }
        if has(&|c| matches!(c, Constraint::Postscript)).is_some() {
            body.push_str("\nP.S. bye");
        }
        if let Some(Constraint::EndsWith { sentence }) =
            has(&|c| matches!(c, Constraint::EndsWith { .. }))
        {
            body = format!("{body} {sentence}");
        }
        if has(&|c| matches!(c, Constraint::Uppercase)).is_some() {
            body = body.to_uppercase();
        }
        if has(&|c| matches!(c, Constraint::Lowercase)).is_some() {
            body = body.to_lowercase();
        }
        if has(&|c| matches!(c, Constraint::Quoted)).is_some() {
            body = format!("\"{body}\"");
        }
        body
    }
}
