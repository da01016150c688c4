"""Container IDs and names, as Docker makes them: 64 random hex digits, and an
``adjective_scientist`` name when the user gives none.

Spec: Docker's ``run --name`` reference (names match ``[a-zA-Z0-9][a-zA-Z0-9_.-]+``); moby's
``pkg/namesgenerator``. Man page: getrandom(2) (what ``os.urandom`` reads;
``secrets.token_hex`` is the same call, with ``hmac`` and OpenSSL imported around it)."""

import os
import random
import re

from minidocker.errors import MinidockerError

ADJECTIVES = ["admiring", "bold", "brave", "clever", "eager", "focused", "gentle", "happy",
              "jolly", "keen", "lucid", "nifty", "quirky", "serene", "tender", "vibrant"]
SCIENTISTS = ["babbage", "curie", "dijkstra", "hopper", "kerrisk", "lovelace", "noether",
              "ritchie", "shannon", "thompson", "torvalds", "turing"]
VALID_NAME = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]*$")


def new_id() -> str:
    return os.urandom(32).hex()


def random_name(taken: set[str]) -> str:
    while True:
        name = f"{random.choice(ADJECTIVES)}_{random.choice(SCIENTISTS)}"
        if name not in taken:
            return name
        name += str(random.randint(0, 9))
        if name not in taken:
            return name


def check_name(name: str) -> str:
    if not VALID_NAME.match(name):
        raise MinidockerError(f'Invalid container name "{name}": only [a-zA-Z0-9][a-zA-Z0-9_.-] '
                              "are allowed")
    return name.lstrip("/")
