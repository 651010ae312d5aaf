//! Build script shared by the tools (`build = "../formats/build_git_revision.rs"`
//! in loadgen, conformance, reports and server): sets `GIT_REVISION_SUFFIX` to
//! ` (git <12 hex digits>)` when the source is a git checkout and `git` is
//! on the PATH, else to nothing (a tarball build says only its version).
//! `--version` and every report's `tool` field read it.

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

fn main() {
    println!("cargo:rerun-if-env-changed=GIT_REVISION");
    // A packager without .git may hand the revision in.
    let rev = std::env::var("GIT_REVISION")
        .ok()
        .filter(|r| !r.is_empty())
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]));
    if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        // A commit or checkout moves HEAD's reflog; only watch files that
        // exist (a missing one would rebuild every time).
        for f in ["HEAD", "logs/HEAD"] {
            let p = Path::new(&dir).join(f);
            if p.exists() {
                println!("cargo:rerun-if-changed={}", p.display());
            }
        }
    }
    let suffix = rev.map(|r| format!(" (git {r})")).unwrap_or_default();
    println!("cargo:rustc-env=GIT_REVISION_SUFFIX={suffix}");
}
