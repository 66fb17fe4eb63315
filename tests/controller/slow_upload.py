"""slow_upload.py — HTTP clients that announce a large body and stop sending
it, to drive the controller's lingering close (services/controller/
http_linger.c) where curl cannot: curl always sends its whole body.

  slow_upload.py PORT N [--hold]
    opens N connections, each a PUT announcing 100 MB that sends 1000 bytes
    of it and then nothing. Prints one line
      answers=<413 answers> open=<connections still open 0.2 s later>
    then, with --hold, "ready" and it waits for the controller to close each
    connection; otherwise it closes them itself. Prints "all closed" when the
    controller closed every connection within 10 s (else "still open: K"),
    and exits 0 when every connection got its 413 and was closed.
"""
import socket
import sys
import time

HEAD = b"PUT /api/members HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n"


def status_line(sock, limit):
    """The response's status line, or '' when none came within limit s."""
    sock.settimeout(limit)
    data = b""
    try:
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    return data.split(b"\r\n", 1)[0].decode("latin-1")


def closed_by_peer(sock):
    """True when the peer closed (EOF or reset), False while it is open."""
    sock.setblocking(False)
    try:
        while True:
            if not sock.recv(65536):
                return True
    except BlockingIOError:
        return False
    except OSError:
        return True


def main():
    port, count = int(sys.argv[1]), int(sys.argv[2])
    hold = "--hold" in sys.argv[3:]
    conns = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(HEAD + b"x" * 1000)
        conns.append(sock)
    answers = sum(status_line(s, 5).startswith("HTTP/1.1 413 ") for s in conns)
    time.sleep(0.2)
    still_open = sum(not closed_by_peer(s) for s in conns)
    print(f"answers={answers} open={still_open}", flush=True)
    if hold:
        print("ready", flush=True)
    else:
        for s in conns:
            s.close()
        return 0 if answers == count else 1
    deadline = time.monotonic() + 10
    pending = list(conns)
    while pending and time.monotonic() < deadline:
        pending = [s for s in pending if not closed_by_peer(s)]
        time.sleep(0.02)
    print("all closed" if not pending else f"still open: {len(pending)}", flush=True)
    return 0 if answers == count and not pending else 1


if __name__ == "__main__":
    sys.exit(main())
