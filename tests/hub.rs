//! The hub download path, against a local stand-in for the Hugging Face hub.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use stride_data::{DataError, DatasetName, HubConfig, Resolver, Source};

use crate::support::hub_server::HubServer;
use crate::support::parquet_fixture::write_mnist_like_parquet;

/// `n` distinct 28x28 images with labels cycling through the classes.
fn examples(n: usize, salt: u8) -> Vec<(Vec<u8>, i64)> {
    (0..n)
        .map(|i| {
            let pixels = (0..784).map(|p| ((p * 7 + i * 13) as u8).wrapping_add(salt)).collect();
            (pixels, (i % 10) as i64)
        })
        .collect()
}

/// A resolver that can only find data on the hub.
fn hub_only(hub: HubConfig, empty: &std::path::Path) -> Resolver {
    Resolver {
        data_dir: None,
        repo_dir: empty.join("repo"),
        system_dir: empty.join("system"),
        hub: Some(hub),
    }
}

#[test]
fn downloads_from_the_hub_then_serves_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let (train, test) = (examples(30, 0), examples(10, 100));
    let mut files = Vec::new();
    for (file, rows) in [DatasetName::Mnist.hub_files().0, DatasetName::Mnist.hub_files().1]
        .into_iter()
        .zip([&train, &test])
    {
        let local = dir.path().join(file.replace('/', "_"));
        write_mnist_like_parquet(&local, rows).unwrap();
        files.push((
            format!("/datasets/ylecun/mnist/resolve/main/{file}"),
            std::fs::read(&local).unwrap(),
        ));
    }
    let server = HubServer::start(files);
    let hf_home = dir.path().join("hf-home");
    // The only test that touches these variables; every other test passes an explicit config.
    std::env::set_var("HF_ENDPOINT", &server.endpoint);
    std::env::set_var("HF_HOME", &hf_home);
    std::env::remove_var("HF_HUB_OFFLINE");
    let config = HubConfig::from_env().unwrap();
    assert_eq!(config.endpoint, server.endpoint);
    assert_eq!(config.cache_dir, hf_home.join("hub"));

    let loaded = hub_only(config.clone(), dir.path()).load(DatasetName::Mnist).unwrap();
    assert_eq!(
        loaded.source,
        Source::Hub {
            repo: "ylecun/mnist".into()
        }
    );
    let (got_train, got_test) = (&loaded.splits.train, &loaded.splits.test);
    assert_eq!((got_train.len(), got_test.len()), (30, 10));
    assert_eq!(
        got_train.images(),
        train.iter().flat_map(|(p, _)| p.clone()).collect::<Vec<_>>().as_slice()
    );
    assert_eq!(
        got_test.labels(),
        test.iter().map(|(_, l)| *l as u8).collect::<Vec<_>>().as_slice()
    );
    let served = server.requests();
    assert!(
        served >= 2,
        "expected the two files to be fetched, log: {:?}",
        server.request_log()
    );
    assert!(
        hf_home.join("hub/datasets--ylecun--mnist").is_dir(),
        "standard HF cache layout"
    );

    let again = hub_only(config.clone(), dir.path()).load(DatasetName::Mnist).unwrap();
    assert_eq!(again.splits.train, loaded.splits.train);
    assert_eq!(server.requests(), served, "second load must come from the cache");

    // Offline: the cache still serves; a dataset not in the cache falls through with the reason.
    let offline = HubConfig {
        offline: true,
        ..config.clone()
    };
    assert_eq!(
        hub_only(offline.clone(), dir.path())
            .load(DatasetName::Mnist)
            .unwrap()
            .splits
            .test,
        loaded.splits.test
    );
    match hub_only(offline, dir.path()).load(DatasetName::FashionMnist) {
        Err(DataError::NotFound { tried, .. }) => assert!(tried.contains("HF_HUB_OFFLINE"), "{tried}"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert_eq!(server.requests(), served);
}

#[test]
fn unreachable_hub_falls_through_within_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let config = HubConfig {
        endpoint: "http://127.0.0.1:9".into(),
        cache_dir: PathBuf::from(dir.path()).join("hub"),
        offline: false,
        connect_timeout: Duration::from_secs(3),
    };
    let start = Instant::now();
    match hub_only(config, dir.path()).load(DatasetName::FashionMnist) {
        Err(DataError::NotFound { tried, .. }) => assert!(tried.contains("cannot connect to 127.0.0.1:9"), "{tried}"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert!(start.elapsed() < Duration::from_secs(10));
}
