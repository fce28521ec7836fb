//! Authentication and authorization as on a real cluster: ServiceAccounts and their tokens,
//! users the test issues tokens to, RBAC over Roles, ClusterRoles and their bindings, the
//! review APIs behind `kubectl auth can-i` and `kubectl auth whoami`, and Forbidden worded as the
//! real server words it — with the real kubectl over TLS, and with kube-rs.

use std::time::Duration;

use deployguard_kube_sim::FakeCluster;
use deployguard_kube_sim::k8s_openapi::api::apps::v1::Deployment;
use deployguard_kube_sim::k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use deployguard_kube_sim::k8s_openapi::api::core::v1::{ConfigMap, Pod};
use deployguard_kube_sim::kube::api::{Api, ListParams, PostParams};
use deployguard_kube_sim::kube::{self, Client};
use deployguard_kube_sim::kubectl::Kubectl;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_auth_can_i_whoami_tokens_and_forbidden_as_on_a_real_cluster() {
    for minor in [27, 33] {
        let cluster = FakeCluster::new();
        // kubectl sends bearer tokens only over TLS.
        let served = cluster.serve_tls_on("127.0.0.1:0").await.unwrap();
        assert!(served.url().starts_with("https://"), "{}", served.url());
        let kubectl = Kubectl::version(minor, &served).unwrap();

        let admin = kubectl.ok(&["auth", "whoami"]).await;
        assert!(admin.contains("kubernetes-admin"), "{admin}");
        assert!(
            admin.contains("[system:masters system:authenticated]"),
            "{admin}"
        );

        kubectl.ok(&["create", "serviceaccount", "deployer"]).await;
        kubectl
            .ok(&[
                "create",
                "role",
                "pod-reader",
                "--verb=get,list,watch",
                "--resource=pods",
            ])
            .await;
        kubectl
            .ok(&[
                "create",
                "rolebinding",
                "deployer-reads-pods",
                "--role=pod-reader",
                "--serviceaccount=default:deployer",
            ])
            .await;
        let bindings = kubectl.ok(&["get", "rolebindings", "-o", "wide"]).await;
        assert!(
            bindings.contains("Role/pod-reader") && bindings.contains("default/deployer"),
            "{bindings}"
        );
        let token = kubectl.ok(&["create", "token", "deployer"]).await;
        let token = token.trim();
        assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
        let as_deployer = |args: &[&str]| {
            let mut all = vec!["--token", token];
            all.extend_from_slice(args);
            all.into_iter().map(str::to_owned).collect::<Vec<_>>()
        };
        let run = async |args: &[&str]| {
            let args = as_deployer(args);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            kubectl.run(&args).await
        };

        let whoami = run(&["auth", "whoami"]).await;
        assert!(
            whoami
                .stdout
                .contains("system:serviceaccount:default:deployer"),
            "{}{}",
            whoami.stdout,
            whoami.stderr
        );
        assert!(
            whoami.stdout.contains(
                "[system:serviceaccounts system:serviceaccounts:default system:authenticated]"
            ),
            "{}",
            whoami.stdout
        );
        let yes = run(&["auth", "can-i", "list", "pods"]).await;
        assert_eq!((yes.code, yes.stdout.trim()), (0, "yes"), "{}", yes.stderr);
        let no = run(&["auth", "can-i", "delete", "pods"]).await;
        assert_eq!((no.code, no.stdout.trim()), (1, "no"), "{}", no.stderr);
        let no = run(&["auth", "can-i", "list", "pods", "-n", "kube-system"]).await;
        assert_eq!(
            (no.code, no.stdout.trim()),
            (1, "no"),
            "a Role binds in its namespace only"
        );

        let pods = run(&["get", "pods"]).await;
        assert_eq!(pods.code, 0, "{}", pods.stderr);
        assert_eq!(
            pods.stderr.trim(),
            "No resources found in default namespace."
        );
        let refused = run(&["get", "deployments"]).await;
        assert_eq!(refused.code, 1);
        assert_eq!(
            refused.stderr.trim(),
            "Error from server (Forbidden): deployments.apps is forbidden: User \"system:serviceaccount:default:deployer\" cannot list resource \"deployments\" in API group \"apps\" in the namespace \"default\""
        );
        let refused = run(&["create", "configmap", "settings", "--from-literal=a=b"]).await;
        assert_eq!(refused.code, 1);
        assert!(
            refused.stderr.contains("configmaps is forbidden: User \"system:serviceaccount:default:deployer\" cannot create resource \"configmaps\" in API group \"\" in the namespace \"default\""),
            "{}",
            refused.stderr
        );
        assert!(
            cluster
                .get("v1", "ConfigMap", "default", "settings")
                .is_err(),
            "nothing written"
        );

        // A ClusterRole bound cluster-wide reaches every namespace and cluster-scoped objects.
        kubectl
            .ok(&[
                "create",
                "clusterrole",
                "namespace-reader",
                "--verb=get,list",
                "--resource=namespaces",
            ])
            .await;
        kubectl
            .ok(&[
                "create",
                "clusterrolebinding",
                "deployer-reads-namespaces",
                "--clusterrole=namespace-reader",
                "--serviceaccount=default:deployer",
            ])
            .await;
        let namespaces = run(&["get", "namespaces", "-o", "name"]).await;
        assert!(
            namespaces.stdout.contains("namespace/kube-system"),
            "{}{}",
            namespaces.stdout,
            namespaces.stderr
        );

        // Deleting the account revokes its tokens.
        kubectl.ok(&["delete", "serviceaccount", "deployer"]).await;
        let revoked = run(&["get", "pods"]).await;
        assert_eq!(revoked.code, 1);
        assert!(
            revoked
                .stderr
                .contains("You must be logged in to the server (Unauthorized)"),
            "{}",
            revoked.stderr
        );
    }
}

