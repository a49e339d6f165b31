"""A long-lived inbound TCP connection, to prove it survives the first run of site.yml.

    lab-stream server PORT            echo every line back (one thread per connection)
    lab-stream client HOST PORT LOG   connect ONCE, then every 0.5 s send a numbered line and wait up
                                      to 5 s for its echo; log one line per exchange:
                                        <ts> start <local address> <local port>
                                        <ts> ok <seq> <round trip ms>
                                        <ts> timeout <seq>        (the echo did not come back in 5 s)
                                        <ts> error <reason>       (the connection is gone; the client stops)
Only lab addresses are used (the VPN host on the lab network).
"""
import socket
import sys
import threading
import time

INTERVAL_S = 0.5
WAIT_S = 5.0  # generous: the lab machine is shared and loaded; a lockout loses echoes for good
MAX_RUN_S = 3600


def serve(port):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("0.0.0.0", port))
    listener.listen(8)
    while True:
        conn, _peer = listener.accept()
        threading.Thread(target=echo, args=(conn,), daemon=True).start()


def echo(conn):
    with conn:
        while True:
            data = conn.recv(4096)
            if not data:
                return
            conn.sendall(data)


def client(host, port, log_path):
    end = time.time() + MAX_RUN_S
    with open(log_path, "a", encoding="ascii") as log:
        def write(text):
            log.write("%.3f %s\n" % (time.time(), text))
            log.flush()

        try:
            conn = socket.create_connection((host, port), timeout=10)
        except OSError as exc:
            write("error connect %s" % exc)
            return
        local = conn.getsockname()
        write("start %s %s" % (local[0], local[1]))
        conn.settimeout(WAIT_S)
        pending = b""
        seq = 0
        while time.time() < end:
            seq += 1
            sent = time.time()
            try:
                conn.sendall(b"%d\n" % seq)
                # read until this sequence number's echo arrives (late echoes of earlier ones are skipped)
                while True:
                    while b"\n" not in pending:
                        chunk = conn.recv(4096)
                        if not chunk:
                            write("error closed by peer")
                            return
                        pending += chunk
                    line, pending = pending.split(b"\n", 1)
                    if int(line) == seq:
                        break
                write("ok %d %.1f" % (seq, (time.time() - sent) * 1000))
            except socket.timeout:
                write("timeout %d" % seq)
            except OSError as exc:
                write("error %s" % exc)
                return
            time.sleep(max(0.0, INTERVAL_S - (time.time() - sent)))


if __name__ == "__main__":
    if sys.argv[1] == "server":
        serve(int(sys.argv[2]))
    else:
        client(sys.argv[2], int(sys.argv[3]), sys.argv[4])
