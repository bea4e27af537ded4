"""The gateway's state: store, event sink, tenants' policies in force, limits, metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tether.errors import StoreError
from tether.models import ChatModel, load_model
from tether.monitor import Monitor, MonitoringConfig, TracingSink, load_monitoring
from tether.pipeline import Event, EventSink, Guardrails
from tether.policy import Policy
from tether.store import ApiKey, PolicyVersion, SinkStats, Store, StoreApprovalStore, StoreSink
from tether.tools import Approval, ApprovalStatus, ApprovalStore

from ._auth import Authenticator
from ._config import GatewayConfig
from ._errors import ApiError
from ._metrics import Metrics
from ._ratelimit import Limit, MemoryRateLimiter, RateLimiter, RedisRateLimiter
from ._upstream import GuardedUpstream

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

__all__ = ["Gateway", "TenantRuntime"]

log = logging.getLogger("tether.server")
# How long stop() waits for a background job to finish its current run.
_STOP_WAIT_S = 30.0


class _TenantSink:
    """Stamps the gateway's tenant on each of its turns' events, counts them, passes them on."""

    def __init__(self, tenant: str, sink: EventSink, metrics: Metrics) -> None:
        self.tenant = tenant
        self.sink = sink
        self.metrics = metrics

    async def emit(self, event: Event) -> None:
        event = event.model_copy(update={"tenant": self.tenant})
        self.metrics.observe_turn(self.tenant, event)
        await self.sink.emit(event)


class _TenantApprovals:
    """A tenant's pipeline's view of the shared approvals store: what it adds is stamped with
    the tenant, and it sees and decides only that tenant's approvals. Inside, the pipeline
    runs the tenant's resolved policy with no tenant of its own, so approvals come back to it
    without one (the store keeps the tenant)."""

    def __init__(self, tenant: str, store: ApprovalStore) -> None:
        self.tenant = tenant
        self.store = store

    @staticmethod
    def _inside(approval: Approval) -> Approval:
        return approval.model_copy(update={"tenant": None})

    async def add(self, approval: Approval) -> None:
        await self.store.add(approval.model_copy(update={"tenant": self.tenant}))

    async def get(self, approval_id: str, *, tenant: str | None) -> Approval:
        return self._inside(await self.store.get(approval_id, tenant=self.tenant))

    async def find(
        self, *, tenant: str | None, status: ApprovalStatus | None = None, limit: int = 100
    ) -> list[Approval]:
        found = await self.store.find(tenant=self.tenant, status=status, limit=limit)
        return [self._inside(a) for a in found]

    async def decide(
        self,
        approval_id: str,
        *,
        tenant: str | None,
        approve: bool,
        approver: str,
        note: str = "",
        arguments: dict[str, Any] | None = None,
    ) -> Approval:
        decided = await self.store.decide(
            approval_id,
            tenant=self.tenant,
            approve=approve,
            approver=approver,
            note=note,
            arguments=arguments,
        )
        return self._inside(decided)

    async def claim(self, approval_id: str, *, tenant: str | None) -> Approval:
        return self._inside(await self.store.claim(approval_id, tenant=self.tenant))


@dataclass(frozen=True, slots=True)
class TenantRuntime:
    """A tenant's policy version in force and the pipeline that runs it."""

    tenant: str
    version_id: int
    version: str
    policy: Policy
    rails: Guardrails
    model: ChatModel

    def model_ids(self) -> list[str]:
        """What a request may name as its ``model``: the policy's name or the upstream's."""
        return list(dict.fromkeys((self.policy.name, self.model.name)))


