"""A Blender-side MCP server speaking the add-on's socket protocol, for end-to-end tests.

Run inside Blender in background mode (real ``bpy``):

    blender -b --factory-startup --python blender/mcp_server.py -- --port 0 --framing json

Arguments after ``--``:
  --port N                     port to listen on (0 = a free port; default 9876)
  --host H                     address to bind (default 127.0.0.1)
  --framing json|length-prefixed
      json:            a request is one JSON object (the pool sends it followed by "\\n");
                       the reply is the JSON text with no delimiter after it.
      length-prefixed: every message, both ways, is a 4-byte big-endian unsigned length
                       followed by that many bytes of UTF-8 JSON.

Once listening it prints exactly one line to stdout, then flushes:

    blender-mcp-server listening on 127.0.0.1:PORT framing=F

Threads: one accept thread, one thread per client reading requests. Commands run ONE AT A TIME
on Blender's main thread (``bpy`` is not thread-safe): a client thread puts a job on a queue
and waits for its reply; the main thread's loop (this script's own loop, because
``bpy.app.timers`` never fire in background mode) executes jobs in order. Client threads encode
and send replies, so a large reply never holds up the main thread.

Replies: {"status": "success", "result": ...} or {"status": "error", "message": "..."}.
SIGTERM (or SIGINT) stops the server cleanly: the listener and every client connection are
closed, then the script returns and Blender quits.
"""

import argparse
import contextlib
import io
import json
import queue
import signal
import socket
import struct
import sys
import threading
import traceback

import bpy

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
LISTEN_BACKLOG = 64


def log(message):
    """Diagnostics go to stderr: stdout carries the listening line (and execute_code output)."""
    sys.stderr.write("blender-mcp-server: %s\n" % message)
    sys.stderr.flush()


# --------------------------------------------------------------------------------------------
# Commands (run on the main thread only)
# --------------------------------------------------------------------------------------------


class CommandError(Exception):
    """A command failure whose message is sent to the client as is."""


def vec(v):
    return [float(c) for c in v]


def find_object(params):
    name = params.get("name")
    if not isinstance(name, str):
        raise CommandError("Missing parameter: name")
    obj = bpy.data.objects.get(name)
    if obj is None:
        raise CommandError("Object not found: %s" % name)
    return obj


def cmd_ping(params):
    return {"pong": True}


def cmd_get_scene_info(params):
    scene = bpy.context.scene
    objects = [
        {"name": obj.name, "type": obj.type, "location": vec(obj.location)}
        for obj in scene.objects
    ]
    return {"name": scene.name, "object_count": len(objects), "objects": objects}


def cmd_get_object_info(params):
    obj = find_object(params)
    return {
        "name": obj.name,
        "type": obj.type,
        "location": vec(obj.location),
        "rotation": vec(obj.rotation_euler),
        "scale": vec(obj.scale),
        "dimensions": vec(obj.dimensions),
    }


PRIMITIVES = {
    "CUBE": "primitive_cube_add",
    "UV_SPHERE": "primitive_uv_sphere_add",
    "ICO_SPHERE": "primitive_ico_sphere_add",
    "CYLINDER": "primitive_cylinder_add",
    "CONE": "primitive_cone_add",
    "TORUS": "primitive_torus_add",
    "PLANE": "primitive_plane_add",
    "MONKEY": "primitive_monkey_add",
}


def cmd_create_primitive(params):
    kind = params.get("type", "CUBE")
    if not isinstance(kind, str) or kind.upper() not in PRIMITIVES:
        raise CommandError(
            "Unknown primitive type: %s (expected one of %s)" % (kind, ", ".join(PRIMITIVES))
        )
    location = params.get("location", (0.0, 0.0, 0.0))
    if (
        not isinstance(location, (list, tuple))
        or len(location) != 3
        or not all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in location)
    ):
        raise CommandError("location must be [x, y, z]")
    name = params.get("name")
    if name is not None and not isinstance(name, str):
        raise CommandError("name must be a string")

    before = set(bpy.data.objects)
    operator = getattr(bpy.ops.mesh, PRIMITIVES[kind.upper()])
    outcome = operator(location=tuple(float(c) for c in location))
    if "FINISHED" not in outcome:
        raise CommandError("%s did not finish: %s" % (PRIMITIVES[kind.upper()], sorted(outcome)))
    created = [obj for obj in bpy.data.objects if obj not in before]
    if len(created) != 1:
        raise CommandError("expected one new object, found %d" % len(created))
    obj = created[0]
    if name:
        obj.name = name  # Blender appends .001 etc. if the name is taken: the reply tells
        if obj.data is not None:
            obj.data.name = name
    return {"name": obj.name, "type": obj.type}


def cmd_delete_object(params):
    obj = find_object(params)
    name = obj.name
    bpy.data.objects.remove(obj, do_unlink=True)
    return {"deleted": name}


