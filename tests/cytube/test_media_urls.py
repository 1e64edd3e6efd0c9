"""runtime.cytube.media.parse: one row per rule of CyTube's web client (parseMediaLink)."""

import re

import pytest

from runtime.cytube.media import MediaRef, parse

YT = "dQw4w9WgXcQ"
YP = "PL" + "a" * 32
UUID = "9c9de5e8-0a1b-4c2d-8e3f-0123456789ab"
IFRAME = '<iframe src="https://player.example.org/embed/42" width="640"></iframe>'

ACCEPTED = [
    # shorthand: the type named directly, id cut at ? & #
    ("yt:" + YT, "yt", YT),
    (f"yt:{YT}?t=10", "yt", YT),
    ("vi:76979871#x", "vi", "76979871"),
    ("tw:some_channel", "tw", "some_channel"),
    # Dailymotion shorthand is also cut at _
    ("dm:x7tgad0_some-title", "dm", "x7tgad0"),
    # raw files and custom metadata keep their query string
    (
        "fi:https://cdn.example.org/a.mp4?token=1&x=2",
        "fi",
        "https://cdn.example.org/a.mp4?token=1&x=2",
    ),
    ("cm:https://example.org/m.json?v=2", "cm", "https://example.org/m.json?v=2"),
    ("yp:" + YP, "yp", YP),
    # YouTube
    (f"https://www.youtube.com/watch?v={YT}&list={YP}", "yt", YT),
    (f"https://youtube.com/watch?feature=share&v={YT}", "yt", YT),
    (f"https://m.youtube.com/watch?v={YT}", "yt", YT),
    (f"https://youtu.be/{YT}", "yt", YT),
    (f"https://youtu.be/{YT}?t=42", "yt", YT),
    (f"https://www.youtube.com/shorts/{YT}", "yt", YT),
    (f"https://www.youtube.com/embed/{YT}", "yt", YT),
    (f"https://www.youtube.com/playlist?list={YP}", "yp", YP),
    ("https://www.youtube.com/playlist?list=PL0123456789ABCDEF", "yp", "PL0123456789ABCDEF"),
    # Twitch: channel, video (v prefix), clip (two forms)
    ("https://www.twitch.tv/some_channel", "tw", "some_channel"),
    ("https://twitch.tv/some-channel/", "tw", "some-channel"),
    ("https://www.twitch.tv/videos/123456789", "tv", "v123456789"),
    ("https://www.twitch.tv/somebody/clip/FunnyClipName", "tc", "FunnyClipName"),
    ("https://clips.twitch.tv/FunnyClipName", "tc", "FunnyClipName"),
    # Livestream (numeric account and event)
    ("https://livestream.com/accounts/123/events/456", "li", "123;456"),
    # Vimeo, Dailymotion, SoundCloud (whole link), Streamable
    ("https://vimeo.com/76979871", "vi", "76979871"),
    ("https://www.dailymotion.com/video/x7tgad0", "dm", "x7tgad0"),
    ("https://soundcloud.com/artist/track", "sc", "https://soundcloud.com/artist/track"),
    ("https://streamable.com/abc12", "sb", "abc12"),
    # Google Drive: /file/d/<id>/… and /open?id=
    ("https://drive.google.com/file/d/1AbC_dEf/view?usp=sharing", "gd", "1AbC_dEf"),
    ("https://docs.google.com/file/d/1AbC_dEf/edit", "gd", "1AbC_dEf"),
    ("https://drive.google.com/open?id=1AbC_dEf", "gd", "1AbC_dEf"),
    # BitChute, Niconico, Odysee, Bandcamp, PeerTube
    ("https://www.bitchute.com/video/AbCdEf123/", "bc", "AbCdEf123"),
    ("https://www.nicovideo.jp/watch/sm9", "nv", "sm9"),
    ("https://odysee.com/@someone:a/some-video:1", "od", "someone;some-video"),
    ("https://artist.bandcamp.com/track/a-song", "bn", "artist;a-song"),
    (f"https://peertube.example.org/videos/watch/{UUID}", "pt", f"peertube.example.org;{UUID}"),
    ("https://tube.example.org/w/" + "a1" * 11, "pt", "tube.example.org;" + "a1" * 11),
    # streams: RTMP (any host), HLS by extension (before the host rules)
    ("rtmp://live.example.org/app/key", "rt", "rtmp://live.example.org/app/key"),
    ("https://live.example.org/hls/stream.m3u8", "hl", "https://live.example.org/hls/stream.m3u8"),
    ("https://www.youtube.com/x.m3u8", "hl", "https://www.youtube.com/x.m3u8"),
    # custom metadata manifest (.json)
    ("https://example.org/media/manifest.json", "cm", "https://example.org/media/manifest.json"),
    # anything else over https: a raw file for the server to probe
    ("https://cdn.example.org/video.mp4", "fi", "https://cdn.example.org/video.mp4"),
    ("https://cdn.example.org/audio.ogg?dl=1", "fi", "https://cdn.example.org/audio.ogg?dl=1"),
    # custom embeds: the iframe markup itself, https source
    (IFRAME, "cu", IFRAME),
    ("cu:" + IFRAME, "cu", IFRAME),
    # surrounding whitespace is ignored
    (f"  https://youtu.be/{YT}\n", "yt", YT),
]

