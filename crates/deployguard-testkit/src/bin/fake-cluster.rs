//! `fake-cluster`: serves the simulated Kubernetes cluster on loopback until interrupted.
//!
//! ```text
//! fake-cluster [--scenario NAME] [--listen 127.0.0.1:0] [--kubeconfig PATH]
//! fake-cluster --list-scenarios
//! ```
//!
//! The first line on stdout is `listening on http://HOST:PORT`; each request served is logged
//! as one line on stderr.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use deployguard_testkit::cluster::{FakeCluster, scenarios};

struct Args {
    scenario: String,
    listen: String,
    kubeconfig: Option<PathBuf>,
    list: bool,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        scenario: "empty".into(),
        listen: "127.0.0.1:0".into(),
        kubeconfig: None,
        list: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--scenario" => args.scenario = value("--scenario")?,
            "--listen" => args.listen = value("--listen")?,
            "--kubeconfig" => args.kubeconfig = Some(PathBuf::from(value("--kubeconfig")?)),
            "--list-scenarios" => args.list = true,
            "-h" | "--help" => {
                return Err("usage: fake-cluster [--scenario NAME] [--listen ADDR] [--kubeconfig PATH] | --list-scenarios".into());
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
    let cluster = FakeCluster::builder().controllers(controllers).build();
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
    let logger = {
        let cluster = cluster.clone();
        tokio::spawn(async move {
            let mut seen = 0;
            loop {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let requests = cluster.requests();
                for r in &requests[seen.min(requests.len())..] {
                    let query = if r.query.is_empty() {
                        String::new()
                    } else {
                        format!("?{}", r.query)
                    };
                    eprintln!("{} {}{} {}", r.method, r.path, query, r.status);
                }
                seen = requests.len();
            }
        })
    };
    let _ = tokio::signal::ctrl_c().await;
    logger.abort();
    ExitCode::SUCCESS
}
