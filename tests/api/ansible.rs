//! The Ansible runner against real `ansible-playbook` with tiny playbooks: exit-code mapping,
//! a structured error from the result file, a result on success, the timeout. The playbooks run
//! with `connection: local` (no SSH needed), except the unreachable case, which points at a
//! closed port. Needs ansible-playbook on PATH (`scripts/e2e-setup`, run by the test command).

use std::path::Path;
use std::time::Duration;

use pressluft::store::JobRecord;

use crate::helpers::{spawn_app_with, JobFixture, TestApp};

/// True when ansible-playbook is available; otherwise the test is skipped, unless the test
/// command promised it (PRESSLUFT_E2E=1).
pub fn ansible_available() -> bool {
    crate::helpers::tool_available(
        "ansible-playbook",
        "--version",
        "ansible-playbook not on PATH (run scripts/e2e-setup)",
    )
}

const LOCAL_PLAY: &str =
    "- name: Test play\n  hosts: target\n  connection: local\n  gather_facts: false\n  tasks:\n";

fn ansible_dir(root: &Path, playbook: &str, cfg: Option<&str>) -> std::path::PathBuf {
    let dir = root.join("ansible-test");
    std::fs::create_dir_all(dir.join("playbooks")).unwrap();
    let repo_cfg =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("ansible/ansible.cfg"))
            .unwrap();
    std::fs::write(dir.join("ansible.cfg"), cfg.unwrap_or(&repo_cfg)).unwrap();
    std::fs::write(dir.join("playbooks/node-provision.yml"), playbook).unwrap();
    dir
}

/// Runs one node_provision job through the real runner with `playbook`; returns the job.
async fn run_playbook(
    playbook: &str,
    cfg: Option<&str>,
    ssh_port: i64,
    timeout: Option<Duration>,
) -> (TestApp, JobRecord) {
    let scratch = tempfile::tempdir().unwrap();
    let dir = ansible_dir(scratch.path(), playbook, cfg);
    let app = spawn_app_with(
        |c| {
            c.ansible_dir = dir.clone();
            c.ansible_dir_embedded = false;
            if let Some(t) = timeout {
                c.job_timeout = t;
            }
        },
        None,
    )
    .await;
    let node = app.insert_node("local", "active").await;
    pressluft::store::query("UPDATE nodes SET hostname = '127.0.0.1', ssh_port = ? WHERE id = ?")
        .bind(ssh_port)
        .bind(&node)
        .execute(app.store.pool())
        .await
        .unwrap();
    let id = app
        .insert_job(JobFixture::new("node_provision", "queued", &node))
        .await;
    app.state.engine.run_until_idle("w").await.unwrap();
    let job = app.store.get_job(&id).await.unwrap().unwrap();
    std::mem::forget(scratch); // keep the playbook dir for the app's lifetime
    (app, job)
}

fn code(job: &JobRecord) -> (&str, &str) {
    (job.status.as_str(), job.error_code.as_deref().unwrap_or(""))
}

#[tokio::test]
async fn exit_codes_map_to_job_error_codes() {
    if !ansible_available() {
        return;
    }
    let fail_task =
        format!("{LOCAL_PLAY}    - name: Fail\n      ansible.builtin.fail:\n        msg: boom\n");
    let (_, job) = run_playbook(&fail_task, None, 22, None).await;
    assert_eq!(
        code(&job),
        ("queued", "ANSIBLE_HOST_FAILED"),
        "exit 2 is retryable"
    );
    assert!(
        job.error_message.as_deref().unwrap().contains("boom"),
        "message = output tail"
    );
    assert!(job.output_tail.as_deref().unwrap().contains("PLAY RECAP"));

    let missing_role = "- name: Test play\n  hosts: target\n  connection: local\n  gather_facts: false\n  roles: [does-not-exist]\n";
    let (_, job) = run_playbook(missing_role, None, 22, None).await;
    assert_eq!(code(&job), ("queued", "ANSIBLE_PLAY_ERROR"), "exit 1");

    let (_, job) = run_playbook("not: [valid yaml", None, 22, None).await;
    assert_eq!(
        code(&job),
        ("failed", "ANSIBLE_SYNTAX_ERROR"),
        "exit 4 without UNREACHABLE"
    );

    let ping = "- name: Test play\n  hosts: target\n  gather_facts: false\n  tasks:\n    - name: Ping\n      ansible.builtin.ping:\n";
    let (_, job) = run_playbook(ping, None, 1, None).await;
    assert_eq!(
        code(&job),
        ("queued", "ANSIBLE_HOST_UNREACHABLE"),
        "exit 4 with UNREACHABLE!"
    );

    let ok =
        format!("{LOCAL_PLAY}    - name: Nothing\n      ansible.builtin.debug:\n        msg: hi\n");
    let (_, job) = run_playbook(&ok, Some("[defaults]\nforks = many\n"), 22, None).await;
    assert_eq!(
        code(&job),
        ("failed", "ANSIBLE_SYNTAX_ERROR"),
        "exit 5 (invalid options)"
    );
}

