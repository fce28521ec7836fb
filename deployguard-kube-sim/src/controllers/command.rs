//! The small command language simulated containers run, so Jobs complete, `kubectl run -- sh -c
//! 'exit 3'` fails and logs say what the command printed.
//!
//! A container runs a script when its `command` + `args` start with one of: `echo`, `sleep N`
//! (seconds, fractions allowed, `infinity`), `exit N`, `true`, `false`, `cat FILE`, `printenv
//! [NAME]`, or a shell (`sh`, `ash`, `bash`, `/bin/sh`, …) with `-c SCRIPT`. A script is simple
//! commands separated by `;`, `&&`, `||` or newlines, and `while true; do …; done` loops. `cat`
//! reads files of mounted ConfigMap and Secret volumes (`mountPath/key`), `printenv` and `$NAME`
//! the container's literal `env` values. Anything else in a script fails as busybox's shell does
//! (`sh: NAME: not found`, exit 127). A container whose command is not in the language (an app's
//! own binary), or that has none, follows its image's behaviour instead.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

/// One step of a script.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Print(String),
    Sleep(Duration),
    /// Sets the status the script ends with if nothing follows.
    Status(i32),
    /// Ends the script with this code.
    Exit(i32),
    /// Runs the body for ever.
    Loop(Vec<Step>),
}

/// A container's program in the language.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Script {
    steps: Vec<Step>,
}

/// What a script has done by some time after it started.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Run {
    /// Lines printed, each with when (since the start).
    pub(crate) lines: Vec<(Duration, String)>,
    /// When it ended and with what code, if it has.
    pub(crate) exit: Option<(Duration, i32)>,
}

/// What a script can read: files of mounted volumes, and environment variables.
#[derive(Debug, Default)]
pub(crate) struct Environment {
    pub(crate) files: BTreeMap<String, String>,
    pub(crate) variables: BTreeMap<String, String>,
}

const SHELLS: [&str; 4] = ["sh", "ash", "bash", "dash"];
const BUILTINS: [&str; 7] = ["echo", "sleep", "exit", "true", "false", "cat", "printenv"];

/// The script `argv` runs, if it is in the language.
pub(crate) fn parse(argv: &[String], env: &Environment) -> Option<Script> {
    let program = argv.first()?.rsplit('/').next()?;
    if SHELLS.contains(&program) {
        let script = match argv.get(1).map(String::as_str) {
            Some("-c") => argv.get(2).cloned().unwrap_or_default(),
            // A shell without -c reads its standard input, which is empty: it exits at once.
            _ => String::new(),
        };
        return Some(Script {
            steps: parse_script(&script, env),
        });
    }
    if !BUILTINS.contains(&program) {
        return None;
    }
    let mut words = vec![program.to_owned()];
    words.extend(argv[1..].iter().cloned());
    Some(Script {
        steps: simple(&words, env),
    })
}

fn parse_script(text: &str, env: &Environment) -> Vec<Step> {
    let mut steps = Vec::new();
    let commands = split_commands(text);
    let mut index = 0;
    while index < commands.len() {
        let command = commands[index].trim();
        if let Some(first) = command.strip_prefix("while ") {
            // `while true; do BODY; done`: collect up to the matching `done`.
            let mut body = Vec::new();
            let mut depth = 1;
            let mut started = first.trim() != "true";
            index += 1;
            while index < commands.len() {
                let part = commands[index].trim();
                if part.starts_with("while ") {
                    depth += 1;
                }
                if part == "done" {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                let part = if !started {
                    started = true;
                    part.strip_prefix("do").map_or(part, str::trim)
                } else {
                    part
                };
                if !part.is_empty() {
                    body.push(part.to_owned());
                }
                index += 1;
            }
            let body_steps = parse_script(&body.join("\n"), env);
            steps.push(Step::Loop(body_steps));
            index += 1;
            continue;
        }
        if !command.is_empty() {
            steps.extend(simple(&words(command, env), env));
        }
        index += 1;
    }
    steps
}

/// Splits on `;`, `&&`, `||` and newlines outside quotes.
fn split_commands(text: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => {
                quote = None;
                current.push(c);
            }
            (Some(_), c) => current.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                current.push(c);
            }
            (None, ';' | '\n') => parts.push(std::mem::take(&mut current)),
            (None, '&' | '|') if chars.peek() == Some(&c) => {
                chars.next();
                parts.push(std::mem::take(&mut current));
            }
            (None, c) => current.push(c),
        }
    }
    parts.push(current);
    parts
}

