"""Knowledge distillation: a student learns from the averaged class probabilities of teachers (one
model or a model list) mixed with the hard labels.

The teachers label every training face once, averaging each face and its mirror (or the 10 views
of `--teacher-tta`); each teacher's result and their average are cached beside the output, keyed by
the teachers' file contents, the faces and the views, so the next student with the same teachers
skips it and an interrupted run keeps the teachers it finished. Teachers of the student's data must
have been validated on the student's validation rows (`data.check_not_trained_on`, before TensorFlow
loads), so that none of them has trained on those rows; a teacher of other data is named.

Loss per face: (1 - w) * cross-entropy(label, student) + w * T^2 * KL(teacher_T || student_T),
where `_T` means the distribution sharpened or softened by temperature T (p^(1/T), renormalised)
and w is `--distill-weight`.
"""

import hashlib
import os

import keras
import numpy as np

from common import data, files


def cache_key(paths, images, tta):
    """A digest of the teachers' files, the faces and the views."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    digest.update(np.ascontiguousarray(images).tobytes())
    digest.update(b"tta-zooms" if tta else b"mirror")  # a cache of other views has another key
    return digest.hexdigest()[:16]


def teacher_probabilities(teachers, class_names, images, tta, cache_folder):
    """(rows, classes) weighted average of the probabilities of `images` by the `teachers`
    (`model_lists.ListedModel`s), whose classes must be `class_names`; from the cache in
    `cache_folder` when it has them, else computed and kept there (`cache_folder=None`: computed, not
    kept). Each teacher's probabilities are kept as soon as they are computed, so an interrupted run
    starts again after the teachers it finished, and lists sharing a teacher share its work."""
    from common import prediction  # TensorFlow loads here

    paths = [listed.path for listed in teachers]
    cache_path = _cache_path(cache_folder, paths, images, tta)
    if cache_path and os.path.exists(cache_path):
        print(f"teacher probabilities from {cache_path}")
        return np.load(cache_path, allow_pickle=False)
    vote = prediction.Vote(len(images), len(class_names))
    for number, listed in enumerate(teachers, start=1):
        print(f"teacher {number} of {len(teachers)}: {listed.path}", flush=True)
        vote.add(_one_teacher(listed, class_names, images, tta, cache_folder), listed.weight)
    probabilities = vote.soft_probabilities().astype(np.float32)
    _keep(cache_path, probabilities)
    return probabilities


def teacher_targets(teachers, train_set, val_set, tta, cache_folder):
    """The teachers' probabilities of the training faces, the student's targets, and of the
    validation faces (None without validation rows), with which the validation loss is the training
    loss on those rows."""
    train_targets = teacher_probabilities(teachers, train_set.class_names, train_set.images, tta, cache_folder)
    if not len(val_set):
        return train_targets, None
    return train_targets, teacher_probabilities(teachers, val_set.class_names, val_set.images, tta, cache_folder)


def _one_teacher(listed, class_names, images, tta, cache_folder):
    """One teacher's (rows, classes) probabilities of `images`, from its own cache when kept."""
    from common import classes, prediction

    cache_path = _cache_path(cache_folder, [listed.path], images, tta)
    if cache_path and os.path.exists(cache_path):
        return np.load(cache_path, allow_pickle=False)
    classifier = prediction.load_classifier([listed])
    classes.check_same(class_names, classifier.class_names, f"the teacher {listed.path}", "the student's data")
    if tta:
        probabilities = classifier.probabilities(images, tta=True)
    else:
        probabilities = (classifier.probabilities(images)
                         + classifier.probabilities(images[:, :, ::-1])) / 2
    _keep(cache_path, probabilities.astype(np.float32))
    return probabilities


def _cache_path(cache_folder, paths, images, tta):
    return cache_folder and os.path.join(cache_folder, f".teacher-{cache_key(paths, images, tta)}.npy")


def _keep(cache_path, probabilities):
    if cache_path and not os.path.exists(cache_path):  # a list of one teacher: kept as that teacher
        with files.atomic_output(cache_path) as temporary_path, open(temporary_path, "wb") as handle:
            np.save(handle, probabilities)


def with_teacher_labelled_faces(train_set, soft_targets, faces, face_targets):
    """(training rows, their targets) with the unlabelled `faces` added: each labelled with the
    teachers' most likely class, its distillation target the teachers' probabilities `face_targets`
    (rows, classes). Prints how many joined, by class."""
    labels = face_targets.argmax(axis=1)
    labelled = data.Dataset(faces.images, labels, faces.ids, faces.source, class_names=train_set.class_names)
    counts = np.bincount(labels, minlength=len(train_set.class_names))
    print(f"{len(faces)} unlabelled faces of {faces.source} join the {len(train_set)} training rows, labelled "
          "by the teachers: " + ", ".join(f"{name} {count}" for name, count in zip(train_set.class_names, counts)))
    return (data.with_model_labelled_rows(train_set, labelled, f"{train_set.source} + unlabelled {faces.source}"),
            np.concatenate([soft_targets, face_targets]))


def sharpened(probabilities, temperature):
    """p^(1/T), renormalised: the distribution at temperature T."""
    logits = keras.ops.log(keras.ops.clip(probabilities, 1e-7, 1.0)) / temperature
    return keras.ops.softmax(logits, axis=-1)


class DistillationLoss(keras.losses.Loss):
    """Targets are (batch, 2 x classes): the one-hot label, then the teacher's probabilities."""

    def __init__(self, weight, temperature, label_smoothing=0.0, name="distillation", **kwargs):
        super().__init__(name=name, **kwargs)
        self.weight, self.temperature, self.label_smoothing = weight, temperature, label_smoothing
        self.hard_loss = keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing,
                                                              reduction=None)

    def call(self, y_true, y_pred):
        classes = y_pred.shape[-1]
        labels, teacher = y_true[:, :classes], y_true[:, classes:]
        hard = self.hard_loss(labels, y_pred)
        teacher_t = sharpened(teacher, self.temperature)
        student_t = sharpened(y_pred, self.temperature)
        soft = keras.ops.sum(teacher_t * (keras.ops.log(keras.ops.clip(teacher_t, 1e-7, 1.0))
                                          - keras.ops.log(keras.ops.clip(student_t, 1e-7, 1.0))), axis=-1)
        return (1 - self.weight) * hard + self.weight * self.temperature ** 2 * soft

    def get_config(self):
        return {**super().get_config(), "weight": self.weight, "temperature": self.temperature,
                "label_smoothing": self.label_smoothing}


def accuracy(y_true, y_pred):
    """Accuracy against the one-hot label in the first target columns, one per class (named as
    Keras's own)."""
    labels = keras.ops.argmax(y_true[:, :y_pred.shape[-1]], axis=-1)
    return keras.ops.cast(keras.ops.equal(labels, keras.ops.argmax(y_pred, axis=-1)), "float32")
