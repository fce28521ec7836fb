//! Guard policy as data: a spec file read, defaulted, refused with the path of what was wrong,
//! built into a guard through the same builders as code, and its JSON Schema kept current.

use std::sync::Arc;
use std::time::Duration;

use deployguard_core::analysis::{Judge, Threshold};
use deployguard_core::engine::{CanaryStep, Strategy};
use deployguard_core::spec::*;
use deployguard_core::{Error, ErrorKind, HealthProbe, Result};
use deployguard_testkit::{Behaviour, FakeDeployment, ScriptedProbe};

/// Every section of a spec, as a team would write it.
const FULL: &str = r#"
target:
  deployment: app-deployment
  namespace: shop
strategy:
  kind: canary
  stable: app-stable
  canary: app-canary
  steps:
    - setWeight: 20
    - pause: {duration: 5m}
    - analysis
    - setWeight: 50
    - pause: {}
router:
  kind: istio
  virtualService: app
  route: primary
  backends: {app-stable: stable, app-canary: canary}
probes:
  - name: http
    kind: prometheus
    url: http://prometheus.monitoring:9090
    bearerTokenEnv: PROM_TOKEN
    errorRatio: {service: app, window: 30s}
    latency: {service: app, quantile: 0.95}
    queries:
      saturation: 'max(container_memory_working_set_bytes{pod=~"app-.*"})'
  - {name: pods, kind: podReadiness}
checks:
  - name: error-rate
    probe: http
    metric: error_rate
    judge: {kind: sequential, alpha: 0.005}
    success: {max: 0.01}
    interval: 30s
    count: 20
  - name: latency
    probe: http
    metric: latency_p95
    judge: {kind: compare, maxRatio: 1.5}
    success: {max: 0.4}
    inconclusive: {max: 0.8}
    interval: 1m
    count: 10
    initialDelay: 1m
    failureLimit: 1
    noData: ignore
bake: 10m
patience: {podFailureAfter: 45s, unreadyAfter: off}
migrations: {policy: warn}
deadlines: {recovery: 15m, step: 3m, poll: 2s}
notifications: {webhook: "https://hooks.example/deploys", events: false}
dryRun: true
"#;

#[test]
fn a_full_spec_reads_and_round_trips() {
    let spec = GuardSpec::from_yaml(FULL).unwrap();
    assert_eq!(spec.namespace(), "shop");
    assert_eq!(spec.bake, Duration::from_secs(600));
    assert_eq!(
        spec.patience.pod_failure_after,
        Some(Duration::from_secs(45))
    );
    assert_eq!(spec.patience.unready_after, None);
    assert_eq!(spec.deadlines.poll, Duration::from_secs(2));
    assert!(spec.dry_run);
    let checks = spec.checks().unwrap();
    assert_eq!(checks[0].interval, Duration::from_secs(30));
    assert!(matches!(checks[0].judge, Judge::Sequential { alpha, .. } if alpha == 0.005));
    assert_eq!(checks[1].count, Some(10));
    assert_eq!(checks[1].failure, Some(Threshold::at_most(0.8)));
    let Strategy::Canary(canary) = spec.strategy().unwrap() else {
        panic!("a canary")
    };
    assert_eq!(
        canary.steps,
        [
            CanaryStep::SetWeight(20),
            CanaryStep::Pause(Some(Duration::from_secs(300))),
            CanaryStep::Analysis,
            CanaryStep::SetWeight(50),
            CanaryStep::Pause(None),
        ]
    );
    // Written out and read back, it is the same spec, durations as people write them.
    let value = serde_json::to_value(&spec).unwrap();
    assert_eq!(value["bake"], "10m");
    assert_eq!(value["patience"]["unreadyAfter"], "off");
    assert_eq!(GuardSpec::from_value(value).unwrap(), spec);
}

#[test]
fn everything_optional_has_a_default() {
    let spec = GuardSpec::from_yaml("target: {deployment: web}").unwrap();
    assert_eq!(spec.namespace(), "default");
    assert_eq!(spec.strategy, StrategySpec::Rolling);
    assert_eq!(spec.bake, Duration::from_secs(300));
    assert_eq!(spec.patience, PatienceSpec::default());
    assert_eq!(
        spec.patience.pod_failure_after,
        Some(Duration::from_secs(20))
    );
    assert_eq!(spec.migrations.policy, MigrationPolicySpec::Block);
    assert!(spec.migrations.inspect_jobs && spec.notifications.events);
    assert_eq!(spec.deadlines.recovery, Duration::from_secs(600));
    let check = GuardSpec::from_yaml(
        "target: {deployment: web}\nprobes: [{name: p, kind: podReadiness}]\nchecks: [{name: c, probe: p, metric: ready_fraction, success: {min: 0.9}}]",
    )
    .unwrap()
    .checks()
    .unwrap()
    .remove(0);
    assert_eq!(check.interval, Duration::from_secs(60));
    assert_eq!(check.consecutive_error_limit, 4);
    assert_eq!(check.judge, Judge::Threshold);
    assert_eq!(check.no_data_grace, Duration::from_secs(60));
}

