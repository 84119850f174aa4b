-- Saves small random models for tests/parity/check_hf_loads.py, with our outputs beside them.
local root = arg[1] or "/tmp/sw-hf"
local tok = "workbooks/tokenizer"
local texts = {"hello world", "agree with the overseer"}
local out = {texts = texts, prompt = "Question: 2 + 2 =", completion = " 4"}

local g = sw.model.new{arch = "gpt2", tokenizer = tok, hidden_size = 32, heads = 4, seed = 1}
g:save(root .. "/gpt2-lm")
out["gpt2-lm"] = g:logprobs(sw.frame{prompt = {out.prompt}, completion = {out.completion}}):column("logprob")[1]

for name, arch in pairs{["llama-cls"] = "llama", ["bert-cls"] = "bert"} do
  local m = sw.model.new{arch = arch, tokenizer = tok, hidden_size = 32, heads = 4, head = "classify", num_labels = 3, seed = 2}
  m:save(root .. "/" .. name)
  local p = m:predict(texts)
  local rows = {}
  for i = 1, #texts do rows[i] = {p:column("p0")[i], p:column("p1")[i], p:column("p2")[i]} end
  out[name] = rows
end

local function json(v)
  if type(v) == "table" then
    local parts = {}
    if #v > 0 then
      for _, x in ipairs(v) do parts[#parts + 1] = json(x) end
      return "[" .. table.concat(parts, ",") .. "]"
    end
    for k, x in pairs(v) do parts[#parts + 1] = string.format("%q:%s", k, json(x)) end
    return "{" .. table.concat(parts, ",") .. "}"
  elseif type(v) == "string" then
    return string.format("%q", v)
  end
  return string.format("%.17g", v)
end
local f = assert(io.open(root .. "/ours.json", "w"))
f:write(json(out))
f:close()
print("saved to " .. root)
