//! Default settings, each with where its value comes from, and the one
//! reader of the durations and sizes that command-line flags take.
//!
//! The server, the journal and every binary (`metricsd`, `metricsctl`,
//! `metricsd-bench`) take their defaults from here, and so do their
//! `--help` texts. Not behind the `server` feature: `metricsctl` needs the
//! address, the timeout and the flag reader too.

use std::time::Duration;

/// The assignment's examples connect to port 8888; loopback keeps a server
/// started without flags private to the machine. Also where the clients
/// (`metricsctl`, `metricsd-bench`) look for a server by default.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8888";

/// The Graphite plaintext port (TCP and UDP) is off unless asked for: a
/// server started without flags speaks only the course protocol. Agents
/// send to port 2003 by default (carbon's `LINE_RECEIVER_PORT`,
/// [`GRAPHITE_CUSTOMARY_PORT`]), so `--graphite-listen 127.0.0.1:2003` is
/// the usual choice.
pub const DEFAULT_GRAPHITE_LISTEN: Option<&str> = None;

/// Carbon's plaintext port, where collectd, statsd, Telegraf and the other
/// agents send by default.
pub const GRAPHITE_CUSTOMARY_PORT: u16 = 2003;

/// PROTOCOL.md's `--max-line-bytes` default: a put with a key of 64 KiB is
/// far beyond any metric name, and a partial line is buffered up to this.
pub const DEFAULT_MAX_LINE_BYTES: usize = 64 * 1024;

/// Output one connection may have waiting before its requests are no longer
/// read and its answers no longer written (a `get` answer stops after a whole
/// line and goes on as the output drains). 4 MiB is about 150k point lines:
/// a reader that keeps up never waits on it, and it is what a peer that
/// stops reading can pin, besides at most one partial line of input, while
/// the server's memory for answers has room (see
/// [`DEFAULT_MAX_OUTPUT_MEMORY`]).
pub const DEFAULT_MAX_PENDING_OUTPUT: usize = 4 * 1024 * 1024;

/// All connections' unsent answer bytes together (`--max-output-memory`).
/// Without it, 300 peers that sent `get *` over a store of 1M series and
/// never read grew the server from 306 to 2,122 MiB (issue 16), and the
/// connection cap allowed tens of GiB. 256 MiB is 64 connections'
/// [`DEFAULT_MAX_PENDING_OUTPUT`]: that many slow readers of huge answers
/// are never held back by it, and it is small next to the store of a server
/// that has answers that large to give.
pub const DEFAULT_MAX_OUTPUT_MEMORY: usize = 256 * 1024 * 1024;

/// Redis' `maxclients` default.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// Connections are not closed for being idle unless asked: the course's
/// clients open one connection and may leave it quiet between puts for as
/// long as they like, as Redis' `timeout 0` does.
pub const DEFAULT_IDLE_TIMEOUT: Option<Duration> = None;

/// The server stores its own figures as series only when asked: unasked,
/// `get *` answers with the client's series alone.
pub const DEFAULT_SELF_METRICS_INTERVAL: Option<Duration> = None;

/// Carbon names its own series `carbon.agents.<host>.*`; ours are
/// `metricsd.*`.
pub const DEFAULT_SELF_METRICS_PREFIX: &str = "metricsd.";

/// The data directory when none is given: beside the working directory, as
/// Redis writes `dump.rdb`.
pub const DEFAULT_DATA_DIR: &str = "metricsd-data";

/// Redis' `appendfsync` default: a power loss can take about the last
/// second of acknowledged puts, for a fraction of `always`'s fsyncs.
pub const DEFAULT_FSYNC: Fsync = Fsync::EverySec;

/// Redis' `auto-aof-rewrite-min-size`: below 64 MB a log replays in well
/// under a second, and rewriting it more often only costs I/O.
pub const DEFAULT_COMPACT_MIN_BYTES: u64 = 64 << 20;

