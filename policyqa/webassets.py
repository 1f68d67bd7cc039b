"""The page's stylesheet, script, theme and gradio string table, as Python strings.

Kept in a module (not files beside it) so that they install with the package without any
package-data configuration. ``policyqa.webapp`` passes them to ``Blocks.launch`` through
``launch_assets``. Nothing here reads user input or the environment.

Left out: per-document styling (one plan today).
"""

from __future__ import annotations

import json
from typing import Any

import gradio as gr

# Colours are set here rather than taken from gradio's defaults: its subdued grey and its
# emerald-500 buttons are about 2.5:1 on white, below WCAG AA (4.5:1). Light and dark values
# are both given; the page's contrast is checked by tests/test_browser_ui.py.
CSS = """
.gradio-container { max-width: 1320px !important; margin: 0 auto !important; }
.pq-header { padding: 6px 2px 2px; border-bottom: 3px solid #047857; margin-bottom: 4px; }
.pq-header h1 { font-size: 1.55rem; margin: 0 0 4px; font-weight: 700; letter-spacing: .02em; }
.pq-header p { margin: 0 0 8px; color: var(--body-text-color-subdued); font-size: .95rem; }
#pq-sources { max-height: 660px; overflow-y: auto; padding-right: 4px; }
.pq-sources-title { font-weight: 700; font-size: 1.05rem; padding: 2px 0 6px; position: sticky; top: 0;
  background: var(--background-fill-primary); z-index: 1; border-bottom: 1px solid var(--border-color-primary); }
.pq-sources-empty { color: var(--body-text-color-subdued); line-height: 1.8; padding: 10px 2px; }
.pq-turn-q { font-weight: 600; margin: 4px 0 6px; overflow-wrap: anywhere; }
details.pq-turn { margin: 8px 0; }
details.pq-turn > summary { cursor: pointer; color: var(--body-text-color-subdued); overflow-wrap: anywhere; }
.pq-cite, .pq-hit { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 8px 10px;
  margin: 8px 0; background: var(--block-background-fill); transition: box-shadow .3s, border-color .3s;
  overflow-wrap: anywhere; }
.pq-cite.pq-active, .pq-cite:target, .pq-cite:has(.pq-anchor:target) { border-color: #b45309;
  box-shadow: 0 0 0 3px rgba(217,119,6,.35); }
.pq-cite mark.pq-mark-active { outline: 2px solid #b45309; }
.pq-cite-head { display: flex; gap: 6px; align-items: baseline; flex-wrap: wrap; font-size: .85rem; }
.pq-cite-n { font-weight: 700; color: #92400e; }
.dark .pq-cite-n { color: #fbbf24; }
.pq-kind { background: #d1fae5; color: #065f46; border-radius: 4px; padding: 0 6px; font-size: .75rem; }
.pq-label { color: var(--body-text-color-subdued); }
.pq-score { color: var(--body-text-color-subdued); font-size: .75rem; }
.pq-cite-body { margin-top: 4px; line-height: 1.75; font-size: .92rem; white-space: pre-wrap; }
.pq-cite mark, .pq-browse mark, .pq-hits mark, .pq-sources-empty mark { background: #fde68a; color: #1f2937;
  padding: 0 2px; border-radius: 2px; }
.pq-lost { margin-top: 4px; }
.pq-nearest { margin: 2px 0 4px; }
.pq-mini { margin-top: 6px; font-size: .82rem; border-collapse: collapse; }
.pq-mini th, .pq-mini td { border: 1px solid var(--border-color-primary); padding: 2px 6px; }
/* [n] markers are tap targets of at least 24 x 24 px (WCAG 2.2, 2.5.8); inline padding
   enlarges the box without spreading the lines apart */
.pq-sup { vertical-align: super; font-size: .8em; line-height: 0; }
.pq-sup a.pq-marker { display: inline; padding: 6px 6px; margin: 0 -2px; text-decoration: none;
  color: #92400e; font-weight: 700; cursor: pointer; border-radius: 4px; white-space: nowrap; }
.dark .pq-sup a.pq-marker { color: #fbbf24; }
.pq-sup a.pq-marker:hover, .pq-sup a.pq-marker:focus-visible { background: #fde68a; color: #78350f; }
.pq-note { display: inline-block; padding: 3px 8px; border-radius: 6px; font-size: .85rem; }
.pq-note-refusal { background: #fef3c7; color: #78350f; }
.pq-note-fallback, .pq-note-info { background: #e0f2fe; color: #075985; }
.pq-note-warn { background: #fee2e2; color: #991b1b; }
.pq-partial { background: #fef3c7; color: #78350f; border-left: 4px solid #b45309; border-radius: 6px;
  padding: 6px 10px; margin-bottom: 6px; font-size: .9rem; }
.pq-partial-tag { display: inline-block; background: #b45309; color: #fff; font-weight: 700; border-radius: 4px;
  padding: 0 6px; margin-right: 8px; }
.pq-foot { color: var(--body-text-color-subdued); font-size: .78rem; }
.pq-muted { color: var(--body-text-color-subdued); font-size: .85rem; }
.pq-browse { line-height: 1.85; overflow-wrap: anywhere; }
.pq-unit { margin: 6px 0 10px; }
.pq-unit p { margin: 0; }
.pq-crumbs { font-size: .82rem; color: var(--body-text-color-subdued); margin-bottom: 6px; }
.pq-unit-label { font-size: .75rem; color: var(--body-text-color-subdued); }
.pq-colhead { font-weight: 700; background: #ecfdf5; color: #065f46; padding: 4px 8px; border-radius: 6px;
  margin: 12px 0 6px; }
.pq-footnote { font-size: .82rem; color: var(--body-text-color-subdued); }
.pq-table { border-collapse: collapse; width: 100%; font-size: .88rem; margin: 6px 0; }
.pq-table th, .pq-table td { border: 1px solid var(--border-color-primary); padding: 3px 6px; }
.pq-table th { background: #ecfdf5; color: #065f46; }
.pq-hits-head { color: var(--body-text-color-subdued); font-size: .85rem; margin: 4px 0; }
.pq-ex-label { color: var(--body-text-color-subdued); font-size: .85rem; margin: 2px 0 -6px; }
.pq-examples button { font-size: .85rem !important; }
#pq-count { font-size: .8rem; color: var(--body-text-color-subdued); text-align: right; min-height: 1.2em;
  margin: 0 4px 6px; }
#pq-count.pq-over { color: #b91c1c; font-weight: 700; }
.dark #pq-count.pq-over { color: #fca5a5; }
#pq-feedback-status { min-height: 1.2em; }
#pq-chapter label { width: 100%; white-space: normal; line-height: 1.4; }
#pq-chapter .wrap { flex-direction: column; gap: 4px; }
#pq-chapter span, #pq-part span { white-space: normal; overflow: visible; text-overflow: clip; }
/* An empty chat is a short box, so the examples below it are on the first screen. */
#pq-chat:not(:has(.message)) { height: 240px !important; }
/* A partly covered answer: an amber edge on its bubble as well as the labelled note. */
#pq-chat .bot > .message:has(.pq-partial) { border-left: 4px solid #b45309 !important; padding-left: 10px !important; }
/* Phones: no fixed-height empty chat box, no wide tables (a row becomes a small card). */
/* the selected tab's emerald-500 label is 2.5:1 on white */
.tab-container button.selected, button[role="tab"].selected { color: #047857 !important; }
.dark .tab-container button.selected, .dark button[role="tab"].selected { color: #6ee7b7 !important; }
@media (max-width: 640px) {
  .pq-header h1 { font-size: 1.2rem; }
  .pq-header p { font-size: .85rem; }
  #pq-chat { height: auto !important; min-height: 140px; max-height: 70vh; }
  #pq-chat:not(:has(.message)) { height: 160px !important; }  /* overrides the 240 px above */
  #pq-sources { max-height: none; }
  .pq-table thead { display: none; }
  .pq-table, .pq-table tbody, .pq-table tr, .pq-table td { display: block; width: 100%; box-sizing: border-box; }
  .pq-table tr { border: 1px solid var(--border-color-primary); border-radius: 6px; margin: 8px 0; padding: 4px 6px; }
  .pq-table td { border: none; padding: 1px 0; }
  .pq-table td.pq-blank { display: none; }
  .pq-table td::before { content: attr(data-label) "："; color: var(--body-text-color-subdued); font-size: .8rem; }
}
"""

