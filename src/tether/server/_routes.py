"""The tenant API: OpenAI-compatible chat completions and models, the scan API, and the
tenant's own events and feedback. The tenant is always the API key's; nothing in a request
can name another."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tether.guards import GuardContext, run_guards
from tether.messages import Message
from tether.pipeline import GuardedResponse, StreamChunk, decide
from tether.store import ApiKey

from ._errors import ApiError, error_body, to_api_error
from ._gateway import Gateway, TenantRuntime
from ._schemas import ChatCompletionRequest, FeedbackIn, InMessage, ScanRequest

__all__ = ["gateway_of", "router"]

router = APIRouter()
_bearer = HTTPBearer(auto_error=False, description="A tenant's API key.")
_FINISH = {
    "allow": "stop",
    "redact": "stop",
    "block": "content_filter",
    "escalate": "content_filter",
}


def gateway_of(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


async def tenant_key(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ApiKey:
    token = credentials.credentials if credentials else None
    key = await gateway_of(request).auth.tenant_key(token)
    request.state.tenant = key.tenant  # for the request metrics
    return key


TenantKey = Annotated[ApiKey, Depends(tenant_key)]


@router.post("/v1/chat/completions", tags=["openai"], summary="A guarded chat completion")
async def chat_completions(body: ChatCompletionRequest, request: Request, key: TenantKey) -> Any:
    """OpenAI's chat completion, guarded by the tenant's policy. A blocked turn answers with
    the policy's refusal as the assistant message (``finish_reason: content_filter``); the
    extra ``tether`` field says what the guards did and names the turn's event. Streams (SSE)
    release text only once the output guards have passed it."""
    gateway = gateway_of(request)
    runtime = gateway.runtime(key.tenant)
    if body.model not in runtime.model_ids():
        raise ApiError(
            404,
            f"the model {body.model!r} does not exist for this tenant; "
            f"use one of: {', '.join(runtime.model_ids())}",
            param="model",
            code="model_not_found",
        )
    await gateway.admit(key, body.user)
    messages = [_message(m) for m in body.messages]
    conversation = request.headers.get("x-tether-conversation") or (body.metadata or {}).get(
        "conversation_id"
    )
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    client_tools = _client_tools(body, messages)
    if body.stream and client_tools is None:
        return await _stream(runtime, messages, body, conversation, include_usage)
    response = await runtime.rails.chat(
        messages, user=body.user, conversation_id=conversation, client_tools=client_tools
    )
    if body.stream:  # with tools: the whole turn is decided first, then sent as one stream
        return _replay(response, body.model, include_usage)
    return JSONResponse(_completion(response, body.model))


def _client_tools(
    body: ChatCompletionRequest, messages: list[Message]
) -> list[dict[str, Any]] | None:
    """The client's tools as the pipeline takes them; ``[]`` when none are offered but the
    conversation goes on after tool results; None for a plain chat turn."""
    offered = (
        [t.model_dump(exclude_none=True) for t in body.tools]
        if body.tools and body.tool_choice != "none"
        else []
    )
    if offered or messages[-1]["role"] == "tool":
        return offered
    return None


@router.post(
    "/v1/approvals/{approval_id}/resume",
    tags=["approvals"],
    summary="Carry on the turn that waited for this approval",
)
async def resume_approval(request: Request, key: TenantKey, approval_id: str) -> Any:
    """Once a person decided (or the approval timed out), carry on the turn that stopped for
    it, as a chat completion: an approved call of the client's own tools comes back in
    ``tool_calls`` for the client to run; a denied one goes back to the model. Each approval
    resumes once."""
    gateway = gateway_of(request)
    await gateway.admit(key)
    runtime = gateway.runtime(key.tenant)
    response = await runtime.rails.resume(approval_id)
    return JSONResponse(_completion(response, runtime.policy.name))


def _message(message: InMessage) -> Message:
    role = "system" if message.role == "developer" else message.role
    out: Message = {"role": role, "content": message.text()}
    if message.name is not None:
        out["name"] = message.name
    if message.tool_call_id is not None:
        out["tool_call_id"] = message.tool_call_id
    if message.tool_calls:
        out["tool_calls"] = [c.model_dump() for c in message.tool_calls]
    return out


def _tool_calls(response: GuardedResponse) -> list[dict[str, Any]]:
    return [
        {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
        for c in response.client_tool_calls
    ]


def _finish_reason(response: GuardedResponse) -> str:
    if response.client_tool_calls:
        return "tool_calls"
    return _FINISH.get(response.action, "stop")


def _tether(response: GuardedResponse) -> dict[str, Any]:
    return {
        "event_id": response.event_id,
        "action": response.action,
        "policy_version": response.policy_version,
        "flagged": [
            {
                "guard": v.guard,
                "stage": v.stage,
                "category": v.category,
                "score": v.score,
                "action": v.action,
                "reason": v.reason,
            }
            for v in response.flagged
        ],
        "actions": [a.model_dump(mode="json") for a in response.actions],
        "tool_calls": [r.model_dump(mode="json") for r in response.tool_calls],
        "pending_approval": response.pending_approval,
    }


def _usage(response: GuardedResponse) -> dict[str, int]:
    return {
        "prompt_tokens": response.usage.prompt_tokens,
        "completion_tokens": response.usage.completion_tokens,
        "total_tokens": response.usage.total_tokens,
    }


def _completion(response: GuardedResponse, model: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{response.event_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": response.text,
                    "refusal": None,
                    **({"tool_calls": _tool_calls(response)} if response.client_tool_calls else {}),
                },
                "logprobs": None,
                "finish_reason": _finish_reason(response),
            }
        ],
        "usage": _usage(response),
        "tether": _tether(response),
    }


async def _stream(
    runtime: TenantRuntime,
    messages: list[Message],
    body: ChatCompletionRequest,
    conversation: str | None,
    include_usage: bool,
) -> Any:
    pieces = aiter(runtime.rails.stream(messages, user=body.user, conversation_id=conversation))
    # The first piece comes before the answer starts: a request the pipeline refuses, or an
    # upstream that fails at once, still gets a proper HTTP error rather than a broken stream.
    first = await anext(pieces)
    if first.done and first.finish_reason == "error" and first.response is not None:
        await _close(pieces)
        raise ApiError(
            502,
            "the upstream model failed before answering; the turn is recorded as event "
            f"{first.response.event_id}",
            code="upstream_error",
        )
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())

    def frame(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        chunk = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": body.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            **extra,
        }
        return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"

    async def sse() -> AsyncIterator[str]:
        chunk: StreamChunk = first
        try:
            yield frame({"role": "assistant", "content": ""})
            while True:
                if chunk.text:
                    yield frame({"content": chunk.text})
                if chunk.done:
                    break
                chunk = await anext(pieces)
            response = chunk.response
            if chunk.finish_reason == "error" or response is None:
                event = f" (event {response.event_id})" if response is not None else ""
                error = ApiError(502, f"the upstream model failed mid-answer{event}")
                yield f"data: {json.dumps(error_body(error))}\n\n"
                return  # as OpenAI does: an error ends the stream, with no [DONE]
            yield frame({}, _FINISH.get(response.action, "stop"), tether=_tether(response))
            if include_usage:
                usage_chunk = {
                    "id": completion_id,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": body.model,
                    "choices": [],
                    "usage": _usage(response),
                }
                yield f"data: {json.dumps(usage_chunk)}\n\n"
            yield "data: [DONE]\n\n"
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # headers are sent: the error can only go in the stream
            yield f"data: {json.dumps(error_body(to_api_error(exc)))}\n\n"
        finally:
            await _close(pieces)

    return StreamingResponse(
        sse(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _replay(response: GuardedResponse, model: str, include_usage: bool) -> StreamingResponse:
    """A decided turn as an OpenAI stream: the text, then the tool calls, then the finish."""
    completion_id = f"chatcmpl-{response.event_id}"
    created = int(time.time())

    def frame(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        chunk = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            **extra,
        }
        return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"

    def frames() -> list[str]:
        out = [frame({"role": "assistant", "content": ""})]
        if response.text:
            out.append(frame({"content": response.text}))
        for index, call in enumerate(_tool_calls(response)):
            out.append(frame({"tool_calls": [{"index": index, **call}]}))
        out.append(frame({}, _finish_reason(response), tether=_tether(response)))
        if include_usage:
            usage = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [],
                "usage": _usage(response),
            }
            out.append(f"data: {json.dumps(usage)}\n\n")
        out.append("data: [DONE]\n\n")
        return out

    async def sse() -> AsyncIterator[str]:
        for piece in frames():
            yield piece

    return StreamingResponse(
        sse(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _close(pieces: AsyncIterator[StreamChunk]) -> None:
    closer = getattr(pieces, "aclose", None)
    if closer is not None:
        await closer()


@router.get("/v1/models", tags=["openai"], summary="The models this key may name")
async def list_models(request: Request, key: TenantKey) -> dict[str, Any]:
    """A request's ``model`` is the tenant's policy name or its upstream model's name."""
    runtime = gateway_of(request).runtime_or_none(key.tenant)
    ids = runtime.model_ids() if runtime is not None else []
    return {
        "object": "list",
        "data": [{"id": i, "object": "model", "created": 0, "owned_by": "tether"} for i in ids],
    }