REFUSED = [
    ("", "empty"),
    ("   ", "empty"),
    ("zz:abc", "unknown media type"),
    ("yt:", "no media id"),
    ("yt:short", "YouTube video id"),
    ("yp:notaplaylist", "playlist id"),
    ("https://www.youtube.com/watch?list=" + YP, "no media id"),
    ("https://www.youtube.com/playlist?list=RDxyz", "playlist id"),
    ("https://www.youtube.com/channel/UCabcdef", "YouTube video id"),
    ("https://youtu.be/", "no media id"),
    ("https://www.twitch.tv/", "no media id"),
    ("https://www.twitch.tv/name/about", "Twitch channel name"),
    ("https://livestream.com/someone", "Livestream"),
    ("https://www.dailymotion.com/someone", "Dailymotion"),
    ("https://docs.google.com/document/d/abc/edit", "Google Drive"),
    # the server only accepts https raw files and HLS
    ("http://cdn.example.org/video.mp4", "https"),
    ("http://live.example.org/stream.m3u8", "https"),
    ("fi:http://cdn.example.org/video.mp4", "https"),
    ("hl:http://live.example.org/stream.m3u8", "https"),
    # not a link at all
    ("just some words", "not a link"),
    ("www.youtube.com/watch?v=" + YT, "not a link"),
    ("ftp://files.example.org/video.mp4", "media type"),
    # custom embeds: iframe only, https source only
    ("<div>hi</div>", "<iframe>"),
    ('<iframe src="http://player.example.org/embed/42"></iframe>', "https"),
    ("<iframe></iframe>", "https"),
]


@pytest.mark.parametrize(("url", "kind", "media_id"), ACCEPTED)
def test_accepted(url: str, kind: str, media_id: str) -> None:
    assert parse(url) == MediaRef(kind, media_id)


@pytest.mark.parametrize(("url", "reason"), REFUSED)
def test_refused(url: str, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        parse(url)


@pytest.mark.parametrize(
    ("url", "live"),
    [
        ("https://www.twitch.tv/somebody", True),
        ("https://live.example.org/a.m3u8", True),
        ("rtmp://live.example.org/app", True),
        ("https://livestream.com/accounts/1/events/2", True),
        (IFRAME, True),
        (f"https://youtu.be/{YT}", False),
        ("https://www.twitch.tv/videos/1", False),
        ("https://cdn.example.org/a.mp4", False),
    ],
)
def test_live_types_need_playlistaddlive(url: str, live: bool) -> None:
    assert parse(url).live is live


def test_not_a_string() -> None:
    with pytest.raises(ValueError, match="string"):
        parse(None)  # type: ignore[arg-type]
