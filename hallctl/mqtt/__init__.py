"""The MQTT component: state, events and commands on the hall's broker (docs/mqtt.md)."""

from hallctl.mqtt.bridge import MqttBridge

__all__ = ["MqttBridge"]
