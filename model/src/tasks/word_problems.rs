//! Maths word problems with one checkable answer, and a short worked answer as the completion.
//!
//! Each [`Problem`] is a prompt template, an answer template and the arithmetic between them;
//! names, things and numbers are drawn from the seed, so an epoch's problems (10^8 or more per
//! template) cannot be listed in advance: a model scores well only by doing the arithmetic. The
//! completion shows the computation and states the result, e.g. `12 + 5 - 3 = 14. Ana has 14
//! apples now.`

use rand::RngCore;

use super::parse_unsigned;
use super::template::{self, Vars, vars};
use super::words::{ITEMS, NAMES, VEHICLES, between, pick, pick_two};

/// One kind of word problem.
struct Problem {
    /// The question (the user's message).
    prompt: &'static str,
    /// The worked answer; `{answer}` is the result.
    answer: &'static str,
    /// Slot values of a fresh problem.
    draw: fn(&mut dyn RngCore) -> Vars,
    /// The result from the slot values, `None` when they do not make a well-posed problem.
    /// Draws keep every result at 2 or more.
    result: fn(&Vars) -> Option<u64>,
}

/// The numeric slot `name` of `vars`.
fn num(vars: &Vars, name: &str) -> Option<u64> {
    parse_unsigned(vars.get(name)?)
}

/// `a * b - c`.
fn product_less_c(v: &Vars) -> Option<u64> {
    num(v, "a")?
        .checked_mul(num(v, "b")?)?
        .checked_sub(num(v, "c")?)
}

