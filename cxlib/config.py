"""Project paths and configuration files (YAML), and the taxonomy of canonical codes.

One of the few modules that read files: `load_yaml`, `load_taxonomy`, `load_pipeline`,
`load_pseudonym_key`. Everything else in cxlib receives what these return.
"""

from __future__ import annotations

import os
import re
import secrets
import unicodedata
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import yaml

PIPELINE_FILE = Path("config") / "pipeline.yml"
TAXONOMY_FILE = Path("config") / "taxonomy.yml"
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)     # libyaml's safe loader: ~9x faster when present
KEY_ENV = "CX_PSEUDONYM_KEY"
KEY_FILE_ENV = "CX_KEY_FILE"
DEFAULT_KEY_FILE = Path.home() / ".config" / "cx-insights" / "pseudonym.key"


class ConfigError(ValueError):
    """A configuration file is missing or malformed."""


def find_project_dir(start: str | Path | None = None) -> Path:
    """The nearest folder at or above `start` (default: cwd) holding config/pipeline.yml."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / PIPELINE_FILE).is_file():
            return folder
    raise ConfigError(f"no {PIPELINE_FILE} found in {here} or any parent folder")


def load_yaml(path: str | Path) -> dict:
    """Parse a YAML file into a dict, with a message that names the file on failure."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: file not found")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=SAFE_LOADER)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def fold(text: str) -> str:
    """Lower-case, trim, collapse inner whitespace and fold umlauts: 'Geschäfts Kunde ' -> 'geschaefts kunde'."""
    text = unicodedata.normalize("NFC", str(text)).strip().lower()
    for src, dst in (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss")):
        text = text.replace(src, dst)
    return re.sub(r"\s+", " ", text)


@dataclass(frozen=True)
class Taxonomy:
    """The parsed config/taxonomy.yml. Sections are dicts code -> attributes."""

    data: dict

    def section(self, name: str) -> dict:
        if name not in self.data:
            raise ConfigError(f"taxonomy has no section '{name}'")
        return self.data[name]

    def codes(self, name: str) -> list[str]:
        """Canonical codes of a section, in file order: codes('channels') -> ['phone', ...]."""
        return list(self.section(name))

    def label(self, name: str, code: str, lang: str = "en") -> str:
        entry = self.section(name).get(code) or {}
        return entry.get(lang) or entry.get("en") or str(code)

    def aliases(self, name: str) -> dict[str, str]:
        """Folded spelling -> code for a section, including the codes and labels themselves."""
        out: dict[str, str] = {}
        for code, entry in self.section(name).items():
            entry = entry or {}
            for spelling in (code, entry.get("en"), entry.get("de"), *(entry.get("aliases") or [])):
                if spelling is not None:
                    out.setdefault(fold(spelling), code)
        return out

    @cached_property
    def stage_of_touchpoint(self) -> dict[str, str]:
        return {code: e["stage"] for code, e in self.section("touchpoints").items()}

    @cached_property
    def complaint_category_of_reason(self) -> dict[str, str]:
        return {c: e["complaint"] for c, e in self.section("contact_reasons").items() if e.get("complaint")}

    @cached_property
    def moment_reasons(self) -> list[str]:
        """Contact reasons flagged as moments of truth, the classic four first."""
        flagged = [c for c, e in self.section("contact_reasons").items() if e.get("moment")]
        first = list(self.data.get("moments_of_truth", []))
        return first + [c for c in flagged if c not in first]

    def themes(self) -> dict:
        return self.section("themes")


def load_taxonomy(path: str | Path) -> Taxonomy:
    """Read and check config/taxonomy.yml: every touchpoint names a known stage, etc."""
    data = load_yaml(path)
    for section in ("stages", "channels", "touchpoints", "contact_reasons", "themes"):
        if section not in data:
            raise ConfigError(f"{path}: missing section '{section}'")
    stages = set(data["stages"])
    bad = {tp: e.get("stage") for tp, e in data["touchpoints"].items() if e.get("stage") not in stages}
    if bad:
        raise ConfigError(f"{path}: touchpoints with unknown stage: {bad}")
    categories = set(data.get("complaint_categories", {}))
    bad = {r: e["complaint"] for r, e in data["contact_reasons"].items() if e.get("complaint") and e["complaint"] not in categories}
    if bad:
        raise ConfigError(f"{path}: contact reasons with unknown complaint category: {bad}")
    unknown = [m for m in data.get("moments_of_truth", []) if m not in data["contact_reasons"]]
    if unknown:
        raise ConfigError(f"{path}: moments_of_truth not among contact_reasons: {unknown}")
    return Taxonomy(data)


WORD_LISTS = ("stopwords.yml", "sentiment.yml")
SHIPPED_CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"   # the word lists shipped with cx-insights


def word_list_path(taxonomy: str | Path, name: str) -> Path:
    """A word list of the text analysis for a taxonomy anywhere: `name` (stopwords.yml or
    sentiment.yml) beside the taxonomy file when it is there, else the shipped one in config/.

        word_list_path("/data/acme/taxonomy.yml", "stopwords.yml") -> .../config/stopwords.yml
    """
    if name not in WORD_LISTS:
        raise ConfigError(f"unknown word list {name!r}; known: {list(WORD_LISTS)}")
    beside = Path(taxonomy).parent / name
    return beside if beside.is_file() else SHIPPED_CONFIG_DIR / name


def load_word_lists(taxonomy: str | Path) -> tuple[dict, dict]:
    """(stopwords, sentiment lexicon) for a taxonomy: the files beside it, else the shipped ones.

        stopwords, lexicon = config.load_word_lists(taxonomy)
    """
    return tuple(load_yaml(word_list_path(taxonomy, name)) for name in WORD_LISTS)


KEY_MIN_BYTES = 16          # a shorter key is guessable: refuse it


def load_pseudonym_key(*, create: bool = True) -> bytes:
    """The secret key for pseudonymous customer ids (HMAC-SHA256, see `clean.pseudonymise`).

    Order: environment variable CX_PSEUDONYM_KEY (its text, UTF-8), else the key file named by
    CX_KEY_FILE, else ~/.config/cx-insights/pseudonym.key. A missing key file is created
    (32 random bytes as 64 hex digits, mode 0600, folder 0700) only when `create` is true;
    otherwise it is an error, so a scheduled run never silently starts a new pseudonym space.
    Refused with ConfigError: a key shorter than 16 bytes, and (POSIX) a key file that group or
    others may read or write (fix: chmod 600 FILE). Messages name where the key was looked for,
    never the key.

        key = load_pseudonym_key(create=False)     # scheduled runs
    """
    if os.environ.get(KEY_ENV):
        return _checked_key(os.environ[KEY_ENV], f"environment variable {KEY_ENV}")
    path = key_file()
    if not path.is_file() and create:
        _create_key_file(path)
    if path.is_file():
        _check_key_permissions(path)
        return _checked_key(path.read_text(encoding="utf-8").strip(), f"key file {path}")
    if path.exists():
        raise ConfigError(f"{path}: the pseudonymisation key file is not a regular file")
    raise ConfigError(
        "no pseudonymisation key found, and this run may not create one (notebook 01 parameter create_key "
        "is false, as it should be for scheduled runs: a new key would give every customer a new pseudonym).\n"
        f"Looked for: the environment variable {KEY_ENV} (not set); "
        + (f"the file named by {KEY_FILE_ENV}: {path} (missing)" if os.environ.get(KEY_FILE_ENV)
           else f"{KEY_FILE_ENV} (not set), so the default file {path} (missing)")
        + ".\nProvide the key your earlier runs used: copy its file to that path (chmod 600), or point "
        f"{KEY_FILE_ENV} at it, or put its text into {KEY_ENV}. Only for a first run: run once with "
        "create_key true (the default of notebook 01 in JupyterLab) to create a new key there; see docs/privacy.md."
    )


def key_file() -> Path:
    """The key file used when CX_PSEUDONYM_KEY is unset: CX_KEY_FILE, else the default file."""
    return Path(os.environ.get(KEY_FILE_ENV) or DEFAULT_KEY_FILE).expanduser()


def _checked_key(text: str, where: str) -> bytes:
    key = text.encode("utf-8")
    if not key:
        raise ConfigError(f"{where}: the pseudonymisation key is empty")
    if len(key) < KEY_MIN_BYTES:
        raise ConfigError(f"{where}: the pseudonymisation key has {len(key)} bytes, fewer than {KEY_MIN_BYTES}: "
                          "too easy to guess. Use a random key, e.g. `python -c \"import secrets; "
                          "print(secrets.token_hex(32))\"`")
    return key


def _check_key_permissions(path: Path) -> None:
    if os.name != "posix":
        return
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise ConfigError(f"{path}: the pseudonymisation key file has mode {mode:04o}; others than its owner may "
                          f"read or change it. Restrict it: chmod 600 {path}")


def _create_key_file(path: Path) -> None:
    """A new random key at `path` (mode 0600, parent folder created 0700); a file created
    meanwhile by a concurrent run is kept."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        if os.name == "posix":
            os.fchmod(handle.fileno(), 0o600)     # whatever the umask
        handle.write(secrets.token_hex(32) + "\n")
