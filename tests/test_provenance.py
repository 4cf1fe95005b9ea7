"""Provenance claims: EXIF, XMP, PNG text, comments and C2PA, all reported as claims.

The C2PA tests sign real manifests with c2pa-python's Builder, using a throwaway certificate chain made
here (an ES256 test CA and a leaf signing certificate with the extensions C2PA requires; c2pa rejects a
self-signed leaf). Nothing is fetched from the network.
"""

from __future__ import annotations

import datetime
import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import ExifTags, Image, PngImagePlugin

from forensics_app.core.evidence import load_evidence
from forensics_app.core.provenance import CLAIMS_DISCLAIMER, C2paState, read_c2pa, read_provenance

AI_SOURCE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"


def photo(width: int = 96, height: int = 80) -> Image.Image:
    rng = np.random.default_rng(3)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def encode(img: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, fmt, **options)
    return buffer.getvalue()


def xmp_packet(body: str) -> bytes:
    return (f'<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
            f'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">{body}</rdf:RDF></x:xmpmeta>'
            f'<?xpacket end="w"?>').encode()


IPTC_DESCRIPTION = ('<rdf:Description rdf:about="" xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
                    'xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:CreatorTool="Adobe Firefly" '
                    'Iptc4xmpExt:DigitalSourceType="{source}"/>')


# ---------------------------------------------------------------------------------------------- EXIF, XMP, text

def test_exif_camera_claims_and_summary():
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0131] = "Canon", "EOS 5D Mark IV", "Adobe Photoshop 25.0"
    exif.get_ifd(ExifTags.IFD.Exif)[0x9003] = "2024:05:06 07:08:09"
    exif.get_ifd(ExifTags.IFD.GPSInfo)[2] = (48.0, 51.0, 24.0)
    provenance = read_provenance(encode(photo(), "JPEG", exif=exif), "JPEG")
    assert provenance.exif["Make"] == "Canon" and provenance.exif["Model"] == "EOS 5D Mark IV"
    assert provenance.exif["DateTimeOriginal"] == "2024:05:06 07:08:09"
    assert provenance.exif["GPSLatitude"] == "48.0, 51.0, 24.0"
    lines = provenance.summary_lines()
    assert "EXIF camera: Canon EOS 5D Mark IV." in lines and "EXIF contains GPS location fields." in lines
    assert lines[0] == CLAIMS_DISCLAIMER
    assert "can be removed or forged" in CLAIMS_DISCLAIMER and "absence proves nothing" in CLAIMS_DISCLAIMER


def test_generation_parameters_in_exif_user_comment():
    """The AUTOMATIC1111 web UI stores its parameters in EXIF UserComment when saving JPEG or WebP."""
    exif = Image.Exif()
    parameters = "a lighthouse\nSteps: 30, Sampler: DPM++ 2M, Seed: 1, Model hash: 31e35c80fc, Model: sd_xl_base_1.0"
    exif.get_ifd(ExifTags.IFD.Exif)[0x9286] = b"UNICODE\x00" + parameters.encode("utf-16-be")
    provenance = read_provenance(encode(photo(), "WEBP", exif=exif), "WEBP")
    assert provenance.exif["UserComment"] == parameters
    assert any("EXIF UserComment holds Stable Diffusion web UI-style" in hint
               and "Model sd_xl_base_1.0; Model hash 31e35c80fc" in hint for hint in provenance.generator_hints)


@pytest.mark.parametrize("source, declares_ai, declaration", [
    (AI_SOURCE, True, "XMP declares AI-generated (IPTC digital source type trainedAlgorithmicMedia)"),
    ("http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia", True,
     "XMP declares AI-generated in part"),
    ("http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture", False,
     "XMP declares the image is a camera capture"),
])
def test_xmp_digital_source_type(source: str, declares_ai: bool, declaration: str):
    data = encode(photo(), "JPEG", xmp=xmp_packet(IPTC_DESCRIPTION.format(source=source)))
    provenance = read_provenance(data, "JPEG")
    assert provenance.xmp["Iptc4xmpExt:DigitalSourceType"] == source
    assert provenance.declares_ai is declares_ai
    assert any(line.startswith(declaration) for line in provenance.declarations), provenance.declarations
    assert "XMP CreatorTool names Adobe Firefly ('Adobe Firefly')" in provenance.generator_hints


def test_xmp_as_element_and_in_png():
    body = ('<rdf:Description rdf:about="" xmlns:I="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/"><I:DigitalSourceType>'
            f'{AI_SOURCE}</I:DigitalSourceType><dc:creator><rdf:Seq><rdf:li>Jane Roe</rdf:li></rdf:Seq>'
            '</dc:creator></rdf:Description>')
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", xmp_packet(body).decode())
    provenance = read_provenance(encode(photo(), "PNG", pnginfo=info), "PNG")
    assert provenance.xmp == {"I:DigitalSourceType": AI_SOURCE, "dc:creator": "Jane Roe"}
    assert provenance.declares_ai and provenance.png_text == {}


