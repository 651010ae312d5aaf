//! Which target a run loads: `--target`, else the profile's `url`, else
//! (with the default `embedded` feature) the reference server started
//! in-process on a loopback port with a temporary database
//! ([`server::Embedded`]). Without the feature loadgen is a pure client
//! and a missing target is a usage error.

use crate::error::Error;

/// The target of a run, and the in-process server behind it if loadgen
/// started one.
#[derive(Debug)]
pub(crate) struct Target {
    /// Base URL, without a trailing `/`.
    pub url: String,
    #[cfg(feature = "embedded")]
    embedded: Option<server::Embedded>,
}

/// Checks a `--target` before anything runs.
pub(crate) fn check_url(target: &str) -> Result<(), Error> {
    if reqwest::Url::parse(target).is_ok_and(|u| u.has_host()) {
        Ok(())
    } else {
        Err(Error::BadTarget(target.to_owned()))
    }
}

impl Target {
    /// `given` (the flag, else the profile's URL), or the embedded server.
    pub async fn choose(given: Option<String>) -> Result<Target, Error> {
        match given {
            Some(url) => Ok(Target {
                url: url.trim_end_matches('/').to_owned(),
                #[cfg(feature = "embedded")]
                embedded: None,
            }),
            None => Target::embedded().await,
        }
    }

    #[cfg(feature = "embedded")]
    async fn embedded() -> Result<Target, Error> {
        let running = server::Embedded::start()
            .await
            .map_err(|e| Error::EmbeddedServer(format!("{e:#}")))?;
        let url = running.url();
        eprintln!(
            "loadgen: no --target given: started the reference server in-process at {url} (temporary database)"
        );
        Ok(Target {
            url,
            embedded: Some(running),
        })
    }

    #[cfg(not(feature = "embedded"))]
    async fn embedded() -> Result<Target, Error> {
        Err(Error::NoEmbeddedServer)
    }

    /// Stops the in-process server, if any.
    pub async fn stop(self) {
        #[cfg(feature = "embedded")]
        if let Some(running) = self.embedded {
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
            Err(Error::BadTarget(_))
        ));
        assert!(matches!(check_url("nonsense"), Err(Error::BadTarget(_))));
    }

    #[tokio::test]
    async fn a_given_target_loses_its_trailing_slash() {
        let t = Target::choose(Some("http://127.0.0.1:9/".into()))
            .await
            .unwrap();
        assert_eq!(t.url, "http://127.0.0.1:9");
        t.stop().await;
    }
}
