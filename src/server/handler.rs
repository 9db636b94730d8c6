//! Applies one request line to the store and writes its answer. No I/O: the
//! connection hands in a line and an output buffer.

use crate::protocol::request::{parse_line, Query, Request, RequestError};
use crate::protocol::response;
use crate::store::Store;

/// Answers one line (without its `\n`). Blank lines get no answer; an invalid
/// line gets `error\nwrong command\n\n` and its cause is returned.
#[inline]
pub fn answer_line(line: &[u8], store: &mut Store, out: &mut Vec<u8>) -> Result<(), RequestError> {
    match parse_line(line) {
        Ok(Some(request)) => {
            execute(request, store, out);
            Ok(())
        }
        Ok(None) => Ok(()),
        Err(cause) => {
            reject(out);
            Err(cause)
        }
    }
}

/// Writes the one error answer the protocol has.
#[inline]
pub fn reject(out: &mut Vec<u8>) {
    out.extend_from_slice(response::WRONG_COMMAND);
}

/// Applies a valid request and writes its answer.
pub fn execute(request: Request<'_>, store: &mut Store, out: &mut Vec<u8>) {
    match request {
        Request::Put { key, value, timestamp } => {
            store.put(key, timestamp, value);
            out.extend_from_slice(response::OK_EMPTY);
        }
        Request::Get(Query::Key(key)) => {
            response::begin_ok(out);
            if let Some(series) = store.get(key) {
                for (timestamp, value) in series.iter() {
                    response::write_point(out, key, value, timestamp);
                }
            }
            response::end(out);
        }
        Request::Get(Query::All) => {
            response::begin_ok(out);
            for (key, series) in store.all_sorted() {
                for (timestamp, value) in series.iter() {
                    response::write_point(out, key, value, timestamp);
                }
            }
            response::end(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer_all(store: &mut Store, lines: &[&str]) -> String {
        let mut out = Vec::new();
        for line in lines {
            let _ = answer_line(line.as_bytes(), store, &mut out);
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_assignment_example() {
        let mut store = Store::new();
        let puts = answer_all(
            &mut store,
            &[
                "put palm.cpu 0.5 1150864247",
                "put palm.cpu 2.0 1150864248",
                "put palm.cpu 0.5 1150864248",
                "put eardrum.cpu 3 1150864250",
                "put eardrum.cpu 4 1150864251",
                "put eardrum.memory 4200000 1503320872",
            ],
        );
        assert_eq!(puts, "ok\n\n".repeat(6));
        assert_eq!(
            answer_all(&mut store, &["get palm.cpu"]),
            "ok\npalm.cpu 0.5 1150864247\npalm.cpu 0.5 1150864248\n\n"
        );
        assert_eq!(
            answer_all(&mut store, &["get *"]),
            "ok\neardrum.cpu 3.0 1150864250\neardrum.cpu 4.0 1150864251\neardrum.memory 4200000.0 1503320872\n\
             palm.cpu 0.5 1150864247\npalm.cpu 0.5 1150864248\n\n"
        );
        assert_eq!(answer_all(&mut store, &["get nothing.here"]), "ok\n\n");
        assert_eq!(answer_all(&mut store, &["", "  \r"]), "");
        assert_eq!(
            answer_all(&mut store, &["put palm.cpu abc 1", "get palm.cpu x"]),
            "error\nwrong command\n\n".repeat(2)
        );
    }
}
