"""What an uploaded file is, told from its bytes (never its name), and its image metadata.

Binary formats are recognised by puremagic (pure Python, no system library: the signatures
of the ``file`` command's kind, kept up to date upstream). Text has no signature: a file of
valid UTF-8 without NUL or other binary control bytes is ``text/plain``, unless it starts
like markup or a script, or carries an HTML or SVG tag anywhere in its first 64 KiB, which is
refused (a browser that ignored our headers could otherwise run it). Images are opened and
re-encoded by Pillow without their metadata (EXIF, GPS, XMP, comments) unless the site
keeps it; re-encoding also drops anything appended after the picture.
"""

from __future__ import annotations

import re
from pathlib import Path

from widget_server.errors import WidgetError

HEAD_BYTES = 64 * 1024
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
DEFAULT_TYPES = (*IMAGE_TYPES, "application/pdf", "text/plain", "application/zip")
INLINE_TYPES = frozenset({*IMAGE_TYPES, "application/pdf"})
MAX_PIXELS = 40_000_000  # 8K screenshots (33 MP) pass; decoding takes up to 4 bytes a pixel
# what puremagic may call a zip archive's flavours; we store and serve them as a zip
_ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")
_DANGEROUS = frozenset({"text/html", "application/xhtml+xml", "image/svg+xml", "text/xml",
                        "application/xml", "application/javascript", "text/javascript"})
_MARKUP = re.compile(rb"<\s*(?:!doctype|html|script|svg|iframe|object|embed|body|head"
                     rb"|meta|\?xml|xsl)\b", re.IGNORECASE)
_BINARY_CONTROLS = re.compile(rb"[\x00-\x08\x0e-\x1a\x1c-\x1f]")
_PIL_FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/gif": "GIF",
                "image/webp": "WEBP"}


class AttachmentRefused(WidgetError):
    status = 415

    def __init__(self, message: str, code: str = "attachment_type_not_allowed") -> None:
        super().__init__(message, code=code)


def detect(head: bytes) -> str:
    """The content type of a file that starts with ``head`` (its first 64 KiB or all of
    it); AttachmentRefused for markup, scripts and what nothing recognises."""
    if not head:
        raise AttachmentRefused("the file is empty", code="attachment_empty")
    if head.startswith(_ZIP_SIGNATURES):
        return "application/zip"
    import puremagic  # here, not at start-up: a server that never gets a file never loads it

    try:
        found = puremagic.magic_string(head)
    except (puremagic.PureError, ValueError):
        found = []
    types = [match.mime_type for match in found if match.mime_type]
    if any(kind in _DANGEROUS for kind in types) or _looks_like_markup(head):
        raise AttachmentRefused("HTML, SVG, XML and scripts cannot be attached",
                                code="attachment_active_content")
    text = _is_text(head)
    # a text may happen to match a short or shifted signature; a binary format's own
    # opening (%PDF-, GIF89a, ...) at offset 0 wins over reading it as text
    leading = [m.mime_type for m in found
               if m.mime_type and m.offset == 0 and len(m.byte_match) >= 4]
    if leading or (types and not text):
        return str((leading or types)[0])
    if text:
        return "text/plain"
    raise AttachmentRefused("the type of this file could not be recognised")


def _looks_like_markup(head: bytes) -> bool:
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if start.startswith((b"<", b"#!")):  # markup, or a script naming its interpreter
        return True
    return _is_text(head) and _MARKUP.search(head) is not None


def _is_text(head: bytes) -> bool:
    if _BINARY_CONTROLS.search(head):
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:  # a multi-byte character cut at the end of the head
        return exc.start >= len(head) - 3 and exc.reason == "unexpected end of data"
    return True


def _too_large(size: tuple[int, int]) -> bool:
    """A picture too large to decode safely: a small file may expand to gigabytes of
    pixels (a decompression bomb), so the pixels count, not the bytes."""
    return size[0] * size[1] > MAX_PIXELS


def allowed(content_type: str, allow_list: tuple[str, ...] | None) -> bool:
    return content_type in (allow_list or DEFAULT_TYPES)


def without_metadata(source: Path, target: Path, content_type: str) -> bool:
    """Re-encode the image ``source`` into ``target`` without its metadata; False when the
    bytes are not an image Pillow can read (the upload is refused then)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    fmt = _PIL_FORMATS[content_type]
    try:
        with Image.open(source) as image:
            if image.format != fmt or _too_large(image.size):
                return False
            image.load()
            animated = getattr(image, "is_animated", False)
            if animated:  # every frame, their durations and the loop; metadata dropped
                image.save(target, format=fmt, save_all=True, exif=b"",
                           loop=image.info.get("loop", 0),
                           duration=image.info.get("duration", 100))
                return True
            upright = ImageOps.exif_transpose(image)  # the orientation EXIF said, applied
            options: dict[str, object] = {}
            if fmt == "JPEG":
                options = {"quality": 92, "optimize": True}
                if upright.mode not in {"RGB", "L", "CMYK"}:
                    upright = upright.convert("RGB")
            elif fmt == "WEBP":
                options = {"quality": 92}
            elif fmt == "GIF" and "transparency" in image.info:
                options = {"transparency": image.info["transparency"]}
            upright.save(target, format=fmt, **options)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError,
            Image.DecompressionBombError):
        return False
    return True


def is_readable_image(source: Path, content_type: str) -> bool:
    """Whether Pillow reads ``source`` as the image its bytes claim (metadata kept)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(source) as image:
            if image.format != _PIL_FORMATS[content_type] or _too_large(image.size):
                return False
            image.verify()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError,
            Image.DecompressionBombError):
        return False
    return True
