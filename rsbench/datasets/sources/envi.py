"""ENVI rasters (``.hdr`` + raw binary): header parsing and writing, bounded-memory row reads.

TAIGA ships as ENVI files far larger than memory (a 37 GB cube), so rows are read with plain
positioned file reads into small buffers rather than memory maps: the process's resident memory
stays the size of one strip whatever the file size. Georeferencing (transform, CRS) is left to
rasterio/GDAL, which read the same files.

The TAIGA reference raster stores per-band metadata in the header field ``band descriptions``
as JSON (the TAIGA code writes it without the outermost braces); :func:`band_descriptions`
accepts it with or without them.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rsbench.datasets.sources.envi_layout import check_interleave
from rsbench.errors import InputError

# ENVI "data type" codes -> numpy dtypes (byte order applied separately)
ENVI_DTYPES = {1: "u1", 2: "i2", 3: "i4", 4: "f4", 5: "f8", 12: "u2", 13: "u4", 14: "i8",
               15: "u8"}
# header fields whose {...} value is free text, not a comma-separated list
TEXT_FIELDS = {"description", "band descriptions", "coordinate system string"}


def parse_header_text(text: str) -> dict[str, Any]:
    """ENVI header text -> {lower-case key: str or list[str]}; braces may span lines."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != "ENVI":
        raise ValueError("the first line is not 'ENVI'")
    fields: dict[str, Any] = {}
    i = 1
    while i < len(lines):
        line = lines[i]
        i += 1
        if "=" not in line:
            continue
        key, value = line.split("=", 1)
        key, value = key.strip().lower(), value.strip()
        if value.startswith("{"):
            depth = value.count("{") - value.count("}")
            while depth > 0 and i < len(lines):
                value += "\n" + lines[i].strip()
                depth += lines[i].count("{") - lines[i].count("}")
                i += 1
            inner = value[1:value.rfind("}")] if "}" in value else value[1:]
            if key in TEXT_FIELDS:
                fields[key] = inner.strip()
            else:
                fields[key] = [v.strip() for v in inner.replace("\n", " ").split(",")]
        else:
            fields[key] = value
    return fields


def format_header(fields: dict[str, Any]) -> str:
    """{key: value} -> ENVI header text (lists and text fields in braces)."""
    out = ["ENVI"]
    for key, value in fields.items():
        if isinstance(value, (list, tuple, np.ndarray)):
            value = "{" + ", ".join(str(v) for v in value) + "}"
        elif key in TEXT_FIELDS:
            value = "{" + str(value) + "}"
        out.append(f"{key} = {value}")
    return "\n".join(out) + "\n"


def header_for(data_path: str | os.PathLike) -> Path:
    """The header of a data file: ``<stem>.hdr`` or ``<file>.hdr``."""
    p = Path(data_path)
    for cand in (p.with_suffix(".hdr"), p.with_name(p.name + ".hdr")):
        if cand.exists():
            return cand
    raise InputError(f"{p} has no ENVI header ({p.with_suffix('.hdr').name}); "
                     "copy the .hdr file next to it")


def data_for(header_path: str | os.PathLike) -> Path:
    """The binary data file of a header: the stem alone or with a usual raster extension."""
    h = Path(header_path)
    stem = h.with_suffix("")
    for cand in (stem, *(stem.with_name(stem.name + e) for e in (".img", ".dat", ".bsq",
                                                                    ".bil", ".bip", ".raw"))):
        if cand.exists() and cand.is_file():
            return cand
    raise InputError(f"{h} has no data file next to it (expected {stem.name} or "
                     f"{stem.name}.img/.dat); copy the binary file next to its header")