/// How long the clients (`metricsctl` per request, `metricsd-bench` while
/// nothing moves) wait for the server: long enough for `get *` of a large
/// store on a loaded machine, short enough that a stalled server is
/// noticed.
pub const DEFAULT_CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// When an acknowledged put is on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    /// Before its `ok` is sent (one fsync per loop turn covers every put of
    /// the turn).
    Always,
    /// Within about a second: a background thread syncs the log once a
    /// second, so a power loss can take the last second of `ok`ed puts.
    EverySec,
    /// When the kernel writes it back (and at a graceful shutdown).
    Never,
}

impl std::fmt::Display for Fsync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Fsync::Always => "always",
            Fsync::EverySec => "everysec",
            Fsync::Never => "never",
        })
    }
}

impl std::str::FromStr for Fsync {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "always" => Ok(Fsync::Always),
            "everysec" => Ok(Fsync::EverySec),
            "never" => Ok(Fsync::Never),
            _ => Err(format!("--fsync must be always, everysec or never, not {s:?}")),
        }
    }
}

/// Points are kept forever unless asked, as before retention existed: a
/// server that silently forgot data would surprise more than one that grows.
pub const DEFAULT_RETENTION: Option<Duration> = None;

/// No memory limit unless asked: the right one depends on the machine.
pub const DEFAULT_MAX_MEMORY: Option<u64> = None;

/// Refusing keeps every point already acknowledged: dropping data is the
/// operator's choice, as Redis' `maxmemory-policy noeviction` default.
pub const DEFAULT_ON_MEMORY_FULL: OnFull = OnFull::Reject;

/// What a put does when the memory limit is reached (`--on-memory-full`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OnFull {
    /// The put is refused; nothing stored is lost.
    #[default]
    Reject,
    /// The oldest sealed chunks of all series are dropped to make room.
    DropOldest,
}

impl std::fmt::Display for OnFull {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OnFull::Reject => "reject",
            OnFull::DropOldest => "drop-oldest",
        })
    }
}

impl std::str::FromStr for OnFull {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "reject" => Ok(OnFull::Reject),
            "drop-oldest" => Ok(OnFull::DropOldest),
            _ => Err(format!("--on-memory-full must be reject or drop-oldest, not {s:?}")),
        }
    }
}

/// The longest duration a flag takes: about 31 years, beyond any timeout
/// or run, and small enough that `Instant::now() + d` cannot overflow (it
/// panics on durations near `u64::MAX` seconds).
pub const MAX_DURATION_SECONDS: u64 = 1_000_000_000;