/// A command's words: quotes removed, `$NAME` and `${NAME}` expanded outside single quotes.
fn words(command: &str, env: &Environment) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = command.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            (q, '$') if q != Some('\'') => {
                let braced = chars.peek() == Some(&'{');
                if braced {
                    chars.next();
                }
                let mut name = String::new();
                while let Some(&n) = chars.peek() {
                    if n.is_ascii_alphanumeric() || n == '_' {
                        name.push(n);
                        chars.next();
                    } else {
                        break;
                    }
                }
                if braced && chars.peek() == Some(&'}') {
                    chars.next();
                }
                if name.is_empty() {
                    current.push('$');
                } else {
                    current.push_str(env.variables.get(&name).map_or("", String::as_str));
                }
                in_word = true;
            }
            (_, c) => {
                current.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(current);
    }
    words
}

fn simple(words: &[String], env: &Environment) -> Vec<Step> {
    let Some(program) = words.first() else {
        return Vec::new();
    };
    let rest = &words[1..];
    match program.rsplit('/').next().unwrap_or(program) {
        "echo" => {
            // `-n` only drops the trailing newline, which a log line does not show.
            let text = match rest.first().map(String::as_str) {
                Some("-n") => rest[1..].join(" "),
                _ => rest.join(" "),
            };
            vec![Step::Print(text), Step::Status(0)]
        }
        "sleep" => {
            let seconds = rest.first().map_or("", String::as_str);
            match seconds {
                "infinity" => vec![Step::Sleep(Duration::MAX)],
                text => match text.trim_end_matches('s').parse::<f64>() {
                    Ok(n) if n >= 0.0 => {
                        vec![Step::Sleep(Duration::from_secs_f64(n)), Step::Status(0)]
                    }
                    _ => vec![
                        Step::Print(format!("sleep: invalid number '{text}'")),
                        Step::Status(1),
                    ],
                },
            }
        }
        "exit" => vec![Step::Exit(
            rest.first().and_then(|n| n.parse().ok()).unwrap_or(0),
        )],
        "true" => vec![Step::Status(0)],
        "false" => vec![Step::Status(1)],
        "cat" => {
            let mut steps = Vec::new();
            let mut status = 0;
            for file in rest {
                match env.files.get(file) {
                    Some(text) => steps.extend(text.lines().map(|l| Step::Print(l.to_owned()))),
                    None => {
                        steps.push(Step::Print(format!(
                            "cat: can't open '{file}': No such file or directory"
                        )));
                        status = 1;
                    }
                }
            }
            steps.push(Step::Status(status));
            steps
        }
        "printenv" => match rest.first() {
            Some(name) => match env.variables.get(name) {
                Some(value) => vec![Step::Print(value.clone()), Step::Status(0)],
                None => vec![Step::Status(1)],
            },
            None => {
                let mut steps: Vec<Step> = env
                    .variables
                    .iter()
                    .map(|(k, v)| Step::Print(format!("{k}={v}")))
                    .collect();
                steps.push(Step::Status(0));
                steps
            }
        },
        other => vec![
            Step::Print(format!("sh: {other}: not found")),
            Step::Status(127),
        ],
    }
}

/// Most lines an endless loop prints before the simulation stops counting (a loop without a
/// `sleep` would otherwise print for ever in no time).
const MAX_LINES: usize = 10_000;

impl Script {
    /// What the script has done `elapsed` after it started.
    pub(crate) fn run(&self, elapsed: Duration) -> Run {
        let mut run = Run::default();
        let mut at = Duration::ZERO;
        let mut status = 0;
        if let Some(code) = execute(&self.steps, elapsed, &mut at, &mut status, &mut run) {
            run.exit = Some((at, code));
        } else if at <= elapsed {
            run.exit = Some((at, status));
        }
        run
    }