#[test]
fn every_bad_value_is_refused_naming_its_path() {
    let base = "target: {deployment: web}\nprobes: [{name: p, kind: podReadiness}]\n";
    let check = |extra: &str| {
        format!("{base}checks:\n  - {{name: c, probe: p, metric: m, success: {{max: 1}}{extra}}}\n")
    };
    let cases: Vec<(String, &str)> = vec![
        (check(", interval: 10 fortnights"), "checks[0].interval: invalid duration \"10 fortnights\""),
        (check(", interval: 0s"), "checks[0]: check c: interval: must be greater than zero"),
        (check(", intervall: 1m"), "checks[0].intervall: unknown field `intervall`, expected one of `name`"),
        (check(", judge: {kind: bayesian}"), "checks[0].judge.kind: unknown variant `bayesian`"),
        (check(", judge: {kind: sequential, alpha: 2}"), "checks[0]: check c: judge.alpha: 2 is not between 0 and 0.5"),
        (check(", count: -1"), "checks[0].count: invalid value: integer `-1`"),
        (check(", noData: maybe"), "checks[0].noData: unknown variant `maybe`"),
        (
            format!("{base}checks:\n  - {{name: c, probe: p, metric: m, success: {{min: 2, max: 1}}}}\n"),
            "checks[0]: check c: success: min 2 is greater than max 1",
        ),
        (
            format!("{base}checks:\n  - {{name: c, probe: p, metric: m, success: {{max: 1}}, success: {{max: 2}}}}\n"),
            "spec: is not valid YAML: error: line 4 column 55: duplicate mapping key: success",
        ),
        (
            format!("{base}checks:\n  - {{name: c, probe: nope, metric: m, success: {{max: 1}}}}\n"),
            "checks[0].probe: \"nope\" is not among the probes",
        ),
        (
            format!("{base}checks:\n  - {{name: c, probe: p, metric: m, success: {{max: 1}}}}\n  - {{name: c, probe: p, metric: m, success: {{max: 1}}}}\n"),
            "checks[1].name: \"c\" names two checks",
        ),
        (format!("{base}bake: soon"), "bake: invalid duration \"soon\""),
        (format!("{base}patience: {{podFailureAfter: never}}"), "patience.podFailureAfter: invalid duration \"never\""),
        (format!("{base}deadlines: {{recovery: 0s}}"), "recovery_deadline"),
        (format!("{base}migrations: {{policy: yolo}}"), "migrations.policy: unknown variant `yolo`"),
        (format!("{base}strategy: {{kind: canary, stable: a, canary: b, steps: [{{setWeight: 120}}]}}"), "strategy.steps[0].setWeight: 120 is over 100"),
        (format!("{base}strategy: {{kind: canary, stable: a, canary: a, steps: [analysis]}}\nrouter: {{kind: istio, virtualService: web, backends: {{a: s}}}}"), "canary backend names: stable and candidate are both \"a\""),
        (format!("{base}strategy: {{kind: blueGreen, active: a, preview: b, prePromotion: [smoke]}}"), "strategy.prePromotion[0]: \"smoke\" is not among the checks"),
        (format!("{base}strategy: {{kind: linear}}"), "strategy.kind: unknown variant `linear`"),
        (format!("{base}strategy: {{kind: blueGreen, active: blue, preview: green}}"), "router: is missing: a blueGreen or canary strategy moves traffic"),
        (format!("{base}strategy: {{kind: blueGreen, active: blue, preview: green}}\nrouter: {{kind: service, service: web, backends: {{blue: b, gren: g}}}}"), "router.backends: has no backend \"green\" (the strategy's preview side)"),
        (format!("{base}strategy: {{kind: canary, stable: s, canary: c, steps: [analysis]}}\nrouter: {{kind: service, service: web, backends: {{s: s, c: c}}}}"), "router.kind: a Service selector switches all traffic at once"),
        (format!("{base}strategy: {{kind: canary, stable: s, canary: c, steps: [analysis]}}\nrouter: {{kind: alb, backends: {{s: s, c: c}}}}"), "router: needs exactly one of listenerArn and ruleArn"),
        (format!("{base}strategy: {{kind: canary, stable: s, canary: c, steps: [analysis]}}\nrouter: {{kind: nginx, backends: {{s: s, c: c}}}}"), "router.kind: unknown variant `nginx`"),
        (format!("{base}router: {{kind: istio, virtualService: web, backends: {{s: s, c: c}}}}"), "router: moves traffic, which a rolling or recreate strategy does not"),
        ("target: {deployment: web, stable: web}".to_owned(), "target.stable: is the target deployment itself"),
        ("target: {deployment: web}\nprobes: [{name: p, kind: podReadiness, extra: 1}]".to_owned(), "probes[0]: unknown field `extra`"),
        ("target: {deployment: web}\nprobes: [{name: p, kind: podReadiness}, {name: p, kind: podReadiness}]".to_owned(), "probes[1].name: \"p\" names two probes"),
        ("target: {namespace: x}".to_owned(), "target: missing field `deployment`"),
        ("target: {deployment: web}\ndryrun: true".to_owned(), "dryrun: unknown field `dryrun`, expected one of `target`"),
        ("target: [".to_owned(), "spec: is not valid YAML"),
    ];
    let mut wrong = Vec::new();
    for (yaml, expected) in cases {
        let result = GuardSpec::from_yaml(&yaml).and_then(|spec| {
            spec.guard_builder(Arc::new(deployment()), &Fakes)
                .and_then(|b| b.build())
                .map(|_| spec)
        });
        match result {
            Err(err)
                if err.kind() == ErrorKind::InvalidInput && err.to_string().contains(expected) => {}
            other => wrong.push(format!(
                "{yaml}\n→ {:?}\n  expected {expected:?}",
                other.map(drop)
            )),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

fn deployment() -> FakeDeployment {
    FakeDeployment::builder("web")
        .revision(["web:1"], Behaviour::healthy())
        .build()
        .0
}

/// Resolves every probe to a scripted fake of the same name; refuses simulated traffic.
struct Fakes;

impl ProbeResolver for Fakes {
    fn resolve(&self, spec: &ProbeSpec) -> Result<Arc<dyn HealthProbe>> {
        if let ProbeSpec::SimulatedTraffic(_) = spec {
            return Err(Error::new(
                ErrorKind::Unsupported,
                "simulatedTraffic probes need the simulated cluster",
            ));
        }
        Ok(Arc::new(ScriptedProbe::new(spec.name()).build().0))
    }
}

#[test]
fn a_spec_builds_a_guard_through_the_same_builder_as_code() {
    let spec = GuardSpec::from_yaml(FULL).unwrap();
    let guard = spec
        .guard_builder(Arc::new(deployment()), &Fakes)
        .unwrap()
        .build();
    // The spec's router is data: the program builds it (`.router(…)`), or the builder says
    // the canary has none, as it would for code.
    let err = guard.map(drop).unwrap_err();
    assert!(err.to_string().contains("router"), "{err}");
    assert_eq!(spec.router.as_ref().map(|r| r.kind()), Some("istio"));
    let rolling = GuardSpec::from_yaml(&FULL.replace(
        "strategy:\n  kind: canary\n  stable: app-stable\n  canary: app-canary\n  steps:\n    - setWeight: 20\n    - pause: {duration: 5m}\n    - analysis\n    - setWeight: 50\n    - pause: {}\nrouter:\n  kind: istio\n  virtualService: app\n  route: primary\n  backends: {app-stable: stable, app-canary: canary}\n",
        "",
    ))
    .unwrap();
    assert!(
        rolling
            .guard_builder(Arc::new(deployment()), &Fakes)
            .unwrap()
            .build()
            .is_ok()
    );
    let unsupported = GuardSpec::from_yaml(
        "target: {deployment: web}\nprobes: [{name: t, kind: simulatedTraffic, service: web}]",
    )
    .unwrap();
    let err = unsupported
        .guard_builder(Arc::new(deployment()), &Fakes)
        .map(drop)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("probes[0]: unsupported: simulatedTraffic probes need the simulated cluster"),
        "{err}"
    );
}

#[test]
fn the_committed_json_schema_is_current() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/guard-spec.schema.json");
    let current = serde_json::to_string_pretty(&GuardSpec::json_schema()).unwrap() + "\n";
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::write(&path, &current).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == current,
        "{} is stale: run UPDATE_EXPECT=1 cargo test -p deployguard-core --features spec the_committed_json_schema_is_current",
        path.display()
    );
    // Durations are strings a person writes, with a pattern an editor checks.
    let schema = GuardSpec::json_schema();
    let text = schema.to_string();
    assert!(text.contains("\"pattern\""), "{text}");
}
