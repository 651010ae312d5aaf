//! Did-you-mean hints for names a user typed: one implementation for
//! every tool (loadgen's scenario keys, variables and threshold metrics,
//! `reports compare`'s rule metrics).

/// `` (did you mean `x`?)`` when a candidate is near `word` (an edit
/// distance of at most 2, or 3 for a word longer than 6 characters);
/// else the empty string. Of equally near candidates, the first.
pub fn did_you_mean(word: &str, candidates: &[&str]) -> String {
    match nearest(word, candidates) {
        Some(c) => format!(" (did you mean `{c}`?)"),
        None => String::new(),
    }
}

/// The candidate nearest `word`, when near enough to suggest (see
/// [`did_you_mean`]).
pub fn nearest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let (d, c) = candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .min_by_key(|(d, _)| *d)?;
    (d <= 2 || (d <= 3 && word.chars().count() > 6)).then_some(c)
}

/// Levenshtein distance, in characters.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_and_hints() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("µs", "us"), 1);
        assert_eq!(
            did_you_mean("errors.timout", &["connect", "errors.timeout"]),
            " (did you mean `errors.timeout`?)"
        );
        assert_eq!(
            nearest("fanout.stage:tik", &["fanout.stage:tick", "connect"]),
            Some("fanout.stage:tick")
        );
        assert_eq!(did_you_mean("zzz", &["connect"]), "");
        assert_eq!(nearest("abc", &[]), None);
    }
}
