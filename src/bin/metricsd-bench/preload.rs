//! Stores the points a run with gets reads, before the run and outside its
//! measurement: through the crate's client for metricsd, as pipelined
//! `DEL` and `RPUSH` commands for Redis.

use crate::redis::{self, Preload, PreloadReply};
use crate::resp::RespScanner;
use crate::workload::Workload;
use metricsd::ClientError;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Points sent before their answers are awaited: a `put_many` call for
/// metricsd, a batch of commands for Redis. The client sends puts 4096 at
/// a time and its timeout bounds each call: 65,536 puts take about a tenth
/// of a second on loopback, far inside any sensible --timeout.
const PRELOAD_BATCH: usize = 65_536;
/// Bytes taken per read of Redis's replies (two short integers a key).
const READ_CHUNK: usize = 16 * 1024;

/// Why the points could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum PreloadError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("{0}: {1}")]
    Io(&'static str, io::Error),
    #[error("the server closed the connection")]
    Closed,
    #[error("wrong answer: {0}")]
    WrongAnswer(String),
}

/// Stores what `workload` reads, if anything, at `addr`.
pub fn preload(
    addr: SocketAddr,
    workload: &Workload,
    timeout: Duration,
    interactive: bool,
) -> Result<(), PreloadError> {
    if workload.preloaded() == 0 {
        return Ok(());
    }
    if interactive {
        eprint!("storing {} points a key first…", workload.preloaded());
    }
    match workload.redis_preload() {
        Some(redis_preload) => to_redis(addr, &redis_preload, timeout),
        None => to_metricsd(addr, workload, timeout),
    }
}

fn to_metricsd(addr: SocketAddr, workload: &Workload, timeout: Duration) -> Result<(), PreloadError> {
    let mut client = metricsd::Client::new(&addr.ip().to_string(), addr.port(), Some(timeout))?;
    let mut points = workload.preload_points();
    let mut batch = Vec::with_capacity(PRELOAD_BATCH);
    loop {
        batch.clear();
        batch.extend(points.by_ref().take(PRELOAD_BATCH).map(|(k, v, t)| (k, v, Some(t))));
        if batch.is_empty() {
            return Ok(());
        }
        client.put_many(&batch)?;
    }
}

/// Replaces each key's list by `points`, a batch of keys at a time, and
/// checks every reply.
fn to_redis(addr: SocketAddr, preload: &Preload, timeout: Duration) -> Result<(), PreloadError> {
    let Preload { keys, points, expected } = preload;
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| PreloadError::Io("cannot connect", e))?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(|e| PreloadError::Io("cannot set a timeout", e))?;
    let keys_per_batch = (PRELOAD_BATCH / points.len().max(1)).max(1);
    let (mut out, mut awaited, mut input) = (Vec::new(), Vec::new(), Vec::new());
    let mut chunk = vec![0; READ_CHUNK];
    let mut scanner = RespScanner::new();
    for batch in keys.chunks(keys_per_batch) {
        out.clear();
        awaited.clear();
        for key in batch {
            awaited.extend_from_slice(redis::encode_preload(&mut out, key, points));
        }
        stream.write_all(&out).map_err(|e| PreloadError::Io("cannot send", e))?;
        let mut answered = 0;
        while answered < awaited.len() {
            let n = stream.read(&mut chunk).map_err(|e| PreloadError::Io("no answer", e))?;
            if n == 0 {
                return Err(PreloadError::Closed);
            }
            input.extend_from_slice(&chunk[..n]);
            answered += take_replies(&mut scanner, &mut input, &awaited[answered..], expected)?;
        }
        if !input.is_empty() {
            return Err(PreloadError::WrongAnswer("more replies than commands".to_owned()));
        }
    }
    Ok(())
}

/// Checks the whole replies at the front of `input` against `awaited`,
/// removes them, and returns how many there were.
fn take_replies(
    scanner: &mut RespScanner,
    input: &mut Vec<u8>,
    awaited: &[PreloadReply],
    expected: &redis::Expected,
) -> Result<usize, PreloadError> {
    let mut used = 0;
    let mut taken = 0;
    while taken < awaited.len() {
        let Some(len) = scanner
            .check(&input[used..])
            .map_err(|e| PreloadError::WrongAnswer(e.to_string()))?
        else {
            break;
        };
        expected
            .check_preload(awaited[taken], &input[used..used + len])
            .map_err(PreloadError::WrongAnswer)?;
        used += len;
        taken += 1;
    }
    input.drain(..used);
    Ok(taken)
}