#[tokio::test]
async fn success_records_the_result_and_a_reported_error_wins() {
    if !ansible_available() {
        return;
    }
    let report = format!(
        "{LOCAL_PLAY}    - name: Report\n      ansible.builtin.copy:\n        dest: \"{{{{ pressluft_result_path }}}}\"\n        content: '{{\"firewall\": {{\"status\": \"skipped\", \"message\": \"not managed\"}}}}'\n        mode: \"0600\"\n"
    );
    let (app, job) = run_playbook(&report, None, 22, None).await;
    assert_eq!(code(&job), ("succeeded", ""));
    let node = app.store.get_node(&job.node_id).await.unwrap().unwrap();
    assert_eq!(node.firewall_status.as_deref(), Some("skipped"));
    assert!(node.last_seen_at.is_some());
    let log = std::fs::read_to_string(pressluft::jobs::output::job_log_path(
        &app.state.config.log_dir,
        &job.id,
    ))
    .unwrap();
    assert!(log.starts_with("$ ansible-playbook -i "), "{log}");
    assert!(log.contains("PLAY RECAP"));

    let refuse = format!(
        "{LOCAL_PLAY}    - name: Refuse\n      block:\n        - name: Check\n          ansible.builtin.fail:\n            msg: unsupported\n      rescue:\n        - name: Report\n          ansible.builtin.copy:\n            dest: \"{{{{ pressluft_result_path }}}}\"\n            content: '{{\"error_code\": \"PRECONDITION_FAILED\", \"error_message\": \"unsupported operating system: plan9\"}}'\n            mode: \"0600\"\n        - name: Stop\n          ansible.builtin.fail:\n            msg: precondition failed\n"
    );
    let (_, job) = run_playbook(&refuse, None, 22, None).await;
    assert_eq!(code(&job), ("failed", "PRECONDITION_FAILED"), "not retried");
    assert_eq!(
        job.error_message.as_deref(),
        Some("unsupported operating system: plan9")
    );
}

#[tokio::test]
async fn the_timeout_kills_ansible() {
    if !ansible_available() {
        return;
    }
    // The sleep's argument is unique to this test process: the PostgreSQL pass runs the same
    // test beside this one, and its sleep must not be mistaken for ours.
    let sleep = format!("sleep 53.{}", std::process::id());
    let slow = format!("{LOCAL_PLAY}    - name: Hang\n      ansible.builtin.command: {sleep}\n      changed_when: false\n");
    let started = std::time::Instant::now();
    let (_, job) = run_playbook(&slow, None, 22, Some(Duration::from_secs(3))).await;
    assert_eq!(code(&job), ("queued", "ANSIBLE_TIMEOUT"), "retryable");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    let alive = std::process::Command::new("pgrep")
        .args(["-f", &format!("^{sleep}$")])
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap()
        .success();
    assert!(!alive, "the playbook's processes are gone");
}

