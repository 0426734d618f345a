//! `kill -9` of `reckon run` while postbacks are being answered: every
//! postback that got a 200 is in the store afterwards (the endpoint answers
//! only after its group is committed and flushed).

use reckon_tests::reckon_bin;
use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_right_after_200s_loses_no_acknowledged_postback() {
    let dir = tempfile::tempdir().unwrap();
    let port = reckon_tests::free_port();
    let config = dir.path().join("reckon.toml");
    std::fs::write(
        &config,
        format!(
            "[daemon]\ndata_dir = \"data\"\nlisten = \"127.0.0.1:{port}\"\n\n\
             [[postbacks]]\nid = \"pb\"\nsecret = {{ secret = \"env:RECKON_TEST_PB_SECRET\" }}\ndefault_currency = \"USD\"\n"
        ),
    )
    .unwrap();
    let mut child = Command::new(reckon_bin())
        .arg("run")
        .arg("--config")
        .arg(&config)
        .env("RECKON_TEST_PB_SECRET", "s3cret")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    // Wait (with a deadline) until the server answers.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = client.get(format!("{base}/healthz")).send().await {
            if r.status().is_success() {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "reckon run did not start listening"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "reckon run exited early"
        );
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // 64 clients send postbacks in a loop; once 300 have been acknowledged
    // the daemon is killed with SIGKILL while the others are in flight.
    let acked = Arc::new(std::sync::Mutex::new(BTreeSet::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let next = Arc::new(AtomicUsize::new(0));
    let pid = child.id();
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let (client, base, acked, count, next) = (
            client.clone(),
            base.clone(),
            acked.clone(),
            count.clone(),
            next.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::SeqCst);
                if n > 20_000 {
                    return;
                }
                let url = format!(
                    "{base}/postback/pb?tid=k{n}&affid=p{}&amount={n}.5&token=s3cret",
                    n % 9
                );
                match client.get(url).send().await {
                    Ok(r) if r.status().as_u16() == 200 => {
                        acked.lock().unwrap().insert(format!("k{n}"));
                        if count.fetch_add(1, Ordering::SeqCst) + 1 == 300 {
                            // SIGKILL: no chance to flush or clean up.
                            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
                        }
                    }
                    Ok(r) => panic!("unexpected status {}", r.status()),
                    Err(_) => return, // the daemon is gone
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let status = child.wait().unwrap();
    assert!(!status.success(), "the daemon should have been killed");
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 300, "only {} acknowledged", acked.len());

    // Every acknowledged postback is in the store.
    let out = Command::new(reckon_bin())
        .args([
            "records",
            "export",
            "--kind",
            "conversions",
            "--source",
            "pb",
            "--config",
        ])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stored: BTreeSet<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["revision"], 1);
            v["key"].as_str().unwrap().to_owned()
        })
        .collect();
    let lost: Vec<_> = acked.difference(&stored).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged postbacks lost, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
}
