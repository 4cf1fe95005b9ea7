"""Provenance CLAIMS embedded in an image file: EXIF, XMP, PNG text, comments and C2PA Content Credentials.

Everything read here was written by whatever software last saved the file. Any of it can be stripped
(a re-save or a screenshot removes it) or forged (anyone can write "Canon EOS R5" or a generator's
parameters); a valid C2PA signature proves which certificate signed the claims, not that they are true.
Absence of a claim proves nothing. The pixel analysis never depends on these claims; reports show them
beside it, labelled as claims.

Reading is failure-tolerant: a damaged metadata block becomes a line in `problems`, never an exception,
and the C2PA library (native code) is imported lazily so that a missing or broken install only means
"C2PA could not be checked".
"""

from __future__ import annotations

import io
import json
import re
import ssl
import warnings
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from enum import Enum

from PIL import ExifTags, Image

_MAX_TEXT_CHARS = 20_000  # per stored value (hints are taken from the whole): ComfyUI workflows can be huge
_MAX_XMP_BYTES = 4 * 2**20

CLAIMS_DISCLAIMER = ("Metadata and Content Credentials are CLAIMS written by software: they can be removed or "
                     "forged, and their absence proves nothing about how the image was made.")


class C2paState(str, Enum):
    ABSENT = "absent"  # no manifest in the file
    VALID_UNTRUSTED = "valid_untrusted"  # signature and hashes check out; signer not on a trust list
    TRUSTED = "trusted"  # as above, and the signer chains to a configured trust anchor
    INVALID = "invalid"  # manifest present but it fails validation (file changed after signing, damaged)
    UNCHECKED = "unchecked"  # could not be checked (library unavailable, remote manifest, ...)


@dataclass(frozen=True)
class C2paClaims:
    state: C2paState
    detail: str = ""  # why unchecked or absent, or the validation failures when invalid
    claim_generator: str | None = None  # software that wrote the manifest, as it names itself
    title: str | None = None
    signer: str | None = None  # certificate common name and issuer
    signed_at: str | None = None
    actions: tuple[dict[str, str], ...] = ()  # {"action", "digitalSourceType", "softwareAgent"} as claimed


@dataclass(frozen=True)
class Provenance:
    exif: dict[str, str] = field(default_factory=dict)  # tag name -> value as text
    xmp: dict[str, str] = field(default_factory=dict)  # "prefix:Property" -> value as text
    png_text: dict[str, str] = field(default_factory=dict)  # PNG tEXt/zTXt/iTXt keyword -> text
    comments: tuple[str, ...] = ()  # JPEG COM segments, GIF comments
    c2pa: C2paClaims = field(default_factory=lambda: C2paClaims(C2paState.UNCHECKED, "not read"))
    declarations: tuple[str, ...] = ()  # what the file declares about its origin (IPTC digital source type)
    declares_ai: bool = False  # some declaration says AI-generated, in whole or in part
    generator_hints: tuple[str, ...] = ()  # generator software recognised from its metadata habits
    problems: tuple[str, ...] = ()  # metadata blocks that could not be read

    def summary_lines(self) -> list[str]:
        """Plain-language lines for a report, starting with what claims are worth."""
        lines = [CLAIMS_DISCLAIMER, _c2pa_summary(self.c2pa)]
        if self.c2pa.claim_generator:
            lines.append(f"C2PA claim generator: {self.c2pa.claim_generator}.")
        if self.c2pa.signer:
            lines.append(f"C2PA signed by: {self.c2pa.signer}" + (f" at {self.c2pa.signed_at}." if
                                                                    self.c2pa.signed_at else "."))
        for action in self.c2pa.actions:
            parts = [action["action"]] + [f"{k} {v}" for k, v in action.items() if k != "action"]
            lines.append("C2PA action claimed: " + ", ".join(parts) + ".")
        lines += [f"{line}." for line in self.declarations]
        lines += [f"Generator hint: {hint}." for hint in self.generator_hints]
        camera = " ".join(v for k in ("Make", "Model") if (v := self.exif.get(k)))
        if camera:
            lines.append(f"EXIF camera: {camera}.")
        for key in ("Software", "DateTimeOriginal", "DateTime"):
            if key in self.exif:
                lines.append(f"EXIF {key}: {self.exif[key]}.")
        if any(key.startswith("GPS") for key in self.exif):
            lines.append("EXIF contains GPS location fields.")
        if self.png_text:
            lines.append("PNG text fields: " + ", ".join(sorted(self.png_text)) + ".")
        if self.comments:
            lines.append(f"File comments: {len(self.comments)} ({_shorten(self.comments[0], 120)}).")
        if not (self.exif or self.xmp or self.png_text or self.comments) and self.c2pa.state == C2paState.ABSENT:
            lines.append("No embedded metadata was found (common after re-saving, screenshots or uploads to "
                         "social media).")
        lines += [f"Could not read: {problem}." for problem in self.problems]
        return lines

    def to_dict(self) -> dict:
        """JSON-serialisable form (strings, lists and dicts only)."""
        data = asdict(self)
        data["c2pa"]["state"] = self.c2pa.state.value
        data["summary"] = self.summary_lines()
        return json.loads(json.dumps(data))  # tuples -> lists, and proof that it serialises


