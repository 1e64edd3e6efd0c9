"""Media links → CyTube media references (type + id).

CyTube's playlist ``queue`` message carries a media *type* (two letters) and an
*id*; its web client derives both from the link a user pastes
(``parseMediaLink`` in calzoneman/sync ``www/js/util.js``, 3.0 branch).  This
module applies the same rules so a link Rosey queues is the link CyTube's own
page would queue, and refuses early (``ValueError`` with a short reason) what
the client or the server would refuse anyway:

* ``xx:id`` shorthand (two lower-case letters and a colon) names the type
  directly: the id is cut at the first ``?``, ``&`` or ``#`` (Dailymotion also
  at ``_``), except raw files (``fi``) and custom metadata (``cm``), which keep
  their query string; YouTube playlist ids are checked.
* ``rtmp://`` links are RTMP streams (``rt``), a path ending in ``.m3u8`` is an
  HLS stream (``hl``), one ending in ``.json`` is a custom-metadata manifest
  (``cm``); the whole link is the id.
* Known hosts (``www.`` ignored): YouTube (``yt`` from ``/watch?v=``,
  ``/shorts/<id>`` and youtu.be; ``yp`` from ``/playlist?list=``), Twitch
  (``tc`` clips, ``tv`` videos with a ``v`` prefix, ``tw`` channels), Livestream
  (``li`` ``account;event``), Vimeo (``vi``), Dailymotion (``dm``), SoundCloud
  (``sc``, the whole link), Streamable (``sb``), Google Drive (``gd``), BitChute
  (``bc``), Niconico (``nv``), Odysee (``od`` ``user;video``), Bandcamp tracks
  (``bn`` ``artist;track``) and PeerTube watch pages (``pt`` ``host;uuid``).
* Any other http(s) link is a raw file (``fi``) for the server to probe.
* Custom embeds (``cu``) are the ``<iframe>`` markup itself (the client's
  "custom embed" box).

Where the server is stricter than the client, the server's rule is applied
here too: raw files and HLS must be ``https://`` and a custom embed's iframe
source must be ``https``.  Where the client would produce an id the server can
only reject (a YouTube link without a video id, a Drive link that is not a
file) the link is refused with a reason instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

__all__ = ["LIVE_TYPES", "TYPES", "MediaRef", "parse"]

# Types CyTube treats as live streams: queuing them needs ``playlistaddlive``.
LIVE_TYPES = frozenset({"li", "tw", "rt", "cu", "hl"})

# Every media type the server knows (shorthand with another code is refused).
TYPES = frozenset(
    {
        "yt", "yp", "vi", "dm", "tw", "tv", "tc", "sc", "gd", "fi", "hl", "rt",
        "sb", "li", "cm", "cu", "pt", "bc", "bn", "od", "nv",
    }
)  # fmt: skip

_SHORTHAND = re.compile(r"^([a-z]{2}):(.*)$", re.DOTALL)
_YT_ID = re.compile(r"^[A-Za-z0-9_-]{11}$")
_YP_ID = re.compile(r"^(PL[a-zA-Z0-9_-]{32}|PL[A-F0-9]{16}|OLA[a-zA-Z0-9_-]{38})$")
_TWITCH_NAME = re.compile(r"^[\w-]+$")
_LIVESTREAM = re.compile(r"^/accounts/([0-9]+)/events/([0-9]+)")
_ODYSEE = re.compile(r"^/@([^:/]+)(?::\w+)?/([^:/]+)")
_PEERTUBE = re.compile(
    r"^(?:/w/|/videos/watch/)"
    r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[a-zA-Z0-9]{22})"
)
_IFRAME_SRC = re.compile(r"""\bsrc\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.IGNORECASE)


@dataclass(frozen=True)
class MediaRef:
    """A CyTube media reference: what the ``queue`` message carries."""

    type: str
    id: str

    @property
    def live(self) -> bool:
        """True for stream types, which need the ``playlistaddlive`` permission."""
        return self.type in LIVE_TYPES


def parse(url: str) -> MediaRef:
    """The media a link names, by CyTube's web client's rules; ValueError if none."""
    if not isinstance(url, str):
        raise ValueError("a media link must be a string")
    link = url.strip()
    if not link:
        raise ValueError("empty media link")
    if link[:1] == "<":
        return _custom_embed(link)
    short = _SHORTHAND.match(link)
    if short:
        return _shorthand(short.group(1), short.group(2))
    return _checked(_from_url(link))


def _shorthand(kind: str, rest: str) -> MediaRef:
    if kind not in TYPES:
        raise ValueError(f"unknown media type {kind!r}")
    if kind == "cu":
        return _custom_embed(rest)
    if kind in ("fi", "cm"):
        media_id = rest  # raw files keep their query string
    elif kind == "yp":
        media_id = rest
    else:
        stop = "?&#_" if kind == "dm" else "?&#"
        media_id = re.split(f"[{re.escape(stop)}]", rest, maxsplit=1)[0]
    return _checked(MediaRef(kind, media_id))


