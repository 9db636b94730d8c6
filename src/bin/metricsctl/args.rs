//! The command line.

use crate::cli::duration;
use crate::fields;
use lexopt::prelude::*;
use metricsd::config::{DEFAULT_CLIENT_TIMEOUT, DEFAULT_LISTEN};
use metricsd::protocol::Agg;
use std::ffi::OsString;
use std::time::Duration;

/// The `--help` text, with the defaults of `metricsd::config`.
pub fn usage() -> String {
    format!(
        "\
usage: metricsctl [OPTIONS] COMMAND

Talks to a metricsd server for people: stores points, shows series and the
server's figures, imports points in bulk.

commands:
  put KEY VALUE [TS]    store one point; TS in Unix seconds [default: now].
                        Prints nothing when it is stored
  get KEY               a series (or all of them, for '*'): a line of
                        figures and a sparkline, then every point with its
                        UTC time. With --from or --to, only the points in
                        that window; with --step and --agg, one row per
                        non-empty bucket of STEP seconds
  delete KEY...         remove every point of each KEY ('*' is not a key
                        here). Prints nothing; a key without points is no
                        error
  stats                 the server's figures, with units made readable
  import                store 'KEY VALUE TS' lines from stdin ('put KEY
                        VALUE TS' too; blank lines and # comments are
                        skipped). Stops at the first bad line, after
                        storing every point before it; prints a summary on
                        stderr

options:
  --addr HOST:PORT      the server [default: ${ADDR_VARIABLE}, or
                        {DEFAULT_LISTEN}]
  --timeout DURATION    longest wait for the server, per request (for
                        import: per 4096 points): seconds or a number with
                        a unit, such as 0.5, 30s or 2m [default: {timeout}]
  --raw                 get, stats: the server's lines as they are
  --json                get: {{\"key\":[[ts,value],...]}}
                        stats: {{\"name\":value,...}}
  --from TS, --to TS    get: only points with FROM <= timestamp <= TO, in
                        Unix seconds [default: the first, the last]
  --step DURATION       get: buckets of whole seconds (60, 5m, 1h), each
                        starting at a multiple of STEP; needs --agg
  --agg FN              get: each bucket's avg, min, max, sum, count or
                        last; needs --step
  -h, --help            print this help
  -V, --version         print the version

Values and timestamps may be negative (put k -1.5 -20). A key that starts
with '-' goes after '--' (get -- -odd.key). Timestamps are seconds: put and
import store one above 10^11 as given, with a warning on stderr that it
looks like milliseconds. Only a bare '*' is a wildcard: get 'raw.*' looks
up the one key 'raw.*', and says so on stderr when it has no points.

Exit status: 0 done (also when the reader of stdout leaves early, as
'| head -1' does); 1 the server could not be reached or refused, or bad
import input; 2 bad command line.",
        timeout = DEFAULT_CLIENT_TIMEOUT.as_secs()
    )
}

/// The environment variable that names the server when --addr does not.
pub const ADDR_VARIABLE: &str = "METRICSD_ADDR";

/// How `get` and `stats` print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// For people: aligned tables, readable times and units.
    Human,
    /// The protocol's own lines, for scripts and `metricsctl import`.
    Raw,
    /// One JSON object.
    Json,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Put {
        key: String,
        value: f64,
        /// None: the current second.
        timestamp: Option<i64>,
    },
    /// `key` may be `*`.
    Get {
        key: String,
        format: Format,
        /// Some: a `range` request.
        window: Option<Window>,
    },
    Stats {
        format: Format,
    },
    /// One or more keys, none of them `*`.
    Delete {
        keys: Vec<String>,
    },
    Import,
}

/// The part of a series `get --from/--to/--step/--agg` asks for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    pub from: i64,
    pub to: i64,
    /// The step in seconds and the aggregate.
    pub buckets: Option<(i64, Agg)>,
}

/// The flags that make `get` a `range`, as given.
#[derive(Debug, Default)]
struct WindowFlags {
    from: Option<i64>,
    to: Option<i64>,
    step: Option<i64>,
    agg: Option<Agg>,
}

/// A server address split for [`metricsd::Client::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addr {
    /// A name or an IP address, without brackets.
    pub host: String,
    pub port: u16,
    /// As given, for messages.
    pub text: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub addr: Addr,
    pub timeout: Duration,
    pub command: Command,
}

#[derive(Debug, PartialEq)]
pub enum Action {
    Run(Options),
    Help,
    Version,
}

/// Reads the command line from `parser`; `env_addr` is `$METRICSD_ADDR`.
///
/// Options may stand anywhere, before or after the command. An argument
/// that is a negative number (`-1.5`, `-20`) is a value, not an option.
pub fn parse(mut parser: lexopt::Parser, env_addr: Option<OsString>) -> Result<Action, lexopt::Error> {
    let mut addr = None;
    let mut timeout = DEFAULT_CLIENT_TIMEOUT;
    let mut format = None;
    let mut words = Vec::new();
    let mut window = WindowFlags::default();
    loop {
        if let Some(number) = negative_number(&mut parser) {
            words.push(number);
            continue;
        }
        let Some(arg) = parser.next()? else {
            break;
        };
        match arg {
            Long("addr") => addr = Some(parser.value()?.string()?),
            Long("timeout") => timeout = duration("--timeout", &mut parser)?,
            Long("raw") => format = Some(one_format(format, Format::Raw)?),
            Long("json") => format = Some(one_format(format, Format::Json)?),
            Long("from") => window.from = Some(fields::timestamp(&parser.value()?.string()?)?),
            Long("to") => window.to = Some(fields::timestamp(&parser.value()?.string()?)?),
            Long("step") => window.step = Some(step(&mut parser)?),
            Long("agg") => window.agg = Some(fields::agg(&parser.value()?.string()?)?),
            Short('h') | Long("help") => return Ok(Action::Help),
            Short('V') | Long("version") => return Ok(Action::Version),
            Value(word) => words.push(word.string()?),
            _ => return Err(arg.unexpected()),
        }
    }
    let addr = match (addr, env_addr) {
        (Some(flag), _) => parse_addr(&flag).map_err(|e| format!("--addr: {e}"))?,
        (None, Some(var)) => {
            let var = var
                .into_string()
                .map_err(|_| format!("{ADDR_VARIABLE} is not valid Unicode"))?;
            parse_addr(&var).map_err(|e| format!("{ADDR_VARIABLE}: {e}"))?
        }
        (None, None) => parse_addr(DEFAULT_LISTEN)?,
    };
    let command = command(&words, format, window)?;
    Ok(Action::Run(Options { addr, timeout, command }))
}

/// Takes the next argument if it is a negative number, which lexopt would
/// otherwise read as a cluster of short options (`-1.5` as `-1 -. -5`);
/// none of our options is a digit or a dot.
fn negative_number(parser: &mut lexopt::Parser) -> Option<String> {
    let mut raw = parser.try_raw_args()?;
    let arg = raw.peek()?.to_str()?;
    let rest = arg.strip_prefix('-')?;
    if !rest.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return None;
    }
    let arg = arg.to_owned();
    raw.next();
    Some(arg)
}

