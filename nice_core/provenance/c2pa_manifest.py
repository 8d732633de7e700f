"""Optional C2PA manifests (c2pa-python): a signed claim that the file is an AI-generated edit.

Signing needs the user's key and certificate chain (PEM; the key in PKCS#8), given as
``--c2pa-key``/``--c2pa-cert``; nothing is signed without them. Install with ``pip install nice-core[c2pa]``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from nice_core.errors import NiceError
from nice_core.io.atomic import temporary_sibling

#: IPTC digital source type for a composite that includes elements made by a trained model.
AI_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
_MIME = {".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/quicktime", ".png": "image/png",
         ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}


def _c2pa():
    try:
        import c2pa
    except ImportError:
        raise NiceError("C2PA signing needs c2pa-python: pip install 'nice-core[c2pa]'") from None
    return c2pa


def manifest_definition(kind: str) -> dict:
    from nice_core import __version__

    return {
        "claim_generator_info": [{"name": "nice-core", "version": __version__}],
        "title": f"nice-core {kind}",
        "assertions": [{"label": "c2pa.actions", "data": {"actions": [
            # "created" (not "edited", which C2PA ties to a parent ingredient we do not embed), with an
            # AI-composite source type.
            {"action": "c2pa.created", "digitalSourceType": AI_SOURCE_TYPE,
             "description": f"synthetic face manipulation ({kind}) by nice-core"}]}}],
    }


def sign_file(path: str | Path, key: str | Path, cert: str | Path, kind: str = "face manipulation",
              name: str | Path | None = None) -> Path:
    """Embed a signed C2PA manifest in ``path`` (replaced atomically).

    ``name`` is the file's final name when ``path`` is a temporary one (its extension gives the format).

    Raises:
        NiceError: c2pa-python missing, unreadable key/cert, an unsupported format, or a signing failure.
    """
    c2pa = _c2pa()
    path = Path(path)
    suffix = Path(name or path).suffix.lower()
    mime = _MIME.get(suffix)
    if mime is None:
        raise NiceError(f"C2PA signing supports {', '.join(sorted(_MIME))}, not {suffix or 'none'}: {name or path}")
    try:
        key_bytes, cert_bytes = Path(key).read_bytes(), Path(cert).read_bytes()
    except OSError as err:
        raise NiceError(f"cannot read the C2PA key or certificate: {err}") from None
    alg = c2pa.C2paSigningAlg.ES256 if b"EC" in key_bytes or b"PRIVATE KEY" in key_bytes else None
    tmp = temporary_sibling(path)
    try:
        signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(alg, cert_bytes, key_bytes, None))
        builder = c2pa.Builder(json.dumps(manifest_definition(kind)))
        with open(path, "rb") as source, open(tmp, "wb") as dest:
            builder.sign(signer, mime, source, dest)
        os.replace(tmp, path)
    except c2pa.C2paError as err:
        raise NiceError(f"C2PA signing of {path} failed: {str(err).splitlines()[0][:200]}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_manifest(path: str | Path) -> dict | None:
    """The active C2PA manifest of a file as a dict, or ``None`` (none, or c2pa-python not installed)."""
    try:
        import c2pa
    except ImportError:
        return None
    try:
        store = json.loads(c2pa.Reader(str(path)).json())
    except Exception:  # c2pa raises for files without a manifest; that is an answer, not an error
        return None
    return store.get("manifests", {}).get(store.get("active_manifest", ""))
