//! Rewrites of verse that a pretraining source may ask for (`transform`): the same poems in
//! other arrangements, so that what the questions ask (the line after, the line before) is
//! stored in more than one way (knowledge augmentation, Allen-Zhu & Li 2023, Physics of LMs
//! 3.1 and 3.2).

use crate::spec::Transform;
use rand::seq::SliceRandom;
use rand::SeedableRng;

const ENDS: [char; 5] = ['，', '。', '？', '！', '；'];

/// Applies `transform` to one text file's contents.
pub fn apply(transform: Transform, text: &str) -> String {
    match transform {
        Transform::ReverseClauses => reverse_clauses(text),
        Transform::ClausePairs => clause_pairs(text, false),
        Transform::ReversedClausePairs => clause_pairs(text, true),
    }
}

/// A poem: its lines without clause punctuation (the title line) and its clauses (text up to
/// `，。？！；`), for every paragraph (blocks separated by blank lines).
fn poems(text: &str) -> impl Iterator<Item = (Vec<&str>, Vec<&str>)> {
    text.split("\n\n")
        .filter(|p| !p.trim().is_empty())
        .map(|paragraph| {
            let (titles, verse): (Vec<&str>, Vec<&str>) = paragraph
                .lines()
                .filter(|l| !l.trim().is_empty())
                .partition(|l| !l.contains(ENDS));
            let clauses = verse
                .into_iter()
                .flat_map(|line| line.split(ENDS))
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect();
            (titles, clauses)
        })
}

/// Clauses written two to a line as `A，B。`, the way the transforms write verse.
fn punctuated(clauses: &[&str], first: usize) -> String {
    let mut out = String::new();
    for (i, clause) in clauses.iter().enumerate() {
        out.push_str(clause);
        out.push(if (first + i) % 2 == 0 { '，' } else { '。' });
    }
    out
}

/// Rewrites verse so that each line is followed by the one before it: within every paragraph
/// lines without clause punctuation (a title line) stay first, and the clauses of the rest
/// come in reverse order, two to a line as `A，B。`. A left-to-right model that read "A, B"
/// only learns what follows A; asked what comes before B it has nothing to go on (the
/// reversal curse, Berglund et al. 2023; Physics of LMs 3.2). Reading the poems reversed too
/// fixes that.
pub fn reverse_clauses(text: &str) -> String {
    let mut out = Vec::new();
    for (titles, mut clauses) in poems(text) {
        clauses.reverse();
        let mut lines: Vec<String> = titles.iter().map(|t| t.to_string()).collect();
        lines.extend(clauses.chunks(2).map(|pair| punctuated(pair, 0)));
        out.push(lines.join("\n"));
    }
    out.join("\n\n") + "\n"
}

/// Every two neighbouring clauses of every poem on a line of their own, the lines of all poems
/// shuffled (seeded, so a source reads the same every run): `A，B。`, `B。C，`, `C，D。`…,
/// punctuated as in the poem written two clauses to a line (reversed: as `reverse_clauses`
/// writes it, so a pair's direction shows in its punctuation and the two never disagree).
/// In a poem read whole, a line can be predicted from the lines and the title before it; a
/// question gives only the one line. Pairs out of context store what follows each clause on
/// that clause alone, which is what "what is the next (previous) line?" asks.
pub fn clause_pairs(text: &str, reversed: bool) -> String {
    let mut pairs = Vec::new();
    for (_, mut clauses) in poems(text) {
        if reversed {
            clauses.reverse();
        }
        pairs.extend(
            clauses
                .windows(2)
                .enumerate()
                .map(|(i, w)| punctuated(w, i)),
        );
    }
    pairs.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(0));
    pairs.join("\n") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    const POEMS: &str = "《相思》 王维\n红豆生南国，春来发几枝。\n愿君多采撷，此物最相思。\n\n《春晓》 孟浩然\n春眠不觉晓，处处闻啼鸟。\n";

    #[test]
    fn reversed_verse_follows_each_line_with_the_one_before() {
        assert_eq!(
            reverse_clauses(POEMS),
            "《相思》 王维\n此物最相思，愿君多采撷。\n春来发几枝，红豆生南国。\n\n《春晓》 孟浩然\n处处闻啼鸟，春眠不觉晓。\n"
        );
    }

    #[test]
    fn clause_pairs_hold_every_neighbouring_pair_once_punctuated_by_position() {
        let sorted = |text: String| {
            let mut lines: Vec<String> = text.lines().map(String::from).collect();
            lines.sort();
            lines
        };
        let mut forward = vec![
            "红豆生南国，春来发几枝。",
            "春来发几枝。愿君多采撷，",
            "愿君多采撷，此物最相思。",
            "春眠不觉晓，处处闻啼鸟。",
        ];
        forward.sort();
        assert_eq!(sorted(clause_pairs(POEMS, false)), forward);
        // Reversed pairs read as the reversed text does: "B，A。" and "C。B，".
        let mut backward = vec![
            "此物最相思，愿君多采撷。",
            "愿君多采撷。春来发几枝，",
            "春来发几枝，红豆生南国。",
            "处处闻啼鸟，春眠不觉晓。",
        ];
        backward.sort();
        assert_eq!(sorted(clause_pairs(POEMS, true)), backward);
        // The same order every time: a source reads the same every run.
        assert_eq!(clause_pairs(POEMS, false), clause_pairs(POEMS, false));
    }

    #[test]
    fn no_key_clause_continues_two_ways_across_directions() {
        // "X，" and "X。" as a pair's first half: forward and reversed pairs never give one
        // key two different continuations, so the model can hold both directions at once.
        let mut next = std::collections::HashMap::new();
        for reversed in [false, true] {
            for line in clause_pairs(POEMS, reversed).lines() {
                let cut = line.find(ENDS).unwrap() + '，'.len_utf8();
                let (key, rest) = line.split_at(cut);
                let prev = next.insert(key.to_string(), rest.to_string());
                assert!(prev.is_none() || prev.as_deref() == Some(rest), "{key}");
            }
        }
    }
}