@pytest.mark.parametrize("packet, problem", [
    (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF>unclosed', "XMP (ParseError"),
    (b'<!DOCTYPE x [<!ENTITY a "aaaa">]><x:xmpmeta xmlns:x="adobe:ns:meta/">&a;</x:xmpmeta>', "declares a DTD"),
])
def test_bad_xmp_is_a_problem_line_not_a_crash(packet: bytes, problem: str):
    provenance = read_provenance(encode(photo(), "JPEG", xmp=packet), "JPEG")
    assert provenance.xmp == {} and any(problem in p for p in provenance.problems), provenance.problems
    assert any(line.startswith("Could not read: XMP") for line in provenance.summary_lines())


def test_png_text_chunks_recognise_generator_tools():
    workflow = {"3": {"class_type": "KSampler", "inputs": {"seed": 1}},
                "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "flux1-dev.safetensors"}},
                "5": {"class_type": "LoraLoader", "inputs": {"lora_name": "style.safetensors"}}}
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a cat\nNegative prompt: dog\nSteps: 20, Sampler: Euler a, Size: 512x512, "
                                'Model: v1-5-pruned, Lora hashes: "a: 1, b: 2", Version: v1.9.4')
    info.add_itxt("prompt", json.dumps(workflow), zip=True)
    info.add_text("Software", "NovelAI")
    provenance = read_provenance(encode(photo(), "PNG", pnginfo=info), "PNG")
    assert set(provenance.png_text) == {"parameters", "prompt", "Software"}
    hints = provenance.generator_hints
    assert any("PNG text 'parameters' holds Stable Diffusion web UI-style" in h
               and "Model v1-5-pruned; Sampler Euler a; Steps 20; Size 512x512; Version v1.9.4" in h for h in hints)
    assert ("PNG text 'prompt' holds a ComfyUI workflow naming the model files flux1-dev.safetensors, "
            "style.safetensors") in hints
    assert "PNG text 'Software' names NovelAI ('NovelAI')" in hints
    assert "PNG text fields: Software, parameters, prompt." in provenance.summary_lines()


def test_comfyui_editor_workflow_and_long_text_is_shortened():
    workflow = {"nodes": [{"type": "CheckpointLoaderSimple", "widgets_values": ["sd3.5_large.safetensors"]}],
                "padding": "x" * 50_000}
    info = PngImagePlugin.PngInfo()
    info.add_text("workflow", json.dumps(workflow))
    provenance = read_provenance(encode(photo(), "PNG", pnginfo=info), "PNG")
    assert "PNG text 'workflow' holds a ComfyUI workflow naming the model files sd3.5_large.safetensors" in \
        provenance.generator_hints
    assert provenance.png_text["workflow"].endswith("characters in all)")


@pytest.mark.parametrize("text", ['{"nodes": [{"widgets_values": 5}, 3]}', '{"1": {"class_type": "X", "inputs": [1]}}',
                                  "[" * 100_000, '{"nodes": "x"}'])
def test_malformed_comfyui_json_is_not_a_workflow(text: str):
    info = PngImagePlugin.PngInfo()
    info.add_text("prompt", text)
    provenance = read_provenance(encode(photo(), "PNG", pnginfo=info), "PNG")
    assert provenance.problems == () and not any("ComfyUI" in h and "naming" in h for h in provenance.generator_hints)


def test_jpeg_comment():
    provenance = read_provenance(encode(photo(), "JPEG", comment=b"Made with Midjourney"), "JPEG")
    assert provenance.comments == ("Made with Midjourney",)
    assert "File comments: 1 (Made with Midjourney)." in provenance.summary_lines()


def test_no_metadata_says_absence_proves_nothing():
    provenance = read_provenance(encode(photo(), "PNG"), "PNG")
    assert provenance.c2pa.state is C2paState.ABSENT and not provenance.declares_ai
    lines = provenance.summary_lines()
    assert lines[1] == "C2PA Content Credentials: none."
    assert lines[2].startswith("No embedded metadata was found")


def test_undecodable_bytes_still_give_provenance():
    provenance = read_provenance(b"\x89PNG\r\n\x1a\n broken", "PNG")
    assert any(problem.startswith("the image container") for problem in provenance.problems)
    json.dumps(provenance.to_dict())


# ---------------------------------------------------------------------------------------------- C2PA

