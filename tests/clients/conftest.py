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


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(cond, timeout, what):
    """Polls `cond` until it is truthy; fails with `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


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
