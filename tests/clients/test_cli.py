"""The `raftka` CLI verbs against a live 3-node cluster: each verb's happy
path (tables and --json) and its error exit."""
import json
import subprocess
import threading
import time

import pytest

from conftest import BIN, wait_for


def cli(c, *args, node=1, stdin=None, timeout=60):
    done = subprocess.run([BIN, *map(str, args), "--server", c.http_addr(node)], input=stdin,
                          capture_output=True, text=True, timeout=timeout)
    return done.returncode, done.stdout, done.stderr


def ok(c, *args, **kw):
    code, out, err = cli(c, *args, **kw)
    assert code == 0, f"raftka {' '.join(map(str, args))} exited {code}:\n{out}\n{err}"
    return out


def fails(c, *args, **kw):
    code, out, err = cli(c, *args, **kw)
    assert code == 1, f"raftka {' '.join(map(str, args))} exited {code}:\n{out}\n{err}"
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


def test_topic_verbs(shared_cluster):
    c = shared_cluster
    out = ok(c, "topic", "create", "cli-topic", "--partitions", 2, "--replication-factor", 3,
             "--config", "retention.ms=600000", node=2)
    assert "topic cli-topic" in out and "PARTITION" in out and "configs: retention.ms=600000" in out
    created = json.loads(ok(c, "topic", "describe", "cli-topic", "--json", node=3))
    assert len(created["partitions"]) == 2 and created["overrides"] == {"retention.ms": "600000"}
    table = ok(c, "topic", "list")
    assert table.splitlines()[0].split() == ["TOPIC", "PARTITIONS", "REPLICATION"]
    assert ["cli-topic", "2", "3"] in [line.split() for line in table.splitlines()]
    assert {"name": "cli-topic", "partitions": 2, "replication_factor": 3, "internal": False} in \
        json.loads(ok(c, "topic", "list", "--json"))
    out = ok(c, "topic", "alter", "cli-topic", "--partitions", 3, "--set", "retention.bytes=5000",
             "--delete", "retention.ms", "--json")
    altered = json.loads(out)
    assert len(altered["partitions"]) == 3 and altered["overrides"] == {"retention.bytes": "5000"}
    assert "deleted topic cli-topic" in ok(c, "topic", "delete", "cli-topic")
    wait_for(lambda: cli(c, "topic", "describe", "cli-topic")[0] == 1, 10, "the topic gone")

    ok(c, "topic", "create", "exists-cli")
    assert "already exists" in fails(c, "topic", "create", "exists-cli")
    assert "HTTP 404" in fails(c, "topic", "describe", "no-such-topic")
    assert "HTTP 404" in fails(c, "topic", "delete", "no-such-topic")
    assert "invalid topic name" in fails(c, "topic", "create", "bad/name")
    assert "replication factor" in fails(c, "topic", "create", "too-wide", "-r", 9)
    assert "nothing to alter" in fails(c, "topic", "alter", "exists-cli")
    assert "larger" in fails(c, "topic", "alter", "exists-cli", "--partitions", 1)
    assert "unknown topic config" in fails(c, "topic", "alter", "exists-cli", "--set", "bogus=1")
    code, _, err = cli(c, "topic", "create", "x", "--config", "novalue")
    assert code == 2 and "key=value" in err
    code, _, err = cli(c, "topic", "frobnicate")
    assert code == 2 and "frobnicate" in err


