"""Real raftka broker processes for the client suites.

Each `Broker` runs the `raftka` binary (RAFTKA_BIN) on free loopback ports
with its own data dir, waits for GET /v1/health with a deadline, and fails
with the broker's log when it does not come up.
"""
import os
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

BIN = os.environ.get("RAFTKA_BIN") or os.path.expanduser("~/.cache/raftka-target/debug/raftka")


# Ports are bound by number (a cluster's nodes know each other's addresses),
# so they come from below the ephemeral range (32768-60999 here), where an
# outgoing connection can never take a port a node is about to bind or
# re-bind after a restart. Each process walks its own stretch of
# [PORT_LOW, PORT_HIGH) and never hands out a port twice, so blocks given to
# one cluster can not overlap another's; a port some other program holds is
# skipped.
PORT_LOW, PORT_HIGH = 20_000, 32_000
_next_port = PORT_LOW + (os.getpid() % 64) * ((PORT_HIGH - PORT_LOW) // 64)


def _bindable(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def free_port_block(n):
    """A base port such that base..base+n-1 are free on 127.0.0.1 and were
    never handed out before by this process."""
    global _next_port
    for _ in range(PORT_HIGH - PORT_LOW):
        if _next_port + n > PORT_HIGH:
            _next_port = PORT_LOW
        base = _next_port
        _next_port += n
        if all(_bindable(p) for p in range(base, base + n)):
            return base
    raise AssertionError("no free port block below the ephemeral range")


def free_port():
    return free_port_block(1)


def wait_for(cond, timeout, what):
    """Polls `cond` until it is truthy; fails with `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            what = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def http_call(addr, method, path, body=None, raw=None, content_type="application/json", timeout=40):
    """(status, parsed JSON body or None) of one HTTP request; `raw` sends bytes as they are."""
    import json
    import urllib.error
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(f"http://{addr}{path}", data=data, method=method)
    if data is not None and content_type:
        req.add_header("Content-Type", content_type)

    def parse(b):
        return json.loads(b) if b else None
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, parse(r.read())
    except urllib.error.HTTPError as e:
        return e.code, parse(e.read())


class Broker:
    def __init__(self, data_dir, env=None):
        self.data_dir = str(data_dir)
        self.kafka_port, self.http_port, self.raft_port = free_port(), free_port(), free_port()
        self.env = {**os.environ, "RUST_LOG": "info,openraft=warn", **(env or {})}
        self.log_path = os.path.join(self.data_dir, "broker.log")
        self.proc = None
        os.makedirs(self.data_dir, exist_ok=True)

    @property
    def bootstrap(self):
        return f"127.0.0.1:{self.kafka_port}"

    def start(self):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [BIN, "broker", "--node-id", "1",
             "--kafka-addr", self.bootstrap,
             "--http-addr", f"127.0.0.1:{self.http_port}",
             "--raft-addr", f"127.0.0.1:{self.raft_port}",
             "--data-dir", self.data_dir],
            stdout=log, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.monotonic() + 60
        while not self.healthy():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"broker did not start:\n{self.log()}")
            time.sleep(0.05)
        return self

    def healthy(self):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/v1/health", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")[-5000:]

    def kill(self):
        """SIGKILL: no shutdown path runs."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self):
        """SIGTERM: a graceful shutdown that must exit 0."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            code = self.proc.wait(timeout=30)
            assert code == 0, f"broker exited {code}:\n{self.log()}"


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path / "broker").start()
    yield b
    if b.proc.poll() is None:
        b.stop()


@pytest.fixture
def broker_factory(tmp_path):
    started = []

    def make(**env):
        b = Broker(tmp_path / f"broker-{len(started)}", env=env).start()
        started.append(b)
        return b
    yield make
    for b in started:
        if b.proc.poll() is None:
            b.stop()


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "cluster")


class Cluster:
    """A local cluster run by scripts/cluster (the same commands users run),
    in its own directory and ports."""

    def __init__(self, root_dir, size):
        self.size = size
        self.dir = str(root_dir)
        # One spare port each, for a broker added later (`start size+1`).
        self.kafka_port, self.http_port, self.raft_port = (free_port_block(size + 1) for _ in range(3))
        self.env = {**os.environ, "RAFTKA_CLUSTER_DIR": self.dir, "RAFTKA_BIN": BIN,
                    "RAFTKA_KAFKA_PORT": str(self.kafka_port), "RAFTKA_HTTP_PORT": str(self.http_port),
                    "RAFTKA_RAFT_PORT": str(self.raft_port)}

    def run(self, *args, timeout=120):
        done = subprocess.run([SCRIPT, *map(str, args)], env=self.env, capture_output=True, text=True,
                              timeout=timeout)
        assert done.returncode == 0, f"scripts/cluster {' '.join(map(str, args))} failed:\n" \
                                     f"{done.stdout}\n{done.stderr}\n{self.logs()}"
        return done.stdout

    def bootstrap(self, *nodes):
        nodes = nodes or range(1, self.size + 1)
        return ",".join(f"127.0.0.1:{self.kafka_port + i - 1}" for i in nodes)

    def http(self, node, path):
        """(status, json body) of GET `path` on `node`; (None, None) if it does not answer."""
        try:
            return http_call(self.http_addr(node), "GET", path, timeout=2)
        except OSError:
            return None, None

    def http_addr(self, node):
        return f"127.0.0.1:{self.http_port + node - 1}"

    def api(self, node, method, path, body=None, **kw):
        """(status, json body) of `method path` with a JSON `body` on `node`'s admin API."""
        return http_call(self.http_addr(node), method, path, body, **kw)

    def pid(self, node):
        with open(os.path.join(self.dir, f"node-{node}.pid")) as f:
            return int(f.read())

    def log(self, node):
        with open(os.path.join(self.dir, f"node-{node}.log"), "rb") as f:
            return f.read().decode(errors="replace")

    def logs(self):
        out = []
        for i in range(1, self.size + 2):
            path = os.path.join(self.dir, f"node-{i}.log")
            if os.path.exists(path):
                with open(path, "rb") as f:
                    out.append(f"--- node {i} ---\n" + f.read().decode(errors="replace")[-3000:])
        return "\n".join(out)


@pytest.fixture(scope="module")
def shared_cluster(tmp_path_factory):
    """One 3-node cluster for a module's tests that do not kill nodes."""
    c = Cluster(tmp_path_factory.mktemp("shared-cluster"), 3)
    c.run("up", 3)
    yield c
    c.run("down")


@pytest.fixture
def cluster_factory(tmp_path):
    made = []

    def make(size=3, **settings):
        """`settings` are broker settings (`raft_snapshot_logs=100`), given
        to every node as RAFTKA_* variables."""
        c = Cluster(tmp_path / f"cluster-{len(made)}", size)
        c.env.update({f"RAFTKA_{k.upper()}": str(v) for k, v in settings.items()})
        made.append(c)
        c.run("up", size)
        return c
    yield make
    for c in made:
        c.run("down")