class Gateway:
    """Everything the routes share. ``models`` maps model specs to ready instances (tests
    hand in scripted fakes this way); other specs are loaded with :func:`load_model`."""

    def __init__(self, config: GatewayConfig, *, models: Mapping[str, ChatModel] | None = None):
        self.config = config
        self.admin_hash = config.admin_key_hash()
        self.metrics = Metrics(self._sink_stats)
        self._given_models = dict(models or {})
        self._models: dict[str, ChatModel] = {}
        self._runtimes: dict[str, TenantRuntime] = {}
        self._install_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self.limiter: RateLimiter = (
            RedisRateLimiter(config.redis, prefix=config.redis_prefix)
            if config.redis
            else MemoryRateLimiter()
        )
        self._store: Store | None = None
        self._approvals: StoreApprovalStore | None = None
        self._sink: StoreSink | None = None
        self._auth: Authenticator | None = None
        self.monitor: Monitor | None = None
        # Where the turns' spans go when ``config.tracing`` is on; default: an OTLP exporter
        # to ``tracing.otlp_endpoint``, else the global provider (tests set one of their own).
        self.tracer_provider: TracerProvider | None = None
        self._own_provider: TracerProvider | None = None
        self._turn_sink: EventSink | None = None

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("the gateway has not started")
        return self._store

    @property
    def approvals(self) -> StoreApprovalStore:
        """Tool calls waiting for a person, shared by every tenant (each sees its own)."""
        if self._approvals is None:
            raise RuntimeError("the gateway has not started")
        return self._approvals

    @property
    def sink(self) -> StoreSink:
        if self._sink is None:
            raise RuntimeError("the gateway has not started")
        return self._sink

    @property
    def auth(self) -> Authenticator:
        if self._auth is None:
            raise RuntimeError("the gateway has not started")
        return self._auth

    def _sink_stats(self) -> SinkStats:
        if self._sink is None:
            return SinkStats(0, 0, 0, 0, 0, available=False)
        return self._sink.stats()

    async def start(self) -> None:
        self._store = await asyncio.to_thread(Store, self.config.db)
        self._approvals = StoreApprovalStore(self._store)
        # Retry the database at least every 5 s while it is down: a connection attempt is cheap,
        # and the spool should drain soon after it is back.
        self._sink = StoreSink(
            self._store, self.config.resolved_spool_dir(), retry_s=0.5, max_retry_s=5.0
        )
        self._auth = Authenticator(
            self._store, cache_s=self.config.auth_cache_s, admin_hash=self.admin_hash
        )
        self._turn_sink = self._tracing(self._sink)
        monitoring = await asyncio.to_thread(self._monitoring)
        await self._seed()
        await self.sync_policies(strict=True)
        self._tasks = [
            asyncio.create_task(self._every(self.config.policy_poll_s, self.sync_policies)),
            asyncio.create_task(
                self._every(self.config.retention_interval_s, self.retention, now=True)
            ),
        ]
        if monitoring is not None:
            self.monitor = Monitor(monitoring, self._store, policies=self._policy_of)
            self._tasks.append(
                asyncio.create_task(
                    self._every(monitoring.evaluate_every.total_seconds(), self.evaluate_alerts)
                )
            )
            if monitoring.drift is not None:
                self._tasks.append(
                    asyncio.create_task(
                        self._every(monitoring.drift.every.total_seconds(), self.check_drift)
                    )
                )

    def _monitoring(self) -> MonitoringConfig | None:
        path = self.config.monitoring
        return None if path is None else load_monitoring(path)

    def _tracing(self, sink: EventSink) -> EventSink:
        """``sink``, wrapped to record each turn as spans when tracing is on."""
        tracing = self.config.tracing
        if not tracing.enabled:
            return sink
        provider = self.tracer_provider
        if provider is None and tracing.otlp_endpoint is not None:
            from tether.monitor import otlp_tracer_provider

            provider = self._own_provider = otlp_tracer_provider(
                tracing.otlp_endpoint, service_name=tracing.service_name
            )
        return TracingSink(sink, tracer_provider=provider, capture_content=tracing.capture_content)

    def _policy_of(self, tenant: str) -> Policy | None:
        found = self._runtimes.get(tenant)
        return found.policy if found is not None else None

    async def evaluate_alerts(self) -> None:
        """One evaluation of the monitoring file's alert rules (run every ``evaluate_every``;
        gateways sharing a database keep one open alert per rule and tenant between them)."""
        if self.monitor is not None:
            await self.sink.flush()
            await self.monitor.tick()

    async def check_drift(self) -> None:
        """The monitoring file's scheduled drift checks (run every ``drift.every``)."""
        if self.monitor is not None:
            await self.monitor.drift_tick()

    async def stop(self) -> None:
        # Background jobs finish the run they are in (a cancelled task would leave its worker
        # thread holding a database connection past the pool's disposal), then stop.
        self._stopping.set()
        if self._tasks:
            _, late = await asyncio.wait(self._tasks, timeout=_STOP_WAIT_S)
            for task in late:
                task.cancel()
            for task in late:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._sink is not None:
            await self._sink.aclose()
        if self._own_provider is not None:
            await asyncio.to_thread(self._own_provider.shutdown)
        for model in {id(m): m for m in self._models.values()}.values():
            closer = getattr(model, "aclose", None)
            if closer is not None:
                await closer()
        await self.limiter.aclose()
        if self._store is not None:
            self._store.close()

    async def _every(self, seconds: float, job: Any, *, now: bool = False) -> None:
        if not now and await self._stopped_within(seconds):
            return
        while True:
            try:
                await job()
            except StoreError as exc:
                log.warning("%s skipped: %s", job.__name__, exc)
            except Exception:
                log.exception("%s failed", job.__name__)
            if await self._stopped_within(seconds):
                return

    async def _stopped_within(self, seconds: float) -> bool:
        """Wait ``seconds``, or less if the gateway stops meanwhile; True if it does."""
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            return False
        return True

    async def _seed(self) -> None:
        """Record each configured tenant and, when its policy file changed since it was last
        recorded (or it has none in force), make the file's version the one in force. An
        unchanged file leaves alone a version uploaded through the admin API."""
        store = self.store
        for name, tenant in self.config.tenants.items():
            policy = await asyncio.to_thread(self.config.load_tenant_policy, name)
            await asyncio.to_thread(store.ensure_tenant, name, retention_days=tenant.retention_days)
            known = {v.version for v in await asyncio.to_thread(store.policy_versions, name)}
            active = await asyncio.to_thread(store.active_policy, name)
            if policy.version not in known or active is None:
                await asyncio.to_thread(
                    store.add_policy_version,
                    name,
                    version=policy.version,
                    policy=policy.model_dump(mode="json"),
                    source=str(tenant.policy),
                )

    async def sync_policies(self, *, strict: bool = False) -> None:
        """Pick up every policy version put in force since the last look (by this gateway or
        another one sharing the database). A version that cannot run is logged and the
        tenant keeps its previous one; with ``strict`` (at start) it is an error."""
        async with self._install_lock:
            active = await asyncio.to_thread(self.store.active_versions)
            for tenant, (version_id, _version) in active.items():
                current = self._runtimes.get(tenant)
                if current is not None and current.version_id == version_id:
                    continue
                found = await asyncio.to_thread(self.store.get_policy_version, tenant, version_id)
                if found is not None:
                    try:
                        await self._install(found)
                    except Exception:
                        if strict:
                            raise
                        log.exception("cannot run %s's policy %s", tenant, found.version)

    async def put_policy(self, tenant: str, policy: Policy, source: str) -> PolicyVersion | None:
        """Record ``policy`` (resolved) as ``tenant``'s policy in force, and run it from the
        next request on; None if there is no such tenant."""
        async with self._install_lock:
            # Built before anything is stored: a policy that cannot run is never put in force.
            built = await asyncio.to_thread(self._runtime_parts, tenant, policy)
            version = await asyncio.to_thread(
                self.store.add_policy_version,
                tenant,
                version=policy.version,
                policy=policy.model_dump(mode="json"),
                source=source,
            )
            if version is not None:
                await self._install(version, built)
            return version

    async def activate(self, tenant: str, version_id: int) -> PolicyVersion | None:
        async with self._install_lock:
            version = await asyncio.to_thread(self.store.activate_policy, tenant, version_id)
            if version is not None:
                await self._install(version)
            return version

    def _runtime_parts(self, tenant: str, policy: Policy) -> tuple[Guardrails, ChatModel]:
        """A pipeline for ``policy``, its guards built (so the first request doesn't wait)."""
        model = self._model(tenant, policy)
        rails = Guardrails(
            policy,
            model=model,
            sink=_TenantSink(tenant, self._turn_sink or self.sink, self.metrics),
            approvals=_TenantApprovals(tenant, self.approvals),
        )
        rails.resolve(None)
        return rails, model

    async def _install(
        self, version: PolicyVersion, built: tuple[Guardrails, ChatModel] | None = None
    ) -> None:
        if built is None:
            policy = Policy.model_validate(version.policy)
            built = await asyncio.to_thread(self._runtime_parts, version.tenant, policy)
        rails, model = built
        previous = self._runtimes.get(version.tenant)
        if previous is not None:
            # Conversations go on across a policy change: keep their pseudonym vaults.
            rails.vaults = previous.rails.vaults
        self._runtimes[version.tenant] = TenantRuntime(
            version.tenant, version.id, version.version, rails.policy, rails, model
        )
        log.info("tenant %s: policy %s in force", version.tenant, version.version)

    def _model(self, tenant: str, policy: Policy) -> ChatModel:
        configured = self.config.tenants.get(tenant)
        spec = (configured.model if configured else None) or self.config.model or policy.model.spec
        if spec not in self._models:
            # Many calls to one upstream are in flight at once here: aiohttp's pool costs a
            # fraction of httpx's CPU per call (tether.models._aiohttp).
            found = self._given_models.get(spec) or load_model(
                spec, timeout_s=policy.model.timeout_s, connection_pool="aiohttp"
            )
            settings = self.config.upstream
            self._models[spec] = GuardedUpstream(
                found,
                timeout_s=settings.timeout_s,
                failures_to_open=settings.failures_to_open,
                open_s=settings.open_s,
            )
        return self._models[spec]

    def runtime(self, tenant: str) -> TenantRuntime:
        found = self._runtimes.get(tenant)
        if found is None:
            raise ApiError(
                409,
                f"tenant {tenant!r} has no policy yet; an administrator uploads one with "
                f"PUT /admin/tenants/{tenant}/policy",
                code="no_policy",
            )
        return found

    def runtime_or_none(self, tenant: str) -> TenantRuntime | None:
        return self._runtimes.get(tenant)

    async def admit(self, key: ApiKey, user: str | None = None) -> None:
        """Apply the rate limits this request falls under; 429 when one is exhausted."""
        limits = self.config.limits
        wanted = []
        if limits.tenant_rpm is not None:
            wanted.append(Limit("tenant", f"t:{key.tenant}", limits.tenant_rpm))
        if limits.key_rpm is not None:
            wanted.append(Limit("key", f"k:{key.id}", limits.key_rpm))
        if limits.user_rpm is not None and user:
            wanted.append(Limit("user", f"u:{key.tenant}:{user}", limits.user_rpm))
        hit = await self.limiter.admit(wanted)
        if hit is None:
            return
        limit, wait = hit
        self.metrics.rate_limited.labels(key.tenant, limit.scope).inc()
        retry = max(1, round(wait + 0.5))
        raise ApiError(
            429,
            f"rate limit reached: {limit.per_minute} requests a minute per {limit.scope}; "
            f"retry in {retry} s",
            code="rate_limit_exceeded",
            headers={"Retry-After": str(retry)},
        )

    async def retention(self) -> None:
        deleted = await asyncio.to_thread(self.store.apply_retention)
        for tenant, count in deleted.items():
            if count:
                log.info("retention: deleted %d events of tenant %s", count, tenant)
