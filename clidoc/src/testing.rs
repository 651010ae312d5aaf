//! What every binary of the toolkit prints about itself, as each binary's
//! tests check it (feature `testing`: the test helpers of `server`,
//! `loadgen`, `conformance` and `reports`, which all depend on this crate;
//! `reports` depends on no server crate, not even in its tests): the
//! `--version` line, and the root README's `--help` excerpts, so that a
//! flag added, renamed or reworded without the README fails a test naming
//! it.

use std::path::Path;

/// Checks a `--version` line: `NAME VERSION (git REV)` (VERSION the
/// crate's, which its test passes as `env!("CARGO_PKG_VERSION")`), REV the 12 hex
/// digits of a commit of this repository (or `GIT_REVISION` when a
/// packager sets it). Not necessarily `HEAD`'s: the build script watches
/// the checkout that built the binary, so a target dir shared with (or
/// copied from) another worktree keeps that worktree's revision.
pub fn assert_version_names_a_revision(printed: &str, name: &str, version: &str) {
    let prefix = format!("{name} {version} (git ");
    let rev = printed
        .strip_prefix(&prefix)
        .and_then(|rest| rest.strip_suffix(")\n"))
        .unwrap_or_else(|| panic!("expected `{prefix}REV)`: {printed:?}"));
    if let Some(given) = std::env::var("GIT_REVISION").ok().filter(|r| !r.is_empty()) {
        assert_eq!(rev, given);
        return;
    }
    assert!(
        rev.len() == 12 && rev.chars().all(|c| c.is_ascii_hexdigit()),
        "{printed:?}"
    );
    let known = std::process::Command::new("git")
        .args(["cat-file", "-e", &format!("{rev}^{{commit}}")])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("git runs (these tests run from a git checkout)");
    assert!(known.success(), "{rev} is not a commit of this repository");
}

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
