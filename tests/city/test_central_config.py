"""``hallctl central FILE --check``: a bad central config names the key and the reason, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from hallctl import cli


def test_a_good_central_config_is_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "central.toml"
    f.write_text('[postgres]\ndsn = "host=/run/postgresql dbname=city"\n[[hall]]\nid = "xicheng"\nname = "西城"\n')
    assert cli.main(["central", str(f), "--check"]) == 0
    assert "OK (central 1, 1 halls listed)" in capsys.readouterr().out


def test_a_bad_central_config_names_each_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "central.toml"
    f.write_text(
        '[central]\nid = "a b"\n[mqtt]\nurl = "http://x"\n[postgres]\ndsn = "x"\nbatch_max = "5"\n'
        '[gaps]\nscan_s = 0\n[http]\ntimezone = "Mars/Olympus"\n[[hall]]\nid = "x"\n[[hall]]\nid = "x"\n'
    )
    assert cli.main(["central", str(f), "--check"]) == 2
    err = capsys.readouterr().err
    for key in ("central.id = 'a b'", "mqtt.url = 'http://x'", "postgres.batch_max = '5'", "gaps.scan_s = 0",
                "http.timezone = 'Mars/Olympus'"):  # fmt: skip
        assert key in err, err
    f.write_text('[postgres]\ndsn = "x"\n[[hall]]\nid = "x"\n[[hall]]\nid = "x"\n[surprise]\n')
    assert cli.main(["central", str(f), "--check"]) == 2
    err = capsys.readouterr().err
    assert "surprise" in err
    f.write_text('[postgres]\ndsn = "x"\n[[hall]]\nid = "x"\n[[hall]]\nid = "x"\n')
    assert cli.main(["central", str(f), "--check"]) == 2
    assert "hall[1].id = 'x': duplicate hall id" in capsys.readouterr().err
