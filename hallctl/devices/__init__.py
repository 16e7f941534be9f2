"""The devices component: drivers on one side, the queue service on the other."""

from hallctl.devices.manager import DeviceManager

__all__ = ["DeviceManager"]