fn forbidden_message(err: kube::Error) -> String {
    match err {
        kube::Error::Api(status) if status.code == 403 && status.reason == "Forbidden" => {
            status.message
        }
        other => panic!("expected Forbidden, got {other}"),
    }
}

fn bind(
    cluster: &FakeCluster,
    kind: &str,
    namespace: &str,
    role: (&str, &str),
    subject: serde_json::Value,
) {
    let mut binding = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind,
        "metadata": {"name": format!("{}-{}", role.1, subject["name"].as_str().unwrap_or(""))},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role.0, "name": role.1},
        "subjects": [subject]});
    if !namespace.is_empty() {
        binding["metadata"]["namespace"] = json!(namespace);
    }
    cluster.create(binding).unwrap();
}

async fn can_i(client: &Client, verb: &str, resource: &str, namespace: &str) -> bool {
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                verb: Some(verb.into()),
                resource: Some(resource.into()),
                namespace: Some(namespace.into()),
                ..ResourceAttributes::default()
            }),
            ..SelfSubjectAccessReviewSpec::default()
        },
        ..SelfSubjectAccessReview::default()
    };
    let answer = Api::<SelfSubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await
        .unwrap();
    answer.status.unwrap().allowed
}

#[tokio::test(start_paused = true)]
async fn rbac_bindings_groups_resource_names_and_token_lifetimes() {
    let cluster = FakeCluster::new();
    cluster
        .create(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}))
        .unwrap();
    cluster
        .create(
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "configmap-reader"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]}),
        )
        .unwrap();
    cluster
        .create(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "one-config", "namespace": "default"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["update"], "resourceNames": ["allowed"]}]}))
        .unwrap();
    for name in ["allowed", "other"] {
        cluster
            .create(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"}}))
            .unwrap();
    }

    // A ClusterRole bound by a RoleBinding grants in that namespace only; through a group.
    bind(
        &cluster,
        "RoleBinding",
        "default",
        ("ClusterRole", "configmap-reader"),
        json!({"kind": "Group", "name": "developers", "apiGroup": "rbac.authorization.k8s.io"}),
    );
    bind(
        &cluster,
        "RoleBinding",
        "default",
        ("Role", "one-config"),
        json!({"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"}),
    );
    let alice = cluster.client_with_token(&cluster.user_token("alice", &["developers"]));
    let bob = cluster.client_with_token(&cluster.user_token("bob", &[]));
    let maps = |client: &Client, ns: &str| Api::<ConfigMap>::namespaced(client.clone(), ns);
    assert_eq!(
        maps(&alice, "default")
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        2
    );
    assert_eq!(
        forbidden_message(
            maps(&alice, "team-a")
                .list(&ListParams::default())
                .await
                .unwrap_err()
        ),
        "configmaps is forbidden: User \"alice\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"team-a\""
    );
    assert_eq!(
        forbidden_message(maps(&bob, "default").get("allowed").await.unwrap_err()),
        "configmaps \"allowed\" is forbidden: User \"bob\" cannot get resource \"configmaps\" in API group \"\" in the namespace \"default\""
    );
    assert!(can_i(&alice, "list", "configmaps", "default").await);
    assert!(!can_i(&alice, "list", "configmaps", "team-a").await);
    assert!(!can_i(&bob, "list", "configmaps", "default").await);

    // resourceNames: alice may update "allowed" and nothing else.
    let mut allowed = maps(&alice, "default").get("allowed").await.unwrap();
    allowed.data = Some([("k".to_owned(), "v".to_owned())].into());
    maps(&alice, "default")
        .replace("allowed", &PostParams::default(), &allowed)
        .await
        .unwrap();
    let mut other = maps(&alice, "default").get("other").await.unwrap();
    other.data = Some([("k".to_owned(), "v".to_owned())].into());
    assert!(
        forbidden_message(
            maps(&alice, "default")
                .replace("other", &PostParams::default(), &other)
                .await
                .unwrap_err()
        )
        .contains("cannot update resource \"configmaps\"")
    );

    // The admin (a client without a token on a cluster without an admin token) may do anything.
    let deployments: Api<Deployment> = Api::namespaced(cluster.client(), "default");
    deployments.list(&ListParams::default()).await.unwrap();

    // An unknown token is 401; a ServiceAccount token expires after its hour of cluster time.
    let stranger = cluster.client_with_token("not-a-token");
    match Api::<Pod>::namespaced(stranger, "default")
        .list(&ListParams::default())
        .await
    {
        Err(kube::Error::Api(status)) => {
            assert_eq!((status.code, status.reason.as_str()), (401, "Unauthorized"))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        cluster
            .service_account_token("default", "robot")
            .unwrap_err()
            .message,
        "serviceaccounts \"robot\" not found"
    );
    cluster
        .create(json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "robot", "namespace": "default"}}))
        .unwrap();
    bind(
        &cluster,
        "ClusterRoleBinding",
        "",
        ("ClusterRole", "configmap-reader"),
        json!({"kind": "ServiceAccount", "name": "robot", "namespace": "default"}),
    );
    let robot =
        cluster.client_with_token(&cluster.service_account_token("default", "robot").unwrap());
    maps(&robot, "team-a")
        .list(&ListParams::default())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3601)).await;
    match maps(&robot, "team-a").list(&ListParams::default()).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 401),
        other => panic!("an expired token still works: {other:?}"),
    }
}

