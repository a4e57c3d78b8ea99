//! The committed `contracts/openapi.yaml` must equal the document generated from the code.
//! Regenerate with `UPDATE_OPENAPI=1 cargo test --test api openapi`.

use crate::helpers::spawn_logged_in;

const COMMITTED: &str = "contracts/openapi.yaml";

#[test]
fn committed_openapi_matches_the_code() {
    let generated = pressluft::api::openapi::yaml();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(COMMITTED);
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{COMMITTED} is out of date; run `UPDATE_OPENAPI=1 cargo test --test api openapi` and commit it"
    );
    assert!(generated.starts_with("openapi: 3.1"), "OpenAPI 3.1");
    assert!(generated.contains("- url: /api"));
    for path in [
        "/login:",
        "/logout:",
        "/jobs:",
        "/jobs/{id}:",
        "/metrics:",
        "/events:",
    ] {
        assert!(
            generated.contains(&format!("\n  {path}")),
            "{path} documented"
        );
    }
}

#[tokio::test]
async fn the_document_is_served() {
    let app = spawn_logged_in().await;
    let r = app.get("/api/openapi.yaml").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), pressluft::api::openapi::yaml());
}
