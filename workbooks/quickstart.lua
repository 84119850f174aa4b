-- Quickstart: a complete sandwiching / weak-to-strong experiment on the built-in `sentiment`
-- task with small BERT-style models trained from scratch — every arm (weak, ceiling, naive and
-- auxiliary-loss weak-to-strong, a novice crowd aggregated two ways, novices assisted by the
-- model), two seeds — in under five minutes on two CPU cores.
--
--   sandwich run workbooks/quickstart.lua [OUT_DIR]
--
-- Prints the accuracy and PGR tables and writes manifest.json, results.csv and report.html
-- (self-contained: open it in any browser) into OUT_DIR (default: quickstart-results).
-- The experiment itself is in sentiment_experiment.lua; docs/experiments.md explains what it
-- finds.

local here = (arg and arg[0] or ""):match("^(.*/)") or "./"
local workbook = dofile(here .. "sentiment_experiment.lua")
local out = arg and arg[1] or "quickstart-results"

local exp = workbook.experiment{name = "quickstart: sentiment, weak-to-strong and a novice crowd"}
workbook.run_and_save(exp, out)
