//! What every binary of the toolkit prints about itself, as each binary's
//! tests check it (feature `testing`: the test helpers of `server`,
//! `loadgen`, `conformance` and `reports`, which all depend on this crate;
//! `reports` depends on no server crate, not even in its tests).

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
