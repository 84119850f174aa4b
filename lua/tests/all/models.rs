//! Models and training from Lua: bad configurations are clear errors before any compute, and the
//! API does what its pages say on data the docs do not use.

use crate::util::Captured;

/// Absolute: the docs test changes the process's working directory while these run. Looked up
/// at run time (cargo sets the variable for tests), so the test binary is not tied to the
/// checkout it was built in (a target directory shared by several checkouts).
fn tok() -> String {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    format!("{dir}/../workbooks/tokenizer")
}

fn session() -> Captured {
    let c = Captured::new();
    let tok = tok();
    c.eval(&format!(
        r#"TOK = "{tok}"
        gpt = sw.model.new{{arch = "gpt2", tokenizer = TOK, hidden_size = 32, heads = 4, seed = 1}}
        clf = sw.model.new{{arch = "bert", tokenizer = TOK, hidden_size = 32, heads = 4, num_labels = 2}}
        bare = sw.model.new{{arch = "llama", vocab_size = 64, hidden_size = 16, heads = 2}}
        pairs_ = sw.frame{{prompt = {{"Q: a", "Q: b"}}, completion = {{" x", " y"}}}}
        texts = sw.frame{{text = {{"one", "two"}}, label = {{0, 1}}, p0 = {{0.5, 0.2}}, p1 = {{0.5, 0.9}}}};"#
    ));
    c
}

