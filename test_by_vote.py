"""Predicts test faces with a weighted ensemble of models listed in a file (or with one model), and
writes `id,label` rows.

Usage:
    python test_by_vote.py test.csv result.csv model_list.txt            # weighted hard voting
    python test_by_vote.py test.csv result.csv model_list.txt --soft --tta
    python test_by_vote.py test.csv result.csv model_list.txt --eval train.csv   # also score on
                                                    # the first 2,400 (--val-size) rows of train.csv
    python test_by_vote.py test.csv result.csv models/0.691667.h5 --eval train.csv  # one model's
                                                    # accuracy on unseen rows and on each half

model_list.txt has one model a line, `WEIGHT PATH` (path relative to the list's folder or absolute);
blank lines and # comments are ignored; a .h5 or .keras file in its place is a list of that one
model. The models must have the same classes (and those of
labelled data for --eval), else nothing is predicted. Hard voting: each model adds its weight to the class it
predicts; a tie goes to the tied class with the larger weighted probability sum. --soft: the
weighted average of probabilities. CNN and DNN models can be mixed. Models are loaded one at a time
(each once) and predict in batches, so long lists run in bounded memory; a model that cannot be used
stops the run before anything is written. Prints the result's path.
"""

import os

from common import classes, cli, data, ensemble, model_lists


def main():
    parser = cli.ArgumentParser(__doc__)
    parser.add_argument("test_data", help="faces to classify (.csv, .csv.gz, the test part of an .npz, or a "
                                         "folder of images by class)")
    parser.add_argument("result_csv", type=cli.output_file,
                        help="where to write the id,label predictions (replaced if it exists; gzipped "
                             "when named .gz)")
    parser.add_argument("model_list", type=cli.model_or_shipped,
                        help="text file of 'WEIGHT PATH' lines, or one .h5 or .keras model, "
                             + cli.SHIPPED_MODEL_WORDS)
    parser.add_argument("--soft", action="store_true", help="average probabilities instead of voting")
    parser.add_argument("--eval", metavar="LABELLED_CSV",
                        help="also print each model's and the ensemble's accuracy on the validation "
                             "rows of this labelled file (--val-size)")
    parser.add_argument("--val-size", type=cli.validation_size, default=None,
                        help="validation rows for --eval: a count or a fraction (default: the rows the "
                             "models validated on, from their settings; for models of other data, the "
                             "PublicTest rows of Kaggle's fer2013.csv, 10%% of a folder's images, else 2400)")
    cli.add_prediction_options(parser)
    options = parser.parse_args()

    cli.check_output_is_no_input(options.result_csv, options.result_csv, options.test_data, options.model_list,
                                 options.eval)
    listed_models = model_lists.check_model_source(options.model_list, "model")
    test_set = data.load_dataset(options.test_data, part="test")
    val_set, unseen, held_out = None, None, None
    if options.eval:
        with cli.naming("--val-size", options.val_size):
            val_set, unseen, held_out = ensemble.evaluation_rows(options.eval, options.val_size, listed_models)

    from common import prediction  # TensorFlow loads only after the input checked out

    class_names = ensemble.list_classes(options.model_list, listed_models)
    if val_set is not None:
        val_set = classes.relabel(val_set, class_names, options.model_list)
    faces = {"test": test_set.images, **({} if val_set is None else {"validation": val_set.images})}

    def report(index, listed, probabilities, rows):
        print(f"model {index} of {len(listed_models)}: {os.path.basename(listed.path)} "
              f"(weight {listed.weight:g})", flush=True)
        if val_set is not None:
            rows = slice(None) if rows is None else rows  # out-of-fold: the rows it held out
            predicted = probabilities["validation"].argmax(axis=1)
            print(f"  {ensemble.describe_accuracy(predicted, val_set.labels[rows], unseen[rows])} of "
                  f"{options.eval}")

    votes = ensemble.vote(options.model_list, listed_models, faces, class_names, report, batch_size=options.batch_size,
                          tta=options.tta, precision=options.precision, pixel_scale=options.pixel_scale,
                          held_out=held_out)
    val_vote = votes.get("validation")
    if val_vote:
        if len(listed_models) == 1:
            who = f"the model ({'tta' if options.tta else 'single view'})"
        else:
            who = f"ensemble ({'soft' if options.soft else 'hard'} voting{', tta' if options.tta else ''})"
        print(f"{who}: " + ensemble.describe_halves(val_vote.labels(options.soft), val_set.labels, unseen))
    result_path = prediction.write_predictions(options.result_csv, test_set.ids,
                                               votes["test"].labels(options.soft))
    print(result_path)


if __name__ == "__main__":
    cli.run(main)