def cmd_execute_code(params):
    code = params.get("code")
    if not isinstance(code, str):
        raise CommandError("Missing parameter: code")
    namespace = {"bpy": bpy, "__name__": "__mcp_execute_code__"}
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):
        exec(code, namespace)
    return {"executed": True, "result": captured.getvalue()}


COMMANDS = {
    "ping": cmd_ping,
    "get_scene_info": cmd_get_scene_info,
    "get_object_info": cmd_get_object_info,
    "create_primitive": cmd_create_primitive,
    "delete_object": cmd_delete_object,
    "execute_code": cmd_execute_code,
}


def ends_with_brace(buffer):
    """Whether the last non-whitespace byte of ``buffer`` is ``}``."""
    i = len(buffer) - 1
    while i >= 0 and buffer[i] in b" \t\r\n":
        i -= 1
    return i >= 0 and buffer[i] == ord("}")


class InvalidRequest:
    """A complete message that is not UTF-8 JSON."""

    def __init__(self, reason):
        self.reason = reason


def run_command(request):
    """The reply (a dict) to one decoded request. Never raises (but for KeyboardInterrupt)."""
    if isinstance(request, InvalidRequest):
        return {"status": "error", "message": "Invalid JSON: %s" % request.reason}
    if not isinstance(request, dict):
        return {"status": "error", "message": "Invalid request: expected a JSON object"}
    kind = request.get("type")
    params = request.get("params")
    if params is None:
        params = {}
    if not isinstance(params, dict):
        return {"status": "error", "message": "Invalid request: params must be an object"}
    handler = COMMANDS.get(kind) if isinstance(kind, str) else None
    if handler is None:
        return {"status": "error", "message": "Unknown command type: %s" % (kind,)}
    try:
        return {"status": "success", "result": handler(params)}
    except (Exception, SystemExit) as exc:  # SystemExit: execute_code calling sys.exit()
        if not isinstance(exc, CommandError):
            log("command %s failed: %s" % (kind, "".join(traceback.format_exception_only(type(exc), exc)).strip()))
        return {"status": "error", "message": str(exc)}


# --------------------------------------------------------------------------------------------
# Jobs: handed from client threads to the main thread
# --------------------------------------------------------------------------------------------


class Job:
    """One request waiting for the main thread; the client thread waits on ``done``."""

    __slots__ = ("request", "reply", "done")

    def __init__(self, request):
        self.request = request
        self.reply = None
        self.done = threading.Event()

    def finish(self, reply):
        self.reply = reply
        self.done.set()


