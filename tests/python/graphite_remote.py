"""graphite-web 1.1's cluster client against one metricsd node.

Does what graphite-web's RemoteFinder (graphite/finders/remote.py) and
RemoteReader (graphite/readers/remote.py) do with a node named in
CLUSTER_SERVERS: the same requests (GET, or POST as with
REMOTE_STORE_USE_POST), the decoder chosen by the answer's Content-Type, an
unpickler that refuses every class outside graphite-web's allowlist
(graphite/util.py's SafeUnpickler), and the same reading of the dicts. It
stores its own points first through the course protocol, then checks every
answer exactly. Exit status 0 and a last line "graphite remote: N checks
passed" when all pass.

Usage: python3 graphite_remote.py COURSE_PORT HTTP_PORT
"""
import io
import pickle
import socket
import sys
import urllib.error
import urllib.parse
import urllib.request

COURSE_PORT, HTTP_PORT = int(sys.argv[1]), int(sys.argv[2])
T0 = 1733133600  # a multiple of 60


class SafeUnpickler(pickle.Unpickler):
    """graphite.util.SafeUnpickler (Python 3 branch), without importing
    graphite: only these classes may be named, and metricsd names none."""

    PICKLE_SAFE = {
        'copy_reg': set(['_reconstructor']),
        'builtins': set(['object', 'list', 'set']),
        'collections': set(['deque']),
        'graphite.render.datalib': set(['TimeSeries', 'Tags']),
        'graphite.intervals': set(['Interval', 'IntervalSet']),
    }

    def __init__(self, file):
        super().__init__(file, encoding='utf8')

    def find_class(self, module, name):
        if module not in self.PICKLE_SAFE or name not in self.PICKLE_SAFE[module]:
            raise pickle.UnpicklingError('Attempting to unpickle unsafe class %s.%s' % (module, name))
        # graphite-web would import it; nothing of metricsd's answers gets here.
        raise pickle.UnpicklingError('metricsd named a class: %s.%s' % (module, name))


def request(path, fields, post=False):
    """RemoteFinder.request: GET with the fields as a query string, or
    POST as a form; a status other than 200 is an error."""
    url = 'http://127.0.0.1:%d%s' % (HTTP_PORT, path)
    data = urllib.parse.urlencode(fields)
    if post:
        req = urllib.request.Request(url, data=data.encode(), method='POST')
    else:
        req = urllib.request.Request(url + '?' + data)
    with urllib.request.urlopen(req, timeout=10) as answer:
        if answer.status != 200:
            raise Exception('Error response %d from %s' % (answer.status, url))
        return answer.read(), answer.headers.get('content-type')


def deserialize(body, content_type):
    """RemoteFinder._deserialize_buffer."""
    if content_type == 'application/x-msgpack':
        raise Exception('metricsd answered msgpack unasked')
    return SafeUnpickler(io.BytesIO(body)).load()


def find_nodes(pattern, post=False):
    """RemoteFinder.find_nodes, up to the nodes it builds."""
    fields = [('local', '1'), ('format', 'pickle'), ('query', pattern), ('from', T0 - 3600), ('until', T0 + 3600)]
    results = deserialize(*request('/metrics/find/', fields, post))
    nodes = []
    for node_info in results:
        path = node_info.get('path') or node_info.get('metric_path')
        is_leaf = node_info.get('is_leaf') or node_info.get('isLeaf')
        intervals = node_info.get('intervals') or []
        # IntervalSet([Interval(i[0], i[1]) for i in intervals]): Interval
        # refuses an end before its start.
        for interval in intervals:
            assert interval[0] <= interval[1], interval
        nodes.append((path, bool(is_leaf), [tuple(i) for i in intervals]))
    return nodes


