"""Commands, registered once and served on every transport (Moonraker's habit).

Each action is declared once with :func:`command`: its name, its argument model
(pydantic, unknown fields refused), who may run it (roles, window scoping), its
handler, its HTTP route (method, path, success status) and its MQTT topic under
``<root>/cmd/``. The HTTP routes (``hallctl.http.api``) and the MQTT command topics
(``hallctl.mqtt.commands``) are generated from this table, and both call
:func:`dispatch`, so validation, permissions and error codes are the same on both.

Parameters in the path or topic (``{window}``) arrive as strings, are merged into
the arguments (a body may not name them too) and are validated by the same model:
path/topic fields are lax (``"3"`` is window 3), every number or boolean a body
carries is strict (``{"target": "25"}`` is refused, as the zigbee path refuses a
string temperature; ``tests/mqtt/test_mqtt_strict.py`` checks every command).

Personal data is a property of the transport: a command lists the result fields
that carry it (``personal``) with the function that masks them, and a transport
that may not carry personal data (MQTT) always gets the masked form, whoever asked.
"""

from hallctl.commands import appointments, city, hall, kiosks, supervision, tickets, windows  # noqa: F401  (each registers its commands)
from hallctl.commands.args import Args
from hallctl.commands.table import (
    COMMANDS,
    HTTP,
    INTERNAL,
    MQTT,
    Call,
    Command,
    CommandError,
    HttpRoute,
    Transport,
    command,
    dispatch,
    merge_args,
    parse_args,
)

__all__ = [
    "COMMANDS",
    "HTTP",
    "INTERNAL",
    "MQTT",
    "Args",
    "Call",
    "Command",
    "CommandError",
    "HttpRoute",
    "Transport",
    "command",
    "dispatch",
    "merge_args",
    "parse_args",
]
