"""A counter of FAQ and catalogue changes made in this process: readers of the catalogue (the
question index) compare it with what they last saw, so an import is answered at once without
the catalogue knowing who reads it. Changes made by other processes are found by a signature
query (``touchpoint.understanding.service``)."""

_generation = 0


def changed() -> None:
    global _generation
    _generation += 1


def generation() -> int:
    return _generation
