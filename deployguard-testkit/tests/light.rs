//! A user crate that depends on the testkit with `default-features = false` gets the fakes and
//! the conformance suites, and no Kubernetes client stack in its tree; with the default
//! `cluster` feature it gets the simulated cluster and kube with it.

use std::path::Path;
use std::process::Command;

/// `cargo tree` of a fresh user crate whose dev-dependency on the testkit is `dependency`.
fn tree_of_user_crate(dependency: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    std::fs::write(
        dir.path().join("Cargo.toml"),
        format!(
            "[package]\nname = \"user-tests\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n\
             [workspace]\n\n[dev-dependencies]\ndeployguard-testkit = {dependency}\n"
        )
        .replace("TESTKIT", &workspace.join("deployguard-testkit").display().to_string()),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("src")).unwrap();
    std::fs::write(dir.path().join("src/lib.rs"), "").unwrap();
    // The workspace's lock file, so that the user crate resolves the same versions offline.
    std::fs::copy(workspace.join("Cargo.lock"), dir.path().join("Cargo.lock")).unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(["tree", "--offline", "-e", "normal,dev", "--prefix", "none"])
        .current_dir(dir.path())
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The distinct crate names in a `cargo tree --prefix none` listing.
fn crates(tree: &str) -> Vec<&str> {
    let mut names: Vec<&str> = tree
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

#[test]
fn without_default_features_the_testkit_brings_no_kubernetes_client() {
    let light = tree_of_user_crate(r#"{ path = "TESTKIT", default-features = false }"#);
    let names = crates(&light);
    assert!(names.contains(&"deployguard-testkit"), "{light}");
    assert!(names.contains(&"deployguard-core"), "{light}");
    for heavy in [
        "kube",
        "kube-client",
        "k8s-openapi",
        "hyper",
        "rustls",
        "ring",
    ] {
        assert!(
            !names.contains(&heavy),
            "{heavy} is in the light tree:\n{light}"
        );
    }
    // Core's own tree and a few more: no client stack, no TLS, no HTTP.
    assert!(names.len() <= 35, "{} crates:\n{light}", names.len());

    // Its twin: the default features bring the simulated cluster and its client stack.
    let full = tree_of_user_crate(r#"{ path = "TESTKIT" }"#);
    let names = crates(&full);
    for heavy in ["kube-client", "k8s-openapi", "hyper"] {
        assert!(
            names.contains(&heavy),
            "{heavy} is missing from the full tree"
        );
    }
}