@router.post("/v1/scan", tags=["scan"], summary="Run the tenant's guards on texts")
async def scan(body: ScanRequest, request: Request, key: TenantKey) -> dict[str, Any]:
    """The verdicts of the tenant's input (or output) guards on each text, and the action they
    decide; no model is called and no event is recorded."""
    gateway = gateway_of(request)
    runtime = gateway.runtime(key.tenant)
    await gateway.admit(key)
    resolved = runtime.rails.resolve(None)
    guards = resolved.guards.input if body.stage == "input" else resolved.guards.output
    if body.guards is not None:
        known = {g.config.key for g in guards} | {g.config.guard for g in guards}
        unknown = [name for name in body.guards if name not in known]
        if unknown:
            raise ApiError(
                400,
                f"the tenant's policy has no {body.stage} guard {', '.join(map(repr, unknown))}; "
                f"it has: {', '.join(sorted(g.config.key for g in guards)) or 'none'}",
                param="guards",
            )
        guards = tuple(g for g in guards if {g.config.key, g.config.guard} & set(body.guards))
    texts = [body.input] if isinstance(body.input, str) else body.input
    metadata: dict[str, Any] = {"policy": runtime.policy, "model": runtime.model}
    if body.stage == "output":
        metadata["system_prompt"] = resolved.prompt.system
    results = []
    for text in texts:
        ctx = GuardContext(
            stage=body.stage,
            messages=({"role": "user", "content": text},),
            tenant=key.tenant,
            policy_version=runtime.version,
            metadata=metadata,
        )
        verdicts = await run_guards(guards, text, ctx)
        results.append(
            {
                "flagged": any(v.flagged for v in verdicts),
                "action": decide(verdicts).action,
                "verdicts": [v.model_dump(mode="json", exclude={"rewrite"}) for v in verdicts],
            }
        )
    return {
        "object": "scan",
        "stage": body.stage,
        "policy_version": runtime.version,
        "results": results,
    }


