//! Instructions with verifiable constraints and one correct answer (IFEval-style): rewrite in
//! capitals, sort and list with commas, answer in JSON with given keys, answer yes or no only,
//! repeat a word n times, write a number in words, count words, take initials, quote the last
//! word.
//!
//! Open constraints ("at least 50 words", "mention X") admit many answers, which a completion
//! loss cannot judge; these admit exactly one, so the loss of that answer measures how well a
//! model follows the instruction, and [`solve`] checks a generated answer exactly. The sentences,
//! word lists and numbers are drawn from the seed (millions per instruction), so the answers
//! cannot be listed in advance.

use rand::RngCore;

use super::parse_unsigned;
use super::template::{self, Vars, vars};
use super::words::{self, CITIES, NAMES, NOUNS, between, number_name, pick};

/// One instruction.
struct Instruction {
    /// The user's message.
    prompt: &'static str,
    /// Slot values of a fresh instance.
    draw: fn(&mut dyn RngCore) -> Vars,
    /// The one correct answer from the slot values, `None` when they are not well-formed.
    answer: fn(&Vars) -> Option<String>,
}

/// The slot `name` of `vars`.
fn slot<'v>(vars: &'v Vars, name: &str) -> Option<&'v str> {
    vars.get(name).map(String::as_str)
}

/// Whether `text` is one word of ASCII letters (names, cities, list words).
fn is_word(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphabetic())
}

/// `count` distinct nouns, space- or comma-separated by the caller.
fn distinct_nouns(rng: &mut dyn RngCore, count: usize) -> Vec<&'static str> {
    let mut all: Vec<&'static str> = NOUNS.to_vec();
    super::shuffle(&mut all, rng);
    all.truncate(count);
    all
}

/// Every instruction; a draw picks one uniformly.
const INSTRUCTIONS: &[Instruction] = &[
    Instruction {
        prompt: "Rewrite this sentence in capital letters only: {sentence}",
        draw: |rng| vars([("sentence", words::sentence(rng))]),
        answer: |v| Some(slot(v, "sentence")?.to_uppercase()),
    },
    Instruction {
        prompt: "Sort these words alphabetically and answer with them separated by commas: \
                 {words}",
        draw: |rng| {
            let count = 3 + super::index(rng, 4);
            vars([("words", distinct_nouns(rng, count).join(", "))])
        },
        answer: |v| {
            let mut list: Vec<&str> = slot(v, "words")?.split(", ").collect();
            if list.len() < 2 || !list.iter().all(|w| is_word(w)) {
                return None;
            }
            list.sort_unstable();
            Some(list.join(", "))
        },
    },
    Instruction {
        prompt: "Reply with JSON only, with the keys \"name\" and \"age\". {name} is {age} years \
                 old and lives in {city}.",
        draw: |rng| {
            vars([
                ("name", pick(rng, NAMES).into()),
                ("age", between(rng, 18, 90).to_string()),
                ("city", pick(rng, CITIES).into()),
            ])
        },
        answer: |v| {
            let (name, age) = (slot(v, "name")?, parse_unsigned(slot(v, "age")?)?);
            (is_word(name) && is_word(slot(v, "city")?))
                .then(|| format!("{{\"name\": \"{name}\", \"age\": {age}}}"))
        },
    },
    Instruction {
        prompt: "Reply with JSON only, with the keys \"city\" and \"year\". {name} moved to \
                 {city} in {year}.",
        draw: |rng| {
            vars([
                ("name", pick(rng, NAMES).into()),
                ("city", pick(rng, CITIES).into()),
                ("year", between(rng, 1950, 2025).to_string()),
            ])
        },
        answer: |v| {
            let (city, year) = (slot(v, "city")?, parse_unsigned(slot(v, "year")?)?);
            (is_word(city) && is_word(slot(v, "name")?))
                .then(|| format!("{{\"city\": \"{city}\", \"year\": {year}}}"))
        },
    },
    Instruction {
        prompt: "Answer with yes or no only. Is {a} larger than {b}?",
        draw: |rng| {
            let a = between(rng, 0, 999);
            let b = (a + between(rng, 1, 999)) % 1000;
            vars([("a", a.to_string()), ("b", b.to_string())])
        },
        answer: |v| {
            let (a, b) = (
                parse_unsigned(slot(v, "a")?)?,
                parse_unsigned(slot(v, "b")?)?,
            );
            (a != b).then(|| if a > b { "yes" } else { "no" }.to_owned())
        },
    },
    Instruction {
        prompt: "Write the word \"{word}\" {n} times, separated by spaces, and nothing else.",
        draw: |rng| {
            vars([
                ("word", pick(rng, NOUNS).into()),
                ("n", between(rng, 2, 6).to_string()),
            ])
        },
        answer: |v| {
            let (word, n) = (slot(v, "word")?, parse_unsigned(slot(v, "n")?)?);
            (is_word(word) && (1..=10).contains(&n)).then(|| vec![word; n as usize].join(" "))
        },
    },
    Instruction {
        prompt: "Write the number {n} in words.",
        draw: |rng| vars([("n", between(rng, 0, 9999).to_string())]),
        answer: |v| number_name(parse_unsigned(slot(v, "n")?)?),
    },
    Instruction {
        prompt: "How many words does this sentence have? Answer with a number only: {sentence}",
        draw: |rng| vars([("sentence", words::varied_sentence(rng))]),
        answer: |v| Some(slot(v, "sentence")?.split_whitespace().count().to_string()),
    },
    Instruction {
        prompt: "Write the first letter of each word in capitals, with nothing between them: \
                 {phrase}",
        draw: |rng| {
            let count = 3 + super::index(rng, 4);
            vars([("phrase", distinct_nouns(rng, count).join(" "))])
        },
        answer: |v| {
            let phrase = slot(v, "phrase")?;
            phrase
                .split(' ')
                .map(|w| is_word(w).then(|| w.as_bytes()[0].to_ascii_uppercase() as char))
                .collect()
        },
    },
    Instruction {
        prompt: "What is the last word of this sentence? Answer with that word only: {sentence}",
        draw: |rng| vars([("sentence", words::varied_sentence(rng))]),
        answer: |v| {
            let last = slot(v, "sentence")?.split_whitespace().next_back()?;
            let word = last.trim_end_matches(['.', '!', '?', ',']);
            (!word.is_empty()).then(|| word.to_owned())
        },
    },
];