def read_provenance(data: bytes, fmt: str, image: Image.Image | None = None, *,
                    trust_anchors_pem: str | None = None) -> Provenance:
    """Read every provenance claim from the file's bytes; never raises for bad metadata.

    `fmt` is the content-recognised format from evidence intake ("PNG", "JPEG", ...). `image` is the
    already-opened Pillow image of those bytes; without it the bytes are opened here (header only).
    `trust_anchors_pem`: PEM certificates a C2PA signer must chain to for the state "trusted".
    """
    problems: list[str] = []
    if image is None:
        # Imported here because evidence imports this module at load time.
        from forensics_app.core.evidence import open_image

        image = _tolerant("the image container", problems, None, open_image, data, fmt)
    exif, png_text, comments = {}, {}, []
    if image is not None:
        exif = _tolerant("EXIF", problems, {}, _read_exif, image)
        png_text = _tolerant("PNG text", problems, {}, _read_png_text, image)
        comments = _tolerant("comments", problems, [], _read_comments, image)
    xmp = _tolerant("XMP", problems, {}, _read_xmp, image, data)
    c2pa_claims = read_c2pa(data, fmt, trust_anchors_pem)
    source_types = _source_types(xmp, c2pa_claims)
    return Provenance(exif=_capped(exif), xmp=_capped(xmp), png_text=_capped(png_text),
                      comments=tuple(_shorten(c, _MAX_TEXT_CHARS) for c in comments), c2pa=c2pa_claims,
                      declarations=tuple(_declarations(source_types)),
                      declares_ai=any(describe_source_type(value)[1] for _, value in source_types),
                      generator_hints=tuple(_tolerant("generator hints", problems, [], _generator_hints, exif,
                                                      xmp, png_text, comments, c2pa_claims)),
                      problems=tuple(problems))


def _tolerant(what: str, problems: list[str], default, reader, *args):
    # Metadata parsers face hostile input, and Pillow's raise many exception types; a damaged block must
    # not stop the pixel analysis, so any failure (or warning, such as "Corrupt EXIF data") becomes a
    # problem line instead.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = reader(*args)
        except Exception as exc:
            problems.append(f"{what} ({_describe_error(exc)})")
            result = default
    problems.extend(f"{what} (warning: {warning.message})" for warning in caught)
    return result


# ---------------------------------------------------------------------------------------------- EXIF

# Tags that describe the file's structure or hold other metadata blocks, not claims about the image.
_STRUCTURAL_TAGS = {256, 257, 258, 259, 262, 273, 277, 278, 279, 284, 317, 320, 322, 323, 324, 325, 330, 338,
                    339, 347, 513, 514, 700, 33723, 34377, 34665, 34675, 34853, 40965, 50341}
_MAKER_NOTE = 0x927C
_USER_COMMENT = 0x9286


def _read_exif(image: Image.Image) -> dict[str, str]:
    exif = image.getexif()
    tags: dict[str, str] = {}
    for ifd, names in ((exif, ExifTags.TAGS), (exif.get_ifd(ExifTags.IFD.Exif), ExifTags.TAGS),
                       (exif.get_ifd(ExifTags.IFD.GPSInfo), ExifTags.GPSTAGS)):
        for tag, value in ifd.items():
            if tag in _STRUCTURAL_TAGS and names is ExifTags.TAGS:
                continue
            name = names.get(tag, f"Tag{tag:#06x}")
            if names is ExifTags.GPSTAGS and not name.startswith("GPS"):
                name = "GPS" + name
            if tag == _MAKER_NOTE and names is ExifTags.TAGS and isinstance(value, bytes):
                text = f"<{len(value)} bytes, camera-maker specific>"
            elif tag == _USER_COMMENT and names is ExifTags.TAGS:
                text = _decode_user_comment(value)
            else:
                text = _as_text(value)
            if text:
                tags[name] = text
    return tags


