//! Vocabulary the chat task generators draw from, and number names.
//!
//! Lists are plain ASCII words without the punctuation or phrases the templates use as anchors
//! (`.`, `,`, ` and `, ` with `…`), so a rendered prompt reads back unambiguously
//! ([`super::template::read`]).

use rand::RngCore;

use super::{index, uniform_below};

/// First names of the people in word problems, sentences and records.
pub(super) const NAMES: &[&str] = &[
    "Ana", "Ben", "Carla", "Dev", "Elif", "Farid", "Grace", "Hugo", "Ines", "Jonas", "Kai", "Lena",
    "Mateo", "Nadia", "Omar", "Priya", "Quinn", "Rosa", "Sami", "Tara", "Umar", "Vera", "Wen",
    "Ximena", "Yusuf", "Zoe", "Aiko", "Bruno", "Chloe", "Diego", "Emma", "Felix", "Gita", "Hana",
    "Ivan", "Julia", "Kofi", "Lucas", "Mia", "Noah",
];

/// Things counted in word problems, plural.
pub(super) const ITEMS: &[&str] = &[
    "apples",
    "marbles",
    "stickers",
    "pencils",
    "cookies",
    "stamps",
    "shells",
    "books",
    "oranges",
    "cards",
    "balloons",
    "candles",
    "buttons",
    "cupcakes",
    "crayons",
    "eggs",
    "flowers",
    "lemons",
    "muffins",
    "notebooks",
    "peaches",
    "plums",
    "ribbons",
    "rocks",
    "seeds",
    "socks",
    "tickets",
    "toy cars",
    "beads",
    "coins",
];

/// Vehicles of distance problems.
pub(super) const VEHICLES: &[&str] = &["train", "bus", "car", "boat", "truck", "cyclist"];

/// Cities of records and sentences.
pub(super) const CITIES: &[&str] = &[
    "Lisbon", "Nairobi", "Osaka", "Lima", "Oslo", "Cairo", "Dublin", "Hanoi", "Quito", "Seoul",
    "Tunis", "Vienna", "Accra", "Bogota", "Dakar", "Krakow",
];

/// Past-tense verbs of generated sentences.
const VERBS: &[&str] = &[
    "painted", "found", "carried", "washed", "sold", "fixed", "opened", "borrowed", "cleaned",
    "moved", "dropped", "lost", "bought", "wrapped", "noticed", "repaired",
];

/// Adjectives of generated sentences.
const ADJECTIVES: &[&str] = &[
    "old", "small", "heavy", "blue", "bright", "quiet", "wooden", "broken", "shiny", "tall",
    "narrow", "green", "soft", "strange", "warm", "empty", "round", "dusty", "new", "yellow",
];

/// Nouns of generated sentences and phrases (singular).
pub(super) const NOUNS: &[&str] = &[
    "fence", "lamp", "bicycle", "basket", "window", "kettle", "ladder", "guitar", "mirror",
    "chair", "clock", "table", "boat", "drum", "jacket", "kite", "map", "piano", "radio",
    "suitcase", "tent", "umbrella", "vase", "wagon", "bottle", "bench", "bucket", "camera", "door",
    "helmet",
];

/// Where or when the action of a generated sentence happened.
const PLACES: &[&str] = &[
    "near the river",
    "at the market",
    "in the garden",
    "after lunch",
    "before dawn",
    "behind the school",
    "on the roof",
    "in the kitchen",
    "during the storm",
    "by the station",
];

/// A number in `min..=max`.
pub(super) fn between(rng: &mut dyn RngCore, min: u64, max: u64) -> u64 {
    min + uniform_below(rng, max - min + 1)
}

