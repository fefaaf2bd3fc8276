"""What the benchmark scripts share: free ports and waiting for a server to listen.

Imported as `benchlib` by the scripts beside it (`python3 scripts/bench_*.py` puts this
directory first on `sys.path`).
"""

import socket
import time


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, timeout=30):
    """Waits until something accepts connections on 127.0.0.1:`port`; exits when nothing does."""
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"port {port} never opened")
