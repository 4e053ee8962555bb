"""Container and volume names and IDs: validation (before they become paths) and generation."""

from __future__ import annotations

import os
import re

from runtime.engine.errors import InvalidArgument

# docker's rule, plus a length cap: a name becomes a file name in the store.
NAME_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}")
ID_RE = re.compile(r"[0-9a-f]{64}")
MAX_NAME = 128

_ADJECTIVES = (
    "admiring adoring agitated amazing angry awesome blissful bold brave busy charming clever cool "
    "compassionate confident cranky dazzling determined distracted dreamy eager ecstatic elastic "
    "elegant eloquent epic fervent festive focused friendly frosty gallant gifted goofy gracious happy "
    "hardcore heuristic hopeful hungry infallible inspiring jolly jovial keen kind laughing loving "
    "lucid magical modest musing mystifying naughty nervous nice nifty nostalgic objective optimistic "
    "peaceful pedantic pensive practical priceless quirky quizzical relaxed reverent romantic sad "
    "serene sharp silly sleepy stoic strange stupefied suspicious sweet tender thirsty trusting "
    "upbeat vibrant vigilant vigorous wizardly wonderful xenodochial youthful zealous zen"
).split()
_NOUNS = (
    "albattani allen almeida archimedes ardinghelli babbage banach bardeen bartik bell bhabha "
    "blackwell bohr booth borg bose boyd brahmagupta brattain brown carson cerf chandrasekhar "
    "chatterjee clarke curie darwin davinci dijkstra dubinsky easley einstein elbakyan elion "
    "engelbart euclid euler faraday fermat fermi feynman franklin galileo gates goldberg goldstine "
    "goodall hamilton hawking heisenberg hodgkin hoover hopper hypatia jackson jennings johnson "
    "kalam kapitsa keller kepler khorana kilby knuth lamarr lamport leakey lovelace lumiere mahavira "
    "mayer mccarthy mcclintock meitner mendel merkle minsky mirzakhani morse napier newton nobel "
    "noether panini pascal pasteur payne perlman pike poincare ptolemy raman ramanujan ritchie "
    "rosalind saha sammet shannon shaw shockley sinoussi snyder spence stonebraker swanson tesla "
    "thompson torvalds turing varahamihira villani volhard wescoff wiles williams wilson wing wozniak "
    "wright yalow yonath"
).split()


def validate_name(name: str, what: str = "container") -> str:
    """Return `name` (without docker's optional leading '/') if it is a valid name, else raise."""
    if name.startswith("/"):
        name = name[1:]
    if len(name) > MAX_NAME:
        raise InvalidArgument(f"invalid {what} name ({len(name)} characters): at most {MAX_NAME} are allowed")
    if not NAME_RE.fullmatch(name):
        shown = name if len(name) <= 64 else name[:61] + "..."
        raise InvalidArgument(
            f"invalid {what} name {shown!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )
    return name


def new_id() -> str:
    """A fresh 64-hex container ID (docker's shape)."""
    return os.urandom(32).hex()


def random_name() -> str:
    """A docker-style adjective_scientist name."""
    r = int.from_bytes(os.urandom(4), "little")
    return f"{_ADJECTIVES[r % len(_ADJECTIVES)]}_{_NOUNS[(r >> 16) % len(_NOUNS)]}"
