"""Make docs/terminal-80.svg: `backprop train configs/digits.yaml` as it looks at the end of a
run in an 80-column terminal, colours included, for the README.

It runs the command in a real terminal (a tmux session of its own, 80x24, with a long
scrollback), captures the whole scrollback with its colours (`tmux capture-pane -e -p -J`),
and renders it to SVG with Rich (`Text.from_ansi`, then `Console(record=True, width=80)
.export_svg`). The run goes to a temporary directory, which is removed.

    python docs/make_terminal_svg.py                 # writes docs/terminal-80.svg
    python docs/make_terminal_svg.py --width 120 --config configs/iris.yaml --out x.svg

Needs tmux on the PATH. The command runs this checkout's code (PYTHONPATH) with this Python.
"""

from __future__ import annotations

import argparse
import io
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.text import Text

ROOT = Path(__file__).resolve().parent.parent


def capture(config: str, width: int, height: int, workdir: Path) -> str:
    """The scrollback and screen of `backprop train CONFIG` run in a width x height tmux
    terminal in ``workdir``, with the colours as ANSI escapes, wrapped lines joined."""
    done = workdir / "exit-code"
    conf = workdir / "tmux.conf"
    conf.write_text("set -g history-limit 50000\nset -g status off\n")
    script = workdir / "run.sh"
    command = [sys.executable, "-m", "backprop_cli", "train", str(ROOT / config)]
    command += ["--out", "runs/" + Path(config).stem]
    script.write_text(
        "unset COLUMNS LINES\n"  # the terminal's own size
        f"export PYTHONPATH={shlex.quote(str(ROOT))}\n"
        f"cd {shlex.quote(str(workdir))}\n"
        f"{shlex.join(command)}\n"
        f"echo $? > {done}.tmp && mv {done}.tmp {done}\n"
        "exec sleep 600\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "TMUX")}
    tmux = ["tmux", "-S", str(workdir / "tmux.sock"), "-f", str(conf)]
    size = ["-x", str(width), "-y", str(height)]
    subprocess.run([*tmux, "new-session", "-d", *size, f"sh {script}"], env=env, check=True)
    try:
        deadline = time.monotonic() + 300
        while not done.exists():
            if time.monotonic() > deadline:
                raise SystemExit("backprop train did not finish in 5 minutes")
            time.sleep(0.1)
        time.sleep(0.5)  # let tmux draw the last lines
        grab = [*tmux, "capture-pane", "-e", "-p", "-J", "-S", "-", "-E", "-"]
        out = subprocess.run(grab, env=env, capture_output=True, text=True, check=True).stdout
    finally:
        subprocess.run([*tmux, "kill-server"], env=env, capture_output=True)
    if done.read_text().strip() != "0":
        raise SystemExit(f"backprop train exited with {done.read_text().strip()}:\n{out}")
    return out


def to_svg(ansi: str, width: int, title: str) -> str:
    """The captured lines (trailing blank ones dropped) as an SVG terminal window. The
    capture is read whole: tmux writes a colour once, where it starts, not on every line."""
    lines = Text.from_ansi(ansi.rstrip("\n")).split("\n")
    while lines and not lines[-1].plain.strip():
        lines.pop()
    console = Console(record=True, width=width, file=io.StringIO(), color_system="truecolor")
    for line in lines:
        console.print(line, no_wrap=True, crop=True)
    return console.export_svg(title=title)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="configs/digits.yaml")
    parser.add_argument("--width", type=int, default=80)
    parser.add_argument("--height", type=int, default=24)
    parser.add_argument("--out", default=str(ROOT / "docs" / "terminal-80.svg"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="backprop-svg-") as tmp:
        ansi = capture(args.config, args.width, args.height, Path(tmp))
    svg = to_svg(ansi, args.width, f"backprop train {args.config}")
    Path(args.out).write_text(svg, encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
