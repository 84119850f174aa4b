-- The sandwich of preferences on the built-in review task (sw.overopt.task): which overseers'
-- comparisons give a reward model that a policy can be optimised against? Every arm trains a
-- reward model on the same pairs of reviews, judged by a different overseer; the policy is
-- then optimised against that reward model — by best-of-16, and by GRPO (60 steps; the gold
-- reward of its last 10 steps' samples) — and scored by the hidden gold reward (the expert). PGR puts each arm between the weak overseer
-- (0) and the expert (1), with the engine's Fieller intervals over seeds
-- (sw.experiment.pgr).
--
--   sandwich run workbooks/preference_sandwich.lua [OUT_DIR] [SEEDS] [SIZE] [CAMPAIGN]
--
-- SIZE is `full` (the default) or `small` (the CLI test's version). CAMPAIGN (optional) is a
-- `sandwich serve` campaign file that makes real raters' comparisons an arm (`raters`): if the
-- file does not exist, the workbook creates it — every pair of every seed an item, three
-- judgments each, a tenth of them gold (the expert's verdict, shown at raters' gold turns to
-- check them), twelve raters — and stops; serve it
-- (`sandwich serve CAMPAIGN`), hand out the links it prints, and run the workbook again with the
-- same arguments when the raters are done. Their judgments (paused raters' dropped) are
-- aggregated by Bradley-Terry like the simulated crowd's. Arms:
--   ceiling     the gold reward's own verdicts (the expert)
--   weak        a weak model: a reward model trained on the gold verdicts of only a few pairs,
--               judging every pair by its scores
--   crowd_bt    three simulated novices per pair (accurate 70% of the time, and swayed by length
--               or by the buzzword 'masterpiece'), aggregated by Bradley-Terry
--   crowd_nbt   the same judgments, aggregated by noisy Bradley-Terry (per-novice skill and bias)
--   assisted    the same novices shown the weak model's verdict and its confidence c: each adopts
--               it with probability trust × c (trust 0.7, as sw.experiment's assisted_novices),
--               else judges alone; majority of three
--   raters      (with CAMPAIGN) the real raters' judgments, aggregated by Bradley-Terry
-- docs/experiments.md reports what it found.

local here = (arg and arg[0] or ""):match("^(.*/)") or "./"
local out = arg and arg[1] or "preference-sandwich-results"
local n_seeds = tonumber(arg and arg[2]) or 5
local size = arg and arg[3] or "full"
assert(size == "full" or size == "small", "SIZE: 'full' or 'small', got " .. size)
local small = size == "small"
local campaign_path = arg and arg[4]
os.execute("mkdir -p '" .. out .. "'")
-- One token per word of the task's vocabulary (sw.overopt.tokenizer).
local tok = sw.overopt.tokenizer(out .. "/tokenizer")
local t0 = os.time()

local n_pairs = small and 600 or 1500
local n_weak = small and 60 or 100
local rl_steps = small and 8 or 60
local arms = {"weak", "ceiling", "crowd_bt", "crowd_nbt", "assisted"}
local function pairs_of(seed)
  -- Pairs among n_pairs / 2 reviews: each review is in about four pairs.
  return sw.overopt.pairs{n = n_pairs, seed = 100 + seed, reviews = n_pairs // 2}
end

-- Real raters: create the campaign of every seed's pairs and stop, or read its judgments.
local campaign
if campaign_path then
  local f = io.open(campaign_path, "r")
  if f then
    f:close()
    campaign = sw.feedback.campaign{path = campaign_path}
    table.insert(arms, "raters")
    -- Every seed's pairs judged, before any training starts.
    local tasks = campaign:judgments():select("task")
    for seed = 1, n_seeds do
      assert(tasks:filter(sw.col("task").str:starts_with(string.format("s%d-", seed))):height() > 0,
        string.format("%s has no judgments of seed %d's pairs (made with fewer SEEDS, or not rated yet)",
          campaign_path, seed))
    end
  else
    local items = {id = {}, prompt = {}, left = {}, right = {}, gold = {}}
    for seed = 1, n_seeds do
      local p = pairs_of(seed)
      local P, L, R, W = p:column("prompt"), p:column("left"), p:column("right"), p:column("winner")
      for i = 1, #L do
        table.insert(items.id, string.format("s%d-%d", seed, i))
        table.insert(items.prompt, P[i])
        table.insert(items.left, L[i])
        table.insert(items.right, R[i])
        table.insert(items.gold, i % 10 == 0 and W[i] or sw.null)
      end
    end
    items = sw.frame(items):select("id", "prompt", "left", "right", "gold")
    local raters = {}
    for r = 1, 12 do raters[r] = {id = string.format("rater%02d", r)} end
    sw.feedback.campaign{path = campaign_path, items = items,
      kind = "pairwise", name = "Which review is better?", overlap = 3, raters = raters,
      show = {"prompt", "left", "right"}, gold = {rate = 0.1, min_gold = 5, threshold = 0.5},
      instructions = "# Which review is better?\nTwo short film reviews (the prompt is the left one's). " ..
        "The better review praises in **varied** words (a word said twice counts once), names " ..
        "**fewer flaws**, avoids the empty superlative *masterpiece*, and stays **short** (about 12 " ..
        "words at most). Press **1** for left or **2** for right, then Enter."}
    print(string.format("created the campaign %s: %d pairs; serve it with `sandwich serve %s`, hand out " ..
      "the links it prints, and run this workbook again with the same arguments when the raters are done",
      campaign_path, items:height(), campaign_path))
    return
  end
end

-- The policy every arm starts from (the same for all: SFT on the task's corpus), saved so that
-- each RL run starts from a fresh copy.
local corpus = sw.overopt.task{n = small and 1200 or 3000, seed = 1}
local base = sw.model.new{arch = "llama", tokenizer = tok, hidden_size = 64, layers = 2, heads = 4, seed = 1}
sw.train.sft{model = base, data = corpus, epochs = small and 2 or 3, batch_size = 32, lr = 3e-3,
             schedule = "cosine", seed = 1}
local policy_dir = out .. "/policy"
base:save(policy_dir)
local prompts = corpus:select("prompt"):unique():sort("prompt"):column("prompt")
-- Best-of-16 is measured on four pools of 64 samples per prompt (Gao et al.'s estimator), which
-- averages out most of the noise of a single best-of-16 draw.
local bon_prompts = {}
for r = 1, 4 do for i, p in ipairs(prompts) do bon_prompts[(r - 1) * #prompts + i] = p end end

local function sigmoid(x) return 1 / (1 + math.exp(-x)) end
local function new_rm(seed)
  return sw.model.new{arch = "llama", tokenizer = tok, hidden_size = 64, layers = 2, heads = 4,
                      head = "scalar", seed = seed}
end
local function train_rm(rm, frame, seed)
  sw.train.reward{model = rm, data = frame, epochs = 2, batch_size = 32, lr = 1e-3, seed = seed}
  return rm
end

local novices = {
  {id = "n1", accuracy = 0.7, bias = "longer", bias_strength = 0.3},
  {id = "n2", accuracy = 0.7, bias = "keyword", keyword = "masterpiece", bias_strength = 0.3},
  {id = "n3", accuracy = 0.7},
  {id = "n4", accuracy = 0.7, bias = "longer", bias_strength = 0.5},
  {id = "n5", accuracy = 0.7, bias = "keyword", keyword = "masterpiece", bias_strength = 0.5},
}

local results = {arm = {}, seed = {}, metric = {}, value = {}}
local function record(arm, seed, metric, value)
  table.insert(results.arm, arm)
  table.insert(results.seed, seed)
  table.insert(results.metric, metric)
  table.insert(results.value, value)
end

for seed = 1, n_seeds do
  local pairs_ = pairs_of(seed)
  local P, L, R, W = pairs_:column("prompt"), pairs_:column("left"), pairs_:column("right"), pairs_:column("winner")
  local n = #L
  -- Preference rows from a verdict per pair (true: left preferred).
  local function prefs(left_wins, upto)
    local f = {prompt = {}, chosen = {}, rejected = {}}
    for i = 1, upto or n do
      f.prompt[i] = P[i]
      f.chosen[i] = left_wins[i] and L[i] or R[i]
      f.rejected[i] = left_wins[i] and R[i] or L[i]
    end
    return sw.frame(f)
  end
  local verdicts = {ceiling = {}}
  for i = 1, n do verdicts.ceiling[i] = W[i] == L[i] end

  -- The weak model: gold verdicts on a few pairs, then its own on all.
  local weak_rm = train_rm(new_rm(10 + seed), prefs(verdicts.ceiling, n_weak), seed)
  local sl = weak_rm:score(sw.frame{prompt = P, completion = L}):column("score")
  local sr = weak_rm:score(sw.frame{prompt = P, completion = R}):column("score")
  verdicts.weak = {}
  for i = 1, n do verdicts.weak[i] = sl[i] >= sr[i] end

  -- Novices, three per pair.
  local judged = sw.overseers.simulate_pairwise{pairs = pairs_, overseers = novices, k = 3, seed = 200 + seed}
  local function by_scores(scores)
    local s = {}
    local labels, values = scores:column("label"), scores:column("score")
    for i = 1, #labels do s[labels[i]] = values[i] end
    local v = {}
    for i = 1, n do v[i] = (s[L[i]] or 0) >= (s[R[i]] or 0) end
    return v
  end
  verdicts.crowd_bt = by_scores(sw.aggregate.bradley_terry(judged).scores)
  verdicts.crowd_nbt = by_scores(sw.aggregate.noisy_bradley_terry(judged, {seed = seed}).scores)
  if campaign then
    -- This seed's items, paused (flagged) raters' judgments dropped.
    local real = campaign:judgments():filter(sw.col("task").str:starts_with(string.format("s%d-", seed))
      :and_(sw.col("flagged"):not_()))
    -- The campaign must be this run's: made with the same SIZE and seeds, its pairs are these.
    local known = {}
    for i = 1, n do known[L[i] .. "\0" .. R[i]] = true end
    local rl_, rr_ = real:column("left"), real:column("right")
    for j = 1, #rl_ do
      assert(known[rl_[j] .. "\0" .. rr_[j]], string.format("%s: a judged pair of seed %d is not among this run's " ..
        "pairs: the campaign was made with another SIZE (run with the SIZE and SEEDS it was made with)",
        campaign_path, seed))
    end
    verdicts.raters = by_scores(sw.aggregate.bradley_terry(real:select("worker", "left", "right", "label")).scores)
    print(string.format("seed %d: %d judgments from %d raters", seed, real:height(),
      real:select("worker"):unique():height()))
  end

  -- Assisted: each novice judgment is replaced by the weak model's verdict with probability
  -- trust × c, c = σ(|score difference|), the assistant's confidence; majority of three.
  math.randomseed(300 + seed)
  local jl, jr, jlab = judged:column("left"), judged:column("right"), judged:column("label")
  local index = {}
  for i = 1, n do index[L[i] .. "\0" .. R[i]] = i end
  local votes = {}
  for j = 1, #jl do
    local i = index[jl[j] .. "\0" .. jr[j]]
    local c = sigmoid(math.abs(sl[i] - sr[i]))
    local left = jlab[j] == L[i]
    if math.random() < 0.7 * c then left = verdicts.weak[i] end
    votes[i] = (votes[i] or 0) + (left and 1 or -1)
  end
  verdicts.assisted = {}
  for i = 1, n do verdicts.assisted[i] = (votes[i] or 0) > 0 end

  for _, arm in ipairs(arms) do
    local v = verdicts[arm]
    local right = 0
    for i = 1, n do if v[i] == verdicts.ceiling[i] then right = right + 1 end end
    record(arm, seed, "label_accuracy", right / n)
    -- The same initialisation for every arm of a seed: arms differ only in their comparisons.
    local rm = train_rm(new_rm(1000 * seed), prefs(v), seed)
    local bon = sw.overopt.best_of_n{model = base, prompts = bon_prompts, proxy = rm, gold = sw.overopt.gold,
      n = {1, 16}, pool = 64, max_new_tokens = 64, seed = seed, batch_size = 64}
    record(arm, seed, "bon_gold", bon:column("gold")[2])
    local policy = sw.model.load(policy_dir)
    local rl = sw.overopt.rl{method = "grpo", model = policy, prompts = prompts, proxy = rm, gold = sw.overopt.gold,
      steps = rl_steps, prompts_per_step = #prompts, num_generations = 8, batch_size = 32, lr = 1e-4, beta = 0.02,
      max_new_tokens = 64, seed = seed}
    local g = rl:column("gold")
    local k = math.min(10, #g)
    local tail = 0
    for i = #g - k + 1, #g do tail = tail + g[i] / k end
    record(arm, seed, "rl_gold", tail)
    print(string.format("seed %d %-9s labels %.2f  best-of-16 gold %.2f  GRPO gold %.2f (%d s)", seed, arm,
      right / n, bon:column("gold")[2], tail, os.time() - t0))
  end
end

local frame = sw.frame(results):select("arm", "seed", "metric", "value")
frame:write_csv(out .. "/results.csv")
local summary = frame:group_by({"metric", "arm"}):agg{sw.col("value"):mean():alias("mean"), sw.col("value"):std():alias("sd")}
print(summary:sort({"metric", "arm"}))
for _, metric in ipairs({"bon_gold", "rl_gold"}) do
  local t = sw.experiment.pgr(frame, {metric = metric,
    arms = campaign and {"crowd_bt", "crowd_nbt", "assisted", "raters"} or {"crowd_bt", "crowd_nbt", "assisted"}})
  t:write_csv(out .. "/pgr_" .. metric .. ".csv")
  print("PGR of " .. metric)
  print(t:select("arm", "pgr", "lower", "upper", "seeds", "note"))
end
print(string.format("done in %d s", os.time() - t0))