@dataclass
class EnviRaster:
    """An ENVI raster on disk; rows are read as (rows, cols, bands) arrays, never the whole file."""

    data: Path
    header: Path
    lines: int
    samples: int
    bands: int
    dtype: np.dtype
    interleave: str
    offset: int
    fields: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def open(cls, path: str | os.PathLike) -> EnviRaster:
        """Open from the header or the data file path."""
        p = Path(path)
        if not p.exists():
            raise InputError(f"{p} does not exist; give an existing ENVI file")
        hdr = p if p.suffix.lower() == ".hdr" else header_for(p)
        data = data_for(hdr) if p.suffix.lower() == ".hdr" else p
        try:
            fields = parse_header_text(hdr.read_text(errors="replace"))
        except ValueError as exc:
            raise InputError(f"{hdr} is not an ENVI header ({exc}); give the .hdr file of "
                             "the raster") from None
        lines, samples, bands = (_int_field(fields, hdr, k, 1) for k in ("lines", "samples",
                                                                             "bands"))
        code = _int_field(fields, hdr, "data type", 1)
        offset = _int_field(fields, hdr, "header offset", 0, default=0)
        order = _int_field(fields, hdr, "byte order", 0, default=0)
        interleave = str(fields.get("interleave", "bsq")).lower()
        if code not in ENVI_DTYPES:
            raise InputError(f"{hdr} has ENVI data type {code}, which rsbench does not read; "
                             "convert the raster to an integer or float type")
        if interleave not in ("bsq", "bil", "bip"):
            raise InputError(f"{hdr} has interleave {interleave!r}; expected bsq, bil or bip")
        if order not in (0, 1):
            raise InputError(f"{hdr}: 'byte order = {order}' must be 0 (little-endian) or 1 "
                             "(big-endian); fix that header line")
        dtype = np.dtype(ENVI_DTYPES[code]).newbyteorder("<" if order == 0 else ">")
        r = cls(data, hdr, lines, samples, bands, dtype, interleave, offset, fields)
        expected = offset + lines * samples * bands * dtype.itemsize
        size = data.stat().st_size
        if size < expected:
            raise InputError(f"{data} holds {size} bytes but its header describes {expected}; "
                             "the file is truncated, download it again")
        if size > expected:
            raise InputError(
                f"{data} holds {size} bytes but {hdr.name} describes {expected} (header offset "
                f"{offset} + {lines} lines x {samples} samples x {bands} bands x "
                f"{dtype.itemsize} bytes); one of those header fields is wrong: fix it, or "
                "download both files again")
        try:
            check_byte_order(r)
            check_interleave(r)
        except PermissionError:
            raise InputError(f"{data} cannot be read (permission denied); fix its permissions "
                             "(e.g. chmod u+r)") from None
        return r

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.lines, self.samples, self.bands

    @property
    def band_names(self) -> list[str]:
        names = self.fields.get("band names")
        return list(names) if isinstance(names, list) else []

    def ignore_value(self) -> float | None:
        """The header's ``data ignore value`` (no data), if any."""
        v = self.fields.get("data ignore value")
        try:
            return float(v) if v not in (None, "") else None
        except (TypeError, ValueError):
            return None

    def wavelengths(self) -> np.ndarray | None:
        """Band centre wavelengths as floats in the header's units, if given."""
        wl = self.fields.get("wavelength")
        if not isinstance(wl, list) or len(wl) != self.bands:
            return None
        return np.array([float(w) for w in wl])

    def read_rows(self, r0: int, r1: int, bands: np.ndarray | list[int] | None = None,
                  c0: int = 0, c1: int | None = None) -> np.ndarray:
        """Rows r0..r1 (columns c0..c1) of the chosen bands as a native-order (h, w, b) array."""
        c1 = self.samples if c1 is None else c1
        bands = np.arange(self.bands) if bands is None else np.asarray(bands)
        h, nb, item = r1 - r0, len(bands), self.dtype.itemsize
        W = self.samples
        with open(self.data, "rb") as f:
            if self.interleave == "bsq":
                out = np.empty((nb, h, W), dtype=self.dtype)
                for j, b in enumerate(bands):
                    f.seek(self.offset + (int(b) * self.lines + r0) * W * item)
                    f.readinto(memoryview(out[j]).cast("B"))
                out = out[:, :, c0:c1].transpose(1, 2, 0)
            elif self.interleave == "bil":
                buf = np.empty((h, self.bands, W), dtype=self.dtype)
                f.seek(self.offset + r0 * self.bands * W * item)
                f.readinto(memoryview(buf).cast("B"))
                out = buf[:, bands, c0:c1].transpose(0, 2, 1)
            else:
                buf = np.empty((h, W, self.bands), dtype=self.dtype)
                f.seek(self.offset + r0 * W * self.bands * item)
                f.readinto(memoryview(buf).cast("B"))
                out = buf[:, c0:c1][:, :, bands] if nb != self.bands else buf[:, c0:c1]
        out = np.ascontiguousarray(out)
        return out if out.dtype.isnative else out.astype(out.dtype.newbyteorder("="))

    def strip_rows(self, bands: int | None = None, budget: int = 128 << 20) -> int:
        """Rows per strip so that one strip of ``bands`` bands stays under ``budget`` bytes."""
        per_row = self.samples * (bands or self.bands) * self.dtype.itemsize
        return max(1, min(self.lines, budget // max(per_row, 1)))


FIELD_MEANING = {"lines": "the number of rows", "samples": "the number of columns",
                 "bands": "the number of bands", "data type": "an ENVI data type code",
                 "header offset": "the bytes before the data (0 if none)",
                 "byte order": "0 (little-endian) or 1 (big-endian)"}


def _int_field(fields: dict[str, Any], hdr: Path, key: str, minimum: int,
               default: int | None = None) -> int:
    """A whole-number header field of at least ``minimum``, or one line naming it."""
    raw = fields.get(key)
    if raw is None or raw == "":
        if default is not None:
            return default
        raise InputError(f"{hdr} has no '{key}' field; it is not a complete ENVI header (add "
                         f"'{key} = ...', {FIELD_MEANING[key]})")
    try:
        value = int(str(raw).strip())
    except ValueError:
        value = None
    if value is None or value < minimum:
        shown = raw if isinstance(raw, str) else "{" + ", ".join(raw) + "}"
        need = "a whole number" if value is None else f"at least {minimum}"
        raise InputError(f"{hdr}: '{key} = {shown}' is not {need}; set it to "
                         f"{FIELD_MEANING[key]}")
    return value


SAMPLE_ROWS = 8  # rows spread over the file that the byte-order check reads
MIN_SAMPLES = 256  # fewer valid values than this: too few to judge the byte order


def _byte_entropy(values: np.ndarray) -> float:
    """Shannon entropy (bits) of a uint8 sample."""
    p = np.bincount(values, minlength=256) / max(len(values), 1)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def looks_byte_swapped(values: np.ndarray) -> bool:
    """True when ``values`` (native order, no-data removed) read better the other way round.

    In measured data the least significant byte varies most and the most significant byte
    (for floats: sign and exponent) least; when the order is wrong the two swap roles. Floats
    must also read as ordinary magnitudes (1e-20..1e20) more often the other way round, so
    integer-valued floats (whose low bytes are all zero) are not mistaken.
    """
    v = np.asarray(values).ravel()
    if v.dtype.itemsize < 2 or len(v) < MIN_SAMPLES:
        return False
    u = v.view(np.dtype(f"u{v.dtype.itemsize}"))
    low = (u & 0xFF).astype(np.uint8)
    high = (u >> (8 * (v.dtype.itemsize - 1))).astype(np.uint8)
    if _byte_entropy(high) <= _byte_entropy(low) + 1.0:
        return False
    if v.dtype.kind == "f":
        return _ordinary(v) < _ordinary(v.byteswap())
    return True


def _ordinary(x: np.ndarray) -> float:
    """Share of non-zero floats with a magnitude between 1e-20 and 1e20."""
    with np.errstate(all="ignore"):
        a = np.abs(x[x != 0].astype(np.float64))
    return float(np.mean(np.isfinite(a) & (a > 1e-20) & (a < 1e20))) if len(a) else 1.0


def _sample_band(raster: EnviRaster, band: int) -> np.ndarray:
    """Band ``band`` of SAMPLE_ROWS rows spread over the file (native order), read directly."""
    W, item, nb = raster.samples, raster.dtype.itemsize, raster.bands
    out = []
    with open(raster.data, "rb") as f:
        for r in np.unique(np.linspace(0, raster.lines - 1, SAMPLE_ROWS).astype(int)):
            r = int(r)
            if raster.interleave == "bsq":
                start, count, step = (band * raster.lines + r) * W, W, 1
            elif raster.interleave == "bil":
                start, count, step = (r * nb + band) * W, W, 1
            else:  # bip: the row's bands are interleaved pixel by pixel
                start, count, step = r * W * nb + band, (W - 1) * nb + 1, nb
            f.seek(raster.offset + start * item)
            row = np.frombuffer(f.read(count * item), dtype=raster.dtype)[::step]
            out.append(row.astype(row.dtype.newbyteorder("=")))
    return np.concatenate(out)


def check_byte_order(raster: EnviRaster) -> None:
    """Refuse a raster whose values look byte-swapped, naming the header's ``byte order`` field.

    Reads one band of a few rows spread over the file; zeros and the ``data ignore value`` are
    left out.
    """
    if raster.dtype.itemsize < 2 or raster.lines == 0 or raster.samples == 0:
        return
    values = _sample_band(raster, raster.bands // 2)
    keep = values != 0
    ignore = raster.ignore_value()
    if ignore is not None:
        keep &= values != ignore
    if not looks_byte_swapped(values[keep]):
        return
    order = int(raster.fields.get("byte order", 0))
    read_as = "little-endian" if order == 0 else "big-endian"
    sample = values[keep][:3]
    raise InputError(
        f"{raster.header}: 'byte order = {order}' reads {raster.data.name} as {read_as}, but the "
        f"values then look byte-swapped (e.g. {', '.join(str(x) for x in sample)}; the other "
        f"order gives {', '.join(str(x) for x in sample.byteswap())}); set 'byte order = "
        f"{1 - order}' in the header if the file was written that way, or download it again")


def band_descriptions(raster: EnviRaster) -> dict[str, dict]:
    """The JSON ``band descriptions`` field as {band name: description}, {} if absent."""
    raw = raster.fields.get("band descriptions")
    if not raw:
        return {}
    text = str(raw).strip()
    for cand in (text, "{" + text + "}", "{" + text + "}}", text + "}"):
        try:
            value = json.loads(cand)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    raise InputError(f"{raster.header}: the 'band descriptions' field is not JSON; fix or "
                     "remove that header line (class names then come from rsbench's defaults)")


def map_info(x0: float, y0: float, pixel: float, zone: int, north: bool = True) -> list[str]:
    """An ENVI ``map info`` list for a north-up UTM/WGS-84 grid with upper-left corner x0, y0."""
    return ["UTM", "1.000", "1.000", f"{x0:.3f}", f"{y0:.3f}", f"{pixel}", f"{pixel}",
            str(zone), "North" if north else "South", "WGS-84", "units=Meters"]


def normalise_band_name(name: str) -> str:
    """``basal_area*100_[m2/ha]`` -> ``basal_area``: the variable part of a TAIGA band name."""
    n = re.sub(r"\*\d+", "", name.strip().lower())
    n = re.sub(r"_?\[.*\]$", "", n)
    return n.strip("_ ")
