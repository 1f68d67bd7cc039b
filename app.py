"""Start the web app (政策问答).

    python app.py [--host 127.0.0.1] [--port 7860] [--share off|on] [--admin] [--build-index]

Settings come only from the environment (``Settings.from_env()``; see README). The index is
opened once here and shared by every request; without one the app exits with status 2 and says
to run ``policyqa ingest`` (or start with ``--build-index``).

With POLICYQA_CHROMA_URL the app is a replica: it opens the server's current published build (an
empty POLICYQA_HOME is fine), retries with backoff while the server is down or has no build yet
(instead of exiting), and a follower thread switches it to newer builds between requests and
reports it to the server (``policyqa.store.follow``). ``--admin`` adds the 管理 tab and
needs POLICYQA_ADMIN_PASSWORD. The Blocks are built in ``policyqa.webapp``; the plain JSON
routes (``/v1/ask`` …) come from ``policyqa.restapi`` and are served by the same server.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported lazily below: the environment is set before gradio loads
    from policyqa.index import Index
    from policyqa.settings import Settings


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="app.py", description="政策问答网页服务")
    p.add_argument("--host", default="127.0.0.1", help="监听地址（默认 127.0.0.1；对外服务用 0.0.0.0）")
    p.add_argument("--port", type=int, default=7860, help="端口（默认 7860）")
    p.add_argument("--share", choices=("off", "on"), default="off", help="gradio 公网分享链接（默认 off）")
    p.add_argument(
        "--admin", action="store_true", help="管理模式：增加“管理”页（需 POLICYQA_ADMIN_PASSWORD）"
    )
    p.add_argument("--build-index", action="store_true", help="没有可用索引时先构建（读取 kb/）")
    return p.parse_args(argv)


def open_or_build(settings: Settings, *, build: bool) -> Index:
    """Open the live index; with ``build``, build it first when it is missing or stale.

    Done before gradio is imported, so a missing index fails in a few seconds."""
    from policyqa.errors import IndexMismatchError, IndexMissingError
    from policyqa.index import build_index, open_index

    try:
        return open_index(settings)
    except (IndexMissingError, IndexMismatchError) as e:
        if not build:
            raise
        print(f"{e}\n正在构建索引（--build-index）…", file=sys.stderr, flush=True)
        build_index(settings, progress=lambda m: print(m, file=sys.stderr, flush=True))
        return open_index(settings)


def fail(message: str) -> int:
    print(f"无法启动：{message}", file=sys.stderr, flush=True)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before gradio is imported: no phoning home
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "bm25s"):  # one line per HTTP request / index load otherwise
        logging.getLogger(noisy).setLevel(logging.WARNING)

    from policyqa.errors import PolicyQAError
    from policyqa.settings import Settings

    settings = Settings.from_env()
    if args.admin and not settings.admin_password:
        return fail("管理模式需要口令：请设置环境变量 POLICYQA_ADMIN_PASSWORD 后再用 --admin 启动。")

    try:
        if settings.chroma_url:
            from policyqa.store.follow import open_with_retry

            index = open_with_retry(
                settings,
                lambda: open_or_build(settings, build=args.build_index),
                say=lambda m: print(m, file=sys.stderr, flush=True),
            )
        else:
            index = open_or_build(settings, build=args.build_index)
    except PolicyQAError as e:
        hint = "" if args.build_index else "（或用 `python app.py --build-index` 在启动时构建）"
        return fail(f"{e}{hint}")
    except KeyboardInterrupt:
        return fail("已中断。")

    from policyqa.retrieve import warm

    warm(index)
    from policyqa.llm import chat_model_from_settings
    from policyqa.restapi import Admission, routes
    from policyqa.webapp import AppState, build_app, launch_assets

    state = AppState(settings=settings, index=index, llm=chat_model_from_settings(settings), admin=args.admin)
    logging.getLogger("policyqa.app").info(
        "index %s opened; mode=%s; llm=%s",
        index.build_id,
        "admin" if args.admin else "public",
        "on" if state.llm is not None else "off (extractive)",
    )
    follower = None
    if settings.chroma_url:
        from policyqa.store.follow import Follower, replica_name

        follower = Follower(settings, state, name=replica_name(args.port), on_switch=warm)
        follower.poll_once()  # report the build now, and catch one published while we started
        follower.start()
    demo = build_app(state)
    # Bounds on concurrent work (POLICYQA_CONCURRENCY, POLICYQA_QUEUE_MAX): a burst waits in a
    # queue instead of exhausting CPU or memory; beyond the queue it is turned away as busy.
    demo.queue(default_concurrency_limit=settings.concurrency, max_size=settings.queue_max)
    admission = Admission(settings.concurrency, settings.queue_max)
    demo.launch(
        server_name=args.host,
        server_port=args.port,
        share=args.share == "on",
        footer_links=["api"],
        show_error=False,
        # the plain JSON routes (/v1/...) go first in gradio's FastAPI app
        app_kwargs={"routes": routes(state, admission, follower)},
        **launch_assets(state),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
