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
    let found = std::process::Command::new("ansible-playbook")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("PRESSLUFT_E2E").is_none(),
            "PRESSLUFT_E2E is set but ansible-playbook is missing"
        );
        eprintln!("skipped: ansible-playbook not on PATH (run scripts/e2e-setup)");
    }
    found
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
    sqlx::query("UPDATE nodes SET hostname = '127.0.0.1', ssh_port = ? WHERE id = ?")
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
    let slow = format!("{LOCAL_PLAY}    - name: Hang\n      ansible.builtin.command: sleep 53.25\n      changed_when: false\n");
    let started = std::time::Instant::now();
    let (_, job) = run_playbook(&slow, None, 22, Some(Duration::from_secs(3))).await;
    assert_eq!(code(&job), ("queued", "ANSIBLE_TIMEOUT"), "retryable");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    let alive = std::process::Command::new("pgrep")
        .args(["-f", "sleep 53.25"])
        .status()
        .unwrap()
        .success();
    assert!(!alive, "the playbook's processes are gone");
}