def fetch_multi(patterns, start, end, now=None, post=False):
    """RemoteReader.fetch_multi."""
    fields = [('format', 'pickle'), ('local', '1'), ('noCache', '1'), ('from', int(start)), ('until', int(end))]
    for target in patterns:
        fields.append(('target', target))
    if now is not None:
        fields.append(('now', int(now)))
    data = deserialize(*request('/render/', fields, post))
    return [
        {
            'pathExpression': series.get('pathExpression', series['name']),
            'name': series['name'],
            'time_info': (series['start'], series['end'], series['step']),
            'values': series['values'],
        }
        for series in data
    ]


checks = 0


def check(got, want, what):
    global checks
    if got != want:
        sys.exit('%s: got %r, want %r' % (what, got, want))
    checks += 1


# Points: web1.cpu every 60 s with one missing, db1.cpu one point, and
# db1 both a key and a branch.
points = [('servers.web1.cpu', T0 + 60 * i, v) for i, v in enumerate([1.5, -2.0, None, 1e-7, 3e20])]
points += [('servers.db1.cpu', T0, 5.0), ('servers.db1', T0, 6.0), ('other.x', T0, 1.0)]
with socket.create_connection(('127.0.0.1', COURSE_PORT), timeout=10) as s:
    lines = ''.join('put %s %r %d\n' % (k, v, t) for k, t, v in points if v is not None)
    s.sendall(lines.encode())
    f = s.makefile('rb')
    for _ in range(lines.count('\n')):
        check(f.readline(), b'ok\n', 'put')
        check(f.readline(), b'\n', 'put')

for post in (False, True):
    got = find_nodes('servers.*', post)
    # A key's interval runs from its oldest point to the node's clock.
    end = got[1][2][0][1] if len(got) == 3 and got[1][2] else None
    check(end is not None and end >= T0, True, 'the end of the interval in %r' % got)
    check(got, [
        ('servers.db1', False, []),
        ('servers.db1', True, [(T0, end)]),
        ('servers.web1', False, []),
    ], 'find servers.* (post=%s)' % post)
    check(find_nodes('nothing.*', post), [], 'find nothing.*')

    web1 = [1.5, -2.0, None, 1e-7, 3e20, None]
    got = fetch_multi(['servers.*.cpu', 'servers.web1.cpu', 'servers.{web1,nope}.cpu'], T0 - 1, T0 + 300, now=T0 + 400, post=post)
    check(got, [
        {'pathExpression': 'servers.*.cpu', 'name': 'servers.db1.cpu', 'time_info': (T0, T0 + 360, 60), 'values': [5.0] + [None] * 5},
        {'pathExpression': 'servers.*.cpu', 'name': 'servers.web1.cpu', 'time_info': (T0, T0 + 360, 60), 'values': web1},
        {'pathExpression': 'servers.web1.cpu', 'name': 'servers.web1.cpu', 'time_info': (T0, T0 + 360, 60), 'values': web1},
        {'pathExpression': 'servers.{web1,nope}.cpu', 'name': 'servers.web1.cpu', 'time_info': (T0, T0 + 360, 60), 'values': web1},
    ], 'fetch_multi (post=%s)' % post)
    check(fetch_multi(['nothing.here'], T0, T0 + 60, post=post), [], 'fetch of nothing')

# Without the trailing slash, as a hand-made CLUSTER_SERVERS URL may ask.
body, content_type = request('/render', [('format', 'pickle'), ('target', 'other.x'), ('from', T0 - 60), ('until', T0)])
check(content_type, 'application/pickle', 'content type')
check([s['values'] for s in deserialize(body, content_type)], [[1.0]], '/render without a slash')

# A bad target: the node answers a 400, which graphite-web logs and counts
# as that node failing (not a hang, not a pickle).
try:
    fetch_multi(['sumSeries(a'], T0, T0 + 60)
    sys.exit('a bad target was answered 200')
except urllib.error.HTTPError as e:
    check((e.code, e.read()), (400, b'target "sumSeries(a": missing \')\' at character 11\n'), 'bad target')

print('graphite remote: %d checks passed' % checks)
