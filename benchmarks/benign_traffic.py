"""Generated benign HTTP/1.1 traffic: what a web shop and its API see from browsers and apps.

`make_benign_request(rng, index)` and `make_benign_response(rng)` plug into
`reassembly_generate.Connection` (the full-pipeline benchmark uses them). Requests vary in
method (GET, POST form and JSON, PUT, PATCH, DELETE), path, query, headers (cookies, bearer
JWTs, referers, browsers and mobile apps) and bodies with the free text real users type
(apostrophes in names, ampersands, URLs, slashes); responses are HTML or JSON, with a
Content-Length or chunked, and 204/304 without a body.
"""

from __future__ import annotations

import base64
import json
import random
from urllib.parse import quote, urlencode

__all__ = ["make_benign_request", "make_benign_response"]

HOSTS = ("shop.example.com", "api.example.com", "www.example.com")
USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_3) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.3 Safari/605",
    "Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "ShopApp/4.12.1 (Android 14; Pixel 8)",
    "okhttp/4.12.0",
)
SEARCHES = (
    "running shoes",
    "o'reilly python cookbook",
    "rock & roll t-shirt",
    "c++ primer 5th edition",
    "1/2 inch copper pipe",
    "select comfort mattress",
    "union jack flag",
    'drop-in sink 33"',
    "kids' rain boots",
    "usb-c to hdmi (4k)",
    "script writing for dummies",
    "café au lait mugs",
    "50% off",
    "where is my order?",
)
NAMES = ("Alice Martin", "Seán O'Brien", "Zoë Müller", "D'Angelo Smith", "Ana-María López", "Li Wei", "J.R. Hartley")
NOTES = (
    "Please leave the parcel at the back door, thanks!",
    "Gift wrap if possible -- it's for my mum's 60th",
    "Call me at +44 20 7946 0958 before 5pm",
    "Ring twice; the bell's broken. Flat 3/B",
    "No rush :)",
    "Deliver to reception (Building #2, 3rd floor)",
    "",
)
STREETS = ("12 Main St.", "221B Baker Street", "1600 Amphitheatre Pkwy", "Rue de l'Église 5", "Calle 10 #4-32")
WEBSITES = ("https://example.org/~alice", "https://blog.example.net/posts/2024/01/hello-world", "")
CATEGORIES = ("shoes", "books", "home-garden", "electronics", "kids", "sale")


def _jwt(rng: random.Random) -> str:
    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value, separators=(",", ":")).encode()).rstrip(b"=").decode()

    claims = {"sub": str(rng.randrange(10**6)), "name": rng.choice(NAMES), "iat": 1_700_000_000, "scope": "shop"}
    signature = base64.urlsafe_b64encode(rng.randbytes(32)).rstrip(b"=").decode()
    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}.{signature}"


def _common_headers(rng: random.Random, host: str) -> list[tuple[str, str]]:
    headers = [
        ("Host", host),
        ("User-Agent", rng.choice(USER_AGENTS)),
        ("Accept-Language", rng.choice(("en-US,en;q=0.9", "de-DE,de;q=0.8,en;q=0.5", "fr-FR"))),
        ("Accept-Encoding", "gzip, deflate, br"),
    ]
    if rng.random() < 0.7:
        cookie = f"session={rng.randbytes(16).hex()}; _ga=GA1.2.{rng.randrange(10**9)}.{rng.randrange(10**9)}"
        if rng.random() < 0.3:
            cookie += "; consent=" + quote('{"analytics":true,"ads":false}')
        headers.append(("Cookie", cookie))
    if rng.random() < 0.5:
        headers.append(("Referer", f"https://{host}/{rng.choice(CATEGORIES)}?page={rng.randrange(1, 9)}"))
    return headers


def _head(method: str, target: str, headers: list[tuple[str, str]]) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", *(f"{name}: {value}" for name, value in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _with_body(
    method: str, target: str, headers: list[tuple[str, str]], content_type: str, body: bytes
) -> tuple[bytes, str, str, int]:
    headers = [*headers, ("Content-Type", content_type), ("Content-Length", str(len(body)))]
    return _head(method, target, headers) + body, method, target, len(body)