@pytest.mark.parametrize("verb", [
    ["topic", "create", "t"], ["topic", "list"], ["topic", "describe", "t"], ["topic", "delete", "t"],
    ["topic", "alter", "t", "--set", "retention.ms=1"], ["cluster", "status"], ["cluster", "watch"],
    ["group", "list"], ["group", "describe", "g"], ["produce", "t"], ["consume", "t"],
])
def test_every_verb_fails_cleanly_without_a_server(verb):
    done = subprocess.run([BIN, *verb, "--server", "127.0.0.1:1"], input="x\n", capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 1, done
    assert done.stderr.startswith("error: cannot reach http://127.0.0.1:1") and done.stderr.count("\n") == 1


def test_cluster_status(shared_cluster):
    c = shared_cluster
    out = ok(c, "cluster", "status", node=3)
    lines = out.splitlines()
    assert lines[0].startswith("cluster ") and "controller" in lines[0]
    assert lines[1].split() == ["NODE", "STATE", "KAFKA", "HTTP", "VOTER", "LEADS"]
    rows = [line.split() for line in lines[2:]]
    assert [r[:4] for r in rows] == [[str(n), "up", c.bootstrap(n), c.http_addr(n)] for n in (1, 2, 3)]
    status = json.loads(ok(c, "cluster", "status", "--json"))
    assert [n["id"] for n in status["nodes"]] == [1, 2, 3]


def test_produce_and_consume(shared_cluster):
    c = shared_cluster
    ok(c, "topic", "create", "cli-records", "-p", 3, "-r", 3)
    lines = "".join(f"key{i}:value {i}\n" for i in range(50))
    code, out, err = cli(c, "produce", "cli-records", "-K", ":", node=2, stdin=lines)
    assert code == 0 and "produced 50 records to cli-records" in err, err
    out = ok(c, "consume", "cli-records", "-K", "=", node=3)
    assert sorted(out.splitlines()) == sorted(f"key{i}=value {i}" for i in range(50))
    records = [json.loads(line) for line in ok(c, "consume", "cli-records", "--json").splitlines()]
    assert len(records) == 50
    for r in records:  # keyed lines land where Kafka clients would put them, in order per partition
        assert r["key"] == f"key{r['value'].split()[1]}"
    by_partition = {}
    for r in records:
        by_partition.setdefault(r["partition"], []).append(r["offset"])
    assert all(offsets == list(range(len(offsets))) for offsets in by_partition.values())
    assert ok(c, "consume", "cli-records", "--max", 7).count("\n") == 7
    assert ok(c, "consume", "cli-records", "--offset", "end") == ""
    out = json.loads(ok(c, "produce", "cli-records", "--partition", 1, "--json", stdin="a\nb\n"))
    assert [o["partition"] for o in out["offsets"]] == [1, 1]
    first = out["offsets"][0]["offset"]
    assert ok(c, "consume", "cli-records", "-p", 1, "-o", first).splitlines() == ["a", "b"]

    # --follow keeps reading what arrives later.
    end = json.loads(ok(c, "topic", "describe", "cli-records", "--json"))["partitions"][0]["high_watermark"]
    follower = subprocess.Popen([BIN, "consume", "cli-records", "-p", "0", "-o", str(end), "-f", "--server",
                                 c.http_addr(1)], stdout=subprocess.PIPE, text=True)
    try:
        ok(c, "produce", "cli-records", "-p", 0, stdin="late 1\nlate 2\n")
        got = []
        reader = threading.Thread(target=lambda: got.extend(follower.stdout.readline().strip() for _ in range(2)),
                                  daemon=True)
        reader.start()
        reader.join(15)
        assert got == ["late 1", "late 2"]
    finally:
        follower.kill()
        follower.wait()

    assert "does not exist" in fails(c, "produce", "no-such-topic", stdin="x\n")
    assert "does not exist" in fails(c, "consume", "no-such-topic")
    assert "out of range" in fails(c, "consume", "cli-records", "-p", 9)
    assert "out of range" in fails(c, "produce", "cli-records", "-p", 9, stdin="x\n")
    assert "--offset" in fails(c, "consume", "cli-records", "-o", "sometime")


def test_group_verbs(shared_cluster):
    from kafka import KafkaConsumer
    c = shared_cluster
    ok(c, "topic", "create", "cli-grouped", "-p", 2, "-r", 3)
    ok(c, "produce", "cli-grouped", stdin="".join(f"{i}\n" for i in range(10)))
    consumer = KafkaConsumer("cli-grouped", bootstrap_servers=c.bootstrap(), group_id="cli-group",
                             auto_offset_reset="earliest", enable_auto_commit=False)
    try:
        got = 0
        deadline = time.monotonic() + 30
        while got < 10 and time.monotonic() < deadline:
            got += sum(len(m) for m in consumer.poll(timeout_ms=500).values())
        consumer.commit()
        rows = [line.split() for line in ok(c, "group", "list").splitlines()]
        assert rows[0] == ["GROUP", "STATE", "PROTOCOL", "TYPE", "COORDINATOR"]
        assert ["cli-group", "Stable", "consumer"] == rows[[r[0] for r in rows].index("cli-group")][:3]
        out = ok(c, "group", "describe", "cli-group", node=2)
        assert "group cli-group  state Stable  protocol range" in out
        assert "cli-grouped:0,1" in out
        described = json.loads(ok(c, "group", "describe", "cli-group", "--json"))
        assert sum(o["committed"] for o in described["offsets"]) == 10
        assert all(o["lag"] == 0 for o in described["offsets"])
    finally:
        consumer.close()
    assert "HTTP 404" in fails(c, "group", "describe", "no-such-group")


def test_cluster_watch_prints_leader_changes(cluster_factory):
    c = cluster_factory(3)
    ok(c, "topic", "create", "cli-watched", "-p", 1, "-r", 3)

    def leader():
        return json.loads(ok(c, "topic", "describe", "cli-watched", "--json"))["partitions"][0]["leader"]
    victim = wait_for(leader, 15, "a leader")
    watcher = next(n for n in (1, 2, 3) if n != victim)
    watch = subprocess.Popen([BIN, "cluster", "watch", "--server", c.http_addr(watcher)], stdout=subprocess.PIPE,
                             text=True)
    lines = []
    threading.Thread(target=lambda: lines.extend(iter(watch.stdout.readline, "")), daemon=True).start()
    try:
        wait_for(lambda: any(line.startswith("watching node") for line in lines), 10, "the watch to start")
        c.run("kill", victim)
        wait_for(lambda: any(f"node {victim} DOWN" in line for line in lines), 10, lambda: f"node down in {lines}")
        new = wait_for(lambda: next((line for line in lines if "cli-watched/0: leader" in line
                                     and "leader none" not in line and f"leader {victim} " not in line), None),
                       10, lambda: f"a new leader in {lines}")
        assert "(term " in new
    finally:
        watch.kill()
        watch.wait()
    code, _, err = cli(c, "cluster", "watch", node=victim)
    assert code == 1 and "cannot reach" in err
