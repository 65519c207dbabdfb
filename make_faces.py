"""Writes generated 48x48 cartoon faces with FER2013's seven expressions as a course-format CSV, for
trying the toolkit without FER2013 (see common/synthetic.py for how they are drawn).

Usage:
    python make_faces.py train.csv --rows 2000                       # labelled: header label,feature
    python make_faces.py test.csv --rows 500 --unlabelled --seed 1   # header id,feature
    python make_faces.py train.csv.gz --rows 2000                    # gzipped

An existing file is kept: the new one gets a -1, -2, ... suffix. Prints the path written.
"""

from common import cli, data, synthetic


def main():
    parser = cli.ArgumentParser(__doc__)
    parser.add_argument("output", help="CSV to write (.csv or .csv.gz)")
    parser.add_argument("--rows", type=cli.positive_int, default=2000, help="number of faces")
    parser.add_argument("--seed", type=cli.seed_number, default=0, help="random seed")
    parser.add_argument("--unlabelled", action="store_true",
                        help="write a test-style file (header id,feature) without labels")
    options = parser.parse_args()
    images, labels = synthetic.generate_faces(options.rows, options.seed)
    print(data.write_csv_dataset(options.output, images, None if options.unlabelled else labels))


if __name__ == "__main__":
    cli.run(main)
