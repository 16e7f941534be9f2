"""Which bus events go to MQTT, on which topic, with which payload (pure).

Retained state topics carry the present (queue, window, device, sensor, climate);
event topics carry facts as they happen. Internal chatter and capabilities stay in
the hall.
"""

from __future__ import annotations

from dataclasses import dataclass

from hallctl import events as ev
from hallctl import jsontext

# Internal chatter between the service and local devices: a printer job, a pad
# prompt, an operator's display text. Integrators get the facts, not these.
INTERNAL_EVENTS: tuple[type[ev.Event], ...] = (ev.PrintRequested, ev.EvaluationRequested, ev.DisplayText)
# ``offer`` is a capability (issue a ticket with a swiped card); staff names stay
# on the local screens. Neither goes to a bus that bridges to a city broker.
STRIPPED_FIELDS = ("offer", "staff_name")


@dataclass(frozen=True, slots=True)
class Outgoing:
    topic: str
    payload: str
    qos: int
    retain: bool


def route(root: str, event: ev.Event) -> Outgoing | None:
    """Topic, payload and flags for one bus event; None for events that stay in the hall."""
    if isinstance(event, INTERNAL_EVENTS) or (isinstance(event, ev.Alert) and event.id is None):
        return None  # an Alert without an id is a raise request; the stored alert follows with its id
    if isinstance(event, ev.QueueState):
        topic = f"{root}/queue/{event.category}/state"
    elif isinstance(event, ev.WindowState):
        topic = f"{root}/window/{event.window}/state"
    elif isinstance(event, ev.DeviceState):
        topic = f"{root}/device/{event.device}/state"
    elif isinstance(event, ev.SensorState):
        topic = f"{root}/sensor/{event.sensor}/state"
    elif isinstance(event, ev.ClimateState):
        topic = f"{root}/climate/{event.zone}/state"
    elif isinstance(event, ev.ClimateEnergy):
        topic = f"{root}/climate/{event.zone}/energy"
    elif event.kind == ev.STATE:
        return None  # a state type without a topic yet: retained topics are a documented contract
    else:
        return Outgoing(f"{root}/event/{event.wire_name}", payload_for(event), 1, False)
    return Outgoing(topic, payload_for(event), 1, True)


def payload_for(event: ev.Event) -> str:
    """The event's shared wire JSON (:meth:`~hallctl.events.Event.wire_json`), unless MQTT strips or renames a field."""
    data = event.wire_dict()
    if isinstance(event, ev.DeviceState) or any(key in data for key in STRIPPED_FIELDS):
        data = dict(data)
        for key in STRIPPED_FIELDS:
            data.pop(key, None)
        if isinstance(event, ev.DeviceState):
            data["kind"] = data.pop("device_kind")
        return jsontext.dumps(data)
    return event.wire_json()
