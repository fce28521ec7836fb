//! What a new cluster has before anyone writes to it, as kubeadm's clusters have it: the
//! `kubernetes` Service in `default` (the API server's own ClusterIP, 10.96.0.1:443), the
//! user-facing ClusterRoles (`cluster-admin`, `admin`, `edit`, `view`, with the aggregation
//! labels of the real ones) and `cluster-admin` bound to the `system:masters` group, three Ready
//! worker nodes and a default StorageClass (`standard`, kind's local-path), and in
//! every namespace the `kube-root-ca.crt` ConfigMap (the root-ca-cert-publisher's, written by the
//! controllers). In `kube-system`, as a kind cluster has them: a control-plane node (tainted
//! `NoSchedule`, so nothing else lands there) running the control plane's static pods (etcd,
//! kube-apiserver, kube-controller-manager, kube-scheduler, mirrored and owned by the node) and
//! CoreDNS (its Deployment, ReplicaSet and two pods) behind the `kube-dns` Service at
//! 10.96.0.10. Their names are fixed, so a cluster's own objects are named as before.

use serde_json::{Value, json};

/// The objects a new cluster is created with.
pub(crate) fn objects() -> Vec<Value> {
    let mut objects = vec![json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kubernetes", "namespace": "default",
            "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.1", "clusterIPs": ["10.96.0.1"],
            "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", "sessionAffinity": "None",
            "internalTrafficPolicy": "Cluster",
            "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]},
    })];
    objects.extend(cluster_roles());
    objects.extend((1..=NODES).map(node));
    objects.push(control_plane_node());
    objects.push(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kube-dns", "namespace": "kube-system",
            "labels": {"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true",
                "kubernetes.io/name": "CoreDNS"},
            "annotations": {"prometheus.io/port": "9153", "prometheus.io/scrape": "true"}},
        "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
            "selector": {"k8s-app": "kube-dns"},
            "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                {"name": "metrics", "port": 9153, "protocol": "TCP", "targetPort": 9153}]},
    }));
    objects.push(coredns_deployment());
    objects.push(json!({
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": "standard",
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": "rancher.io/local-path", "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
    }));
    objects.push(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": "cluster-admin", "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
            "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:masters"}],
    }));
    objects
}

/// The images the furniture's pods run (the simulated registry always has them).
pub(crate) const IMAGES: [&str; 5] = [
    "registry.k8s.io/etcd:3.5.21-0",
    "registry.k8s.io/kube-apiserver:v1.33.1",
    "registry.k8s.io/kube-controller-manager:v1.33.1",
    "registry.k8s.io/kube-scheduler:v1.33.1",
    "registry.k8s.io/coredns/coredns:v1.12.0",
];

/// The control-plane node's name.
pub(crate) const CONTROL_PLANE: &str = "control-plane";

/// The control-plane node: as a worker, plus its role label and the taint that keeps workloads
/// off it.
fn control_plane_node() -> Value {
    let mut node = node(4);
    node["metadata"]["name"] = json!(CONTROL_PLANE);
    node["metadata"]["labels"]["kubernetes.io/hostname"] = json!(CONTROL_PLANE);
    node["metadata"]["labels"]["node-role.kubernetes.io/control-plane"] = json!("");
    node["spec"]["taints"] = json!([{"key": "node-role.kubernetes.io/control-plane",
        "effect": "NoSchedule"}]);
    node["spec"]["podCIDR"] = json!("10.244.0.0/24");
    node["spec"]["podCIDRs"] = json!(["10.244.0.0/24"]);
    node["spec"]["providerID"] = json!(format!("kind://docker/deployguard/{CONTROL_PLANE}"));
    node["status"]["addresses"] = json!([{"type": "InternalIP", "address": "172.18.0.5"},
        {"type": "Hostname", "address": CONTROL_PLANE}]);
    node
}

/// A container that tolerates the control-plane taint and runs there.
fn on_control_plane(mut spec: Value) -> Value {
    spec["nodeSelector"] = json!({"node-role.kubernetes.io/control-plane": ""});
    spec["tolerations"] = json!([
        {"key": "CriticalAddonsOnly", "operator": "Exists"},
        {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]);
    spec
}

fn coredns_deployment() -> Value {
    let spec = on_control_plane(json!({
        "priorityClassName": "system-cluster-critical",
        "serviceAccountName": "coredns",
        "dnsPolicy": "Default",
        "containers": [{"name": "coredns", "image": IMAGES[4], "args": ["-conf", "/etc/coredns/Corefile"],
            "ports": [{"name": "dns", "containerPort": 53, "protocol": "UDP"},
                {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
                {"name": "metrics", "containerPort": 9153, "protocol": "TCP"}],
            "resources": {"requests": {"cpu": "100m", "memory": "70Mi"}, "limits": {"memory": "170Mi"}}}],
    }));
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "coredns", "namespace": "kube-system", "labels": {"k8s-app": "kube-dns"}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"k8s-app": "kube-dns"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": "25%"}},
            "template": {"metadata": {"labels": {"k8s-app": "kube-dns"}}, "spec": spec}},
    })
}