/// Why a flag's value is refused. Each message names the flag and what it
/// takes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlagError {
    #[error("{flag} takes a duration such as 300, 300s, 5m or 1h, not {text:?}")]
    NotADuration { flag: &'static str, text: String },
    #[error("{flag} takes a duration above zero, such as 300, 300s, 5m or 1h, not {text:?}")]
    ZeroDuration { flag: &'static str, text: String },
    #[error("{flag} takes a duration of at most {MAX_DURATION_SECONDS} seconds (about 31 years), not {text:?}")]
    DurationTooLong { flag: &'static str, text: String },
    #[error("{flag} takes a size such as 65536, 512KiB or 64MiB, not {text:?}")]
    NotASize { flag: &'static str, text: String },
    #[error("{flag} takes a size of at most {} bytes, not {text:?}", u64::MAX)]
    SizeTooLarge { flag: &'static str, text: String },
}

/// Units of a duration, in seconds. A number without one is seconds.
const DURATION_UNITS: [(&str, u64); 6] = [
    ("", 1),
    ("s", 1),
    ("m", 60),
    ("h", 3600),
    ("d", 86_400),
    ("w", 7 * 86_400),
];

/// `text` split into its number (the leading chars that `in_number` takes)
/// and the multiple its unit stands for; None for a unit not in `units`.
fn number_and_unit<'t>(text: &'t str, in_number: fn(char) -> bool, units: &[(&str, u64)]) -> Option<(&'t str, u64)> {
    let (number, unit) = text.split_at(text.find(|c| !in_number(c)).unwrap_or(text.len()));
    let &(_, multiple) = units.iter().find(|(name, _)| *name == unit)?;
    Some((number, multiple))
}

/// A duration above zero: a decimal number of seconds, or of the unit after
/// it (`300`, `300s`, `0.5`, `5m`, `1.5h`, `2d`, `1w`), at most
/// [`MAX_DURATION_SECONDS`].
pub fn parse_duration(flag: &'static str, text: &str) -> Result<Duration, FlagError> {
    let refuse = |make: fn(&'static str, String) -> FlagError| make(flag, text.to_owned());
    let (number, unit_seconds) = number_and_unit(text, |c| c.is_ascii_digit() || c == '.', &DURATION_UNITS)
        .ok_or_else(|| refuse(not_a_duration))?;
    // Digits with at most one dot and at least one digit: `.5` and `5.`
    // pass, `.` and `1.2.3` do not (f64's parser would also take `inf`,
    // `1e3` and signs, which the scan above already left in `unit`).
    if !number.bytes().any(|b| b.is_ascii_digit()) || number.bytes().filter(|&b| b == b'.').count() > 1 {
        return Err(refuse(not_a_duration));
    }
    let count: f64 = number.parse().map_err(|_| refuse(not_a_duration))?;
    let seconds = count * unit_seconds as f64;
    if seconds > MAX_DURATION_SECONDS as f64 {
        return Err(refuse(duration_too_long));
    }
    match Duration::try_from_secs_f64(seconds) {
        Ok(d) if !d.is_zero() => Ok(d),
        _ => Err(refuse(zero_duration)),
    }
}

fn not_a_duration(flag: &'static str, text: String) -> FlagError {
    FlagError::NotADuration { flag, text }
}

fn zero_duration(flag: &'static str, text: String) -> FlagError {
    FlagError::ZeroDuration { flag, text }
}

fn duration_too_long(flag: &'static str, text: String) -> FlagError {
    FlagError::DurationTooLong { flag, text }
}

/// Binary multiples a size may end in; a number without one is bytes.
const SIZE_UNITS: [(&str, u64); 5] = [
    ("", 1),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("TiB", 1 << 40),
];

/// A number of bytes: plain (`65536`) or whole binary multiples (`512KiB`,
/// `64MiB`, `4GiB`, `1TiB`). Zero is a size; whether a flag takes it is
/// the flag's business.
pub fn parse_size(flag: &'static str, text: &str) -> Result<u64, FlagError> {
    let not_a_size = || FlagError::NotASize {
        flag,
        text: text.to_owned(),
    };
    let (digits, multiple) = number_and_unit(text, |c| c.is_ascii_digit(), &SIZE_UNITS).ok_or_else(not_a_size)?;
    if digits.is_empty() {
        return Err(not_a_size());
    }
    let too_large = || FlagError::SizeTooLarge {
        flag,
        text: text.to_owned(),
    };
    // Only digits are left, so the one way the parse fails is overflow.
    let count: u64 = digits.parse().map_err(|_| too_large())?;
    count.checked_mul(multiple).ok_or_else(too_large)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn duration(text: &str) -> Result<Duration, String> {
        parse_duration("--t", text).map_err(|e| e.to_string())
    }

    fn size(text: &str) -> Result<u64, String> {
        parse_size("--s", text).map_err(|e| e.to_string())
    }

    #[test]
    fn durations_in_every_unit() {
        let secs = |s: u64| Ok(Duration::from_secs(s));
        assert_eq!(duration("300"), secs(300));
        assert_eq!(duration("300s"), secs(300));
        assert_eq!(duration("5m"), secs(300));
        assert_eq!(duration("1h"), secs(3600));
        assert_eq!(duration("2d"), secs(2 * 86_400));
        assert_eq!(duration("1w"), secs(7 * 86_400));
        assert_eq!(duration("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(duration(".5s"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("5."), secs(5));
        assert_eq!(duration("1.5m"), secs(90));
        assert_eq!(duration("0300"), secs(300));
        assert_eq!(duration("1000000000"), secs(MAX_DURATION_SECONDS));
    }

    #[test]
    fn durations_refused_say_what_the_flag_takes() {
        let not = |text: &str| {
            Err(format!(
                "--t takes a duration such as 300, 300s, 5m or 1h, not {text:?}"
            ))
        };
        for text in [
            "", "s", ".", "..5", "1.2.3", "-1", "-5m", "+5", "5 m", " 5", "5ms", "5M", "5x", "1e3", "inf", "NaN",
            "5mm", "m5", "٣",
        ] {
            assert_eq!(duration(text), not(text), "{text:?}");
        }
        let zero = |text: &str| {
            Err(format!(
                "--t takes a duration above zero, such as 300, 300s, 5m or 1h, not {text:?}"
            ))
        };
        for text in ["0", "0s", "0.0w", "0.0000000001"] {
            assert_eq!(duration(text), zero(text), "{text:?}");
        }
        let long = |text: &str| {
            Err(format!(
                "--t takes a duration of at most 1000000000 seconds (about 31 years), not {text:?}"
            ))
        };
        let huge = "9".repeat(400);
        for text in ["1000000001", "1000000000.5", "1654w", "99999999999999999999999w", &huge] {
            assert_eq!(duration(text), long(text), "{text:?}");
        }
    }

    #[test]
    fn sizes_plain_and_binary() {
        assert_eq!(size("65536"), Ok(65536));
        assert_eq!(size("0"), Ok(0));
        assert_eq!(size("512KiB"), Ok(512 << 10));
        assert_eq!(size("64MiB"), Ok(64 << 20));
        assert_eq!(size("4GiB"), Ok(4 << 30));
        assert_eq!(size("1TiB"), Ok(1 << 40));
        assert_eq!(size("0KiB"), Ok(0));
        assert_eq!(size("18446744073709551615"), Ok(u64::MAX));
        assert_eq!(size("16777215TiB"), Ok(16_777_215 << 40));
    }

    #[test]
    fn sizes_refused_say_what_the_flag_takes() {
        let not = |text: &str| Err(format!("--s takes a size such as 65536, 512KiB or 64MiB, not {text:?}"));
        for text in [
            "", "KiB", "-1", "+1", "1.5MiB", "1 KiB", "1kib", "1KB", "1K", "1k", "1B", "1XiB", "MiB1", "0x10", " 1",
        ] {
            assert_eq!(size(text), not(text), "{text:?}");
        }
        let large = |text: &str| {
            Err(format!(
                "--s takes a size of at most 18446744073709551615 bytes, not {text:?}"
            ))
        };
        for text in ["18446744073709551616", "16777216TiB", "99999999999999999999999"] {
            assert_eq!(size(text), large(text), "{text:?}");
        }
    }

    #[test]
    fn fsync_policies_read_back_as_written() {
        for policy in [Fsync::Always, Fsync::EverySec, Fsync::Never] {
            assert_eq!(policy.to_string().parse(), Ok(policy));
        }
        assert_eq!(DEFAULT_FSYNC.to_string(), "everysec");
        assert!("sometimes".parse::<Fsync>().is_err());
    }

    #[test]
    fn memory_full_policies_read_back_as_written() {
        for policy in [OnFull::Reject, OnFull::DropOldest] {
            assert_eq!(policy.to_string().parse(), Ok(policy));
        }
        assert_eq!(DEFAULT_ON_MEMORY_FULL.to_string(), "reject");
        assert_eq!(
            "drop-newest".parse::<OnFull>(),
            Err("--on-memory-full must be reject or drop-oldest, not \"drop-newest\"".to_owned())
        );
    }
}
