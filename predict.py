"""Finds the faces in photos, folders, videos and cameras and tells the expression of each; in a
video, follows every person.

Usage:
    python predict.py examples/astronaut.jpg                   # the shipped model, MTCNN face detector
    python predict.py photos/ clip.mp4 --every 5 --out results  # a folder's images and videos
    python predict.py interview.mp4 --annotate-video            # each person's id and emotion drawn
    python predict.py lecture.mp4 --detect-every 3 --start 60 --end 600
    python predict.py camera:0 --out session                    # live until Ctrl-C or --end
    python predict.py group.jpg --min-face 24                   # smaller faces too (slower)
    python predict.py crops/ --detector none                    # every image already is one face
    python predict.py photo.jpg --model models/0.694167.h5 --tta
    python predict.py photo.jpg --model model_list.txt          # a weighted ensemble

MTCNN finds the faces (turned, small, several per photo) with their eyes; each face is turned so its
eyes are level (--no-align: not) and cut out as FER2013's faces were (a square around the face with
the detector's own margin, greyscale, 48x48), then classified by the same prediction path as
test.py. Writes, in --out: predictions.csv (one row per face: source,frame,face,x,y,width,height,
label,emotion, one probability per class of the model (FER2013's seven: angry, disgust, fear, happy,
sad, surprise, neutral), detector_score, annotated: the annotated copy the face is drawn in, time:
seconds from a video's start, person: the id of the person in a video), <name>_faces.png for each
image with a face. In a video each face gets its person's id (numbered by first appearance, kept
while they move, are covered or leave and come back within seconds), and its probabilities, label
and emotion are smoothed over the person's neighbouring --smooth seconds; each video gets
<name>_people.csv (a row per person: times, frames seen, share of each class, dominant emotion),
<name>_emotions.png (each person's emotions over time) and, with --annotate-video, <name>_faces.mp4.
These names are the toolkit's, so an existing file is never replaced: the new one gets a -1, -2, ...
suffix. Folders are read one level deep, files sorted by name; a file there that is neither an image
nor a video is skipped with a warning. Guide: docs/video.md.
"""

import os
import sys

from common import cli, faces, files, model_lists, video


def main():
    parser = cli.ArgumentParser(__doc__)
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="image files (jpg, png, webp, gif, bmp, tiff, ...), video files (mp4, avi, mov, "
                             "mkv, ...), folders of them, or camera:N for OpenCV's camera N (live)")
    parser.add_argument("--model", type=cli.model_or_shipped, default=files.DEFAULT_SHIPPED_MODEL,
                        help="a .h5 or .keras model, or a model list of 'WEIGHT PATH' lines (soft voting), "
                             f"{cli.SHIPPED_MODEL_WORDS} (default: the model in pretrained/)")
    parser.add_argument("--out", type=cli.output_folder, default="predictions",
                        help="folder for predictions.csv and the annotated copies (created if missing)")
    cli.add_face_options(parser)
    cli.add_video_options(parser)
    parser.add_argument("--annotate-video", action="store_true",
                        help="also write each video with each person's id, box and emotion drawn on it")
    parser.add_argument("--no-annotate", action="store_true",
                        help="write the CSV files only: no annotated image copies, no video timelines")
    parser.add_argument("--blur", action="store_true",
                        help="blur each face under its box and label in the annotated photos and videos, "
                             "so they can be shared without showing faces")
    cli.add_prediction_options(parser)
    parser.set_defaults(batch_size=256)
    options = parser.parse_args()
    video_settings = cli.video_settings(options)

    sources, warnings = faces.collect_sources(options.inputs)
    with cli.naming("--start", f"{video_settings.start:g}"):
        video.check_time_range([source.path for source in sources if source.kind == "video"], video_settings.start)
    if any(files.same_folder(path, options.out) for path in options.inputs):
        warnings.append(f"--out {options.out} is also an input folder: a later run on it will read the "
                        "annotated copies written there as photos (--no-annotate writes the CSV files only)")
    model_path = options.model
    model_lists.check_model_source(model_path)  # a bad list line is named before TensorFlow loads
    if options.annotate_video:
        faces.check_opencv_can_open(os.path.abspath(options.out), "a folder to write videos in")
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)

    from common import face_prediction, prediction  # TensorFlow loads only after the input checked out

    classifier = prediction.load_classifier(model_path, options.precision, options.pixel_scale)
    run = face_prediction.FacePredictionRun(
        classifier, faces.make_detector(options.detector, options.min_face), options.out, tta=options.tta,
        annotate_images=not options.no_annotate, annotate_videos=options.annotate_video,
        batch_size=options.batch_size, align=options.align, video_settings=video_settings, blur=options.blur,
        show_progress=sys.stderr.isatty())
    run.start(live=any(source.kind == "camera" for source in sources))
    try:
        for source in face_prediction.progress(sources):
            run.add(source)
        summary = run.finish()
    except BaseException:
        run.abandon()
        raise
    report(summary, options.out, model_path)


def report(summary, out_dir, model_path):
    from common import face_prediction

    print("\n".join(face_prediction.describe(summary)))
    annotated = summary.written[1:]
    if annotated:
        print(f"{len(annotated)} annotated {'copy' if len(annotated) == 1 else 'copies'} in {out_dir}, "
              f"e.g. {annotated[0]}")
    for people_file in summary.people_files:
        print(f"people: {people_file}")
    for timeline in summary.timelines:
        print(f"emotions over time: {timeline}")
    print(f"model: {model_path}")
    print(summary.written[0])


if __name__ == "__main__":
    cli.run(main)
