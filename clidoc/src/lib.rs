//! Shell completions and man pages for the toolkit's binaries (`server`,
//! `loadgen`, `conformance`, `reports`), generated from their clap
//! definitions so they cannot drift from `--help`.
//!
//! Each binary flattens [`DocCommand`] into its subcommands (hidden: they
//! are for packagers, not for the daily `--help`) and hands it to [`run`]
//! with its own `clap::Command`:
//!
//! ```text
//! loadgen completions bash > /usr/share/bash-completion/completions/loadgen
//! loadgen man --out /usr/share/man/man1     # loadgen.1, loadgen-run.1, …
//! ```

#[cfg(feature = "testing")]
pub mod testing;

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Subcommand;
pub use clap_complete::Shell;

/// The hidden packaging subcommands every binary has.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum DocCommand {
    /// Print shell completions for SHELL (bash, zsh, fish, elvish,
    /// powershell) on stdout.
    #[command(hide = true)]
    Completions {
        #[arg(value_name = "SHELL")]
        shell: Shell,
    },
    /// Write man pages into DIR: BIN.1 and one BIN-SUBCOMMAND.1 per
    /// subcommand.
    #[command(hide = true)]
    Man {
        #[arg(long, value_name = "DIR", default_value = ".")]
        out: PathBuf,
    },
}

/// Carries out `what` for the binary whose definition is `cmd`: the
/// completions go to `stdout`, the man pages to their folder (created if
/// missing); the files written are listed on `stdout`.
pub fn run(cmd: clap::Command, what: &DocCommand, stdout: &mut dyn Write) -> std::io::Result<()> {
    match what {
        DocCommand::Completions { shell } => {
            completions(cmd, *shell, stdout);
            Ok(())
        }
        DocCommand::Man { out } => {
            for page in man_pages(cmd, out)? {
                writeln!(stdout, "{}", page.display())?;
            }
            Ok(())
        }
    }
}

/// The completion script of `cmd` for `shell`.
pub fn completions(mut cmd: clap::Command, shell: Shell, out: &mut dyn Write) {
    let name = cmd.get_name().to_owned();
    clap_complete::generate(shell, &mut cmd, name, out);
}

/// Writes `cmd`'s man pages into `dir` (`clap_mangen::generate_to`:
/// the hidden subcommands, like these, are left out); returns their
/// paths, the main page first.
pub fn man_pages(cmd: clap::Command, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let name = cmd.get_name().to_owned();
    clap_mangen::generate_to(cmd, dir)?;
    let main = dir.join(format!("{name}.1"));
    let mut pages = vec![main.clone()];
    let mut subs: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|f| f.to_str())
                .is_some_and(|f| f.starts_with(&format!("{name}-")) && f.ends_with(".1"))
        })
        .collect();
    subs.sort();
    pages.extend(subs);
    Ok(pages)
}

/// The visible subcommands of `cmd` (for tests: each must show up in the
/// completions and the man pages).
pub fn visible_subcommands(cmd: &clap::Command) -> Vec<String> {
    cmd.get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        .map(|s| s.get_name().to_owned())
        .collect()
}

/// Checks that every shell's completions and the man pages of `cmd`
/// mention each visible subcommand and flag; returns what is missing
/// (empty: all there). The four binaries' tests call it.
pub fn missing_mentions(cmd: &clap::Command) -> Vec<String> {
    let mut missing = Vec::new();
    let subs = visible_subcommands(cmd);
    let flags: Vec<String> = cmd
        .get_arguments()
        .filter(|a| !a.is_hide_set())
        .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
        .collect();
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let mut out = Vec::new();
        completions(cmd.clone(), shell, &mut out);
        let text = String::from_utf8_lossy(&out);
        for sub in &subs {
            if !text.contains(sub.as_str()) {
                missing.push(format!("{shell} completions: subcommand `{sub}`"));
            }
        }
        // fish writes `-l flag`, bash and zsh `--flag`.
        for flag in &flags {
            let fish = format!("-l {}", &flag[2..]);
            if !text.contains(flag.as_str()) && !text.contains(&fish) {
                missing.push(format!("{shell} completions: flag `{flag}`"));
            }
        }
    }
    let dir = match tempfile_dir() {
        Ok(d) => d,
        Err(e) => return vec![format!("a temporary folder: {e}")],
    };
    match man_pages(cmd.clone(), &dir) {
        Ok(pages) => {
            let main = std::fs::read_to_string(&pages[0]).unwrap_or_default();
            for sub in &subs {
                let page = dir.join(format!("{}-{sub}.1", cmd.get_name()));
                if !page.exists() {
                    missing.push(format!("man page {}", page.display()));
                }
                if !main.contains(sub.as_str()) {
                    missing.push(format!("{}: subcommand `{sub}`", pages[0].display()));
                }
            }
        }
        Err(e) => missing.push(format!("man pages: {e}")),
    }
    let _ = std::fs::remove_dir_all(&dir);
    missing
}

