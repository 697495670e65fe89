"""Make docs/report.png, the README's picture of `backprop report`.

Trains configs/vanishing-sigmoid.yaml and configs/vanishing-fixed.yaml into a temporary
directory, writes their report (the two runs overlaid), and has headless Chromium
screenshot the top of the page with the network off. Run from the repository root, with
the report extra and Debian's chromium installed:

    .venv/bin/python docs/make_report_png.py
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from backprop_cli.cli import main

ROOT = Path(__file__).resolve().parent.parent


def make(out: Path = ROOT / "docs" / "report.png", size: str = "1300,1700") -> Path:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("needs chromium (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as tmp:
        runs = []
        for name in ("vanishing-sigmoid", "vanishing-fixed"):
            run = Path(tmp) / name
            assert (
                main(["train", str(ROOT / "configs" / f"{name}.yaml"), "-q", "--out", str(run)])
                == 0
            )
            runs.append(str(run))
        page = Path(tmp) / "report.html"
        assert main(["report", *runs, "--out", str(page)]) == 0
        subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--proxy-server=socks5://127.0.0.1:9",
                "--virtual-time-budget=20000",
                f"--window-size={size}",
                f"--screenshot={out}",
                page.as_uri(),
            ],
            check=True,
            capture_output=True,
        )
    return out


if __name__ == "__main__":
    print(make())
