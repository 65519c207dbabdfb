"""Trains a CNN on labelled FER2013-style data and saves it named by its validation accuracy.

Usage:
    python train.py train.csv                      # the report's CNN and recipe: 20 epochs, batch 128
    python train.py train.csv --recipe strong      # VGG-style CNN, AdamW + cosine, strong augmentation
    python train.py train.csv --recipe strong --class-weight balanced  # a recipe, one option changed
    python train.py train.csv --recipe my_recipe.json  # a recipe of one's own: {"recipe": "strong", "epochs": 60}
    python train.py train.csv --recipe models/0.699167_settings.json --seed 1  # as that model, another seed
    python train.py data.npz --epochs 30 --seed 1  # from a csv_to_npz.py cache
    python train.py train.csv --precision fp32     # plain float32 instead of mixed bfloat16
    python train.py train.csv --labeled-ratio 0.5  # half the labels: semi_train.py's baseline
    python train.py data.npz --recipe strong --teacher model_list.txt   # distil an ensemble into one
    python train.py data.npz --recipe strong --teacher model_list.txt --unlabelled data.npz  # + its test faces
    python train.py faces/ --recipe finetune --init pretrained        # fine-tune the shipped model
    python train.py faces/ --recipe finetune --init pretrained --freeze 10 --new-head
    python train.py faces/ --classes happy,sad,contempt   # image folders, three classes in this order

Writes <out-dir>/<val_acc>.h5 (e.g. models/0.643750.h5), with <val_acc>_history.csv (per-epoch loss,
accuracy and seconds) and <val_acc>_settings.json (every option and timing) beside it, and prints the
model's path as its last line. Validation rows are the first --val-size rows of the file. The
model has one output per class of the data (FER2013's seven for the CSV files; the folder names, or
--classes, for image folders), and its class names are saved in the .h5 file and its settings.
"""


from common import cli, data, model_lists


def main():
    parser = cli.ArgumentParser(__doc__)
    parser.add_argument("train_data", help="labelled data: course CSV, Kaggle fer2013.csv, .csv.gz, .npz, or a "
                                          "folder of images by class (DIR/<class>/*, or its train/ part)")
    parser.add_argument("--labeled-ratio", type=cli.positive_fraction, default=1.0,
                        help="train on this share of the training rows' labels only (per class, seeded "
                             "by --seed; the same rows semi_train.py keeps), e.g. 0.5 for a baseline")
    parser.add_argument("--teacher", metavar="MODEL_OR_LIST", type=cli.model_or_shipped,
                        help="distil: learn from this model's (or model list's) averaged probabilities "
                             "of each face and its mirror, mixed with the labels ('pretrained': the "
                             "shipped model)")
    parser.add_argument("--teacher-tta", action="store_true",
                        help="teachers average 10 views of each face instead of the face and its mirror")
    parser.add_argument("--unlabelled", metavar="FACES",
                        help="with --teacher: unlabelled faces (a folder of images, the course's test.csv, "
                             "the test part of an .npz) that join the training rows, labelled by the "
                             "teachers (their most likely class as the label, their probabilities as the "
                             "distillation target); faces that are exact copies of validation faces are "
                             "left out")
    parser.add_argument("--temperature", type=cli.positive_float, default=2.0,
                        help="distillation temperature T of teacher and student distributions")
    parser.add_argument("--distill-weight", type=cli.fraction, default=0.7,
                        help="share of the teacher term in the loss; the rest is the label's "
                             "cross-entropy")
    parser.add_argument("--init", metavar="MODEL", type=cli.model_or_shipped,
                        help="start from this trained .h5 model ('pretrained': the default shipped one, "
                             "the small CNN; 'pretrained-vgg': the shipped VGG-style CNN) instead of fresh "
                             "weights; --arch is then the model's own")
    parser.add_argument("--freeze", type=cli.non_negative_int, default=0,
                        help="with --init: keep the weights of the first N layers that have weights")
    parser.add_argument("--freeze-until", metavar="LAYER",
                        help="with --init: keep the weights of every layer up to and including LAYER")
    parser.add_argument("--new-head", action="store_true",
                        help="with --init: fresh weights for the last layer, for classes that mean "
                             "something else than the model's (always when the data's classes are "
                             "not the model's: the last layer then gets one output per class)")
    parser.add_argument("--head-init", choices=("fit", "random"), default="fit",
                        help="with --init, for a new last layer: 'fit' starts it as a logistic regression "
                             "of the training labels on the model's features of the training faces; "
                             "'random' as fresh Glorot-uniform weights")
    cli.add_training_options(parser, recipes=True)
    options = cli.parse_training_options(parser)
    _check_initial_model(options)

    teachers = None
    if options.teacher:
        with cli.naming("--teacher"):
            teachers = model_lists.check_model_source(options.teacher, "teacher")
    train_set, val_set = cli.load_training_data(options)
    if teachers:
        cli.check_learned_from([listed.path for listed in teachers], "teacher", train_set, val_set, options,
                               "--teacher", options.teacher)
    unlabelled = options.unlabelled and cli.load_unlabelled_faces(options.unlabelled, val_set, "--unlabelled")
    if options.labeled_ratio < 1:
        train_set, _ = data.split_labelled(train_set, options.labeled_ratio, options.seed)
    training_config, run_options = cli.training_run(options)
    cli.lock_run(training_config, run_options)  # a second live run of this command stops here
    strategy = cli.start_strategy(options)  # TensorFlow loads only after the input checked out
    from common import distribution, models, training
    soft_targets = val_soft_targets = None
    if teachers:
        from common import distillation

        with cli.naming("--teacher", options.teacher):
            cache_folder = options.out_dir if distribution.is_chief(strategy) else None
            soft_targets, val_soft_targets = distillation.teacher_targets(teachers, train_set, val_set,
                                                                          options.teacher_tta, cache_folder)
            if unlabelled:
                train_set, soft_targets = distillation.with_teacher_labelled_faces(
                    train_set, soft_targets, unlabelled,
                    distillation.teacher_probabilities(teachers, train_set.class_names, unlabelled.images,
                                                       options.teacher_tta, cache_folder))
    build_model = models.builder(options.arch)
    if options.init:
        from common import finetuning

        with cli.naming("--freeze-until" if options.freeze_until else "--freeze"):
            print(finetuning.describe(options.init, train_set.class_names, options.freeze, options.freeze_until,
                                      options.new_head, options.head_init))
        build_model = finetuning.builder(options.init, train_set.class_names, options.precision, options.freeze,
                                         options.freeze_until, options.new_head, options.seed, options.head_init,
                                         (train_set.images, train_set.labels))
    model_path = training.train_new_model(build_model, train_set, val_set, training_config, run_options,
                                          soft_targets=soft_targets, val_soft_targets=val_soft_targets)
    cli.print_model_path(model_path)


def _check_initial_model(options):
    """--init names an existing model (or 'pretrained'); the freezing options need it; --unlabelled
    needs --teacher."""
    if options.unlabelled and not options.teacher:
        raise cli.UsageError("--unlabelled faces are labelled by the teachers: give --teacher MODEL_OR_LIST too")
    if options.init:
        model_lists.check_model_file(options.init, "a .h5 model or 'pretrained'", "--init")
    elif options.freeze or options.freeze_until or options.new_head:
        raise cli.UsageError("--freeze, --freeze-until and --new-head need --init MODEL")
    if options.freeze and options.freeze_until:
        raise cli.UsageError("--freeze and --freeze-until: give one of them")


if __name__ == "__main__":
    cli.run(main)