class Server:
    def __init__(self, host, port, framing):
        self.framing = framing
        self.jobs = queue.Queue()
        self.stopping = threading.Event()
        self.clients = set()
        self.clients_lock = threading.Lock()
        self.threads = []
        self.main_loop_running = False

        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # Reuse the port at once after a previous server died (its connections in TIME_WAIT).
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((host, port))
        self.listener.listen(LISTEN_BACKLOG)
        # A timeout lets the accept thread notice `stopping` (closing a socket does not wake a
        # blocked accept() on Linux).
        self.listener.settimeout(0.2)
        self.host, self.port = self.listener.getsockname()[:2]

    # -- main thread ------------------------------------------------------------------------

    def serve_forever(self):
        acceptor = threading.Thread(target=self.accept_loop, name="mcp-accept", daemon=True)
        acceptor.start()
        print(
            "blender-mcp-server listening on %s:%d framing=%s" % (self.host, self.port, self.framing),
            flush=True,
        )
        self.main_loop_running = True
        try:
            while not self.stopping.is_set():
                try:
                    job = self.jobs.get(timeout=0.1)
                except queue.Empty:
                    continue
                try:
                    reply = run_command(job.request)
                except BaseException:
                    job.finish({"status": "error", "message": "Server shutting down"})
                    raise
                job.finish(reply)
        finally:
            self.main_loop_running = False
            self.shutdown(acceptor)

    def shutdown(self, acceptor):
        self.stopping.set()
        acceptor.join(timeout=2)
        with contextlib.suppress(OSError):
            self.listener.close()
        with self.clients_lock:
            clients = list(self.clients)
        for conn in clients:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        while True:  # jobs nobody will run: let their threads go
            try:
                self.jobs.get_nowait().finish({"status": "error", "message": "Server shutting down"})
            except queue.Empty:
                break
        for thread in list(self.threads):
            thread.join(timeout=2)
        log("stopped")

    # -- accept thread ----------------------------------------------------------------------

    def accept_loop(self):
        while not self.stopping.is_set():
            try:
                conn, peer = self.listener.accept()
            except socket.timeout:
                continue
            except OSError as exc:
                if not self.stopping.is_set():
                    log("accept failed: %s" % exc)
                return
            conn.settimeout(None)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.clients_lock:
                self.clients.add(conn)
            thread = threading.Thread(
                target=self.client_loop, args=(conn, peer), name="mcp-client-%s:%s" % peer[:2], daemon=True
            )
            self.threads = [t for t in self.threads if t.is_alive()]
            self.threads.append(thread)
            thread.start()

    # -- client threads ---------------------------------------------------------------------

    def client_loop(self, conn, peer):
        try:
            requests = self.read_json(conn) if self.framing == "json" else self.read_length_prefixed(conn)
            for request in requests:
                if self.stopping.is_set():
                    return
                job = Job(request)
                self.jobs.put(job)
                while not job.done.wait(0.2):
                    if self.stopping.is_set() and not self.main_loop_running:
                        return  # queued after the shutdown drained the queue: never runs
                self.send(conn, job.reply)
        except OSError as exc:  # reset by the client, or shut down by us
            if not self.stopping.is_set():
                log("client %s:%s: %s" % (peer[0], peer[1], exc))
        except Exception:
            log("client %s:%s crashed:\n%s" % (peer[0], peer[1], traceback.format_exc()))
        finally:
            with self.clients_lock:
                self.clients.discard(conn)
            with contextlib.suppress(OSError):
                conn.close()

    def send(self, conn, reply):
        try:
            body = json.dumps(reply).encode("utf-8")
        except (TypeError, ValueError) as exc:
            body = json.dumps({"status": "error", "message": "Reply not serialisable: %s" % exc}).encode("utf-8")
        if self.framing == "length-prefixed":
            conn.sendall(struct.pack(">I", len(body)) + body)
        else:
            conn.sendall(body)

    @staticmethod
    def decode(raw):
        """The decoded request, or a ValueError (bad UTF-8 or JSON)."""
        return json.loads(raw.decode("utf-8"))

    def read_json(self, conn):
        """Requests of the bare-JSON framing: one JSON object per line (JSON.stringify never
        emits a raw newline), or a lone object without a trailing newline (the add-on reads
        until its buffer parses). Linear in the request size however it is chunked."""
        buffer = bytearray()
        scanned = 0  # bytes of `buffer` known to hold no newline
        while True:
            chunk = conn.recv(1 << 16)
            if not chunk:
                return  # the client closed its side
            buffer += chunk
            while True:
                newline = buffer.find(b"\n", scanned)
                if newline < 0:
                    scanned = len(buffer)
                    break
                line = bytes(buffer[:newline])
                del buffer[: newline + 1]
                scanned = 0
                if line.strip():
                    yield self.parse_or_error(line)
            if len(buffer) > MAX_MESSAGE_BYTES:
                log("request over %d bytes without a newline: closing" % MAX_MESSAGE_BYTES)
                return
            if ends_with_brace(buffer):  # only then can the buffer be a whole object
                try:
                    request = self.decode(bytes(buffer))
                except ValueError:
                    continue  # incomplete: wait for more bytes
                del buffer[:]
                scanned = 0
                yield request

    def parse_or_error(self, raw):
        try:
            return self.decode(raw)
        except ValueError as exc:
            # A complete message that is not JSON: answer it (one reply per request keeps the
            # connection in step) instead of waiting forever.
            return InvalidRequest(str(exc))

    def read_length_prefixed(self, conn):
        while True:
            header = self.recv_exactly(conn, 4)
            if header is None:
                return
            (length,) = struct.unpack(">I", header)
            if length > MAX_MESSAGE_BYTES:
                log("request of %d bytes refused (limit %d): closing" % (length, MAX_MESSAGE_BYTES))
                return
            body = self.recv_exactly(conn, length)
            if body is None:
                return
            yield self.parse_or_error(body)

    @staticmethod
    def recv_exactly(conn, count):
        """``count`` bytes, or None when the client closed first."""
        parts = []
        remaining = count
        while remaining > 0:
            chunk = conn.recv(min(remaining, 1 << 20))
            if not chunk:
                return None
            parts.append(chunk)
            remaining -= len(chunk)
        return b"".join(parts)


# --------------------------------------------------------------------------------------------


def parse_args():
    argv = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else []
    parser = argparse.ArgumentParser(prog="mcp_server.py", description="Blender MCP test server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9876)
    parser.add_argument("--framing", choices=("json", "length-prefixed"), default="json")
    return parser.parse_args(argv)


def main():
    args = parse_args()
    server = Server(args.host, args.port, args.framing)

    def on_signal(signum, frame):
        log("signal %d: stopping" % signum)
        server.stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server.serve_forever()


if __name__ == "__main__":
    try:
        main()
    except SystemExit:
        raise
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        # Blender ignores a --python script's exception (it quits with status 0): say so.
        sys.exit(1)
