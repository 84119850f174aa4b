-- sw.experiment: a sandwiching / weak-to-strong experiment declared in one table, run arm by
-- arm and seed by seed from the parts the rest of `sw` exposes (tasks, models, trainers,
-- simulated overseers, aggregation, metrics). Embedded in the binary; `sw` is in scope.
--
--   local exp = sw.experiment "w2s-demo" { task = ..., strong = ..., weak = ..., arms = ..., seeds = ... }
--   local results = exp:run()      -- arm, seed, split, metric, value
--   print(exp:pgr())               -- arm, pgr, lower, upper (bootstrap over items and seeds)

local sw = ...

local Experiment = {}
Experiment.__index = Experiment

local SPEC_KEYS = {
  task = true, tokenizer = true, strong = true, weak = true, overseers = true, arms = true,
  seeds = true, split = true, aux = true, assistance = true, n_boot = true, hooks = true,
}
local MODEL_KEYS = {model = true, train = true}
local HOOKS = {on_arm_done = true, on_step = true}

local function fail(field, expected, got)
  error(("sw.experiment: bad field '%s': expected %s, got %s"):format(field, expected, got), 0)
end

local function check_keys(t, allowed, where)
  for k in pairs(t) do
    if not allowed[k] then
      local names = {}
      for name in pairs(allowed) do names[#names + 1] = name end
      table.sort(names)
      fail(where .. "." .. tostring(k), "one of " .. table.concat(names, ", "), "an unknown key")
    end
  end
end

local function copy(t)
  local out = {}
  for k, v in pairs(t or {}) do out[k] = v end
  return out
end

-- Which arms need which parts of the spec.
local function arm_kind(arm)
  if arm == "weak" or arm == "ceiling" or arm == "naive_w2s" or arm == "aux_w2s" then return arm end
  if arm == "assisted_novices" then return arm end
  local method = arm:match("^crowd_(.+)$")
  if method then return "crowd", method end
  return nil
end

local function validate(spec)
  if type(spec) ~= "table" then fail("spec", "a table", type(spec)) end
  check_keys(spec, SPEC_KEYS, "spec")
  if type(spec.task) == "table" then
    check_keys(spec.task, {builtin = true, n = true, seed = true}, "task")
    if type(spec.task.builtin) ~= "string" then fail("task.builtin", "a built-in task name", type(spec.task.builtin)) end
  elseif type(spec.task) ~= "userdata" then
    fail("task", "a task DataFrame (sw.tasks.builtin or sw.tasks.from) or {builtin = name, n = , seed = }", type(spec.task))
  end
  for _, side in ipairs{"strong", "weak"} do
    local s = spec[side]
    if type(s) ~= "table" then fail(side, "a table {model = {...}, train = {...}}", type(s)) end
    check_keys(s, MODEL_KEYS, side)
    if type(s.model) ~= "table" then
      fail(side .. ".model", "a table of sw.model.new options, or {path = checkpoint directory, ...sw.model.load options}", type(s.model))
    end
    if s.model.path ~= nil then
      if type(s.model.path) ~= "string" then fail(side .. ".model.path", "a checkpoint directory", type(s.model.path)) end
      local config = io.open(s.model.path .. "/config.json")
      if not config then fail(side .. ".model.path", "a checkpoint directory with config.json", "'" .. s.model.path .. "'") end
      config:close()
    end
    if s.train ~= nil and type(s.train) ~= "table" then fail(side .. ".train", "a table of sw.train.classify options", type(s.train)) end
  end
  if type(spec.arms) ~= "table" or #spec.arms == 0 then fail("arms", "a non-empty list of arm names", type(spec.arms)) end
  local needs_novices = false
  local names = {}
  for i, arm in ipairs(spec.arms) do
    if type(arm) == "table" then
      -- A custom arm: {name = "...", supervise = function(ctx) return labels end}.
      check_keys(arm, {name = true, supervise = true}, "arms[" .. i .. "]")
      if type(arm.name) ~= "string" or arm_kind(arm.name) then
        fail("arms[" .. i .. "].name", "a string that is not a built-in arm's name", tostring(arm.name))
      end
      if type(arm.supervise) ~= "function" then
        fail("arms[" .. i .. "].supervise", "a function(ctx) returning B's labels (id, label) or probabilities (id, p0, p1, ...)", type(arm.supervise))
      end
      arm = arm.name
    end
    if names[arm] then fail("arms[" .. i .. "]", "each arm once", "'" .. arm .. "' again") end
    names[arm] = true
    local kind, method
    if type(spec.arms[i]) == "table" then kind = "custom" else kind, method = arm_kind(arm) end
    if not kind then
      fail("arms[" .. i .. "]", "weak, ceiling, naive_w2s, aux_w2s, crowd_<method> or assisted_novices", "'" .. tostring(arm) .. "'")
    end
    if kind == "crowd" then
      if type(sw.aggregate[method]) ~= "function" or method:find("bradley_terry") then
        fail("arms[" .. i .. "]", "crowd_<a label aggregation method of sw.aggregate>", "'" .. arm .. "'")
      end
      needs_novices = true
    end
    if kind == "assisted_novices" then needs_novices = true end
  end
  if needs_novices and (type(spec.overseers) ~= "table" or type(spec.overseers.novices) ~= "table") then
    fail("overseers.novices", "a table {overseers = {...}, k = n} for the crowd arms", type(spec.overseers))
  end
  if spec.seeds ~= nil and (type(spec.seeds) ~= "table" or #spec.seeds == 0) then
    fail("seeds", "a non-empty list of integers", type(spec.seeds))
  end
  if spec.hooks ~= nil then
    if type(spec.hooks) ~= "table" then fail("hooks", "a table {on_step = , on_arm_done = }", type(spec.hooks)) end
    check_keys(spec.hooks, HOOKS, "hooks")
    for k, f in pairs(spec.hooks) do
      if type(f) ~= "function" then fail("hooks." .. k, "a function", type(f)) end
    end
  end
end

local function has_column(df, name)
  for _, c in ipairs(df:columns()) do if c == name then return true end end
  return false
end

--- Declares an experiment: `sw.experiment "name" { ... }`. The spec is checked before any
--- compute; an unknown key or arm is an error naming the field.
local function declare(name)
  if type(name) ~= "string" then fail("name", "a string", type(name)) end
  return function(spec)
    validate(spec)
    local given = spec.task
    if type(given) == "table" then
      given = sw.tasks.builtin(given.builtin, {n = given.n, seed = given.seed})
    end
    -- The task's labels must match the schema (0..C-1); sw.tasks.from checks it.
    local task = sw.tasks.from(given, {
      choices = has_column(given, "choices") and "choices" or nil,
      difficulty = has_column(given, "difficulty") and "difficulty" or nil,
    })
    local self = setmetatable({name = name, spec = spec, task = task, arm_names = {}, custom = {}}, Experiment)
    for _, arm in ipairs(spec.arms) do
      if type(arm) == "table" then
        self.custom[arm.name] = arm.supervise
        arm = arm.name
      end
      table.insert(self.arm_names, arm)
    end
    self.classes = task:select(sw.col("label"):max()):column("label")[1] + 1
    self.seeds = spec.seeds or {1}
    return self
  end
end

-- Splits the task for one seed as openai/weak-to-strong does: the weak model trains on one
-- half of the training items and labels the other, on which the strong model trains; a held-out
-- test split scores every arm against the truth.
function Experiment:split(seed)
  local s = self.spec.split or {}
  local test_frac = s.test or 0.2
  local n = self.task:height()
  local shuffled = self.task:sample{n = n, seed = seed, shuffle = true}
  local n_test = math.floor(n * test_frac)
  local n_a = math.floor((n - n_test) / 2)
  return shuffled:slice(0, n_a), shuffled:slice(n_a, n - n_test - n_a), shuffled:slice(n - n_test, n_test)
end

-- A fresh model for one arm: built from scratch (`sw.model.new` options) or loaded from a
-- checkpoint directory (`path`, e.g. a pretrained encoder) with a new classification head.
function Experiment:new_model(side, seed)
  local o = copy(self.spec[side].model)
  if o.path then
    local path = o.path
    o.path = nil
    o.num_labels = self.classes
    o.seed = seed
    return sw.model.load(path, o)
  end
  o.tokenizer = o.tokenizer or self.tokenizer
  o.num_labels = self.classes
  o.seed = seed
  o.arch = o.arch or "bert"
  return sw.model.new(o)
end

function Experiment:train(m, side, data, seed, extra)
  local o = copy(self.spec[side].train)
  o.model, o.data, o.text, o.seed = m, data, "input", seed
  for k, v in pairs(extra or {}) do o[k] = v end
  local hook = self.spec.hooks and self.spec.hooks.on_step
  if hook then
    local arm = self.current_arm
    o.on_step = function(report) hook(arm, seed, report) end
  end
  if not o.probs then o.label = o.label or "label" end
  return sw.train.classify(o)
end

-- Per-item correctness of a model on the test split: id, correct (0/1).
local function score(m, test)
  local p = m:predict(test, {column = "input"})
  return p:select("id", sw.col("pred"):eq(sw.col("label")):cast("float64"):alias("correct")), p
end

local function probs_columns(classes)
  local cols = {}
  for k = 0, classes - 1 do cols[#cols + 1] = "p" .. k end
  return cols
end

-- Labels of simulated novices for the items of `data` (task = id, true_label = label).
function Experiment:novice_labels(data, seed)
  local nov = self.spec.overseers.novices
  local gold_cols = {sw.col("id"):alias("task"), sw.col("label"):alias("true_label")}
  if has_column(data, "difficulty") then gold_cols[#gold_cols + 1] = sw.col("difficulty") end
  local gold = data:select(gold_cols)
  return sw.overseers.simulate{gold = gold, overseers = nov.overseers, k = nov.k, seed = seed}
end

-- Trains the strong model on what a custom arm returned for B: `id, label` (hard labels) or
-- `id, p0, ..., p<K-1>` (probabilities).
function Experiment:train_on_supervision(arm, given, b, seed)
  local where = "arms." .. arm .. ".supervise"
  if type(given) ~= "userdata" or not pcall(given.columns, given) then
    fail(where, "to return a DataFrame (id, label) or (id, p0, ...)", type(given))
  end
  if not has_column(given, "id") then fail(where, "a result with an id column", table.concat(given:columns(), ", ")) end
  local probs = probs_columns(self.classes)
  local data = b:select("id", "input")
  if has_column(given, "label") then
    data = data:join(given:select("id", "label"), {on = "id"})
    local m = self:new_model("strong", seed)
    return m, self:train(m, "strong", data, seed)
  end
  for _, p in ipairs(probs) do
    if not has_column(given, p) then fail(where, "a label column or probability columns " .. table.concat(probs, ", "), table.concat(given:columns(), ", ")) end
  end
  data = data:join(given:select("id", table.unpack(probs)), {on = "id"})
  local m = self:new_model("strong", seed)
  return m, self:train(m, "strong", data, seed, {probs = probs})
end

-- Trains the strong model on hard labels (`task, label`) for the items of B.
function Experiment:train_on_labels(labels, b, seed)
  local data = b:select("id", "input"):join(labels:select(sw.col("task"):alias("id"), "label"), {on = "id"})
  local m = self:new_model("strong", seed)
  local metrics = self:train(m, "strong", data, seed)
  return m, metrics
end

--- Runs every arm for every seed; returns the tidy results (arm, seed, split, metric, value).
function Experiment:run()
  local spec = self.spec
  if not self.tokenizer then
    if spec.tokenizer then
      self.tokenizer = spec.tokenizer
    else
      self.tokenizer = os.tmpname() .. "-tokenizer"
      sw.tasks.tokenizer(self.task, self.tokenizer)
    end
  end
  local rows = {arm = {}, seed = {}, split = {}, metric = {}, value = {}}
  local items = {}
  local curves = {}
  local wanted = {}
  for _, arm in ipairs(self.arm_names) do wanted[arm] = true end
  -- How good the supervision itself was: the labels' accuracy on B against the truth, and the
  -- overseers' agreement (Krippendorff's alpha, nominal) — one row each, split "train_b".
  -- `labels` are `key, label` (key = "task" for aggregated crowds, "id" for custom arms); a
  -- crowd adds its overseers' alpha.
  local function supervision(arm, seed, labels, b, key, crowd)
    local j = labels:join(b:select(sw.col("id"):alias(key), sw.col("label"):alias("truth")), {on = key})
    local values = {label_accuracy = j:filter(sw.col("label"):eq(sw.col("truth"))):height() / j:height()}
    if crowd then
      local ok, alpha = pcall(sw.agreement.krippendorff_alpha, crowd, {level = "nominal"})
      values.overseer_alpha = ok and alpha or 0 / 0
    end
    for metric, value in pairs(values) do
      table.insert(rows.arm, arm); table.insert(rows.seed, seed); table.insert(rows.split, "train_b")
      table.insert(rows.metric, metric); table.insert(rows.value, value)
    end
  end
  local function record(arm, seed, correct, metrics)
    local acc = correct:select(sw.col("correct"):mean()):column("correct")[1]
    table.insert(rows.arm, arm); table.insert(rows.seed, seed); table.insert(rows.split, "test")
    table.insert(rows.metric, "accuracy"); table.insert(rows.value, acc)
    items[#items + 1] = correct:with_columns{sw.lit(arm):alias("arm"), sw.lit(seed):alias("seed")}
    if metrics then
      curves[#curves + 1] = metrics:select("step", "loss"):with_columns{sw.lit(arm):alias("arm"), sw.lit(seed):alias("seed")}
    end
    if spec.hooks and spec.hooks.on_arm_done then spec.hooks.on_arm_done(arm, seed, acc) end
  end
  for _, seed in ipairs(self.seeds) do
    local a, b, test = self:split(seed)
    -- The weak supervisor (always trained: the other arms need its labels or its score).
    self.current_arm = "weak"
    local weak = self:new_model("weak", seed)
    local weak_metrics = self:train(weak, "weak", a, seed)
    record("weak", seed, score(weak, test), weak_metrics)
    local soft = weak:predict(b, {column = "input"})
    do -- the ceiling, always: PGR needs it
      self.current_arm = "ceiling"
      local m = self:new_model("strong", seed)
      local metrics = self:train(m, "strong", b, seed)
      record("ceiling", seed, score(m, test), metrics)
    end
    local naive
    if wanted.naive_w2s or wanted.assisted_novices then
      self.current_arm = "naive_w2s"
      naive = self:new_model("strong", seed)
      local metrics = self:train(naive, "strong", soft, seed, {probs = probs_columns(self.classes)})
      if wanted.naive_w2s then record("naive_w2s", seed, score(naive, test), metrics) end
    end
    if wanted.aux_w2s then
      local aux = spec.aux or {}
      self.current_arm = "aux_w2s"
      local m = self:new_model("strong", seed)
      local metrics = self:train(m, "strong", soft, seed, {probs = probs_columns(self.classes),
        aux_coef = aux.aux_coef or 0.5, aux_warmup_frac = aux.warmup_frac or 0.1})
      record("aux_w2s", seed, score(m, test), metrics)
    end
    local crowd
    for _, arm in ipairs(self.arm_names) do
      local kind, method = arm_kind(arm)
      self.current_arm = arm
      if self.custom[arm] then
        local ctx = {
          seed = seed, a = a, b = b, test = test, classes = self.classes, experiment = self,
          weak = weak, weak_predictions = soft,
          novices = function()
            crowd = crowd or self:novice_labels(b, seed)
            return crowd
          end,
        }
        local given = self.custom[arm](ctx)
        local m, metrics = self:train_on_supervision(arm, given, b, seed)
        if has_column(given, "label") then supervision(arm, seed, given:select("id", "label"), b, "id") end
        record(arm, seed, score(m, test), metrics)
      elseif kind == "crowd" then
        crowd = crowd or self:novice_labels(b, seed)
        local labels = sw.aggregate[method](crowd).labels
        supervision(arm, seed, labels, b, "task", crowd)
        local m, metrics = self:train_on_labels(labels, b, seed)
        record(arm, seed, score(m, test), metrics)
      elseif kind == "assisted_novices" then
        crowd = crowd or self:novice_labels(b, seed)
        local assisted = self:assist(crowd, naive:predict(b, {column = "input"}), seed)
        local labels = sw.aggregate.majority_vote(assisted).labels
        supervision(arm, seed, labels, b, "task", assisted)
        local m, metrics = self:train_on_labels(labels, b, seed)
        record(arm, seed, score(m, test), metrics)
      end
    end
  end
  self.results = sw.frame(rows):select("arm", "seed", "split", "metric", "value")
  self.items = sw.concat(items)
  self.curves = #curves > 0 and sw.concat(curves) or nil
  return self.results
end

-- The model of assistance: a novice who sees the strong model's answer and its confidence
-- adopts the answer with probability trust × confidence^(1/calibration), else keeps their own.
-- (Bowman et al.'s human+model condition; `calibration` < 1 makes novices over-trust confident
-- answers less, > 1 more.)
function Experiment:assist(crowd, model_preds, seed)
  local a = self.spec.assistance or {}
  local trust, calibration = a.trust or 0.7, a.calibration or 1.0
  local answers = model_preds:column("pred")
  local conf = {}
  local rows = model_preds:height()
  for i = 1, rows do
    local best = 0
    for k = 0, self.classes - 1 do
      local v = model_preds:column("p" .. k)[i]
      if v > best then best = v end
    end
    conf[i] = best
  end
  local ids = model_preds:column("id")
  local by_id = {}
  for i = 1, rows do by_id[ids[i]] = {label = answers[i], conf = conf[i]} end
  local tasks, workers, labels = crowd:column("task"), crowd:column("worker"), crowd:column("label")
  -- A small LCG seeded from `seed`: the same assisted labels on every run.
  local state = seed * 2654435761 % 4294967296
  local function uniform()
    state = (1103515245 * state + 12345) % 2147483648
    return state / 2147483648
  end
  local out = {}
  for i = 1, #tasks do
    local m = by_id[tasks[i]]
    if m and uniform() < trust * m.conf ^ (1 / calibration) then out[i] = m.label else out[i] = labels[i] end
  end
  return sw.frame{task = tasks, worker = workers, label = out}
end

--- PGR of each arm against the weak supervisor and the ceiling on the test items of every seed,
--- with a two-stage bootstrap interval (seeds, then items within them): arm, pgr, lower, upper.
function Experiment:pgr(opts)
  opts = opts or {}
  check_keys(opts, {n_boot = true, seed = true}, "pgr")
  assert(self.items, "sw.experiment: run() first")
  local function of(arm)
    return self.items:filter(sw.col("arm"):eq(arm)):select("id", "seed", sw.col("correct"):alias(arm))
  end
  local base = of("weak"):join(of("ceiling"), {on = {"id", "seed"}})
  local out = {arm = {}, pgr = {}, lower = {}, upper = {}}
  for _, arm in ipairs(self.arm_names) do
    if arm ~= "weak" and arm ~= "ceiling" then
      local data = base:join(of(arm), {on = {"id", "seed"}})
      -- Two-stage bootstrap: seeds with replacement, then test items within each drawn seed.
      local ok, r = pcall(sw.metrics.pgr, {data = data, weak = "weak", strong = arm, ceiling = "ceiling",
        group = "seed", n_boot = opts.n_boot or self.spec.n_boot or 1000, seed = opts.seed or 0})
      if not ok then
        -- No gap between the weak supervisor and the ceiling on these items: PGR is undefined.
        if not tostring(r):find("undefined on the full data", 1, true) then error(r, 0) end
        r = {pgr = 0 / 0, lower = 0 / 0, upper = 0 / 0}
      end
      table.insert(out.arm, arm); table.insert(out.pgr, r.pgr)
      table.insert(out.lower, r.lower); table.insert(out.upper, r.upper)
    end
  end
  return sw.frame(out):select("arm", "pgr", "lower", "upper")
end

local function escape(s)
  return (tostring(s):gsub("&", "&amp;"):gsub("<", "&lt;"):gsub(">", "&gt;"))
end

local function html_table(df)
  local cols = df:columns()
  local out = {"<table><tr>"}
  for _, c in ipairs(cols) do out[#out + 1] = "<th>" .. escape(c) .. "</th>" end
  out[#out + 1] = "</tr>"
  local data = {}
  for i, c in ipairs(cols) do data[i] = df:column(c) end
  for r = 1, df:height() do
    out[#out + 1] = "<tr>"
    for i = 1, #cols do
      local v = data[i][r]
      if type(v) == "number" and math.type(v) == "float" then v = string.format("%.4f", v) end
      out[#out + 1] = "<td>" .. escape(v == nil and "" or v) .. "</td>"
    end
    out[#out + 1] = "</tr>"
  end
  out[#out + 1] = "</table>"
  return table.concat(out)
end

-- PGR bars with their intervals as inline SVG: opens anywhere, no script, no network.
local function svg_bars(pgr)
  local arms, v, lo, hi = pgr:column("arm"), pgr:column("pgr"), pgr:column("lower"), pgr:column("upper")
  local ymin, ymax = 0, 1
  for i = 1, #arms do
    for _, x in ipairs{v[i], lo[i], hi[i]} do
      if x == x then ymin = math.min(ymin, x); ymax = math.max(ymax, x) end
    end
  end
  local W, H, left, bottom = 80 * #arms + 60, 260, 50, 40
  local function y(x) return 10 + (H - bottom - 10) * (ymax - x) / (ymax - ymin) end
  local out = {('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">'):format(W, H)}
  out[#out + 1] = ('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#333"/>'):format(left, y(0), W - 5, y(0))
  for _, t in ipairs{ymin, 0, 0.5, 1, ymax} do
    out[#out + 1] = ('<text x="%d" y="%.1f" text-anchor="end">%.2f</text>'):format(left - 4, y(t) + 4, t)
  end
  for i = 1, #arms do
    local x = left + 10 + (i - 1) * 80
    local top, base = y(math.max(v[i], 0)), y(math.min(v[i], 0))
    out[#out + 1] = ('<rect x="%d" y="%.1f" width="50" height="%.1f" fill="#4c78a8"/>'):format(x, top, base - top)
    if lo[i] == lo[i] and hi[i] == hi[i] then
      out[#out + 1] = ('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#000"/>'):format(x + 25, y(lo[i]), x + 25, y(hi[i]))
    end
    out[#out + 1] = ('<text x="%d" y="%d" text-anchor="middle">%s</text>'):format(x + 25, H - bottom + 15, escape(arms[i]))
  end
  out[#out + 1] = "</svg>"
  return table.concat(out)
end

local PALETTE = {"#4c78a8", "#f58518", "#e45756", "#72b7b2", "#54a24b", "#eeca3b", "#b279a2", "#ff9da6", "#9d755d", "#bab0ac"}

-- Training loss per step, one line per arm, as inline SVG with a legend.
local function svg_lines(curves)
  local arms = {}
  local seen = {}
  for _, a in ipairs(curves:column("arm")) do
    if not seen[a] then seen[a] = true; arms[#arms + 1] = a end
  end
  local steps, losses, arm_of = curves:column("step"), curves:column("loss"), curves:column("arm")
  local xmax, ymin, ymax = 1, math.huge, -math.huge
  for i = 1, #steps do
    xmax = math.max(xmax, steps[i])
    if losses[i] == losses[i] then ymin = math.min(ymin, losses[i]); ymax = math.max(ymax, losses[i]) end
  end
  if ymin == math.huge then return "" end
  if ymax == ymin then ymax = ymin + 1 end
  local W, H, left, right, top, bottom = 640, 280, 50, 150, 10, 30
  local function x(v) return left + (W - left - right) * v / xmax end
  local function y(v) return top + (H - top - bottom) * (ymax - v) / (ymax - ymin) end
  local out = {('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">'):format(W, H)}
  out[#out + 1] = ('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>'):format(left, H - bottom, W - right, H - bottom)
  out[#out + 1] = ('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>'):format(left, top, left, H - bottom)
  for _, t in ipairs{ymin, (ymin + ymax) / 2, ymax} do
    out[#out + 1] = ('<text x="%d" y="%.1f" text-anchor="end">%.3f</text>'):format(left - 4, y(t) + 4, t)
  end
  out[#out + 1] = ('<text x="%d" y="%d" text-anchor="end">step %d</text>'):format(W - right, H - 8, xmax)
  for k, arm in ipairs(arms) do
    local color = PALETTE[(k - 1) % #PALETTE + 1]
    local pts = {}
    for i = 1, #steps do
      if arm_of[i] == arm and losses[i] == losses[i] then pts[#pts + 1] = ("%.1f,%.1f"):format(x(steps[i]), y(losses[i])) end
    end
    out[#out + 1] = ('<polyline fill="none" stroke="%s" stroke-width="1.2" points="%s"/>'):format(color, table.concat(pts, " "))
    out[#out + 1] = ('<rect x="%d" y="%d" width="10" height="10" fill="%s"/><text x="%d" y="%d">%s</text>'):format(
      W - right + 10, top + 16 * (k - 1), color, W - right + 24, top + 16 * (k - 1) + 9, escape(arm))
  end
  out[#out + 1] = "</svg>"
  return table.concat(out)
end

local function html_report(name, acc, pgr, supervision, curves, seed)
  local parts = {
    "<!doctype html><html><head><meta charset=\"utf-8\"><title>", escape(name), "</title>",
    "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}",
    "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}</style></head><body>",
    "<h1>", escape(name), "</h1><h2>Test accuracy by arm (mean and sd over seeds)</h2>", html_table(acc),
    "<h2>Performance gap recovered (95% bootstrap interval: seeds, then items within them)</h2>", html_table(pgr),
    svg_bars(pgr),
  }
  if supervision and supervision:height() > 0 then
    parts[#parts + 1] = "<h2>Quality of the supervision on B (mean over seeds)</h2>"
    parts[#parts + 1] = html_table(supervision)
  end
  if curves and curves:height() > 0 then
    parts[#parts + 1] = "<h2>Training loss per step (seed " .. escape(seed) .. ")</h2>"
    parts[#parts + 1] = svg_lines(curves)
  end
  parts[#parts + 1] = "</body></html>\n"
  return table.concat(parts)
end

-- The spec as plain data: DataFrames become their content hash, functions (hooks) are left out.
local function plain(v)
  if type(v) == "table" then
    local out = {}
    for k, x in pairs(v) do
      if type(x) ~= "function" then out[k] = plain(x) end
    end
    return out
  elseif type(v) == "userdata" then
    return {dataframe_hash = sw.tasks.hash(v), rows = v:height()}
  end
  return v
end

--- What reproduces this experiment: the spec (as data), the task's content hash, the build
--- (version, git revision) and the device.
function Experiment:manifest()
  local spec = plain(self.spec)
  spec.hooks = nil
  local about = sw.about()
  return {
    name = self.name,
    spec = spec,
    task_hash = sw.tasks.hash(self.task),
    task_rows = self.task:height(),
    sandwich = about.version,
    git_revision = about.git_revision,
    device = (self.spec.strong.model.device or "cpu"),
    created = os.date("!%Y-%m-%dT%H:%M:%SZ"),
  }
end

--- Writes `manifest.json`, `results.csv` and `report.html` into `dir` (created if missing).
function Experiment:save(dir)
  assert(self.results, "sw.experiment: run() first")
  sw.json.write(dir .. "/manifest.json", self:manifest())
  self.results:write_csv(dir .. "/results.csv")
  self:write_report(dir .. "/report.html")
  return dir
end

--- Test accuracy per arm: mean and standard deviation over seeds.
function Experiment:accuracy()
  assert(self.results, "sw.experiment: run() first")
  return self.results:filter(sw.col("metric"):eq("accuracy"))
    :group_by("arm")
    :agg{sw.col("value"):mean():alias("accuracy"), sw.col("value"):std():alias("sd")}
    :sort("arm")
end

--- Tables and charts in a notebook (or printed on the command line); with a path, also a
--- self-contained HTML file (tables and an inline SVG chart; no network needed to open it).
function Experiment:report(path)
  assert(self.results, "sw.experiment: run() first")
  local acc = self:accuracy()
  local pgr = self:pgr()
  sw.display.markdown("## " .. self.name)
  sw.display(acc)
  sw.display(pgr)
  sw.display(sw.chart.bar(pgr, {x = "arm", y = "pgr", lower = "lower", upper = "upper", title = "gap recovered"}))
  local supervision = self:supervision()
  if supervision:height() > 0 then sw.display(supervision) end
  local curves = self:first_curves()
  if curves then
    sw.display(sw.chart.line(curves, {x = "step", y = "loss", color = "arm", title = "training loss (seed " .. self.seeds[1] .. ")"}))
  end
  if path then self:write_report(path, acc, pgr) end
  return pgr
end

--- Writes the self-contained HTML report to `path` without showing anything; returns the path.
function Experiment:write_report(path, acc, pgr)
  assert(self.results, "sw.experiment: run() first")
  acc = acc or self:accuracy()
  pgr = pgr or self:pgr()
  local f = io.open(path, "w")
  if not f then fail("path", "a writable file", "'" .. tostring(path) .. "'") end
  f:write(html_report(self.name, acc, pgr, self:supervision(), self:first_curves(), self.seeds[1]))
  f:close()
  return path
end

--- The quality of the crowd and assisted arms' supervision on B: arm, metric, mean over seeds.
function Experiment:supervision()
  assert(self.results, "sw.experiment: run() first")
  return self.results:filter(sw.col("split"):eq("train_b"))
    :group_by({"arm", "metric"}):agg{sw.col("value"):mean():alias("mean")}:sort({"arm", "metric"})
end

-- The training curves of the first seed (nil when there are none).
function Experiment:first_curves()
  if not self.curves then return nil end
  return self.curves:filter(sw.col("seed"):eq(self.seeds[1]))
end

--- Reruns a saved experiment from its manifest and checks that every number comes out the same:
--- returns the new results and whether they equal the saved `results.csv` exactly. A task that
--- was a DataFrame must be passed again (`opts.task`); its content hash must match.
local function rerun(dir, opts)
  opts = opts or {}
  check_keys(opts, {task = true, supervise = true}, "rerun")
  local f = io.open(dir .. "/manifest.json")
  if not f then fail("dir", "a folder with manifest.json (Experiment:save)", "'" .. tostring(dir) .. "'") end
  local m = sw.json.decode(f:read("a"))
  f:close()
  local spec = m.spec
  if type(spec.task) == "table" and spec.task.dataframe_hash then
    if not opts.task then fail("opts.task", "the task DataFrame the experiment ran on", "nothing") end
    local h = sw.tasks.hash(opts.task)
    if h ~= spec.task.dataframe_hash then fail("opts.task", "the task with hash " .. spec.task.dataframe_hash, "hash " .. h) end
    spec.task = opts.task
  end
  -- JSON turns integer-valued numbers into floats; seeds and sizes must be integers again.
  local function ints(t)
    for k, v in pairs(t) do
      if type(v) == "number" and v == math.floor(v) and math.type(v) == "float" then t[k] = math.tointeger(v)
      elseif type(v) == "table" then ints(v) end
    end
  end
  ints(spec)
  -- A custom arm is Lua code, which a manifest cannot hold: it is passed again by name.
  for i, arm in ipairs(spec.arms) do
    if type(arm) == "table" then
      local f = opts.supervise and opts.supervise[arm.name]
      if type(f) ~= "function" then
        fail("opts.supervise." .. tostring(arm.name), "the supervise function of custom arm " .. i, type(f))
      end
      arm.supervise = f
    end
  end
  local exp = declare(m.name)(spec)
  if sw.tasks.hash(exp.task) ~= m.task_hash then fail("task", "the task of the manifest", "different data") end
  local results = exp:run()
  local saved = sw.read_csv(dir .. "/results.csv")
  local a, b = results:column("value"), saved:column("value")
  local same = #a == #b
  for i = 1, math.min(#a, #b) do same = same and a[i] == b[i] end
  return results, same, exp
end

sw.experiment = setmetatable({rerun = rerun}, {__call = function(_, name) return declare(name) end})

return Experiment