    /// When the script next does something visible after `after` (prints or ends: both
    /// happen when a sleep ends), if ever.
    pub(crate) fn next_change(&self, after: Duration) -> Option<Duration> {
        let mut at = Duration::ZERO;
        let mut boundary = None;
        boundaries(&self.steps, after, &mut at, &mut boundary, 0);
        boundary
    }
}

/// Runs `steps` from `*at` up to `until`; `Some(code)` when an `exit` ended the script.
fn execute(
    steps: &[Step],
    until: Duration,
    at: &mut Duration,
    status: &mut i32,
    run: &mut Run,
) -> Option<i32> {
    for step in steps {
        if *at > until {
            return None;
        }
        match step {
            Step::Print(text) => {
                if run.lines.len() < MAX_LINES {
                    run.lines.push((*at, text.clone()));
                }
            }
            Step::Sleep(d) => *at = at.saturating_add(*d),
            Step::Status(code) => *status = *code,
            Step::Exit(code) => return Some(*code),
            Step::Loop(body) => loop {
                let before = (*at, run.lines.len());
                if let Some(code) = execute(body, until, at, status, run) {
                    return Some(code);
                }
                if *at > until || run.lines.len() >= MAX_LINES || (*at, run.lines.len()) == before {
                    // Past the time asked about, or a loop that neither waits nor prints.
                    *at = until.saturating_add(Duration::from_secs(1));
                    return None;
                }
            },
        }
    }
    None
}

/// The first time after `after` at which a sleep ends.
fn boundaries(
    steps: &[Step],
    after: Duration,
    at: &mut Duration,
    found: &mut Option<Duration>,
    depth: usize,
) {
    for step in steps {
        if found.is_some() {
            return;
        }
        match step {
            Step::Sleep(d) => {
                *at = at.saturating_add(*d);
                if *at > after {
                    *found = Some(*at);
                }
            }
            Step::Exit(_) => return,
            Step::Loop(body) if depth < 8 => {
                let period: Duration = body
                    .iter()
                    .map(|s| match s {
                        Step::Sleep(d) => *d,
                        _ => Duration::ZERO,
                    })
                    .fold(Duration::ZERO, Duration::saturating_add);
                if period.is_zero() {
                    return;
                }
                if *at < after {
                    // Skip whole periods up to `after`.
                    let skipped = (after - *at).as_nanos() / period.as_nanos();
                    *at += period * u32::try_from(skipped).unwrap_or(u32::MAX);
                }
                for _ in 0..2 {
                    boundaries(body, after, at, found, depth + 1);
                    if found.is_some() {
                        return;
                    }
                }
            }
            _ => {}
        }
    }
}

/// A ConfigMap's or Secret's (`kind`'s) data as text: a Secret's decoded.
pub(crate) fn data_of(kind: &str, object: &Value) -> Option<BTreeMap<String, String>> {
    let data = object.get("data")?.as_object()?;
    Some(
        data.iter()
            .filter_map(|(k, v)| {
                let text = v.as_str()?;
                let text = if kind == "Secret" {
                    use base64::Engine as _;
                    String::from_utf8(
                        base64::engine::general_purpose::STANDARD
                            .decode(text)
                            .ok()?,
                    )
                    .ok()?
                } else {
                    text.to_owned()
                };
                Some((k.clone(), text))
            })
            .collect(),
    )
}

/// Finds a ConfigMap's or Secret's data (kind, name) as text.
pub(crate) type Lookup<'a> = dyn Fn(&str, &str) -> Option<BTreeMap<String, String>> + 'a;