fn one_format(given: Option<Format>, new: Format) -> Result<Format, lexopt::Error> {
    match given {
        Some(old) if old != new => Err("give --raw or --json, not both".into()),
        _ => Ok(new),
    }
}

/// `--step`: a duration of whole seconds.
fn step(parser: &mut lexopt::Parser) -> Result<i64, lexopt::Error> {
    let step = duration("--step", parser)?;
    match i64::try_from(step.as_secs()) {
        Ok(seconds) if step.subsec_nanos() == 0 => Ok(seconds),
        _ => Err(format!("--step takes whole seconds, not {step:?}").into()),
    }
}

/// The window of a `get`, if any of its flags was given.
fn window(flags: WindowFlags) -> Result<Option<Window>, lexopt::Error> {
    let buckets = match (flags.step, flags.agg) {
        (Some(step), Some(agg)) => Some((step, agg)),
        (None, None) => None,
        (Some(_), None) => return Err("--step needs --agg (avg, min, max, sum, count or last)".into()),
        (None, Some(_)) => return Err("--agg needs --step".into()),
    };
    if flags.from.is_none() && flags.to.is_none() && buckets.is_none() {
        return Ok(None);
    }
    let (from, to) = (flags.from.unwrap_or(i64::MIN), flags.to.unwrap_or(i64::MAX));
    if from > to {
        return Err(format!("--from {from} is after --to {to}").into());
    }
    Ok(Some(Window { from, to, buckets }))
}

