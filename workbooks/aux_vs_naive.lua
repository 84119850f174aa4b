-- Does the auxiliary confidence loss help weak-to-strong generalisation (Burns et al., 2023)?
-- naive_w2s against aux_w2s over several seeds, on the quickstart's experiment, with the strong
-- model trained from scratch or pretrained (MiniLM). docs/experiments.md has the results.
--
--   sandwich run workbooks/aux_vs_naive.lua [scratch|minilm] [SEEDS] [OUT_CSV] [MODEL_DIR]

local here = (arg and arg[0] or ""):match("^(.*/)") or "./"
local workbook = dofile(here .. "sentiment_experiment.lua")
local which = arg and arg[1] or "scratch"
local n_seeds = tonumber(arg and arg[2]) or 5
local seeds = {}
for s = 1, n_seeds do seeds[s] = s end

local strong
if which == "minilm" then
  strong = workbook.minilm_strong(arg[4])
elseif which ~= "scratch" then
  error("aux_vs_naive.lua: the first argument must be 'scratch' or 'minilm', got '" .. which .. "'", 0)
end

local exp = workbook.experiment{name = "aux_w2s vs naive_w2s (" .. which .. ")", strong = strong,
                       arms = {"weak", "ceiling", "naive_w2s", "aux_w2s"}, seeds = seeds}
exp:run()
print(exp:accuracy())
print(exp:pgr())
-- The paired difference over seeds, with its interval; and per seed.
print(exp:compare("aux_w2s", "naive_w2s"))
local acc = exp:results():filter(sw.col("metric"):eq("accuracy"))
local wins = 0
for _, s in ipairs(seeds) do
  local function at(arm)
    return acc:filter(sw.col("arm"):eq(arm):and_(sw.col("seed"):eq(s))):column("value")[1]
  end
  local d = at("aux_w2s") - at("naive_w2s")
  if d > 0 then wins = wins + 1 end
  print(("seed %d: aux − naive = %+.3f"):format(s, d))
end
print(("aux_w2s beat naive_w2s on %d of %d seeds"):format(wins, #seeds))
if arg and arg[3] then exp:results():write_csv(arg[3]) end
