"""Everything the synthetic benchmark can show, as plain data: objects (name, shape, colour) and verbs.

A benchmark draws a subset (``SceneConfig.objects`` / ``SceneConfig.verbs``; ``script.build_vocabulary``
picks its classes and tasks from it). ``config.py`` validates configs against these names, ``scene.py``
draws them (a mask per shape name in ``SHAPES``, a motion per verb in ``VERB_MOTIONS``) and ``writer.py``
copies them to ``meta.json``. No drawing code here, so every synth module can import it.
"""

from __future__ import annotations

from dataclasses import dataclass

Colour = tuple[int, int, int]


@dataclass(frozen=True)
class ObjectSpec:
    name: str
    shape: str
    colour: Colour


# Colours lie at about the same L1 distance (250-300) from the table, so that no object's motion
# stands out in frame differences by contrast alone.
OBJECT_CATALOGUE: dict[str, ObjectSpec] = {
    spec.name: spec
    for spec in (
        ObjectSpec("tomato", "circle", (235, 30, 25)),
        ObjectSpec("lemon", "diamond", (225, 205, 35)),
        ObjectSpec("cucumber", "square", (20, 210, 40)),
        ObjectSpec("egg", "hexagon", (185, 185, 180)),
        ObjectSpec("onion", "triangle", (170, 40, 220)),
        ObjectSpec("blueberry", "star", (30, 60, 235)),
        ObjectSpec("carrot", "cross", (245, 130, 10)),
        ObjectSpec("mint", "ring", (40, 190, 190)),
    )
}

# Every verb a scene can perform; each has a motion pattern in ``scene.VERB_MOTIONS``.
VERBS: tuple[str, ...] = ("shake", "spin", "split", "press", "pour", "roll", "flip", "stir")