def _decode_user_comment(value) -> str:
    """EXIF UserComment: 8-byte character-code prefix, then text (generators put parameters here)."""
    if not isinstance(value, bytes):
        return _as_text(value)
    prefix, body = value[:8], value[8:]
    if prefix == b"UNICODE\x00":
        # Byte order is not declared; text is mostly ASCII, whose high byte is zero.
        big_endian = len(body) >= 2 and body[0] == 0 and body[1] != 0
        return body.decode("utf-16-be" if big_endian else "utf-16-le", errors="replace").strip("\x00 ")
    if prefix in (b"ASCII\x00\x00\x00", b"\x00" * 8):
        return body.decode("utf-8", errors="replace").strip("\x00 ")
    return _as_text(value)


def _as_text(value) -> str:
    if isinstance(value, bytes):
        text = value.rstrip(b"\x00")
        if text and all(32 <= b < 127 or b in (9, 10, 13) for b in text):
            return text.decode("ascii").strip()
        return f"<{len(value)} bytes>" if value else ""
    if isinstance(value, tuple):
        return ", ".join(_as_text(v) for v in value)
    return str(value).strip("\x00 ")


# ---------------------------------------------------------------------------------------------- XMP

_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"


def _read_xmp(image: Image.Image | None, data: bytes) -> dict[str, str]:
    packet = _xmp_packet(image, data)
    if packet is None:
        return {}
    if len(packet) > _MAX_XMP_BYTES:
        raise ValueError(f"XMP packet of {len(packet)} bytes is too large to parse")
    if b"<!doctype" in packet.lower() or b"<!entity" in packet.lower():
        raise ValueError("XMP packet declares a DTD or entities, which XMP forbids; not parsed")
    parser = ET.XMLPullParser(events=("start-ns", "start"))
    parser.feed(packet)
    parser.close()
    prefixes: dict[str, str] = {}
    root = None
    for event, item in parser.read_events():
        if event == "start-ns":
            prefixes.setdefault(item[1], item[0])
        elif root is None:
            root = item

    def key(tag: str) -> str:
        uri, _, local = tag[1:].partition("}") if tag.startswith("{") else ("", "", tag)
        return f"{prefixes.get(uri, uri)}:{local}" if uri else local

    props: dict[str, str] = {}
    for description in root.iter(f"{{{_RDF}}}Description"):
        for attr, value in description.attrib.items():
            if not attr.startswith(f"{{{_RDF}}}"):
                props[key(attr)] = value
        for child in description:
            value = _xmp_value(child)
            if value:
                props[key(child.tag)] = value
    return props


def _xmp_packet(image: Image.Image | None, data: bytes) -> bytes | None:
    info = image.info if image is not None else {}
    packet = info.get("xmp") or getattr(image, "tag_v2", {}).get(700)  # JPEG/WebP/AVIF/HEIF, TIFF
    if not packet and image is not None and image.format == "PNG":
        packet = image.text.get("XML:com.adobe.xmp")
    if packet:
        return packet.encode("utf-8") if isinstance(packet, str) else bytes(packet)
    start = data.find(b"<x:xmpmeta")  # any other container that stores the packet uncompressed
    end = data.find(b"</x:xmpmeta>", start)
    return data[start:end + len(b"</x:xmpmeta>")] if 0 <= start < end else None


def _xmp_value(element: ET.Element) -> str:
    resource = element.get(f"{{{_RDF}}}resource")
    if resource:
        return resource
    items = [li.text.strip() for li in element.iter(f"{{{_RDF}}}li") if li.text and li.text.strip()]
    if items:
        return "; ".join(items)
    return (element.text or "").strip() if len(element) == 0 else ""


# ---------------------------------------------------------------------------------------------- text, comments

def _read_png_text(image: Image.Image) -> dict[str, str]:
    if image.format != "PNG":
        return {}
    return {str(k): str(v) for k, v in image.text.items() if k != "XML:com.adobe.xmp"}


def _read_comments(image: Image.Image) -> list[str]:
    if image.format in ("JPEG", "MPO"):
        raw = [content for marker, content in image.applist if marker == "COM"]
    else:
        raw = [image.info["comment"]] if image.info.get("comment") else []
    texts = [c.decode("utf-8", errors="replace") if isinstance(c, bytes) else str(c) for c in raw]
    return [t.strip("\x00 ") for t in texts if t.strip("\x00 ")]