def _checked(ref: MediaRef) -> MediaRef:
    """The server-side rules the client leaves to the server, applied early."""
    if not ref.id:
        raise ValueError(f"no media id in the link (type {ref.type})")
    if ref.type == "yt" and not _YT_ID.match(ref.id):
        raise ValueError("not a YouTube video id")
    if ref.type == "yp" and not _YP_ID.match(ref.id):
        raise ValueError("not a YouTube playlist id (only user-created playlists are supported)")
    if ref.type == "tw" and not _TWITCH_NAME.match(ref.id):
        raise ValueError("not a Twitch channel name")
    if ref.type in ("fi", "hl") and not ref.id.lower().startswith("https://"):
        what = "raw files" if ref.type == "fi" else "HLS streams"
        raise ValueError(f"{what} must be https:// links")
    return ref


def _from_url(link: str) -> MediaRef:
    parts = urlsplit(link)
    scheme = parts.scheme.lower()
    if not scheme or not parts.netloc:
        raise ValueError("could not determine the media type (not a link)")
    if scheme == "rtmp":
        return MediaRef("rt", link)
    path = parts.path
    if path.endswith(".m3u8"):
        return MediaRef("hl", link)
    if path.endswith(".json"):
        return MediaRef("cm", link)

    full_host = (parts.hostname or "").lower()
    host = full_host.removeprefix("www.")
    query = parse_qs(parts.query)

    def param(name: str) -> str:
        values = query.get(name)
        return values[0] if values else ""

    def tail(prefix: str) -> str:
        return path[len(prefix) :].split("/")[0]

    if host in ("youtube.com", "m.youtube.com"):
        if path == "/watch":
            return MediaRef("yt", param("v"))
        if path == "/playlist":
            return MediaRef("yp", param("list"))
        for prefix in ("/shorts/", "/embed/", "/live/"):
            if path.startswith(prefix):
                return MediaRef("yt", tail(prefix)[:11])
        return MediaRef("yt", path[1:])  # the client reads the path as a youtu.be id
    if host == "youtu.be":
        return MediaRef("yt", path[1:])
    if host == "twitch.tv":
        if "/clip/" in path:
            return MediaRef("tc", path.rstrip("/").split("/")[-1])
        if path.startswith("/videos/"):
            return MediaRef("tv", "v" + path.rstrip("/").split("/")[-1])
        return MediaRef("tw", path[1:].rstrip("/"))
    if host == "clips.twitch.tv":
        return MediaRef("tc", path[1:])
    if host == "livestream.com":
        found = _LIVESTREAM.match(path)
        if not found:
            raise ValueError("Livestream links must have the numeric account and event ids")
        return MediaRef("li", f"{found.group(1)};{found.group(2)}")
    if host == "vimeo.com":
        return MediaRef("vi", path[1:])
    if host == "dailymotion.com":
        if not path.startswith("/video/"):
            raise ValueError("not a Dailymotion video link")
        return MediaRef("dm", tail("/video/").split("_")[0])
    if host == "soundcloud.com":
        return MediaRef("sc", link)
    if host == "streamable.com":
        return MediaRef("sb", path[1:])
    if host in ("docs.google.com", "drive.google.com"):
        if path.startswith("/file/d/"):
            return MediaRef("gd", tail("/file/d/"))
        if path == "/open":
            return MediaRef("gd", param("id"))
        raise ValueError("not a Google Drive file link")
    if host == "bitchute.com" and path.startswith("/video/"):
        return MediaRef("bc", tail("/video/"))
    if host == "nicovideo.jp" and path.startswith("/watch/"):
        return MediaRef("nv", tail("/watch/"))
    if host == "odysee.com":
        found = _ODYSEE.match(path)
        if found:
            return MediaRef("od", f"{found.group(1)};{found.group(2)}")
    if host.endswith(".bandcamp.com") and path.startswith("/track/"):
        artist = host.removesuffix(".bandcamp.com")
        return MediaRef("bn", f"{artist};{path.removeprefix('/track/')}")
    peertube = _PEERTUBE.match(path)
    if peertube:
        return MediaRef("pt", f"{full_host};{peertube.group(1)}")
    if scheme in ("http", "https"):
        return MediaRef("fi", link)  # a raw file: the server probes it
    raise ValueError("could not determine the media type")


def _custom_embed(markup: str) -> MediaRef:
    markup = markup.strip()
    if not markup.lower().startswith("<iframe"):
        raise ValueError("a custom embed must be an <iframe> tag")
    found = _IFRAME_SRC.search(markup)
    src = next((g for g in found.groups() if g is not None), "") if found else ""
    if not src.lower().startswith("https:"):
        raise ValueError("a custom embed's source must be https")
    return MediaRef("cu", markup)
