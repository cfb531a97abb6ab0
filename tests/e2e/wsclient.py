"""A small RFC 6455 WebSocket client over a plain socket, for the Parley end-to-end tests.

Standard library only. It is deliberately strict about what the *server* sends (unmasked frames,
a correct Sec-WebSocket-Accept, valid close payloads) and lets the *test* send anything, including
frames a well-behaved client never would (`send_raw_frame`).

Layers, lowest first:
  recv_frame(timeout)    one raw frame exactly as received (control frames included, no side effects
                         apart from remembering a close)
  recv_message(timeout)  a whole data message (fragments reassembled); answers pings with pongs
                         (unless auto_pong=False), raises WsClosed when the server closes
  recv_json(timeout)     the next JSON object, from the buffer of messages set aside by request()/
                         wait_event() first
  request(op, **args)    send a request with a fresh id and return the reply carrying that id,
                         buffering every other message that arrives meanwhile
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import select
import socket
import struct
import time
from collections import deque
from typing import Any, Callable, NamedTuple, Optional

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

# Close "codes" that never appear on the wire (RFC 6455 §7.4.1).
NO_STATUS = 1005   # a close frame without a code
ABNORMAL = 1006    # the TCP connection ended without a close frame

_MISSING = object()


class WsError(Exception):
    """Base class of this module's errors."""


class WsHandshakeError(WsError):
    def __init__(self, status: int, headers: dict, body: bytes, why: str):
        super().__init__(f"WebSocket handshake failed ({why}): HTTP {status} {headers} {body[:300]!r}")
        self.status = status
        self.headers = headers
        self.body = body


class WsProtocolError(WsError):
    """The server sent something RFC 6455 forbids (masked frame, bad length, bad close...)."""


class WsTimeout(WsError, TimeoutError):
    pass


class WsClosed(WsError):
    def __init__(self, code: int, reason: str = ""):
        super().__init__(f"WebSocket closed by the server: code {code} {reason!r}")
        self.code = code
        self.reason = reason


class Frame(NamedTuple):
    fin: bool
    opcode: int
    payload: bytes
    rsv: int = 0


def _mask(payload: bytes, key: bytes) -> bytes:
    n = len(payload)
    if n == 0:
        return b""
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")


