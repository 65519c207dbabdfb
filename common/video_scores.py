"""How well a video run followed the people of a clip whose truth is known (`generated_clips`).

Both tables have a row per face and frame: `truth` with frame, person, x, y, width, height, visible
(the share of the face in view), label; `found` with frame, person, x, y, width, height, label.
In each frame the found boxes are matched one-to-one to the true faces (Hungarian method on
intersection over union, at least `min_overlap`). True faces less than `min_visible` in view are
left out of every figure: finding them is not required, and a box matched to one is not false.

- found: the share of the true faces that a box matched;
- false faces per frame: boxes that matched no true face;
- identity F1: true and found people are paired one-to-one to share the most matched frames; the
  frames a pair shares are right, all others wrong (IDF1 of Ristani et al., 2016);
- id switches: for each true person, how often the found id matched to them differs from the last
  one matched (CLEAR MOT's count);
- label changes: of the found labels along each found person, and of the true labels along each
  true person; per minute of that person in view.
"""

import dataclasses

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from common import tracking


@dataclasses.dataclass
class Scores:
    frames: int
    true_faces: int
    found_share: float
    false_per_frame: float
    identity_f1: float
    id_switches: int
    person_minutes: float
    found_label_changes_per_minute: float
    true_label_changes_per_minute: float
    matched: pd.DataFrame  # the matched pairs: frame, true person, found person, true label, found label

    @property
    def switches_per_minute(self):
        return self.id_switches / max(self.person_minutes, 1e-9)


def match_frame(true_boxes, found_boxes, min_overlap):
    """[(true index, found index)] of the one-to-one matches of a frame with overlap >= min_overlap."""
    if not true_boxes or not found_boxes:
        return []
    overlaps = np.array([[tracking.overlap(true, found) for found in found_boxes] for true in true_boxes])
    rows, columns = linear_sum_assignment(-overlaps)
    return [(row, column) for row, column in zip(rows, columns) if overlaps[row, column] >= min_overlap]


def score(truth, found, frames, rate, min_overlap=0.3, min_visible=0.6):
    """The Scores of `found` against `truth` over `frames` frames at `rate` frames/s."""
    box = ["x", "y", "width", "height"]
    pairs, false_faces, matched_to_hidden = [], 0, 0
    found_by_frame = dict(tuple(found.groupby("frame")))
    for frame, true_rows in truth.groupby("frame"):
        found_rows = found_by_frame.pop(frame, found.iloc[:0])
        matches = match_frame([tuple(row) for row in true_rows[box].to_numpy()],
                              [tuple(row) for row in found_rows[box].to_numpy()], min_overlap)
        false_faces += len(found_rows) - len(matches)
        for row, column in matches:
            true_row, found_row = true_rows.iloc[row], found_rows.iloc[column]
            if true_row["visible"] >= min_visible:
                pairs.append((frame, true_row["person"], found_row["person"], true_row["label"], found_row["label"]))
            else:
                matched_to_hidden += 1
    false_faces += sum(len(rows) for rows in found_by_frame.values())
    matched = pd.DataFrame(pairs, columns=["frame", "true_person", "found_person", "true_label", "found_label"])
    counted_truth = truth[truth["visible"] >= min_visible]
    return Scores(
        frames=frames, true_faces=len(counted_truth),
        found_share=len(matched) / max(len(counted_truth), 1),
        false_per_frame=false_faces / max(frames, 1),
        identity_f1=_identity_f1(matched, len(counted_truth), len(found) - matched_to_hidden),
        id_switches=_id_switches(matched),
        person_minutes=len(counted_truth) / rate / 60,
        found_label_changes_per_minute=_changes_per_minute(found, "person", rate),
        true_label_changes_per_minute=_changes_per_minute(counted_truth, "person", rate),
        matched=matched)


def _identity_f1(matched, true_count, found_count):
    """2 IDTP / (true faces + found faces), IDTP the frames shared by the best one-to-one pairing."""
    if matched.empty:
        return 0.0
    shared = matched.groupby(["true_person", "found_person"]).size()
    true_ids = sorted(set(matched["true_person"]))
    found_ids = sorted(set(matched["found_person"]))
    table = np.zeros((len(true_ids), len(found_ids)))
    for (true_person, found_person), count in shared.items():
        table[true_ids.index(true_person), found_ids.index(found_person)] = count
    rows, columns = linear_sum_assignment(-table)
    return 2 * table[rows, columns].sum() / max(true_count + found_count, 1)


def _id_switches(matched):
    switches = 0
    for _, rows in matched.sort_values("frame").groupby("true_person"):
        ids = rows["found_person"].to_numpy()
        switches += int(np.count_nonzero(ids[1:] != ids[:-1]))
    return switches


def _changes_per_minute(table, person_column, rate):
    """Label changes along each person's rows in frame order, per minute of rows."""
    if table.empty:
        return 0.0
    changes = 0
    for _, rows in table.sort_values("frame").groupby(person_column):
        labels = rows["label"].to_numpy()
        changes += int(np.count_nonzero(labels[1:] != labels[:-1]))
    return changes / (len(table) / rate / 60)
