//! A user crate that depends on the testkit as it comes gets the fakes and the conformance
//! suites, and no Kubernetes client stack in its tree; with the `cluster` feature it gets the
//! simulated cluster and kube with it. The simulated server's own crate knows nothing of
//! deployguard. And a program on another Kubernetes version, with its own TLS choice, embeds
//! the Kubernetes crates: none of ours picks a version or a TLS stack.

use std::path::Path;
use std::process::Command;

/// `cargo tree` of a fresh user crate whose dev-dependency is `dependency` (`TESTKIT`,
/// `KUBE_SIM`, `K8S` and `ISTIO` stand for the crates' paths).
fn tree_of_user_crate(dependency: &str) -> String {
    tree_of_user_crate_with(dependency, &["-e", "normal,dev", "--prefix", "none"])
}

/// `cargo tree ARGS` of a fresh user crate whose dev-dependencies are `dependency`.
fn tree_of_user_crate_with(dependency: &str, args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    std::fs::write(
        dir.path().join("Cargo.toml"),
        format!(
            "[package]\nname = \"user-tests\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n\
             [workspace]\n\n[dev-dependencies]\n{dependency}\n"
        )
        .replace("TESTKIT", &workspace.join("deployguard-testkit").display().to_string())
        .replace("KUBE_SIM", &workspace.join("deployguard-kube-sim").display().to_string())
        .replace("K8S", &workspace.join("deployguard-k8s").display().to_string())
        .replace("ISTIO", &workspace.join("deployguard-istio").display().to_string())
        .replace("PROMETHEUS", &workspace.join("deployguard-prometheus").display().to_string()),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("src")).unwrap();
    std::fs::write(dir.path().join("src/lib.rs"), "").unwrap();
    // The workspace's lock file, so that the user crate resolves the same versions offline.
    std::fs::copy(workspace.join("Cargo.lock"), dir.path().join("Cargo.lock")).unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(["tree", "--offline"])
        .args(args)
        .current_dir(dir.path())
        .env_remove("CARGO_TARGET_DIR")
        // The repository's own builds name a version for k8s-openapi (.cargo/config.toml); a
        // user's program does not.
        .env_remove("K8S_OPENAPI_ENABLED_VERSION")
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
fn without_features_the_testkit_brings_no_kubernetes_client() {
    let light = tree_of_user_crate(r#"deployguard-testkit = { path = "TESTKIT" }"#);
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

    // Its twin: the `cluster` feature brings the simulated cluster and its client stack.
    let full =
        tree_of_user_crate(r#"deployguard-testkit = { path = "TESTKIT", features = ["cluster"] }"#);
    let names = crates(&full);
    for heavy in ["kube-client", "k8s-openapi", "hyper"] {
        assert!(
            names.contains(&heavy),
            "{heavy} is missing from the full tree"
        );
    }
}

#[test]
fn the_simulated_server_knows_nothing_of_deployguard() {
    let tree = tree_of_user_crate(r#"deployguard-kube-sim = { path = "KUBE_SIM" }"#);
    let names = crates(&tree);
    assert!(names.contains(&"deployguard-kube-sim"), "{tree}");
    assert!(names.contains(&"kube-client"), "{tree}");
    for deployguard in ["deployguard-core", "deployguard-testkit"] {
        assert!(
            !names.contains(&deployguard),
            "{deployguard} is in the simulated server's tree:\n{tree}"
        );
    }
    // Nor what only the deployguard side or a command line needs.
    for heavy in ["clap", "plotters", "mockall"] {
        assert!(
            !names.contains(&heavy),
            "{heavy} is in the simulated server's tree:\n{tree}"
        );
    }
}

/// A program on Kubernetes 1.35 (k8s-openapi's `v1_35`) with no TLS stack of its own embeds
/// `deployguard-k8s`, `deployguard-istio`, `deployguard-prometheus` (its `rustls` feature off)
/// and the light testkit: the only version feature in its build is its own (k8s-openapi refuses
/// to build with two), and no TLS crate is in its tree.
#[test]
fn a_program_on_another_kubernetes_version_embeds_the_kubernetes_crates() {
    let program = r#"k8s-openapi = { version = "0.29", default-features = false, features = ["v1_35"] }
deployguard-k8s = { path = "K8S" }
deployguard-istio = { path = "ISTIO" }
deployguard-prometheus = { path = "PROMETHEUS", default-features = false }
deployguard-testkit = { path = "TESTKIT" }"#;
    let features = tree_of_user_crate_with(
        program,
        &[
            "-e",
            "features,normal,dev",
            "-i",
            "k8s-openapi",
            "--prefix",
            "none",
        ],
    );
    let mut versions: Vec<&str> = features
        .lines()
        .filter_map(|line| line.split("feature \"").nth(1))
        .filter_map(|rest| rest.split('"').next())
        .filter(|feature| feature.starts_with("v1_"))
        .collect();
    versions.sort_unstable();
    versions.dedup();
    assert_eq!(versions, ["v1_35"], "{features}");

    let tree = tree_of_user_crate(program);
    let names = crates(&tree);
    for ours in [
        "deployguard-k8s",
        "deployguard-istio",
        "deployguard-prometheus",
        "kube-client",
    ] {
        assert!(names.contains(&ours), "{ours} is missing:\n{tree}");
    }
    for tls in [
        "rustls",
        "hyper-rustls",
        "openssl",
        "native-tls",
        "ring",
        "aws-lc-rs",
    ] {
        assert!(
            !names.contains(&tls),
            "{tls} is in the program's tree:\n{tree}"
        );
    }
    // Nor kube's runtime, unless the program asks for the fleet.
    assert!(!names.contains(&"kube-runtime"), "{tree}");
}
