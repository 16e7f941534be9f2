"""A device's health detail in Chinese for the hall's pages (hallctl.device_text)."""

from __future__ import annotations

from hallctl.device_text import detail_zh, device_fault_text

ABSENT = (
    "cannot open /dev/hallctl/idr-k1: [Errno 2] could not open port /dev/hallctl/idr-k1: "
    "[Errno 2] No such file or directory: '/dev/hallctl/idr-k1'"
)


def test_known_details_are_translated_word_for_word() -> None:
    assert detail_zh("paper_out") == "缺纸"
    assert detail_zh("no status reply") == "无状态应答"
    assert detail_zh("not yet commanded") == "尚未下发指令"
    assert detail_zh("") == ""


def test_details_with_a_value_keep_the_value() -> None:
    # The reconnecting driver's words for an unplugged USB-serial adapter, as it logs them.
    assert detail_zh(ABSENT) == "无法打开端口 /dev/hallctl/idr-k1"
    assert detail_zh("no reply to 3 polls in a row") == "连续3次轮询无应答"
    assert detail_zh("no valid reading for 120 s") == "120秒内无有效读数"
    assert detail_zh("no answer after 3 tries") == "3次尝试无应答"


def test_unknown_details_are_shown_as_they_came_not_guessed() -> None:
    assert detail_zh("SAM module error 0x41") == "SAM module error 0x41"


def test_fault_alert_reads_in_each_language() -> None:
    assert device_fault_text("idr-k1", "idcard", "offline", ABSENT, "zh") == (
        "身份证读卡器idr-k1离线：无法打开端口 /dev/hallctl/idr-k1"
    )
    assert device_fault_text("prn-k1", "printer", "error", "paper_out", "en") == "printer prn-k1 fault: out of paper"
    assert device_fault_text("ac1", "ac_unit", "offline", "not yet commanded", "zh") == "空调ac1离线：尚未下发指令"