def make_benign_request(rng: random.Random, index: int) -> tuple[bytes, str, str, int]:
    """One benign request: (wire bytes, method, target, body length). Targets never equal
    `/`, and carry the index in the connection, so no two requests of one connection share one."""
    host = rng.choice(HOSTS)
    headers = _common_headers(rng, host)
    kind = rng.random()
    if kind < 0.35:
        query = urlencode(
            {"q": rng.choice(SEARCHES), "sort": rng.choice(("price", "rating", "new")), "page": index + 1}
        )
        target = f"/{rng.choice(CATEGORIES)}/search?{query}"
        return _head("GET", target, [*headers, ("Accept", "text/html,application/xhtml+xml")]), "GET", target, 0
    if kind < 0.5:
        asset = rng.choice(("js/app.{}.js", "css/site.{}.css", "img/p{}.webp"))
        target = "/static/" + asset.format(f"{rng.randrange(16**8):08x}") + f"?v={index}"
        return _head("GET", target, [*headers, ("Accept", "*/*")]), "GET", target, 0
    api_headers = [*headers, ("Accept", "application/json"), ("Authorization", f"Bearer {_jwt(rng)}")]
    user = rng.randrange(10**6)
    if kind < 0.62:
        target = f"/api/v1/users/{user}/orders?limit=20&offset={20 * index}&status=shipped"
        return _head("GET", target, api_headers), "GET", target, 0
    if kind < 0.72:
        form = {"username": f"user{user}", "password": rng.randbytes(9).hex(), "remember": "on", "next": "/account"}
        target = f"/login?attempt={index}"
        return _with_body("POST", target, headers, "application/x-www-form-urlencoded", urlencode(form).encode())
    if kind < 0.84:
        order = {
            "items": [
                {"sku": f"SKU-{rng.randrange(10**5)}", "qty": rng.randrange(1, 4)} for _ in range(rng.randrange(1, 5))
            ],
            "shipping": {
                "name": rng.choice(NAMES),
                "street": rng.choice(STREETS),
                "zip": f"{rng.randrange(10**5):05d}",
            },
            "note": rng.choice(NOTES),
            "coupon": rng.choice(("", "SPRING24", "WELCOME-10")),
        }
        target = f"/api/v1/orders?client=web&n={index}"
        return _with_body("POST", target, api_headers, "application/json", json.dumps(order).encode())
    if kind < 0.92:
        profile = {"display_name": rng.choice(NAMES), "website": rng.choice(WEBSITES), "bio": rng.choice(NOTES)}
        target = f"/api/v1/users/{user}/profile"
        return _with_body(
            rng.choice(("PUT", "PATCH")), target, api_headers, "application/json", json.dumps(profile).encode()
        )
    if kind < 0.97:
        review = {"rating": str(rng.randrange(1, 6)), "title": rng.choice(SEARCHES), "text": rng.choice(NOTES)}
        target = f"/products/{rng.randrange(10**5)}/reviews"
        return _with_body("POST", target, headers, "application/x-www-form-urlencoded", urlencode(review).encode())
    target = f"/api/v1/cart/items/{rng.randrange(10**6)}"
    return _head("DELETE", target, api_headers), "DELETE", target, 0


_PAGE = b"<!doctype html><html><head><title>Shop</title></head><body>" + b"<div class=item>Item</div>\n" * 300


def make_benign_response(rng: random.Random) -> tuple[bytes, int]:
    """A response: HTML or JSON with a Content-Length, sometimes chunked; 204 and 304 bodiless."""
    kind = rng.random()
    if kind < 0.05:
        return b'HTTP/1.1 304 Not Modified\r\nETag: "abc"\r\n\r\n', 304
    if kind < 0.1:
        return b"HTTP/1.1 204 No Content\r\n\r\n", 204
    if kind < 0.5:
        items = [{"id": rng.randrange(10**6)} for _ in range(rng.randrange(0, 30))]
        document = json.dumps({"ok": True, "items": items}).encode()
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(document)}\r\n\r\n"
        return head.encode() + document, 200
    status = rng.choice((200, 200, 200, 404, 302))
    body = _PAGE[: rng.randrange(200, len(_PAGE))]
    if rng.random() < 0.3:
        chunks = b"".join(
            b"%x\r\n%s\r\n" % (len(body[i : i + 4000]), body[i : i + 4000]) for i in range(0, len(body), 4000)
        )
        head = f"HTTP/1.1 {status} X\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n"
        return head.encode() + chunks + b"0\r\n\r\n", status
    head = f"HTTP/1.1 {status} X\r\nContent-Type: text/html\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body, status
