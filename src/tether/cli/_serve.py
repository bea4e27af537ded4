"""`tether serve`: the gateway."""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.markup import escape

from tether.errors import ConfigError

from ._common import console, handle_errors

if TYPE_CHECKING:
    from tether.server import GatewayConfig
    from tether.store import Store

__all__ = ["serve"]

# tenant → (policy file under examples/, overlay)
_DEMO_TENANTS = {
    "northbank": ("bank/policy.yaml", "northbank"),
    "southbank": ("bank/policy.yaml", "southbank"),
    "clinic": ("clinic/policy.yaml", None),
}


@click.command()
@click.option(
    "--config", "config_file", type=click.Path(path_type=Path), help="Gateway config YAML file."
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on.")
@click.option("--db", "db_url", help="Database URL; overrides the config's.")
@click.option(
    "--demo",
    is_flag=True,
    help="The example tenants (northbank, southbank, clinic) on the embedded model, with a "
    "throwaway SQLite database and keys printed once.",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Gateway processes sharing the port. With more than one, set `redis` in the config so "
    "rate limits are shared; /metrics adds up every worker's figures.",
)
@click.option(
    "--log-level",
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    default="info",
    show_default=True,
)
@handle_errors
def serve(
    config_file: Path | None,
    host: str,
    port: int,
    db_url: str | None,
    demo: bool,
    workers: int,
    log_level: str,
) -> None:
    """Run the gateway: an OpenAI-compatible API (/v1/chat/completions, /v1/models), a scan
    API (/v1/scan), an admin API (/admin) and /healthz, /readyz, /metrics. Every API key
    belongs to a tenant, every tenant runs its own policy, every turn is recorded.

    \b
    tether serve --demo
    tether serve --config gateway.yaml --host 0.0.0.0 --port 8080
    """
    try:
        import uvicorn

        from tether.server import CONFIG_ENV, GatewayConfig, create_app, load_gateway_config
        from tether.server._metrics import MULTIPROCESS_ENV
        from tether.store import Store, safe_url
    except ImportError as exc:
        raise ConfigError(
            f"the gateway needs the server extra ({exc.name} is missing): "
            "pip install 'tether[server]'"
        ) from None
    if demo and config_file is not None:
        raise ConfigError("--demo brings its own config; drop --config")
    demo_dir = Path(tempfile.mkdtemp(prefix="tether-demo-")) if demo else None
    cleanup = [demo_dir] if demo_dir is not None else []
    try:
        if demo_dir is not None:
            config, admin_key = _demo_config(demo_dir)
        else:
            config = load_gateway_config(config_file) if config_file else GatewayConfig()
            admin_key = None
        if db_url is not None:
            config = config.model_copy(update={"db": db_url})
        # Fail here, in one line, rather than in the server's start-up with a traceback.
        config.admin_key_hash()
        with Store(config.db) as store:
            if demo_dir is not None and admin_key is not None:
                _demo_keys(store, config, admin_key, host, port)
        console.print(
            f"tether gateway on http://{host}:{port}/v1 · docs http://{host}:{port}/docs · "
            f"events in {escape(safe_url(config.db))}"
        )
        if workers == 1:
            uvicorn.run(create_app(config), host=host, port=port, log_level=log_level)
        else:
            # Each worker process builds its app from the config handed over in the environment,
            # and writes its metrics where /metrics, in any worker, adds them all up.
            os.environ[CONFIG_ENV] = config.model_dump_json()
            metrics_dir = Path(tempfile.mkdtemp(prefix="tether-metrics-"))
            os.environ[MULTIPROCESS_ENV] = str(metrics_dir)
            cleanup.append(metrics_dir)
            uvicorn.run(
                "tether.server:app_from_environment",
                factory=True,
                workers=workers,
                host=host,
                port=port,
                log_level=log_level,
            )
    finally:
        for folder in cleanup:
            shutil.rmtree(folder, ignore_errors=True)


def _examples() -> Path:
    """The examples folder: in the working directory, else beside the source tree."""
    for candidate in (Path.cwd() / "examples", Path(__file__).resolve().parents[3] / "examples"):
        if (candidate / "bank" / "policy.yaml").is_file():
            return candidate
    raise ConfigError(
        "--demo needs tether's examples/ folder; run it from a checkout of the tether repository"
    )


def _demo_config(folder: Path) -> tuple[GatewayConfig, str]:
    from tether.server import GatewayConfig, TenantConfig
    from tether.server._config import hash_admin_key

    examples = _examples()
    admin_key = secrets.token_urlsafe(32)
    config = GatewayConfig(
        db=f"sqlite:///{folder / 'demo.db'}",
        spool_dir=folder / "spool",
        admin_key_sha256=hash_admin_key(admin_key),
        tenants={
            name: TenantConfig(policy=examples / path, overlay=overlay)
            for name, (path, overlay) in _DEMO_TENANTS.items()
        },
    )
    return config, admin_key


def _demo_keys(store: Store, config: GatewayConfig, admin_key: str, host: str, port: int) -> None:
    lines = [f"  {'admin':<10} {admin_key}"]
    first = None
    for name in config.tenants:
        store.ensure_tenant(name)
        made = store.create_key(name, name="demo")
        if made is None:
            raise ConfigError(f"could not create a demo key for {name}")
        lines.append(f"  {name:<10} {made[1]}")
        first = first or made[1]
    console.print("demo keys (shown once; the demo database is deleted on exit):")
    for line in lines:
        console.print(line)
    base = f"http://{host}:{port}/v1"
    console.print(
        "try:\n"
        f"  curl {base}/chat/completions -H 'Authorization: Bearer {first}' "
        '-H \'Content-Type: application/json\' -d \'{"model": "bank-support", '
        '"messages": [{"role": "user", "content": "How do I reset my card PIN?"}]}\'',
        markup=False,
    )
    sys.stdout.flush()
