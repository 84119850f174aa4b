-- Quickstart: a complete sandwiching / weak-to-strong experiment on the built-in `sentiment`
-- task with small BERT-style models trained from scratch, in a few minutes on two CPU cores.
--
--   sandwich run workbooks/quickstart.lua [OUT_DIR]
--
-- The weak supervisor is a tiny model trained on half the data; the strong model is four times
-- wider and deeper. Novices are a heterogeneous crowd — a few careful ones, several who answer at
-- random, one who leans towards "positive" — so how their labels are aggregated matters.
-- Prints the accuracy and PGR tables and writes manifest.json, results.csv and report.html
-- (self-contained: open it in any browser) into OUT_DIR (default: quickstart-results).

local out = arg[1] or "quickstart-results"

local novices = {
  {id = "careful-1", accuracy = 0.9},
  {id = "careful-2", accuracy = 0.85},
  {id = "careful-3", accuracy = 0.85},
  {id = "random-1", kind = "spammer"},
  {id = "random-2", kind = "spammer"},
  {id = "random-3", kind = "spammer"},
  {id = "leaning", accuracy = 0.8, bias = "1", bias_strength = 0.6},
}

local exp = sw.experiment "quickstart: sentiment, weak-to-strong and a novice crowd" {
  task = {builtin = "sentiment", n = 5000, seed = 1},
  strong = {model = {hidden_size = 48, layers = 2, heads = 4},
            train = {epochs = 8, batch_size = 64, lr = 3e-3, warmup_steps = 20}},
  weak = {model = {hidden_size = 8, layers = 1, heads = 2},
          train = {epochs = 4, batch_size = 32, lr = 3e-3}},
  overseers = {novices = {overseers = novices, k = 5}},
  arms = {"weak", "ceiling", "naive_w2s", "aux_w2s", "crowd_majority_vote", "crowd_dawid_skene",
          "assisted_novices"},
  seeds = {1, 2},
  hooks = {
    on_arm_done = function(arm, seed, accuracy)
      print(("seed %d  %-20s test accuracy %.3f"):format(seed, arm, accuracy))
    end,
  },
}

local started = os.time()
exp:run()
print()
print(exp:accuracy())
print(exp:pgr())
os.execute(("mkdir -p %q"):format(out))
exp:save(out)
print(("%d s; report: %s/report.html (manifest.json and results.csv beside it)"):format(os.time() - started, out))
