"""The event publishes' work on the loop, done in fewer syscalls and objects than paho's.

Issue 12's profile of the loop thread (64 kiosk clients) had paho's handling of the QoS 1
event publishes at about a quarter of the loop: each PUBACK read with three ``recv`` calls
(command byte, length byte, body), decoded into ``ReasonCode`` and ``Properties`` objects
and reported through locks; after each, paho walks every message it holds for a queued
one to send; each packet written with its own ``send``, after a ``call_soon_threadsafe``
(a write to the loop's self-pipe) and an ``epoll_ctl`` pair to wait for writability it
nearly always had; each message built with a ``threading.Condition`` of its own.
:class:`FastLink` keeps paho's state (its message table, in-flight count and window, its
queue of packets, its packet reader) and does these steps in fewer:

* **Reading**: one ``recv`` of up to :data:`RECV_SIZE` bytes per wake-up (plus what TLS
  already decrypted) into a buffer that paho's ``_sock_recv`` then serves from, so paho
  parses everything it parses today (CONNACK, SUBACK, PINGRESP, incoming PUBLISH, …) from
  memory. A complete short PUBACK (``40 02 mid``, or MQTT 5's ``40 03 mid rc`` and
  ``40 04 mid rc 00``) for a message of :meth:`PipelinedClient.publish_nowait` at the head
  of the buffer, with paho between packets, is settled here as paho's handler would: paho
  forgets the message, its in-flight count drops, the oldest queued message is sent, and
  ``on_acked(mid)`` is called. Like paho's and aiomqtt's own handling, the reason code
  does not change that: a PUBACK with a failure code (MQTT 5, >= 0x80) acknowledges the
  message too. Anything else, including a PUBACK of aiomqtt's awaited publishes, one cut
  between reads, or one with properties, goes to paho. With DEBUG logging on, every PUBACK
  goes to paho (which logs each).
* **Queued messages**: beyond paho's window (20 in flight) messages wait in paho's table
  as "queued"; this module keeps them, aiomqtt's awaited publishes included, in a queue
  in publish order, so a PUBACK sends the next one without paho's walk over the table; in
  the same order as paho would.
* **Publishing**: ``publish_nowait``'s QoS 1 message gets the message id, the message
  object, the state in paho's table and the in-flight count paho's ``publish`` gives it;
  the message's info object (which paho gives a ``Condition`` so a caller can wait on it)
  shares one ``Condition``, as ``publish_nowait`` hands out only the message id; the
  PUBLISH packet is built here. paho publishes it when anything is unusual.
* **Writing**: the register-write callback of a packet queued on the loop thread schedules
  one flush at the end of the loop's pass (``call_soon``), or at the end of the reader
  callback that queued it, which writes every queued packet with one ``send``. Only when
  the socket takes less is the writer registered with the loop, as aiomqtt does. A queue
  holding a packet whose completion paho acts on (a QoS 0 PUBLISH: ``on_publish``;
  DISCONNECT: the close) goes through paho's own ``_packet_write``. Packets queued from
  another thread (paho's connect, in aiomqtt's executor) take aiomqtt's path unchanged.

This reaches paho-mqtt 2.2's internals (``_packet_read``, ``_sock_recv``, ``_in_packet``,
``_out_packet``, ``_out_messages``, the message classes' slots, …): pyproject.toml pins
paho to that minor version, :func:`check_paho` (run when ``hallctl.mqtt.pipeline`` is
imported) refuses to start with one that lacks them, naming its version, and
``tests/mqtt/test_mqtt_fastpath.py`` runs it against a real Mosquitto (MQTT 5 and 3.1.1,
TLS, many PUBACKs per read, PUBACKs cut anywhere, a command between PUBACKs, failure
reason codes, packets larger than the socket takes, awaited publishes among queued events).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt import __version__ as paho_version
from paho.mqtt.enums import LogLevel, MessageState, MessageType, MQTTErrorCode, MQTTProtocolVersion

from hallctl.errors import MqttClientIncompatible

RECV_SIZE = 65536  # one read takes a window's worth of PUBACKs, and most incoming messages whole
TLS_READS = 16  # further reads of what TLS already decrypted (SSLSocket.pending) per wake-up

PUBACK = 0x40
QUEUED = MessageState.MQTT_MS_QUEUED
WAIT_FOR_PUBACK = MessageState.MQTT_MS_WAIT_FOR_PUBACK
_QOS0_PUBLISH_OR_DISCONNECT = (MessageType.PUBLISH, MessageType.DISCONNECT)

# What of paho this module uses; checked once (check_paho) so a paho without it fails at start.
_PAHO_METHODS = (
    "_packet_read",
    "_sock_recv",
    "_sock_send",
    "_update_inflight",
    "_loop_rc_handle",
    "_call_socket_register_write",
    "_call_socket_unregister_write",
    "_packet_write",
    "_easy_log",
    "_packet_queue",
    "_send_publish",
    "_mid_generate",
)
_PAHO_ATTRIBUTES = (
    "_sock",
    "_in_packet",
    "_out_packet",
    "_out_messages",
    "_out_message_mutex",
    "_inflight_messages",
    "_max_inflight_messages",
    "_msgtime_mutex",
    "_last_bytes_received",
    "_last_msg_out",
    "_protocol",
    "_logger",
    "_registered_write",
    "_max_queued_messages",
)
# publish builds paho's message objects itself (without a Condition per message): their fields must be these.
_MESSAGE_SLOTS = {"_topic", "dup", "info", "mid", "payload", "properties", "qos", "retain", "state", "timestamp"}
_INFO_SLOTS = {"_condition", "_iterpos", "_published", "mid", "rc"}


def check_paho(client: paho.Client) -> None:
    """Refuse a paho-mqtt whose internals this module does not know, naming its version."""
    missing = [n for n in _PAHO_METHODS if not callable(getattr(type(client), n, None))]
    missing += [n for n in _PAHO_ATTRIBUTES if not hasattr(client, n)]
    in_packet = getattr(client, "_in_packet", None)
    if not isinstance(in_packet, dict) or "command" not in in_packet:
        missing.append("_in_packet['command']")
    if set(getattr(paho.MQTTMessage, "__slots__", ())) != _MESSAGE_SLOTS:
        missing.append("MQTTMessage.__slots__")
    if set(getattr(paho.MQTTMessageInfo, "__slots__", ())) != _INFO_SLOTS:
        missing.append("MQTTMessageInfo.__slots__")
    if missing:
        lacks = ", ".join(missing)
        raise MqttClientIncompatible(
            "mqtt_client_incompatible",
            f"已安装的 paho-mqtt {paho_version} 缺少 hallctl.mqtt.fastpath 所用的内部接口（{lacks}）；"
            "请安装 pyproject.toml 指定的版本",
            f"paho-mqtt {paho_version} lacks what hallctl.mqtt.fastpath uses ({lacks}); "
            "install the version pyproject.toml pins",
        )


class FastLink:
    """The reader, PUBACK settling, queue, publish and writer of one paho client (module docstring)."""

    def __init__(
        self,
        client: paho.Client,
        loop: asyncio.AbstractEventLoop,
        settle: Callable[[int], bool],
        fail: Callable[[BaseException], None],
    ) -> None:
        check_paho(client)
        self._paho = client
        self._loop = loop
        self._settle_cb = settle  # True when the mid is publish_nowait's (then it reports on_acked itself)
        self._fail = fail
        self._buf = bytearray()
        self._pos = 0
        self._flush_due = False
        self._reading = False
        self._writer_fd = -1
        self._v5 = client._protocol == MQTTProtocolVersion.MQTTv5
        # paho's queued QoS > 0 messages (beyond its in-flight window) in publish order, so a
        # PUBACK sends the next without paho's walk over every message it holds
        self._queued: collections.deque[paho.MQTTMessage] = collections.deque()
        # one for all of publish's message infos: publish_nowait hands out only the message id,
        # so nothing ever waits on it (paho makes a Condition per message)
        self._condition = threading.Condition()
        paho_publish = client.publish

        def publish(topic: str, payload: Any = None, qos: int = 0, retain: bool = False, properties: Any = None) -> Any:
            # aiomqtt's awaited publishes: a queued one keeps its place among the queued
            info = paho_publish(topic, payload, qos, retain, properties)
            msg = client._out_messages.get(info.mid) if qos > 0 else None
            if msg is not None and msg.info is info and msg.state == QUEUED:
                self._queued.append(msg)
            return info

        setattr(client, "publish", publish)  # noqa: B010 -- an instance's method, on purpose

    # ---- reading ---------------------------------------------------------------------------

    def attach(self) -> None:
        """A new socket: nothing of an old one stays buffered."""
        self._buf = bytearray()
        self._pos = 0

    def take_reader(self, fd: int) -> bool:
        """Become the loop's reader of ``fd`` (replacing aiomqtt's) if it is still paho's socket."""
        client = self._paho
        sock = client._sock
        if sock is None or sock.fileno() != fd:
            return False  # closed before the loop got here
        # paho reads through _sock_recv: from now on it reads what on_readable buffered (it may
        # be inside a packet aiomqtt's reader began: its own state carries on from there)
        setattr(client, "_sock_recv", self._sock_recv)  # noqa: B010 -- an instance's method, on purpose
        self._loop.add_reader(fd, self.on_readable)
        return True

    def _sock_recv(self, bufsize: int) -> bytes:
        """paho's ``_sock_recv``, served from the buffer; "would block" when it is empty."""
        start = self._pos
        end = min(len(self._buf), start + bufsize)
        if end == start:
            raise BlockingIOError()
        self._pos = end
        return bytes(self._buf[start:end])

    def on_readable(self) -> None:
        """The loop's reader callback, in place of aiomqtt's (which calls paho's ``loop_read``).

        What the PUBACKs let paho send (its queued messages) is written at the end, in one
        ``send``, not in a later pass of the loop.
        """
        self._reading = True
        try:
            self._read()
        except Exception as exc:  # noqa: BLE001 -- as aiomqtt's callback: any failure here ends the link
            self._fail(exc)
        finally:
            self._reading = False
        if self._flush_due:
            self._flush()

    def _read(self) -> None:
        client = self._paho
        sock = client._sock
        if sock is None:
            return
        if self._pos:
            del self._buf[: self._pos]
            self._pos = 0
        rc = self._fill(sock)
        if rc:
            client._loop_rc_handle(rc)
            return
        buf = self._buf
        fast = not self._debug()
        while self._pos < len(buf):
            if fast and client._in_packet["command"] == 0:
                rc = self._pubacks()
                if rc:
                    client._loop_rc_handle(rc)
                    return
                if self._pos >= len(buf):
                    break
            # paho takes the next packet (or as much of it as is here) from the buffer
            rc = client._packet_read()
            if rc == MQTTErrorCode.MQTT_ERR_AGAIN:
                if self._pos >= len(buf):
                    break
                continue  # paho paused a long packet; it goes on from its own state
            if rc:
                client._loop_rc_handle(rc)
                return
            if client._sock is None:  # paho closed it (a broker's DISCONNECT)
                return

    def _fill(self, sock: Any) -> MQTTErrorCode:
        """One ``recv`` (and what TLS holds decrypted) into the buffer; paho's codes for a lost link."""
        client = self._paho
        buf = self._buf
        for _ in range(1 + TLS_READS):
            try:
                data = sock.recv(RECV_SIZE)
            except (BlockingIOError, ssl.SSLWantReadError):
                break
            except ssl.SSLWantWriteError:
                client._call_socket_register_write()
                break
            except OSError as err:
                client._easy_log(LogLevel.MQTT_LOG_ERR, "failed to receive on socket: %s", err)
                return MQTTErrorCode.MQTT_ERR_CONN_LOST
            if not data:
                return MQTTErrorCode.MQTT_ERR_CONN_LOST
            buf += data
            if not isinstance(sock, ssl.SSLSocket) or sock.pending() <= 0:
                break
        with client._msgtime_mutex:
            client._last_bytes_received = time.monotonic()
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _debug(self) -> bool:
        """paho logs each PUBACK at DEBUG: with that on, they all go through paho and are logged as today."""
        logger = self._paho._logger
        return logger is not None and logger.isEnabledFor(logging.DEBUG)

    def _pubacks(self) -> MQTTErrorCode:
        """Settle the complete short PUBACKs of ``publish_nowait``'s messages at the buffer's head."""
        buf = self._buf
        pos = self._pos
        end = len(buf)
        client = self._paho
        v5 = self._v5
        rc = MQTTErrorCode.MQTT_ERR_SUCCESS
        if end - pos < 4 or buf[pos] != PUBACK:
            return rc
        out_messages = client._out_messages
        with client._out_message_mutex:  # paho holds it while it handles a PUBACK: once for all here
            while pos + 4 <= end and buf[pos] == PUBACK:
                length = buf[pos + 1]
                if pos + 2 + length > end:
                    break  # not all here yet: paho takes what is and waits for the rest
                if length != 2 and not (v5 and (length == 3 or (length == 4 and buf[pos + 5] == 0))):
                    break  # 3.1.1's PUBACK is 2 long; a v5 one with properties goes to paho
                mid = (buf[pos + 2] << 8) | buf[pos + 3]
                msg = out_messages.get(mid)
                if msg is None:
                    pos += 2 + length  # paho ignores a PUBACK for a message it does not hold; so do we
                    continue
                if not self._settle_cb(mid):
                    break  # aiomqtt's own awaited publish: paho reports it to aiomqtt
                # paho's _do_on_publish, but for msg.info._set_as_published(): publish_nowait
                # returns the message id only, so nothing can wait on that object
                del out_messages[mid]
                pos += 2 + length
                if msg.qos > 0:
                    client._inflight_messages -= 1
                    # paho walks its messages for a queued one after every PUBACK; there is one
                    # only when it holds more messages than are in flight
                    if client._max_inflight_messages > 0 and len(out_messages) > client._inflight_messages:
                        rc = self._send_queued()
                        if rc:
                            break
        self._pos = pos
        return rc

    def _send_queued(self) -> MQTTErrorCode:
        """paho's ``_update_inflight`` (send the oldest queued while the window has room), from the queue."""
        client = self._paho
        queued = self._queued
        out_messages = client._out_messages
        while queued and client._inflight_messages < client._max_inflight_messages:
            msg = queued.popleft()
            if msg.state != QUEUED or out_messages.get(msg.mid) is not msg:
                continue  # paho sent it already (its own _update_inflight) or forgot it
            client._inflight_messages += 1
            if msg.qos == 1 and msg.properties is None:
                msg.state = WAIT_FOR_PUBACK
                rc = self._queue_packet(msg, None)
            else:
                msg.state = WAIT_FOR_PUBACK if msg.qos == 1 else MessageState.MQTT_MS_WAIT_FOR_PUBREC
                rc = client._send_publish(
                    msg.mid, msg._topic, msg.payload, msg.qos, msg.retain, msg.dup, properties=msg.properties
                )
            if rc:
                return rc
        if client._inflight_messages < client._max_inflight_messages and len(out_messages) > client._inflight_messages:
            return client._update_inflight()  # a queued message not known here: paho finds it
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    # ---- publishing ------------------------------------------------------------------------

    def publish(self, topic: str, payload: str | bytes, retain: bool) -> paho.MQTTMessageInfo | None:
        """paho's ``publish`` of one QoS 1 message without properties, in fewer steps; None: let paho do it.

        The same checks, message id, message object and state in paho's table, in-flight
        count and queue; the packet is built here. paho publishes it itself when anything is
        unusual (no socket, DEBUG logging on, a queue limit, a topic paho would refuse).
        """
        client = self._paho
        if client._sock is None or client._max_queued_messages or self._debug():
            return None
        t = topic.encode("utf-8")
        if not t or b"+" in t or b"#" in t or len(t) > 65535:
            return None
        p = payload.encode("utf-8") if isinstance(payload, str) else payload
        if len(p) > 268435455:
            return None
        mid = client._mid_generate()
        info = paho.MQTTMessageInfo.__new__(paho.MQTTMessageInfo)
        info.mid = mid
        info._published = False
        info._condition = self._condition
        info.rc = MQTTErrorCode.MQTT_ERR_SUCCESS
        info._iterpos = 0
        msg = paho.MQTTMessage.__new__(paho.MQTTMessage)
        msg.timestamp = time.monotonic()
        msg.state = QUEUED
        msg.dup = False
        msg.mid = mid
        msg._topic = t
        msg.payload = p
        msg.qos = 1
        msg.retain = retain
        msg.info = info
        msg.properties = None
        with client._out_message_mutex:
            if mid in client._out_messages:
                info.rc = MQTTErrorCode.MQTT_ERR_QUEUE_SIZE
                return info
            client._out_messages[mid] = msg
            if client._max_inflight_messages == 0 or client._inflight_messages < client._max_inflight_messages:
                client._inflight_messages += 1
                msg.state = WAIT_FOR_PUBACK
                info.rc = self._queue_packet(msg, info)
            else:
                self._queued.append(msg)
        return info

    def _queue_packet(self, msg: paho.MQTTMessage, info: paho.MQTTMessageInfo | None) -> MQTTErrorCode:
        """paho's ``_send_publish`` for QoS 1 without properties: the PUBLISH packet, queued for the writer."""
        t = msg._topic
        payload = msg.payload
        remaining = 4 + len(t) + len(payload) + (1 if self._v5 else 0)
        length = bytearray()
        while True:
            byte = remaining % 128
            remaining //= 128
            length.append(byte | 0x80 if remaining else byte)
            if not remaining:
                break
        packet = b"".join(
            (
                bytes((0x32 | (0x08 if msg.dup else 0) | (1 if msg.retain else 0),)),
                length,
                len(t).to_bytes(2, "big"),
                t,
                msg.mid.to_bytes(2, "big"),
                b"\x00" if self._v5 else b"",  # MQTT 5: no properties
                payload,
            )
        )
        return self._paho._packet_queue(MessageType.PUBLISH, packet, msg.mid, 1, info)

    # ---- writing ---------------------------------------------------------------------------

    def on_register_write(self) -> None:
        """paho has a packet to write (called on the loop thread): one flush after this callback or pass."""
        if not self._flush_due:
            self._flush_due = True
            if not self._reading:  # the reader flushes when it is done
                self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_due = False
        try:
            self._write()
        except Exception as exc:  # noqa: BLE001 -- as aiomqtt's writer callback: any failure here ends the link
            self._fail(exc)

    def _write(self) -> None:
        """paho's ``loop_write``, with one ``send`` for every queued packet."""
        client = self._paho
        sock = client._sock
        if sock is None:
            return
        out = client._out_packet
        if any((p["command"] & 0xF0) in _QOS0_PUBLISH_OR_DISCONNECT and p["qos"] == 0 for p in out):
            rc = client._packet_write()  # paho acts on these packets' completion itself
        else:
            rc = self._send_all(out)
        if client._sock is None:
            return
        if rc == MQTTErrorCode.MQTT_ERR_AGAIN:
            rc = MQTTErrorCode.MQTT_ERR_SUCCESS
        if client.want_write():
            if self._writer_fd != sock.fileno():
                self._writer_fd = sock.fileno()
                self._loop.add_writer(self._writer_fd, self._flush)
        else:
            if self._writer_fd >= 0:
                self._loop.remove_writer(self._writer_fd)
                self._writer_fd = -1
            # paho's _call_socket_unregister_write without aiomqtt's remove_writer (no writer of
            # aiomqtt's is registered once the link writes): the next packet asks again
            client._registered_write = False
        if rc:
            client._loop_rc_handle(rc)

    def _send_all(self, out: Any) -> MQTTErrorCode:
        client = self._paho
        if not out:
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        data = b"".join(bytes(p["packet"][p["pos"] :]) if p["pos"] else p["packet"] for p in out)
        try:
            written = client._sock_send(data)
        except (AttributeError, ValueError):
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        except BlockingIOError:
            return MQTTErrorCode.MQTT_ERR_AGAIN
        except OSError as err:
            client._easy_log(LogLevel.MQTT_LOG_ERR, "failed to send on socket: %s", err)
            return MQTTErrorCode.MQTT_ERR_CONN_LOST
        while out and written > 0:
            packet = out[0]
            take = min(written, packet["to_process"])
            packet["to_process"] -= take
            packet["pos"] += take
            written -= take
            if packet["to_process"] == 0:
                out.popleft()
        with client._msgtime_mutex:
            client._last_msg_out = time.monotonic()
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def detach_writer(self) -> None:
        """The socket closed: the writer registered for it goes with it."""
        if self._writer_fd >= 0:
            self._loop.remove_writer(self._writer_fd)
            self._writer_fd = -1


def plain_or_tls(sock: object) -> bool:
    """The fast path reads the socket itself: only a TCP socket or its TLS wrapper (not websockets)."""
    return isinstance(sock, socket.socket)
