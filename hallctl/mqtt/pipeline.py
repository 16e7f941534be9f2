"""The bridge's MQTT client: aiomqtt's, plus publishes that do not wait (the event pipeline).

aiomqtt's ``publish`` is a coroutine per message: the bridge ran each in its own task
(to pipeline them), and each then went through aiomqtt's semaphore wrapper, a pending-call
context manager, an ``asyncio.Event`` and ``wait_for``/``shield`` before paho saw it —
about a quarter of the event loop's time per durable ticket in issue 12's profile, for
bookkeeping the bridge already does itself (its ordered window of unacknowledged events).

:class:`PipelinedClient` keeps aiomqtt for everything else (connect, subscribe, incoming
messages, the will, replies and retained state, which still wait with ``publish``) and adds
:meth:`PipelinedClient.publish_nowait`: paho numbers, queues and sends the message at once
(in call order, so in order on the wire), and the PUBACK is reported to the ``on_acked``
callback with the message id, in the loop callback that read it. The bridge counts an
event delivered only then, as before. paho's own in-flight window (20) and queue of
messages beyond it are unchanged.

The socket work of these publishes (reading PUBACKs, writing packets, building and
queueing messages) is :class:`hallctl.mqtt.fastpath.FastLink`'s: once the socket is open it
replaces aiomqtt's reader callback and, for packets queued on the loop thread, its
register-write callback (``fast=False`` keeps aiomqtt's and paho's own path; the bench
compares the two).

This is a subclass of aiomqtt's client that reaches the paho client aiomqtt keeps
(``self._client``), aiomqtt's PUBACK handler and socket callbacks, its loop and its
``_disconnected`` future, all internal to aiomqtt: that is why it sits alone in this
module, why pyproject.toml pins aiomqtt to the 2.x line it was written against, and why
``tests/mqtt`` runs it against a real Mosquitto (order, QoS 1 across a broker restart, the
outbox, the fast path).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from hallctl.mqtt.fastpath import FastLink, check_paho, plain_or_tls

# At import, so a paho-mqtt without the internals the fast path uses stops the start, naming its version.
check_paho(paho.Client(CallbackAPIVersion.VERSION2))


class PipelinedClient(aiomqtt.Client):
    """aiomqtt's client with :meth:`publish_nowait` (see the module docstring).

    With ``fast`` (the default) the socket work goes through :class:`hallctl.mqtt.fastpath.FastLink`:
    one ``recv`` per wake-up, ``publish_nowait``'s PUBACKs settled without paho's decoding,
    one ``send`` per loop pass, its messages built without paho's per-message ``Condition``;
    ``fast=False`` is aiomqtt's and paho's own path (the bench compares the two in one run).
    """

    def __init__(self, *args: Any, on_acked: Callable[[int], None], fast: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._on_acked = on_acked
        self._nowait: set[int] = set()  # message ids of publish_nowait's messages not yet acknowledged
        self._loop_thread = threading.get_ident()  # aiomqtt's loop runs here (it took it in __init__ too)
        self._link = FastLink(self._client, self._loop, self._settle_nowait, self._link_failed) if fast else None
        self._link_on = False  # the socket is read and written by the link

    def _settle_nowait(self, mid: int) -> bool:
        """The fast path read a PUBACK for ``mid``: report it if it is ``publish_nowait``'s (True)."""
        if mid not in self._nowait:
            return False
        self._nowait.discard(mid)
        self._on_acked(mid)
        return True

    def _link_failed(self, exc: BaseException) -> None:
        # What aiomqtt's own socket callbacks do with an exception: the link is over.
        if not self._disconnected.done():
            self._disconnected.set_exception(exc)

    def _on_socket_open(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        super()._on_socket_open(client, userdata, sock)
        link = self._link
        if link is not None and plain_or_tls(sock):
            link.attach()
            # Runs after aiomqtt's add_reader (same thread, FIFO), so the link's reader replaces it.
            self._loop.call_soon_threadsafe(self._take_socket, sock.fileno(), link)

    def _take_socket(self, fd: int, link: FastLink) -> None:
        if link.take_reader(fd):
            self._link_on = True

    def _on_socket_close(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self._link_on = False
        if self._link is not None:
            self._link.detach_writer()
        super()._on_socket_close(client, userdata, sock)

    def _on_socket_register_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        if self._link_on and self._link is not None and threading.get_ident() == self._loop_thread:
            self._link.on_register_write()
            return
        super()._on_socket_register_write(client, userdata, sock)

    def publish_nowait(self, topic: str, payload: str | bytes, qos: int, retain: bool) -> int:
        """Hand one message to paho now and return its message id; ``on_acked(mid)`` follows its PUBACK.

        :class:`aiomqtt.MqttCodeError` when paho refuses it at once (no connection, too large).
        With QoS 0 ``on_acked`` follows once paho has written it.
        """
        link = self._link
        info = link.publish(topic, payload, retain) if link is not None and self._link_on and qos == 1 else None
        if info is None:
            info = self._client.publish(topic, payload, qos, retain)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            raise aiomqtt.MqttCodeError(info.rc, "Could not publish message")
        self._nowait.add(info.mid)
        return info.mid

    def _on_publish(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reason_code: ReasonCode,
        properties: Properties,
    ) -> None:
        # Any PUBACK counts, as it does for aiomqtt's own publish (the reason code is not looked at).
        if mid in self._nowait:
            self._nowait.discard(mid)
            self._on_acked(mid)
            return
        super()._on_publish(client, userdata, mid, reason_code, properties)