# ---------------------------------------------------------------------------------------------- C2PA

_C2PA_MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "TIFF": "image/tiff",
              "GIF": "image/gif", "HEIF": "image/heif", "AVIF": "image/avif"}


def read_c2pa(data: bytes, fmt: str, trust_anchors_pem: str | None = None) -> C2paClaims:
    """Read and validate the file's C2PA manifest store with c2pa-python, offline."""
    mime = _C2PA_MIME.get(fmt)
    if mime is None:
        return C2paClaims(C2paState.ABSENT, f"{fmt} files cannot carry embedded Content Credentials")
    if trust_anchors_pem is not None:
        try:  # a broken trust list must not make every signed file look invalid
            ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=trust_anchors_pem)
        except (ssl.SSLError, ValueError) as exc:
            return C2paClaims(C2paState.UNCHECKED, f"the configured trust list is not valid PEM certificates "
                                                   f"({_describe_error(exc)})")
    try:
        import c2pa
    except Exception as exc:  # wheel missing, or its native library fails to load on this system
        return C2paClaims(C2paState.UNCHECKED, f"the C2PA library could not be loaded ({_describe_error(exc)})")
    # Never go online: fetching a remote manifest or OCSP status would tell a third party what is examined.
    settings = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False, "verify_trust": True}}
    if trust_anchors_pem is not None:
        settings["trust"] = {"trust_anchors": trust_anchors_pem}
    try:
        context = c2pa.Context(settings=c2pa.Settings.from_dict(settings))
        with c2pa.Reader(mime, io.BytesIO(data), None, context) as reader:
            store = json.loads(reader.json())
    except Exception as exc:
        return _c2pa_failure(c2pa, exc)
    try:
        return _c2pa_claims(store)
    except Exception as exc:  # a store whose JSON lacks what the spec requires
        return C2paClaims(C2paState.INVALID, f"the manifest store is malformed ({_describe_error(exc)})")


def _c2pa_failure(c2pa, exc: Exception) -> C2paClaims:
    errors = c2pa.C2paError
    if isinstance(exc, errors.ManifestNotFound):
        return C2paClaims(C2paState.ABSENT)
    if isinstance(exc, errors.RemoteManifest):
        return C2paClaims(C2paState.UNCHECKED, "the file points to a manifest stored online, which is not fetched "
                                               "(this tool works offline)")
    if isinstance(exc, errors.NotSupported) or not isinstance(exc, errors):
        return C2paClaims(C2paState.UNCHECKED, _describe_error(exc))
    return C2paClaims(C2paState.INVALID, f"a manifest is present but damaged ({_describe_error(exc)})")


def _c2pa_claims(store: dict) -> C2paClaims:
    manifest = store["manifests"][store["active_manifest"]]
    results = (store.get("validation_results") or {}).get("activeManifest") or {}
    failures = results.get("failure")
    if failures is None:  # older stores report a flat list
        failures = store.get("validation_status") or []
    failure_text = "; ".join(f"{f.get('code')}: {f.get('explanation', '')}".rstrip(": ") for f in failures
                             if f.get("code") != "signingCredential.untrusted")
    state = {"Trusted": C2paState.TRUSTED, "Valid": C2paState.VALID_UNTRUSTED, "Invalid": C2paState.INVALID}.get(
        store.get("validation_state"), C2paState.INVALID if failure_text else C2paState.VALID_UNTRUSTED)
    signature = manifest.get("signature_info") or {}
    signer = ", ".join(str(signature[k]) for k in ("common_name", "issuer") if signature.get(k)) or None
    return C2paClaims(
        state=state,
        detail=failure_text if state == C2paState.INVALID else "",
        claim_generator=_claim_generator(manifest),
        title=manifest.get("title"),
        signer=signer,
        signed_at=signature.get("time"),
        actions=tuple(_c2pa_actions(manifest)),
    )


def _claim_generator(manifest: dict) -> str | None:
    if manifest.get("claim_generator"):
        return str(manifest["claim_generator"])
    names = [" ".join(str(info[k]) for k in ("name", "version") if info.get(k))
             for info in manifest.get("claim_generator_info") or [] if isinstance(info, dict)]
    return "; ".join(n for n in names if n) or None