/// A fresh instruction and its one correct answer.
pub(super) fn draw(rng: &mut dyn RngCore) -> (String, String) {
    let instruction = &INSTRUCTIONS[super::index(rng, INSTRUCTIONS.len())];
    let vars = (instruction.draw)(rng);
    let prompt = template::render(instruction.prompt, &vars);
    // Every draw is well-formed (the tests check it over many seeds).
    let answer = (instruction.answer)(&vars).unwrap_or_default();
    (prompt, answer)
}

/// The correct answer to an instruction prompt, or `None` when `prompt` is not one of these.
pub(super) fn solve(prompt: &str) -> Option<String> {
    INSTRUCTIONS.iter().find_map(|instruction| {
        let vars = template::read(instruction.prompt, prompt)?;
        (instruction.answer)(&vars)
    })
}

/// Whether `answer` is the JSON value `expected` is (any spacing, line breaks or key order);
/// false when `expected` is not JSON.
pub(super) fn same_json(expected: &str, answer: &str) -> bool {
    let parse = |text: &str| serde_json::from_str::<serde_json::Value>(text).ok();
    match (parse(expected), parse(answer)) {
        (Some(expected), Some(answer)) => expected.is_object() && expected == answer,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::seeded_rng;

    #[test]
    fn each_instruction_has_its_one_answer() {
        for (prompt, answer) in [
            (
                "Rewrite this sentence in capital letters only: Ana fixed the old lamp at dusk.",
                "ANA FIXED THE OLD LAMP AT DUSK.",
            ),
            (
                "Sort these words alphabetically and answer with them separated by commas: \
                 pear, fig, apple",
                "apple, fig, pear",
            ),
            (
                "Reply with JSON only, with the keys \"name\" and \"age\". Omar is 34 years old \
                 and lives in Oslo.",
                "{\"name\": \"Omar\", \"age\": 34}",
            ),
            (
                "Reply with JSON only, with the keys \"city\" and \"year\". Mia moved to Lima in \
                 1999.",
                "{\"city\": \"Lima\", \"year\": 1999}",
            ),
            ("Answer with yes or no only. Is 17 larger than 9?", "yes"),
            ("Answer with yes or no only. Is 17 larger than 90?", "no"),
            (
                "Write the word \"kite\" 3 times, separated by spaces, and nothing else.",
                "kite kite kite",
            ),
            ("Write the number 342 in words.", "three hundred forty-two"),
            (
                "How many words does this sentence have? Answer with a number only: Ana fixed \
                 the old lamp near the river.",
                "8",
            ),
            (
                "Write the first letter of each word in capitals, with nothing between them: \
                 map drum kite",
                "MDK",
            ),
            (
                "What is the last word of this sentence? Answer with that word only: Ana fixed \
                 the lamp in the kitchen.",
                "kitchen",
            ),
        ] {
            assert_eq!(solve(prompt).as_deref(), Some(answer), "{prompt}");
        }
        for not_ours in [
            "Answer with yes or no only. Is 17 larger than 17?",
            "Write the number 12345 in words.",
            "Write the word \"kite\" 300 times, separated by spaces, and nothing else.",
            "Write a poem about the sea.",
        ] {
            assert_eq!(solve(not_ours), None, "{not_ours}");
        }
    }

    #[test]
    fn json_answers_are_compared_as_values() {
        let expected = "{\"name\": \"Gita\", \"age\": 25}";
        assert!(same_json(
            expected,
            "{\n  \"age\": 25,\n  \"name\": \"Gita\"\n}"
        ));
        assert!(!same_json(
            expected,
            "{\"name\": \"Gita\", \"age\": \"25\"}"
        ));
        assert!(!same_json(expected, "name: Gita, age: 25"));
        assert!(!same_json("25", "25"), "only the JSON instructions");
    }

    #[test]
    fn every_instruction_is_drawn_and_every_draw_has_its_answer() {
        let mut rng = seeded_rng([9; 32]);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..3000 {
            let (prompt, answer) = draw(&mut rng);
            assert!(!answer.is_empty(), "{prompt}");
            assert_eq!(solve(&prompt).as_deref(), Some(answer.as_str()), "{prompt}");
            let which = INSTRUCTIONS
                .iter()
                .position(|i| template::read(i.prompt, &prompt).is_some());
            seen.insert(which);
        }
        assert_eq!(seen.len(), INSTRUCTIONS.len(), "{seen:?}");
    }
}