/// The command from the words that are not options.
fn command(words: &[String], format: Option<Format>, flags: WindowFlags) -> Result<Command, lexopt::Error> {
    let window = window(flags)?;
    let Some((name, args)) = words.split_first() else {
        return Err("no command given: put, get, delete, stats or import".into());
    };
    let command = match (name.as_str(), args) {
        ("put", [key, value, rest @ ..]) if rest.len() <= 1 => Command::Put {
            key: fields::put_key(key)?.to_owned(),
            value: fields::value(value)?,
            timestamp: rest.first().map(|ts| fields::timestamp(ts)).transpose()?,
        },
        ("put", _) => return Err("usage: put KEY VALUE [TS]".into()),
        ("get", [key]) => Command::Get {
            key: fields::get_key(key)?.to_owned(),
            format: format.unwrap_or(Format::Human),
            window,
        },
        ("get", _) => return Err("usage: get KEY (or get '*' for every series)".into()),
        ("delete", [_, ..]) => Command::Delete {
            keys: args
                .iter()
                .map(|key| fields::delete_key(key).map(str::to_owned))
                .collect::<Result<_, _>>()?,
        },
        ("delete", []) => return Err("usage: delete KEY...".into()),
        ("stats", []) => Command::Stats {
            format: format.unwrap_or(Format::Human),
        },
        ("import", []) => Command::Import,
        ("stats" | "import", [extra, ..]) => return Err(format!("{name} takes no arguments, not {extra:?}").into()),
        _ => return Err(format!("unknown command {name:?}: put, get, delete, stats or import").into()),
    };
    if format.is_some() && matches!(command, Command::Put { .. } | Command::Delete { .. } | Command::Import) {
        return Err(format!("--raw and --json are for get and stats, not {name}").into());
    }
    if window.is_some() && !matches!(command, Command::Get { .. }) {
        return Err(format!("--from, --to, --step and --agg are for get, not {name}").into());
    }
    Ok(command)
}

