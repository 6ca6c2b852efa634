"""Recognise harvested face sets: the victim's photos after a face-swap tool has cut them into aligned
face crops, and the containers tools pack them in.

One aligned face is weak evidence (`review`): a photo editor does not write DeepFaceLab's APP15 pickle or
faceswap's iTXt dict, but one crop is not yet a set. A folder or an archive of many is a face set
(`block`), reported with the count, the face types and a few `source_filename` values, which often say
where the photos were taken from. Metadata is read from segment and chunk structure; pickles are walked by
the symbolic reader and Python-literal dicts by a bounded `ast.literal_eval`, never loaded.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence

from jieyao.formats.faces import AlignedFace, faces_in_jpeg, faces_in_png, read_faceset_pak, read_fsa
from jieyao.formats.jpeg import read_jpeg
from jieyao.formats.pickle import read_pickle
from jieyao.formats.png import read_png
from jieyao.model import Category, Decision, Finding
from jieyao.recognise.base import DIRECTORY, Item, Recogniser

MIN_SET = 5
"""Aligned faces in one folder or archive that make a face set; DFL and faceswap need dozens to hundreds."""
SHOWN = 5
MAX_META_PICKLE = 64 << 20
JPEG_SEGMENTS_BYTES = 4 << 20
"""APPn segments sit before the scan data; a DFL dict is at most 64 KiB. Past this nothing is looked for."""
FACE_RULES = {"DeepFaceLab": "faceset.dfl_face", "faceswap": "faceset.faceswap_face"}
SET_RULE = "faceset.aligned_set"
_IMAGE_NAME = re.compile(r"\.(jpe?g|png)$", re.IGNORECASE)
_NUMBERED_IMAGE = re.compile(r"^\d+\.(png|jpe?g)$", re.IGNORECASE)
_WHERE = {"jpeg-app15": "JPEG APP15 segment", "png-fcWp": "PNG fcWp chunk", "png-iTXt": "PNG iTXt 'faceswap' chunk"}


def _q(values: Iterable[object]) -> str:
    return ", ".join(repr(v) for v in values)


class FacesetRecogniser(Recogniser):
    name = "facesets"
    formats = frozenset({"jpeg", "png", "faceset-pak", "zlib-pickle", "pickle", "zip", DIRECTORY})

    def __init__(self, min_set: int = MIN_SET) -> None:
        self.min_set = min_set

    def recognise(self, item: Item) -> Iterable[Finding]:
        fmt = item.format
        if fmt == "jpeg":
            face = faces_in_jpeg(read_jpeg(item.blob.view(min(item.size, JPEG_SEGMENTS_BYTES))))
            return [self._face(item, face)] if face is not None else []
        if fmt == "png":
            face = faces_in_png(read_png(item.blob.view()))
            return [self._face(item, face)] if face is not None else []
        if fmt == "faceset-pak":
            return self._pak(item)
        if fmt == "zlib-pickle":
            return self._fsa(item)
        if fmt == "pickle":
            return self._meta_dat(item)
        if fmt == "zip":
            return self._fsz(item)
        return []

    # -- one face -----------------------------------------------------------------------------------

    def _face(self, item: Item, face: AlignedFace) -> Finding:
        facts: dict[str, object] = {"tool": face.tool, "where": face.where, "face_type": face.face_type,
                                    "landmarks": face.landmarks, "source_filename": face.source_filename}
        said = [f"face_type {face.face_type!r}" if face.face_type else "no face_type",
                f"{face.landmarks} landmarks" if face.landmarks is not None else "no landmarks"]
        if face.source_filename:
            said.append(f"cut from {face.source_filename!r}")
        evidence = [f"aligned face crop made by {face.tool}: its {_WHERE.get(face.where, face.where)} holds the "
                    f"tool's face metadata ({', '.join(said)})"]
        if face.problems:
            facts["problems"] = list(face.problems)
            evidence.append("metadata is partial or corrupt: " + "; ".join(face.problems))
        evidence.append("one aligned face is weak evidence; a folder or archive of them is a face set")
        return Finding(rule=FACE_RULES.get(face.tool, "faceset.aligned_face"), category=Category.FACESET,
                       decision=Decision.REVIEW, family=face.tool, confidence=0.8 if face.valid else 0.6,
                       member=item.member, sha256=item.sha256, evidence=tuple(evidence), facts=facts)

    # -- containers of faces ------------------------------------------------------------------------

    def _pak(self, item: Item) -> Iterator[Finding]:
        pak = read_faceset_pak(item.blob)
        if pak is None:
            return
        evidence = [f"DeepFaceLab packed face set (faceset.pak layout: version {pak.version}, a pickled list of "
                    f"{pak.samples if pak.samples is not None else '?'} sample configs, an offset table, the face "
                    "JPEGs)"]
        if pak.face_types:
            evidence.append("face types: " + ", ".join(f"{t} ×{n}" for t, n in pak.face_types))
        if pak.persons:
            evidence.append(f"{len(pak.persons)} people named: {_q(pak.persons[:SHOWN])}")
        if pak.source_filenames:
            evidence.append(f"cut from {_q(pak.source_filenames[:SHOWN])}")
        if pak.first_face is not None:
            evidence.append(f"first embedded JPEG carries DFL metadata (face_type {pak.first_face.face_type!r})")
        if pak.problems:
            evidence.append("problems: " + "; ".join(pak.problems))
        if pak.prefix_only:
            evidence.extend(pak.notes)
        ok = (pak.offsets_ok or (pak.prefix_only and bool(pak.samples_read))) and not pak.problems
        yield Finding(rule="faceset.dfl_pak", category=Category.FACESET,
                      decision=Decision.BLOCK if ok else Decision.REVIEW, family="DeepFaceLab",
                      confidence=0.97 if ok else 0.7, member=item.member, sha256=item.sha256,
                      evidence=tuple(evidence),
                      facts={"faces": pak.samples, "face_types": [t for t, _ in pak.face_types],
                             "persons": list(pak.persons[:20]), "source_filenames": list(pak.source_filenames[:10]),
                             "problems": list(pak.problems)})

    def _fsa(self, item: Item) -> Iterator[Finding]:
        fsa = read_fsa(item.blob)
        if fsa is None:
            return
        evidence = [f"faceswap alignments file (zlib-compressed pickle with __meta__ and __data__): version "
                    f"{fsa.version!r}, {fsa.frames} frames"]
        if fsa.frame_names:
            evidence.append(f"frames {_q(fsa.frame_names[:SHOWN])}")
        if fsa.problems:
            evidence.append("problems: " + "; ".join(fsa.problems))
        many = (fsa.frames or 0) >= self.min_set and not fsa.problems
        yield Finding(rule="faceset.faceswap_alignments", category=Category.FACESET,
                      decision=Decision.BLOCK if many else Decision.REVIEW, family="faceswap",
                      confidence=0.9 if many else 0.7, member=item.member, sha256=item.sha256,
                      evidence=(*evidence, "each face in it carries landmarks and a thumbnail of the face"),
                      facts={"frames": fsa.frames, "version": fsa.version, "problems": list(fsa.problems)})

    def _meta_dat(self, item: Item) -> Iterator[Finding]:
        """DFL's `aligned/meta.dat`: a pickle dict {face file name: (shape, face dict)} saved by "faceset
        metadata save", i.e. every face's APP15 dict in one file."""
        head = item.blob.head(4096)
        if b"face_type" not in head and b"landmarks" not in head:
            return
        summary = read_pickle(item.blob.view(min(item.size, MAX_META_PICKLE)))
        names = [k for k in summary.keys if _IMAGE_NAME.search(k)]
        if summary.top != "dict" or not names or len(names) < 0.9 * len(summary.keys):
            return
        yield Finding(rule="faceset.dfl_meta", category=Category.FACESET, decision=Decision.REVIEW,
                      family="DeepFaceLab", confidence=0.85, member=item.member, sha256=item.sha256,
                      evidence=(f"DeepFaceLab face-set metadata dump (meta.dat): a pickle dict of {len(names)} face "
                                f"image names ({_q(names[:SHOWN])}) with DFL face dicts (face_type, landmarks)",),
                      facts={"faces": summary.length, "names": names[:10]})

    def _fsz(self, item: Item) -> Iterator[Finding]:
        """roop-unleashed saves a face set as `<name>.fsz`: a plain zip of `0.png`, `1.png`, ... crops. The
        contents are ordinary images, so the extension is what tells; the listing confirms it."""
        if item.children is None or not item.name.lower().endswith(".fsz"):
            return
        files = [e.name for e in item.children if not e.name.endswith("/")]
        if not files or not all(_NUMBERED_IMAGE.match(n) for n in files):
            return
        yield Finding(rule="faceset.roop_fsz", category=Category.FACESET, decision=Decision.REVIEW,
                      family="roop-unleashed", confidence=0.75, member=item.member, sha256=item.sha256,
                      evidence=(f"roop-unleashed face set: a .fsz zip of {len(files)} numbered face crops "
                                f"({_q(sorted(files)[:SHOWN])})",),
                      facts={"faces": len(files)})

    # -- sets -----------------------------------------------------------------------------------------

    def summarise(self, item: Item, findings: Sequence[Finding]) -> Iterable[Finding]:
        """One face-set finding for a folder or archive holding `min_set` or more aligned faces, not counting
        faces that a nested archive or sub-folder has already been summarised for."""
        sets = [f.member for f in findings if f.rule == SET_RULE and f.member]
        faces = [f for f in findings if f.rule in FACE_RULES.values() and f.member is not None
                 and not any(f.member.startswith(s + "!") or f.member.startswith(s + "/") for s in sets)]
        if len(faces) < self.min_set:
            return []
        tools = Counter(f.family or "?" for f in faces)
        types = Counter(str(f.facts.get("face_type")) for f in faces if f.facts.get("face_type"))
        sources = list(dict.fromkeys(str(f.facts["source_filename"]) for f in faces
                                     if f.facts.get("source_filename")))
        folders = Counter(_folder(f.member or "") for f in faces)
        damaged = sum(1 for f in faces if f.facts.get("problems"))
        where = "folder" if item.format == DIRECTORY else item.format
        evidence = [f"{len(faces)} aligned face crops in this {where} ("
                    + ", ".join(f"{tool} {n}" for tool, n in tools.most_common()) + "): a harvested face set"]
        if types:
            evidence.append("face types: " + ", ".join(f"{t} ×{n}" for t, n in types.most_common()))
        if sources:
            evidence.append(f"cut from {len(sources)} source images, e.g. {_q(sources[:SHOWN])}")
        if len(folders) > 1 or "" not in folders:
            evidence.append("in " + ", ".join(f"{d or '.'}/ ({n})" for d, n in folders.most_common(SHOWN)))
        if damaged:
            evidence.append(f"{damaged} of them have partial or corrupt metadata")
        return [Finding(rule=SET_RULE, category=Category.FACESET, decision=Decision.BLOCK,
                        family=tools.most_common(1)[0][0], confidence=0.95, member=item.member, sha256=item.sha256,
                        evidence=tuple(evidence),
                        facts={"faces": len(faces), "tools": dict(tools), "face_types": dict(types),
                               "source_filenames": sources[:10], "folders": dict(folders.most_common(10))})]

    def rule_help(self) -> dict[str, str]:
        return {
            "faceset.dfl_face": "A JPEG (APP15 segment) or PNG (fcWp chunk) carrying DeepFaceLab's aligned-face "
                                "metadata: a face crop cut by DFL's extractor. Weak alone; a set of them is a face "
                                "set.",
            "faceset.faceswap_face": "A PNG whose iTXt 'faceswap' chunk holds faceswap's alignment dict: a face crop "
                                     "extracted by faceswap.",
            SET_RULE: "A folder or archive holding many aligned face crops: a face set harvested for training a "
                      "face-swap model, with the count, face types and the source image names.",
            "faceset.dfl_pak": "DeepFaceLab's faceset.pak: a whole face set packed into one file (sample list, offset "
                               "table, face JPEGs).",
            "faceset.faceswap_alignments": "faceswap's .fsa alignments: landmarks, masks and thumbnails of every face "
                                           "found in a video or photo set.",
            "faceset.dfl_meta": "DeepFaceLab's meta.dat: the metadata of every face of a face set in one pickle.",
            "faceset.roop_fsz": "roop-unleashed's .fsz face set: a zip of numbered face crops of one person.",
        }


def _folder(member: str) -> str:
    """The folder a face sits in, inside the set: `data_src/aligned` for `data_src/aligned/0001_0.jpg`."""
    path = member.rsplit("!", 1)[-1]
    return path.rsplit("/", 1)[0] if "/" in path else ""
