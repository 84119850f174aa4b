-- Reward-model over-optimisation on the built-in review task (sw.overopt.task): a small policy
-- learns to write reviews, biased judges compare pairs of reviews, a proxy reward model learns
-- from their judgments, and the policy is optimised against the proxy — by best-of-n (n = 1 …
-- N from one pool of samples per prompt) and by GRPO — while the hidden gold reward (the
-- expert: distinct praise words, minus flaws, the empty superlative 'masterpiece', and words
-- beyond 12) scores the same samples. Gao et al. (2022): the proxy keeps rising with d = √KL
-- while the gold reward peaks and falls. Fits of their forms are printed with intervals.
--
--   sandwich run workbooks/overopt.lua [OUT_DIR] [SIZE]
--
-- SIZE is `full` (the default, a few minutes on 2 cores) or `small` (the shape test's version,
-- kernel/tests/overopt.rs). OUT_DIR gets bon.csv, rl.csv, fits.csv and the charts' vega-lite
-- specs. docs/experiments.md reports what it measured.

local here = (arg and arg[0] or ""):match("^(.*/)") or "./"
local out = arg and arg[1] or "overopt-results"
local size = arg and arg[2] or "full"
assert(size == "full" or size == "small", "SIZE: 'full' or 'small', got " .. size)
local small = size == "small"
os.execute("mkdir -p '" .. out .. "'")
-- One token per word of the task's vocabulary (sw.overopt.tokenizer).
local tok = sw.overopt.tokenizer(out .. "/tokenizer")
local t0 = os.time()

-- The policy before optimisation: a small Llama taught the task's corpus of reviews.
local corpus = sw.overopt.task{n = small and 1200 or 3000, seed = 1}
local policy = sw.model.new{arch = "llama", tokenizer = tok, hidden_size = 64, layers = 2, heads = 4, seed = 1}
local sft = sw.train.sft{model = policy, data = corpus, epochs = small and 2 or 3, batch_size = 32, lr = 3e-3,
                         schedule = "cosine", seed = 1}
print(string.format("policy: SFT on %d reviews, loss %.2f -> %.2f", corpus:height(),
  sft:column("loss")[1], sft:column("loss")[sft:height()]))

-- Judges: novices who read a review by counting its praise words, repeats included, less its
-- flaws (sw.overopt.pairs' `naive_winner`), right by that reading 85% of the time; one of them
-- is also swayed by length and the other by the buzzword, half of the time. One judgment per pair.
local comparisons = sw.overopt.pairs{n = small and 1500 or 4000, seed = 2}
local as_novices_see = comparisons:rename{winner = "gold_winner"}:rename{naive_winner = "winner"}
local judged = sw.overseers.simulate_pairwise{pairs = as_novices_see, k = 1, seed = 3, overseers = {
  {id = "verbose", accuracy = 0.85, bias = "longer", bias_strength = 0.5},
  {id = "buzzword", accuracy = 0.85, bias = "keyword", keyword = "masterpiece", bias_strength = 0.5},
}}
local agree = judged:filter(sw.col("label"):eq(sw.col("gold_winner"))):height() / judged:height()
local prefs = judged:with_columns{
  sw.col("label"):alias("chosen"),
  sw.when(sw.col("label"):eq(sw.col("left"))):then_(sw.col("right")):otherwise(sw.col("left")):alias("rejected"),
}
local proxy = sw.model.new{arch = "llama", tokenizer = tok, hidden_size = 64, layers = 2, heads = 4,
                           head = "scalar", seed = 2}
local rm = sw.train.reward{model = proxy, data = prefs, epochs = 3, batch_size = 32, lr = 1e-3, seed = 2}
print(string.format("proxy reward model: %d judgments (%.0f%% agree with gold), train accuracy %.2f",
  judged:height(), 100 * agree, rm:column("accuracy")[rm:height()]))

-- Prompts the optimisation is measured on: every topic once.
local prompts = corpus:select("prompt"):unique():sort("prompt"):column("prompt")
local sampling = {max_new_tokens = 64, temperature = 1.0, seed = 4, batch_size = 64}

-- Best-of-n from one pool per prompt.
local opts = {model = policy, prompts = prompts, proxy = proxy, gold = sw.overopt.gold, n = small and 1024 or 4096}
for k, v in pairs(sampling) do opts[k] = v end
local bon = sw.overopt.best_of_n(opts)
bon:write_csv(out .. "/bon.csv")
print(bon:select("n", "d", "proxy", "gold"))

-- GRPO against the proxy, the gold reward logged beside it; a small KL leash.
local rl = sw.overopt.rl{method = "grpo", model = policy, prompts = prompts, proxy = proxy, gold = sw.overopt.gold,
  steps = small and 40 or 120, prompts_per_step = #prompts, num_generations = 8, batch_size = 32, lr = 1e-4,
  beta = 0.02, max_new_tokens = 64, temperature = 1.0, seed = 5}
rl:write_csv(out .. "/rl.csv")

-- Gao et al.'s fits to the gold gains, with 95% intervals.
local fits = {method = {}, alpha = {}, alpha_lower = {}, alpha_upper = {}, beta = {}, beta_lower = {},
              beta_upper = {}, peak_d = {}}
for _, f in ipairs({{"best-of-n", bon, "bon"}, {"grpo", rl, "rl"}}) do
  local fit = sw.overopt.fit{data = f[2], reward = "gold_gain", form = f[3]}
  table.insert(fits.method, f[1])
  for _, k in ipairs({"alpha", "alpha_lower", "alpha_upper", "beta", "beta_lower", "beta_upper"}) do
    table.insert(fits[k], fit[k])
  end
  table.insert(fits.peak_d, fit.peak or 0 / 0)
  print(string.format("%s: gold gain = d(%.3f - %.3f %s), alpha [%.3f, %.3f], beta [%.3f, %.3f], peak at d = %s",
    f[1], fit.alpha, fit.beta, f[3] == "bon" and "d" or "log d", fit.alpha_lower, fit.alpha_upper,
    fit.beta_lower, fit.beta_upper, fit.peak and string.format("%.2f", fit.peak) or "none"))
end
sw.frame(fits):write_csv(out .. "/fits.csv")

-- The charts: proxy and gold against d for each method.
local function long(df, label)
  local p = df:select(sw.col("d"), sw.col("proxy_gain"):alias("gain")):with_columns{sw.lit("proxy"):alias("reward")}
  local g = df:select(sw.col("d"), sw.col("gold_gain"):alias("gain")):with_columns{sw.lit("gold"):alias("reward")}
  return sw.chart.line(p:vstack(g), {x = "d", y = "gain", color = "reward", title = label .. ": proxy and gold vs sqrt(KL)"})
end
for name, df in pairs({bon = bon, rl = rl}) do
  local f = io.open(out .. "/" .. name .. "_chart.json", "w")
  f:write(long(df, name):spec())
  f:close()
end

-- The shape, stated: at the largest n the proxy is still rising while gold has fallen.
local g, p = bon:column("gold"), bon:column("proxy")
local peak = 1
for i = 2, #g do if g[i] > g[peak] then peak = i end end
print(string.format("best-of-n: gold peaks at n = %d (%.2f) and ends at %.2f; proxy %.2f -> %.2f -> %.2f",
  bon:column("n")[peak], g[peak], g[#g], p[1], p[peak], p[#p]))
print(string.format("done in %d s", os.time() - t0))