/// `HOST:PORT`, where HOST may be a bracketed IPv6 address (`[::1]:8888`).
fn parse_addr(text: &str) -> Result<Addr, String> {
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("{text:?} is not HOST:PORT"))?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    if host.is_empty() {
        return Err(format!("{text:?} has no host"));
    }
    match port.parse::<u16>() {
        Ok(port) if port != 0 => Ok(Addr {
            host: host.to_owned(),
            port,
            text: text.to_owned(),
        }),
        _ => Err(format!("{text:?} has no port from 1 to 65535")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_with(args: &[&str], env: Option<&str>) -> Result<Action, String> {
        parse(lexopt::Parser::from_args(args), env.map(OsString::from)).map_err(|e| e.to_string())
    }

    fn run(args: &[&str]) -> Options {
        match parse_with(args, None) {
            Ok(Action::Run(options)) => options,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    fn error(args: &[&str]) -> String {
        match parse_with(args, None) {
            Err(e) => e,
            other => panic!("{args:?} parsed: {other:?}"),
        }
    }

    fn addr(host: &str, port: u16, text: &str) -> Addr {
        Addr {
            host: host.to_owned(),
            port,
            text: text.to_owned(),
        }
    }

    #[test]
    fn defaults() {
        let options = run(&["stats"]);
        assert_eq!(options.addr, addr("127.0.0.1", 8888, "127.0.0.1:8888"));
        assert_eq!(options.timeout, DEFAULT_CLIENT_TIMEOUT);
        assert_eq!(options.command, Command::Stats { format: Format::Human });
    }

    #[test]
    fn commands() {
        let put = |key: &str, value, timestamp| Command::Put {
            key: key.to_owned(),
            value,
            timestamp,
        };
        assert_eq!(
            run(&["put", "palm.cpu", "2", "1150864247"]).command,
            put("palm.cpu", 2.0, Some(1150864247))
        );
        assert_eq!(run(&["put", "palm.cpu", "+0.5"]).command, put("palm.cpu", 0.5, None));
        assert_eq!(run(&["put", "k", "-1.5", "-20"]).command, put("k", -1.5, Some(-20)));
        assert_eq!(run(&["put", "k", "-.5e3"]).command, put("k", -500.0, None));
        assert_eq!(run(&["put", "--", "-k", "-0"]).command, put("-k", -0.0, None));
        let get = |key: &str, format| Command::Get {
            key: key.to_owned(),
            format,
            window: None,
        };
        assert_eq!(run(&["get", "*"]).command, get("*", Format::Human));
        assert_eq!(run(&["get", "palm.cpu", "--raw"]).command, get("palm.cpu", Format::Raw));
        assert_eq!(run(&["--json", "get", "-5"]).command, get("-5", Format::Json));
        assert_eq!(
            run(&["stats", "--json", "--json"]).command,
            Command::Stats { format: Format::Json }
        );
        assert_eq!(run(&["import"]).command, Command::Import);
        let range = |key: &str, from, to, buckets| Command::Get {
            key: key.to_owned(),
            format: Format::Human,
            window: Some(Window { from, to, buckets }),
        };
        assert_eq!(
            run(&["get", "k", "--from", "10", "--to=20"]).command,
            range("k", 10, 20, None)
        );
        assert_eq!(
            run(&["get", "*", "--from", "-5"]).command,
            range("*", -5, i64::MAX, None)
        );
        assert_eq!(
            run(&["get", "k", "--to", "-5", "--step", "5m", "--agg", "max"]).command,
            range("k", i64::MIN, -5, Some((300, Agg::Max)))
        );
        assert_eq!(
            run(&["--step=60", "--agg=count", "get", "k"]).command,
            range("k", i64::MIN, i64::MAX, Some((60, Agg::Count)))
        );
        assert_eq!(
            run(&["delete", "a", "b.c"]).command,
            Command::Delete {
                keys: vec!["a".to_owned(), "b.c".to_owned()]
            }
        );
    }

    #[test]
    fn options_anywhere() {
        let options = run(&["get", "k", "--addr", "example.org:1", "--timeout=0.5"]);
        assert_eq!(options.addr, addr("example.org", 1, "example.org:1"));
        assert_eq!(options.timeout, Duration::from_millis(500));
        assert_eq!(run(&["--addr=[::1]:9", "import"]).addr, addr("::1", 9, "[::1]:9"));
        assert_eq!(parse_with(&["-h", "nonsense"], None), Ok(Action::Help));
        assert_eq!(parse_with(&["put", "--version"], None), Ok(Action::Version));
    }

    #[test]
    fn the_environment_names_the_server_unless_addr_does() {
        let from = |args: &[&str], env| match parse_with(args, env) {
            Ok(Action::Run(options)) => Ok(options.addr.text),
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(e),
        };
        assert_eq!(from(&["stats"], Some("10.0.0.1:7")), Ok("10.0.0.1:7".to_owned()));
        assert_eq!(
            from(&["stats", "--addr", "h:1"], Some("10.0.0.1:7")),
            Ok("h:1".to_owned())
        );
        assert_eq!(from(&["stats", "--addr", "h:1"], Some("garbage")), Ok("h:1".to_owned()));
        assert_eq!(
            from(&["stats"], Some("garbage")),
            Err(r#"METRICSD_ADDR: "garbage" is not HOST:PORT"#.to_owned())
        );
    }

    #[test]
    fn bad_command_lines_say_what_is_wrong() {
        let cases: &[(&[&str], &str)] = &[
            (&[], "no command given: put, get, delete, stats or import"),
            (
                &["list"],
                r#"unknown command "list": put, get, delete, stats or import"#,
            ),
            (&["delete"], "usage: delete KEY..."),
            (
                &["delete", "a", "*"],
                "'*' is not a key to delete: delete names each key",
            ),
            (
                &["delete", "a b"],
                r#"invalid key "a b": a key is one or more characters, none of them whitespace or control"#,
            ),
            (
                &["delete", "a", "--json"],
                "--raw and --json are for get and stats, not delete",
            ),
            (&["put", "k"], "usage: put KEY VALUE [TS]"),
            (&["put", "k", "1", "2", "3"], "usage: put KEY VALUE [TS]"),
            (
                &["put", "k", "abc"],
                r#"invalid value "abc": not a finite decimal number"#,
            ),
            (
                &["put", "k", "nan"],
                r#"invalid value "nan": not a finite decimal number"#,
            ),
            (
                &["put", "k", "1", "1.5"],
                r#"invalid timestamp "1.5": not a whole number of seconds"#,
            ),
            (&["put", "*", "1"], "'*' is not a key to put: it means every key in get"),
            (
                &["put", "a b", "1"],
                r#"invalid key "a b": a key is one or more characters, none of them whitespace or control"#,
            ),
            (&["get"], "usage: get KEY (or get '*' for every series)"),
            (
                &["get", ""],
                r#"invalid key "": a key is one or more characters, none of them whitespace or control"#,
            ),
            (&["get", "a", "b"], "usage: get KEY (or get '*' for every series)"),
            (&["stats", "x"], r#"stats takes no arguments, not "x""#),
            (&["import", "file"], r#"import takes no arguments, not "file""#),
            (&["get", "k", "--raw", "--json"], "give --raw or --json, not both"),
            (
                &["put", "k", "1", "--json"],
                "--raw and --json are for get and stats, not put",
            ),
            (
                &["import", "--raw"],
                "--raw and --json are for get and stats, not import",
            ),
            (&["get", "k", "--verbose"], "invalid option '--verbose'"),
            (&["get", "k", "--from", "5", "--to", "4"], "--from 5 is after --to 4"),
            (
                &["get", "k", "--from", "1.5"],
                r#"invalid timestamp "1.5": not a whole number of seconds"#,
            ),
            (
                &["get", "k", "--step", "60"],
                "--step needs --agg (avg, min, max, sum, count or last)",
            ),
            (&["get", "k", "--agg", "avg"], "--agg needs --step"),
            (
                &["get", "k", "--step", "60", "--agg", "mean"],
                r#"invalid aggregate "mean": one of avg, min, max, sum, count or last"#,
            ),
            (
                &["get", "k", "--step", "1.5", "--agg", "avg"],
                "--step takes whole seconds, not 1.5s",
            ),
            (
                &["get", "k", "--step", "0", "--agg", "avg"],
                r#"--step takes a duration above zero, such as 300, 300s, 5m or 1h, not "0""#,
            ),
            (
                &["stats", "--from", "1"],
                "--from, --to, --step and --agg are for get, not stats",
            ),
            (&["get", "-k"], "invalid option '-k'"),
            (
                &["--timeout", "0", "stats"],
                r#"--timeout takes a duration above zero, such as 300, 300s, 5m or 1h, not "0""#,
            ),
            (
                &["--timeout", "-1", "stats"],
                r#"--timeout takes a duration such as 300, 300s, 5m or 1h, not "-1""#,
            ),
            (
                &["--addr", "localhost", "stats"],
                r#"--addr: "localhost" is not HOST:PORT"#,
            ),
            (&["--addr", ":8888", "stats"], r#"--addr: ":8888" has no host"#),
            (
                &["--addr", "h:0", "stats"],
                r#"--addr: "h:0" has no port from 1 to 65535"#,
            ),
            (
                &["--addr", "h:x", "stats"],
                r#"--addr: "h:x" has no port from 1 to 65535"#,
            ),
        ];
        for (args, message) in cases {
            assert_eq!(error(args), *message, "{args:?}");
        }
    }
}