/// A fresh folder under the system's temporary one.
fn tempfile_dir() -> std::io::Result<PathBuf> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "clidoc-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    /// A small tool with two subcommands and the packaging ones.
    #[derive(Debug, Parser)]
    #[command(name = "tool")]
    struct Tool {
        #[command(subcommand)]
        command: Sub,
    }

    #[derive(Debug, Subcommand)]
    enum Sub {
        /// Go somewhere
        Go {
            #[arg(long)]
            fast: bool,
        },
        /// Stay
        Stay,
        #[command(flatten)]
        Docs(DocCommand),
    }

    #[test]
    fn every_subcommand_is_mentioned_and_the_packaging_ones_are_hidden() {
        let cmd = Tool::command();
        assert_eq!(visible_subcommands(&cmd), ["go", "stay"]);
        assert_eq!(missing_mentions(&cmd), Vec::<String>::new());
        let dir = tempfile::tempdir().unwrap();
        let pages = man_pages(Tool::command(), dir.path()).unwrap();
        let names: Vec<String> = pages
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["tool.1", "tool-go.1", "tool-stay.1"]);
        let go = std::fs::read_to_string(&pages[1]).unwrap();
        assert!(go.contains("fast"), "{go}");
        assert!(go.contains(".TH tool-go"), "{go}");
    }

    #[test]
    fn completions_run_through_the_subcommand() {
        // Hidden subcommands are not the user's.
        let bare = clap::Command::new("tool").subcommand(clap::Command::new("go").hide(true));
        assert!(visible_subcommands(&bare).is_empty());
        let parsed = Tool::try_parse_from(["tool", "completions", "fish"]).unwrap();
        let Sub::Docs(what) = parsed.command else {
            panic!("parsed {parsed:?}")
        };
        let mut out = Vec::new();
        run(Tool::command(), &what, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("complete -c tool"), "{text}");
        assert!(text.contains("-l fast"), "{text}");
    }
}

/// The image (`deploy/Dockerfile`) against the README's packaging section:
/// the binaries the README names are the ones built and copied.
#[cfg(test)]
mod image {
    use std::path::Path;

    const BINARIES: [&str; 4] = ["server", "loadgen", "conformance", "reports"];

    fn read(path: &str) -> String {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    #[test]
    fn the_image_carries_the_four_binaries() {
        let dockerfile = read("deploy/Dockerfile");
        let build = dockerfile
            .lines()
            .find(|l| l.starts_with("RUN cargo build"))
            .expect("a cargo build step");
        let copy = dockerfile
            .lines()
            .find(|l| l.starts_with("COPY --from=build") && l.ends_with("/usr/local/bin/"))
            .expect("a COPY of the binaries");
        let readme = read("README.md");
        let section = readme
            .split("\n## Packaging")
            .nth(1)
            .and_then(|s| s.split("\n## ").next())
            .expect("README: a Packaging section");
        for bin in BINARIES {
            assert!(build.contains(&format!("-p {bin}")), "{bin} built: {build}");
            assert!(
                copy.contains(&format!("/target/release/{bin} ")),
                "{bin} copied: {copy}"
            );
            assert!(section.contains(&format!("`{bin}`")), "README names {bin}");
        }
        // What the README runs in the image is there.
        for line in section.lines().filter(|l| l.starts_with("docker run")) {
            let bin = line
                .split_whitespace()
                .nth(4)
                .expect("docker run ... IMAGE BIN");
            assert!(BINARIES.contains(&bin), "{line}");
        }
        for dest in [
            "/usr/local/share/man/man1",
            "bash-completion",
            "zsh",
            "fish",
        ] {
            assert!(dockerfile.contains(dest), "the image has {dest}");
        }
    }
}
