//! Embeds the `ansible/` tree (ansible.cfg, playbooks, roles) into the binary, so a release is
//! one file: `pressluft serve` extracts it to `<data_dir>/ansible/<version>/` at start.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn collect(dir: &Path, root: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') && name != ".ansible-lint" {
            continue;
        }
        if path.is_dir() {
            collect(&path, root, out);
        } else if path.is_file() {
            out.push(path.strip_prefix(root).expect("inside root").to_path_buf());
        }
    }
}

fn main() {
    // The package directory of THIS build, read when the script runs: `env!` would bake in the
    // directory the script was compiled in, and a build directory reused by another checkout
    // would then embed that checkout's tree (or nothing, once it is gone).
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR");
    let root = Path::new(&manifest_dir).join("ansible");
    println!("cargo:rerun-if-changed=ansible");
    let mut files = Vec::new();
    collect(&root, &root, &mut files);
    assert!(
        files.iter().any(|f| f.as_os_str() == "ansible.cfg"),
        "no ansible/ansible.cfg under {}: a build without its playbooks cannot run a job",
        root.display()
    );
    let mut code = String::from("/// Files of the `ansible/` tree: (relative path, contents).\npub static FILES: &[(&str, &[u8])] = &[\n");
    for f in &files {
        let rel = f.to_str().expect("UTF-8 path");
        // Resolved when the crate compiles, against the checkout being compiled: an absolute
        // path here would outlive its checkout in a build directory another clone reuses.
        let inc = format!("/ansible/{rel}");
        writeln!(
            code,
            "    ({rel:?}, include_bytes!(concat!(env!(\"CARGO_MANIFEST_DIR\"), {inc:?}))),"
        )
        .unwrap();
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("ansible_files.rs");
    std::fs::write(out, code).expect("write ansible_files.rs");
}