def _c2pa_actions(manifest: dict) -> list[dict[str, str]]:
    actions = []
    for assertion in manifest.get("assertions") or []:
        if not str(assertion.get("label", "")).startswith("c2pa.actions"):
            continue
        for action in (assertion.get("data") or {}).get("actions") or []:
            entry = {"action": str(action.get("action", "?"))}
            if action.get("digitalSourceType"):
                entry["digitalSourceType"] = str(action["digitalSourceType"])
            agent = action.get("softwareAgent")
            if agent:
                entry["softwareAgent"] = str(agent.get("name", agent) if isinstance(agent, dict) else agent)
            actions.append(entry)
    return actions


def _c2pa_summary(claims: C2paClaims) -> str:
    if claims.state == C2paState.ABSENT:
        return "C2PA Content Credentials: none" + (f" ({claims.detail})." if claims.detail else ".")
    if claims.state == C2paState.UNCHECKED:
        return f"C2PA could not be checked: {claims.detail}."
    if claims.state == C2paState.INVALID:
        return (f"C2PA Content Credentials: present but INVALID (the file was changed after signing, or the "
                f"manifest is damaged or forged): {claims.detail}.")
    if claims.state == C2paState.TRUSTED:
        return ("C2PA Content Credentials: present, intact, and signed by a certificate on the configured trust "
                "list; this identifies who signed the claims, not that the claims are true.")
    return ("C2PA Content Credentials: present and intact, but the signer is not on a trust list (anyone can "
            "create such a certificate), so the signature shows only that the claims were not changed since "
            "signing.")


# ---------------------------------------------------------------------------------------------- interpretation

# IPTC NewsCodes "digital source type" vocabulary (used by XMP Iptc4xmpExt:DigitalSourceType and C2PA).
_SOURCE_TYPES = {
    "trainedAlgorithmicMedia": "AI-generated",
    "compositeWithTrainedAlgorithmicMedia": "AI-generated in part (composite with AI-generated elements)",
    "algorithmicallyEnhanced": "enhanced by an algorithm",
    "algorithmicMedia": "generated by an algorithm (not necessarily AI)",
    "compositeSynthetic": "a composite that includes synthetic elements",
    "digitalCapture": "a camera capture",
    "computationalCapture": "a computational camera capture (e.g. a phone's processing)",
    "negativeFilm": "a scan of a film negative",
    "positiveFilm": "a scan of a film positive",
    "print": "a scan of a print",
    "humanEdits": "edited by a person",
    "minorHumanEdits": "lightly edited by a person",
    "compositeCapture": "a composite of captures",
    "digitalArt": "digital art made by a person",
    "screenCapture": "a screen capture",
    "virtualRecording": "a recording of a virtual scene",
    "dataDrivenMedia": "rendered from data",
}
_AI_SOURCE_TYPES = {"trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia"}


def describe_source_type(value: str) -> tuple[str, bool]:
    """Plain description of an IPTC digital source type URI or term, and whether it declares AI."""
    term = value.strip().rstrip("/").rsplit("/", 1)[-1]
    return _SOURCE_TYPES.get(term, f"of unknown source type '{term}'"), term in _AI_SOURCE_TYPES


def _source_types(xmp: dict[str, str], c2pa_claims: C2paClaims) -> list[tuple[str, str]]:
    """(where, digital source type) for every declaration in XMP and in C2PA actions."""
    found = [("XMP", value) for key, value in xmp.items() if key.rsplit(":", 1)[-1] == "DigitalSourceType"]
    return found + [("C2PA", action["digitalSourceType"]) for action in c2pa_claims.actions
                    if "digitalSourceType" in action]


def _declarations(source_types: list[tuple[str, str]]) -> list[str]:
    lines = []
    for where, value in source_types:
        description, is_ai = describe_source_type(value)
        term = value.strip().rstrip("/").rsplit("/", 1)[-1]
        lines.append(f"{where} declares {description} (IPTC digital source type {term})" if is_ai else
                     f"{where} declares the image is {description} (IPTC digital source type {term})")
    return list(dict.fromkeys(lines))