#[test]
fn bad_model_and_training_calls_fail_with_clear_errors() {
    let c = session();
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("sw.model.new{arch = 'gpt2', vocab_size = 10, hidden = 3}", vec!["sw.model.new", "unknown field `hidden`"]),
        ("sw.model.new{arch = 'gpt2', vocab_size = 10, hidden_size = 30, heads = 4}", vec!["model.new", "'heads'", "divisor of hidden_size"]),
        ("sw.model.new{arch = 'llama', vocab_size = 10, hidden_size = 32, heads = 4, kv_heads = 3}", vec!["model.new", "'kv_heads'", "divisor of heads"]),
        ("sw.model.new{arch = 'gpt2', vocab_size = 10, kv_heads = 2}", vec!["kv_heads", "Llama/Qwen2 only"]),
        ("sw.model.new{arch = 'gpt2', vocab_size = 10, head = 'classify', num_labels = 1}", vec!["num_labels", "at least 2"]),
        ("sw.model.new{arch = 'bert', vocab_size = 10, head = 'lm'}", vec!["head", "BERT"]),
        ("sw.model.new{arch = 'gpt2', vocab_size = 10, device = 'cuda:0'}", vec!["device", "--features cuda"]),
        ("sw.model.new{arch = 'gpt2', vocab_size = 10, dtype = 'f64'}", vec!["dtype", "'f32', 'bf16' or 'f16'"]),
        ("sw.model.new{arch = 'gpt2', vocab_size = 100, tokenizer = TOK}", vec!["tokenizer", "vocab_size = 100"]),
        ("sw.model.new{arch = 'gpt2', tokenizer = 'no/such/dir'}", vec!["tokenizer.json"]),
        ("sw.model.load('no/such/dir', {header = 'lm'})", vec!["sw.model.load", "unknown field `header`"]),
        ("bare:generate({'hi'})", vec!["generate", "tokenizer"]),
        ("clf:generate({'hi'})", vec!["generate", "'lm' head"]),
        ("gpt:generate('hi')", vec!["Model.generate", "prompts", "a list of strings or a DataFrame", "string"]),
        ("gpt:generate({'hi'}, {top_p = 1.5})", vec!["top_p", "(0, 1]"]),
        ("gpt:generate({'hi'}, {max_new_tokens = 1000})", vec!["max_new_tokens", "positions"]),
        ("gpt:generate(pairs_, {column = 'question'})", vec!["a column 'question'"]),
        ("gpt:logprobs({'a'})", vec!["Model.logprobs", "DataFrame"]),
        ("gpt:predict({'a'})", vec!["'scalar' or 'classify' head"]),
        ("gpt:merge_lora()", vec!["merge_lora", "without"]),
        ("gpt:save_adapter('/tmp/x')", vec!["save_adapter", "LoRA"]),
        ("sw.lora{model = gpt, rank = 0}", vec!["rank", "positive"]),
        ("sw.lora{model = gpt, dropout = 1}", vec!["dropout", "[0, 1)"]),
        ("sw.lora{model = 3}", vec!["sw.lora", "Model", "integer"]),
        ("sw.train.sft{model = gpt, data = pairs_, epoch = 2}", vec!["sw.train.sft", "unknown field `epoch`"]),
        ("sw.train.sft{model = gpt, data = pairs_, prompt = 'q'}", vec!["a column 'q'"]),
        // An unknown key's error lists the keys the binding takes itself beside the config's.
        ("sw.train.sft{model = gpt, data = pairs_, epoch = 2}", vec!["`lr`", "`model`", "`data`", "`on_step`"]),
        ("sw.train.grpo{model = gpt, prompts = {'a'}, reward = function(p, c) return {1} end, sample = 2}", vec!["sw.train.grpo", "unknown field `sample`", "`num_generations`", "`model`", "`reward`", "`ref`"]),
        ("sw.train.ppo{model = gpt, prompts = {'a'}, reward = function(p, c) return {1} end, critic = gpt}", vec!["sw.train.ppo", "unknown field `critic`", "`value`", "`ref`", "`cliprange`"]),
        ("sw.train.sft{model = gpt, data = 3}", vec!["data", "DataFrame", "integer"]),
        ("sw.train.sft{model = gpt, data = pairs_, batch_size = 0}", vec!["batch_size", "positive"]),
        ("sw.train.sft{model = gpt, data = pairs_, max_length = 2000}", vec!["max_length"]),
        ("sw.train.sft{model = gpt, data = pairs_, max_length = 3}", vec!["max_length", "room for completion tokens"]),
        ("sw.train.sft{model = gpt, data = pairs_, eval_every = 1}", vec!["eval", "eval_every"]),
        ("sw.train.sft{model = gpt, data = pairs_, resume = true}", vec!["checkpoint_dir"]),
        ("sw.train.sft{model = gpt, data = pairs_, schedule = 'exp'}", vec!["unknown variant `exp`"]),
        ("sw.train.sft{model = bare, data = pairs_}", vec!["tokenizer"]),
        ("sw.train.classify{model = gpt, data = texts}", vec!["'classify' head"]),
        ("sw.train.classify{model = clf, data = texts, label = 'label', probs = {'p0', 'p1'}}", vec!["either label or probs"]),
        ("sw.train.classify{model = clf, data = texts, probs = {'p0', 'p1'}}", vec!["probs", "summing to 1", "row 2"]),
        ("sw.train.classify{model = clf, data = texts, probs = {'p0'}}", vec!["2 columns"]),
        ("sw.train.classify{model = clf, data = texts, text = 'label'}", vec!["column 'label' of strings"]),
        ("sw.train.sft{model = gpt, data = pairs_, aux_coef = 0.5}", vec!["aux_coef", "classification"]),
        ("sw.train.classify{model = clf, data = texts, aux_coef = 1.5}", vec!["aux_coef", "[0, 1]"]),
        // Over-optimisation sweeps.
        ("sw.overopt.best_of_n{model = gpt, prompts = {'a'}, proxy = sw.overopt.gold, gold = sw.overopt.gold, n = 8, pool = 4}", vec!["sw.overopt.best_of_n", "pool", "at least the largest n (8)"]),
        ("sw.overopt.best_of_n{model = gpt, prompts = {'a'}, proxy = sw.overopt.gold, gold = sw.overopt.gold, n = {0, 2}}", vec!["sw.overopt.best_of_n", "'n'", "positive integers"]),
        ("sw.overopt.best_of_n{model = gpt, prompts = {'a'}, proxy = 3, gold = sw.overopt.gold}", vec!["sw.overopt.best_of_n", "'proxy'", "reward Model", "integer"]),
        ("sw.overopt.best_of_n{model = gpt, prompts = {'a'}, proxy = sw.overopt.gold, gold = sw.overopt.gold, samples = 3}", vec!["unknown field `samples`", "`proxy`", "`pool`", "`max_new_tokens`"]),
        ("sw.overopt.rl{model = gpt, prompts = {'a'}, proxy = sw.overopt.gold, gold = sw.overopt.gold, reward = sw.overopt.gold}", vec!["sw.overopt.rl", "'reward'", "proxy"]),
        ("sw.overopt.rl{method = 'dpo', model = gpt, prompts = {'a'}, proxy = sw.overopt.gold, gold = sw.overopt.gold}", vec!["sw.overopt.rl", "'method'", "'grpo', 'rloo' or 'ppo'", "'dpo'"]),
        ("sw.overopt.rl{model = gpt, prompts = {'a'}, proxy = sw.overopt.gold, gold = sw.overopt.gold, stepz = 2}", vec!["sw.overopt.rl (method 'grpo')", "unknown field `stepz`"]),
        ("sw.overopt.rl{model = gpt, prompts = {'a'}, proxy = sw.overopt.gold, gold = sw.overopt.gold, beta = 0}", vec!["sw.overopt.rl", "'beta'", "reference policy"]),
        ("sw.overopt.task{m = 3}", vec!["sw.overopt.task", "unknown field `m`", "`seed`"]),
        ("sw.overopt.pairs{n = 10, reviews = 1}", vec!["reviews", "at least 2"]),
        ("sw.experiment.pgr(sw.frame{arm = {'weak'}, seed = {1}, metric = {'m'}, value = {1.0}}, {})", vec!["sw.experiment.pgr", "metric"]),
        ("sw.experiment.pgr(sw.frame{arm = {'weak', 'ceiling', 'a', 'weak', 'ceiling'}, seed = {1, 1, 1, 2, 2}, metric = {'m', 'm', 'm', 'm', 'm'}, value = {0, 1, 0.5, 0, 1}}, {metric = 'm'})", vec!["arm 'a' without seed 2"]),
    ];
    let mut failures = Vec::new();
    for (code, needles) in &cases {
        let err = c.error(code);
        let first_line = err.lines().next().unwrap_or("");
        if let Some(n) = needles.iter().find(|n| !err.contains(*n)) {
            failures.push(format!("{code}\n  missing {n:?} in: {first_line}"));
        }
        assert!(!err.contains("panic"), "{code} panicked: {err}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_sft_run_returns_its_metrics_and_leaves_a_trained_model() {
    let c = session();
    let out = c.eval(
        r#"
        local data = sw.frame{prompt = {"Say yes:", "Say no:"}, completion = {" yes", " no"}}
        local before = gpt:logprobs(data):column("logprob")
        local m = sw.train.sft{model = gpt, data = data, epochs = 20, batch_size = 1, grad_accum = 2,
                               lr = 5e-3, schedule = "cosine", warmup_steps = 2}
        local after = gpt:logprobs(data):column("logprob")
        local lr = m:column("lr")
        return string.format("%d %s %s %s %.4g", m:height(), tostring(after[1] > before[1]),
          tostring(after[2] > before[2]), tostring(lr[1] == 0), lr[3])
        "#,
    );
    // 20 epochs × 2 micro-batches / 2 accumulated = 20 steps; warm-up starts at lr 0; the cosine
    // value at step 3 (0-based 2) is 5e-3 · ½(1 + cos(π·0/18)) = 5e-3.
    assert_eq!(out, "20 true true true 0.005");
}

#[test]
fn lora_through_lua_trains_only_adapters() {
    let c = session();
    let out = c.eval(
        r#"
        local m = sw.model.new{arch = "gpt2", tokenizer = TOK, hidden_size = 32, heads = 4, seed = 9}
        local data = sw.frame{prompt = {"Say yes:"}, completion = {" yes"}}
        local base = m:logprobs(data):column("logprob")[1]
        sw.lora{model = m, rank = 2, alpha = 4, targets = {"c_attn", "c_proj"}}
        local same = m:logprobs(data):column("logprob")[1]
        sw.train.sft{model = m, data = data, epochs = 10, lr = 1e-2}
        local trained = m:logprobs(data):column("logprob")[1]
        return tostring(same == base) .. " " .. tostring(trained > base) .. " " .. m:info().trainable
        "#,
    );
    // c_attn (32→96) and c_proj (attention 32→32, MLP 128→32) in 2 layers, rank 2:
    // per layer 2·(32+96) + 2·(32+32) + 2·(128+32) = 704.
    assert_eq!(out, "true true 1408");
}

/// The auxiliary confidence loss pulls a model towards its own confident predictions: from the
/// same start, with labels that are pure noise (every soft label 0.5/0.5), plain training keeps
/// the predictions near 0.5 while `aux_coef = 1` makes them confident.
#[test]
fn the_auxiliary_loss_makes_predictions_confident() {
    let c = session();
    let out = c.eval(
        r#"
        local texts, p0, p1 = {}, {}, {}
        for i = 1, 32 do texts[i] = (i % 2 == 0) and ("good " .. i) or ("bad " .. i); p0[i] = 0.5; p1[i] = 0.5 end
        local data = sw.frame{text = texts, p0 = p0, p1 = p1}
        local function confidence(aux)
          local m = sw.model.new{arch = "bert", tokenizer = TOK, hidden_size = 32, heads = 4, num_labels = 2, seed = 3}
          sw.train.classify{model = m, data = data, probs = {"p0", "p1"}, epochs = 30, batch_size = 8, lr = 3e-3,
                            aux_coef = aux, aux_warmup_frac = 0.1, seed = 1}
          local pred = m:predict(texts)
          local total = 0
          for _, p in ipairs(pred:column("p0")) do total = total + math.abs(p - 0.5) end
          return total / #texts
        end
        return string.format("%.3f %.3f", confidence(0), confidence(1))
        "#,
    );
    let v: Vec<f64> = out.split(' ').map(|x| x.parse().unwrap()).collect();
    assert!(v[0] < 0.1, "plain training stays unsure: {out}");
    assert!(v[1] > 0.3, "the auxiliary loss makes it confident: {out}");
}
