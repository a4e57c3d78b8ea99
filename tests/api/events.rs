//! `GET /api/events`: a job written to the database reaches SSE subscribers.

use std::time::Duration;

use futures_util::StreamExt;

use crate::helpers::{spawn_logged_in, JobFixture};

/// Reads an SSE response until `needle` appears (or fails after 10 s).
pub async fn read_until(r: reqwest::Response, needle: &str) -> String {
    let mut stream = r.bytes_stream();
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !seen.contains(needle) {
        let chunk = tokio::time::timeout_at(deadline, stream.next())
            .await
            .unwrap_or_else(|_| panic!("{needle:?} not seen within 10 s; got {seen:?}"))
            .expect("stream open")
            .expect("chunk");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    seen
}

#[tokio::test]
async fn job_changes_stream_as_job_events() {
    let app = spawn_logged_in().await;
    let node = app.insert_node("alpha", "active").await;
    let r = app.get("/api/events").await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));

    // Written behind the server's back, as another process would: the change feed finds it.
    let mut f = JobFixture::new("node_provision", "queued", &node);
    f.offset_ms = 1000;
    let id = app.insert_job(f).await;
    let seen = read_until(r, &id).await;
    let line = seen
        .lines()
        .find(|l| l.starts_with("data:") && l.contains(&id))
        .expect("data line");
    let job: serde_json::Value =
        serde_json::from_str(line.trim_start_matches("data:").trim()).unwrap();
    assert_eq!(job["status"], "queued");
    assert_eq!(job["job_type"], "node_provision");
    assert!(seen.contains("event: job"), "{seen}");
}
