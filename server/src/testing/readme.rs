//! The root README's `--help` excerpts, as the tests that keep them in
//! step with the binaries need them: each binary's test runs it with
//! `--help` and compares the output with [`help_excerpt`], so a flag added,
//! renamed or reworded without the README fails a test naming it.

use std::path::Path;

/// The README's fenced ```` ```text ```` block that has `first_line`
/// (e.g. `Usage: loadgen run [OPTIONS] <SCENARIO>`) as a line, from that
/// line to the end of the block (a `$ tool --help` line and the
/// description above it are left out); `None` when there is none.
pub fn help_excerpt(first_line: &str) -> Option<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let readme = std::fs::read_to_string(&path).expect("the root README.md");
    let mut from = 0;
    while let Some(open) = readme[from..].find("```text\n").map(|i| from + i) {
        let body = open + "```text\n".len();
        let close = body + readme[body..].find("\n```")?;
        let block = &readme[body..close];
        if let Some(at) = block
            .lines()
            .position(|l| l == first_line)
            .map(|n| block.lines().take(n).map(|l| l.len() + 1).sum::<usize>())
        {
            return Some(block[at..].to_owned());
        }
        from = close + 4;
    }
    None
}

/// Asserts that `help` (a binary's `--help` output) is, from its `Usage:`
/// line on and but for trailing whitespace, the README's excerpt that
/// starts with that line (the one-line description above it is left out
/// there).
pub fn assert_help_in_readme(help: &str) {
    let from = help.find("Usage: ").expect("--help has a Usage: line");
    let help = help[from..].trim_end();
    let first = help.lines().next().expect("--help printed something");
    let excerpt = help_excerpt(first)
        .unwrap_or_else(|| panic!("README.md has no ```text block starting `{first}`"));
    assert!(
        excerpt.trim_end() == help,
        "README.md's excerpt of `{first}` differs from --help; it must read:\n{help}"
    );
}