# Strings gradio's chatbot writes in English whatever the locale (they are not in its i18n
# tables): the page script rewrites them. The ones that are in its tables go through
# ``I18N`` below.
ENGLISH_LABELS = {
    "Copy message": "复制这条消息",
    "Copied message": "已复制",
    "Copy conversation": "复制全部对话",
    "Copied conversation": "已复制",
    "Scroll down": "回到最新消息",
    "Loading content": "正在加载",
    "Loading response": "正在生成回答",
    "Clear": "清空对话",
    "Like": "有帮助",
    "Dislike": "没帮助",
    "Retry": "重试",
    "Undo": "撤销",
    "Edit": "编辑",
    "Share": "分享",
    "Chatbot": "对话",
    "chatbot conversation": "对话记录",
    "More tabs": "更多标签页",
    "Gradio footer navigation": "页脚链接",
}

# Page script. Markers are <a href="#cite-T-N">: without JS the anchor jumps and :target
# highlights; with it, a click opens a folded turn, marks the card and its quote and scrolls
# only the 出处 panel. Long answers: the chat is not auto-scrolled to its end (the start of an
# answer is what people read first); the script brings the latest question to the top.
JS = r"""
() => {
  const LABELS = __LABELS__;
  const MAX = __MAX__;
  const activate = (id) => {
    const target = document.getElementById(id);
    if (!target) return false;
    const el = target.closest('.pq-cite') || target;
    const det = el.closest('details');
    if (det) det.open = true;
    document.querySelectorAll('.pq-cite.pq-active').forEach((x) => x.classList.remove('pq-active'));
    document.querySelectorAll('mark.pq-mark-active').forEach((x) => x.classList.remove('pq-mark-active'));
    el.classList.add('pq-active');
    const n = id.split('-').pop();
    el.querySelectorAll('mark').forEach((m) => {
      const ns = [m.dataset.n, ...(m.dataset.also || '').split(' ')];
      if (ns.includes(n)) m.classList.add('pq-mark-active');
    });
    el.scrollIntoView({ behavior: 'smooth', block: 'nearest' });
    return true;
  };
  document.addEventListener('click', (e) => {
    const a = e.target && e.target.closest ? e.target.closest('a[href^="#cite-"]') : null;
    if (!a) return;
    e.preventDefault();
    e.stopPropagation();
    activate(a.getAttribute('href').slice(1));
  }, true);

  // gradio labels each message "user's message: <its raw markup>"
  const PREFIXES = [["user's message: ", '提问：'], ["bot's message: ", '回答：']];
  const translate = () => {
    document.querySelectorAll('[aria-label], [title]').forEach((el) => {
      for (const attr of ['aria-label', 'title']) {
        const v = el.getAttribute(attr);
        if (!v) continue;
        if (LABELS[v]) { el.setAttribute(attr, LABELS[v]); continue; }
        for (const [en, zh] of PREFIXES) {
          if (v.startsWith(en)) {
            const words = el.textContent.replace(/\s+/g, ' ').trim().slice(0, 200);
            el.setAttribute(attr, zh + words);
          }
        }
      }
    });
    document.querySelectorAll('.sr-only, button span').forEach((el) => {
      const v = el.textContent.trim();
      if (el.children.length === 0 && LABELS[v]) el.textContent = LABELS[v];
    });
  };

  const count = () => {
    const box = document.querySelector('#pq-input textarea');
    const out = document.getElementById('pq-count');
    if (!box || !out) return;
    const n = box.value.length;
    const text = n === 0 ? '' : (n > MAX ? `已输入 ${n} 字，超出上限 ${MAX} 字，请精简后再发送` : `${n} / ${MAX} 字`);
    if (out.textContent !== text) out.textContent = text;
    out.classList.toggle('pq-over', n > MAX);
  };
  document.addEventListener('input', count, true);

  let lastTurn = null;
  const showLatest = () => {
    const chat = document.getElementById('pq-chat');
    if (!chat) return;
    const users = chat.querySelectorAll('.message.user, [data-testid="user"]');
    const last = users[users.length - 1];
    const key = users.length;
    if (!last) { lastTurn = null; return; }  // cleared: the next question is new again
    if (key === lastTurn) return;
    lastTurn = key;
    let box = last.parentElement;
    while (box && box !== chat && !(box.scrollHeight > box.clientHeight + 2 &&
           getComputedStyle(box).overflowY.match(/auto|scroll/))) box = box.parentElement;
    if (!box || box === chat) return;
    const top = last.getBoundingClientRect().top - box.getBoundingClientRect().top + box.scrollTop;
    box.scrollTop = Math.max(0, top - 8);
  };

  let queued = false;
  new MutationObserver(() => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => { queued = false; translate(); count(); showLatest(); });
  }).observe(document.body, { childList: true, subtree: true, characterData: true, attributes: true,
                               attributeFilter: ['aria-label', 'title'] });
  setInterval(count, 300);  // the box is also set by the page itself (examples, clearing)
}
"""