/// CoreDNS's ReplicaSet and pods as the controllers would have made them, named so that
/// nothing is drawn from the name generator: given the stored Deployment.
pub(crate) fn coredns_replicas(deployment: &Value) -> (Value, Vec<Value>) {
    let template = deployment
        .pointer("/spec/template")
        .cloned()
        .unwrap_or_default();
    let hash = crate::controllers::deployment::template_hash(&template, 0);
    let mut labelled = template.clone();
    labelled["metadata"]["labels"]["pod-template-hash"] = json!(hash);
    let owner = |obj: &Value, kind: &str, api_version: &str| {
        json!([{"apiVersion": api_version, "kind": kind, "controller": true,
            "blockOwnerDeletion": true,
            "name": obj.pointer("/metadata/name"), "uid": obj.pointer("/metadata/uid")}])
    };
    let rs_name = format!("coredns-{hash}");
    let replica_set = json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": rs_name, "namespace": "kube-system",
            "labels": labelled["metadata"]["labels"],
            "annotations": {"deployment.kubernetes.io/revision": "1",
                "deployment.kubernetes.io/desired-replicas": "2",
                "deployment.kubernetes.io/max-replicas": "3"},
            "ownerReferences": owner(deployment, "Deployment", "apps/v1")},
        "spec": {"replicas": 2,
            "selector": {"matchLabels": {"k8s-app": "kube-dns", "pod-template-hash": hash}},
            "template": labelled},
    });
    let pods = ["kx7bq", "w8zr4"]
        .iter()
        .map(|suffix| {
            let mut spec = labelled["spec"].clone();
            spec["nodeName"] = json!(CONTROL_PLANE);
            json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": format!("{rs_name}-{suffix}"), "namespace": "kube-system",
                    "labels": labelled["metadata"]["labels"]},
                "spec": spec})
        })
        .collect();
    (replica_set, pods)
}

/// The control plane's static pods, mirrored by the kubelet and owned by the node.
pub(crate) fn static_pods(node: &Value) -> Vec<Value> {
    [
        ("etcd", IMAGES[0], "100m"),
        ("kube-apiserver", IMAGES[1], "250m"),
        ("kube-controller-manager", IMAGES[2], "200m"),
        ("kube-scheduler", IMAGES[3], "100m"),
    ]
    .iter()
    .map(|(component, image, cpu)| {
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("{component}-{CONTROL_PLANE}"), "namespace": "kube-system",
                "labels": {"component": component, "tier": "control-plane"},
                "annotations": {"kubernetes.io/config.mirror": "simulated",
                    "kubernetes.io/config.source": "file"},
                "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "controller": true,
                    "name": CONTROL_PLANE, "uid": node.pointer("/metadata/uid")}]},
            "spec": {"nodeName": CONTROL_PLANE, "hostNetwork": true,
                "priorityClassName": "system-node-critical",
                "tolerations": [{"operator": "Exists", "effect": "NoExecute"}],
                "containers": [{"name": component, "image": image,
                    "resources": {"requests": {"cpu": cpu}}}]}})
    })
    .collect()
}

/// How many worker nodes a new cluster has.
pub(crate) const NODES: u32 = 3;

/// Worker node `n` (`node-1`, …): 4 CPUs, 16 GiB, 110 pods, Ready, as a kind node reports
/// itself. Its InternalIP is `172.18.0.{n+1}`.
pub(crate) fn node(n: u32) -> Value {
    let name = format!("node-{n}");
    let capacity =
        json!({"cpu": "4", "memory": "16Gi", "pods": "110", "ephemeral-storage": "100Gi"});
    let condition = |kind: &str, status: &str, reason: &str, message: &str| {
        json!({"type": kind, "status": status, "reason": reason, "message": message,
            "lastHeartbeatTime": null, "lastTransitionTime": null})
    };
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {
            "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
            "beta.kubernetes.io/arch": "amd64"}},
        "spec": {"podCIDR": format!("10.244.{n}.0/24"), "podCIDRs": [format!("10.244.{n}.0/24")],
            "providerID": format!("kind://docker/deployguard/{name}")},
        "status": {
            "capacity": capacity, "allocatable": capacity,
            "conditions": [
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ],
            "addresses": [{"type": "InternalIP", "address": format!("172.18.0.{}", n + 1)},
                {"type": "Hostname", "address": name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": format!("{n:032x}"), "systemUUID": format!("{n:032x}"),
                "bootID": format!("{n:032x}"),
                "kernelVersion": "6.8.0-deployguard", "osImage": "Debian GNU/Linux 12 (bookworm)",
                "containerRuntimeVersion": "containerd://2.0.3",
                "kubeletVersion": format!("v1.{}.0", crate::api::SERVER_MINOR),
                "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": "amd64",
            },
        },
    })
}

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> Value {
    json!({"apiGroups": groups, "resources": resources, "verbs": verbs})
}