@router.get("/v1/events", tags=["audit"], summary="This tenant's recent events")
async def list_events(
    request: Request,
    key: TenantKey,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    action: Annotated[str | None, Query(max_length=16)] = None,
) -> dict[str, Any]:
    gateway = gateway_of(request)
    await gateway.admit(key)
    await gateway.sink.flush()  # read your own writes: include events still buffered
    found = await asyncio.to_thread(
        gateway.store.list_events, key.tenant, limit=limit, action=action
    )
    return {"object": "list", "data": [e.model_dump(mode="json") for e in found]}


@router.get("/v1/events/{event_id}", tags=["audit"], summary="One of this tenant's events")
async def get_event(request: Request, key: TenantKey, event_id: str) -> dict[str, Any]:
    gateway = gateway_of(request)
    await gateway.admit(key)
    await gateway.sink.flush()
    event = await asyncio.to_thread(gateway.store.get_event, key.tenant, event_id)
    if event is None:
        raise ApiError(404, f"this tenant has no event {event_id!r}", code="event_not_found")
    return event.model_dump(mode="json")


@router.post("/v1/feedback", tags=["audit"], status_code=201, summary="Rate an answer")
async def add_feedback(body: FeedbackIn, request: Request, key: TenantKey) -> dict[str, Any]:
    gateway = gateway_of(request)
    await gateway.admit(key)
    await gateway.sink.flush()  # the event may still be on its way to the store
    saved = await asyncio.to_thread(
        gateway.store.add_feedback,
        key.tenant,
        body.event_id,
        rating=body.rating,
        comment=body.comment,
        corrected=body.corrected,
    )
    if saved is None:
        raise ApiError(
            404,
            f"this tenant has no event {body.event_id!r}",
            param="event_id",
            code="event_not_found",
        )
    return saved.model_dump(mode="json")
