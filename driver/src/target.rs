//! Which target a tool runs against: the URL given (`--target`, else the
//! profile's `url`), else, with the `embedded` cargo feature, the
//! reference server started in-process on a loopback port with a
//! temporary database ([`server::Embedded`]). Without the feature the
//! tools are pure clients (no database driver, no Redis client, no HTTP
//! server in the build) and a missing target is a usage error.
//!
//! loadgen and conformance both choose their target here, so they take
//! the same URLs and say the same things.

/// Why no target could be chosen.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The given target is not a URL with a host.
    #[error("--target must be a URL with a host, e.g. http://127.0.0.1:3000 (got `{0}`)")]
    BadUrl(String),
    /// No target given, and the build has no in-process reference server.
    #[error(
        "no target: give --target URL (or `url` in the profile's [target]); this build has no \
         in-process reference server (cargo feature `embedded`)"
    )]
    NoTarget,
    /// The in-process reference server did not start.
    #[error("starting the in-process reference server: {0}")]
    Embedded(String),
}

/// Checks a given target before anything runs.
pub fn check_url(target: &str) -> Result<(), TargetError> {
    if reqwest::Url::parse(target).is_ok_and(|u| u.has_host()) {
        Ok(())
    } else {
        Err(TargetError::BadUrl(target.to_owned()))
    }
}

/// The target of a run, and the in-process server behind it if the tool
/// started one.
#[derive(Debug)]
pub struct Target {
    url: String,
    #[cfg(feature = "embedded")]
    embedded: Option<server::Embedded>,
}

impl Target {
    /// `given` (checked, without its trailing `/`), or the in-process
    /// server; `tool` names the caller in the line that says a server was
    /// started.
    pub async fn choose(given: Option<String>, tool: &str) -> Result<Target, TargetError> {
        match given {
            Some(url) => {
                check_url(&url)?;
                Ok(Target {
                    url: url.trim_end_matches('/').to_owned(),
                    #[cfg(feature = "embedded")]
                    embedded: None,
                })
            }
            None => Target::embedded(tool).await,
        }
    }

    /// Base URL, without a trailing `/`.
    pub fn url(&self) -> &str {
        &self.url
    }

    #[cfg(feature = "embedded")]
    async fn embedded(tool: &str) -> Result<Target, TargetError> {
        let running = server::Embedded::start()
            .await
            .map_err(|e| TargetError::Embedded(format!("{e:#}")))?;
        let url = running.url();
        eprintln!(
            "{tool}: no --target given: started the reference server in-process at {url} (temporary database)"
        );
        Ok(Target {
            url,
            embedded: Some(running),
        })
    }

    #[cfg(not(feature = "embedded"))]
    async fn embedded(_tool: &str) -> Result<Target, TargetError> {
        Err(TargetError::NoTarget)
    }

    /// Stops the in-process server, if any (closes its sockets, removes
    /// its database).
    pub async fn stop(self) {
        #[cfg(feature = "embedded")]
        if let Some(running) = self.embedded {
            // The results are in; a failure to stop cleanly changes none.
            let _ = running.stop().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_must_be_urls_with_a_host() {
        assert!(check_url("http://127.0.0.1:3000").is_ok());
        assert!(matches!(
            check_url("localhost:3000"),
            Err(TargetError::BadUrl(_))
        ));
        assert!(matches!(check_url("nonsense"), Err(TargetError::BadUrl(_))));
    }

    #[tokio::test]
    async fn a_given_target_loses_its_trailing_slash() {
        let t = Target::choose(Some("http://127.0.0.1:9/".into()), "test")
            .await
            .unwrap();
        assert_eq!(t.url(), "http://127.0.0.1:9");
        t.stop().await;
    }
}
