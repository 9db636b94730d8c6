"""A metrics client written the way the course assignment describes it
(seeds/002_74a27f7b25bb22df.txt), standard library only.

Run as `python3 seed_client.py PORT` it checks the assignment's examples
against a metricsd server on 127.0.0.1:PORT whose store starts empty.
"""

import socket
import sys
import time


class ClientError(Exception):
    pass


class Client:
    def __init__(self, host, port, timeout=None):
        try:
            self.sock = socket.create_connection((host, port), timeout)
        except OSError as e:
            raise ClientError("cannot connect") from e

    def _request(self, line):
        try:
            self.sock.sendall(line.encode())
            data = b""
            while not data.endswith(b"\n\n"):
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ClientError("connection closed")
                data += chunk
        except OSError as e:
            raise ClientError("socket error") from e
        status, _, body = data.decode().partition("\n")
        if status != "ok":
            raise ClientError(body.strip())
        return body

    def put(self, key, value, timestamp=None):
        # As the course's own solutions do: `timestamp or ...`.
        self._request(f"put {key} {value} {timestamp or int(time.time())}\n")

    def get(self, key):
        result = {}
        try:
            for line in self._request(f"get {key}\n").split("\n"):
                if line:
                    name, value, ts = line.split()
                    result.setdefault(name, []).append((int(ts), float(value)))
        except ValueError as e:
            raise ClientError("malformed answer") from e
        for points in result.values():
            points.sort(key=lambda p: p[0])
        return result


# --------------------------------------------------------------------------
# The assignment's checks, run against 127.0.0.1:PORT.
# --------------------------------------------------------------------------

HOST = "127.0.0.1"
TIMEOUT = 15

EXPECTED_ALL = {
    "palm.cpu": [(1150864247, 0.5), (1150864248, 0.5)],
    "eardrum.cpu": [(1150864250, 3.0), (1150864251, 4.0)],
    "eardrum.memory": [(1503320872, 4200000.0)],
}


def expect(what, got, want):
    if got != want:
        raise AssertionError(f"{what}: got {got!r}, want {want!r}")


def expect_client_error(what, call):
    try:
        result = call()
    except ClientError:
        return
    raise AssertionError(f"{what}: no ClientError, returned {result!r}")


def check_assignment_example(port):
    client = Client(HOST, port, timeout=TIMEOUT)
    expect("put", client.put("palm.cpu", 0.5, timestamp=1150864247), None)
    client.put("palm.cpu", 2.0, timestamp=1150864248)
    client.put("palm.cpu", 0.5, timestamp=1150864248)  # same second: overwrites
    client.put("eardrum.cpu", 3.0, timestamp=1150864250)
    client.put("eardrum.cpu", 4.0, timestamp=1150864251)
    client.put("eardrum.memory", 4200000, timestamp=1503320872)
    expect(
        'get("palm.cpu")',
        client.get("palm.cpu"),
        {"palm.cpu": [(1150864247, 0.5), (1150864248, 0.5)]},
    )


def check_get_all(port):
    # Runs right after the example: the store holds exactly its data.
    got = Client(HOST, port, timeout=TIMEOUT).get("*")
    expect('get("*")', got, EXPECTED_ALL)
    for points in got.values():
        for ts, value in points:
            expect("types", (type(ts), type(value)), (int, float))


def check_missing_key(port):
    client = Client(HOST, port, timeout=TIMEOUT)
    expect('get("nothing.here")', client.get("nothing.here"), {})
    expect('get("palm")', client.get("palm"), {})


def check_raw_wrong_command(port):
    with socket.create_connection((HOST, port), TIMEOUT) as sock:
        sock.sendall(b"get wrong command test\n\n")
        data = b""
        while not data.endswith(b"\n\n"):
            chunk = sock.recv(1024)
            if not chunk:
                raise AssertionError(f"server closed after {data!r}")
            data += chunk
        expect("answer to 'get wrong command test'", data, b"error\nwrong command\n\n")
        sock.settimeout(0.5)
        try:
            extra = sock.recv(1024)
        except socket.timeout:
            return
        raise AssertionError(f"more bytes after the one answer: {extra!r}")


def check_invalid_requests_raise_and_connection_goes_on(port):
    client = Client(HOST, port, timeout=TIMEOUT)
    expect_client_error("put with a non-numeric value", lambda: client.put("palm.cpu", "abc", 1))
    expect_client_error("get with two keys", lambda: client.get("wrong command"))
    expect_client_error("put with a float timestamp", lambda: client.put("palm.cpu", 1.0, 1.5))
    expect_client_error("put of key *", lambda: client.put("*", 1.0, 1))
    # The same connection still gets the right answers, and nothing was stored.
    expect('get("palm.cpu") after errors', client.get("palm.cpu"), {"palm.cpu": EXPECTED_ALL["palm.cpu"]})
    client.put("after.error", 1.5, timestamp=7)
    expect('get("after.error")', client.get("after.error"), {"after.error": [(7, 1.5)]})


def check_put_without_timestamp(port):
    client = Client(HOST, port, timeout=TIMEOUT)
    before = int(time.time())
    client.put("now.cpu", 23.7)
    after = int(time.time())
    got = client.get("now.cpu")
    expect("keys", list(got), ["now.cpu"])
    (ts, value), = got["now.cpu"]
    expect("value", value, 23.7)
    if not before <= ts <= after:
        raise AssertionError(f"timestamp {ts} not in [{before}, {after}]")


def check_unsorted_puts_come_back_sorted(port):
    client = Client(HOST, port, timeout=TIMEOUT)
    for ts in (30, 10, 20):
        client.put("order", ts / 10, timestamp=ts)
    expect('get("order")', client.get("order"), {"order": [(10, 1.0), (20, 2.0), (30, 3.0)]})


CHECKS = [
    check_assignment_example,
    check_get_all,
    check_missing_key,
    check_raw_wrong_command,
    check_invalid_requests_raise_and_connection_goes_on,
    check_put_without_timestamp,
    check_unsorted_puts_come_back_sorted,
]


def main(argv):
    if len(argv) != 2 or not argv[1].isdigit():
        print(f"usage: {argv[0]} PORT", file=sys.stderr)
        return 2
    port = int(argv[1])
    passed = failed = 0
    for check in CHECKS:
        try:
            check(port)
        except Exception as e:  # report every failure, then go on
            failed += 1
            print(f"FAIL {check.__name__}: {type(e).__name__}: {e}", file=sys.stderr)
        else:
            passed += 1
    print(f"python client: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