_KNOWN_TOOLS = (  # (pattern in a software-name field, tool): names generators write about themselves
    (r"midjourney", "Midjourney"), (r"dall[-·\s]?e", "OpenAI DALL·E"), (r"chatgpt|openai|gpt-4o", "OpenAI"),
    (r"firefly", "Adobe Firefly"), (r"stable\s*diffusion|stability", "Stable Diffusion"),
    (r"novelai", "NovelAI"), (r"comfyui", "ComfyUI"), (r"invoke\s*ai", "InvokeAI"), (r"fooocus", "Fooocus"),
    (r"\bimagen\b|gemini", "Google Imagen/Gemini"), (r"leonardo", "Leonardo.Ai"), (r"ideogram", "Ideogram"),
    (r"\bflux\b", "FLUX"), (r"automatic1111|sd[-_.\s]?webui|stable-diffusion-webui", "Stable Diffusion web UI"),
    (r"bing image creator|microsoft designer", "Microsoft Designer/Bing Image Creator"), (r"\bgrok\b", "xAI Grok"),
)
_A1111_FIELDS = ("Model", "Model hash", "Sampler", "Steps", "Size", "Version")


def _generator_hints(exif: dict[str, str], xmp: dict[str, str], png_text: dict[str, str],
                     comments: list[str], c2pa_claims: C2paClaims) -> list[str]:
    hints = []
    texts = {f"PNG text '{k}'": v for k, v in png_text.items()}
    texts.update({f"EXIF {k}": v for k, v in exif.items() if k in ("UserComment", "ImageDescription")})
    texts.update({f"comment {i + 1}": c for i, c in enumerate(comments)})
    for where, text in texts.items():
        if re.search(r"\bSteps: \d+", text) and "Sampler: " in text:
            fields = _a1111_fields(text)
            hints.append(f"{where} holds Stable Diffusion web UI-style generation parameters (AUTOMATIC1111, "
                         f"Forge, SD.Next or compatible)" + (f": {fields}" if fields else ""))
    for key in ("prompt", "workflow"):
        models = _comfyui_models(png_text.get(key))
        if models is not None:
            hints.append(f"PNG text '{key}' holds a ComfyUI workflow" + (
                f" naming the model files {', '.join(models)}" if models else ""))
    if {"invokeai_metadata", "invokeai_graph", "sd-metadata", "Dream"} & png_text.keys():
        hints.append("PNG text holds InvokeAI generation metadata")
    if "fooocus_scheme" in png_text:
        hints.append("PNG text holds Fooocus generation metadata")
    names = {"PNG text 'Software'": png_text.get("Software"), "EXIF Software": exif.get("Software"),
             "XMP CreatorTool": next((v for k, v in xmp.items() if k.endswith(":CreatorTool")), None),
             "C2PA claim generator": c2pa_claims.claim_generator}
    names.update({f"C2PA software agent of {a['action']}": a.get("softwareAgent") for a in c2pa_claims.actions})
    for where, name in names.items():
        for pattern, tool in _KNOWN_TOOLS:
            if name and re.search(pattern, name, re.IGNORECASE):
                hints.append(f"{where} names {tool} ('{_shorten(name, 80)}')")
    return list(dict.fromkeys(hints))


def _a1111_fields(text: str) -> str:
    line = next(ln for ln in reversed(text.splitlines()) if "Steps: " in ln)
    pairs = dict(re.findall(r'([A-Za-z][\w ]*?): ("[^"]*"|[^,]*)(?:,|$)', line))
    return "; ".join(f"{k} {pairs[k].strip()}" for k in _A1111_FIELDS if pairs.get(k, "").strip())


def _comfyui_models(text: str | None) -> list[str] | None:
    """Model file names in a ComfyUI prompt/workflow JSON; None when the text is not one."""
    if not text:
        return None
    try:
        graph = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(graph, dict):
        return None
    if isinstance(graph.get("nodes"), list):  # "workflow": the editor's graph
        nodes = [n for n in graph["nodes"] if isinstance(n, dict)]
        values = [v for n in nodes if isinstance(n.get("widgets_values"), list) for v in n["widgets_values"]]
    elif any(isinstance(n, dict) and "class_type" in n for n in graph.values()):  # "prompt": the executed graph
        nodes = [n for n in graph.values() if isinstance(n, dict) and isinstance(n.get("inputs"), dict)]
        values = [v for n in nodes for k, v in n["inputs"].items() if k.endswith("_name")]
    else:
        return None
    models = [v for v in values if isinstance(v, str)
              and v.lower().endswith((".safetensors", ".ckpt", ".pt", ".pth", ".gguf", ".bin"))]
    return list(dict.fromkeys(models))


def _describe_error(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _capped(values: dict[str, str]) -> dict[str, str]:
    """Values as stored in Provenance: long ones shortened (they were interpreted in full)."""
    return {key: _shorten(value, _MAX_TEXT_CHARS) for key, value in values.items()}


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters in all)"
