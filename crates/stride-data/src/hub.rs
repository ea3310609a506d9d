//! Download of MNIST-like datasets from the Hugging Face hub, cached in the
//! standard HF cache (`$HF_HOME/hub`, default `~/.cache/huggingface/hub`).

use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use hf_hub::api::sync::ApiBuilder;
use hf_hub::{Cache, Repo, RepoType};

use crate::dataset::{DatasetName, Splits};
use crate::error::{DataError, Result};
use crate::parquet_images::read_image_parquet;

/// The public hub, used when `HF_ENDPOINT` is not set.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// Where and how to reach the hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubConfig {
    /// Base URL of the hub (`HF_ENDPOINT`, default [`DEFAULT_ENDPOINT`]).
    pub endpoint: String,
    /// The hub cache directory (`$HF_HOME/hub`, default `~/.cache/huggingface/hub`).
    pub cache_dir: PathBuf,
    /// Use only what is cached (`HF_HUB_OFFLINE=1`).
    pub offline: bool,
    /// How long to wait for a TCP connection before falling through (default 3 s).
    pub connect_timeout: Duration,
}

impl HubConfig {
    /// Reads `HF_ENDPOINT`, `HF_HOME` and `HF_HUB_OFFLINE`; `None` when no cache
    /// directory can be determined (neither `HF_HOME` nor `HOME` is set).
    pub fn from_env() -> Option<Self> {
        let cache_dir = match std::env::var_os("HF_HOME") {
            Some(home) => PathBuf::from(home).join("hub"),
            None => PathBuf::from(std::env::var_os("HOME")?)
                .join(".cache")
                .join("huggingface")
                .join("hub"),
        };
        let offline = std::env::var("HF_HUB_OFFLINE")
            .map(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"))
            .unwrap_or(false);
        Some(Self {
            endpoint: std::env::var("HF_ENDPOINT").unwrap_or_else(|_| DEFAULT_ENDPOINT.to_string()),
            cache_dir,
            offline,
            connect_timeout: Duration::from_secs(3),
        })
    }
}

/// Loads the train and test splits of `name` from the hub cache, downloading what is missing.
pub fn load_from_hub(name: DatasetName, config: &HubConfig) -> Result<Splits> {
    let (train_file, test_file) = name.hub_files();
    let train = fetch(name, config, train_file)?;
    let test = fetch(name, config, test_file)?;
    Ok(Splits {
        train: read_image_parquet(&train)?,
        test: read_image_parquet(&test)?,
    })
}

/// Returns the local path of `file`, from the cache or freshly downloaded.
fn fetch(name: DatasetName, config: &HubConfig, file: &str) -> Result<PathBuf> {
    let repo_id = name.hub_repo();
    let hub_err = |message: String| DataError::Hub {
        repo: repo_id.to_string(),
        message,
    };
    let repo = Repo::new(repo_id.to_string(), RepoType::Dataset);
    if let Some(path) = Cache::new(config.cache_dir.clone()).repo(repo.clone()).get(file) {
        tracing::debug!(file, path = %path.display(), "hub file served from cache");
        return Ok(path);
    }
    if config.offline {
        return Err(hub_err(format!(
            "{file} is not in the cache {} and HF_HUB_OFFLINE is set",
            config.cache_dir.display()
        )));
    }
    // hf-hub's agent has no connect timeout; a quick probe makes an unreachable
    // hub fall through in seconds instead of hanging.
    probe(&config.endpoint, config.connect_timeout).map_err(hub_err)?;
    tracing::info!(repo = repo_id, file, endpoint = %config.endpoint, "downloading from the hub");
    let api = ApiBuilder::from_cache(Cache::new(config.cache_dir.clone()))
        .with_endpoint(config.endpoint.clone())
        .with_progress(false)
        .build()
        .map_err(|e| hub_err(e.to_string()))?;
    api.repo(repo)
        .download(file)
        .map_err(|e| hub_err(format!("download of {file} failed: {e}")))
}

/// Checks that the endpoint's host resolves and accepts a TCP connection.
fn probe(endpoint: &str, timeout: Duration) -> std::result::Result<(), String> {
    let (default_port, rest) = if let Some(rest) = endpoint.strip_prefix("https://") {
        (443, rest)
    } else if let Some(rest) = endpoint.strip_prefix("http://") {
        (80, rest)
    } else {
        return Err(format!("endpoint {endpoint:?} is not an http(s) URL"));
    };
    let authority = rest.split('/').next().unwrap_or(rest);
    let with_port = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        authority.to_string()
    } else {
        format!("{authority}:{default_port}")
    };
    let addrs: Vec<_> = with_port
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {authority}: {e}"))?
        .collect();
    let mut last = format!("{authority} has no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(_) => return Ok(()),
            Err(e) => last = format!("cannot connect to {addr}: {e}"),
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_endpoint_fails_fast() {
        // Port 9 on loopback is closed: the probe must say so, not hang.
        let err = probe("http://127.0.0.1:9", Duration::from_secs(1)).unwrap_err();
        assert!(err.contains("127.0.0.1:9"), "{err}");
        assert!(probe("ftp://x", Duration::from_secs(1)).is_err());
    }
}
