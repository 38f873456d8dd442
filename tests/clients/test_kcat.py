"""Debian's kcat (librdkafka 2.0.2): the older handshake path, compressed produce."""
import shutil
import subprocess

import pytest

pytestmark = pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat is installed by scripts/setup-deps")


@pytest.mark.parametrize("codec", ["none", "snappy", "gzip", "lz4", "zstd"])
def test_kcat_produce_and_consume(broker, codec):
    topic = f"kcat-{codec}"
    lines = "\n".join(f"line-{i}" for i in range(100)) + "\n"
    subprocess.run(["kcat", "-P", "-b", broker.bootstrap, "-t", topic, "-z", codec, "-X", "acks=all"],
                   input=lines, text=True, check=True, timeout=60)
    out = subprocess.run(["kcat", "-C", "-b", broker.bootstrap, "-t", topic, "-o", "beginning", "-e", "-q"],
                         capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.splitlines() == [f"line-{i}" for i in range(100)]