@pytest.fixture(scope="module")
def signing_chain():
    """(chain PEM, private key PEM, CA PEM) of a throwaway ES256 CA and leaf signing certificate."""
    pytest.importorskip("c2pa")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def certificate(subject: str, key, issuer: x509.Name, issuer_key, is_ca: bool) -> x509.Certificate:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Forensics test suite")])
        builder = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer or name)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=7))
                   .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
                   .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=is_ca, crl_sign=is_ca,
                                                content_commitment=False, key_encipherment=False,
                                                data_encipherment=False, key_agreement=False,
                                                encipher_only=False, decipher_only=False), critical=True)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
        if not is_ca:  # C2PA requires a signing EKU and the link to the issuing CA on the leaf
            builder = (builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]),
                                             critical=False)
                       .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                                      critical=False))
        return builder.sign(issuer_key, hashes.SHA256())

    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = certificate("Test Root CA", ca_key, None, ca_key, is_ca=True)
    leaf = certificate("Test Signer", leaf_key, ca.subject, ca_key, is_ca=False)
    pem = serialization.Encoding.PEM
    ca_pem = ca.public_bytes(pem).decode()
    key_pem = leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return leaf.public_bytes(pem).decode() + ca_pem, key_pem.decode(), ca_pem


def c2pa_signed(signing_chain, fmt: str) -> bytes:
    """A small image with an embedded, signed manifest claiming it was created by an AI model."""
    import c2pa

    chain, key, _ = signing_chain
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, chain.encode(), key.encode(),
                                                       None))
    manifest = {
        "claim_generator_info": [{"name": "Test Image Generator", "version": "2.1"}],
        "title": "generated." + fmt.lower(),
        "assertions": [{"label": "c2pa.actions", "data": {"actions": [
            {"action": "c2pa.created", "digitalSourceType": AI_SOURCE, "softwareAgent": {"name": "Midjourney v6"}},
        ]}}],
    }
    signed = io.BytesIO()
    with c2pa.Builder(manifest) as builder:
        builder.sign(signer, f"image/{fmt.lower()}", io.BytesIO(encode(photo(), fmt)), signed)
    return signed.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_c2pa_signed_by_an_untrusted_certificate(signing_chain, fmt: str):
    claims = read_c2pa(c2pa_signed(signing_chain, fmt), fmt)
    assert claims.state is C2paState.VALID_UNTRUSTED and claims.detail == ""
    assert claims.claim_generator == "Test Image Generator 2.1"
    assert claims.signer == "Test Signer, Forensics test suite"
    assert claims.actions == ({"action": "c2pa.created", "digitalSourceType": AI_SOURCE,
                               "softwareAgent": "Midjourney v6"},)


def test_c2pa_claims_in_evidence_metadata_and_summary(signing_chain, tmp_path: Path):
    path = tmp_path / "signed.jpg"
    path.write_bytes(c2pa_signed(signing_chain, "JPEG"))
    metadata = load_evidence(path).metadata
    assert metadata["c2pa"]["state"] == "valid_untrusted" and metadata["declares_ai"] is True
    summary = metadata["summary"]
    assert "not on a trust list (anyone can create such a certificate)" in summary[1]
    assert "C2PA declares AI-generated (IPTC digital source type trainedAlgorithmicMedia)." in summary
    assert "Generator hint: C2PA software agent of c2pa.created names Midjourney ('Midjourney v6')." in summary


def test_c2pa_file_changed_after_signing_is_invalid(signing_chain):
    signed = bytearray(c2pa_signed(signing_chain, "JPEG"))
    signed[-40] ^= 0xFF  # a byte of the compressed pixels, which the manifest's hash covers
    claims = read_c2pa(bytes(signed), "JPEG")
    assert claims.state is C2paState.INVALID and "assertion.dataHash.mismatch" in claims.detail
    provenance = read_provenance(bytes(signed), "JPEG")
    assert "present but INVALID" in provenance.summary_lines()[1]


def test_c2pa_trusted_when_the_signer_chains_to_a_configured_anchor(signing_chain):
    _, _, ca_pem = signing_chain
    claims = read_c2pa(c2pa_signed(signing_chain, "JPEG"), "JPEG", trust_anchors_pem=ca_pem)
    assert claims.state is C2paState.TRUSTED


def test_c2pa_broken_trust_list_is_unchecked_not_invalid(signing_chain):
    claims = read_c2pa(c2pa_signed(signing_chain, "JPEG"), "JPEG", trust_anchors_pem="not a certificate")
    assert claims.state is C2paState.UNCHECKED and "trust list is not valid" in claims.detail


def test_c2pa_library_unavailable_is_reported_not_raised(monkeypatch):
    monkeypatch.setitem(sys.modules, "c2pa", None)  # makes `import c2pa` raise ImportError
    provenance = read_provenance(encode(photo(), "JPEG"), "JPEG")
    assert provenance.c2pa.state is C2paState.UNCHECKED
    assert provenance.summary_lines()[1].startswith("C2PA could not be checked: the C2PA library could not be "
                                                    "loaded (ModuleNotFoundError")


def test_c2pa_format_without_embedding():
    claims = read_c2pa(encode(photo(), "BMP"), "BMP")
    assert claims.state is C2paState.ABSENT and "cannot carry" in claims.detail


def test_to_dict_is_json_round_trippable(signing_chain):
    provenance = read_provenance(c2pa_signed(signing_chain, "PNG"), "PNG")
    data = provenance.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["c2pa"]["state"] == "valid_untrusted" and data["summary"] == provenance.summary_lines()
