"""`baogong push` and `baogong skus import` as a person runs them, against the real API and database."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd

from schema.db import connect
from tests.integration.conftest import Api

SH = ZoneInfo("Asia/Shanghai")


def baogong(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "baogong.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_push_a_spreadsheet_with_progress_and_line_numbers(api: Api, tmp_path: Path) -> None:
    at = (datetime.now(SH) - timedelta(minutes=2)).isoformat(timespec="seconds")
    rows = [
        {
            "outlet_id": "O1" if i % 2 else "O2",
            "necessity": "rice",
            "quantity": i,
            "unit": "kg",
            "reported_at": at,
            "message_id": f"row-{i}",
        }
        for i in range(2500)
    ]
    rows[1234]["unit"] = "barrel"
    rows[2000]["outlet_id"] = "O3"
    path = tmp_path / "stock.xlsx"
    pd.DataFrame(rows).to_excel(path, index=False)
    env = {"BAOGONG_API_URL": api.url, "BAOGONG_API_KEY": api.keys["s1"].key}

    first = baogong("push", str(path), "--batch", "500", env=env)
    assert first.returncode == 3, first.stderr  # some rows rejected
    assert "2,500 records, 2,498 accepted, 0 duplicates, 2 rejected" in first.stdout
    assert "line 1236: unit:" in first.stdout and "line 2002: outlet_id:" in first.stdout
    assert "2,500/2,500 records" in first.stderr  # the progress bar reached the end
    assert api.keys["s1"].key not in first.stdout + first.stderr

    again = baogong("push", str(path), env=env)
    assert "0 accepted, 2,498 duplicates, 2 rejected" in again.stdout

    no_key = baogong("push", str(path), env={"BAOGONG_API_URL": api.url, "BAOGONG_API_KEY": ""})
    assert no_key.returncode == 2 and "BAOGONG_API_KEY" in no_key.stderr


def test_skus_import_from_csv(api: Api, tmp_path: Path) -> None:
    path = tmp_path / "skus.csv"
    path.write_text("sku,necessity,pack_quantity,pack_unit\nR5,rice,5,kg\nBAD,rice,0,kg\nOIL,cooking_oil,5,L\n")
    env = {"BAOGONG_DATABASE_URL": api.database_url}
    out = baogong("skus", "import", str(path), "--supplier", "s2", env=env)
    assert out.returncode == 3
    assert "2 SKUs stored for s2, 1 rejected" in out.stdout and "line 3: pack_quantity" in out.stdout
    with connect(api.database_url) as conn:
        stored = conn.execute("SELECT sku, pack_quantity FROM supplier_skus WHERE supplier_id = 's2' ORDER BY 1")
        assert [(r["sku"], r["pack_quantity"]) for r in stored.fetchall()] == [("OIL", 5.0), ("R5", 5.0)]
    unknown = baogong("skus", "import", str(path), "--supplier", "nobody", env=env)
    assert unknown.returncode == 2 and "unknown supplier 'nobody'" in unknown.stderr
