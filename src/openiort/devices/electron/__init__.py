"""Mobile electron linac for breast IORT (ELIOT technique): beam data, tables and shielding discs.

The built-in device is the LIAC HWL (Sordina IORT Technologies) as published by the open-source
project radiofisica-hgugm/kali_mc (MIT licence): 3D Monte Carlo dose in water for 9 applicators x
4 bevels x 4 energies (penEasy 2020 / PENELOPE 2018; Ayala R et al., Med Phys 2025;52:e18040),
with output factors and R90 measured at Hospital Universitario Gregorio Maranon, Madrid. Every
number and its source is in ``data/electron/`` (see its README).

Beam coordinates follow the data: ``x`` lateral, pointing where a bevelled beam travels with
depth; ``y`` lateral, perpendicular to it; ``depth`` along the inward normal of the water (tissue)
surface through the centre of the applicator face (the *clinical axis*: PDD, R90 and the output
factor are defined on it, also for bevelled applicators).

Beam data are read from a configurable source: the compact copy shipped in the package (default),
a compact ``.npz`` written by :func:`build_compact_beam_file`, or a directory of the original
per-beam ``C{a}B{b}_{e}MeV.npz`` files; the environment variable ``OPENIORT_ELECTRON_BEAM_DATA``
overrides the default. The SHA-256 of what was read is recorded in every result; the packaged
copy is checked against the hash in the device manifest at load.

The package, by job: :mod:`.device` (the device: manifest, measured tables, monitor chamber,
beam lookup, typical beam-on time), :mod:`.beam_data` (beam-data files: locating, hashing,
reading, compacting), :mod:`.beams` (one beam's 3D dose and its derived quantities),
:mod:`.discs` (shielding discs), :mod:`.files` (the packaged data files and planning defaults),
:mod:`.machine_format` and :mod:`.machine` (the machine-data format of a department's machine
and of the shipped examples: YAML plus CSV tables, read and checked), :mod:`.pdd_beams` (3D dose
from measured PDD and profiles), :mod:`.errors`.
"""

from openiort.datafiles import sha256_file
from openiort.devices.electron.beam_data import (
    QUANTUM,
    build_compact_beam_file,
    sha256_beam_directory,
)
from openiort.devices.electron.beams import BeamCharacteristics, ElectronBeam, beam_key
from openiort.devices.electron.device import (
    BEAM_DATA_ENV,
    ElectronDevice,
    Settings,
    TypicalBeamOnTime,
    _load_device_cached,
    load_electron_device,
    with_monitor_chamber,
)
from openiort.devices.electron.discs import ShieldingDisc, get_disc, shielding_discs
from openiort.devices.electron.errors import ElectronDataError, ElectronSettingError
from openiort.devices.electron.files import (
    DATA_DIR,
    DEFAULT_MANIFEST,
    DISCS_FILE,
    PLANNING_DEFAULTS_FILE,
    planning_defaults,
    planning_value,
)
from openiort.devices.electron.machine import EXAMPLE_MACHINES, load_machine_data
from openiort.devices.electron.machine_format import machine_json_schema

__all__ = [
    "BEAM_DATA_ENV",
    "DATA_DIR",
    "DEFAULT_MANIFEST",
    "DISCS_FILE",
    "EXAMPLE_MACHINES",
    "PLANNING_DEFAULTS_FILE",
    "QUANTUM",
    "BeamCharacteristics",
    "ElectronBeam",
    "ElectronDataError",
    "ElectronDevice",
    "ElectronSettingError",
    "Settings",
    "ShieldingDisc",
    "TypicalBeamOnTime",
    "_load_device_cached",
    "beam_key",
    "build_compact_beam_file",
    "get_disc",
    "load_electron_device",
    "load_machine_data",
    "machine_json_schema",
    "planning_defaults",
    "planning_value",
    "sha256_beam_directory",
    "sha256_file",
    "shielding_discs",
    "with_monitor_chamber",
]
