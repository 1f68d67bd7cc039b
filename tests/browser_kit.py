"""Helpers shared by the browser tests (not a test module): launching Debian's chromium,
opening the app, asking a question, and the in-page checks (text contrast, sideways scroll).

The checks run inside the page on computed styles, so they see what a reader sees: the
theme's colours, our stylesheet, dark mode.
"""

from __future__ import annotations

from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[1] / "screenshots"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


def open_app(browser, url: str, viewport: dict | None = None, **context_args):
    """A fresh page in a context of its own (closing ``page.context`` closes both)."""
    ctx = browser.new_context(viewport=viewport or DESKTOP, locale="zh-CN", **context_args)
    return open_in(ctx, url)


def open_in(ctx, url: str):
    """A new page of ``ctx`` on the app, ready for input. Every page load is a gradio session
    of its own; pages of one context share the browser cache, so they load faster."""
    page = ctx.new_page()
    page.set_default_timeout(30_000)
    page.goto(url)
    page.wait_for_selector("#pq-input textarea")
    return page


def ask(page, question: str, turn: int) -> None:
    """Type a question, send it with Enter and wait for the 出处 panel (updated last)."""
    page.fill("#pq-input textarea", question)
    page.keyboard.press("Enter")
    page.wait_for_selector(f'#pq-sources [data-turn="{turn}"]')


# WCAG 2.x contrast of every visible text node (and of the placeholders of empty inputs):
# the text colour over the background found by blending the ancestors' background colours
# (a gradient counts as its first colour). Disabled controls are exempt (WCAG 1.4.3).
CONTRAST_JS = r"""
() => {
  const parse = (c) => {
    if (!c) return null;
    let m = c.match(/rgba?\(([^)]+)\)/);
    if (m) {
      const p = m[1].split(/[\s,\/]+/).filter(Boolean).map(Number);
      return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
    }
    m = c.match(/color\(srgb ([^)]+)\)/);
    if (m) {
      const p = m[1].split(/[\s\/]+/).filter(Boolean).map(Number);
      return [p[0] * 255, p[1] * 255, p[2] * 255, p.length > 3 ? p[3] : 1];
    }
    return null;
  };
  const lin = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  const lum = (c) => 0.2126 * lin(c[0]) + 0.7152 * lin(c[1]) + 0.0722 * lin(c[2]);
  const over = (top, bottom) => {
    const a = top[3];
    return [0, 1, 2].map((i) => top[i] * a + bottom[i] * (1 - a)).concat([1]);
  };
  const background = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const cs = getComputedStyle(e);
      let c = parse(cs.backgroundColor);
      if (cs.backgroundImage && cs.backgroundImage.includes('gradient')) {
        const g = cs.backgroundImage.match(/rgba?\([^)]+\)/);
        if (g) c = parse(g[0]);
      }
      if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
    }
    let bg = [255, 255, 255, 1];
    for (const l of layers.reverse()) bg = over(l, bg);
    return bg;
  };
  const ratio = (fg, bg) => {
    const a = lum(fg), b = lum(bg);
    return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  };
  const visible = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const cs = getComputedStyle(e);
      if (cs.display === 'none' || cs.visibility === 'hidden' || Number(cs.opacity) === 0) return false;
      if (cs.clip === 'rect(0px, 0px, 0px, 0px)' || cs.clipPath === 'inset(50%)') return false;
    }
    return true;
  };
  const results = [];
  const check = (el, text, color) => {
    if (el.closest('button:disabled, [aria-disabled="true"], [disabled]')) return;
    const cs = getComputedStyle(el);
    let fg = parse(color || cs.color);
    if (!fg) return;
    const bg = background(el);
    fg = over(fg, bg);
    const size = parseFloat(cs.fontSize);
    const bold = Number(cs.fontWeight) >= 700;
    const large = size >= 24 || (bold && size >= 18.66);
    const r = ratio(fg, bg);
    results.push({ text: text.slice(0, 40), ratio: Math.round(r * 100) / 100, need: large ? 3 : 4.5,
                   cls: (el.className && el.className.baseVal === undefined ? String(el.className) : '').slice(0, 60),
                   tag: el.tagName });
  };
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const text = n.textContent.trim();
    if (!text || !/[\p{L}\p{N}]/u.test(text)) continue;
    const el = n.parentElement;
    if (!el || ['SCRIPT', 'STYLE', 'NOSCRIPT'].includes(el.tagName)) continue;
    const range = document.createRange();
    range.selectNodeContents(n);
    const rect = range.getBoundingClientRect();
    if (rect.width < 1 || rect.height < 1 || !visible(el)) continue;
    check(el, text);
  }
  document.querySelectorAll('input[placeholder], textarea[placeholder]').forEach((el) => {
    if (el.value || !el.placeholder || !visible(el) || el.getBoundingClientRect().width < 1) return;
    check(el, el.placeholder, getComputedStyle(el, '::placeholder').color);
  });
  return results;
}
"""


def contrast(page) -> list[dict]:
    """Every visible text with its contrast ratio and the ratio it needs (3 for large text)."""
    return page.evaluate(CONTRAST_JS)


# Anything a reader would have to scroll sideways to see: the page wider than the window, an
# element sticking out of it, or a box of its own scrolling sideways (text fields aside).
SIDEWAYS_JS = r"""
() => {
  const w = document.documentElement.clientWidth;
  const out = [];
  if (document.documentElement.scrollWidth > w + 1) out.push(`page ${document.documentElement.scrollWidth}px`);
  for (const el of document.body.querySelectorAll('*')) {
    const cs = getComputedStyle(el);
    if (cs.display === 'none' || cs.visibility === 'hidden') continue;
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    let clipped = false;
    for (let p = el.parentElement; p; p = p.parentElement) {
      const pcs = getComputedStyle(p);
      if (pcs.display === 'none') { clipped = true; break; }
    }
    if (clipped) continue;
    const id = `${el.tagName}#${el.id}.${String(el.className).slice(0, 50)}`;
    if (r.right > w + 1 && !el.closest('.sr-only')) out.push(`${id} right=${Math.round(r.right)}`);
    if (['TEXTAREA', 'INPUT', 'SELECT'].includes(el.tagName)) continue;
    if (/(auto|scroll)/.test(cs.overflowX) && el.scrollWidth > el.clientWidth + 1)
      out.push(`${id} scrolls ${el.scrollWidth}/${el.clientWidth}`);
  }
  return out.slice(0, 20);
}
"""


def sideways(page) -> list[str]:
    return page.evaluate(SIDEWAYS_JS)