def encode_frame(opcode: int, payload: bytes, fin: bool = True, mask: bool = True, rsv: int = 0,
                 mask_key: Optional[bytes] = None) -> bytes:
    b0 = (0x80 if fin else 0) | ((rsv & 0x7) << 4) | (opcode & 0x0F)
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", b0, mbit | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    if not mask:
        return head + payload
    key = mask_key if mask_key is not None else os.urandom(4)
    return head + key + _mask(payload, key)


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class WsClient:
    def __init__(self, sock: socket.socket, leftover: bytes = b"", auto_pong: bool = True):
        self.sock = sock
        self.auto_pong = auto_pong
        self._buf = bytearray(leftover)
        self._frag_opcode: Optional[int] = None
        self._frag_parts: list[bytes] = []
        self._inbox: deque = deque()      # parsed JSON messages set aside for later
        self._next_id = 1
        self.close_code: Optional[int] = None   # set once the server's close (or EOF) is seen
        self.close_reason = ""
        self._close_sent = False
        self.pongs: list[bytes] = []      # payloads of pongs received (answers to our pings)
        self.pings_received = 0           # WebSocket pings the server sent us
        self.frames_sent = 0

    # ----------------------------------------------------------------- connection

    @classmethod
    def connect(cls, port: int, path: str = "/v1/ws", origin: Optional[str] = None,
                host: str = "127.0.0.1", timeout: float = 5.0, headers: Optional[dict] = None,
                auto_pong: bool = True, source: Optional[str] = None) -> "WsClient":
        """`source`: the local address to connect from (e.g. "127.0.0.2"), for per-address limits."""
        sock = socket.create_connection((host, port), timeout=timeout,
                                        source_address=(source, 0) if source else None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: {host}:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
        ]
        if origin is not None:
            lines.append(f"Origin: {origin}")
        for k, v in (headers or {}).items():
            lines.append(f"{k}: {v}")
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())

        deadline = time.monotonic() + timeout
        data = b""
        while b"\r\n\r\n" not in data:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                sock.close()
                raise WsTimeout(f"no handshake response within {timeout}s (got {data[:200]!r})")
            sock.settimeout(remaining)
            try:
                chunk = sock.recv(4096)
            except socket.timeout:
                continue
            if not chunk:
                sock.close()
                raise WsHandshakeError(0, {}, data, "connection closed during the handshake")
            data += chunk
            if len(data) > 65536:
                sock.close()
                raise WsHandshakeError(0, {}, data, "oversized response head")
        head, _, rest = data.partition(b"\r\n\r\n")
        head_lines = head.decode("iso-8859-1").split("\r\n")
        try:
            status = int(head_lines[0].split()[1])
        except (IndexError, ValueError):
            sock.close()
            raise WsHandshakeError(0, {}, data, f"bad status line {head_lines[0]!r}")
        hdrs: dict[str, str] = {}
        for line in head_lines[1:]:
            k, _, v = line.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        if status != 101:
            # Read whatever body comes with the refusal (best effort), for the error message.
            body = rest
            try:
                sock.settimeout(0.5)
                while len(body) < 4096:
                    chunk = sock.recv(4096)
                    if not chunk:
                        break
                    body += chunk
            except OSError:
                pass
            sock.close()
            raise WsHandshakeError(status, hdrs, body, "status is not 101")
        expected = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
        if hdrs.get("sec-websocket-accept") != expected:
            sock.close()
            raise WsHandshakeError(status, hdrs, b"", f"bad Sec-WebSocket-Accept (want {expected})")
        if hdrs.get("upgrade", "").lower() != "websocket":
            sock.close()
            raise WsHandshakeError(status, hdrs, b"", "Upgrade header is not websocket")
        if "upgrade" not in [t.strip().lower() for t in hdrs.get("connection", "").split(",")]:
            sock.close()
            raise WsHandshakeError(status, hdrs, b"", "Connection header lacks upgrade")
        sock.settimeout(None)
        return cls(sock, rest, auto_pong=auto_pong)

    @property
    def closed(self) -> bool:
        return self.close_code is not None

    def close(self, code: int = 1000, timeout: float = 1.0) -> None:
        """Close politely (send a close frame, wait briefly for the server's) and drop the socket."""
        try:
            if self.close_code is None and not self._close_sent:
                self.send_close(code)
                deadline = time.monotonic() + timeout
                while self.close_code is None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    try:
                        self.recv_frame(remaining)
                    except (WsError, OSError):
                        break
        except OSError:
            pass
        finally:
            self.abort()

    def abort(self) -> None:
        """Drop the TCP connection without a closing handshake."""
        try:
            self.sock.close()
        except OSError:
            pass

    # ----------------------------------------------------------------- sending

    def send_raw_frame(self, opcode: int, payload: bytes | str = b"", fin: bool = True,
                       mask: bool = True, rsv: int = 0) -> None:
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        self.sock.sendall(encode_frame(opcode, payload, fin=fin, mask=mask, rsv=rsv))
        self.frames_sent += 1
        if opcode == OP_CLOSE:
            self._close_sent = True

    send_frame = send_raw_frame

    def send_text(self, text: str | bytes) -> None:
        self.send_raw_frame(OP_TEXT, text)

    def send_json(self, obj: Any) -> None:
        self.send_raw_frame(OP_TEXT, _dumps(obj))

    def send_binary(self, data: bytes) -> None:
        self.send_raw_frame(OP_BINARY, data)

    def send_ping(self, payload: bytes = b"") -> None:
        self.send_raw_frame(OP_PING, payload)

    def send_close(self, code: Optional[int] = 1000, reason: str = "") -> None:
        payload = b"" if code is None else struct.pack("!H", code) + reason.encode()
        self.send_raw_frame(OP_CLOSE, payload)

    def new_id(self) -> int:
        i = self._next_id
        self._next_id += 1
        return i

    def send_request(self, op: str, **args: Any) -> int:
        """Send `{"op": op, "id": <fresh>, **args}` and return the id (does not wait)."""
        rid = self.new_id()
        msg = {"op": op, "id": rid}
        msg.update(args)
        self.send_json(msg)
        return rid

    # ----------------------------------------------------------------- receiving

    def _fill(self, deadline: Optional[float]) -> None:
        """Read at least one more chunk into the buffer, or raise WsTimeout / WsClosed(1006)."""
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        r, _, _ = select.select([self.sock], [], [], timeout)
        if not r:
            raise WsTimeout("timed out waiting for data from the server")
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
            chunk = b""
        except socket.timeout:
            raise WsTimeout("timed out waiting for data from the server")
        if not chunk:
            if self.close_code is None:
                self.close_code = ABNORMAL
                self.close_reason = "TCP connection closed without a close frame"
            raise WsClosed(self.close_code, self.close_reason)
        self._buf.extend(chunk)

    def _parse_frame(self) -> Optional[Frame]:
        buf = self._buf
        if len(buf) < 2:
            return None
        b0, b1 = buf[0], buf[1]
        if b1 & 0x80:
            raise WsProtocolError("the server sent a masked frame")
        n = b1 & 0x7F
        pos = 2
        if n == 126:
            if len(buf) < 4:
                return None
            n = struct.unpack_from("!H", buf, 2)[0]
            pos = 4
        elif n == 127:
            if len(buf) < 10:
                return None
            n = struct.unpack_from("!Q", buf, 2)[0]
            pos = 10
        if len(buf) < pos + n:
            return None
        payload = bytes(buf[pos:pos + n])
        del buf[:pos + n]
        return Frame(bool(b0 & 0x80), b0 & 0x0F, payload, (b0 >> 4) & 0x7)

    def recv_frame(self, timeout: Optional[float] = 5.0) -> Frame:
        """Return the next raw frame. A close frame is recorded (close_code) and returned."""
        if self.close_code is not None and not self._buf:
            raise WsClosed(self.close_code, self.close_reason)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            frame = self._parse_frame()
            if frame is not None:
                break
            self._fill(deadline)
        if frame.opcode == OP_CLOSE:
            p = frame.payload
            if len(p) == 0:
                code, reason = NO_STATUS, ""
            elif len(p) == 1:
                raise WsProtocolError("close frame with a 1-byte payload")
            else:
                code = struct.unpack("!H", p[:2])[0]
                reason = p[2:].decode("utf-8", "replace")
            if self.close_code is None:
                self.close_code, self.close_reason = code, reason
        return frame

    def recv_message(self, timeout: Optional[float] = 5.0) -> tuple[int, bytes]:
        """Return (opcode, payload) of the next whole data message.

        Pings are answered (auto_pong), pongs recorded; the server's close is answered with a
        close echoing its code and raised as WsClosed.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            f = self.recv_frame(remaining)
            if f.opcode == OP_CLOSE:
                if not self._close_sent:
                    code = self.close_code
                    try:
                        self.send_close(None if code in (NO_STATUS, ABNORMAL) else code)
                    except OSError:
                        pass
                self.abort()
                raise WsClosed(self.close_code, self.close_reason)
            if f.opcode == OP_PING:
                self.pings_received += 1
                if self.auto_pong and not self._close_sent:
                    try:
                        self.send_raw_frame(OP_PONG, f.payload)
                    except OSError:
                        pass
                continue
            if f.opcode == OP_PONG:
                self.pongs.append(f.payload)
                continue
            if f.opcode in (OP_TEXT, OP_BINARY):
                if self._frag_opcode is not None:
                    raise WsProtocolError("new data frame inside a fragmented message")
                if f.fin:
                    return f.opcode, f.payload
                self._frag_opcode, self._frag_parts = f.opcode, [f.payload]
                continue
            if f.opcode == OP_CONT:
                if self._frag_opcode is None:
                    raise WsProtocolError("continuation frame without a message to continue")
                self._frag_parts.append(f.payload)
                if f.fin:
                    op, data = self._frag_opcode, b"".join(self._frag_parts)
                    self._frag_opcode, self._frag_parts = None, []
                    return op, data
                continue
            raise WsProtocolError(f"unknown opcode {f.opcode:#x} from the server")

    def _recv_new_json(self, timeout: Optional[float]) -> Any:
        op, data = self.recv_message(timeout)
        if op != OP_TEXT:
            raise WsProtocolError(f"the server sent a non-text data message: {data[:100]!r}")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise WsProtocolError(f"the server sent invalid UTF-8: {data[:100]!r}") from e
        try:
            obj = json.loads(text)
        except ValueError as e:
            raise WsProtocolError(f"the server sent invalid JSON: {text[:200]!r}") from e
        if not isinstance(obj, dict):
            raise WsProtocolError(f"the server sent a JSON value that is not an object: {text[:200]!r}")
        return obj

    def recv_json(self, timeout: Optional[float] = 5.0) -> dict:
        """The next JSON object: the oldest set-aside one, else a new one from the socket."""
        if self._inbox:
            return self._inbox.popleft()
        return self._recv_new_json(timeout)

    def _take(self, pred: Callable[[dict], bool], timeout: Optional[float], what: str) -> dict:
        for i, m in enumerate(self._inbox):
            if pred(m):
                del self._inbox[i]
                return m
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                m = self._recv_new_json(remaining)
            except WsTimeout:
                raise WsTimeout(f"timed out after {timeout}s waiting for {what}; set aside meanwhile: "
                                f"{list(self._inbox)[-10:]}") from None
            if pred(m):
                return m
            self._inbox.append(m)
            if deadline is not None and time.monotonic() > deadline + 1.0:
                raise WsTimeout(f"timed out after {timeout}s waiting for {what} (messages keep "
                                f"arriving); last set aside: {list(self._inbox)[-10:]}")

    def wait_reply(self, rid: Any, timeout: Optional[float] = 5.0) -> dict:
        """The reply whose `re` equals rid (other messages are set aside)."""
        return self._take(lambda m: "re" in m and m["re"] == rid, timeout, f"the reply re={rid!r}")

    def request(self, op: str, _timeout: Optional[float] = 5.0, **args: Any) -> dict:
        """Send a request with a fresh id and return its whole reply ({"re", "ok"|"err"})."""
        rid = self.send_request(op, **args)
        return self.wait_reply(rid, _timeout)

    def request_raw(self, obj: dict, timeout: Optional[float] = 5.0) -> dict:
        """Send obj as is (it must carry an `id`) and return the reply with that id."""
        self.send_json(obj)
        return self.wait_reply(obj["id"], timeout)

    def request_retrying(self, op: str, _timeout: Optional[float] = 5.0, **args: Any) -> dict:
        """request(), sent again after retry_ms while the answer is `rate_limited` (which the
        protocol says did nothing)."""
        deadline = time.monotonic() + (_timeout or 5.0)
        while True:
            r = self.request(op, _timeout=_timeout, **args)
            e = r.get("err")
            if not (isinstance(e, dict) and e.get("code") == "rate_limited"):
                return r
            retry_ms = e.get("retry_ms")
            assert isinstance(retry_ms, int) and retry_ms >= 0, f"rate_limited without retry_ms: {r!r}"
            if time.monotonic() + retry_ms / 1000.0 > deadline:
                return r
            time.sleep(retry_ms / 1000.0)

    def ok(self, op: str, _timeout: Optional[float] = 5.0, **args: Any) -> dict:
        """request() that asserts success and returns the `ok` result (retried while rate_limited)."""
        r = self.request_retrying(op, _timeout=_timeout, **args)
        assert "ok" in r and "err" not in r, f"{op} {args!r} failed: {r!r}"
        assert isinstance(r["ok"], dict), f"{op}: ok is not an object: {r!r}"
        return r["ok"]

    def err(self, op: str, _timeout: Optional[float] = 5.0, **args: Any) -> dict:
        """request() that asserts failure and returns the `err` object (retried while rate_limited)."""
        r = self.request_retrying(op, _timeout=_timeout, **args)
        assert "err" in r and "ok" not in r, f"{op} {args!r} should have failed: {r!r}"
        assert isinstance(r["err"], dict) and isinstance(r["err"].get("code"), str), r
        assert isinstance(r["err"].get("message"), str), f"err without a message: {r!r}"
        return r["err"]

    def wait_event(self, name: str, timeout: Optional[float] = 5.0,
                   predicate: Optional[Callable[[dict], bool]] = None) -> dict:
        """The first set-aside or new event `ev == name` satisfying predicate."""
        return self._take(lambda m: m.get("ev") == name and (predicate is None or predicate(m)),
                          timeout, f"event {name!r}")

    def wait_for(self, pred: Callable[[dict], bool], timeout: Optional[float] = 5.0,
                 what: str = "a matching message") -> dict:
        return self._take(pred, timeout, what)

    def pending(self) -> list:
        """The messages set aside so far (not removed)."""
        return list(self._inbox)

    def take_pending(self, pred: Optional[Callable[[dict], bool]] = None) -> list:
        """Remove and return the set-aside messages (matching pred)."""
        out, keep = [], deque()
        for m in self._inbox:
            (out if pred is None or pred(m) else keep).append(m)
        self._inbox = keep
        return out

    def drain(self, quiet: float = 0.2) -> list:
        """Read until nothing arrives for `quiet` seconds; everything ends up set aside."""
        while True:
            try:
                self._inbox.append(self._recv_new_json(quiet))
            except WsTimeout:
                return list(self._inbox)

    def roundtrip(self, timeout: float = 5.0) -> list:
        """Send a ping request and wait for its reply: everything the server queued on this
        connection before handling the ping is then set aside. Returns the set-aside messages."""
        r = self.request_retrying("ping", _timeout=timeout)
        assert "ok" in r, f"ping failed: {r!r}"
        return list(self._inbox)

    def expect_close(self, timeout: float = 5.0) -> int:
        """Wait for the server to close the connection; return its close code (1006 if the TCP
        connection ended without a close frame). Data messages that arrive first are set aside."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"the server did not close the connection within {timeout}s; "
                                     f"received meanwhile: {list(self._inbox)[-10:]}")
            try:
                op, data = self.recv_message(remaining)
            except WsClosed as e:
                return e.code
            except WsTimeout:
                continue
            except OSError:
                if self.close_code is None:
                    self.close_code = ABNORMAL
                return self.close_code
            if op == OP_TEXT:
                try:
                    self._inbox.append(json.loads(data.decode("utf-8")))
                except (ValueError, UnicodeDecodeError):
                    self._inbox.append({"_raw": data})
            else:
                self._inbox.append({"_binary": data})
