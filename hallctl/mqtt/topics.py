"""Which bus events go to MQTT, on which topic, with which payload (pure).

Retained state topics carry the present (queue, window, device, sensor, climate);
event topics carry facts as they happen. Internal chatter and capabilities stay in
the hall.

What decides a route is fixed per event class (its type, ``wire_name`` and ``kind``
are class attributes, its fields the dataclass's), so :func:`route` works it out once
per class (:class:`_Plan`) and then only reads the instance: the topic's variable part
and, for an Alert, whether it has an id. Every event of every ticket goes through here
(issue 12's profile: the chain of ``isinstance`` tests and the stripped-field scan of
each payload were a tenth of the bridge's time per event).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

from hallctl import events as ev
from hallctl import jsontext

# Internal chatter between the service and local devices: a printer job, a pad
# prompt, an operator's display text. Integrators get the facts, not these.
INTERNAL_EVENTS: tuple[type[ev.Event], ...] = (ev.PrintRequested, ev.EvaluationRequested, ev.DisplayText)
# ``offer`` is a capability (issue a ticket with a swiped card); staff names stay
# on the local screens. Neither goes to a bus that bridges to a city broker.
STRIPPED_FIELDS = ("offer", "staff_name")

# Retained state types and their topics: (type, the topic's head after the root, the
# field that names the topic, its tail), tested in this order.
_STATE_TOPICS: tuple[tuple[type[ev.Event], str, str, str], ...] = (
    (ev.QueueState, "/queue/", "category", "/state"),
    (ev.WindowState, "/window/", "window", "/state"),
    (ev.DeviceState, "/device/", "device", "/state"),
    (ev.SensorState, "/sensor/", "sensor", "/state"),
    (ev.ClimateState, "/climate/", "zone", "/state"),
    (ev.ClimateEnergy, "/climate/", "zone", "/energy"),
)


class Outgoing(NamedTuple):
    topic: str
    payload: str
    qos: int
    retain: bool


@dataclasses.dataclass(frozen=True, slots=True)
class _Plan:
    """How one event class is routed; ``head`` is all of the topic after the root unless ``key`` names a part."""

    stays: bool  # never leaves the hall
    needs_id: bool  # an Alert: only once stored (with its id)
    retain: bool
    head: str
    key: str | None
    tail: str
    rewrite: bool  # the payload is not the shared wire JSON (a field stripped or renamed)


_PLANS: dict[type[ev.Event], _Plan] = {}


def _plan(cls: type[ev.Event]) -> _Plan:
    """Work out (once per class) what :func:`route` used to test on each event."""
    fields = {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()
    rewrite = issubclass(cls, ev.DeviceState) or any(key in fields for key in STRIPPED_FIELDS)
    needs_id = issubclass(cls, ev.Alert)
    plan = _Plan(True, needs_id, False, "", None, "", rewrite)
    if not issubclass(cls, INTERNAL_EVENTS):
        for state_cls, head, key, tail in _STATE_TOPICS:
            if issubclass(cls, state_cls):
                plan = _Plan(False, needs_id, True, head, key, tail, rewrite)
                break
        else:
            if cls.kind != ev.STATE:  # a state type without a topic yet stays: retained topics are a contract
                plan = _Plan(False, needs_id, False, f"/event/{cls.wire_name}", None, "", rewrite)
    _PLANS[cls] = plan
    return plan


def route(root: str, event: ev.Event) -> Outgoing | None:
    """Topic, payload and flags for one bus event; None for events that stay in the hall."""
    plan = _plan_of(type(event))
    if plan.stays:
        return None
    if plan.needs_id and getattr(event, "id", None) is None:
        return None  # an Alert without an id is a raise request; the stored alert follows with its id
    payload = _payload(event, plan)
    if plan.key is None:
        return Outgoing(root + plan.head, payload, 1, plan.retain)
    return Outgoing(f"{root}{plan.head}{getattr(event, plan.key)}{plan.tail}", payload, 1, plan.retain)


def payload_for(event: ev.Event) -> str:
    """The event's shared wire JSON (:meth:`~hallctl.events.Event.wire_json`), unless MQTT strips or renames a field."""
    return _payload(event, _plan_of(type(event)))


def _plan_of(cls: type[ev.Event]) -> _Plan:
    return _PLANS.get(cls) or _plan(cls)


def _payload(event: ev.Event, plan: _Plan) -> str:
    return _rewritten(event) if plan.rewrite else event.wire_json()


def _rewritten(event: ev.Event) -> str:
    data = dict(event.wire_dict())
    for key in STRIPPED_FIELDS:
        data.pop(key, None)
    if isinstance(event, ev.DeviceState):
        data["kind"] = data.pop("device_kind")
    return jsontext.dumps(data)
