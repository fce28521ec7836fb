//! `fake-cluster`: serves the simulated Kubernetes cluster on loopback until interrupted.
//!
//! ```text
//! fake-cluster [--scenario NAME] [--listen 127.0.0.1:0] [--kubeconfig PATH] [--time-scale N]
//! fake-cluster --list-scenarios
//! ```
//!
//! The first line on stdout is `listening on http://HOST:PORT`; each request served is logged
//! as one line on stderr.

use std::path::PathBuf;
use std::process::ExitCode;

use deployguard_testkit::cluster::{FakeCluster, scenarios};

struct Args {
    scenario: String,
    listen: String,
    kubeconfig: Option<PathBuf>,
    list: bool,
    time_scale: f64,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        scenario: "empty".into(),
        listen: "127.0.0.1:0".into(),
        kubeconfig: None,
        list: false,
        time_scale: 1.0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--scenario" => args.scenario = value("--scenario")?,
            "--listen" => args.listen = value("--listen")?,
            "--kubeconfig" => args.kubeconfig = Some(PathBuf::from(value("--kubeconfig")?)),
            "--list-scenarios" => args.list = true,
            "--time-scale" => {
                let text = value("--time-scale")?;
                args.time_scale = text
                    .parse()
                    .ok()
                    .filter(|s: &f64| *s > 0.0 && s.is_finite())
                    .ok_or_else(|| format!("--time-scale: {text:?} is not a positive number"))?;
            }
            "-h" | "--help" => {
                return Err("usage: fake-cluster [--scenario NAME] [--listen ADDR] [--kubeconfig PATH] [--time-scale N] | --list-scenarios".into());
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("fake-cluster: {message}");
            return ExitCode::from(2);
        }
    };
    if args.list {
        for (name, about) in scenarios::list() {
            println!("{name:<24} {about}");
        }
        return ExitCode::SUCCESS;
    }
    let controllers = args.scenario != "static-web";
    let cluster = FakeCluster::builder()
        .controllers(controllers)
        .time_scale(args.time_scale)
        .log_requests(true)
        .build();
    if let Err(err) = scenarios::load(&cluster, &args.scenario).await {
        eprintln!("fake-cluster: {err}");
        return ExitCode::from(2);
    }
    let served = match cluster.serve_on(&args.listen).await {
        Ok(served) => served,
        Err(err) => {
            eprintln!("fake-cluster: cannot listen on {}: {err}", args.listen);
            return ExitCode::from(1);
        }
    };
    if let Some(path) = &args.kubeconfig
        && let Err(err) = served.write_kubeconfig(path)
    {
        eprintln!("fake-cluster: cannot write {}: {err}", path.display());
        return ExitCode::from(1);
    }
    println!("listening on {}", served.url());
    let _ = tokio::signal::ctrl_c().await;
    ExitCode::SUCCESS
}
