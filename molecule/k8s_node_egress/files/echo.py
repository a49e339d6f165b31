"""A pod's TCP echo service (lab): answers 'POD <peer address>' on the given port, then closes."""
import socketserver
import sys


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.sendall(("POD %s\n" % self.client_address[0]).encode())


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


Server(("0.0.0.0", int(sys.argv[1])), Handler).serve_forever()
