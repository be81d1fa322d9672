"""Houston crop (``houston_dataset.mat`` of featurefusion_igarss2021): 48 bands, 12 classes.

The file stores no wavelengths. Ours are the band centres of the 2018 IEEE GRSS Data Fusion
Contest CASI-1500 cube (its header 20170218_UH_CASI_S4_NAD83.hdr), assumed as the crop's
origin: 48 bands over 380-1050 nm, and the crop's vegetation spectra put the red minimum,
red edge, O2-A dip (760.9 nm) and 940 nm water band on these centres. Labels (``clasLabs``,
0 = unlabelled) lie on a 4x finer grid: each pixel takes the mode of its 4x4 block. The codes
are the file's; it names no classes.
"""

from rsbench.datasets.sources.hsi import HsiSource, HsiTarget, register_hsi_source
from rsbench.datasets.sources.matfile import mat_reader

WAVELENGTHS = (374.4, 388.7, 403.1, 417.4, 431.7, 446.1, 460.4, 474.7, 489.0, 503.4, 517.7,
               532.0, 546.3, 560.6, 574.9, 589.2, 603.6, 617.9, 632.2, 646.5, 660.8, 675.1,
               689.4, 703.7, 718.0, 732.3, 746.6, 760.9, 775.2, 789.5, 803.8, 818.1, 832.4,
               846.7, 861.1, 875.4, 889.7, 904.0, 918.3, 932.6, 946.9, 961.2, 975.5, 989.8,
               1004.2, 1018.5, 1032.8, 1047.1)

HOUSTON = register_hsi_source(HsiSource(
    "houston", "Houston crop", mat_reader("hyprImg", {"land_cover": "clasLabs"}),
    bands=48, wavelengths=WAVELENGTHS,
    wavelength_source="assumed: DFC2018 CASI-1500 header (the .mat stores none)",
    targets=(HsiTarget("land_cover", {c: f"class {c}" for c in range(1, 13)}),),
    label_scale=4, label_rule="mode",
    file_hint="data/houston_dataset.mat of JuanMarcosRamirez/featurefusion_igarss2021",
))
