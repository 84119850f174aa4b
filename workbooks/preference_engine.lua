-- The sandwich of preferences as one spec on the experiment engine (sw.experiment.preference):
-- the arms, sizes and seeds of workbooks/preference_sandwich.lua, which builds the same
-- experiment by hand in Lua (and adds real raters' judgments as an arm). The weak, ceiling and
-- crowd arms are computed the same way with the same seeds; `assisted_novices` here aggregates
-- the assisted judgments by Bradley-Terry (the hand-built workbook takes a majority of three).
--
--   sandwich run workbooks/preference_engine.lua [OUT_DIR] [SEEDS] [small|full]

local out = arg and arg[1] or "preference-engine-results"
local n_seeds = tonumber(arg and arg[2]) or 5
local size = arg and arg[3] or "full"
assert(size == "full" or size == "small", "SIZE: 'full' or 'small', got " .. size)
local small = size == "small"
os.execute("mkdir -p '" .. out .. "'")
local t0 = os.time()
local seeds = {}
for s = 1, n_seeds do seeds[s] = s end
local net = {arch = "llama", hidden_size = 64, layers = 2, heads = 4}
local exp = sw.experiment.preference "preference sandwich" {
  task = {pairs = small and 600 or 1500, corpus = small and 1200 or 3000},
  policy = {model = net, train = {epochs = small and 2 or 3, batch_size = 32, lr = 3e-3, schedule = "cosine"}},
  reward_model = {model = net, train = {epochs = 2, batch_size = 32, lr = 1e-3}},
  weak_pairs = small and 60 or 100,
  overseers = {novices = {k = 3, overseers = {
    {id = "n1", accuracy = 0.7, bias = "longer", bias_strength = 0.3},
    {id = "n2", accuracy = 0.7, bias = "keyword", keyword = "masterpiece", bias_strength = 0.3},
    {id = "n3", accuracy = 0.7},
    {id = "n4", accuracy = 0.7, bias = "longer", bias_strength = 0.5},
    {id = "n5", accuracy = 0.7, bias = "keyword", keyword = "masterpiece", bias_strength = 0.5},
  }}},
  arms = {"weak", "ceiling", "crowd_bradley_terry", "crowd_noisy_bradley_terry", "assisted_novices"},
  seeds = seeds,
  best_of_n = {n = 16, pool = 64, repeats = 4, max_new_tokens = 64, batch_size = 64},
  rl = {method = "grpo", steps = small and 8 or 60, num_generations = 8, batch_size = 32, lr = 1e-4,
        beta = 0.02, max_new_tokens = 64, tail = 10},
}
print(exp)
local results = exp:run()
results:write_csv(out .. "/results.csv")
exp:curves():write_csv(out .. "/curves.csv")
print(results:group_by({"metric", "arm"}):agg{sw.col("value"):mean():alias("mean"), sw.col("value"):std():alias("sd")}
  :sort({"metric", "arm"}))
for _, metric in ipairs({"label_accuracy", "bon_gold", "rl_gold"}) do
  local t = exp:pgr{metric = metric}
  t:write_csv(out .. "/pgr_" .. metric .. ".csv")
  print("PGR of " .. metric)
  print(t:select("arm", "pgr", "lower", "upper", "seeds", "note"))
end
print(string.format("done in %d s", os.time() - t0))
