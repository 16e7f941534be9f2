"""Device words in both languages: the kind of device, and a driver's health detail in Chinese.

Drivers import nothing from hallctl and report their health detail in English (``no status
reply``, ``cannot open /dev/ttyUSB0: …``), which is what a log and an integrator want. The
hall's own people read the guide desk, the big screen and the console in Chinese first, so
the service adds ``detail_zh`` beside ``detail``: the known details word for word, the
details that carry a value (a port, a count, seconds) by pattern, and anything else (an
operating-system error nobody here wrote) as it came, rather than a guess.
"""

from __future__ import annotations

import re

KIND_TEXT: dict[str, tuple[str, str]] = {
    "printer": ("打印机", "printer"),
    "idcard": ("身份证读卡器", "ID card reader"),
    "badge": ("工牌读卡器", "badge reader"),
    "led_bus": ("LED屏", "LED display"),
    "led": ("LED屏", "LED display"),
    "evalpad": ("评价器", "rating pad"),
    "modbus_sensor": ("传感器", "sensor"),
    "ac_unit": ("空调", "air conditioner"),
    "ac_gateway": ("空调网关", "air-conditioning gateway"),
    "zigbee_sensor": ("无线传感器", "zigbee sensor"),
}

# Exact details (the printer's status reasons are codes: paper_out, cover_open, ...).
FAULT_TEXT: dict[str, tuple[str, str]] = {
    "paper_out": ("缺纸", "out of paper"),
    "paper_near_end": ("纸将用完", "paper nearly out"),
    "cover_open": ("机盖未关", "cover open"),
    "cutter_error": ("切刀故障", "cutter error"),
    "no status reply": ("无状态应答", "no status reply"),
    "garbled status reply": ("状态应答错乱", "garbled status reply"),
    "status queries off": ("未启用状态查询", "status queries off"),
    "not opened": ("未连接", "not connected"),
    "not connected": ("未连接", "not connected"),
    "starting": ("正在启动", "starting"),
    "restarting": ("正在重启", "restarting"),
    "closed": ("已关闭", "closed"),
    "link closed": ("连接已断开", "link closed"),
    "pad not answering": ("评价器无应答", "pad not answering"),
    "reader does not answer": ("读卡器无应答", "reader does not answer"),
    "not contacted yet": ("尚未联络", "not contacted yet"),
    "not yet commanded": ("尚未下发指令", "not yet commanded"),
    "zigbee2mqtt reports the sensor offline": ("zigbee2mqtt报告传感器离线", "zigbee2mqtt reports the sensor offline"),
}

# Details that carry a value; the first pattern that matches the whole detail wins.
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"cannot open (?P<port>\S+?): .*"), "无法打开端口 {port}"),
    (re.compile(r"no reply to (?P<n>\d+) polls in a row"), "连续{n}次轮询无应答"),
    (re.compile(r"no valid reading for (?P<s>[\d.]+) s"), "{s}秒内无有效读数"),
    (re.compile(r"no answer after (?P<n>\d+) tries"), "{n}次尝试无应答"),
    (re.compile(r"no reply to (?P<what>[\w ]+)"), "无应答（{what}）"),
    (re.compile(r"no state message within (?P<s>[\d.]+) s"), "{s}秒内未收到状态"),
    (re.compile(r"gateway offline: .*"), "网关离线"),
    (re.compile(r"could not start: .*"), "无法启动"),
)


def detail_zh(detail: str) -> str:
    """The Chinese words for a driver's health detail; the detail itself when there are none."""
    if not detail:
        return ""
    known = FAULT_TEXT.get(detail)
    if known is not None:
        return known[0]
    for pattern, words in _PATTERNS:
        m = pattern.fullmatch(detail)
        if m is not None:
            return words.format(**m.groupdict())
    return detail


def device_fault_text(device: str, kind: str, state: str, detail: str, lang: str) -> str:
    """The device-fault alert's words for the big screen and the guide desk: what and which, in one language."""
    zh = lang == "zh"
    kind_t = KIND_TEXT.get(kind, (kind, kind))[0 if zh else 1]
    if zh:
        st = "离线" if state == "offline" else "故障"
        fault = detail_zh(detail)
        return f"{kind_t}{device}{st}" + (f"：{fault}" if fault else "")
    known = FAULT_TEXT.get(detail)
    fault = known[1] if known else detail
    st = "offline" if state == "offline" else "fault"
    return f"{kind_t} {device} {st}" + (f": {fault}" if fault else "")