def page_js(max_chars: int) -> str:
    """The page script with its data filled in (JSON: no user text ever enters it)."""
    return JS.replace("__LABELS__", json.dumps(ENGLISH_LABELS, ensure_ascii=False)).replace(
        "__MAX__", str(int(max_chars))
    )


# gradio's own strings that are in its i18n tables, in Chinese for every browser language
# gradio ships (the page is Chinese whatever the browser's language; zh-CN's own table lacks
# some chatbot keys, which would otherwise fall back to English).
GRADIO_LOCALES = (
    "ca de en es et eu fa fr he id ja ko lt nb pt-BR pt ro ru sv ta th tr uk ur uz zh zh-CN zh-TW"
).split()
_I18N_ZH = {
    "chatbot.copy_message": "复制这条消息",
    "chatbot.copied_message": "已复制",
    "chatbot.clear": "清空对话",
    "chatbot.like": "有帮助",
    "chatbot.dislike": "没帮助",
    "chatbot.retry": "重试",
    "chatbot.undo": "撤销",
    "chatbot.edit": "编辑",
    "chatbot.submit": "发送",
    "chatbot.cancel": "取消",
    "common.clear": "清空",
    "common.copy": "复制",
    "common.loading": "加载中",
    "common.download": "下载",
    "common.settings": "设置",
    "common.built_with_gradio": "基于 Gradio 构建",
    "errors.use_via_api": "通过 API 使用",
    "errors.use_via_api_or_mcp": "通过 API 或 MCP 使用",
    "upload_text.click_to_upload": "点击上传",
    "dropdown.no_options": "没有可选项",
}


def i18n() -> Any:
    return gr.I18n(**dict.fromkeys(GRADIO_LOCALES, _I18N_ZH))


def theme() -> Any:
    cjk = ["PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", "WenQuanYi Micro Hei", "sans-serif"]
    return gr.themes.Default(
        primary_hue="emerald",
        neutral_hue="slate",
        font=[gr.themes.LocalFont("Source Sans Pro"), *cjk],
    ).set(
        body_text_color_subdued="*neutral_600",
        body_text_color_subdued_dark="*neutral_300",
        block_info_text_color="*neutral_600",
        block_info_text_color_dark="*neutral_300",
        input_placeholder_color="*neutral_500",
        input_placeholder_color_dark="*neutral_400",
        button_primary_background_fill="*primary_700",
        button_primary_background_fill_hover="*primary_800",
        button_primary_background_fill_dark="*primary_700",
        button_primary_background_fill_hover_dark="*primary_800",
        button_primary_text_color="white",
        button_primary_text_color_dark="white",
    )