/// What a container's script can read: its `env` values, and the files of the ConfigMap and
/// Secret volumes it mounts (`lookup` gives a ConfigMap's or Secret's data: kind, name).
pub(crate) fn environment(pod: &Value, container: &Value, lookup: &Lookup<'_>) -> Environment {
    let mut env = Environment::default();
    // What the kubelet sets in every container: its hostname and where the API server is.
    let hostname = pod
        .pointer("/spec/hostname")
        .or_else(|| pod.pointer("/metadata/name"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    for (name, value) in [
        ("HOSTNAME", hostname),
        ("KUBERNETES_SERVICE_HOST", "10.96.0.1"),
        ("KUBERNETES_SERVICE_PORT", "443"),
    ] {
        env.variables.insert(name.to_owned(), value.to_owned());
    }
    for var in container
        .get("env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let (Some(name), Some(value)) = (
            var.get("name").and_then(Value::as_str),
            var.get("value").and_then(Value::as_str),
        ) {
            env.variables.insert(name.to_owned(), value.to_owned());
        }
    }
    let volumes = pod
        .pointer("/spec/volumes")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for mount in container
        .get("volumeMounts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let volume_name = mount.get("name").and_then(Value::as_str).unwrap_or("");
        let path = mount.get("mountPath").and_then(Value::as_str).unwrap_or("");
        let Some(volume) = volumes
            .iter()
            .find(|v| v.get("name").and_then(Value::as_str) == Some(volume_name))
        else {
            continue;
        };
        let source = [
            ("configMap", "ConfigMap", "name"),
            ("secret", "Secret", "secretName"),
        ]
        .into_iter()
        .find_map(|(field, kind, name_field)| {
            let name = volume
                .pointer(&format!("/{field}/{name_field}"))?
                .as_str()?;
            lookup(kind, name)
        });
        for (key, text) in source.into_iter().flatten() {
            let file = format!("{}/{key}", path.trim_end_matches('/'));
            match mount.get("subPath").and_then(Value::as_str) {
                Some(sub) if sub == key => {
                    env.files.insert(path.to_owned(), text.clone());
                }
                Some(_) => {}
                None => {
                    env.files.insert(file, text);
                }
            }
        }
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(argv: &[&str]) -> Script {
        let argv: Vec<String> = argv.iter().map(|s| (*s).to_owned()).collect();
        parse(&argv, &Environment::default()).expect("in the language")
    }

    #[test]
    fn echo_then_exit_prints_and_ends_with_the_code() {
        let run = script(&["sh", "-c", "echo hello; echo 'two words'; exit 3"])
            .run(Duration::from_secs(1));
        assert_eq!(
            run.lines
                .iter()
                .map(|(_, l)| l.as_str())
                .collect::<Vec<_>>(),
            ["hello", "two words"]
        );
        assert_eq!(run.exit, Some((Duration::ZERO, 3)));
    }

    #[test]
    fn sleep_delays_what_follows_and_an_unknown_command_fails_as_busybox_does() {
        let s = script(&["sh", "-c", "sleep 5 && echo done; frobnicate"]);
        assert!(s.run(Duration::from_secs(4)).lines.is_empty());
        assert_eq!(s.run(Duration::from_secs(4)).exit, None);
        let run = s.run(Duration::from_secs(6));
        assert_eq!(run.lines[0], (Duration::from_secs(5), "done".into()));
        assert_eq!(run.lines[1].1, "sh: frobnicate: not found");
        assert_eq!(run.exit, Some((Duration::from_secs(5), 127)));
        assert_eq!(
            s.next_change(Duration::from_secs(1)),
            Some(Duration::from_secs(5))
        );
    }

    #[test]
    fn a_loop_prints_on_its_period_and_never_ends() {
        let s = script(&["sh", "-c", "while true; do echo tick; sleep 2; done"]);
        let run = s.run(Duration::from_secs(5));
        assert_eq!(run.lines.len(), 3);
        assert_eq!(run.exit, None);
        assert!(
            script(&["sleep", "infinity"])
                .run(Duration::from_secs(1_000_000))
                .exit
                .is_none()
        );
    }

    #[test]
    fn an_app_binary_is_not_a_script_and_cat_reads_mounted_keys() {
        let argv = vec!["/app/server".to_owned()];
        assert!(parse(&argv, &Environment::default()).is_none());
        let mut env = Environment::default();
        env.files
            .insert("/etc/app/greeting".into(), "hi there\n".into());
        env.variables.insert("WHO".into(), "world".into());
        let argv: Vec<String> = [
            "sh",
            "-c",
            "cat /etc/app/greeting; echo hello $WHO; cat /nope",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let run = parse(&argv, &env).unwrap().run(Duration::from_secs(1));
        let lines: Vec<&str> = run.lines.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(
            lines,
            [
                "hi there",
                "hello world",
                "cat: can't open '/nope': No such file or directory"
            ]
        );
        assert_eq!(run.exit.map(|(_, c)| c), Some(1));
    }
}