/// Issue 9, item 1: strings in a run's variables (here a setting and a nested payload value
/// and key, as users will write them) are data, never templates: the runner marks every
/// string unsafe, so `{{ lookup('pipe', …) }}` and `{% … %}` run nothing and arrive literally.
#[tokio::test]
async fn user_data_in_variables_is_never_templated() {
    if !ansible_available() {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let marker = scratch.path().join("injected");
    let m = marker.display();
    let expression = format!("{{{{ lookup('pipe','touch {m}-expr') }}}}");
    let statement =
        format!("{{% if true %}}{{{{ lookup('pipe','touch {m}-stmt') }}}}{{% endif %}}");
    let key = format!("{{{{ lookup('pipe','touch {m}-key') }}}}");
    let out = scratch.path().join("out.txt");
    let playbook = format!(
        "{LOCAL_PLAY}    - name: Use the variables as values\n      ansible.builtin.copy:\n        dest: {}\n        content: \"{{{{ control_plane_domain }}}}|{{{{ nested.a[0].b }}}}|{{{{ nested.a[0] | dict2items | map(attribute='key') | sort | last }}}}|{{{{ nested.a[0].b | length > 3 }}}}|{{{{ plain | select('string') | list | length }}}}|{{{{ plain | to_json }}}}\"\n        mode: \"0600\"\n",
        out.display()
    );
    let dir = ansible_dir(scratch.path(), &playbook, None);
    let app = spawn_app_with(
        |c| {
            c.ansible_dir = dir.clone();
            c.ansible_dir_embedded = false;
        },
        None,
    )
    .await;
    let node = app.insert_node("local", "active").await;
    app.exec(
        "UPDATE nodes SET hostname = '127.0.0.1' WHERE id = ?",
        &[&node],
    )
    .await;
    app.exec("INSERT INTO settings (key, value, updated_at) VALUES ('control_plane_domain', ?, '2026-01-01T00:00:00.000Z')", &[&expression]).await;
    let id = app
        .insert_job(JobFixture::new("node_provision", "queued", &node))
        .await;
    // Strings YAML would read as other types stay strings (`""` is not null, `"true"` no bool).
    let payload = serde_json::json!({
        "nested": {"a": [{"b": statement, key.clone(): 1}]},
        "plain": ["", "true", "0", "null", "~"],
    });
    pressluft::store::query("UPDATE jobs SET payload_json = ? WHERE id = ?")
        .bind(payload.to_string())
        .bind(&id)
        .execute(app.store.pool())
        .await
        .unwrap();
    app.state.engine.run_until_idle("w").await.unwrap();
    let job = app.store.get_job(&id).await.unwrap().unwrap();
    assert_eq!(code(&job), ("succeeded", ""), "{:?}", job.output_tail);
    for suffix in ["expr", "stmt", "key"] {
        let path = format!("{m}-{suffix}");
        assert!(
            !Path::new(&path).exists(),
            "the {suffix} payload was evaluated"
        );
    }
    let written = std::fs::read_to_string(&out).unwrap();
    // Sorted keys: "b" comes before "{{ …".
    assert_eq!(
        written,
        format!("{expression}|{statement}|{key}|True|5|[\"\", \"true\", \"0\", \"null\", \"~\"]")
    );
}

/// Run directories left by a process that died mid-run (a decrypted key, the variables) are
/// removed when the control plane starts.
#[tokio::test]
async fn stale_run_directories_are_removed_at_start_up() {
    let stale = std::sync::Arc::new(std::sync::Mutex::new(None));
    let seen = stale.clone();
    let _app = spawn_app_with(
        move |c| {
            let run = pressluft::jobs::ansible::runs_dir(&c.data_dir).join("0123abcd-XyZ");
            std::fs::create_dir_all(&run).unwrap();
            std::fs::write(
                run.join("id_ed25519"),
                "-----BEGIN OPENSSH PRIVATE KEY-----",
            )
            .unwrap();
            std::fs::write(run.join("vars.yml"), "db_password: !unsafe \"x\"\n").unwrap();
            *seen.lock().unwrap() = Some(run);
        },
        None,
    )
    .await;
    let run = stale.lock().unwrap().clone().unwrap();
    assert!(!run.exists(), "{} survived start-up", run.display());
    assert!(run.parent().unwrap().is_dir(), "the runs directory stays");
}

/// Issue 9, item 11: the node helper's fetch (`pressluft node site-create`), on the node,
/// refuses an archive whose host resolves to a link-local address (cloud metadata), and to
/// loopback unless allowed; run directly against this machine.
#[test]
fn the_node_refuses_link_local_and_unallowed_loopback_sources() {
    let scratch = tempfile::tempdir().unwrap();
    let build: std::os::fd::OwnedFd = std::fs::File::open(scratch.path()).unwrap().into();
    let failure = |src: &str, allow: bool| -> String {
        let err =
            pressluft::node_helper::fetch::fetch(src, "", allow, &build, "root").expect_err(src);
        format!("{err:#}")
    };
    for (src, allow) in [
        ("http://169.254.169.254/latest/wp.tgz", true),
        ("http://2852039166/wp.tgz", true),
        ("http://[fe80::1]/wp.tgz", true),
        ("http://127.0.0.1:1/wp.tgz", false),
        ("http://localhost:1/wp.tgz", false),
    ] {
        let msg = failure(src, allow);
        assert!(msg.contains("resolves to"), "{src} (allow {allow}): {msg}");
    }
    // Allowed loopback passes the check and fails only at the download (nothing listens).
    let msg = failure("http://127.0.0.1:1/wp.tgz", true);
    assert!(!msg.is_empty() && !msg.contains("resolves to"), "{msg}");
}
