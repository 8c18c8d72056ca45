#!/usr/bin/env python3
"""Captures assets/screenshot.png from a real run of the app (`make screenshot`).

It starts a fresh lab in a temporary RAFTTY_HOME, runs the app in tmux, plays a short
scene (keys written, a load, the leader killed), reads the screen with its colours
(`tmux capture-pane -e`) and draws it with DejaVu Sans Mono. Needs tmux and Pillow.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

from PIL import Image, ImageDraw, ImageFont

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RAFTTY = os.path.join(ROOT, "target", "release", "raftty")
OUT = os.path.join(ROOT, "assets", "screenshot.png")
COLS, ROWS = 120, 34
SOCKET = f"raftty-screenshot-{os.getpid()}"

FONT_DIR = "/usr/share/fonts/truetype/dejavu"
MONO = ImageFont.truetype(os.path.join(FONT_DIR, "DejaVuSansMono.ttf"), 15)
BOLD = ImageFont.truetype(os.path.join(FONT_DIR, "DejaVuSansMono-Bold.ttf"), 15)
# Symbols the monospace face lacks.
WIDE = ImageFont.truetype(os.path.join(FONT_DIR, "DejaVuSans.ttf"), 14)

BG = (24, 26, 33)
FG = (204, 204, 204)
BASIC = [
    (0, 0, 0), (205, 49, 49), (13, 188, 121), (229, 229, 16),
    (36, 114, 200), (188, 63, 188), (17, 168, 205), (229, 229, 229),
    (102, 102, 102), (241, 76, 76), (35, 209, 139), (245, 245, 67),
    (59, 142, 234), (214, 112, 214), (41, 184, 219), (255, 255, 255),
]


def xterm256(n):
    if n < 16:
        return BASIC[n]
    if n < 232:
        n -= 16
        steps = [0, 95, 135, 175, 215, 255]
        return (steps[n // 36], steps[n // 6 % 6], steps[n % 6])
    v = 8 + (n - 232) * 10
    return (v, v, v)


def tmux(*args, check=True):
    return subprocess.run(["tmux", "-L", SOCKET, *args], check=check, capture_output=True, text=True).stdout


def screen():
    return tmux("capture-pane", "-p", "-t", "shot")


def wait_for(what, condition, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        s = screen()
        if condition(s):
            return s
        time.sleep(0.2)
    sys.exit(f"waited {timeout}s for {what}; the screen shows:\n{screen()}")


def command(line):
    tmux("send-keys", "-t", "shot", ":")
    tmux("send-keys", "-t", "shot", "-l", line)
    tmux("send-keys", "-t", "shot", "Enter")


def leader(s):
    m = re.search(r" leader (n\d+)", s.splitlines()[0])
    return m.group(1) if m else None


def parse(ansi):
    """Cells of the captured screen: (char, fg, bg, bold) per column, per row."""
    rows = []
    for line in ansi.split("\n")[:ROWS]:
        fg, bg, bold, reverse = FG, BG, False, False
        cells = []
        for token in re.split(r"(\x1b\[[0-9;]*m)", line):
            if token.startswith("\x1b["):
                codes = [int(c) if c else 0 for c in token[2:-1].split(";")]
                i = 0
                while i < len(codes):
                    c = codes[i]
                    if c == 0:
                        fg, bg, bold, reverse = FG, BG, False, False
                    elif c == 1:
                        bold = True
                    elif c == 22:
                        bold = False
                    elif c == 7:
                        reverse = True
                    elif c == 27:
                        reverse = False
                    elif 30 <= c <= 37:
                        fg = BASIC[c - 30]
                    elif 90 <= c <= 97:
                        fg = BASIC[c - 90 + 8]
                    elif c == 39:
                        fg = FG
                    elif 40 <= c <= 47:
                        bg = BASIC[c - 40]
                    elif 100 <= c <= 107:
                        bg = BASIC[c - 100 + 8]
                    elif c == 49:
                        bg = BG
                    elif c in (38, 48) and i + 1 < len(codes):
                        if codes[i + 1] == 5 and i + 2 < len(codes):
                            colour = xterm256(codes[i + 2])
                            i += 2
                        elif codes[i + 1] == 2 and i + 4 < len(codes):
                            colour = tuple(codes[i + 2:i + 5])
                            i += 4
                        else:
                            colour = FG
                        if c == 38:
                            fg = colour
                        else:
                            bg = colour
                    i += 1
                continue
            for ch in token:
                f, b = (bg, fg) if reverse else (fg, bg)
                cells.append((ch, f, b, bold))
        rows.append(cells)
    return rows


def render(rows):
    cell_w = int(MONO.getlength("M"))
    cell_h = 20
    pad = 16
    image = Image.new("RGB", (COLS * cell_w + 2 * pad, ROWS * cell_h + 2 * pad), BG)
    draw = ImageDraw.Draw(image)
    for y, cells in enumerate(rows):
        for x, (ch, fg, bg, bold) in enumerate(cells[:COLS]):
            left, top = pad + x * cell_w, pad + y * cell_h
            if bg != BG:
                draw.rectangle([left, top, left + cell_w - 1, top + cell_h - 1], fill=bg)
            if ch == " ":
                continue
            font = BOLD if bold else MONO
            if not font.getmask(ch).getbbox() or ord(ch) in (0x2605, 0x25CE, 0x25CB, 0x2717, 0x25B6, 0x25C6, 0x2573):
                font = WIDE
            draw.text((left, top + 1), ch, font=font, fill=fg)
    image.save(OUT)


def main():
    if not os.path.exists(RAFTTY):
        sys.exit("build first: cargo build --release")
    home = tempfile.mkdtemp(prefix="raftty-screenshot-")
    line = f"env RAFTTY_HOME={home} {RAFTTY} --lab workshop"
    tmux("-f", "/dev/null", "new-session", "-d", "-s", "shot", "-x", str(COLS), "-y", str(ROWS), line)
    try:
        s = wait_for("a healthy lab", lambda s: "healthy" in s and leader(s))
        for key, value in [("/registry/pods/default/nginx", '{"image":"nginx","replicas":3}'),
                           ("/registry/pods/default/redis", '{"image":"redis"}'),
                           ("/registry/services/kubernetes", "10.0.0.1")]:
            command(f"put {key} '{value}'")
        command("load 50")
        time.sleep(3)
        old = leader(screen())
        command(f"kill {old}")
        wait_for("a new leader", lambda s: leader(s) and leader(s) != old and "killed" in s and "degraded" in s)
        time.sleep(2)
        ansi = tmux("capture-pane", "-p", "-e", "-t", "shot")
        render(parse(ansi))
        print(f"wrote {OUT}")
    finally:
        tmux("send-keys", "-t", "shot", "q", check=False)
        time.sleep(0.5)
        tmux("send-keys", "-t", "shot", "s", check=False)
        time.sleep(3)
        tmux("kill-server", check=False)
        subprocess.run([RAFTTY, "down", "--purge", "--lab", "workshop"], env={**os.environ, "RAFTTY_HOME": home},
                       capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
