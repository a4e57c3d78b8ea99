//! Node endpoints and the node state machine around `node_provision`, driven through the HTTP
//! API with a scripted runner standing in for Ansible (the control plane's own logic only; the
//! real provisioning is the end-to-end test).

use pressluft::jobs::JobErrorCode;
use serde_json::{json, Value};

use crate::helpers::{assert_error, assert_field_error, job_id, TestApp};
use crate::stand_in::{StandIn, Step};

/// Answers each run with the next scripted step (the last one repeats), printing a line first.
async fn app(answers: Vec<Step>) -> TestApp {
    let (last, first) = answers.split_last().unwrap();
    let (app, _) = first
        .iter()
        .fold(StandIn::new(), |s, a| s.then("node_provision", a.clone()))
        .otherwise(last.clone())
        .says("PLAY [target] scripted")
        .spawn()
        .await;
    app.login().await;
    app
}

async fn register(app: &TestApp, body: Value) -> reqwest::Response {
    app.post_json("/api/nodes", body).await
}

async fn registered(app: &TestApp, body: Value) -> String {
    job_id(register(app, body).await).await
}

async fn node(app: &TestApp, id: &str) -> Value {
    app.get_json(&format!("/api/nodes/{id}")).await.1
}

async fn job_node(app: &TestApp, job_id: &str) -> String {
    app.get_json(&format!("/api/jobs/{job_id}")).await.1["node_id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A local node registered through the API (its `node_provision` queued, not run yet); the
/// stand-in answers that the firewall was refused.
async fn registered_local_node() -> (TestApp, String, String) {
    let app = app(vec![Step::ok(json!({
        "firewall": {"status": "unavailable", "message": "The kernel refused ufw: iptables is not available."},
        "fail2ban": {"status": "active", "message": "Fail2Ban runs."}
    }))])
    .await;
    let job_id = registered(&app, json!({"name": "This host", "hostname": "127.0.0.1", "public_ip": "127.0.0.1", "is_local": true})).await;
    let node_id = job_node(&app, &job_id).await;
    (app, job_id, node_id)
}

/// [`registered_local_node`] after its `node_provision` ran.
async fn provisioned_local_node() -> (TestApp, String, String) {
    let (app, job_id, node_id) = registered_local_node().await;
    app.state.engine.run_until_idle("w").await.unwrap();
    (app, job_id, node_id)
}

#[tokio::test]
async fn registering_a_node_queues_its_provisioning() {
    let (app, job_id, node_id) = registered_local_node().await;
    let n = node(&app, &node_id).await;
    assert_eq!(n["status"], "provisioning");
    assert_eq!(
        (
            n["ssh_port"].as_i64(),
            n["ssh_user"].as_str(),
            n["is_local"].as_bool()
        ),
        (Some(22), Some("root"), Some(true))
    );
    let (_, job) = app.get_json(&format!("/api/jobs/{job_id}")).await;
    assert_eq!(
        (
            job["job_type"].as_str(),
            job["status"].as_str(),
            job["site_id"].is_null()
        ),
        (Some("node_provision"), Some("queued"), true)
    );
}

#[tokio::test]
async fn a_provisioned_node_is_active_with_its_firewall_state_and_listed() {
    let (app, _, node_id) = provisioned_local_node().await;
    let n = node(&app, &node_id).await;
    assert_eq!(n["status"], "active");
    assert!(n["last_seen_at"].is_string());
    assert_eq!(n["firewall_status"], "unavailable");
    assert!(
        n["provision_warning"]
            .as_str()
            .unwrap()
            .contains("refused ufw"),
        "{n}"
    );

    let (_, list) = app.get_json("/api/nodes").await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (_, key) = app.get_json("/api/nodes/ssh-public-key").await;
    assert!(key["public_key"]
        .as_str()
        .unwrap()
        .starts_with("ssh-ed25519 "));
}

/// Output is kept: the log file and the stored tail; the audit row follows the job.
#[tokio::test]
async fn provisioning_keeps_its_output_and_audits_its_result() {
    let (app, job_id, node_id) = provisioned_local_node().await;
    let out = app.text(&format!("/api/jobs/{job_id}/output")).await;
    assert!(out.contains("PLAY [target] scripted"), "{out}");
    let stored = app.store.get_job(&job_id).await.unwrap().unwrap();
    assert!(
        stored
            .output_tail
            .unwrap_or_default()
            .contains("PLAY [target] scripted"),
        "the tail is stored with the job"
    );

    let (_, audit) = app
        .get_json(&format!(
            "/api/audit-logs?resource_type=node&resource_id={node_id}"
        ))
        .await;
    assert_eq!(audit.as_array().unwrap().len(), 1, "{audit}");
    assert_eq!(audit[0]["action"], "node_provision");
    assert_eq!(audit[0]["result"], "succeeded");
    assert_eq!(audit[0]["job_id"], job_id.as_str());
    assert_eq!(audit[0]["user_email"], crate::helpers::ADMIN_EMAIL);
}

/// Provision again; a second request while it is queued is refused and audited.
#[tokio::test]
async fn a_second_provision_request_while_one_is_queued_is_refused_and_audited() {
    let (app, _, node_id) = provisioned_local_node().await;
    app.clock.advance(time::Duration::seconds(1));
    let r = app
        .post_empty(&format!("/api/nodes/{node_id}/provision"))
        .await;
    assert_eq!(r.status(), 202);
    app.clock.advance(time::Duration::seconds(1));
    let r = app
        .post_empty(&format!("/api/nodes/{node_id}/provision"))
        .await;
    assert_error(r, 409, "conflict").await;
    let (_, audit) = app
        .get_json(&format!("/api/audit-logs?resource_id={node_id}"))
        .await;
    let results = crate::helpers::column(&audit, "result");
    assert_eq!(results, ["rejected", "accepted", "succeeded"]);
}

#[tokio::test]
async fn a_second_local_node_is_refused() {
    let app = app(vec![Step::ok(json!({}))]).await;
    let body = json!({"name": "a", "hostname": "127.0.0.1", "is_local": true});
    assert_eq!(register(&app, body.clone()).await.status(), 202);
    app.clock.advance(time::Duration::seconds(1));
    assert_error(register(&app, body).await, 409, "conflict").await;
    let (_, list) = app.get_json("/api/nodes").await;
    assert_eq!(list.as_array().unwrap().len(), 1, "nothing half-created");
    let (_, audit) = app.get_json("/api/audit-logs?resource_type=node").await;
    assert_eq!(audit[0]["result"], "rejected");
}

#[tokio::test]
async fn registration_validates_every_field() {
    let app = app(vec![Step::ok(json!({}))]).await;
    for (body, field) in [
        (json!({"name": "", "hostname": "h.example"}), "name"),
        (json!({"name": "n", "hostname": "not a host"}), "hostname"),
        (
            json!({"name": "n", "hostname": "h.example", "public_ip": "2001:db8::1"}),
            "public_ip",
        ),
        (
            json!({"name": "n", "hostname": "h.example", "ssh_port": 70000}),
            "ssh_port",
        ),
        (
            json!({"name": "n", "hostname": "h.example", "ssh_user": "Root"}),
            "ssh_user",
        ),
        (
            json!({"name": "n", "hostname": "h.example", "colour": "red"}),
            "colour",
        ),
        (
            json!({"name": "n", "hostname": "h.example", "ssh_port": "22"}),
            "ssh_port",
        ),
    ] {
        let r = register(&app, body.clone()).await;
        assert_field_error(r, 400, "bad_request", field).await;
    }
    let (_, list) = app.get_json("/api/nodes").await;
    assert!(list.as_array().unwrap().is_empty());
    let r = app
        .get(&format!("/api/nodes/{}", uuid::Uuid::new_v4()))
        .await;
    assert_error(r, 404, "not_found").await;
    let r = app
        .post_empty(&format!("/api/nodes/{}/provision", uuid::Uuid::new_v4()))
        .await;
    assert_error(r, 404, "not_found").await;
}

#[tokio::test]
async fn an_unreachable_node_ends_unreachable_after_its_retries() {
    let unreachable = Step::failing(
        JobErrorCode::AnsibleHostUnreachable,
        "ssh: connect to host 203.0.113.9 port 22: Connection refused",
    );
    let app = app(vec![unreachable]).await;
    let job_id = registered(&app, json!({"name": "far", "hostname": "203.0.113.9"})).await;
    let node_id = job_node(&app, &job_id).await;
    for _ in 0..3 {
        app.state.engine.run_until_idle("w").await.unwrap();
        assert_eq!(
            node(&app, &node_id).await["status"],
            if app.get_json(&format!("/api/jobs/{job_id}")).await.1["status"] == "failed" {
                "unreachable"
            } else {
                "provisioning"
            }
        );
        app.clock.advance(time::Duration::minutes(16));
    }
    let (_, job) = app.get_json(&format!("/api/jobs/{job_id}")).await;
    assert_eq!(
        (job["status"].as_str(), job["attempt_count"].as_i64()),
        (Some("failed"), Some(3))
    );
    assert_eq!(job["error_code"], "ANSIBLE_HOST_UNREACHABLE");
    assert_eq!(node(&app, &node_id).await["status"], "unreachable");
}

#[tokio::test]
async fn a_failed_reprovision_leaves_an_active_node_active() {
    let failure = Step::failing(JobErrorCode::AnsibleSyntaxError, "bad");
    let app = app(vec![Step::ok(json!({})), failure]).await;
    let job_id = registered(&app, json!({"name": "n", "hostname": "10.1.2.3"})).await;
    let node_id = job_node(&app, &job_id).await;
    app.state.engine.run_until_idle("w").await.unwrap();
    assert_eq!(node(&app, &node_id).await["status"], "active");
    let second = crate::helpers::job_id(
        app.post_empty(&format!("/api/nodes/{node_id}/provision"))
            .await,
    )
    .await;
    assert_ne!(second, job_id);
    assert_eq!(app.state.engine.run_until_idle("w").await.unwrap(), 1);
    // The second job really ran (one attempt, the scripted failure) and failed finally.
    let (_, job) = app.get_json(&format!("/api/jobs/{second}")).await;
    assert_eq!(
        (
            job["status"].as_str(),
            job["attempt_count"].as_i64(),
            job["error_code"].as_str()
        ),
        (Some("failed"), Some(1), Some("ANSIBLE_SYNTAX_ERROR")),
        "{job}"
    );
    assert_eq!(
        node(&app, &node_id).await["status"],
        "active",
        "keeps serving"
    );
}

#[tokio::test]
async fn cancelling_a_queued_provision_marks_the_node_unreachable() {
    let app = app(vec![Step::ok(json!({}))]).await;
    let job_id = registered(&app, json!({"name": "n", "hostname": "10.1.2.3"})).await;
    let node_id = job_node(&app, &job_id).await;
    let r = app.post_empty(&format!("/api/jobs/{job_id}/cancel")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(node(&app, &node_id).await["status"], "unreachable");
    let (_, audit) = app
        .get_json(&format!(
            "/api/audit-logs?resource_type=node&resource_id={node_id}"
        ))
        .await;
    assert_eq!(audit[0]["result"], "cancelled");
}

#[tokio::test]
async fn audit_log_filters_are_validated() {
    let app = app(vec![Step::ok(json!({}))]).await;
    let r = app.get("/api/audit-logs?resource_type=planet").await;
    assert_field_error(r, 400, "bad_request", "resource_type").await;
    let r = app.get("/api/audit-logs?limit=0").await;
    assert_error(r, 400, "bad_request").await;
}

#[tokio::test]
async fn job_events_replay_output_and_end() {
    let app = app(vec![Step::ok(json!({}))]).await;
    let job_id = registered(&app, json!({"name": "n", "hostname": "10.1.2.3"})).await;
    let stream = app.get(&format!("/api/jobs/{job_id}/events")).await;
    assert_eq!(stream.status(), 200);
    app.state.engine.run_until_idle("w").await.unwrap();
    let seen = crate::events::read_until(stream, "event: end").await;
    assert!(seen.contains("event: job"), "{seen}");
    assert!(seen.contains("PLAY [target] scripted"), "{seen}");
    assert!(seen.contains("\"status\":\"succeeded\""), "{seen}");
}

/// Issue 17: replicas starting at once on an empty database each try to register this host as
/// the local node; exactly one does (with one `node_provision`), the other starts without error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_starting_at_once_register_one_local_node() {
    let app = crate::helpers::spawn_app().await;
    let (a, b) = tokio::join!(
        app.state.nodes.register_local_if_missing(None),
        app.state.nodes.register_local_if_missing(None),
    );
    let registered: Vec<String> = [a.unwrap(), b.unwrap()].into_iter().flatten().collect();
    assert_eq!(registered.len(), 1, "one registration: {registered:?}");
    let (nodes, provisions): (i64, i64) = pressluft::store::query_as(
        "SELECT (SELECT COUNT(*) FROM nodes WHERE is_local = 1),
                (SELECT COUNT(*) FROM jobs WHERE job_type = 'node_provision')",
    )
    .fetch_one(app.state.store.pool())
    .await
    .unwrap();
    assert_eq!((nodes, provisions), (1, 1));
    assert_eq!(
        app.state
            .nodes
            .register_local_if_missing(None)
            .await
            .unwrap(),
        None,
        "a later start finds it"
    );
}