const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["create", "delete", "deletecollection", "patch", "update"];

/// `cluster-admin`, `admin`, `edit` and `view`, their rules as the aggregated roles of a
/// Kubernetes 1.33 cluster grant them (the workload, networking and configuration kinds).
fn cluster_roles() -> Vec<Value> {
    let workloads: &[(&[&str], &[&str])] = &[
        (
            &[""],
            &[
                "pods",
                "pods/attach",
                "pods/exec",
                "pods/portforward",
                "pods/proxy",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "services",
                "services/proxy",
                "endpoints",
                "persistentvolumeclaims",
                "configmaps",
                "secrets",
                "serviceaccounts",
                "events",
            ],
        ),
        (
            &["apps"],
            &[
                "daemonsets",
                "deployments",
                "deployments/rollback",
                "deployments/scale",
                "replicasets",
                "replicasets/scale",
                "statefulsets",
                "statefulsets/scale",
            ],
        ),
        (&["autoscaling"], &["horizontalpodautoscalers"]),
        (&["batch"], &["cronjobs", "jobs"]),
        (&["networking.k8s.io"], &["ingresses", "networkpolicies"]),
        (&["policy"], &["poddisruptionbudgets"]),
        (&["discovery.k8s.io"], &["endpointslices"]),
        (&["coordination.k8s.io"], &["leases"]),
    ];
    // `view` reads everything but Secrets and what reaches into pods.
    let view: Vec<Value> = workloads
        .iter()
        .map(|(groups, resources)| {
            let readable: Vec<&str> = resources
                .iter()
                .copied()
                .filter(|r| {
                    !matches!(
                        *r,
                        "secrets"
                            | "pods/attach"
                            | "pods/exec"
                            | "pods/portforward"
                            | "pods/proxy"
                            | "services/proxy"
                    )
                })
                .collect();
            rule(groups, &readable, READ)
        })
        .chain([rule(
            &[""],
            &[
                "namespaces",
                "pods/log",
                "pods/status",
                "resourcequotas",
                "limitranges",
            ],
            READ,
        )])
        .collect();
    let edit: Vec<Value> = workloads
        .iter()
        .map(|(groups, resources)| {
            let verbs: Vec<&str> = READ.iter().chain(WRITE).copied().collect();
            rule(groups, resources, &verbs)
        })
        .chain([
            rule(
                &[""],
                &[
                    "namespaces",
                    "pods/log",
                    "pods/status",
                    "resourcequotas",
                    "limitranges",
                ],
                READ,
            ),
            rule(&[""], &["serviceaccounts"], &["impersonate"]),
            rule(&[""], &["serviceaccounts/token"], &["create"]),
        ])
        .collect();
    let mut admin = edit.clone();
    admin.push(rule(
        &["rbac.authorization.k8s.io"],
        &["roles", "rolebindings"],
        &[
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ],
    ));
    admin.push(rule(
        &["authorization.k8s.io"],
        &["localsubjectaccessreviews"],
        &["create"],
    ));
    let role = |name: &str, rules: Vec<Value>, aggregate: Option<&str>| {
        let mut labels = json!({"kubernetes.io/bootstrapping": "rbac-defaults"});
        if let Some(to) = aggregate {
            labels[format!("rbac.authorization.k8s.io/aggregate-to-{to}")] = json!("true");
        }
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": name, "labels": labels,
                "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}},
            "rules": rules})
    };
    vec![
        role(
            "cluster-admin",
            vec![
                rule(&["*"], &["*"], &["*"]),
                json!({"nonResourceURLs": ["*"], "verbs": ["*"]}),
            ],
            None,
        ),
        role("admin", admin, None),
        role("edit", edit, Some("admin")),
        role("view", view, Some("edit")),
    ]
}

/// The `kube-root-ca.crt` ConfigMap of namespace `ns`.
pub(crate) fn root_ca(ns: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "kube-root-ca.crt", "namespace": ns,
            "annotations": {"kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."}},
        "data": {"ca.crt": "-----BEGIN CERTIFICATE-----\nsimulated cluster: the served CA is in the kubeconfig\n-----END CERTIFICATE-----\n"}})
}
