"""The streaming passes of build-taiga over the ENVI files, strip by strip (bounded memory).

(1) survey of ``forestdata_stands`` (stand ids, value counts per split region), (2) one read of
the cube's bands into the staged ``image`` raster (validity mask, training band statistics),
(3) the staged target rasters. Each pass is a resumable stage of the dataset writer.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rsbench.datasets.builders.taiga_stats import IGNORE
from rsbench.datasets.builders.taiga_windows import no_data_free
from rsbench.datasets.format.writer import DatasetWriter
from rsbench.errors import InputError
from rsbench.progress import progress

STATS_EVERY = 4  # band mean/std use every 4th training pixel (min/max use all)


class TaigaPasses:
    """The passes; :class:`~rsbench.datasets.builders.taiga.TaigaBuilder` provides the rasters
    (``cube``, ``stands``), options and ``writer``."""

    writer: DatasetWriter

    def _strip(self, bands: int, itemsize: int) -> int:
        return max(1, self.strip_bytes // max(1, self.cube.samples * bands * itemsize))

    # ------------------------------------------------------------------ pass 1: survey
    def survey(self) -> dict:
        """Stand ids to staging, value counts per (region, variables), labelled bounding box."""
        info = self.writer.stage_info("survey")
        if info is not None:
            return info
        H, W = self.cube.lines, self.cube.samples
        step = self._strip(self.stands.bands, 4)
        frames = []
        rmin, rmax, cmin, cmax = H, -1, W, -1
        sid_file = self.writer.raster("stand_id", np.int32, (H, W))
        cols = [v.band for v in self.variables]
        names = [v.name for v in self.variables]
        for r0 in progress(range(0, H, step), desc="survey stands", unit="strip"):
            r1 = min(H, r0 + step)
            lab = self.stands.read_rows(r0, r1)
            sid = lab[..., self.sid_band].astype(np.int32)
            sid[sid < 0] = 0
            sid_file.write_rows(r0, sid)
            rr, cc = np.nonzero(sid > 0)
            if not len(rr):
                continue
            rmin, rmax = min(rmin, r0 + rr.min()), max(rmax, r0 + rr.max())
            cmin, cmax = min(cmin, cc.min()), max(cmax, cc.max())
            vals = lab[rr, cc][:, cols]
            region = sid[rr, cc] if self.opts.split == "stands" else \
                ((r0 + rr) // self.block) * (W // self.block + 1) + cc // self.block
            df = pd.DataFrame(vals, columns=names)
            df.insert(0, "stand", sid[rr, cc])
            df.insert(0, "region", region.astype(np.int64))
            frames.append(df.value_counts().rename("n").reset_index())
        sid_file.close()
        if rmax < 0:
            raise InputError(f"{self.stands.data} has no labelled pixel (standID > 0); it is "
                             "not a TAIGA reference raster or it is empty")
        table = pd.concat(frames, ignore_index=True)
        table = table.groupby(list(table.columns[:-1]), as_index=False)["n"].sum()
        table.to_parquet(self.writer.staged("survey.parquet"), index=False)
        info = {"bbox": [int(rmin), int(rmax) + 1, int(cmin), int(cmax) + 1]}
        self._check_grid(info["bbox"])  # before the stage is recorded: a retry is not blocked
        self.writer.finish_stage("survey", info)
        return info

    def region_codes(self, region_split: dict[int, int], crop: tuple[int, int, int, int]
                     ) -> tuple[np.ndarray, np.ndarray]:
        """(split code, labelled) rasters over the crop, from the staged stand ids."""
        r0, r1, c0, c1 = crop
        f = open(self.writer.staged("stand_id.npy"), "rb")  # noqa: SIM115 - plain reads, bounded RSS
        np.lib.format.read_magic(f)
        np.lib.format.read_array_header_1_0(f)
        base = f.tell()
        code = np.zeros((r1 - r0, c1 - c0), dtype=np.uint8)
        labelled = np.zeros((r1 - r0, c1 - c0), dtype=bool)
        keys = np.array(sorted(region_split), dtype=np.int64)
        vals = np.array([region_split[k] for k in keys], dtype=np.uint8)
        W = self.cube.samples
        step = self._strip(4, 4)
        for a in range(r0, r1, step):
            b = min(r1, a + step)
            f.seek(base + a * W * 4)
            s = np.fromfile(f, dtype=np.int32, count=(b - a) * W).reshape(b - a, W)[:, c0:c1]
            labelled[a - r0:b - r0] = s > 0
            if self.opts.split == "stands":
                reg = s.astype(np.int64)
                ok = s > 0
            else:
                rr = np.arange(a, b)[:, None] // self.block
                cc = np.arange(c0, c1)[None, :] // self.block
                reg = rr * (W // self.block + 1) + cc
                ok = np.ones_like(s, dtype=bool)
            pos = np.clip(np.searchsorted(keys, reg), 0, len(keys) - 1)
            hit = ok & (keys[pos] == reg)
            code[a - r0:b - r0] = np.where(hit, vals[pos], 0)
        f.close()
        return code, labelled

    # ------------------------------------------------------------------ pass 2: image
    def copy_image(self, crop: tuple[int, int, int, int], code: np.ndarray) -> dict:
        """Cropped band subset of the cube into staging image.npy; validity; train band stats."""
        info = self.writer.stage_info("image")
        if info is not None:
            return info
        r0, r1, c0, c1 = crop
        nb = len(self.bands)
        dtype = self.cube.dtype.newbyteorder("=")
        img = self.writer.raster("image", dtype, (r1 - r0, c1 - c0, nb))
        valid = np.zeros((r1 - r0, c1 - c0), dtype=bool)
        nodata = self.cube.ignore_value()
        nodata = 0 if nodata is None else nodata
        vmin = np.full(nb, np.inf)
        vmax = np.full(nb, -np.inf)
        s1 = np.zeros(nb)
        s2 = np.zeros(nb)
        n = n_all = 0
        step = self._strip(nb, dtype.itemsize)
        for a in progress(range(r0, r1, step), desc="copy cube", unit="strip"):
            b = min(r1, a + step)
            x = self.cube.read_rows(a, b, self.bands, c0, c1)
            img.write_rows(a - r0, x)
            ok = no_data_free(x, nodata)
            valid[a - r0:b - r0] = ok
            sel = x[ok & (code[a - r0:b - r0] == 1)]
            if len(sel):
                vmin = np.minimum(vmin, sel.min(0))
                vmax = np.maximum(vmax, sel.max(0))
                sub = sel[::STATS_EVERY].astype(np.float64)  # mean/std from a pixel sample
                s1 += sub.sum(0)
                s2 += (sub * sub).sum(0)
                n += len(sub)
                n_all += len(sel)
        img.close()
        np.save(self.writer.staged("valid.npy"), valid)
        if n == 0:
            raise InputError(f"{self.cube.data}: no valid image pixel lies in the training "
                             "region; check that the cube and forestdata_stands overlap")
        mean = s1 / n
        std = np.sqrt(np.maximum(s2 / n - mean ** 2, 0))
        info = {"min": vmin.tolist(), "max": vmax.tolist(), "mean": mean.tolist(),
                "std": std.tolist(), "pixels": int(n_all),
                "mean_std_from_every": STATS_EVERY, "nodata": nodata}
        self.writer.finish_stage("image", info)
        return info

    # ------------------------------------------------------------------ pass 3: targets
    def write_targets(self, crop, valid: np.ndarray, stats: dict, windows: pd.DataFrame
                      ) -> pd.DataFrame:
        """targets_cls / targets_reg over the crop; centre-pixel targets into the index."""
        r0, r1, c0, c1 = crop
        H, W = r1 - r0, c1 - c0
        luts = []
        for v in self.cat:
            codes = stats[v.name]["codes"]
            lut = np.full(max(max(codes), max(v.values, default=0)) + 2, IGNORE, np.uint8)
            for i, c in enumerate(codes):
                lut[c] = i
            luts.append(lut)
        centre_r = windows["row"].to_numpy()
        centre_c = windows["col"].to_numpy()
        cls_out = np.full((len(windows), len(self.cat)), IGNORE, dtype=np.int64)
        reg_out = np.full((len(windows), len(self.cont)), np.nan, dtype=np.float32)
        sid_out = np.zeros(len(windows), dtype=np.int64)
        done = self.writer.stage_info("targets") is not None
        if not done:
            fc = self.writer.raster("targets_cls", np.uint8, (H, W, len(self.cat)))
            fr = self.writer.raster("targets_reg", np.float32, (H, W, len(self.cont))) \
                if self.cont else None  # a declared source may have no continuous target
        step = self._strip(self.stands.bands, 4 * 4)
        for a in progress(range(r0, r1, step), desc="targets", unit="strip"):
            b = min(r1, a + step)
            lab = self.stands.read_rows(a, b, c0=c0, c1=c1)
            ok = (lab[..., self.sid_band] > 0) & valid[a - r0:b - r0]
            cls = np.full((b - a, W, len(self.cat)), IGNORE, dtype=np.uint8)
            for j, (v, lut) in enumerate(zip(self.cat, luts)):
                x = lab[..., v.band]
                inside = ok & (x >= 0) & (x < len(lut))
                cls[..., j][inside] = lut[x[inside]]
            reg = np.full((b - a, W, len(self.cont)), np.nan, dtype=np.float32)
            for j, v in enumerate(self.cont):
                st = stats[v.name]
                x = lab[..., v.band]
                good = ok & (x >= 0)
                phys = np.minimum(x[good] * v.scale, st["clip"])
                reg[..., j][good] = (phys - st["min"]) / (st["max"] - st["min"])
            if not done:
                fc.write_rows(a - r0, cls)
                if fr is not None:
                    fr.write_rows(a - r0, reg)
            sel = np.flatnonzero((centre_r >= a - r0) & (centre_r < b - r0))
            if len(sel):
                lr, lc = centre_r[sel] - (a - r0), centre_c[sel]
                cls_out[sel] = cls[lr, lc]
                reg_out[sel] = reg[lr, lc]
                sid_out[sel] = lab[lr, lc, self.sid_band]
        if not done:
            fc.close()
            if fr is not None:
                fr.close()
            self.writer.finish_stage("targets", {})
        windows = windows.copy()
        windows["stand_id"] = sid_out
        for j, v in enumerate(self.cat):
            windows[v.name] = cls_out[:, j]
        for j, v in enumerate(self.cont):
            windows[v.name] = reg_out[:, j]
        return windows