/// `kubectl auth can-i --as` and `kubectl --as` act as the impersonated user, when the sender
/// may impersonate: the admin may; a user without the `impersonate` verb is refused, as the API
/// server's impersonation filter refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impersonation_acts_as_the_impersonated_user_when_allowed() {
    let cluster = FakeCluster::new();
    let served = cluster.serve_tls_on("127.0.0.1:0").await.unwrap();
    let kubectl = Kubectl::version(33, &served).unwrap();
    kubectl.ok(&["create", "serviceaccount", "deployer"]).await;
    kubectl
        .ok(&[
            "create",
            "role",
            "pod-reader",
            "--verb=get,list",
            "--resource=pods",
        ])
        .await;
    kubectl
        .ok(&[
            "create",
            "rolebinding",
            "deployer-reads-pods",
            "--role=pod-reader",
            "--serviceaccount=default:deployer",
            "--user=jane",
        ])
        .await;
    let deployer = "system:serviceaccount:default:deployer";
    for (args, expected) in [
        (
            vec!["auth", "can-i", "list", "pods", "--as", deployer],
            "yes",
        ),
        (
            vec!["auth", "can-i", "delete", "pods", "--as", deployer],
            "no",
        ),
        (vec!["auth", "can-i", "list", "pods", "--as", "jane"], "yes"),
        (
            vec!["auth", "can-i", "list", "deployments", "--as", "jane"],
            "no",
        ),
        (vec!["auth", "can-i", "list", "deployments"], "yes"),
    ] {
        let answer = kubectl.run(&args).await;
        assert_eq!(
            answer.stdout.trim(),
            expected,
            "{args:?}: {}",
            answer.stderr
        );
    }
    let whoami = kubectl.ok(&["auth", "whoami", "--as", deployer]).await;
    assert!(
        whoami.contains(deployer)
            && whoami.contains("system:serviceaccounts:default")
            && whoami.contains("system:authenticated"),
        "{whoami}"
    );
    let refused = kubectl.run(&["get", "deployments", "--as", "jane"]).await;
    assert_eq!(refused.code, 1);
    assert!(
        refused
            .stderr
            .contains("User \"jane\" cannot list resource \"deployments\""),
        "{}",
        refused.stderr
    );
    // jane may not impersonate anyone herself.
    let token = cluster.user_token("jane", &[]);
    let refused = kubectl
        .run(&["--token", &token, "get", "pods", "--as", "kubernetes-admin"])
        .await;
    assert_eq!(refused.code, 1);
    assert!(
        refused
            .stderr
            .contains("User \"jane\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope"),
        "{}",
        refused.stderr
    );
}
