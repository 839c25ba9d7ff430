//! Prompt templates that render and read back: `"{name} has {a} {items}."` becomes a prompt by
//! filling its slots, and a prompt is matched against the template to recover the slot values,
//! so a task's checker recomputes the answer from the prompt text alone (as the synthetic
//! generators do with `12+7=`).
//!
//! A slot is `{word}`; the same slot may appear several times and must then hold the same value.
//! Matching is anchored at both ends: every literal piece must appear in order, a slot takes the
//! shortest non-empty text up to the next literal piece (the last slot takes the rest), so a
//! template whose slots never contain the literal that follows them reads back exactly what it
//! rendered.

use std::collections::BTreeMap;

/// Slot name → value.
pub type Vars = BTreeMap<&'static str, String>;

/// Slot values from `(name, value)` pairs.
pub fn vars<const N: usize>(pairs: [(&'static str, String); N]) -> Vars {
    pairs.into_iter().collect()
}

/// One piece of a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Piece<'t> {
    /// Text that must appear as is.
    Literal(&'t str),
    /// A slot's name.
    Slot(&'t str),
}

/// The pieces of `template`, literals and `{slots}` in order.
fn pieces(template: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        if open > 0 {
            out.push(Piece::Literal(&rest[..open]));
        }
        out.push(Piece::Slot(&rest[open + 1..open + close]));
        rest = &rest[open + close + 1..];
    }
    if !rest.is_empty() {
        out.push(Piece::Literal(rest));
    }
    out
}

/// `template` with each slot replaced by its value (a slot without a value is left as is).
pub fn render(template: &str, vars: &Vars) -> String {
    pieces(template)
        .into_iter()
        .map(|piece| match piece {
            Piece::Literal(text) => text.to_owned(),
            Piece::Slot(name) => vars
                .get(name)
                .cloned()
                .unwrap_or_else(|| format!("{{{name}}}")),
        })
        .collect()
}

/// The slot values of `text` read against `template` (names are the template's), or `None`
/// when `text` is not a rendering of it.
pub fn read(template: &'static str, text: &str) -> Option<Vars> {
    let pieces = pieces(template);
    let mut vars = Vars::new();
    let mut at = 0;
    for (i, piece) in pieces.iter().enumerate() {
        match *piece {
            Piece::Literal(literal) => {
                at += text
                    .get(at..)?
                    .starts_with(literal)
                    .then_some(literal.len())?;
            }
            Piece::Slot(name) => {
                let rest = text.get(at..)?;
                // At least one character, then up to the next literal.
                let first = rest.chars().next()?.len_utf8();
                let len = match pieces.get(i + 1) {
                    Some(Piece::Literal(next)) => rest[first..].find(next)? + first,
                    Some(Piece::Slot(_)) => return None,
                    None => rest.len(),
                };
                let value = &rest[..len];
                match vars.get(name) {
                    Some(seen) if seen != value => return None,
                    Some(_) => {}
                    None => {
                        vars.insert(name, value.to_owned());
                    }
                }
                at += len;
            }
        }
    }
    (at == text.len()).then_some(vars)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "{name} has {a} {items}. {name} eats {b}. How many {items}?";

    fn vars(pairs: &[(&'static str, &str)]) -> Vars {
        pairs.iter().map(|&(k, v)| (k, v.to_owned())).collect()
    }

    #[test]
    fn renders_and_reads_back_the_same_values() {
        let v = vars(&[
            ("name", "Ana"),
            ("a", "12"),
            ("items", "red pears"),
            ("b", "3"),
        ]);
        let text = render(T, &v);
        assert_eq!(
            text,
            "Ana has 12 red pears. Ana eats 3. How many red pears?"
        );
        assert_eq!(read(T, &text), Some(v));
    }

    #[test]
    fn reading_refuses_other_text() {
        for text in [
            "Ana has 12 pears. Bo eats 3. How many pears?",
            "Ana has 12 pears. Ana eats 3. How many apples?",
            "Ana has 12 pears. Ana eats 3. How many pears?!",
            "Ana has  pears. Ana eats 3. How many pears?",
            "why do we wash hands?",
            "",
        ] {
            assert_eq!(read(T, text), None, "{text:?}");
        }
    }

    #[test]
    fn a_trailing_slot_takes_the_rest() {
        let t = "Say it loud: {sentence}";
        assert_eq!(
            read(t, "Say it loud: a b. c"),
            Some(vars(&[("sentence", "a b. c")]))
        );
        assert_eq!(read(t, "Say it loud: "), None);
    }
}