/// Every word problem; a draw picks one uniformly.
const PROBLEMS: &[Problem] = &[
    Problem {
        prompt: "{name} has {a} {items}. {name} buys {b} more and then gives {c} to {friend}. \
                 How many {items} does {name} have now?",
        answer: "{a} + {b} - {c} = {answer}. {name} has {answer} {items} now.",
        draw: |rng| {
            let (name, friend) = pick_two(rng, NAMES);
            let (a, b) = (between(rng, 2, 60), between(rng, 1, 40));
            let c = between(rng, 1, a + b - 2);
            vars([
                ("name", name.into()),
                ("friend", friend.into()),
                ("items", pick(rng, ITEMS).into()),
                ("a", a.to_string()),
                ("b", b.to_string()),
                ("c", c.to_string()),
            ])
        },
        result: |v| (num(v, "a")? + num(v, "b")?).checked_sub(num(v, "c")?),
    },
    Problem {
        prompt: "Each box holds {a} {items}. How many {items} are in {b} boxes?",
        answer: "{a} * {b} = {answer}. There are {answer} {items} in {b} boxes.",
        draw: |rng| {
            vars([
                ("items", pick(rng, ITEMS).into()),
                ("a", between(rng, 2, 25).to_string()),
                ("b", between(rng, 2, 15).to_string()),
            ])
        },
        result: |v| num(v, "a")?.checked_mul(num(v, "b")?),
    },
    Problem {
        prompt: "{name} shares {t} {items} equally among {b} friends. How many {items} does each \
                 friend get?",
        answer: "{t} / {b} = {answer}. Each friend gets {answer} {items}.",
        draw: |rng| {
            let (a, b) = (between(rng, 2, 20), between(rng, 2, 9));
            vars([
                ("name", pick(rng, NAMES).into()),
                ("items", pick(rng, ITEMS).into()),
                ("t", (a * b).to_string()),
                ("b", b.to_string()),
            ])
        },
        result: |v| {
            let (t, b) = (num(v, "t")?, num(v, "b")?);
            (b > 0 && t % b == 0).then(|| t / b)
        },
    },
    Problem {
        prompt: "{name} is {a} years old. {friend} is {b} years older than {name}. How old will \
                 {friend} be in {c} years?",
        answer: "{a} + {b} + {c} = {answer}. {friend} will be {answer} years old.",
        draw: |rng| {
            let (name, friend) = pick_two(rng, NAMES);
            vars([
                ("name", name.into()),
                ("friend", friend.into()),
                ("a", between(rng, 5, 60).to_string()),
                ("b", between(rng, 1, 30).to_string()),
                ("c", between(rng, 1, 20).to_string()),
            ])
        },
        result: |v| {
            num(v, "a")?
                .checked_add(num(v, "b")?)?
                .checked_add(num(v, "c")?)
        },
    },
    Problem {
        prompt: "A {vehicle} travels {a} kilometres every hour. How many kilometres does it \
                 travel in {b} hours?",
        answer: "{a} * {b} = {answer}. The {vehicle} travels {answer} kilometres.",
        draw: |rng| {
            vars([
                ("vehicle", pick(rng, VEHICLES).into()),
                ("a", between(rng, 12, 150).to_string()),
                ("b", between(rng, 2, 9).to_string()),
            ])
        },
        result: |v| num(v, "a")?.checked_mul(num(v, "b")?),
    },
    Problem {
        prompt: "{name} had {a} dollars, spent {b} dollars on {items} and {c} dollars on lunch. \
                 How many dollars does {name} have left?",
        answer: "{a} - {b} - {c} = {answer}. {name} has {answer} dollars left.",
        draw: |rng| {
            let a = between(rng, 20, 200);
            vars([
                ("name", pick(rng, NAMES).into()),
                ("items", pick(rng, ITEMS).into()),
                ("a", a.to_string()),
                ("b", between(rng, 1, a / 2 - 1).to_string()),
                ("c", between(rng, 1, a / 2 - 1).to_string()),
            ])
        },
        result: |v| {
            num(v, "a")?
                .checked_sub(num(v, "b")?)?
                .checked_sub(num(v, "c")?)
        },
    },
    Problem {
        prompt: "{name} reads {a} pages a day. The book has {t} pages. How many days does {name} \
                 need to finish it?",
        answer: "{t} / {a} = {answer}. {name} needs {answer} days.",
        draw: |rng| {
            let (a, days) = (between(rng, 5, 40), between(rng, 2, 20));
            vars([
                ("name", pick(rng, NAMES).into()),
                ("a", a.to_string()),
                ("t", (a * days).to_string()),
            ])
        },
        result: |v| {
            let (t, a) = (num(v, "t")?, num(v, "a")?);
            (a > 0 && t % a == 0).then(|| t / a)
        },
    },
    Problem {
        prompt: "A hall has {a} rows of chairs with {b} chairs in each row. {c} chairs are \
                 taken. How many chairs are free?",
        answer: "{a} * {b} - {c} = {answer}. {answer} chairs are free.",
        draw: |rng| {
            let (a, b) = (between(rng, 3, 20), between(rng, 4, 20));
            vars([
                ("a", a.to_string()),
                ("b", b.to_string()),
                ("c", between(rng, 1, a * b - 2).to_string()),
            ])
        },
        result: product_less_c,
    },
    Problem {
        prompt: "{name} buys {a} packs of {items} with {b} in each pack and uses {c} of them. \
                 How many {items} are left?",
        answer: "{a} * {b} - {c} = {answer}. {answer} {items} are left.",
        draw: |rng| {
            let (a, b) = (between(rng, 2, 12), between(rng, 3, 24));
            vars([
                ("name", pick(rng, NAMES).into()),
                ("items", pick(rng, ITEMS).into()),
                ("a", a.to_string()),
                ("b", b.to_string()),
                ("c", between(rng, 1, a * b - 2).to_string()),
            ])
        },
        result: product_less_c,
    },
    Problem {
        prompt: "{name} has {a} {items} and {friend} has {b}. How many more {items} does {name} \
                 have than {friend}?",
        answer: "{a} - {b} = {answer}. {name} has {answer} more {items}.",
        draw: |rng| {
            let (name, friend) = pick_two(rng, NAMES);
            let b = between(rng, 1, 80);
            vars([
                ("name", name.into()),
                ("friend", friend.into()),
                ("items", pick(rng, ITEMS).into()),
                ("a", between(rng, b + 2, b + 60).to_string()),
                ("b", b.to_string()),
            ])
        },
        result: |v| num(v, "a")?.checked_sub(num(v, "b")?),
    },
];