/// One of `words`.
pub(super) fn pick<R: RngCore + ?Sized>(rng: &mut R, words: &[&'static str]) -> &'static str {
    words[index(rng, words.len())]
}

/// Two different entries of `words`.
pub(super) fn pick_two<R: RngCore + ?Sized>(
    rng: &mut R,
    words: &[&'static str],
) -> (&'static str, &'static str) {
    let first = index(rng, words.len());
    let second = (first + 1 + index(rng, words.len() - 1)) % words.len();
    (words[first], words[second])
}

/// A sentence such as `Maya painted the old fence near the river.` (about 2 million of them).
pub(super) fn sentence<R: RngCore + ?Sized>(rng: &mut R) -> String {
    format!(
        "{} {} the {} {} {}.",
        pick(rng, NAMES),
        pick(rng, VERBS),
        pick(rng, ADJECTIVES),
        pick(rng, NOUNS),
        pick(rng, PLACES)
    )
}

/// A sentence of 4 to 10 words: a name, a verb, `the`, zero to three adjectives, a noun and
/// half the time a place, e.g. `Ana fixed the old blue lamp after lunch.`, so that counting its
/// words or finding its last one has many answers.
pub(super) fn varied_sentence<R: RngCore + ?Sized>(rng: &mut R) -> String {
    let mut words = vec![pick(rng, NAMES), pick(rng, VERBS), "the"];
    for _ in 0..index(rng, 4) {
        words.push(pick(rng, ADJECTIVES));
    }
    words.push(pick(rng, NOUNS));
    if index(rng, 2) == 1 {
        words.push(pick(rng, PLACES));
    }
    format!("{}.", words.join(" "))
}

/// `n` (below 10 000) in English words, American style: `342` → `three hundred forty-two`.
pub(super) fn number_name(n: u64) -> Option<String> {
    const SMALL: [&str; 20] = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
    ];
    const TENS: [&str; 10] = [
        "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
    ];
    fn below_hundred(n: usize) -> String {
        match n {
            0..20 => SMALL[n].to_owned(),
            _ if n.is_multiple_of(10) => TENS[n / 10].to_owned(),
            _ => format!("{}-{}", TENS[n / 10], SMALL[n % 10]),
        }
    }
    if n >= 10_000 {
        return None;
    }
    let n = n as usize;
    if n == 0 {
        return Some(SMALL[0].to_owned());
    }
    let mut parts = Vec::new();
    if n >= 1000 {
        parts.push(format!("{} thousand", SMALL[n / 1000]));
    }
    if n % 1000 >= 100 {
        parts.push(format!("{} hundred", SMALL[n % 1000 / 100]));
    }
    if !n.is_multiple_of(100) {
        parts.push(below_hundred(n % 100));
    }
    Some(parts.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_names_read_as_people_write_them() {
        for (n, name) in [
            (0, "zero"),
            (7, "seven"),
            (13, "thirteen"),
            (40, "forty"),
            (42, "forty-two"),
            (100, "one hundred"),
            (342, "three hundred forty-two"),
            (1005, "one thousand five"),
            (2019, "two thousand nineteen"),
            (9999, "nine thousand nine hundred ninety-nine"),
        ] {
            assert_eq!(number_name(n).as_deref(), Some(name), "{n}");
        }
        assert_eq!(number_name(10_000), None);
    }

    #[test]
    fn varied_sentences_have_four_to_ten_words_and_many_last_words() {
        let mut rng = super::super::seeded_rng([4; 32]);
        let (mut counts, mut last) = (
            std::collections::BTreeSet::new(),
            std::collections::BTreeSet::new(),
        );
        for _ in 0..2000 {
            let sentence = varied_sentence(&mut rng);
            let words: Vec<&str> = sentence.split_whitespace().collect();
            counts.insert(words.len());
            last.insert(words[words.len() - 1].to_owned());
        }
        assert_eq!(counts, (4..=10).collect());
        assert!(last.len() >= 35, "{}", last.len());
    }

    #[test]
    fn pick_two_never_picks_the_same_entry() {
        let mut rng = super::super::seeded_rng([3; 32]);
        for _ in 0..500 {
            let (a, b) = pick_two(&mut rng, NAMES);
            assert_ne!(a, b);
        }
    }
}