/// The worked answer of `problem` for `vars`, or `None` when they are not well-posed (results
/// are at least 2, so every answer's plural reads right).
fn completion(problem: &Problem, mut vars: Vars) -> Option<String> {
    let result = (problem.result)(&vars).filter(|&r| r >= 2)?;
    vars.insert("answer", result.to_string());
    Some(template::render(problem.answer, &vars))
}

/// A fresh problem and its worked answer.
pub(super) fn draw(rng: &mut dyn RngCore) -> (String, String) {
    let problem = &PROBLEMS[super::index(rng, PROBLEMS.len())];
    let vars = (problem.draw)(rng);
    let prompt = template::render(problem.prompt, &vars);
    // Every draw is well-posed (the tests check it over many seeds).
    let completion = completion(problem, vars).unwrap_or_default();
    (prompt, completion)
}

/// The worked answer of a problem prompt, or `None` when `prompt` is not one of these problems.
pub(super) fn solve(prompt: &str) -> Option<String> {
    PROBLEMS.iter().find_map(|problem| {
        let vars = template::read(problem.prompt, prompt)?;
        completion(problem, vars)
    })
}

/// The number right after the first `=` of `text`, if any.
fn first_result(text: &str) -> Option<u64> {
    let after = text.split_once('=')?.1.trim_start();
    let digits: &str = &after[..after.bytes().take_while(u8::is_ascii_digit).count()];
    parse_unsigned(digits)
}

/// Whether `answer` states the result of the worked answer `expected` right after its first
/// `=`, however it words the rest.
pub(super) fn states_result(expected: &str, answer: &str) -> bool {
    first_result(expected).is_some_and(|result| first_result(answer) == Some(result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::seeded_rng;

    #[test]
    fn a_problem_reads_back_to_its_worked_answer() {
        let prompt = "Ana has 12 apples. Ana buys 5 more and then gives 3 to Ben. How many apples \
                      does Ana have now?";
        assert_eq!(
            solve(prompt).as_deref(),
            Some("12 + 5 - 3 = 14. Ana has 14 apples now.")
        );
        assert_eq!(
            solve(
                "Ana shares 13 pears equally among 2 friends. How many pears does each friend get?"
            ),
            None,
            "not divisible: not one of ours"
        );
        assert_eq!(solve("How many apples does Ana have?"), None);
    }

    #[test]
    fn an_answer_is_right_when_its_first_equals_sign_gives_the_result() {
        let expected = "14 * 14 = 196. There are 196 stamps in 14 boxes.";
        assert!(states_result(
            expected,
            "14 * 14 = 196. 196 stamps are in 14 boxes."
        ));
        assert!(states_result(expected, "14 x 14 =196 stamps"));
        assert!(!states_result(
            expected,
            "14 * 14 = 180. There are 196 stamps."
        ));
        assert!(!states_result(expected, "There are 196 stamps."));
        assert!(!states_result(expected, "14 * 14 = 1960"));
    }

    #[test]
    fn every_template_is_drawn_and_every_draw_is_well_posed() {
        let mut rng = seeded_rng([7; 32]);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..3000 {
            let (prompt, completion) = draw(&mut rng);
            assert!(!completion.is_empty(), "{prompt}");
            assert_eq!(
                solve(&prompt).as_deref(),
                Some(completion.as_str()),
                "{prompt}"
            );
            let which = PROBLEMS
                .iter()
                .position(|p| template::read(p.prompt, &prompt).is_some());
            seen.insert(which);
        }
        assert_eq!(seen.len(), PROBLEMS.len(), "{seen:?}");
    }
}
